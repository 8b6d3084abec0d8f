import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { REPO, pyml } from '../helpers/cli.ts';
import { buildImages } from './fixtures.ts';

/**
 * Versions of the echo model (fixtures.ts: x FP32 [-1,2] → y = x, sleeping max(x[:,1]) ms), each a real image built
 * with `pyml build` from the same project with only `version` changed: the response's model_version tells which
 * version answered.
 */
export async function buildEchoVersions(versions: string[], doubled: string[] = []): Promise<{ dir: string; images: Record<string, string>; cleanup(): Promise<void> }> {
  const built = await buildImages(['echo']);
  const project = join(built.dir, 'echo-project');
  const config = await readFile(join(project, 'pyml.config.ts'), 'utf8');
  const model = await readFile(join(project, 'src/model.ts'), 'utf8');
  const images: Record<string, string> = {};
  // `doubled` versions are other code under the same version (y = 2x): another digest, told apart by their answers.
  for (const [version, edited] of [...versions.map((v) => [v, false] as const), ...doubled.map((v) => [v, true] as const)]) {
    await writeFile(join(project, 'pyml.config.ts'), config.replace("version: '0.1.0'", `version: '${version}'`));
    await writeFile(join(project, 'src/model.ts'), edited ? model.replace('Float32Array.from(data)', 'Float32Array.from(data, (v) => v * 2)') : model);
    const out = join(built.dir, `echo-v${version}${edited ? '-doubled' : ''}`);
    const r = await pyml(['build', project, '--out', out, '--tar', `${out}.tar`, '--json']);
    if (r.code !== 0) throw new Error(`pyml build of echo version ${version} failed (${r.code}): ${r.stderr}`);
    images[edited ? `${version}-doubled` : version] = out;
  }
  return { dir: built.dir, images, cleanup: built.cleanup };
}

/** A REST echo request body: one row [value, delayMs]. */
export function echoJson(value: number, delayMs = 0): string {
  return JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [value, delayMs] }] });
}

/** POSTs a REST infer; the status, the answering version (or the error). */
export async function inferRest(base: string, path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; version?: string; error?: string }> {
  const res = await fetch(`http://${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const parsed = await res.json() as { model_version?: string; error?: string };
  return { status: res.status, version: parsed.model_version, error: parsed.error };
}

/** Runs `n` calls of `one` with `concurrency` at a time; their results in order. */
export async function runConcurrently<T>(n: number, concurrency: number, one: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      results[i] = await one(i);
    }
  }));
  return results;
}

/** A stock V2 gRPC client (proto-loader) whose ModelInfer sends a `pyml-routing-key` metadata entry; the answering version. */
export function keyedClient(address: string): { infer(key: string): Promise<string>; close(): void } {
  const definition = protoLoader.loadSync(join(REPO, 'proto/grpc_predict_v2.proto'), { keepCase: true, defaults: true });
  const Service = (grpc.loadPackageDefinition(definition) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } }).inference.GRPCInferenceService;
  const client = new Service(address, grpc.credentials.createInsecure());
  const request = { model_name: 'echo', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [1, 0] } }] };
  return {
    infer: (key) => new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      metadata.set('pyml-routing-key', key);
      (client as unknown as Record<string, (r: unknown, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: { model_version: string }) => void) => void>)
        .ModelInfer(request, metadata, (e, r) => (e ? reject(e) : resolve(r.model_version)));
    }),
    close: () => client.close(),
  };
}
