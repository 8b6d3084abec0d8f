/**
 * Which version answers a request that names none (when no split is given for the model): `latest`, the highest
 * version served (default), or `pinned` to one version. `--version-policy latest|pinned=V`, for every model, or
 * `NAME:latest|NAME:pinned=V` for one.
 */
export type VersionPolicy = { kind: 'latest' } | { kind: 'pinned'; version: string };

export interface VersionPolicies {
  /** For models with no policy of their own. */
  all: VersionPolicy;
  byModel: Map<string, VersionPolicy>;
}

export const LATEST: VersionPolicy = { kind: 'latest' };

export function parseVersionPolicies(specs: string[]): VersionPolicies {
  const policies: VersionPolicies = { all: LATEST, byModel: new Map() };
  for (const spec of specs) {
    const m = /^(?:([^:=]+):)?(latest|pinned=(.+))$/.exec(spec);
    if (!m) throw new Error(`--version-policy must be latest, pinned=VERSION, NAME:latest or NAME:pinned=VERSION, got '${spec}'`);
    const policy: VersionPolicy = m[3] === undefined ? LATEST : { kind: 'pinned', version: m[3] };
    if (m[1] === undefined) policies.all = policy;
    else policies.byModel.set(m[1], policy);
  }
  return policies;
}

export function policyFor(policies: VersionPolicies, model: string): VersionPolicy {
  return policies.byModel.get(model) ?? policies.all;
}

/**
 * Versions in serving order: dot- or dash-separated parts, numeric parts compared as numbers ('10' > '9',
 * '1.10.0' > '1.9.2'), other parts as text; a version that is a prefix of another sorts first.
 */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\-+_]/);
  const pb = b.split(/[.\-+_]/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const na = /^\d+$/.test(pa[i]) ? Number(pa[i]) : NaN;
    const nb = /^\d+$/.test(pb[i]) ? Number(pb[i]) : NaN;
    const order = !Number.isNaN(na) && !Number.isNaN(nb) ? na - nb : pa[i] < pb[i] ? -1 : pa[i] > pb[i] ? 1 : 0;
    if (order !== 0) return Math.sign(order);
  }
  return pa.length - pb.length;
}
