/**
 * A tiny HTTP server for tests: serves a map of files (relative path → bytes) or a folder on
 * 127.0.0.1 with a free port, logs every request, and can be told to misbehave per path (HTTP
 * status, endless data, slow drip, wrong body, lying Content-Length, redirect). `close()` destroys
 * open sockets, so a test never waits for a client that keeps a connection alive.
 */
import { readFile, realpath } from 'node:fs/promises';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { resolve, sep } from 'node:path';

/** How the server answers one path instead of serving the file. */
export type Misbehaviour =
  /** Answer `status` (empty body) for the next `times` requests (default: always), then serve. */
  | { readonly kind: 'status'; readonly status: number; times?: number }
  /** Write `chunkSize`-byte chunks (no Content-Length) until the client disconnects. */
  | { readonly kind: 'endless'; readonly chunkSize?: number }
  /** Send `body` (default: the file) one byte every `intervalMs`, with a true Content-Length. */
  | { readonly kind: 'drip'; readonly intervalMs: number; readonly body?: Uint8Array }
  /** Serve other bytes than the file (a tampered file). */
  | { readonly kind: 'body'; readonly body: Uint8Array }
  /** Announce `declared` bytes in Content-Length, send `body` (default: the file), then cut. */
  | { readonly kind: 'lying-length'; readonly declared: number; readonly body?: Uint8Array }
  /** Redirect (default 302) to `location` (absolute, or relative to this server). */
  | { readonly kind: 'redirect'; readonly location: string; readonly status?: number };

/** One request as the server saw it. */
export interface LoggedRequest {
  readonly method: string;
  /** The path relative to the site root, percent-decoded, without the leading `/`. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/** A running test server. */
export class StaticServer {
  /** Every request, in arrival order. */
  readonly log: LoggedRequest[] = [];
  /** Per-path misbehaviours (path relative to the site root, no leading `/`). */
  readonly behaviours = new Map<string, Misbehaviour>();
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly server: Server;
  private port = 0;

  private constructor(private readonly source: ReadonlyMap<string, Uint8Array> | string) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  /**
   * start listens on 127.0.0.1 with a free port.
   * @param source - files by relative path (e.g. `1.root.json`, `targets/x.txt`) or a folder
   */
  static async start(source: ReadonlyMap<string, Uint8Array> | string): Promise<StaticServer> {
    const s = new StaticServer(typeof source === 'string' ? await realpath(source) : source);
    await new Promise<void>((ok, fail) => {
      s.server.once('error', fail);
      s.server.listen(0, '127.0.0.1', () => ok());
    });
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  /** The origin, e.g. `http://127.0.0.1:40123`. */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** url returns the absolute URL of a relative path (`''` → the site root with a `/`). */
  url(path = ''): string {
    return `${this.origin}/${path}`;
  }

  /** set makes `path` misbehave (replacing an earlier rule); clear() undoes every rule. */
  set(path: string, b: Misbehaviour): this {
    this.behaviours.set(path, b);
    return this;
  }

  clear(): void {
    this.behaviours.clear();
  }

  /** requests returns the logged requests of one path. */
  requests(path: string): LoggedRequest[] {
    return this.log.filter((r) => r.path === path);
  }

  /** take returns the paths requested so far and clears the log. */
  take(): string[] {
    return this.log.splice(0, this.log.length).map((r) => r.path);
  }

  /** close stops listening, stops misbehaving writers and destroys every open socket. */
  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    const closed = new Promise<void>((ok) => this.server.close(() => ok()));
    for (const s of this.sockets) s.destroy();
    this.server.closeAllConnections();
    await closed;
  }

  private async file(path: string): Promise<Uint8Array | undefined> {
    if (typeof this.source !== 'string') return this.source.get(path);
    const base = this.source;
    const file = resolve(base, path);
    if (!file.startsWith(base + sep)) return undefined;
    try {
      return new Uint8Array(await readFile(file));
    } catch {
      return undefined;
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = new URL(req.url ?? '/', this.origin).pathname.slice(1);
    let path: string;
    try {
      path = decodeURIComponent(raw);
    } catch {
      path = raw;
    }
    this.log.push({ method: req.method ?? 'GET', path, headers: req.headers });
    const b = this.behaviours.get(path);
    if (b?.kind === 'status' && (b.times === undefined || b.times > 0)) {
      if (b.times !== undefined) b.times--;
      res.writeHead(b.status, { 'content-length': '0' }).end();
      return;
    }
    if (b?.kind === 'redirect') {
      res.writeHead(b.status ?? 302, { location: b.location, 'content-length': '0' }).end();
      return;
    }
    if (b?.kind === 'endless') {
      this.endless(res, b.chunkSize ?? 64 * 1024);
      return;
    }
    const file = await this.file(path);
    if (b?.kind === 'body') {
      send(res, b.body);
      return;
    }
    if (b?.kind === 'drip') {
      this.drip(res, b.body ?? file ?? new Uint8Array(1024).fill(0x61), b.intervalMs);
      return;
    }
    if (b?.kind === 'lying-length') {
      const body = b.body ?? file ?? new Uint8Array(0);
      res.writeHead(200, { 'content-length': String(b.declared) });
      // Flush what there is, then cut the connection: the client sees a truncated body.
      res.write(body, () => res.destroy());
      return;
    }
    if (file === undefined) {
      res.writeHead(404, { 'content-length': '0' }).end();
      return;
    }
    send(res, file);
  }

  private endless(res: ServerResponse, chunkSize: number): void {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = new Uint8Array(chunkSize).fill(0x7b);
    let stopped = false;
    res.on('close', () => {
      stopped = true;
    });
    const pump = () => {
      while (!stopped && !res.destroyed) {
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  }

  private drip(res: ServerResponse, body: Uint8Array, intervalMs: number): void {
    res.writeHead(200, { 'content-length': String(body.length) });
    res.flushHeaders();
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return stop();
      res.write(body.subarray(at, at + 1));
      at++;
      if (at >= body.length) {
        res.end();
        stop();
      }
    }, intervalMs);
    const stop = () => {
      clearInterval(timer);
      this.timers.delete(timer);
    };
    this.timers.add(timer);
    res.on('close', stop);
  }
}

function send(res: ServerResponse, body: Uint8Array): void {
  res.writeHead(200, {
    'content-length': String(body.length),
    'content-type': 'application/octet-stream',
  });
  res.end(body);
}
