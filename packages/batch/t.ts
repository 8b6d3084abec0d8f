import { runBatch } from './src/index.ts';
const t0 = performance.now();
const r = await runBatch({ image: '/tmp/bt-iris', query: "SELECT id, sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('/work/main/bench/.work/batch/rows-10000000.parquet')", target: { kind: 'table', db: '/tmp/bt/w2.duckdb', table: 'predictions' }, keep: ['id'], workers: 2, memoryLimit: process.env.ML, onStep: (m) => console.log((performance.now()-t0).toFixed(0), m) });
console.log((performance.now()-t0).toFixed(0), r);
