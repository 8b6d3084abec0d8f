import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpFailure, RUNTIME_VERSION, sendJson } from '@pyml/runtime/protocol';
import type { ServiceMetrics } from '../metrics.ts';
import type { ModelRouter } from '../model-router.ts';
import { modelDocument, serviceDocument } from '../openapi.ts';
import { exampleRequest } from '../openapi-tensors.ts';
import { ServiceStats } from '../stats.ts';
import { ModelCatalog } from './catalog.ts';
import { CONSOLE_HEADERS, CONSOLE_HTML } from './page.ts';

/** GET routes the HTTP front hands over before its V2 routes (http-front.ts); `serve` answers or says it did not. */
export interface PageRoutes {
  serve(req: IncomingMessage, res: ServerResponse, path: string): boolean | Promise<boolean>;
}

const MODEL_DOCS = /^\/v2\/models\/([^/]+)\/docs\/openapi\.json$/;

/**
 * The console at `/`, its JSON (`/console/models.json`, `/console/stats.json`) and the OpenAPI documents
 * (`/v2/docs/openapi.json`, `/v2/models/NAME/docs/openapi.json`), on the service's HTTP port; `pyml serve
 * --no-console` leaves all of them out. Nothing here starts a model: models are described from their images.
 */
export class ConsoleRoutes implements PageRoutes {
  readonly stats: ServiceStats;
  private readonly catalog: ModelCatalog;

  constructor(private readonly router: ModelRouter, metrics: ServiceMetrics) {
    this.catalog = new ModelCatalog(router);
    this.stats = new ServiceStats(metrics);
    router.onFailure = (model, version, protocol, code, message) => this.stats.noteError(model, version, protocol, code, message);
  }

  serve(req: IncomingMessage, res: ServerResponse, path: string): boolean | Promise<boolean> {
    // Only these paths: everything else (the V2 routes, /metrics) goes on at once, without a promise.
    if (path === '/') {
      res.writeHead(200, CONSOLE_HEADERS).end(req.method === 'HEAD' ? undefined : CONSOLE_HTML);
      return true;
    }
    if (path === '/v2/docs/openapi.json' || path === '/console/models.json' || path === '/console/stats.json' || MODEL_DOCS.test(path)) return this.serveJson(res, path);
    return false;
  }

  private async serveJson(res: ServerResponse, path: string): Promise<true> {
    const docs = MODEL_DOCS.exec(path);
    if (docs) sendJson(res, 200, modelDocument(await this.catalog.find(decodeName(docs[1]))));
    else if (path === '/v2/docs/openapi.json') sendJson(res, 200, serviceDocument(await this.catalog.list(), RUNTIME_VERSION));
    else if (path === '/console/stats.json') sendJson(res, 200, await this.stats.snapshot());
    else sendJson(res, 200, await this.modelsView());
    return true;
  }

  /** What the console shows of each model, with the paths it links to and the try-it form's example. */
  private async modelsView() {
    const models = await this.catalog.list();
    return {
      server: { name: 'pyml-serve', version: RUNTIME_VERSION },
      ready: this.router.allReady,
      models: models.map((m) => {
        const base = `/v2/models/${encodeURIComponent(m.name)}`;
        return { ...m, example: exampleRequest(m.signature ?? { inputs: [], outputs: [] }), infer: `${base}/infer`, metadata: base, docs: `${base}/docs/openapi.json` };
      }),
    };
  }
}

function decodeName(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpFailure(400, `malformed percent-encoding in the URL path: ${JSON.stringify(part)}`);
  }
}
