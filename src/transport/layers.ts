/**
 * The layers between the base exchange and authentication: redirects and retries.
 *
 * - {@link RedirectLayer}: follows 301/302/303/307/308 for GET and HEAD, a bounded number of
 *   times, never from https to http; from the first hop that leaves the request's origin on,
 *   only the harmless headers are kept (`CROSS_ORIGIN_HEADERS`: `Authorization`, `Cookie`,
 *   `Proxy-Authorization`, API-key headers and any other a caller set are dropped), and what
 *   was dropped stays dropped.
 * - {@link RetryLayer}: sends an idempotent request again after a network failure or a 5xx
 *   answer, with a short backoff, within the request's deadline. A timeout, a size violation, a
 *   refused redirect or a 4xx would only happen again: never retried.
 */
import { TransportError } from './errors.js';
import { headersForHop } from './origin.js';
import { redact } from './redact.js';
import type { Transport, TransportRequest, TransportResponse } from './types.js';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Follows redirects by hand, with the header rule above. */
export class RedirectLayer implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly maxRedirects = 5,
  ) {}

  close(): Promise<void> {
    return this.inner.close();
  }

  async send(r: TransportRequest): Promise<TransportResponse> {
    const method = r.method ?? 'GET';
    const origin = new URL(r.url).origin;
    let url = r.url;
    let headers = r.headers;
    for (let hop = 0; ; hop++) {
      const res = await this.inner.send({ ...r, url, ...(headers ? { headers } : {}) });
      const location = res.headers.location;
      if (!REDIRECTS.has(res.status) || location === undefined) return res;
      if (method !== 'GET' && method !== 'HEAD') return res; // the caller decides
      await res.discard();
      if (hop >= this.maxRedirects) {
        throw new TransportError(
          'REFUSED',
          `${redact(r.url)}: more than ${this.maxRedirects} redirects`,
        );
      }
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new TransportError('REFUSED', `${redact(url)}: a redirect to an invalid URL`);
      }
      if (new URL(url).protocol === 'https:' && next.protocol !== 'https:') {
        throw new TransportError(
          'REFUSED',
          `${redact(url)}: refusing a redirect from https to ${next.protocol}`,
        );
      }
      // Credentials (and any header that may be one) go to the first origin only, never to a
      // redirect target elsewhere (containerd CVE-2020-15157 and its kin); once dropped they
      // stay dropped.
      if (next.origin !== origin) headers = headersForHop(origin, next, headers ?? {});
      url = next.toString();
    }
  }
}

/** Retries idempotent requests after a network failure or a 5xx answer. */
export class RetryLayer implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly retries = 2,
    private readonly backoffMs = 100,
  ) {}

  close(): Promise<void> {
    return this.inner.close();
  }

  async send(r: TransportRequest): Promise<TransportResponse> {
    const method = r.method ?? 'GET';
    const idempotent = method === 'GET' || method === 'HEAD' || method === 'PUT';
    for (let attempt = 0; ; attempt++) {
      const last = !idempotent || attempt >= this.retries || r.signal?.aborted === true;
      const wait = this.backoffMs * 2 ** attempt;
      const time = r.deadline === undefined || performance.now() + wait < r.deadline;
      try {
        const res = await this.inner.send(r);
        if (res.status < 500 || last || !time) return res;
        await res.discard();
      } catch (e) {
        if (!(e instanceof TransportError) || !e.retryable || last || !time) throw e;
      }
      await new Promise((ok) => setTimeout(ok, wait));
    }
  }
}
