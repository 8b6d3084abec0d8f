import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { Service } from 'kubernetes-models/v1/Service';
import type { ModelImage } from './model-image.ts';
import { FRONT_DEFAULT, mergeResources, modelDefault, type ResourcesFile } from './resources.ts';

export type Layout = 'pod' | 'per-model';

export interface DeployOptions {
  /** Base name of every object; per-model objects are NAME-MODEL. */
  name: string;
  namespace?: string;
  /** The `pyml serve` front's image, pinned by digest; it must have `pyml` on PATH (and `node`, for the init step). */
  serveImage: string;
  layout: Layout;
  /** The autoscaler's floor (and the Deployment's starting size). */
  replicas: number;
  maxReplicas: number;
  /** Average CPU use, as a percentage of the requests, the autoscaler keeps the pods at. */
  cpuUtilization: number;
  resources?: ResourcesFile;
  /** `--split NAME=V:W,...` for the front: unversioned requests of NAME shared between its deployed versions. */
  splits?: string[];
  /** `--version-policy` for the front: which version answers requests naming none (default the highest). */
  versionPolicies?: string[];
}

/** The objects a deployment is made of, each already checked against the Kubernetes API schema. */
export type KubernetesObject = Deployment | Service | HorizontalPodAutoscaler | PodDisruptionBudget;

export const GRPC_PORT = 8001;
export const HTTP_PORT = 8000;
export const SOCKET_DIR = '/sockets';
/** Unprivileged uid/gid every container runs as, so the front may open the sockets the models create (mode 0600). */
export const RUN_AS = 65532;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `--layout pod`: one Deployment with every model beside the front; `per-model`: one per model, scaling apart. */
export function kubernetesObjects(models: ModelImage[], opts: DeployOptions): KubernetesObject[] {
  if (models.length === 0) throw new Error('no models to deploy');
  checkName(opts.name, '--name');
  if (opts.namespace !== undefined) checkName(opts.namespace, '--namespace');
  const versioned = versionedNames(models);
  const seen = new Map<string, ModelImage>();
  for (const m of models) {
    const key = modelContainerName(m, versioned);
    const other = seen.get(key);
    if (other) throw new Error(`models '${other.name}' (${other.image}) and '${m.name}' (${m.image}) would share the container name ${key}; deploy one of them under another name`);
    seen.set(key, m);
  }
  checkFrontRouting(models, opts);
  const unknown = Object.keys(opts.resources?.models ?? {}).filter((n) => !models.some((m) => m.name === n));
  if (unknown.length) throw new Error(`--resources names model${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}, which ${unknown.length > 1 ? 'are' : 'is'} not deployed (models: ${models.map((m) => m.name).join(', ')})`);
  if (opts.maxReplicas < opts.replicas) throw new Error(`--max-replicas (${opts.maxReplicas}) is below --replicas (${opts.replicas})`);
  // Per model: every version of a name in one Deployment (a split shares its requests between them).
  const groups = opts.layout === 'pod'
    ? [{ name: opts.name, models }]
    : [...new Set(models.map((m) => m.name))].map((model) => ({ name: `${opts.name}-${containerName(model).slice('model-'.length)}`, models: models.filter((m) => m.name === model) }));
  const objects: KubernetesObject[] = [];
  for (const g of groups) {
    checkName(g.name, 'object name');
    objects.push(deployment(g.name, g.models, versioned, opts), service(g.name, opts), autoscaler(g.name, opts), disruptionBudget(g.name, opts));
  }
  // The library checks each object against the API's OpenAPI schema: a wrong field or type fails here, not in the cluster.
  for (const o of objects) o.validate();
  return objects;
}

/** A model name as a container name (DNS label): lower case, dots and underscores as dashes. */
export function containerName(model: string): string {
  const label = `model-${model.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+$/, '')}`.slice(0, 63).replace(/-+$/, '');
  return label;
}

/**
 * The model names deployed in more than one version: their containers, sockets and routes carry the version
 * (`model-NAME-vVERSION`, `NAME@VERSION.sock`, `--model NAME@VERSION=…`); a name deployed once keeps the plain ones.
 */
function versionedNames(models: ModelImage[]): Set<string> {
  const versioned = new Set<string>();
  for (const m of models) {
    const versions = models.filter((o) => o.name === m.name);
    if (versions.length < 2) continue;
    const unnamed = versions.find((o) => !o.version);
    if (unnamed) throw new Error(`model '${m.name}' is deployed ${versions.length} times, but ${unnamed.image} has no version (its pyml.json has none): name it NAME@VERSION=REGISTRY/REPO@sha256:…`);
    const twice = versions.find((o, i) => versions.findIndex((p) => p.version === o.version) !== i);
    if (twice) throw new Error(`version '${twice.version}' of model '${m.name}' is deployed twice (${versions.filter((o) => o.version === twice.version).map((o) => o.image).join(', ')})`);
    versioned.add(m.name);
  }
  return versioned;
}

function modelContainerName(m: ModelImage, versioned: Set<string>): string {
  return containerName(versioned.has(m.name) ? `${m.name}-v${m.version}` : m.name);
}

/** The socket a model container serves on, and the front's `--model` argument for it. */
function modelSocket(m: ModelImage, versioned: Set<string>): { socket: string; route: string } {
  const key = versioned.has(m.name) ? `${m.name}@${m.version}` : m.name;
  return { socket: `${SOCKET_DIR}/${key}.sock`, route: `${key}=unix://${SOCKET_DIR}/${key}.sock` };
}

/** A split must name deployed versions of a deployed model (the front refuses anything else at start, in the cluster). */
function checkFrontRouting(models: ModelImage[], opts: DeployOptions): void {
  for (const spec of opts.splits ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(spec);
    if (!m) throw new Error(`--split must be NAME=VERSION:WEIGHT,VERSION:WEIGHT..., got '${spec}'`);
    const deployed = models.filter((model) => model.name === m[1]).map((model) => model.version);
    if (deployed.length === 0) throw new Error(`--split names model '${m[1]}', which is not deployed (models: ${[...new Set(models.map((model) => model.name))].join(', ')})`);
    for (const share of m[2].split(',')) {
      const version = share.slice(0, share.lastIndexOf(':'));
      if (!deployed.includes(version)) throw new Error(`--split ${m[1]}: version '${version}' is not deployed (versions: ${deployed.join(', ')})`);
    }
  }
}

function checkName(name: string, what: string): void {
  if (name.length > 63 || !DNS_LABEL.test(name)) throw new Error(`${what} '${name}' is not a valid Kubernetes name (lower-case letters, digits and '-', at most 63, starting and ending alphanumeric)`);
}

function labels(name: string): Record<string, string> {
  return { 'app.kubernetes.io/name': name, 'app.kubernetes.io/component': 'inference', 'app.kubernetes.io/managed-by': 'pyml' };
}

function selector(name: string): Record<string, string> {
  return { 'app.kubernetes.io/name': name };
}

function metadata(name: string, opts: DeployOptions) {
  return { name, ...(opts.namespace ? { namespace: opts.namespace } : {}), labels: labels(name) };
}

function deployment(name: string, models: ModelImage[], versioned: Set<string>, opts: DeployOptions): Deployment {
  const readOnly = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
  const front: IContainer = {
    name: 'serve',
    image: opts.serveImage,
    command: ['pyml', 'serve',
      ...models.flatMap((m) => ['--model', modelSocket(m, versioned).route]),
      ...(opts.splits ?? []).filter((s) => models.some((m) => s.startsWith(`${m.name}=`))).flatMap((s) => ['--split', s]),
      ...(opts.versionPolicies ?? []).flatMap((p) => ['--version-policy', p]),
      '--grpc', `0.0.0.0:${GRPC_PORT}`, '--http', `0.0.0.0:${HTTP_PORT}`, '--json'],
    ports: [{ name: 'grpc', containerPort: GRPC_PORT, protocol: 'TCP' }, { name: 'http', containerPort: HTTP_PORT, protocol: 'TCP' }],
    // Ready when every model of the pod answers ready: grpc.health.v1 Check with service "" is SERVING only then.
    readinessProbe: { grpc: { port: GRPC_PORT, service: '' }, periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2 },
    // Alive as long as the front answers at all; a slow model init must not get the front restarted.
    livenessProbe: { httpGet: { path: '/v2/health/live', port: HTTP_PORT }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
    resources: mergeResources(FRONT_DEFAULT, opts.resources?.front),
    volumeMounts: [{ name: 'sockets', mountPath: SOCKET_DIR }, { name: 'tmp', mountPath: '/tmp' }],
    securityContext: readOnly,
  };
  const modelContainers: IContainer[] = models.map((m) => ({
    name: modelContainerName(m, versioned),
    image: m.image,
    // The image's own entrypoint (node …/entrypoint.mjs); only its default socket path is replaced.
    args: ['serve', '--socket', modelSocket(m, versioned).socket],
    // No ports: a model container talks only over its socket in the shared volume.
    readinessProbe: modelReadiness(m.name, versioned.has(m.name) ? m.version : undefined),
    resources: mergeResources(modelDefault(m.weightsBytes ?? 0), m.resources, opts.resources?.default, opts.resources?.models?.[m.name]),
    volumeMounts: [{ name: 'sockets', mountPath: SOCKET_DIR }, { name: 'tmp', mountPath: '/tmp' }],
    securityContext: readOnly,
  }));
  return new Deployment({
    metadata: metadata(name, opts),
    spec: {
      // No `replicas`: the HorizontalPodAutoscaler owns the count; a re-applied manifest must not reset it.
      selector: { matchLabels: selector(name) },
      // Roll out a new digest one pod at a time, never below the current capacity.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: labels(name) },
        spec: {
          securityContext: { runAsUser: RUN_AS, runAsGroup: RUN_AS, runAsNonRoot: true, fsGroup: RUN_AS, seccompProfile: { type: 'RuntimeDefault' } },
          // emptyDir is created world-writable; this makes the socket directory the pod user's own, mode 0700.
          initContainers: [{
            name: 'socket-dir',
            image: opts.serveImage,
            command: ['node', '-e', `const fs=require('fs');fs.chownSync('${SOCKET_DIR}',${RUN_AS},${RUN_AS});fs.chmodSync('${SOCKET_DIR}',0o700)`],
            volumeMounts: [{ name: 'sockets', mountPath: SOCKET_DIR }],
            resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
            securityContext: { runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['CHOWN', 'FOWNER'] } },
          }],
          containers: [front, ...modelContainers],
          volumes: [{ name: 'sockets', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }, { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } }],
          // SIGTERM drains in-flight requests (front and models) before they exit.
          terminationGracePeriodSeconds: 30,
          automountServiceAccountToken: false,
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector(name) } }],
        },
      },
    },
  });
}

/** A model container is ready when the front sees it (its version) ready: the V2 model-ready endpoint, through the pod's HTTP port. */
function modelReadiness(model: string, version?: string): IProbe {
  const path = `/v2/models/${encodeURIComponent(model)}${version ? `/versions/${encodeURIComponent(version)}` : ''}/ready`;
  return { httpGet: { path, port: HTTP_PORT }, periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2 };
}

function service(name: string, opts: DeployOptions): Service {
  return new Service({
    metadata: metadata(name, opts),
    spec: {
      type: 'ClusterIP',
      selector: selector(name),
      ports: [
        { name: 'grpc', port: GRPC_PORT, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'grpc' },
        { name: 'http', port: HTTP_PORT, targetPort: 'http', protocol: 'TCP', appProtocol: 'http' },
      ],
    },
  });
}

function autoscaler(name: string, opts: DeployOptions): HorizontalPodAutoscaler {
  return new HorizontalPodAutoscaler({
    metadata: metadata(name, opts),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: opts.replicas,
      maxReplicas: opts.maxReplicas,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: opts.cpuUtilization } } }],
      // Scale up at once, down slowly: a model pod is expensive to start (image pull, init).
      behavior: { scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } },
    },
  });
}

function disruptionBudget(name: string, opts: DeployOptions): PodDisruptionBudget {
  return new PodDisruptionBudget({
    metadata: metadata(name, opts),
    // One pod at a time may be evicted (node drains, upgrades); with a single replica this still lets a drain finish.
    spec: { maxUnavailable: 1, selector: { matchLabels: selector(name) } },
  });
}
