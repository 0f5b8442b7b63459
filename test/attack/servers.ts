/** Tiny logging HTTP servers on 127.0.0.1 (one port = one origin) for the credential attacks. */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

export class Srv {
  readonly log: Seen[] = [];
  private readonly sockets = new Set<Socket>();
  private server?: Server;
  handler: Handler = (_q, r) => {
    r.writeHead(404).end();
  };
  port = 0;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        this.log.push({
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body,
        });
        this.handler(req, res, body);
      });
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((ok) => this.server?.listen(0, '127.0.0.1', ok));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** url on 127.0.0.1 */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  /** the same server as another origin (localhost) */
  get alt(): string {
    return `http://localhost:${this.port}`;
  }

  /** every header value any request carried, lower-cased names */
  credentialSeen(): string[] {
    const out: string[] = [];
    for (const s of this.log)
      for (const k of ['authorization', 'cookie', 'proxy-authorization', 'x-injected'])
        if (s.headers[k] !== undefined) out.push(`${s.path} ${k}: ${String(s.headers[k])}`);
    for (const s of this.log) if (/refresh_token|password/.test(s.body)) out.push(`${s.path} body: ${s.body}`);
    return out;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }
}
