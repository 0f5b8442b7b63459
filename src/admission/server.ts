/**
 * The webhook's HTTPS server: `POST /validate` and `POST /mutate` take AdmissionReviews;
 * `GET /healthz`, `GET /readyz`, `GET /metrics`. One JSON log line per review.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { redactText } from '../internal/index.js';
import { Metrics } from './metrics.js';
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
  /** Largest review body accepted (default 4 MiB; Kubernetes objects are at most ~1.5 MiB). */
  maxBodyBytes?: number;
}

export interface RunningServer {
  readonly url: string;
  readonly metrics: Metrics;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      if (tooLarge) return; // drain the rest, so the 413 reaches the client
      size += c.length;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        resolve(undefined); // answer now; the rest of the body is read and dropped
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
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
  const limit = o.maxBodyBytes ?? 4 * 1024 * 1024;
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
    const started = performance.now();
    const raw = await readBody(req, limit);
    if (raw === undefined) {
      metrics.inc('tufa_admission_reviews_total', { mode, result: 'error' });
      res.setHeader('connection', 'close');
      return send(res, 413, '{"error":"review too large"}');
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      body = undefined;
    }
    const outcome = await o.controller.review(body, mode);
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
      images: outcome.verdicts.map((v) =>
        v.allowed
          ? { image: v.image, pinned: v.pinned }
          : { image: v.image, code: v.code, reason: v.reason },
      ),
      ...(outcome.error ? { error: outcome.error } : {}),
      ms: Math.round(seconds * 1000 * 10) / 10,
    });
    send(res, outcome.status, JSON.stringify(outcome.body));
  };
  const server: Server = createServer({ cert: o.tls.cert, key: o.tls.key }, (req, res) => {
    handle(req, res).catch((e) => {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || req.destroyed) {
        log({ level: 'info', msg: 'client went away', url: req.url });
        return;
      }
      log({ level: 'error', msg: 'internal error', error: redactText((e as Error).message) });
      if (!res.headersSent) send(res, 500, '{"error":"internal error"}');
    });
  });
  server.keepAliveTimeout = 65_000;
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
