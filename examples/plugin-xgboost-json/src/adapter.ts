/**
 * The runtime adapter: bundled by `pyml build` into /opt/pyml/adapters/xgboost-json.mjs and loaded by the image's
 * entrypoint at start-up. Models reach it with `ctx.adapter<XgboostAdapter>('xgboost-json')`.
 * Pure TypeScript: no dependency layer is needed.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import type { AdapterFactory } from '@pyml/contract';
import { Booster } from './booster.ts';

export interface XgboostAdapter {
  /** Loads a weights file by base name (`model.json`) or absolute path. */
  load(fileName: string): Promise<Booster>;
}

const createAdapter: AdapterFactory<XgboostAdapter> = (env) => ({
  async load(fileName) {
    const path = isAbsolute(fileName) ? fileName : env.weightsPath(fileName);
    const booster = Booster.fromJson(await readFile(path, 'utf8'), fileName);
    env.logger.info(`xgboost-json: loaded ${fileName}`, { trees: booster.model.trees.length, objective: booster.model.objective });
    return booster;
  },
});

export default createAdapter;
