/**
 * @pyml/plugin-pytorch: PyTorch models written in Python. A preset of @pyml/plugin-python: the same sidecar and
 * options, with Debian's python3-torch and python3-numpy by default, and TorchScript weights checked at build time.
 *
 *   import pytorch from '@pyml/plugin-pytorch';
 *   export default defineConfig({ ..., kind: 'tensor', weights: ['./weights/mlp.pt'], signature: {...},
 *     plugins: [pytorch({ model: './src/model.py' })] });
 */
import { open } from 'node:fs/promises';
import { relative } from 'node:path';
import type { HookContext, PymlPlugin, WeightsFile } from '@pyml/core/types';
import { type PythonPluginOptions, pythonPlugin } from '@pyml/plugin-python';

export type PytorchPluginOptions = PythonPluginOptions;

const TORCH_WEIGHTS = /\.(pt|pth|torchscript|ptl)$/i;

/** TorchScript and torch.save files are zip archives; anything else would fail only at load time in the image. */
async function describeTorchFile(file: WeightsFile, ctx: HookContext) {
  const h = await open(file.path, 'r');
  try {
    const magic = Buffer.alloc(4);
    await h.read(magic, 0, 4, 0);
    if (magic.readUInt32LE(0) !== 0x04034b50) {
      const rel = relative(ctx.config.root, file.path);
      throw new Error(`${rel}: not a TorchScript/torch.save zip archive (starts with ${magic.toString('hex')}); save it with torch.jit.save(torch.jit.trace(model, example), path)`);
    }
  } finally {
    await h.close();
  }
  return { format: 'torchscript', details: { bytes: file.size } };
}

export default function pytorch(options: PytorchPluginOptions = {}): PymlPlugin {
  return pythonPlugin(options, {
    name: 'pytorch',
    packages: ['python3-torch', 'python3-numpy'],
    async describeWeights(file, ctx) {
      return TORCH_WEIGHTS.test(file.name) ? describeTorchFile(file, ctx) : undefined;
    },
  });
}
