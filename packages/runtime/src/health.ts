import { request } from 'node:http';
import { connect } from 'node:net';

/**
 * Where the image's default command listens (`serve --default-ports`) and the `health` command the image config's
 * health check runs. Nothing here needs curl or wget in the image: the probe is the image's own Node.
 */

export const DEFAULT_HTTP = '0.0.0.0:8000';
export const DEFAULT_GRPC = '0.0.0.0:8001';

/**
 * An address from PYML_HTTP / PYML_GRPC: unset or empty → the default, `off` → none. Only the default command reads
 * them (`--default-ports`); pyml serve's model processes get the host's PYML_* variables but never that flag, so two
 * of them on one host never bind the same port.
 */
export function addressFromEnv(value: string | undefined, fallback: string): string | undefined {
  const v = value?.trim();
  if (v === undefined || v === '') return fallback;
  return v.toLowerCase() === 'off' ? undefined : v;
}

/** The address a probe inside the container connects to for a listen address: a wildcard host means loopback. */
export function probeHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host.replace(/^\[(.*)\]$/, '$1');
}

/**
 * GET /v2/health/ready on the REST address (PYML_HTTP, else 0.0.0.0:8000): true on 200. With REST turned off
 * (PYML_HTTP=off) the best it can say is that the gRPC socket takes connections.
 */
export async function checkHealth(opts: { env: NodeJS.ProcessEnv; socket: string; timeoutMs?: number }): Promise<{ healthy: boolean; detail: string }> {
  const timeoutMs = opts.timeoutMs ?? 4_000;
  const address = addressFromEnv(opts.env.PYML_HTTP, DEFAULT_HTTP);
  if (address === undefined) {
    return new Promise((resolve) => {
      const sock = connect(opts.socket);
      const done = (healthy: boolean, detail: string) => { sock.destroy(); resolve({ healthy, detail }); };
      sock.setTimeout(timeoutMs, () => done(false, `no answer on ${opts.socket} within ${timeoutMs} ms`));
      sock.once('connect', () => done(true, `${opts.socket} takes connections (REST is off: liveness only)`));
      sock.once('error', (error) => done(false, `${opts.socket}: ${error.message}`));
    });
  }
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(address);
  if (!m) return { healthy: false, detail: `PYML_HTTP must be HOST:PORT or off, got '${address}'` };
  const host = probeHost(m[1] ?? m[2]);
  const port = Number(m[3]);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/v2/health/ready`;
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/v2/health/ready', method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve({ healthy: res.statusCode === 200, detail: `${url} answered ${res.statusCode}` }));
    });
    req.once('timeout', () => { req.destroy(); resolve({ healthy: false, detail: `${url}: no answer within ${timeoutMs} ms` }); });
    req.once('error', (error) => resolve({ healthy: false, detail: `${url}: ${error.message}` }));
    req.end();
  });
}
