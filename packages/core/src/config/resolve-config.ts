import { existsSync } from 'node:fs';
import path from 'node:path';
import { looksLikeRegistryRef } from '@pyml/registry/reference';
import { ociArchitecture } from '@pyml/image/pyml-format';
import { ConfigError } from '../errors.ts';
import type { Platform, PymlPlugin, ResolvedConfig, UserConfig } from '../types.ts';

export const DEFAULT_BASE = 'pyml/node';

export function hostPlatform(): Platform {
  const architecture = ociArchitecture();
  if (architecture === 'amd64' || architecture === 'arm64') return { os: 'linux', architecture };
  throw new ConfigError(`this machine's architecture ${process.arch} is not supported`, 'pyml builds linux/amd64 and linux/arm64 images');
}

export function parsePlatform(value: string, where: string): Platform {
  const m = /^linux\/(amd64|arm64)$/.exec(value);
  if (!m) throw new ConfigError(`${where}: platform '${value}' is not supported`, "use 'linux/amd64' or 'linux/arm64'");
  return { os: 'linux', architecture: m[1] as Platform['architecture'] };
}

/** Makes paths absolute (relative to the config file) and fills defaults; `plugins` are the config's entries as plugin objects. */
export function resolveConfig(user: UserConfig, configFile: string, plugins: PymlPlugin[]): ResolvedConfig {
  const root = path.dirname(configFile);
  const abs = (p: string) => path.resolve(root, p);
  const base = user.image?.base ?? DEFAULT_BASE;
  return {
    configFile,
    root,
    name: user.name,
    version: user.version,
    kind: user.kind ?? 'tensor',
    model: user.model ? abs(user.model) : undefined,
    weights: (user.weights ?? []).map(abs),
    plugins,
    signature: user.signature,
    image: {
      base: base === DEFAULT_BASE || isRegistryBase(base, root) ? base : abs(base),
      tags: user.image?.tags ?? [],
      labels: user.image?.labels ?? {},
      platform: user.image?.platform ? parsePlatform(user.image.platform, `${configFile}: image.platform`) : hostPlatform(),
    },
    serving: user.serving ?? {},
    ...(user.deploy?.resources ? { deploy: { resources: quantitiesAsText(user.deploy.resources) } } : {}),
  };
}

/** `HOST/REPO:TAG` or `docker://…` names a registry image, unless a file of that name sits beside the config. */
function isRegistryBase(base: string, root: string): boolean {
  return base.startsWith('docker://') || (looksLikeRegistryRef(base) && !existsSync(path.resolve(root, base)));
}

/** Kubernetes quantities as strings (`cpu: 1` and `cpu: '1'` mean the same), as pyml.json records them. */
function quantitiesAsText(r: NonNullable<NonNullable<UserConfig['deploy']>['resources']>): { requests?: Record<string, string>; limits?: Record<string, string> } {
  const text = (m?: Record<string, string | number>) => (m ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)])) : undefined);
  return { ...(r.requests ? { requests: text(r.requests) } : {}), ...(r.limits ? { limits: text(r.limits) } : {}) };
}
