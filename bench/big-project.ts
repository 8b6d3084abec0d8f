/** A model project whose weights are `mb` MB of random float32 (ONNX), for the build and push benchmarks; another seed, other weights. */
import { cp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeBigOnnx } from './make-big-onnx.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));

export async function makeBigProject(dir: string, mb: number, seed = 1): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, 'weights'), { recursive: true });
  await mkdir(path.join(dir, 'src'), { recursive: true });
  await writeBigOnnx(path.join(dir, 'weights/model.onnx'), { mb, seed });
  await writeFile(path.join(dir, 'pyml.config.ts'), `import { defineConfig } from '@pyml/core';
import onnx from '@pyml/plugin-onnx';
export default defineConfig({ name: 'big', version: '1.0.0', model: './src/model.ts', weights: ['./weights/model.onnx'], plugins: [onnx()] });
`);
  await cp(path.join(REPO, 'examples/onnx-iris/src/model.ts'), path.join(dir, 'src/model.ts'));
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
}
