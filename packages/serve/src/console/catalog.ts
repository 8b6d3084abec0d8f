import type { ContractKind, Signature } from '@pyml/contract';
import { HttpFailure, decodeModelMetadata, encodeModelRef } from '@pyml/runtime/protocol';
import type { ModelEndpoint, ModelState } from '../model-endpoint.ts';
import type { ModelRouter } from '../model-router.ts';
import { SupervisedModel } from '../supervised-model.ts';

/** One served version of a model, as the console and the OpenAPI documents show it. */
export interface ServedVersion {
  version: string;
  state: ModelState;
  /** Takes calls now (running, or idle and started by the first call). */
  ready: boolean;
  /** Where it runs from: the runner and image reference, or an external socket. */
  source: string;
  /** The image's manifest digest (absent for external models). */
  digest?: string;
  /** Why it is not ready (init error, crash). */
  error?: string;
  /** This version's own signature (versions side by side may differ); absent as for ModelEntry. */
  signature?: Signature;
}

export interface ModelEntry {
  name: string;
  kind: ContractKind;
  /**
   * The signature of the version an unversioned request gets by the version policy (the highest, or the pinned
   * one); absent only for an external model that has not answered ModelMetadata yet.
   */
  signature?: Signature;
  /** That version ('' when unversioned). */
  defaultVersion: string;
  /** Highest first, as the router lists them. */
  versions: ServedVersion[];
}

/** Longest the catalog waits for an external model's ModelMetadata. */
const METADATA_MS = 2_000;

/**
 * The models the service routes to, described from what it already holds: an image's manifest (name, version,
 * kind, signature, digest) for the models it starts, so describing one never starts it; ModelMetadata, asked once
 * while it is ready, for an external model. Read at each request, so models added or swapped show at once.
 */
export class ModelCatalog {
  /** External models' metadata, asked once per endpoint. */
  private readonly described = new WeakMap<ModelEndpoint, { version: string; kind: ContractKind; signature: Signature }>();

  constructor(private readonly router: ModelRouter) {}

  async list(): Promise<ModelEntry[]> {
    const byName = new Map<string, ModelEntry>();
    for (const { version, endpoint } of this.router.entries) {
      const about = await this.describe(endpoint);
      let entry = byName.get(endpoint.name);
      if (!entry) {
        entry = { name: endpoint.name, kind: about?.kind ?? 'tensor', defaultVersion: '', versions: [] };
        byName.set(endpoint.name, entry);
      }
      entry.versions.push({
        version: version || about?.version || '', state: endpoint.state, ready: endpoint.servable, source: endpoint.source,
        ...(endpoint instanceof SupervisedModel ? { digest: endpoint.image.manifestDigest } : {}),
        ...(endpoint.error ? { error: endpoint.error } : {}),
        ...(about ? { signature: about.signature } : {}),
      });
    }
    for (const entry of byName.values()) {
      const policy = this.router.versions(entry.name)?.defaultVersion;
      // A pinned version that is not loaded: unversioned requests fail; the highest stands for the model meanwhile.
      const chosen = entry.versions.find((v) => v.version === policy) ?? entry.versions[0];
      entry.defaultVersion = chosen.version;
      if (chosen.signature) entry.signature = chosen.signature;
    }
    return [...byName.values()];
  }

  /** The model called `name`, or a 404 naming the models served. */
  async find(name: string): Promise<ModelEntry> {
    const models = await this.list();
    const model = models.find((m) => m.name === name);
    if (!model) throw new HttpFailure(404, `model '${name}' is not served here (models: ${models.map((m) => m.name).join(', ')})`);
    return model;
  }

  private async describe(endpoint: ModelEndpoint): Promise<{ version: string; kind: ContractKind; signature: Signature } | undefined> {
    if (endpoint instanceof SupervisedModel) {
      const { version, kind, signature } = endpoint.image.manifest;
      return { version, kind, signature };
    }
    const known = this.described.get(endpoint);
    if (known || !endpoint.ready) return known;
    try {
      const meta = decodeModelMetadata(await endpoint.call('ModelMetadata', encodeModelRef({ name: endpoint.name, version: '' }), new Date(Date.now() + METADATA_MS)));
      const about = {
        version: meta.versions[0] ?? '', kind: meta.platform === 'pyml-dataframe' ? 'dataframe' as const : 'tensor' as const,
        signature: { inputs: meta.inputs, outputs: meta.outputs },
      };
      this.described.set(endpoint, about);
      return about;
    } catch {
      // Not described this time (it went away meanwhile); asked again at the next request.
      return undefined;
    }
  }
}
