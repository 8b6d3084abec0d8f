import { createServer, connect, type Socket } from 'node:net';

export interface CuttingProxy {
  host: string;
  /** Connections cut so far. */
  cuts(): number;
  close(): Promise<void>;
}

/**
 * A TCP proxy to `target` on 127.0.0.1 that drops a connection (both sides, abruptly) once the client has sent
 * `cutAfterBytes` on it: a registry that goes away half-way through an upload. After `maxCuts` cuts it passes
 * everything through.
 */
export async function startCuttingProxy(targetPort: number, cutAfterBytes: number, maxCuts = Infinity): Promise<CuttingProxy> {
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let sent = 0;
    let cutting = false;
    client.on('data', (chunk: Buffer) => {
      if (cutting) return;
      sent += chunk.length;
      if (cuts < maxCuts && sent > cutAfterBytes) {
        cutting = true;
        cuts++;
        upstream.write(chunk.subarray(0, chunk.length - (sent - cutAfterBytes)));
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.on('data', (chunk: Buffer) => { if (!cutting) client.write(chunk); });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    for (const s of [client, upstream]) {
      s.on('error', () => { client.destroy(); upstream.destroy(); });
      s.on('close', () => sockets.delete(s));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    cuts: () => cuts,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
