import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { entrypointCommand, unpackImage, type UnpackedImage } from '@pyml/launcher';
import { pyml, testEnv } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { type V2Client, v2Client } from '../runtime/v2-client.ts';
import { IRIS_COLUMNS, buildIris, sql, writeIrisData } from './fixtures.ts';

/**
 * Online and offline give the same bytes: the image's entrypoint serves gRPC on a Unix socket, a stock V2 client
 * (proto-loader) sends the rows with raw contents, and `pyml batch` runs the same rows from Parquet.
 */

const ROWS = 3000;
let dir = '';
let image = '';
let server: ChildProcess | undefined;
let client: V2Client | undefined;

test.before(async () => {
  Object.assign(process.env, testEnv());
  image = await buildIris();
  dir = await tempDir('pyml-batch-eq-');
  await writeIrisData(dir, ROWS);
});

test.after(async () => {
  client?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
});

/** Starts the image's own entrypoint (its node, its runtime) in `serve` mode and waits for its ready line. */
async function serve(unpacked: UnpackedImage, socket: string): Promise<ChildProcess> {
  const cmd = entrypointCommand(unpacked, ['serve', '--socket', socket]);
  const child = spawn(cmd.file, cmd.args, { env: cmd.env, cwd: cmd.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code} before ready:\n${err}`)));
  });
  return child;
}

test('ModelInfer (raw contents) and pyml batch give bitwise-identical outputs for the same rows', async () => {
  const db = join(dir, 'out.duckdb');
  const r = await pyml(['batch', image, '--query', `SELECT id, ${IRIS_COLUMNS.join(', ')} FROM read_parquet('${join(dir, 'iris.parquet')}')`,
    '--into', 'scores', '--db', db, '--keep', 'id', '--workers', '2', '--batch-rows', '1024', '--json']);
  assert.is(r.code, 0, r.stderr);

  const unpacked = await unpackImage(image);
  const socket = join(dir, 'model.sock');
  server = await serve(unpacked, socket);
  client = v2Client(socket);

  // The inputs exactly as stored (FLOAT), in id order.
  const rows = await sql(undefined, `SELECT ${IRIS_COLUMNS.join(', ')} FROM read_parquet('${join(dir, 'iris.parquet')}') ORDER BY id`);
  const input = new Float32Array(ROWS * 4);
  rows.forEach((row, i) => IRIS_COLUMNS.forEach((c, j) => { input[i * 4 + j] = row[c] as number; }));

  // Online, in requests of 1024 rows (the batch size above), so both sides run the model on the same batches.
  const onlineProbabilities: Buffer[] = [];
  const onlineLabels: Buffer[] = [];
  for (let start = 0; start < ROWS; start += 1024) {
    const n = Math.min(1024, ROWS - start);
    const response = await client.call('ModelInfer', {
      model_name: 'iris',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [n, 4] }],
      raw_input_contents: [Buffer.from(input.buffer, start * 16, n * 16)],
    });
    const names = (response.outputs as { name: string }[]).map((o) => o.name);
    onlineProbabilities.push(response.raw_output_contents[names.indexOf('probabilities')] as Buffer);
    onlineLabels.push(response.raw_output_contents[names.indexOf('label')] as Buffer);
  }

  // Offline, read back from the table in id order; FLOAT → JS number → Float32 is exact, so these are the stored bits.
  const stored = await sql(db, 'SELECT probabilities, label FROM scores ORDER BY id');
  assert.is(stored.length, ROWS);
  const offlineProbabilities = Float32Array.from(stored.flatMap((s) => s.probabilities as number[]));
  const offlineLabels = BigInt64Array.from(stored.map((s) => BigInt(s.label as bigint | number)));

  const online = Buffer.concat(onlineProbabilities);
  assert.is(online.length, ROWS * 3 * 4);
  assert.ok(online.equals(Buffer.from(offlineProbabilities.buffer)), 'probabilities are bitwise identical');
  assert.ok(Buffer.concat(onlineLabels).equals(Buffer.from(offlineLabels.buffer)), 'labels are identical');
  // Not trivially equal: the model tells the rows apart.
  assert.ok(new Set(offlineLabels).size === 3);
});

test.run();
