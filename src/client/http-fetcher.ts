/**
 * The HTTP(S) fetcher of TUF metadata and targets: the {@link Fetcher} interface over the one
 * transport (src/transport), whose layers do the work — bounded bodies (a longer one refused as
 * it streams, an announced `Content-Length` above the limit unread), connect / read-gap /
 * whole-request deadlines (slow retrieval), retries only after a 5xx or a network failure,
 * redirects by hand (never https → http; only harmless headers cross origins), and a 401
 * answered only when the origin asked sent it. This file maps the transport's errors to the
 * client's: `SLOW_RETRIEVAL`, `TOO_LARGE`, `DOWNLOAD`, and {@link DownloadHttpError} for a status.
 */
import { DownloadError, DownloadHttpError } from '../core/index.js';
import {
  createTransport,
  mayAnswerChallenge,
  originOf,
  redact,
  type Transport,
  TransportError,
} from '../transport/index.js';
import { DEFAULT_FETCHER_CONFIG, type FetcherConfig } from './config.js';
import type { Fetcher } from './fetcher.js';

/** An HTTP(S) fetcher with bounded reads and timeouts. */
export class HttpFetcher implements Fetcher {
  readonly config: FetcherConfig;
  private readonly transport: Transport;
  private readonly ownsTransport: boolean;
  private readonly headers: Record<string, string>;

  /**
   * @param headers - extra request headers (e.g. Authorization for a private repository); they
   *   are sent to the first origin only, never across a redirect to another origin
   * @param transport - the transport to send through (default: a new one with `config`'s limits)
   */
  constructor(
    config: Partial<FetcherConfig> = {},
    headers: Record<string, string> = {},
    transport?: Transport,
  ) {
    this.config = { ...DEFAULT_FETCHER_CONFIG, ...config };
    this.headers = { ...headers };
    this.ownsTransport = transport === undefined;
    this.transport =
      transport ??
      createTransport({
        connectTimeout: this.config.connectTimeout,
        readGapTimeout: this.config.readGapTimeout,
        totalTimeout: this.config.totalTimeout,
        retries: this.config.retries,
        maxRedirects: this.config.maxRedirects,
        userAgent: this.config.userAgent,
        ...(this.config.ca === undefined ? {} : { ca: this.config.ca }),
        ...(this.config.credentials === undefined ? {} : { credentials: this.config.credentials }),
      });
  }

  async close(): Promise<void> {
    if (this.ownsTransport) await this.transport.close();
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
    try {
      const res = await this.transport.send({
        url,
        maxLength,
        headers: { ...this.headers, ...headers },
        deadline: performance.now() + this.config.totalTimeout,
        ...(this.config.scope === undefined ? {} : { scope: this.config.scope }),
        ...(signal ? { signal } : {}),
      });
      if (res.status !== 200) {
        await res.discard();
        throw new DownloadHttpError(
          `${redact(res.url)}: HTTP ${res.status}`,
          res.status,
          // a challenge is for the caller only when the origin asked sent it
          mayAnswerChallenge(originOf(url), res.url) ? res.headers['www-authenticate'] : undefined,
        );
      }
      return await res.bytes();
    } catch (e) {
      throw downloadError(e);
    }
  }
}

/** downloadError maps a transport error to the client's typed errors. */
export function downloadError(e: unknown): unknown {
  if (!(e instanceof TransportError)) return e;
  switch (e.code) {
    case 'TIMEOUT':
    case 'ABORTED':
      return new DownloadError(e.message, { code: 'SLOW_RETRIEVAL', cause: e });
    case 'TOO_LARGE':
      return new DownloadError(e.message, { code: 'TOO_LARGE', cause: e });
    case 'UNAUTHORIZED':
      return new DownloadHttpError(e.message, 401);
    default:
      return new DownloadError(e.message, { cause: e });
  }
}
