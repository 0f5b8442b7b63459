/**
 * The base layer: one HTTP exchange on node:http / node:https, with every limit enforced.
 *
 * Why node:http and not undici: measured on these machines (Node 20, whole processes),
 * `import('undici')` costs 0.1–0.2 s and 17 MiB of RSS, node:https about 0.02 s, and a cold
 * `tufa tuf refresh` is otherwise well under 0.3 s; the transport is on every command's path.
 * node:http streams at the disk's pace on loopback, so nothing is gained for pulls either.
 *
 * Limits: a connect timeout, a read-gap timeout (longest silence) and the request's deadline
 * (the whole exchange, body included); a body longer than the request's `maxLength` is refused
 * as it streams (an announced `Content-Length` above it unread). No redirects, no retries, no
 * auth: those are the layers above (layers.ts, auth.ts).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { TransportError } from './errors.js';
import { redact } from './redact.js';
import type { Transport, TransportRequest, TransportResponse } from './types.js';

/** Network limits of the base layer (ms). */
export interface NodeTransportConfig {
  /** Time to establish a connection (TCP + TLS). */
  connectTimeout: number;
  /** Longest silence between two chunks of an answer. */
  readGapTimeout: number;
  /** The default deadline of a request that names none. */
  totalTimeout: number;
  /** Extra CA certificates (PEM) for HTTPS, besides the system's. */
  ca?: string | readonly string[];
  /** Connections per origin at most (a webhook under load queues instead of exhausting fds). */
  maxSocketsPerOrigin: number;
  userAgent: string;
}

export const DEFAULT_NODE_CONFIG: Readonly<NodeTransportConfig> = Object.freeze({
  connectTimeout: 10_000,
  readGapTimeout: 15_000,
  totalTimeout: 120_000,
  maxSocketsPerOrigin: 8,
  userAgent: 'tufa',
});

/** Bodies of non-2xx answers are read this far at most (for diagnostics). */
const ERROR_BODY_LIMIT = 64 * 1024;

class Timeout extends Error {}

/** HTTP and HTTPS on node's own modules, keep-alive connections pooled per origin. */
export class NodeTransport implements Transport {
  readonly config: NodeTransportConfig;
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;

  constructor(config: Partial<NodeTransportConfig> = {}) {
    this.config = { ...DEFAULT_NODE_CONFIG, ...config };
    const pool = { keepAlive: true, maxSockets: this.config.maxSocketsPerOrigin };
    const ca = this.config.ca;
    this.http = new HttpAgent(pool);
    this.https = new HttpsAgent({
      ...pool,
      // an extra CA adds to the system's trust store, it does not replace it
      ...(ca === undefined
        ? {}
        : { ca: [...rootCertificates, ...(typeof ca === 'string' ? [ca] : ca)] }),
    });
  }

  async close(): Promise<void> {
    this.http.destroy();
    this.https.destroy();
  }

  send(r: TransportRequest): Promise<TransportResponse> {
    let u: URL;
    try {
      u = new URL(r.url);
    } catch {
      return Promise.reject(new TransportError('REFUSED', `not a URL: ${redact(r.url)}`));
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      return Promise.reject(
        new TransportError('REFUSED', `${redact(r.url)}: only http and https URLs are fetched`),
      );
    }
    if (!Number.isSafeInteger(r.maxLength) || r.maxLength < 0) {
      return Promise.reject(new RangeError(`maxLength: expected a non-negative integer`));
    }
    const where = redact(r.url);
    const deadline = r.deadline ?? performance.now() + this.config.totalTimeout;
    return new Promise((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const clear = () => {
        for (const t of timers) clearTimeout(t);
        r.signal?.removeEventListener('abort', onAbort);
      };
      let answered = false;
      // why the exchange was cut (a deadline, an abort): the body stream only says "aborted"
      let killedBy: Error | undefined;
      const kill = (why: Error) => {
        killedBy ??= why;
        req.destroy(why);
      };
      const fail = (e: unknown) => {
        clear();
        req.destroy();
        if (!answered) {
          answered = true;
          reject(mapError(killedBy ?? e, where, r.signal));
        }
      };
      const onAbort = () => kill(new TransportError('ABORTED', `${where}: aborted`));
      if (r.signal?.aborted) {
        reject(new TransportError('ABORTED', `${where}: aborted`));
        return;
      }
      r.signal?.addEventListener('abort', onAbort, { once: true });
      const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(u, {
        method: r.method ?? 'GET',
        headers: { 'user-agent': this.config.userAgent, ...r.headers },
        agent: u.protocol === 'https:' ? this.https : this.http,
      });
      // the whole exchange, body included, ends by the deadline
      timers.push(
        setTimeout(
          () => kill(new Timeout('deadline passed')),
          Math.max(0, deadline - performance.now()),
        ),
      );
      const connectTimer = setTimeout(
        () => kill(new Timeout('connect timeout')),
        this.config.connectTimeout,
      );
      timers.push(connectTimer);
      req.on('socket', (socket) => {
        const connected = () => clearTimeout(connectTimer);
        if (!socket.connecting) connected();
        else socket.once(u.protocol === 'https:' ? 'secureConnect' : 'connect', connected);
      });
      req.setTimeout(this.config.readGapTimeout, () => kill(new Timeout('read gap timeout')));
      req.on('error', fail);
      req.on('response', (res) => {
        answered = true;
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        const limit = ok ? r.maxLength : Math.min(r.maxLength, ERROR_BODY_LIMIT);
        const declared = Number(res.headers['content-length'] ?? Number.NaN);
        if (ok && r.method !== 'HEAD' && declared > limit) {
          clear();
          req.destroy();
          reject(
            new TransportError(
              'TOO_LARGE',
              `${where}: ${declared} bytes announced, more than the limit of ${limit}`,
            ),
          );
          return;
        }
        resolve(
          new NodeResponse(res, r.url, limit, ok, where, r.signal, (complete) => {
            clear();
            // a body read to its end leaves the connection to the pool; anything else closes it
            if (!complete) req.destroy();
            return killedBy;
          }),
        );
      });
      req.end(r.body === undefined ? undefined : Buffer.from(r.body));
    });
  }
}

function mapError(e: unknown, where: string, signal: AbortSignal | undefined): TransportError {
  if (e instanceof TransportError) return e;
  if (e instanceof Timeout)
    return new TransportError('TIMEOUT', `${where}: too slow (${e.message})`);
  if (signal?.aborted) return new TransportError('ABORTED', `${where}: aborted`, { cause: e });
  return new TransportError('NETWORK', `${where}: ${(e as Error)?.message ?? String(e)}`, {
    cause: e,
  });
}

function headersOf(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** A response whose body streams within the request's limits. */
class NodeResponse implements TransportResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  private consumed = false;

  constructor(
    private readonly res: IncomingMessage,
    readonly url: string,
    private readonly limit: number,
    private readonly ok: boolean,
    private readonly where: string,
    private readonly signal: AbortSignal | undefined,
    /** Ends the exchange; returns why it was cut short, if it was. */
    private readonly finish: (complete: boolean) => Error | undefined,
  ) {
    this.status = res.statusCode ?? 0;
    this.headers = headersOf(res);
  }

  get body(): AsyncIterable<Uint8Array> {
    return this.stream();
  }

  private async *stream(): AsyncGenerator<Uint8Array> {
    if (this.consumed) throw new Error('the body was already read');
    this.consumed = true;
    let total = 0;
    let complete = false;
    try {
      for await (const chunk of this.res) {
        const c = chunk as Buffer;
        total += c.length;
        if (total > this.limit) {
          if (!this.ok) return; // an error answer's body is only diagnostics: stop reading
          throw new TransportError(
            'TOO_LARGE',
            `${this.where}: more than the limit of ${this.limit} bytes`,
          );
        }
        yield c;
      }
      if (!this.res.complete) {
        throw new TransportError(
          'NETWORK',
          `${this.where}: the connection closed before the body was complete`,
        );
      }
      complete = true;
    } catch (e) {
      throw mapError(this.finish(false) ?? e, this.where, this.signal);
    } finally {
      this.finish(complete);
    }
  }

  async bytes(): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const c of this.stream()) {
      chunks.push(c);
      total += c.length;
    }
    return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks, total);
  }

  async discard(): Promise<void> {
    if (this.consumed) return;
    if (!this.ok) {
      // an error answer's body is small (read up to 64 KiB): read it, so the connection goes
      // back to the pool instead of holding a pooled socket until it times out
      await this.bytes().catch(() => undefined);
      return;
    }
    this.consumed = true;
    // a body that has fully arrived is drained so its connection returns to the pool; an
    // unread one closes the connection (the response too, or the pool keeps its socket)
    if (this.res.complete) this.res.resume();
    else this.res.destroy();
    this.finish(this.res.complete);
  }
}
