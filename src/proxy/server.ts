/** `tufa proxy`'s server: the verifying registry handler on HTTPS (or plain HTTP when asked). */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import {
  createVerifyingRegistryHandler,
  HttpError,
  sendError,
  type VerifyingRegistryOptions,
} from './handler.js';

export interface RegistryProxyOptions extends VerifyingRegistryOptions {
  /** PEM certificate (chain) and key; without them the proxy speaks plain HTTP. */
  readonly tls?: { cert: string | Buffer; key: string | Buffer };
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /**
   * Connections open at once (default 1,024). A few more are accepted for `/healthz` and
   * `/metrics` only, so probes answer while every connection is taken.
   */
  readonly maxConnections?: number;
  /** ms a connection may pass without reading or writing a byte (default 60 s); then it is cut. */
  readonly idleTimeoutMs?: number;
}

/** Connections beyond maxConnections kept for the probes. */
const PROBE_CONNECTIONS = 8;

export interface RunningRegistryProxy {
  readonly url: string;
  /** `host:port`, as image references name it. */
  readonly host: string;
  close(): Promise<void>;
}

export async function startRegistryProxy(o: RegistryProxyOptions): Promise<RunningRegistryProxy> {
  const handler = createVerifyingRegistryHandler(o);
  const max = o.maxConnections ?? 1024;
  let open = 0;
  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (open <= max || path === '/healthz' || path === '/metrics') {
      handler(req, res);
      return;
    }
    // a probe connection asking for anything else: answered and closed at once
    sendError(
      req,
      res,
      new HttpError(503, 'TOOMANYREQUESTS', 'every connection is taken; retry later', {
        'retry-after': '1',
        connection: 'close',
      }),
    );
  };
  const server: Server =
    o.tls === undefined ? createHttpServer(serve) : createHttpsServer(o.tls, serve);
  server.maxConnections = max + PROBE_CONNECTIONS;
  server.on(o.tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => {
    open++;
    socket.once('close', () => open--);
  });
  // a request's headers must arrive promptly; bodies are never read (read-only); a connection
  // that moves no byte for idleTimeoutMs (a client that stopped reading) is cut
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.timeout = o.idleTimeoutMs ?? 60_000;
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
