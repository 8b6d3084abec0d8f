import { appendLayers, emptyImage, withAnnotations, withConfig, type Image, type Layer } from '@pyml/image';
import { DEFAULT_SOCKET, PYML_ROOT } from '@pyml/image/pyml-format';
import type { ResolvedConfig } from '../types.ts';
import type { BaseImage } from './base-image.ts';

const SECOND = 1_000_000_000;

/**
 * The model image around its layers: what it is (written once, as config labels and as manifest annotations),
 * how it runs (the entrypoint and its default command) and its environment.
 */
export function modelImage(config: ResolvedConfig, base: BaseImage, layers: Layer[], entrypoint: string[], created: string, pymlVersion: string): Image {
  // Tools read an image's identity from its config labels (docker inspect) or its manifest annotations (registries).
  const identity = {
    'org.opencontainers.image.title': config.name,
    'org.opencontainers.image.version': config.version,
    'org.opencontainers.image.created': created,
    'dev.pyml.kind': config.kind,
  };
  const { platform } = config.image;
  let image = emptyImage({ os: platform.os, architecture: platform.architecture }, created);
  image = appendLayers(image, ...layers);
  image = withConfig(image, {
    Entrypoint: entrypoint,
    // Beside the socket: V2 REST on $PYML_HTTP (0.0.0.0:8000) and V2 gRPC on $PYML_GRPC (0.0.0.0:8001), read at run
    // time under --default-ports only. pyml serve's runners and the Kubernetes layout pass their own socket-only
    // command, so the host's PYML_* variables they copy in never make two model processes bind one port.
    Cmd: ['serve', '--socket', DEFAULT_SOCKET, '--default-ports'],
    ExposedPorts: { '8000/tcp': {}, '8001/tcp': {} },
    // The image's own Node asks its REST port for readiness (no curl in the image). Docker ≥ 25 probes every
    // second during the start period (StartInterval); older engines every Interval.
    Healthcheck: { Test: ['CMD', ...entrypoint, 'health'], Interval: 10 * SECOND, Timeout: 5 * SECOND, StartPeriod: 60 * SECOND, StartInterval: SECOND, Retries: 3 },
    Env: base.env,
    WorkingDir: PYML_ROOT,
    // The base's labels first, the user's last: a config's image.labels may override any of them.
    Labels: { ...base.labels, ...identity, 'dev.pyml.version': pymlVersion, ...config.image.labels },
  });
  return withAnnotations(image, { ...identity, 'org.opencontainers.image.ref.name': config.version, ...base.annotations });
}
