import { parseCommandArgs } from '../args.ts';
import { EXIT } from '@pyml/errors';
import { createLogger } from '@pyml/runtime/logger';
import { EmbeddedRunner, type ModelRunner, PredictionService, SupervisedModel, parseSplit, parseVersionPolicies } from '@pyml/serve';
import { localImagePaths } from '../local-images.ts';
import { projectConfigIn } from '../check-image.ts';
import { usage } from '../output.ts';
import { applyMaxUnpackedBytes, maxUnpackedHelp, maxUnpackedOption } from '../max-unpacked-option.ts';

export const help = `Usage: pyml serve REF... [options]
       pyml serve PROJECT [--watch] [options]

Serves images over the Open Inference Protocol (KServe V2): gRPC (inference.GRPCInferenceService, grpc.health.v1)
and REST/JSON (/v2/health/live, /v2/health/ready, /v2/models/NAME, /v2/models/NAME/ready, /v2/models/NAME/infer),
plus Prometheus metrics at /metrics, a console at / (models, signatures, a try-it form, live charts) and OpenAPI
3.1 documents (/v2/docs/openapi.json, /v2/models/NAME/docs/openapi.json) on the HTTP port. Each image runs as its
own supervised process (restarted with backoff if it dies), serving on a Unix socket in a private directory;
requests are routed by model name.
By default a model's process starts on demand: at the first call for it, which waits for the start (a failed
start fails the waiting calls with the init error). REF is an OCI image layout directory, an image tarball,
NAME@VERSION (or NAME:VERSION) of an image pyml images lists (pyml serve iris@1 iris@2: two versions), a
registry image (HOST[:PORT]/REPO:TAG, pulled into $PYML_CACHE_DIR/pulled; blobs the cache holds are not
downloaded again) or an engine's image (docker-daemon:NAME:TAG, via DOCKER_HOST); the model name is the one in
the image. A model project directory (pyml.config.ts) is built first (through the cache, as pyml build does);
with --watch it is rebuilt on every change and the new model swapped in: the running one serves until the new
one is ready, then finishes its calls and stops; a failed build or start is logged and the old model stays.

Options:
  --watch                     rebuild PROJECT directories on change and swap the new model in
  --grpc HOST:PORT            gRPC address (default 127.0.0.1:8001; port 0 picks a free port; or unix:/PATH)
  --http HOST:PORT            HTTP address (default 127.0.0.1:8000)
  --socket-dir DIR            where model sockets go (made 0700; default a fresh temp dir)
  --runner embedded|docker    embedded (default): the image's own node on the unpacked image, as a child process;
                              docker: a container through a Docker engine (DOCKER_HOST or /var/run/docker.sock)
  --model NAME=unix:///PATH   also route NAME to a model server started elsewhere (e.g. another container of
                              the pod); watched for readiness, not started. Repeatable. NAME@VERSION=unix:///PATH
                              names its version, so several versions of NAME can be served side by side
  --max-batch-size N          adaptive batching: merge concurrent requests up to N rows into one call to the
                              model's process, done by the service (1: off; default: the image's
                              serving.maxBatchSize); pyml_batch_rows on /metrics shows the batches
  --max-batch-delay-ms MS     longest a request waits for others to batch with (default: the image's, else 2)
  --max-concurrency N         requests in flight per model; more fail with RESOURCE_EXHAUSTED (default 64)
  --max-message-bytes N       largest request or response (default 67108864)
  --deadline-ms N             longest a request may take; callers' shorter deadlines win (default 30000)
  --start-timeout-ms N        longest a model may take to start, init included (default 120000)
  --start on-demand|eager     on-demand (default): start a model at its first call (it counts as ready while
                              idle); eager: start every model now, and print the ready line once all settled
  --idle-timeout-s N          on demand: stop a model no call used for N seconds; its next call starts it again
                              (default 0: keep it running)
  --version-policy POLICY     which version answers a request naming none: latest (default: the highest version,
                              numeric parts compared as numbers), pinned=VERSION, or for one model
                              NAME:latest / NAME:pinned=VERSION. Repeatable
  --split NAME=V:W,V:W...     canary: model NAME's unversioned requests shared between versions by weight (e.g.
                              iris=1:90,2:10). A request's pyml-routing-key header (gRPC: metadata) keeps one caller
                              on one version; without it each request draws. Repeatable, one per model
  --repository DIR            a model repository: each image layout, *.tar and *.ref (a file holding a registry
                              reference, pulled again at each poll: a moved tag brings its new image) in DIR is
                              a version of its model (names starting with '.' skipped: copy in under one, then
                              rename), loaded at start;
                              POST /v2/repository/index, /v2/repository/models/NAME/load and .../unload (gRPC
                              RepositoryIndex, RepositoryModelLoad, RepositoryModelUnload) manage it while serving
  --poll-s N                  with --repository: every N seconds, start added or changed images beside what
                              serves and retire removed ones once their calls end (default 0: on load requests)
  --json                      print the ready line as JSON
  --log-format json|text      logs on stderr as JSON lines (default) or text lines (TIME LEVEL msg key=value);
                              the models' processes log the same way (also PYML_LOG_FORMAT)
  --access-log on|off         a log line per request answered: protocol, request, status, ms (default on)
  --no-console                leave out the console at / and the OpenAPI documents (the V2 routes and
                              /metrics stay)
${maxUnpackedHelp(30)}
  -h, --help                  show this help

Examples:
  pyml serve /tmp/iris --grpc 127.0.0.1:8001 --http 127.0.0.1:8000
  pyml serve /tmp/iris /tmp/wine --idle-timeout-s 600      # many models; unused ones give their memory back
  pyml serve /tmp/iris --start eager                       # warm before the first call
  pyml serve examples/onnx-iris --watch                    # the dev loop: edit, save, call
  curl -s localhost:8000/v2/models/iris/infer -d '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}'
`;

function positive(value: string | undefined, flag: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw usage(`${flag} must be an integer ≥ ${min}, got '${value}'`);
  return n;
}

/** --version-policy and --split, their mistakes as usage errors. */
function versionRouting(policies: string[], splits: string[]): { versionPolicies: ReturnType<typeof parseVersionPolicies>; splits: ReturnType<typeof parseSplit>[] } {
  try {
    const parsed = splits.map(parseSplit);
    const twice = parsed.find((s, i) => parsed.findIndex((o) => o.model === s.model) !== i);
    if (twice) throw new Error(`--split is given twice for model '${twice.model}'`);
    return { versionPolicies: parseVersionPolicies(policies), splits: parsed };
  } catch (error) {
    throw usage((error as Error).message);
  }
}

function parseModel(spec: string): { name: string; version?: string; socket: string } {
  const m = /^([^=@]+)(?:@([^=]+))?=unix:\/\/(\/.+)$/.exec(spec);
  if (!m) throw usage(`--model must be NAME=unix:///path/to/model.sock or NAME@VERSION=unix:///path/to/model.sock, got '${spec}'`);
  return { name: m[1], ...(m[2] ? { version: m[2] } : {}), socket: m[3] };
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('serve', {
    args, allowPositionals: true,
    options: {
      grpc: { type: 'string', default: '127.0.0.1:8001' },
      http: { type: 'string', default: '127.0.0.1:8000' },
      'socket-dir': { type: 'string' },
      runner: { type: 'string', default: 'embedded' },
      model: { type: 'string', multiple: true, default: [] },
      'max-batch-size': { type: 'string' },
      'max-batch-delay-ms': { type: 'string' },
      'max-concurrency': { type: 'string', default: '64' },
      'max-message-bytes': { type: 'string', default: String(64 * 1024 * 1024) },
      'deadline-ms': { type: 'string', default: '30000' },
      'start-timeout-ms': { type: 'string', default: '120000' },
      start: { type: 'string', default: 'on-demand' },
      ...maxUnpackedOption,
      'idle-timeout-s': { type: 'string', default: '0' },
      'version-policy': { type: 'string', multiple: true, default: [] },
      split: { type: 'string', multiple: true, default: [] },
      repository: { type: 'string' },
      'poll-s': { type: 'string', default: '0' },
      json: { type: 'boolean', default: false },
      watch: { type: 'boolean', default: false },
      'log-format': { type: 'string' },
      'access-log': { type: 'string', default: 'on' },
      'no-console': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  applyMaxUnpackedBytes(values['max-unpacked-bytes']);
  const external = (values.model ?? []).map(parseModel);
  if (positionals.length === 0 && external.length === 0 && !values.repository) throw usage('usage: pyml serve REF... [--grpc HOST:PORT] [--http HOST:PORT] (or --repository DIR)');
  const routing = versionRouting(values['version-policy']!, values.split!);
  if (values['poll-s'] !== '0' && !values.repository) throw usage('--poll-s needs --repository DIR: it polls the repository');
  let runner: ModelRunner;
  if (values.runner === 'embedded') runner = new EmbeddedRunner();
  else if (values.runner === 'docker') runner = new (await loadDockerRunner()).DockerRunner();
  else throw usage(`--runner must be embedded or docker, got '${values.runner}'`);

  for (const [flag, value] of [['--grpc', values.grpc], ['--http', values.http]] as const) {
    const ok = !value || /^.*:\d{1,5}$/.test(value) || (flag === '--grpc' && /^unix:\/./.test(value));
    if (!ok) throw usage(`${flag} must be HOST:PORT${flag === '--grpc' ? ' or unix:/PATH' : ''}, got '${value}'`);
  }
  const start = values.start;
  if (start !== 'on-demand' && start !== 'eager') throw usage(`--start must be on-demand or eager, got '${start}'`);
  if (start === 'eager' && values['idle-timeout-s'] !== '0') throw usage('--idle-timeout-s needs --start on-demand: eager models are kept running');
  const logFormat = values['log-format'] ?? process.env.PYML_LOG_FORMAT ?? 'json';
  if (logFormat !== 'json' && logFormat !== 'text') throw usage(`--log-format must be json or text, got '${logFormat}'`);
  const accessLog = values['access-log'];
  if (accessLog !== 'on' && accessLog !== 'off') throw usage(`--access-log must be on or off, got '${accessLog}'`);
  // In the environment, so the model processes this service starts log in the same format.
  process.env.PYML_LOG_FORMAT = logFormat;
  const logger = createLogger({ component: 'serve' });
  const projects = await builtProjects(positionals, values.json!);
  if (values.watch && projects.size === 0) throw usage('--watch rebuilds model projects: give a project directory (holding pyml.config.ts), not an image');
  const images = await localImagePaths(positionals.map((ref) => projects.get(ref)?.layout ?? ref), { json: values.json!, told: (m) => logger.info(m) });
  const service = await PredictionService.start({
    images, external, runner, logger, accessLog: accessLog === 'on', console: !values['no-console'],
    grpc: values.grpc || undefined, http: values.http || undefined, socketDir: values['socket-dir'],
    maxBatchSize: positive(values['max-batch-size'], '--max-batch-size'),
    maxBatchDelayMs: positive(values['max-batch-delay-ms'], '--max-batch-delay-ms', 0),
    maxConcurrency: positive(values['max-concurrency'], '--max-concurrency')!,
    maxMessageBytes: positive(values['max-message-bytes'], '--max-message-bytes')!,
    deadlineMs: positive(values['deadline-ms'], '--deadline-ms')!,
    startTimeoutMs: positive(values['start-timeout-ms'], '--start-timeout-ms')!,
    start, idleTimeoutMs: positive(values['idle-timeout-s'], '--idle-timeout-s', 0)! * 1000,
    ...routing, repository: values.repository, pollMs: positive(values['poll-s'], '--poll-s', 0)! * 1000,
    // A repository's *.ref entries are pulled as REF arguments are (into the cache, only the blobs it lacks).
    pullRef: async (ref) => (await localImagePaths([ref], { json: true, told: (m) => logger.info(m) }))[0],
  });
  const models = service.router.entries.map(({ endpoint: e, version }) => ({ name: e.name, version, state: e.state, source: e.source, ...(e instanceof SupervisedModel && e.pid ? { pid: e.pid } : {}), ...(e.error ? { error: e.error } : {}) }));
  const ready = { ready: true, pid: process.pid, grpc: service.addresses.grpc, http: service.addresses.http, socketDir: service.addresses.socketDir, models };
  if (values.json) process.stdout.write(`${JSON.stringify(ready)}\n`);
  else {
    process.stdout.write(`serving${ready.grpc ? `  gRPC ${ready.grpc}` : ''}${ready.http ? `  HTTP http://${ready.http}` : ''}\n`);
    if (ready.http && !values['no-console']) process.stdout.write(`console  http://${ready.http}/\n`);
    for (const m of models) process.stdout.write(`  ${m.name.padEnd(20)} ${m.state.padEnd(8)} ${m.source}${m.error ? `\n    error: ${m.error}` : ''}\n`);
  }
  const watcher = values.watch ? (await loadDevLoop()).watchProjects([...projects].map(([dir, built]) => ({ dir, digest: built.digest })), { service, logger, json: values.json! }) : undefined;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      watcher?.close();
      logger.info('stopping', { signal });
      void service.stop().then(() => resolve(EXIT.ok), (error: unknown) => {
        logger.error('stop failed', { error: (error as Error).message });
        resolve(EXIT.failure);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/** The project directories among `refs`, each built (its layout and digest by directory). */
async function builtProjects(refs: string[], json: boolean): Promise<Map<string, { layout: string; digest: string }>> {
  const built = new Map<string, { layout: string; digest: string }>();
  for (const ref of refs) {
    if (built.has(ref) || !(await projectConfigIn(ref))) continue;
    built.set(ref, await (await loadDevLoop()).buildProject(ref, { json }));
  }
  return built;
}

/**
 * The builder's side of serve (dev-loop.ts), loaded by a computed path so that the pyml-serve image's bundle, which
 * serves images only, does not take in the builder.
 */
async function loadDevLoop(): Promise<typeof import('../dev-loop.ts')> {
  const file = new URL(import.meta.url.endsWith('.ts') ? '../dev-loop.ts' : '../dev-loop.js', import.meta.url).href;
  try {
    return (await import(file)) as typeof import('../dev-loop.ts');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw usage('this pyml serve serves images only (it has no builder): build the project with pyml build and serve its image');
  }
}

/** The Docker runner, loaded only when asked for: it needs dockerode, which the pyml-serve image does not ship. */
async function loadDockerRunner(): Promise<typeof import('@pyml/serve/docker-runner')> {
  try {
    return await import('@pyml/serve/docker-runner');
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code !== 'ERR_MODULE_NOT_FOUND' || !e.message.includes('dockerode')) throw error;
    throw usage('--runner docker needs the Docker engine client (dockerode), which this pyml does not have (the pyml-serve image runs its models as containers of its pod): give models as --model NAME=unix:///path.sock, or run them embedded');
  }
}
