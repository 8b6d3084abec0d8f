#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tensors } from '@pyml/contract';
import { AdaptiveBatcher } from './batcher.ts';
import { InitError, InvalidInputError, ModelError, describeError } from './errors.ts';
import { DEFAULT_GRPC, DEFAULT_HTTP, addressFromEnv, checkHealth } from './health.ts';
import { createLogger } from './logger.ts';
import { ModelHost, readManifest } from './model-host.ts';
import { formatJsonResponse, parseJsonRequest } from './oip/json.ts';
import { FrameServer } from './frame-server.ts';
import { ModelHttpServer } from './http-server.ts';
import { InferenceServer } from './server.ts';
import { keepYoungGenerationSmall } from './young-generation.ts';

/**
 * The image's entrypoint: `node /opt/pyml/runtime/entrypoint.mjs <command>`.
 * Exit codes: 0 done, 1 a prediction or batch failed, 2 bad usage, 3 the model could not start.
 */

const USAGE = `usage: entrypoint <command> [options]
  serve    --socket PATH [--tcp HOST:PORT] [--http HOST:PORT] [--default-ports] [--max-message-bytes N]
                                       Open Inference Protocol server: gRPC on the socket (and on TCP with --tcp),
                                       V2 REST over HTTP/1.1 with --http (port 0: any free port); --default-ports
                                       (the image's default command) adds REST on $PYML_HTTP (default ${DEFAULT_HTTP})
                                       and gRPC on $PYML_GRPC (default ${DEFAULT_GRPC}) where --http/--tcp are not
                                       given; 'off' turns one off
  health                               exit 0 if GET /v2/health/ready on $PYML_HTTP (default ${DEFAULT_HTTP},
                                       wildcard = loopback) answers 200, else 1 (the image's health check)
  predict  --input FILE|- [--json]     one V2 JSON request in, the V2 JSON response out (--json: one line)
  batch                                Arrow IPC stream on stdin → Arrow IPC stream on stdout
  describe                             print pyml.json
env: PYML_ROOT (default: the directory above runtime/), PYML_MAX_MESSAGE_BYTES, PYML_FRAME_SOCKET (pyml serve's framed
     protocol on this Unix socket, beside gRPC), PYML_RECEIVE_TIMEOUT_MS, PYML_DRAIN_TIMEOUT_MS, PYML_LOG_LEVEL`;

const EXIT = { ok: 0, failed: 1, usage: 2, init: 3 } as const;

class UsageError extends Error {}

/** The pyml root: PYML_ROOT, or the parent of the directory holding this file (/opt/pyml/runtime → /opt/pyml). */
export function pymlRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.PYML_ROOT ?? dirname(dirname(fileURLToPath(import.meta.url))));
}

/** `--name value` / `--name=value` / `--flag` parsing, nothing more. */
function parseFlags(args: string[], known: Record<string, 'string' | 'boolean'>): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument '${arg}'`);
    const [key, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const kind = known[key];
    if (!kind) throw new UsageError(`unknown option --${key}`);
    if (kind === 'boolean') out[key] = true;
    else {
      const value = inline ?? args[++i];
      if (value === undefined) throw new UsageError(`--${key} needs a value`);
      out[key] = value;
    }
  }
  return out;
}

function positiveInt(value: string | boolean | undefined, what: string): number | undefined {
  if (value === undefined || value === false) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${what} must be a positive integer, got ${String(value)}`);
  return n;
}

async function readInput(path: string): Promise<string> {
  if (path !== '-') return readFileSync(path, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function predictCommand(args: string[]): Promise<number> {
  const flags = parseFlags(args, { input: 'string', json: 'boolean' });
  if (typeof flags.input !== 'string') throw new UsageError('predict needs --input FILE (or - for stdin)');
  const text = await readInput(flags.input);
  const host = await ModelHost.load({ root: pymlRoot() });
  try {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new InvalidInputError(`request is not JSON: ${(error as Error).message}`);
    }
    const req = parseJsonRequest(body);
    const inputs: Tensors = {};
    for (const t of req.inputs) {
      if (Object.hasOwn(inputs, t.name)) throw new InvalidInputError(`input '${t.name}' is given twice`, t.name);
      inputs[t.name] = t.tensor;
    }
    for (const name of req.outputs) {
      if (!host.signature.outputs.some((s) => s.name === name)) throw new InvalidInputError(`unknown requested output '${name}'`, name);
    }
    const outputs = await host.predict(inputs);
    const names = req.outputs.length ? req.outputs : host.signature.outputs.map((s) => s.name);
    const response = formatJsonResponse(
      { modelName: host.name, modelVersion: host.version, id: req.id, outputs: names.map((name) => ({ name, tensor: outputs[name] })) },
      flags.json ? undefined : 2,
    );
    process.stdout.write(`${response}\n`);
    return EXIT.ok;
  } finally {
    await host.close();
  }
}

/** `HOST:PORT` (`[::]:8080` for IPv6) into its parts; port 0 asks for any free port. */
function hostPort(value: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`${what} must be HOST:PORT (e.g. 0.0.0.0:8080, [::]:8080, 127.0.0.1:0), got '${value}'`);
  return { host: m[1] ?? m[2], port };
}

async function serveCommand(args: string[]): Promise<number> {
  keepYoungGenerationSmall();
  const flags = parseFlags(args, { socket: 'string', tcp: 'string', http: 'string', 'default-ports': 'boolean', 'max-message-bytes': 'string' });
  // Explicit flags win; PYML_HTTP/PYML_GRPC are read only under --default-ports (see health.ts: addressFromEnv).
  const defaults = flags['default-ports'] === true;
  const tcp = typeof flags.tcp === 'string' ? flags.tcp : defaults ? addressFromEnv(process.env.PYML_GRPC, DEFAULT_GRPC) : undefined;
  if (tcp !== undefined) hostPort(tcp, typeof flags.tcp === 'string' ? '--tcp' : 'PYML_GRPC');
  const httpFlag = typeof flags.http === 'string' ? flags.http : defaults ? addressFromEnv(process.env.PYML_HTTP, DEFAULT_HTTP) : undefined;
  const httpAddress = httpFlag !== undefined ? hostPort(httpFlag, typeof flags.http === 'string' ? '--http' : 'PYML_HTTP') : undefined;
  const manifest = readManifest(pymlRoot());
  const socket = typeof flags.socket === 'string' ? flags.socket : manifest.entrypoint?.socket;
  if (!socket) throw new UsageError('serve needs --socket PATH');
  const maxMessageBytes = positiveInt(flags['max-message-bytes'], '--max-message-bytes')
    ?? positiveInt(process.env.PYML_MAX_MESSAGE_BYTES, 'PYML_MAX_MESSAGE_BYTES') ?? 64 * 1024 * 1024;
  const drainMs = positiveInt(process.env.PYML_DRAIN_TIMEOUT_MS, 'PYML_DRAIN_TIMEOUT_MS') ?? 30_000;
  const logger = createLogger({ model: manifest.name });

  // Listen first so liveness answers while init runs; readiness follows init.
  // A request that has not arrived by then gets DEADLINE_EXCEEDED (pyml serve always sends a deadline; others may not).
  const receiveTimeoutMs = positiveInt(process.env.PYML_RECEIVE_TIMEOUT_MS, 'PYML_RECEIVE_TIMEOUT_MS') ?? 30_000;
  const server = new InferenceServer({ logger, maxMessageBytes, receiveTimeoutMs });
  const { tcpPort } = await server.listen(resolve(socket), tcp);
  // REST beside gRPC, in this process: one hop where a client talks to the image directly.
  const http = httpAddress ? new ModelHttpServer({ logger, maxMessageBytes, receiveTimeoutMs }) : undefined;
  const httpPort = http && httpAddress ? await http.listen(httpAddress.host, httpAddress.port) : undefined;
  // pyml serve's cheap hop to this process (oip/frames.ts), when it asks for one; the gRPC socket stays for others.
  const frameSocket = process.env.PYML_FRAME_SOCKET ? resolve(process.env.PYML_FRAME_SOCKET) : undefined;
  const frames = frameSocket ? new FrameServer({ logger, maxMessageBytes, grpc: server }) : undefined;
  if (frames && frameSocket) await frames.listen(frameSocket);
  // A stop request during init has nothing to drain.
  const stopEarly = () => { server.forceShutdown(); http?.forceShutdown(); frames?.forceShutdown(); process.exit(EXIT.ok); };
  process.once('SIGTERM', stopEarly).once('SIGINT', stopEarly);
  // Started by `pyml serve` with a lifeline: stdin is a pipe from it, and its end (the parent died, even by SIGKILL)
  // stops this server like SIGTERM would, instead of leaving an orphan serving on a socket nobody routes to.
  const lifeline = process.env.PYML_LIFELINE_STDIN === '1';
  // A parent that went away leaves stdout and stderr broken (EPIPE): nothing can be told there any more, and an
  // unhandled stream error would go round through the uncaught-exception logger, which writes to stderr again.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  if (lifeline) process.stdin.once('end', stopEarly).resume();
  const host = await ModelHost.load({ root: pymlRoot(), logger });
  process.off('SIGTERM', stopEarly).off('SIGINT', stopEarly);
  if (lifeline) process.stdin.off('end', stopEarly);
  const predictor = AdaptiveBatcher.for(host);
  server.attach(host, predictor);
  http?.attach(host, predictor);
  frames?.attach(host, predictor);
  const httpBound = httpFlag !== undefined && httpPort !== undefined ? httpFlag.replace(/:\d+$/, `:${httpPort}`) : undefined;
  logger.info('serving', { socket: resolve(socket), tcp, http: httpBound, frames: frameSocket, batching: predictor instanceof AdaptiveBatcher ? predictor.options : false });

  // A model that throws outside predict (a stray timer, a rejected promise) must not take the server down.
  process.on('uncaughtException', (error) => logger.error('uncaught exception', { error: describeError(error) }));
  process.on('unhandledRejection', (error) => logger.error('unhandled rejection', { error: describeError(error) }));

  const stopped = new Promise<number>((resolveStop) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info('draining', { signal });
      // Both servers drain at once: in-flight calls on either finish, within one grace period.
      const drained = await Promise.all([server.drain(drainMs), http?.drain(drainMs) ?? true, frames?.drain(drainMs) ?? true]);
      const clean = drained.every(Boolean);
      if (!clean) logger.warn('drain timed out; in-flight requests were cut', { graceMs: drainMs });
      await host.close();
      resolveStop(clean ? EXIT.ok : EXIT.failed);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    if (lifeline) process.stdin.once('end', () => void stop('stdin closed: parent gone'));
  });
  process.stdout.write(`${JSON.stringify({ ready: true, socket: resolve(socket), ...(tcp ? { tcp: tcpPort !== undefined ? tcp.replace(/:\d+$/, `:${tcpPort}`) : tcp } : {}), ...(httpBound ? { http: httpBound } : {}), ...(frameSocket ? { frames: frameSocket } : {}), pid: process.pid })}\n`);
  return stopped;
}

async function batchCommand(args: string[]): Promise<number> {
  parseFlags(args, {});
  // Loaded here: Arrow's IPC reader and writer are for batch only, never evaluated by a server.
  const { BatchError, predictArrowStream } = await import('./batch-stream.ts');
  const host = await ModelHost.load({ root: pymlRoot() });
  try {
    const { batches, rows } = await predictArrowStream(host, process.stdin, process.stdout);
    host.logger.info('batch done', { batches, rows });
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof BatchError)) throw error;
    const cause = error.cause as { tensor?: string };
    const line = { error: describeError(error.cause), batch: error.batch, ...(cause?.tensor ? { tensor: cause.tensor } : {}) };
    process.stderr.write(`${JSON.stringify(line)}\n`);
    return EXIT.failed;
  } finally {
    await host.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'serve': return await serveCommand(args);
      case 'predict': return await predictCommand(args);
      case 'batch': return await batchCommand(args);
      case 'health': {
        parseFlags(args, {});
        const socket = readManifest(pymlRoot()).entrypoint?.socket ?? '/run/pyml/model.sock';
        const { healthy, detail } = await checkHealth({ env: process.env, socket });
        (healthy ? process.stdout : process.stderr).write(`${healthy ? 'healthy' : 'unhealthy'}: ${detail}\n`);
        return healthy ? EXIT.ok : EXIT.failed;
      }
      case 'describe':
        parseFlags(args, {});
        process.stdout.write(`${JSON.stringify(readManifest(pymlRoot()), null, 2)}\n`);
        return EXIT.ok;
      case undefined: case 'help': case '--help': case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`error: ${error.message}\n${USAGE}\n`);
      return EXIT.usage;
    }
    if (error instanceof InitError) {
      process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'model failed to start', error: describeError(error) })}\n`);
      return EXIT.init;
    }
    const label = error instanceof InvalidInputError ? 'invalid input' : error instanceof ModelError ? 'model error' : 'error';
    process.stderr.write(`${label}: ${describeError(error)}\n`);
    return EXIT.failed;
  }
}

// Flush stdout before exiting: batch output and the predict response may still be queued on a pipe.
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  if (process.stdout.writableLength === 0) process.exit(code);
  else process.stdout.once('drain', () => process.exit(code));
});
