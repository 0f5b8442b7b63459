/**
 * A man in the middle for the OCI cases: an HTTP proxy on 127.0.0.1 in front of a real registry
 * (Debian's docker-registry). It forwards every request unless a hook answers it, logs what the
 * client sent (headers included), can demand Basic credentials of its own (the registry behind
 * it is anonymous), and can slow blob bodies down so a kill lands mid-transfer. A second, plain
 * server ({@link BlobMirror}) stands for "another host" that redirects point to.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request as the proxy saw it. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/** An upstream answer, read whole. */
export interface Upstream {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** A hook answers a request itself (returns true) or lets it through (returns false). */
export type Hook = (
  req: SeenRequest,
  res: ServerResponse,
  proxy: RegistryProxy,
) => Promise<boolean> | boolean;

/** fetchUpstream sends one GET to `origin` (http://host:port) and reads the whole answer. */
export function fetchUpstream(
  origin: string,
  path: string,
  headers: IncomingHttpHeaders = {},
): Promise<Upstream> {
  const u = new URL(path, origin);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      u,
      {
        method: 'GET',
        headers: {
          accept: headers.accept ?? '*/*',
          ...(headers.range ? { range: headers.range } : {}),
        },
        agent: false,
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${u}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Base of the two test servers: listen on 127.0.0.1, log, destroy sockets on close. */
abstract class LoopbackServer {
  readonly log: SeenRequest[] = [];
  protected readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      const seen = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers };
      this.log.push(seen);
      this.handle(seen, req, res).catch(() => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  protected abstract handle(
    seen: SeenRequest,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void>;

  protected async listen(): Promise<void> {
    await new Promise<void>((ok, fail) => {
      this.server.once('error', fail);
      this.server.listen(0, '127.0.0.1', () => ok());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** `127.0.0.1:PORT` */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get origin(): string {
    return `http://${this.host}`;
  }

  /** sendSlowly writes `body` in `chunk`-byte pieces, `delayMs` apart (the socket may close). */
  sendSlowly(res: ServerResponse, body: Uint8Array, chunk: number, delayMs: number): void {
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return stop();
      res.write(body.subarray(at, at + chunk));
      at += chunk;
      if (at >= body.length) {
        res.end();
        stop();
      }
    }, delayMs);
    const stop = () => {
      clearInterval(timer);
      this.timers.delete(timer);
    };
    this.timers.add(timer);
    res.on('close', stop);
  }

  /** dropConnections destroys every open socket (a pending client sees a reset). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    const closed = new Promise<void>((ok) => this.server.close(() => ok()));
    this.dropConnections();
    this.server.closeAllConnections();
    await closed;
  }
}

/** The proxy in front of the registry. */
export class RegistryProxy extends LoopbackServer {
  /** Tried in order for every request. */
  readonly hooks: Hook[] = [];
  /** Slow blob bodies down: `chunk` bytes every `delayMs`. */
  throttle: { chunk: number; delayMs: number } | undefined;
  /** Demand these credentials (Basic) before forwarding; they are not forwarded. */
  requireBasic: { username: string; password: string } | undefined;

  private constructor(readonly upstream: string) {
    super();
  }

  static async start(upstreamOrigin: string): Promise<RegistryProxy> {
    const p = new RegistryProxy(upstreamOrigin);
    await p.listen();
    return p;
  }

  /** requestsTo returns the logged requests whose path contains `fragment`. */
  requestsTo(fragment: string): SeenRequest[] {
    return this.log.filter((r) => r.path.includes(fragment));
  }

  /** get reads a path from the registry behind the proxy. */
  get(path: string, headers: IncomingHttpHeaders = {}): Promise<Upstream> {
    return fetchUpstream(this.upstream, path, headers);
  }

  reset(): void {
    this.hooks.length = 0;
    this.throttle = undefined;
    this.requireBasic = undefined;
    this.log.length = 0;
  }

  protected async handle(
    seen: SeenRequest,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    if (this.requireBasic !== undefined) {
      const want = `Basic ${Buffer.from(`${this.requireBasic.username}:${this.requireBasic.password}`).toString('base64')}`;
      if (req.headers.authorization !== want) {
        res
          .writeHead(401, {
            'www-authenticate': 'Basic realm="tufa-security-proxy"',
            'content-length': '0',
          })
          .end();
        return;
      }
    }
    for (const hook of this.hooks) if (await hook(seen, res, this)) return;
    const headers = { ...req.headers };
    delete headers.authorization;
    delete headers.host;
    const throttle =
      this.throttle !== undefined && /\/blobs\/sha256:/.test(seen.path) ? this.throttle : undefined;
    await new Promise<void>((resolve, reject) => {
      const up = httpRequest(
        new URL(seen.path, this.upstream),
        { method: seen.method, headers, agent: false, timeout: 30_000 },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          if (throttle === undefined) {
            upRes.pipe(res);
            upRes.on('end', resolve);
            upRes.on('error', reject);
            return;
          }
          const chunks: Buffer[] = [];
          upRes.on('data', (c: Buffer) => chunks.push(c));
          upRes.on('end', () => {
            this.sendSlowly(res, Buffer.concat(chunks), throttle.chunk, throttle.delayMs);
            resolve();
          });
          upRes.on('error', reject);
        },
      );
      up.on('timeout', () => up.destroy(new Error('upstream timed out')));
      up.on('error', reject);
      req.pipe(up);
    });
  }
}

/** "Another host": serves blobs from the registry (or whatever `body` says), logs headers. */
export class BlobMirror extends LoopbackServer {
  /** Override the bytes served for a path. */
  readonly bodies = new Map<string, Uint8Array>();

  private constructor(readonly upstream: string) {
    super();
  }

  static async start(upstreamOrigin: string): Promise<BlobMirror> {
    const m = new BlobMirror(upstreamOrigin);
    await m.listen();
    return m;
  }

  protected async handle(
    seen: SeenRequest,
    _req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const own = this.bodies.get(seen.path);
    const up = own === undefined ? await fetchUpstream(this.upstream, seen.path) : undefined;
    const body = own ?? up?.body ?? Buffer.alloc(0);
    res.writeHead(up?.status ?? 200, {
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
    });
    res.end(body);
  }
}
