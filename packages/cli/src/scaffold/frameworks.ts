import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { writeOnnxStarter } from './starters/onnx-model.ts';
import { writeTfjsStarter } from './starters/tfjs-model.ts';

/**
 * Where the project templates live: packages/cli/templates/<framework>/... and templates/common/... They are data
 * (shipped in the package's files, read as text), never imported: the same path holds from src/ and from dist/.
 */
export const TEMPLATES = fileURLToPath(new URL('../../templates/', import.meta.url));

/** What `pyml init --framework X` needs to know about X. */
export interface FrameworkScaffold {
  /** The plugin package the project uses. */
  plugin: string;
  /** Template files copied as they are (`__NAME__` replaced), relative to templates/<framework>/. */
  files: string[];
  /** The weights the generator writes, relative to the project. */
  weights: string;
  /**
   * How a user remakes the weights, when the project keeps a script for it (Python frameworks: make-model.py runs
   * with the machine's python3). The onnx and tfjs starters are written by pyml itself and need no script.
   */
  makeModel?: string;
  /** What the build machine needs besides pyml (shown in the README and the next steps). */
  needs?: string;
  /** Writes the starter weights to `out` (absolute). */
  generate(out: string): Promise<void>;
}

const python = () => process.env.PYML_PYTHON || '/usr/bin/python3';

/** Runs a template's make-model.py with the build machine's Python; its error names what to install. */
function runPython(script: string, out: string, debianPackage: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(python(), [script, out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (error) => reject(new Error(`cannot run ${python()} to make the starter model (${error.message}); install python3 and ${debianPackage}, or set PYML_PYTHON`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${python()} make-model.py failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}; install ${debianPackage}, or set PYML_PYTHON to a Python that has it`));
    });
  });
}

export const FRAMEWORKS: Record<string, FrameworkScaffold> = {
  onnx: {
    plugin: '@pyml/plugin-onnx',
    files: ['pyml.config.ts', 'src/model.ts', 'sample.json'],
    weights: 'weights/model.onnx',
    generate: writeOnnxStarter,
  },
  tfjs: {
    plugin: '@pyml/plugin-tfjs',
    files: ['pyml.config.ts', 'src/model.ts', 'sample.json'],
    weights: 'weights/model',
    generate: writeTfjsStarter,
  },
  sklearn: {
    plugin: '@pyml/plugin-sklearn',
    files: ['pyml.config.ts', 'make-model.py', 'sample.json'],
    weights: 'weights/model.pkl',
    makeModel: '/usr/bin/python3 make-model.py',
    needs: 'python3 with scikit-learn and onnx (Debian: python3-sklearn python3-onnx) to convert the pickle at build time',
    generate: (out) => runPython(`${TEMPLATES}sklearn/make-model.py`, out, 'python3-sklearn'),
  },
  pytorch: {
    plugin: '@pyml/plugin-pytorch',
    files: ['pyml.config.ts', 'src/model.py', 'make-model.py', 'sample.json'],
    weights: 'weights/model.pt',
    makeModel: '/usr/bin/python3 make-model.py',
    needs: 'python3 with torch (Debian: python3-torch): the image carries a Python environment for the sidecar',
    generate: (out) => runPython(`${TEMPLATES}pytorch/make-model.py`, out, 'python3-torch'),
  },
};

/** Whether this pyml has the framework's plugin installed (it resolves from the CLI, as the project's would). */
export function pluginInstalled(plugin: string): boolean {
  try {
    createRequire(import.meta.url).resolve(plugin);
    return true;
  } catch {
    return false;
  }
}
