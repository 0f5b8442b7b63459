/**
 * Fetchers: how the client gets bytes. Every read has a maximum length that is enforced while
 * the body streams (endless data), every request has a connect timeout, a read-gap timeout and a
 * total timeout (slow retrieval), and anything that goes wrong is a {@link DownloadError}.
 * HTTP(S) is in http-fetcher.ts; `file://` is here.
 */
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DownloadError, DownloadHttpError } from '../core/index.js';
import type { FetcherConfig } from './config.js';
import { HttpFetcher } from './http-fetcher.js';

/**
 * Gets the bytes at a URL: the one edge between the Updater and where a repository lives. The
 * Updater asks for `metadataBaseUrl` + a metadata file name (`2.root.json`, `timestamp.json`,
 * `3.snapshot.json`, `4.<role, percent-encoded>.json`) and `targetBaseUrl` + a target path
 * (`dir/<hash>.<name>` with consistent snapshots), each with the longest length allowed. So a
 * fetcher for other storage (an OCI registry behind `oci://…` bases, a Map in memory) splits the
 * URL at its base, as docker/attest's registry fetcher does with go-tuf's `DownloadFile`. A file
 * that does not exist is a {@link DownloadHttpError} 404 (the end of the root chain, TUF 5.3.3).
 */
export interface Fetcher {
  /**
   * fetch returns the body of `url`, at most `maxLength` bytes.
   * @param signal - ends the request when it aborts (a `SLOW_RETRIEVAL` DownloadError)
   * @throws {@link DownloadError} (code `TOO_LARGE` past the limit, `SLOW_RETRIEVAL` on a
   *   timeout) or {@link DownloadHttpError} for a status other than 200
   */
  fetch(
    url: string,
    maxLength: number,
    headers?: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Uint8Array>;
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

  fetch(
    url: string,
    maxLength: number,
    headers?: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Uint8Array> {
    return url.startsWith('file:')
      ? this.file.fetch(url, maxLength)
      : this.http.fetch(url, maxLength, headers, signal);
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
