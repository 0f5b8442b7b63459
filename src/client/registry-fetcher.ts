/**
 * A TUF repository in an OCI registry, as a {@link Fetcher}: metadata URLs are
 * `oci://REGISTRY/REPOSITORY[:TAG]/<file>` (the metadata base URL is `oci://…:TAG/`), target
 * URLs start with the targets base given to the constructor (`oci://REGISTRY/REPOSITORY/`). The
 * layout (docker/attest's) and the reads are the OCI module's {@link TufRegistryReader}, through
 * one {@link RegistryClient}: the same credentials, limits and deadlines as image pulls. This
 * file maps what it finds to the client's errors: no image or no layer of that name is a 404
 * (the end of the root chain), a layer over the limit `TOO_LARGE` (refused before it is read),
 * anything else a {@link DownloadError}.
 */
import { DownloadError, DownloadHttpError } from '../core/index.js';
import {
  OciError,
  parseOciRepository,
  parseOciUrl,
  type RegistryClient,
  type RepositoryRef,
  TufRegistryReader,
} from '../oci/index.js';
import type { Fetcher } from './fetcher.js';

/** isOciUrl tells whether a URL names a TUF repository in a registry. */
export function isOciUrl(url: string): boolean {
  return url.startsWith('oci://');
}

/** Reads TUF metadata and targets from a registry (docker/attest layout). */
export class RegistryFetcher implements Fetcher {
  private readonly reader: TufRegistryReader;
  private readonly targets?: { readonly base: string; readonly repo: RepositoryRef };

  /**
   * @param options.targetBaseUrl - `oci://REGISTRY/REPOSITORY/`: where target files are
   */
  constructor(registry: RegistryClient, options: { targetBaseUrl?: string } = {}) {
    this.reader = new TufRegistryReader(registry);
    const base = options.targetBaseUrl;
    if (base !== undefined) {
      const slashed = base.endsWith('/') ? base : `${base}/`;
      this.targets = { base: slashed, repo: parseOciRepository(slashed) };
    }
  }

  async fetch(
    url: string,
    maxLength: number,
    _headers?: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Uint8Array> {
    let bytes: Uint8Array | undefined;
    try {
      // a target's first segment is a tag (no `:`); a metadata image nested under the targets
      // repository (`oci://R/acme/tuf:latest/…` under `oci://R/acme/`) names its tag with one
      const name =
        this.targets !== undefined && url.startsWith(this.targets.base)
          ? url.slice(this.targets.base.length)
          : undefined;
      if (this.targets !== undefined && name !== undefined && !/^[^/]*:/.test(name)) {
        bytes = await this.reader.readTarget(this.targets.repo, name, maxLength, signal);
      } else {
        const slash = url.lastIndexOf('/');
        if (!isOciUrl(url) || slash < 'oci://'.length)
          throw new DownloadError(`${url}: not an oci:// URL of a TUF file`);
        const ref = parseOciUrl(url.slice(0, slash));
        bytes = await this.reader.readMetadata(ref, url.slice(slash + 1), maxLength, signal);
      }
    } catch (e) {
      if (!(e instanceof OciError)) throw e;
      if (e.code === 'TOO_LARGE')
        throw new DownloadError(e.message, { code: 'TOO_LARGE', cause: e });
      if (signal?.aborted)
        throw new DownloadError(`${url}: aborted`, { code: 'SLOW_RETRIEVAL', cause: e });
      throw new DownloadError(`${url}: ${e.message}`, { cause: e });
    }
    if (bytes === undefined) throw new DownloadHttpError(`${url}: not in the registry`, 404);
    return bytes;
  }
}
