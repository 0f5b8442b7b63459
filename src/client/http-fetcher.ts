/**
 * The HTTP(S) fetcher of TUF metadata and targets, on node:http/node:https.
 *
 * Not on undici, unlike the registry client: loading undici costs ~90 ms per process on these
 * machines, most of the 200 ms a cold `tufa tuf refresh` of 10k targets may take. node:http is
 * already in the runtime.
 *
 * Limits: every body is read against a maximum length (a longer one is refused as it streams,
 * and an announced Content-Length above it is refused unread); a connect timeout, a read-gap
 * timeout and a total timeout per request (slow retrieval); retries only after a 5xx or a
 * network failure; redirects followed by hand, never from https to http, with credentials sent
 * to the first origin only.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { DownloadError, DownloadHttpError } from '../core/index.js';
import { headersForHop, mayAnswerChallenge, redact } from '../internal/index.js';
import { DEFAULT_FETCHER_CONFIG, type FetcherConfig } from './config.js';
import type { Fetcher } from './fetcher.js';

/** Download errors caused by the network (connection refused, reset, …): worth a retry. */
const NETWORK_FAILURES = new WeakSet<object>();

class Timeout extends Error {}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** An HTTP(S) fetcher with bounded reads and timeouts. */
export class HttpFetcher implements Fetcher {
  readonly config: FetcherConfig;
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;
  private readonly headers: Record<string, string>;

  /**
   * @param headers - extra request headers (e.g. Authorization for a private repository); they
   *   are sent to the first origin only, never across a redirect to another origin
   */
  constructor(config: Partial<FetcherConfig> = {}, headers: Record<string, string> = {}) {
    this.config = { ...DEFAULT_FETCHER_CONFIG, ...config };
    this.http = new HttpAgent({ keepAlive: true, maxSockets: 8 });
    this.https = new HttpsAgent({
      keepAlive: true,
      maxSockets: 8,
      // an extra CA adds to the system's trust store, it does not replace it
      ...(this.config.ca === undefined ? {} : { ca: [...rootCertificates, this.config.ca] }),
    });
    this.headers = { 'user-agent': this.config.userAgent, ...headers };
  }

  async close(): Promise<void> {
    this.http.destroy();
    this.https.destroy();
  }

  async fetch(
    url: string,
    maxLength: number,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<Uint8Array> {
    if (!Number.isSafeInteger(maxLength) || maxLength < 0) {
      throw new RangeError(`maxLength: expected a non-negative integer, got ${maxLength}`);
    }
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) {
        throw new DownloadError(`${redact(url)}: aborted (deadline)`, {
          code: 'SLOW_RETRIEVAL',
          cause: signal.reason,
        });
      }
      try {
        return await this.fetchOnce(url, maxLength, headers, signal);
      } catch (e) {
        // Only a 5xx answer or a network failure may pass on retry; a policy refusal
        // (size, redirects, scheme), a timeout or a 4xx would only happen again.
        const retryable =
          e instanceof DownloadHttpError ? e.statusCode >= 500 : NETWORK_FAILURES.has(e as object);
        if (!retryable || attempt >= this.config.retries) throw e;
        await sleep(100 * 2 ** attempt);
      }
    }
  }

  private async fetchOnce(
    url: string,
    maxLength: number,
    extra: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    const deadline = performance.now() + this.config.totalTimeout;
    const origin = new URL(url).origin;
    let current = url;
    for (let hop = 0; ; hop++) {
      const u = new URL(current);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new DownloadError(`${redact(current)}: only http and https URLs are fetched`);
      }
      // Credentials go to the first origin only, never to a redirect target elsewhere.
      const headers = headersForHop(origin, u, { ...this.headers, ...extra });
      const r = await this.exchange(u, headers, maxLength, deadline, origin, signal);
      if (r.kind === 'redirect') {
        if (hop >= this.config.maxRedirects) {
          throw new DownloadError(
            `${redact(url)}: more than ${this.config.maxRedirects} redirects`,
          );
        }
        const next = new URL(r.location, current);
        if (u.protocol === 'https:' && next.protocol !== 'https:') {
          throw new DownloadError(
            `${redact(current)}: refusing a redirect from https to ${next.protocol}`,
          );
        }
        current = next.toString();
        continue;
      }
      return r.body;
    }
  }

  /**
   * exchange makes one request and reads (or refuses) its answer within all the limits. A 401
   * carries its challenge only when `origin` (where the request was first sent) answered it:
   * a redirect target's challenge is nobody's to answer.
   */
  private exchange(
    u: URL,
    headers: Record<string, string>,
    maxLength: number,
    deadline: number,
    origin: string,
    signal: AbortSignal | undefined,
  ): Promise<{ kind: 'redirect'; location: string } | { kind: 'body'; body: Uint8Array }> {
    const where = redact(u.toString());
    return new Promise((resolve, reject) => {
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const aborted = () => fail(new Timeout('aborted'));
      const done = (f: () => void) => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        signal?.removeEventListener('abort', aborted);
        f();
      };
      const fail = (e: unknown, res?: IncomingMessage) => {
        // settle first: destroying the streams below emits errors that must not win
        setImmediate(() => {
          req.destroy();
          res?.destroy();
        });
        done(() => {
          if (e instanceof DownloadError) return reject(e);
          if (e instanceof Timeout) {
            return reject(
              new DownloadError(`${where}: too slow (${e.message})`, { code: 'SLOW_RETRIEVAL' }),
            );
          }
          const failure = new DownloadError(`${where}: ${(e as Error)?.message ?? String(e)}`, {
            cause: e,
          });
          NETWORK_FAILURES.add(failure);
          reject(failure);
        });
      };
      const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(u, {
        method: 'GET',
        headers,
        agent: u.protocol === 'https:' ? this.https : this.http,
      });
      // the caller's signal cuts the request at once (a review's deadline)
      if (signal?.aborted) aborted();
      else signal?.addEventListener('abort', aborted, { once: true });
      // the whole exchange, redirects included, ends by the deadline
      timers.push(
        setTimeout(
          () => fail(new Timeout('total timeout')),
          Math.max(0, deadline - performance.now()),
        ),
      );
      // connecting has its own bound; after that, silence of readGapTimeout ends it
      const connectTimer = setTimeout(
        () => fail(new Timeout('connect timeout')),
        this.config.connectTimeout,
      );
      timers.push(connectTimer);
      req.on('socket', (socket) => {
        const connected = () => clearTimeout(connectTimer);
        if (!socket.connecting) connected();
        else socket.once(u.protocol === 'https:' ? 'secureConnect' : 'connect', connected);
      });
      req.setTimeout(this.config.readGapTimeout, () => fail(new Timeout('read gap timeout')));
      req.on('error', (e) => fail(e));
      req.on('response', (res) => {
        res.on('error', (e) => fail(e, res));
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location !== undefined) {
          res.resume();
          done(() => resolve({ kind: 'redirect', location: res.headers.location as string }));
          return;
        }
        if (status !== 200) {
          res.resume();
          const challenge = res.headers['www-authenticate'];
          const own = mayAnswerChallenge(origin, u);
          fail(
            new DownloadHttpError(
              own || status !== 401
                ? `${where}: HTTP ${status}`
                : `${where}: HTTP 401 from a redirect target (credentials are sent only to ${origin})`,
              status,
              own && typeof challenge === 'string' ? challenge : undefined,
            ),
            res,
          );
          return;
        }
        const declared = Number(res.headers['content-length'] ?? Number.NaN);
        if (declared > maxLength) {
          fail(
            new DownloadError(
              `${where}: ${declared} bytes announced, more than the limit of ${maxLength}`,
              { code: 'TOO_LARGE' },
            ),
            res,
          );
          return;
        }
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (c: Buffer) => {
          total += c.length;
          if (total > maxLength) {
            fail(
              new DownloadError(`${where}: more than the limit of ${maxLength} bytes`, {
                code: 'TOO_LARGE',
              }),
              res,
            );
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          if (!res.complete) {
            fail(new Error('the connection closed before the body was complete'), res);
            return;
          }
          done(() =>
            resolve({
              kind: 'body',
              body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total),
            }),
          );
        });
        res.on('aborted', () =>
          fail(new Error('the connection closed before the body was complete'), res),
        );
      });
      req.end();
    });
  }
}
