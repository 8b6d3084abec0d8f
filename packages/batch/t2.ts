import { runBatch } from './src/index.ts';
const t0 = performance.now();
let peak = 0; let phase = 'start'; const peaks: Record<string, number> = {};
setInterval(() => { const r = process.memoryUsage().rss; peaks[phase] = Math.max(peaks[phase] ?? 0, r); }, 50).unref();
const mu = () => { const m = process.memoryUsage(); return `rss ${(m.rss/1e6).toFixed(0)} heap ${(m.heapUsed/1e6).toFixed(0)} ext ${(m.external/1e6).toFixed(0)} ab ${(m.arrayBuffers/1e6).toFixed(0)}`; };
const r = await runBatch({ image: '/tmp/bt-iris', query: `SELECT id, sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${process.env.F}')`, target: { kind: 'table', db: '/tmp/bt/w3.duckdb', table: 'predictions' }, keep: ['id'], workers: 2, memoryLimit: process.env.ML, onStep: (m) => { console.log((performance.now()-t0).toFixed(0), m, mu()); phase = m.split(' ')[0]; }, onProgress: (p) => { if (p.rows % 1000000 < 70000) console.log('  ', p.rows, mu()); } });
console.log(r.timings, mu(), Object.fromEntries(Object.entries(peaks).map(([k, v]) => [k, (v/1e6).toFixed(0)])));
