import { spawnSync } from 'node:child_process';
import { buildIris } from '../batch/fixtures.ts';
import { rayPythonPath } from './ray-env.ts';

/**
 * The onnx-iris image with one change: a batch waits PYML_TEST_BATCH_DELAY_MS (from its environment; 0 when unset)
 * before predicting. Its outputs are iris's; the delay only stretches a job so that a test can kill a process mid-job.
 */
export function buildSlowableIris(): Promise<string> {
  // Built once per test process: the area's files share it.
  return (slowable ??= buildIris((source) => {
    const predict = 'return this.session.run(inputs);';
    if (!source.includes(predict)) throw new Error(`examples/onnx-iris/src/model.ts changed: no '${predict}' to slow down`);
    return source.replace(predict, `const delay = Number(process.env.PYML_TEST_BATCH_DELAY_MS ?? 0);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    ${predict}`);
  }));
}

let slowable: Promise<string> | undefined;

export interface Comparison {
  rows: [number, number];
  distinctKeys: [number, number];
  columns: [string[], string[]];
  differences: string[];
}

/** compare_datasets.py: two pyml batch outputs, row for row by KEY, bit for bit. */
export function compareDatasets(a: string, b: string, key: string): Comparison {
  const r = spawnSync(rayPythonPath(), [new URL('compare_datasets.py', import.meta.url).pathname, a, b, key], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`compare_datasets.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Comparison;
}
