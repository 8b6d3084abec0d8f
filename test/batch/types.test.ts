import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO, parseJson, pyml } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { sql } from './fixtures.ts';

/**
 * Column types beyond FP32: a dataframe model (DOUBLE, VARCHAR, BOOLEAN, INTEGER in; DOUBLE, VARCHAR, BOOLEAN,
 * BIGINT out) and a tensor model with a nested [-1, 2, 3] UINT8 input and a [-1, 2] BOOL output, through real images.
 */

const FRAME_CONFIG = `import { defineConfig } from '@pyml/core';
export default defineConfig({
  name: 'frame', version: '0.1.0', model: './src/model.ts', kind: 'dataframe',
  signature: {
    inputs: [{ name: 'a', dtype: 'FP64', shape: [-1] }, { name: 'name', dtype: 'BYTES', shape: [-1] },
             { name: 'flag', dtype: 'BOOL', shape: [-1] }, { name: 'n', dtype: 'INT32', shape: [-1] }],
    outputs: [{ name: 'score', dtype: 'FP64', shape: [-1] }, { name: 'greeting', dtype: 'BYTES', shape: [-1] },
              { name: 'flipped', dtype: 'BOOL', shape: [-1] }, { name: 'twice', dtype: 'INT64', shape: [-1] }],
  },
  plugins: [],
});
`;
const FRAME_MODEL = `import { DataFrameModel, type InitContext } from '@pyml/contract';
import { type Table, tableFromArrays, vectorFromArray, Bool, Int64, makeTable } from 'apache-arrow';
export default class Frame extends DataFrameModel {
  async init(_ctx: InitContext): Promise<void> {}
  async predict(df: Table): Promise<Table> {
    const a = df.getChild('a')!.toArray() as Float64Array;
    const names = [...df.getChild('name')!] as string[];
    const flags = [...df.getChild('flag')!] as boolean[];
    const n = df.getChild('n')!.toArray() as Int32Array;
    return new (df.constructor as typeof import('apache-arrow').Table)({
      score: vectorFromArray(a.map((v) => v * 2 + 1)),
      greeting: vectorFromArray(names.map((s) => 'hi ' + s + ' ✓')),
      flipped: vectorFromArray(flags.map((f) => !f), new Bool()),
      twice: vectorFromArray(Array.from(n, (v) => BigInt(v) * 2n), new Int64()),
    });
  }
}
`;

const GRID_CONFIG = `import { defineConfig } from '@pyml/core';
export default defineConfig({
  name: 'grid', version: '0.1.0', model: './src/model.ts', kind: 'tensor',
  signature: {
    inputs: [{ name: 'img', dtype: 'UINT8', shape: [-1, 2, 3] }],
    outputs: [{ name: 'total', dtype: 'FP64', shape: [-1] }, { name: 'bright', dtype: 'BOOL', shape: [-1, 2] }],
  },
  plugins: [],
});
`;
const GRID_MODEL = `import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
export default class Grid extends TensorModel {
  async init(_ctx: InitContext): Promise<void> {}
  async predict({ img }: Tensors): Promise<Tensors> {
    const rows = img.shape[0];
    const data = img.data as Uint8Array;
    const total = new Float64Array(rows);
    const bright = new Uint8Array(rows * 2);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < 2; i++) {
        let s = 0;
        for (let j = 0; j < 3; j++) s += data[r * 6 + i * 3 + j];
        total[r] += s / 7;
        bright[r * 2 + i] = s > 300 ? 1 : 0;
      }
    }
    return { total: { dtype: 'FP64', shape: [rows], data: total }, bright: { dtype: 'BOOL', shape: [rows, 2], data: bright } };
  }
}
`;

let dir = '';
const images: Record<string, string> = {};

async function buildProject(name: string, config: string, model: string): Promise<string> {
  const project = join(dir, `${name}-project`);
  await mkdir(join(project, 'src'), { recursive: true });
  await symlink(join(REPO, 'node_modules'), join(project, 'node_modules'));
  await writeFile(join(project, 'pyml.config.ts'), config);
  await writeFile(join(project, 'src/model.ts'), model);
  const out = join(dir, name);
  const r = await pyml(['build', project, '--out', out, '--json']);
  if (r.code !== 0) throw new Error(`pyml build ${name} failed (${r.code}): ${r.stderr}`);
  return out;
}

test.before(async () => {
  dir = await tempDir('pyml-batch-types-');
  images.frame = await buildProject('frame', FRAME_CONFIG, FRAME_MODEL);
  images.grid = await buildProject('grid', GRID_CONFIG, GRID_MODEL);
});

test('dataframe model: VARCHAR, BOOLEAN, DOUBLE and widened SMALLINT columns in; strings and booleans out', async () => {
  const db = join(dir, 'frame.duckdb');
  const query = `SELECT range AS k, range / 4.0 AS a, 'row ' || range AS name, range % 3 = 0 AS flag, (range - 1000)::SMALLINT AS n FROM range(3000)`;
  const r = await pyml(['batch', images.frame, '--query', query, '--into', 'out', '--db', db, '--keep', 'k', '--batch-rows', '700', '--workers', '2', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(parseJson<{ rows: number }>(r).rows, 3000);
  const types = await sql(db, `SELECT column_name AS c, data_type AS t FROM information_schema.columns WHERE table_name = 'out' ORDER BY ordinal_position`);
  assert.equal(types.map((t) => `${t.c} ${t.t}`), ['k BIGINT', 'score DOUBLE', 'greeting VARCHAR', 'flipped BOOLEAN', 'twice BIGINT']);
  const [check] = await sql(db, `SELECT count(*)::INT AS n,
      count(*) FILTER (WHERE score = k / 4.0 * 2 + 1 AND greeting = 'hi row ' || k || ' ✓' AND flipped = (k % 3 != 0) AND twice = (k - 1000) * 2)::INT AS right
      FROM out`);
  assert.equal(check, { n: 3000, right: 3000 });
});

test('dataframe model: the column check names a VARCHAR for a number, an INTEGER for a string, a BIGINT for an INT32', async () => {
  const db = join(dir, 'frame-bad.duckdb');
  const r = await pyml(['batch', images.frame, '--query', `SELECT 'x' AS a, 1 AS name, true AS flag, 5::BIGINT AS n`, '--into', 'out', '--db', db, '--json']);
  assert.is(r.code, 1);
  const message = parseJson<{ error: { message: string } }>(r).error.message;
  assert.match(message, /column 'a' is VARCHAR; input 'a' needs FP64 \[-1\], i\.e\. DOUBLE/);
  assert.match(message, /column 'name' is INTEGER; input 'name' needs BYTES \[-1\], i\.e\. VARCHAR/);
  assert.match(message, /column 'n' is BIGINT; input 'n' needs INT32 \[-1\], i\.e\. INTEGER \(BIGINT → INTEGER would lose precision/);
  assert.not.match(message, /'flag'/);
});

test('tensor model with a nested UTINYINT[2][3] input and a BOOLEAN[2] output', async () => {
  const db = join(dir, 'grid.duckdb');
  const query = `SELECT range AS k, [[range % 200, 1, 2], [range % 256, range % 100, 200]]::UTINYINT[3][2] AS img FROM range(5000)`;
  const r = await pyml(['batch', images.grid, '--query', query, '--into', 'out', '--db', db, '--keep', 'k', '--json']);
  assert.is(r.code, 0, r.stderr);
  const types = await sql(db, `SELECT column_name AS c, data_type AS t FROM information_schema.columns WHERE table_name = 'out' ORDER BY ordinal_position`);
  assert.equal(types.map((t) => `${t.c} ${t.t}`), ['k BIGINT', 'total DOUBLE', 'bright BOOLEAN[2]']);
  const [check] = await sql(db, `SELECT count(*)::INT AS n, count(*) FILTER (WHERE
      total = ((k % 200 + 3) / 7 + (k % 256 + k % 100 + 200) / 7)
      AND bright = [k % 200 + 3 > 300, k % 256 + k % 100 + 200 > 300])::INT AS right FROM out`);
  assert.equal(check, { n: 5000, right: 5000 });
  // A nested ARRAY of the wrong inner size is named before any row runs.
  const bad = await pyml(['batch', images.grid, '--query', `SELECT [[1, 2], [3, 4]]::UTINYINT[2][2] AS img`, '--into', 'bad', '--db', db, '--json']);
  assert.is(bad.code, 1);
  assert.match(parseJson<{ error: { message: string } }>(bad).error.message, /column 'img' is UTINYINT\[2\]\[2\]; input 'img' needs UINT8 \[-1, 2, 3\], i\.e\. UTINYINT\[3\]\[2\]/);
});

test.run();
