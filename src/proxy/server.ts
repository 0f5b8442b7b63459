/** `tufa proxy`'s server: the verifying registry handler on HTTPS (or plain HTTP when asked). */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createVerifyingRegistryHandler, type VerifyingRegistryOptions } from './handler.js';

export interface RegistryProxyOptions extends VerifyingRegistryOptions {
  /** PEM certificate (chain) and key; without them the proxy speaks plain HTTP. */
  readonly tls?: { cert: string | Buffer; key: string | Buffer };
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /** Connections open at once (default 1,024). */
  readonly maxConnections?: number;
}

export interface RunningRegistryProxy {
  readonly url: string;
  /** `host:port`, as image references name it. */
  readonly host: string;
  close(): Promise<void>;
}

export async function startRegistryProxy(o: RegistryProxyOptions): Promise<RunningRegistryProxy> {
  const handler = createVerifyingRegistryHandler(o);
  const server: Server =
    o.tls === undefined ? createHttpServer(handler) : createHttpsServer(o.tls, handler);
  server.maxConnections = o.maxConnections ?? 1024;
  // a request's headers must arrive promptly; bodies are never read (read-only)
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => ok());
  });
  const a = server.address() as AddressInfo;
  const host = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  return {
    url: `${o.tls === undefined ? 'http' : 'https'}://${host}`,
    host,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
