/** Starts the sidecars of the Python model inlined at build time: what both default models share. */
import type { InitContext } from '@pyml/contract';
import type { PythonAdapter, PythonModelSource, PythonSession } from './adapter.ts';

declare const __PYML_PYTHON_MODEL__: string | undefined;

export async function startPythonModel(ctx: InitContext): Promise<PythonSession> {
  if (typeof __PYML_PYTHON_MODEL__ === 'undefined') {
    throw new Error('python model: no Python model was inlined at build time (python({ model: "./src/model.py" }) in pyml.config.ts)');
  }
  const source = JSON.parse(__PYML_PYTHON_MODEL__) as PythonModelSource;
  return ctx.adapter<PythonAdapter>('python').start(source);
}
