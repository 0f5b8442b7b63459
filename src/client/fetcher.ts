/**
 * Fetchers: how the client gets bytes. Every read has a maximum length that is enforced while
 * the body streams (endless data), every request has a connect timeout, a read-gap timeout and a
 * total timeout (slow retrieval), and anything that goes wrong is a {@link DownloadError}.
 */
import { readFile, stat } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Agent, request, errors as undiciErrors } from 'undici';
import { DownloadError, DownloadHttpError } from '../core/index.js';
import { redact } from '../internal/index.js';
import { DEFAULT_FETCHER_CONFIG, type FetcherConfig } from './config.js';

/** Gets the bytes at a URL. */
export interface Fetcher {
  /**
   * fetch returns the body of `url`, at most `maxLength` bytes.
   * @throws {@link DownloadError} (code `TOO_LARGE` past the limit, `SLOW_RETRIEVAL` on a
   *   timeout) or {@link DownloadHttpError} for a status other than 200
   */
  fetch(url: string, maxLength: number, headers?: Record<string, string>): Promise<Uint8Array>;
}

/** Download errors caused by the network (connection refused, reset, …): worth a retry. */
const NETWORK_FAILURES = new WeakSet<object>();

const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

function isTimeout(e: unknown): boolean {
  return (
    e instanceof undiciErrors.ConnectTimeoutError ||
    e instanceof undiciErrors.HeadersTimeoutError ||
    e instanceof undiciErrors.BodyTimeoutError ||
    (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError'))
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** An HTTP(S) fetcher on undici. */
export class HttpFetcher implements Fetcher {
  readonly config: FetcherConfig;
  private readonly agent: Agent;
  private readonly headers: Record<string, string>;

  /**
   * @param headers - extra request headers (e.g. Authorization for a private repository); they
   *   are sent to the first origin only, never across a redirect to another origin
   */
  constructor(config: Partial<FetcherConfig> = {}, headers: Record<string, string> = {}) {
    this.config = { ...DEFAULT_FETCHER_CONFIG, ...config };
    this.agent = new Agent({
      connect: {
        timeout: this.config.connectTimeout,
        // an extra CA adds to the system's trust store, it does not replace it
        ...(this.config.ca === undefined ? {} : { ca: [...rootCertificates, this.config.ca] }),
      },
      headersTimeout: this.config.readGapTimeout,
      bodyTimeout: this.config.readGapTimeout,
    });
    this.headers = { 'user-agent': this.config.userAgent, ...headers };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  async fetch(
    url: string,
    maxLength: number,
    headers: Record<string, string> = {},
  ): Promise<Uint8Array> {
    if (!Number.isSafeInteger(maxLength) || maxLength < 0) {
      throw new RangeError(`maxLength: expected a non-negative integer, got ${maxLength}`);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.fetchOnce(url, maxLength, headers);
      } catch (e) {
        // Only a 5xx answer or a network failure may pass on retry; a policy refusal
        // (size, redirects, scheme) or a 4xx would only happen again.
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
  ): Promise<Uint8Array> {
    const signal = AbortSignal.timeout(this.config.totalTimeout);
    const origin = new URL(url).origin;
    let current = url;
    try {
      for (let hop = 0; ; hop++) {
        const u = new URL(current);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') {
          throw new DownloadError(`${redact(current)}: only http and https URLs are fetched`);
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries({ ...this.headers, ...extra })) {
          // Credentials go to the first origin only, never to a redirect target elsewhere.
          if (u.origin === origin || !CREDENTIAL_HEADERS.has(k.toLowerCase())) headers[k] = v;
        }
        const res = await request(current, {
          dispatcher: this.agent,
          signal,
          headers,
          method: 'GET',
        });
        if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location !== undefined) {
          await res.body.dump();
          if (hop >= this.config.maxRedirects) {
            throw new DownloadError(
              `${redact(url)}: more than ${this.config.maxRedirects} redirects`,
            );
          }
          const next = new URL(String(res.headers.location), current);
          if (u.protocol === 'https:' && next.protocol !== 'https:') {
            throw new DownloadError(
              `${redact(current)}: refusing a redirect from https to ${next.protocol}`,
            );
          }
          current = next.toString();
          continue;
        }
        if (res.statusCode !== 200) {
          await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
          const challenge = res.headers['www-authenticate'];
          throw new DownloadHttpError(
            `${redact(current)}: HTTP ${res.statusCode}`,
            res.statusCode,
            typeof challenge === 'string' ? challenge : undefined,
          );
        }
        const declared = Number(res.headers['content-length'] ?? Number.NaN);
        if (declared > maxLength) {
          discard(res.body);
          throw new DownloadError(
            `${redact(current)}: ${declared} bytes announced, more than the limit of ${maxLength}`,
            {
              code: 'TOO_LARGE',
            },
          );
        }
        const chunks: Uint8Array[] = [];
        let total = 0;
        for await (const chunk of res.body) {
          total += (chunk as Uint8Array).length;
          if (total > maxLength) {
            discard(res.body);
            throw new DownloadError(
              `${redact(current)}: more than the limit of ${maxLength} bytes`,
              { code: 'TOO_LARGE' },
            );
          }
          chunks.push(chunk as Uint8Array);
        }
        return concat(chunks, total);
      }
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      if (isTimeout(e) || signal.aborted) {
        throw new DownloadError(`${redact(current)}: too slow (timed out)`, {
          code: 'SLOW_RETRIEVAL',
          cause: e,
        });
      }
      const failure = new DownloadError(
        `${redact(current)}: ${(e as Error)?.message ?? String(e)}`,
        {
          cause: e,
        },
      );
      NETWORK_FAILURES.add(failure);
      throw failure;
    }
  }
}

/** discard stops reading a body; the abort error undici then emits is expected, not a crash. */
function discard(body: { on(event: 'error', f: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => undefined);
  body.destroy();
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Reads `file://` URLs: a repository mirrored to local disk (air-gapped sites, the offline
 * demo). The same limits apply: a file longer than the limit is refused unread.
 */
export class FileFetcher implements Fetcher {
  async fetch(url: string, maxLength: number): Promise<Uint8Array> {
    const path = fileURLToPath(url);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR')
        throw new DownloadHttpError(`${url}: not found`, 404);
      throw new DownloadError(`${url}: ${(cause as Error).message}`, { cause });
    }
    if (size > maxLength) {
      throw new DownloadError(`${url}: ${size} bytes, more than the limit of ${maxLength}`, {
        code: 'TOO_LARGE',
      });
    }
    const bytes = new Uint8Array(await readFile(path));
    if (bytes.length > maxLength) {
      throw new DownloadError(`${url}: more than the limit of ${maxLength} bytes`, {
        code: 'TOO_LARGE',
      });
    }
    return bytes;
  }
}

/** Routes by scheme: `file://` to a {@link FileFetcher}, http(s) to an {@link HttpFetcher}. */
export class DefaultFetcher implements Fetcher {
  readonly http: HttpFetcher;
  private readonly file = new FileFetcher();

  constructor(config: Partial<FetcherConfig> = {}, headers: Record<string, string> = {}) {
    this.http = new HttpFetcher(config, headers);
  }

  fetch(url: string, maxLength: number, headers?: Record<string, string>): Promise<Uint8Array> {
    return url.startsWith('file:')
      ? this.file.fetch(url, maxLength)
      : this.http.fetch(url, maxLength, headers);
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
