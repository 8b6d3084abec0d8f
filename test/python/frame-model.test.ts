import { execFileSync } from 'node:child_process';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO, parseJson, pyml } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { type Served, http, startServe } from '../serve/fixtures.ts';

/**
 * A model written in Python with pandas, through @pyml/plugin-python: a pyml.DataFrameModel gets a pandas DataFrame
 * and returns one; the image carries Debian's Python, numpy and pandas. predict, serve (two sidecar workers, so
 * concurrent calls run in parallel) and batch give the same values, bit for bit, as pandas computes them.
 */

const CONFIG = `import { defineConfig } from '@pyml/core';
import python from '@pyml/plugin-python';
export default defineConfig({
  name: 'pandas-score', version: '1.0.0', kind: 'dataframe',
  signature: {
    inputs: [{ name: 'a', dtype: 'FP64', shape: [-1] }, { name: 'n', dtype: 'INT64', shape: [-1] }, { name: 'city', dtype: 'BYTES', shape: [-1] }],
    outputs: [{ name: 'score', dtype: 'FP64', shape: [-1] }, { name: 'rank', dtype: 'INT64', shape: [-1] }, { name: 'label', dtype: 'BYTES', shape: [-1] }],
  },
  weights: ['./weights/offsets.json'],
  plugins: [python({ model: './src/model.py', workers: 2 })],
});
`;

// Real pandas work: a join against a table read from the weights, a grouped transform, string formatting.
const MODEL = `import json, os, time
import numpy as np
import pandas as pd
import pyml

class Score(pyml.DataFrameModel):
    def init(self, ctx):
        with open(ctx.weights_path("offsets.json")) as f:
            self.offsets = pd.DataFrame(json.load(f))

    def predict(self, df):
        if (df["a"] == 999).any():
            time.sleep(8)  # a slow call: concurrent callers must not wait for it
        merged = df.merge(self.offsets, on="city", how="left")
        merged["offset"] = merged["offset"].fillna(0.0)
        score = np.log1p(merged["a"].abs()) * merged["n"] + merged["offset"]
        rank = merged.groupby("city")["a"].rank(method="first").astype("int64")
        label = merged["city"].str.upper() + ":" + score.round(3).astype(str)
        return pd.DataFrame({"score": score, "rank": rank, "label": label, "pid": os.getpid()})
`;

const OFFSETS = { city: ['paris', 'lima', 'oslo'], offset: [0.5, -1.25, 3.0] };

const ROWS = { a: [1.5, -2.25, 10, 0.125, 7], n: [1, 2, 3, 4, 5], city: ['paris', 'lima', 'paris', 'nowhere', 'oslo'] };

/** What pandas itself computes for ROWS (run with the machine's Debian Python and pandas, as the image carries). */
function reference(): { score: number[]; rank: number[]; label: string[] } {
  const script = `import json, sys, numpy as np, pandas as pd
src = ${JSON.stringify(MODEL)}
ns = {}
sys.modules['pyml'] = type(sys)('pyml'); sys.modules['pyml'].DataFrameModel = object
exec(src, ns)
m = ns['Score'](); m.offsets = pd.DataFrame(${JSON.stringify(OFFSETS)})
out = m.predict(pd.DataFrame(${JSON.stringify(ROWS)}))
print(json.dumps({'score': out['score'].tolist(), 'rank': out['rank'].tolist(), 'label': out['label'].tolist()}))`;
  const r = execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
  return JSON.parse(r);
}

let work: string;
let image: string;

test.before(async () => {
  work = await tempDir('pyml-python-frame-');
  const project = join(work, 'project');
  await mkdir(join(project, 'src'), { recursive: true });
  await mkdir(join(project, 'weights'));
  await writeFile(join(project, 'pyml.config.ts'), CONFIG);
  await writeFile(join(project, 'src/model.py'), MODEL);
  await writeFile(join(project, 'weights/offsets.json'), JSON.stringify(OFFSETS));
  await symlink(join(REPO, 'node_modules'), join(project, 'node_modules'));
  image = join(work, 'image');
  const r = await pyml(['build', project, '--out', image, '--json']);
  assert.is(r.code, 0, r.stderr);
});

test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

const request = (rows: typeof ROWS) => ({
  inputs: [
    { name: 'a', datatype: 'FP64', shape: [rows.a.length], data: rows.a },
    { name: 'n', datatype: 'INT64', shape: [rows.n.length], data: rows.n },
    { name: 'city', datatype: 'BYTES', shape: [rows.city.length], data: rows.city },
  ],
});

type Outputs = { name: string; data: (number | string)[] }[];
const byName = (outputs: Outputs) => Object.fromEntries(outputs.map((o) => [o.name, o.data]));

test('pyml predict: the pandas model answers what pandas computes, bit for bit', async () => {
  const input = join(work, 'rows.json');
  await writeFile(input, JSON.stringify(request(ROWS)));
  const r = await pyml(['predict', image, '--input', input, '--json']);
  const got = byName(parseJson<{ outputs: Outputs }>(r).outputs);
  assert.equal(got, reference());
});

test('pyml serve: two workers answer concurrent calls in parallel; a slow call does not hold the other', async () => {
  let served: Served | undefined;
  try {
    served = await startServe([image, '--runner', 'embedded']);
    const base = served.ready.http;
    let slowSettled = false;
    const slow = http(base, '/v2/models/pandas-score/infer', request({ a: [999], n: [1], city: ['oslo'] })).finally(() => { slowSettled = true; });
    const fast = await http(base, '/v2/models/pandas-score/infer', request(ROWS));
    // Ordering, not a time: the fast call is answered while the slow one (8 s in the model) is still running.
    const answeredFirst = !slowSettled;
    assert.is(fast.status, 200, fast.text);
    assert.equal(byName((fast.body as { outputs: Outputs }).outputs), reference());
    assert.is((await slow).status, 200);
    assert.ok(answeredFirst, 'the fast call was answered only after the slow one: it waited for it');
    const pids = new Set([...served.stderr().matchAll(/"msg":"python sidecar ready"[^\n]*"pid":(\d+)/g)].map((m) => m[1]));
    assert.is(pids.size, 2, `two sidecar workers started: ${[...pids].join(', ')}`);
  } finally {
    await served?.stop();
  }
});

test('pyml batch: the same rows from DuckDB give the same values as predict', async () => {
  const db = join(work, 'out.duckdb');
  const values = ROWS.a.map((a, i) => `(${i}, ${a}::DOUBLE, ${ROWS.n[i]}::BIGINT, '${ROWS.city[i]}')`).join(', ');
  const query = `SELECT * FROM (VALUES ${values}) t(id, a, n, city) ORDER BY id`;
  const r = await pyml(['batch', image, '--query', query, '--into', 'scores', '--db', db, '--keep', 'id', '--json']);
  assert.is(r.code, 0, r.stderr);
  const instance = await DuckDBInstance.create(db);
  const connection = await instance.connect();
  try {
    const rows = (await connection.runAndReadAll('SELECT * FROM scores ORDER BY id')).getRowObjectsJS() as Record<string, unknown>[];
    const want = reference();
    assert.equal(rows.map((row) => row.score), want.score);
    assert.equal(rows.map((row) => Number(row.rank)), want.rank);
    assert.equal(rows.map((row) => row.label), want.label);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
});

test.run();
