/**
 * The webhook's HTTPS server: `POST /validate` and `POST /mutate` take AdmissionReviews;
 * `GET /healthz`, `GET /readyz`, `GET /metrics`. One JSON log line per review.
 *
 * Bounded as a network service: review bodies buffered in memory are capped per request and in
 * total (503 beyond), and so are parsed reviews until they are answered; JSON nesting is capped
 * before parsing; connections are capped, in total and per client address, idle keep-alive
 * connections close after a few seconds, a request must arrive whole within the request timeout
 * (about the review deadline), and with a client CA only a client holding a certificate from it
 * (the API server) may send reviews. Set a client CA: without one anyone who reaches the port
 * can make the webhook parse reviews.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Metrics } from '../internal/index.js';
import { redactText } from '../transport/index.js';
import type { AdmissionController, Mode } from './webhook.js';

export interface ServerOptions {
  controller: AdmissionController;
  /** PEM certificate (chain) and key. */
  tls: { cert: string | Buffer; key: string | Buffer };
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Receives one structured record per event (the CLI writes them as JSON lines). */
  log?: (record: Record<string, unknown>) => void;
  /**
   * Largest review body accepted (default 3 MiB: the API server's own request limit; objects
   * are at most ~1.5 MiB in etcd).
   */
  maxBodyBytes?: number;
  /** Review bytes buffered at once, all requests together (default 32 MiB); 503 beyond. */
  maxBufferedBytes?: number;
  /**
   * Memory parsed reviews may hold until answered, all together (default 128 MiB), counted as
   * {@link PARSED_FACTOR} × the body size; 503 beyond.
   */
  maxParsedBytes?: number;
  /** Connections open at once (default 128); more are closed as they come. */
  maxConnections?: number;
  /** Connections open at once from one client address (default max(4, maxConnections / 4)). */
  maxConnectionsPerIp?: number;
  /** ms a request (headers and body) has to arrive whole (default 10 s); 408 and closed after. */
  requestTimeoutMs?: number;
  /**
   * CA certificates (PEM) of the clients allowed to send reviews (the API server's client
   * certificate); reviews from a client without one are refused (403). Probes and metrics
   * need none.
   */
  clientCa?: string | Buffer;
}

export interface RunningServer {
  readonly url: string;
  readonly metrics: Metrics;
  close(): Promise<void>;
}

/** The bytes of review bodies held in memory, all requests together. */
class Budget {
  used = 0;
  constructor(readonly max: number) {}

  /** take holds `n` bytes, or returns false when they do not fit. */
  take(n: number): boolean {
    if (this.used + n > this.max) return false;
    this.used += n;
    return true;
  }
}

/**
 * Memory a parsed review takes, per byte of its body: measured on Node 20, nested empty arrays
 * (the worst shape the nesting cap allows) cost 29× the body on the heap and 37× in RSS.
 */
export const PARSED_FACTOR = 40;

/** Deepest JSON nesting a review may have (Kubernetes objects nest a few tens of levels). */
export const MAX_JSON_DEPTH = 128;

/**
 * nestedTooDeep tells whether JSON text nests arrays and objects deeper than `max`, in one pass
 * over its bytes (brackets inside strings do not count). It runs before `JSON.parse`, whose cost
 * on deeply nested input stalls the event loop for seconds.
 */
export function nestedTooDeep(text: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * readBody reads a review body: `too large` past the per-request limit (the rest is read and
 * dropped, so the 413 reaches the client), `busy` when the bytes buffered by all requests
 * together would pass the budget. Its bytes count against the budget until it is answered.
 */
function readBody(
  req: IncomingMessage,
  limit: number,
  budget: Budget,
): Promise<{ body: Buffer; release: () => void } | 'too large' | 'busy'> {
  let held = 0;
  const release = () => {
    budget.used -= held;
    held = 0;
  };
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let refused = false;
    const refuse = (why: 'too large' | 'busy') => {
      refused = true;
      chunks.length = 0;
      release();
      resolve(why);
    };
    req.on('data', (c: Buffer) => {
      if (refused) return;
      if (held + c.length > limit) return refuse('too large');
      if (budget.used + c.length > budget.max) return refuse('busy');
      held += c.length;
      budget.used += c.length;
      chunks.push(c);
    });
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > limit) refuse('too large');
    else if (declared > budget.max - budget.used) refuse('busy');
    req.on('end', () => {
      if (!refused) resolve({ body: Buffer.concat(chunks), release });
    });
    req.on('error', (e) => {
      release();
      reject(e);
    });
    req.on('close', () => {
      // cut before the end (request timeout, client gone): free its bytes, end the handler
      if (req.complete) return;
      release();
      const e = new Error('the client closed the request before its end') as NodeJS.ErrnoException;
      e.code = 'ECONNRESET';
      reject(e);
    });
  });
}

function send(res: ServerResponse, status: number, body: string, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** startAdmissionServer listens and returns once it accepts connections. */
export async function startAdmissionServer(o: ServerOptions): Promise<RunningServer> {
  const metrics = new Metrics();
  const log = o.log ?? (() => undefined);
  const limit = o.maxBodyBytes ?? 3 * 1024 * 1024;
  const budget = new Budget(o.maxBufferedBytes ?? 32 * 1024 * 1024);
  const parsedBudget = new Budget(o.maxParsedBytes ?? 128 * 1024 * 1024);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url?.split('?')[0];
    if (req.method === 'GET' && (url === '/healthz' || url === '/readyz'))
      return send(res, 200, '{"status":"ok"}');
    if (req.method === 'GET' && url === '/metrics')
      return send(res, 200, metrics.render(), 'text/plain; version=0.0.4');
    const mode: Mode | undefined =
      url === '/validate' ? 'validate' : url === '/mutate' ? 'mutate' : undefined;
    if (mode === undefined) return send(res, 404, '{"error":"not found"}');
    if (req.method !== 'POST') return send(res, 405, '{"error":"POST an AdmissionReview"}');
    if (o.clientCa !== undefined && !(req.socket as TLSSocket).authorized) {
      metrics.inc('tufa_admission_reviews_total', { mode, result: 'error' });
      res.setHeader('connection', 'close');
      log({ level: 'warn', msg: 'review without a trusted client certificate', url });
      return send(res, 403, '{"error":"a client certificate from the configured CA is required"}');
    }
    const started = performance.now();
    const read = await readBody(req, limit, budget);
    if (read === 'too large') {
      metrics.inc('tufa_admission_reviews_total', { mode, result: 'error' });
      res.setHeader('connection', 'close');
      return send(res, 413, '{"error":"review too large"}');
    }
    const busy = (what: string, max: number) => {
      // stop reading: the connection is closed once the answer is out
      metrics.inc('tufa_admission_reviews_total', { mode, result: 'error' });
      log({ level: 'warn', msg: `busy: ${what} in memory at their limit`, max });
      res.setHeader('connection', 'close');
      res.setHeader('retry-after', '1');
      res.on('finish', () => req.socket.destroy());
      send(res, 503, `{"error":"busy: too many ${what} in flight, retry"}`);
    };
    if (read === 'busy') return busy('review bytes', budget.max);
    // a parsed review is held until it is answered: its memory counts until then
    const weight = read.body.length * PARSED_FACTOR;
    if (!parsedBudget.take(weight)) {
      read.release();
      return busy('parsed reviews', parsedBudget.max);
    }
    let outcome: Awaited<ReturnType<typeof o.controller.review>>;
    try {
      let body: unknown;
      try {
        body = nestedTooDeep(read.body, MAX_JSON_DEPTH)
          ? undefined
          : JSON.parse(read.body.toString('utf8'));
      } catch {
        body = undefined;
      } finally {
        read.release(); // parsed: the raw bytes are no longer held
      }
      outcome = await o.controller.review(body, mode);
    } finally {
      parsedBudget.used -= weight;
    }
    const seconds = (performance.now() - started) / 1000;
    const result = outcome.status !== 200 ? 'error' : outcome.allowed ? 'allowed' : 'denied';
    metrics.inc('tufa_admission_reviews_total', { mode, result });
    metrics.observe('tufa_admission_review_duration_seconds', { mode }, seconds);
    for (const v of outcome.verdicts)
      metrics.inc('tufa_admission_images_total', { result: v.allowed ? 'verified' : 'refused' });
    const r = outcome.request;
    log({
      level: outcome.allowed ? 'info' : 'warn',
      msg: 'review',
      mode,
      result,
      uid: r?.uid,
      kind: r?.kind,
      operation: r?.operation,
      namespace: r?.namespace,
      name: r?.name,
      // one entry per distinct image (a review may repeat one image in many containers); a
      // refused image may be a URL with user info, typed where an image belongs
      images: [...new Map(outcome.verdicts.map((v) => [v.image, v])).values()].map((v) =>
        v.allowed
          ? { image: v.image, pinned: v.pinned }
          : { image: redactText(v.image), code: v.code, reason: v.reason },
      ),
      ...(outcome.error ? { error: outcome.error } : {}),
      ms: Math.round(seconds * 1000 * 10) / 10,
    });
    send(res, outcome.status, JSON.stringify(outcome.body));
  };
  const requestTimeout = o.requestTimeoutMs ?? 10_000;
  const server: Server = createServer(
    {
      cert: o.tls.cert,
      key: o.tls.key,
      ...(o.clientCa === undefined
        ? {}
        : // asked for, and checked per request: probes (kubelet) have no client certificate
          { ca: o.clientCa, requestCert: true, rejectUnauthorized: false }),
      // a TLS handshake, and then a request, must come within the request timeout
      handshakeTimeout: requestTimeout,
      requestTimeout,
      headersTimeout: requestTimeout,
      // how often the request and header timeouts are checked (Node's default is 30 s)
      connectionsCheckingInterval: Math.min(1000, requestTimeout),
    },
    (req, res) => {
      handle(req, res).catch((e) => {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || req.destroyed) {
          log({ level: 'info', msg: 'client went away', url: req.url });
          return;
        }
        log({ level: 'error', msg: 'internal error', error: redactText((e as Error).message) });
        if (!res.headersSent) send(res, 500, '{"error":"internal error"}');
      });
    },
  );
  // the API server reuses a connection at once or not at all: an idle one is closed soon, so
  // idle connections cannot hold the connection cap
  server.keepAliveTimeout = Math.min(5_000, requestTimeout);
  const maxConnections = o.maxConnections ?? 128;
  server.maxConnections = maxConnections;
  // one client address (authenticated or not: counted before TLS) holds at most its share
  const perIp = o.maxConnectionsPerIp ?? Math.max(4, Math.floor(maxConnections / 4));
  const byIp = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const n = byIp.get(ip) ?? 0;
    if (n >= perIp) {
      socket.destroy();
      return;
    }
    byIp.set(ip, n + 1);
    socket.once('close', () => {
      const left = (byIp.get(ip) ?? 1) - 1;
      if (left <= 0) byIp.delete(ip);
      else byIp.set(ip, left);
    });
  });
  // A connection that sends no request is closed after the request timeout, so idle
  // connections cannot hold the connection cap; once a request comes, Node's own timeouts
  // (request, then keep-alive) take over.
  server.on('secureConnection', (socket: TLSSocket) => socket.setTimeout(requestTimeout));
  server.on('request', (req: IncomingMessage) => req.socket.setTimeout(0));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8443, o.host ?? '0.0.0.0', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `https://${host}:${addr.port}`,
    metrics,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
