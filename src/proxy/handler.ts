/**
 * A verifying registry front: a read-only OCI distribution endpoint in front of upstream
 * registries that serves only what the trust policy lets through. Mount
 * {@link createVerifyingRegistryHandler} in any Node HTTP(S) server, or run `tufa proxy`.
 *
 * - Manifests by tag are verified ({@link ImageVerifier}: the tag finds the signed target, the
 *   manifest is fetched upstream by the signed digest and hashed) and served as those bytes.
 *   By digest: when the digest is signed for that repository (`registry/repo@sha256:…`), or is
 *   a child of a signed index this handler served (the index is verified again each time).
 *   Anything else is `403 DENIED`, naming the image and the rule.
 * - Blobs are served for repositories a policy rule covers, streamed from upstream by digest
 *   and hashed on the way; the last chunk is held back until the digest checked, so a mismatch
 *   ends the response short of its Content-Length (a failed transfer, never wrong bytes that
 *   look complete). A blob is content addressed: clients only reach it through a manifest,
 *   which only comes from here verified. Blobs are not tied to the manifests served (which
 *   would need state shared by replicas).
 * - Trust refreshes and verified manifests are shared by all requests (the verifier's); manifest
 *   verifications and blob streams are bounded ({@link Limiter}), blob streams per client address
 *   too; no request waits forever: a blob request waits a bounded time for a stream (then
 *   `503 TOOMANYREQUESTS`, Retry-After), and a client that stops reading is cut off.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TufaError } from '../core/index.js';
import { Limiter, Metrics } from '../internal/index.js';
import {
  type Descriptor,
  isDigest,
  OciError,
  Reference,
  type RegistryClient,
  RegistrySource,
} from '../oci/index.js';
import { redactText } from '../transport/index.js';
import type { ImageVerifier } from '../verify/index.js';

export interface VerifyingRegistryOptions {
  /** Verifies manifests under the trust policy; keeps the shared refreshes and caches. */
  readonly verifier: ImageVerifier;
  /** The upstream registries' client: manifests by the signed digest, blobs by digest. */
  readonly registry: RegistryClient;
  /**
   * The registry of names asked for without one (`/v2/demo/app/…` is `<upstream>/demo/app`).
   * Without it a name is read as Docker reads it (`registry.example/demo/app`, else docker.io).
   * A client naming its registry (containerd's `?ns=`) is taken at its word: the policy decides.
   */
  readonly upstream?: string;
  /** Manifest verifications at once (default 16); the rest wait. */
  readonly maxVerifications?: number;
  /** Blob streams at once (default 8: the upstream connection pool per registry); the rest wait. */
  readonly maxBlobStreams?: number;
  /** Blob streams at once for one client address (default 4); its others wait. */
  readonly maxBlobStreamsPerClient?: number;
  /** ms a blob request may wait for a stream (default 10 s); then `503 TOOMANYREQUESTS`. */
  readonly queueTimeoutMs?: number;
  /** ms a blob stream may wait for its client to read (default 30 s); then it is cut. */
  readonly stallTimeoutMs?: number;
  /** ms a manifest request may take (default 30 s). */
  readonly deadlineMs?: number;
  /** Children of signed indexes remembered (default 4,096). */
  readonly maxChildren?: number;
  readonly metrics?: Metrics;
  /** One record per manifest request and per failed blob. */
  readonly log?: (record: Record<string, unknown>) => void;
}

export type RegistryHandler = ((req: IncomingMessage, res: ServerResponse) => void) & {
  readonly metrics: Metrics;
};

/** An OCI error response. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const HOST = /^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$/;
const ROUTE = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/;

/** A child of a signed index: the index's reference (verified again) and its entry. */
interface Child {
  readonly parent: string;
  readonly parentDigest: string;
  readonly desc: Descriptor;
}

export function createVerifyingRegistryHandler(o: VerifyingRegistryOptions): RegistryHandler {
  const metrics = o.metrics ?? new Metrics();
  const verifications = new Limiter(o.maxVerifications ?? 16);
  // one client address may hold only some of the streams: a client that stops reading holds its
  // own until the write-progress timeout cuts them, never every client's
  const streams = new Limiter(o.maxBlobStreams ?? 8, o.maxBlobStreamsPerClient ?? 4);
  const queueMs = o.queueTimeoutMs ?? 10_000;
  const stallMs = o.stallTimeoutMs ?? 30_000;
  const children = new Map<string, Child>();
  const v = o.verifier;
  const upstream = o.registry;

  /** reference reads the image a route names (`name` and `ns` as the client sent them). */
  const reference = (name: string, ns: string | null, ref: string): Reference => {
    if (!NAME.test(name) && !(HOST.test(name.split('/')[0] ?? '') && name.includes('/')))
      throw new HttpError(400, 'NAME_INVALID', `invalid repository name ${JSON.stringify(name)}`);
    if (ns !== null && !HOST.test(ns))
      throw new HttpError(400, 'NAME_INVALID', `invalid ns ${JSON.stringify(ns)}`);
    const full = ns !== null ? `${ns}/${name}` : o.upstream ? `${o.upstream}/${name}` : name;
    try {
      return Reference.parse(`${full}${isDigest(ref) ? '@' : ':'}${ref}`);
    } catch (e) {
      throw new HttpError(400, 'NAME_INVALID', (e as Error).message);
    }
  };

  /** denial turns a failed verification into the answer: 403 for trust, 502 for upstream. */
  const denial = (image: string, e: unknown, kind: string): HttpError => {
    if (e instanceof HttpError) return e;
    const rule = (() => {
      try {
        return v.policy.match(Reference.parse(image).name)?.match;
      } catch {
        return undefined;
      }
    })();
    const by = rule === undefined ? 'no trust policy rule' : `rule ${rule}`;
    const msg = redactText((e as Error).message);
    if (e instanceof OciError && e.code === 'NOT_FOUND')
      return new HttpError(
        404,
        kind === 'blobs' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN',
        `${image}: ${msg}`,
      );
    if (e instanceof TufaError)
      return new HttpError(403, 'DENIED', `${image} denied (${by}): ${e.code}: ${msg}`);
    if (e instanceof OciError && e.code !== 'REGISTRY_UNAVAILABLE' && e.code !== 'UNAUTHORIZED')
      return new HttpError(403, 'DENIED', `${image} denied (${by}): ${e.code}: ${msg}`);
    return new HttpError(502, 'UNKNOWN', `${image}: upstream: ${msg}`);
  };

  const remember = (c: Child, name: string): void => {
    const key = `${name}@${c.desc.digest}`;
    children.delete(key);
    children.set(key, c);
    const max = o.maxChildren ?? 4096;
    for (const k of children.keys()) {
      if (children.size <= max) break;
      children.delete(k);
    }
  };

  const manifest = async (
    ref: Reference,
    signal: AbortSignal,
  ): Promise<{ bytes: Uint8Array; mediaType: string; digest: string }> => {
    const verify = (image: string) => {
      const r = Reference.parse(image);
      return verifications.run(signal, () =>
        v.verify(r, new RegistrySource(upstream, r), { signal }),
      );
    };
    const child = ref.tag === undefined ? children.get(ref.toString()) : undefined;
    if (child !== undefined) {
      // a child of a signed index: the index must still verify as the same digest
      const parent = await verify(child.parent);
      if (parent.digest === child.parentDigest) {
        const m = await verifications.run(signal, () =>
          upstream.getManifest(ref, child.desc.digest, child.desc.size, { signal }),
        );
        if (m.bytes.length !== child.desc.size)
          throw new OciError('SIZE_MISMATCH', `${ref}: not the size its signed index gives`);
        return { bytes: m.bytes, mediaType: child.desc.mediaType, digest: child.desc.digest };
      }
      children.delete(ref.toString());
    }
    const image = await verify(ref.toString());
    if (image.parsed.kind === 'index') {
      for (const desc of image.parsed.manifests)
        remember({ parent: ref.toString(), parentDigest: image.digest, desc }, ref.name);
    }
    return { bytes: image.manifest, mediaType: image.parsed.mediaType, digest: image.digest };
  };

  const serveManifest = async (
    req: IncomingMessage,
    res: ServerResponse,
    ref: Reference,
    signal: AbortSignal,
  ): Promise<void> => {
    const m = await manifest(ref, signal);
    res.writeHead(200, {
      'content-type': m.mediaType,
      'content-length': m.bytes.length,
      'docker-content-digest': m.digest,
    });
    res.end(req.method === 'HEAD' ? undefined : m.bytes);
  };

  const serveBlob = async (
    req: IncomingMessage,
    res: ServerResponse,
    ref: Reference,
    signal: AbortSignal,
  ): Promise<void> => {
    const rule = v.policy.match(ref.name);
    if (rule === undefined)
      throw new HttpError(403, 'DENIED', `${ref.name}: no trust policy rule matches it (denied)`);
    const digest = ref.digest as string;
    // a stream is waited for a bounded time, then the client is told to come back
    const wait = AbortSignal.any([signal, AbortSignal.timeout(queueMs)]);
    let started = false;
    const client = req.socket.remoteAddress ?? '';
    await streams
      .run(
        wait,
        async () => {
          started = true;
          const size = await upstream.blobSize(ref, digest, { signal });
          const head = () =>
            res.writeHead(200, {
              'content-type': 'application/octet-stream',
              'content-length': size,
              'docker-content-digest': digest,
            });
          if (req.method === 'HEAD') {
            head();
            res.end();
            return;
          }
          // the last chunk waits for the digest check: wrong bytes never arrive complete
          let held: Uint8Array | undefined;
          const write = async (c: Uint8Array) => {
            if (!res.headersSent) head();
            if (!res.write(c) && !signal.aborted)
              await new Promise<void>((ok) => {
                // a client that reads nothing for stallMs is cut off (the close aborts the copy)
                const stalled = setTimeout(() => res.destroy(), stallMs);
                const done = () => {
                  clearTimeout(stalled);
                  res.off('drain', done);
                  signal.removeEventListener('abort', done);
                  ok();
                };
                res.once('drain', done);
                signal.addEventListener('abort', done, { once: true });
              });
          };
          await upstream.copyBlob(
            ref,
            { mediaType: 'application/octet-stream', digest, size },
            async (c) => {
              if (held !== undefined) await write(held);
              held = c;
              if (signal.aborted)
                throw new OciError('REGISTRY_UNAVAILABLE', 'the client went away');
            },
            3,
            { signal },
          );
          if (held !== undefined) await write(held);
          if (!res.headersSent) head();
          res.end();
          metrics.inc('tufa_proxy_blob_bytes_total', {}, size);
        },
        client,
      )
      .catch((e: unknown) => {
        if (started || signal.aborted) throw e;
        throw new HttpError(
          503,
          'TOOMANYREQUESTS',
          `no blob stream free for this client within ${queueMs} ms; retry later`,
          { 'retry-after': String(Math.max(1, Math.ceil(queueMs / 1000))), connection: 'close' },
        );
      });
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const stop = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) stop.abort(new Error('the client went away'));
    });
    let timer: NodeJS.Timeout | undefined;
    let route = 'other';
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const answer = async (): Promise<void> => {
      if (url.pathname === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      }
      if (url.pathname === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.render());
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD')
        throw new HttpError(405, 'UNSUPPORTED', 'this registry is read-only');
      if (url.pathname === '/v2/' || url.pathname === '/v2') {
        route = 'base';
        res
          .writeHead(200, {
            'content-type': 'application/json',
            'docker-distribution-api-version': 'registry/2.0',
          })
          .end('{}');
        return;
      }
      const m = ROUTE.exec(url.pathname);
      if (m === null) throw new HttpError(404, 'UNSUPPORTED', 'not served by this registry');
      const [, name, kind, ref] = m as unknown as [string, string, string, string];
      route = kind;
      if (kind === 'blobs' && !isDigest(ref))
        throw new HttpError(400, 'DIGEST_INVALID', `${ref}: a blob is asked for by sha256 digest`);
      const r = reference(name, url.searchParams.get('ns'), ref);
      try {
        if (kind === 'manifests') {
          // a manifest has a deadline; a blob stream only the copy's own, growing with its size
          timer = setTimeout(() => stop.abort(new Error('deadline')), o.deadlineMs ?? 30_000);
          await serveManifest(req, res, r, stop.signal);
        } else await serveBlob(req, res, r, stop.signal);
        o.log?.({ level: 'info', msg: kind, image: r.toString(), status: 200 });
      } catch (e) {
        throw denial(r.toString(), e, kind);
      }
    };
    answer()
      .catch((e: unknown) => {
        const err =
          e instanceof HttpError ? e : new HttpError(500, 'UNKNOWN', redactText(String(e)));
        o.log?.({
          level: 'warn',
          msg: route,
          path: url.pathname,
          status: err.status,
          error: err.message,
        });
        if (res.headersSent) {
          res.destroy(); // mid-body: the client sees a failed transfer
          return;
        }
        sendError(req, res, err);
      })
      .finally(() => {
        clearTimeout(timer);
        metrics.inc('tufa_proxy_requests_total', { route, status: String(res.statusCode) });
        metrics.observe(
          'tufa_proxy_request_seconds',
          { route },
          (performance.now() - started) / 1000,
        );
      });
  };
  return Object.assign(handler, { metrics });
}

/** sendError answers with an OCI error body (none to a HEAD). */
export function sendError(req: IncomingMessage, res: ServerResponse, err: HttpError): void {
  const body = JSON.stringify({ errors: [{ code: err.code, message: err.message }] });
  res.writeHead(err.status, {
    ...err.headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
