/**
 * A client of the OCI distribution API (v2), on the one transport (src/transport): the
 * transport's auth layer answers the registry's own 401 challenges (Bearer tokens from the realm
 * the registry names, or Basic) with the registry's credentials, cached per scope; credential
 * headers never cross to a redirect target (blob storage), and a redirect target's 401 fails the
 * request (it cannot name where the registry's credentials go).
 *
 * Manifests are read with a 4 MiB cap and hashed here; the `Docker-Content-Digest` header is
 * never trusted. Blobs stream through a SHA-256 and a byte count, resume with `Range` after a
 * broken connection, and end with both checked. Every request has a deadline covering redirects
 * and the body (for blobs growing with the size), so a dripping registry is cut off.
 */
import { createHash } from 'node:crypto';
import {
  createTransport,
  isLoopbackHost,
  type Transport,
  TransportError,
  type TransportResponse,
} from '../transport/index.js';
import type { CredentialProvider } from './credentials.js';
import { OciError } from './errors.js';
import { type Descriptor, digestOf, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from './manifest.js';

/** A repository on a registry. */
export interface RepositoryRef {
  readonly registry: string;
  readonly repository: string;
}

export interface RegistryClientOptions {
  credentials?: CredentialProvider;
  /** Registries spoken to over plain HTTP. Default: loopback hosts only (as Docker does). */
  plainHttp?: (registry: string) => boolean;
  /** Extra CA certificates (PEM) for TLS registries. */
  ca?: string | readonly string[];
  /** ms; connect and read-gap timeouts. */
  timeoutMs?: number;
  userAgent?: string;
  /** Send through this transport instead of a new one (its credentials and CAs then apply). */
  transport?: Transport;
}

/** A manifest as fetched: the exact bytes, their digest (computed here) and media type. */
export interface FetchedManifest {
  readonly bytes: Uint8Array;
  readonly digest: string;
  readonly mediaType: string | undefined;
}

/** A tag, as the distribution spec writes it. */
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Docker Hub's API host; its credentials are filed under `docker.io`. */
const DOCKER_HUB_API = 'registry-1.docker.io';

/**
 * RegistryClient speaks the OCI distribution API to registries over tufa's one transport:
 * manifests and blobs by digest (each checked against its digest as it arrives), tags, and the
 * pushes `repo publish --to oci://` needs. Credentials answer only their own registry's
 * challenges; limits and deadlines bound every request.
 * @throws {@link OciError} `NOT_FOUND`, `DIGEST_MISMATCH`, `SIZE_MISMATCH`, `TOO_LARGE`,
 *   `UNAUTHORIZED`, `REGISTRY_UNAVAILABLE`, `BAD_REFERENCE`, `MANIFEST_INVALID` from its methods
 */
export class RegistryClient {
  private readonly transport: Transport;
  private readonly ownsTransport: boolean;
  private readonly plainHttp: (registry: string) => boolean;
  /** The connect/read-gap timeout (ms); whole requests get deadlines derived from it. */
  private readonly timeout: number;

  constructor(private readonly options: RegistryClientOptions = {}) {
    const timeout = options.timeoutMs ?? 30_000;
    this.timeout = timeout;
    this.plainHttp = options.plainHttp ?? isLoopbackHost;
    this.ownsTransport = options.transport === undefined;
    this.transport =
      options.transport ??
      createTransport({
        connectTimeout: timeout,
        readGapTimeout: timeout,
        // a request's own deadline is set per call; the default only bounds a forgotten one
        totalTimeout: 4 * timeout,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        ...(options.userAgent === undefined ? {} : { userAgent: options.userAgent }),
        credentials: async (origin) =>
          this.options.credentials?.get(origin.host === DOCKER_HUB_API ? 'docker.io' : origin.host),
      });
  }

  async close(): Promise<void> {
    if (this.ownsTransport) await this.transport.close();
  }

  /** baseUrl is the API root of a registry (Docker Hub's API lives on registry-1.docker.io). */
  baseUrl(registry: string): string {
    const host = registry === 'docker.io' ? DOCKER_HUB_API : registry;
    return `${this.plainHttp(registry) ? 'http' : 'https'}://${host}/v2/`;
  }

  /** send makes one GET of the registry API, with auth and redirects; the caller reads the body. */
  private async send(
    repo: RepositoryRef,
    path: string,
    headers: Record<string, string>,
    maxLength: number,
    deadline: number,
    what: string,
    signal: AbortSignal | undefined,
    method: 'GET' | 'HEAD' = 'GET',
  ): Promise<TransportResponse> {
    try {
      return await this.transport.send({
        method,
        url: `${this.baseUrl(repo.registry)}${path}`,
        headers,
        maxLength,
        deadline,
        scope: `repository:${repo.repository}:pull`,
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (e) {
      throw ociError(e, what);
    }
  }

  private static async fail(res: TransportResponse, what: string): Promise<never> {
    await res.discard();
    if (res.status === 404) throw new OciError('NOT_FOUND', `${what}: not found (HTTP 404)`);
    if (res.status === 401 || res.status === 403) {
      const challenge = res.headers['www-authenticate'];
      const why = challenge === undefined ? '' : ' (no credentials it accepts are configured)';
      throw new OciError('UNAUTHORIZED', `${what}: access denied (HTTP ${res.status})${why}`);
    }
    throw new OciError('REGISTRY_UNAVAILABLE', `${what}: HTTP ${res.status}`);
  }

  /**
   * getManifest fetches a manifest or index by tag or digest. The digest returned is computed
   * from the bytes; when `reference` is a digest, bytes with another digest are refused.
   * @param maxBytes - read limit (default and maximum 4 MiB)
   * @param options.signal - ends the request (and its connection) when it aborts
   */
  async getManifest(
    repo: RepositoryRef,
    reference: string,
    maxBytes = MAX_MANIFEST_BYTES,
    options: { signal?: AbortSignal } = {},
  ): Promise<FetchedManifest> {
    // the reference as written: `repo:tag`, `repo@sha256:…` (a tag has no `:`)
    const what = `${repo.registry}/${repo.repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    // A whole-request deadline: a registry dripping bytes cannot hold us past it.
    const deadline = performance.now() + 4 * this.timeout;
    const res = await this.send(
      repo,
      `${repo.repository}/manifests/${reference}`,
      { accept: MANIFEST_ACCEPT },
      Math.min(maxBytes, MAX_MANIFEST_BYTES),
      deadline,
      what,
      options.signal,
    );
    if (res.status !== 200) await RegistryClient.fail(res, what);
    const bytes = await res.bytes().catch((e: unknown) => {
      throw ociError(e, what);
    });
    const digest = digestOf(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new OciError(
        'DIGEST_MISMATCH',
        `${what}: the registry served bytes with digest ${digest}`,
      );
    }
    const ct = res.headers['content-type'];
    return { bytes, digest, mediaType: ct?.split(';')[0]?.trim() };
  }

  /**
   * listTags lists a repository's tags (`GET /v2/<name>/tags/list`), page by page as the
   * distribution spec's `Link: <…>; rel="next"` header says. Only the query of a next link is
   * followed (the path stays this repository's); at most `maxTags` tags, and a page that does not
   * move past the last tag ends the listing with an error, so a looping registry cannot hold us.
   */
  async listTags(
    repo: RepositoryRef,
    o: { pageSize?: number; maxTags?: number } = {},
  ): Promise<string[]> {
    const what = `${repo.registry}/${repo.repository} tag list`;
    const maxTags = o.maxTags ?? 100_000;
    const tags = new Set<string>();
    let query = `?n=${o.pageSize ?? 1000}`;
    for (let page = 0; query !== ''; page++) {
      const deadline = performance.now() + 4 * this.timeout;
      const res = await this.send(
        repo,
        `${repo.repository}/tags/list${query}`,
        { accept: 'application/json' },
        MAX_MANIFEST_BYTES,
        deadline,
        what,
        undefined,
      );
      if (res.status !== 200) await RegistryClient.fail(res, what);
      const bytes = await res.bytes().catch((e: unknown) => {
        throw ociError(e, what);
      });
      let list: unknown;
      try {
        list = (JSON.parse(new TextDecoder().decode(bytes)) as { tags?: unknown }).tags ?? [];
      } catch {
        list = undefined;
      }
      if (!Array.isArray(list) || list.some((t) => typeof t !== 'string' || !TAG.test(t)))
        throw new OciError('MANIFEST_INVALID', `${what}: page ${page + 1} is not a list of tags`);
      const fresh = (list as string[]).filter((t) => !tags.has(t));
      if (list.length > 0 && fresh.length === 0)
        throw new OciError('MANIFEST_INVALID', `${what}: page ${page + 1} repeats tags listed`);
      for (const t of fresh) tags.add(t);
      if (tags.size > maxTags)
        throw new OciError('TOO_LARGE', `${what}: more than ${maxTags} tags`);
      const next = /<([^>]*)>\s*;\s*rel="?next"?/.exec(res.headers.link ?? '')?.[1];
      query = next === undefined ? '' : (/\?[^#]*/.exec(next)?.[0] ?? '');
      if (next !== undefined && query === '')
        throw new OciError('MANIFEST_INVALID', `${what}: a next link without a query: ${next}`);
    }
    return [...tags];
  }

  /**
   * blobSize asks the registry for a blob's size (`HEAD`), for a blob whose descriptor is not
   * known (a registry front serving blobs by digest). Untrusted: {@link copyBlob} still checks
   * the bytes against the digest.
   */
  async blobSize(
    repo: RepositoryRef,
    digest: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<number> {
    const what = `${repo.registry}/${repo.repository}@${digest}`;
    const path = `${repo.repository}/blobs/${digest}`;
    const deadline = performance.now() + 4 * this.timeout;
    const res = await this.send(repo, path, {}, 0, deadline, what, options.signal, 'HEAD');
    if (res.status !== 200) await RegistryClient.fail(res, what);
    await res.bytes(); // no body: read to its end, the connection goes back to the pool
    const length = res.headers['content-length'];
    if (length === undefined || !/^[0-9]{1,15}$/.test(length))
      throw new OciError('REGISTRY_UNAVAILABLE', `${what}: no Content-Length for the blob`);
    return Number(length);
  }

  /**
   * copyBlob streams a blob to `sink`, hashing and counting as it goes; after a broken
   * connection it resumes with `Range` (up to `retries` times). The sink gets bytes that are
   * not yet verified: it must discard them unless this resolves.
   */
  async copyBlob(
    repo: RepositoryRef,
    desc: Descriptor,
    sink: (chunk: Uint8Array) => Promise<void> | void,
    retries = 3,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const what = `${repo.registry}/${repo.repository}@${desc.digest}`;
    const hash = createHash('sha256');
    let received = 0;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {};
      if (received > 0) headers.range = `bytes=${received}-`;
      // Each attempt has a deadline that grows with the blob (at least 1 MiB/s): a registry
      // dripping bytes is cut off, and a timed-out attempt is not resumed.
      const deadline = performance.now() + 4 * this.timeout + Math.ceil(desc.size / 1024);
      let res: TransportResponse;
      try {
        // one byte over the remaining size is enough to know the blob is too long
        const path = `${repo.repository}/blobs/${desc.digest}`;
        res = await this.send(
          repo,
          path,
          headers,
          desc.size - received + 1,
          deadline,
          what,
          options.signal,
        );
      } catch (e) {
        if (e instanceof OciError && e.code === 'TOO_LARGE') throw oversize(what, desc);
        if (retryable(e) && attempt < retries && !options.signal?.aborted) continue;
        throw e;
      }
      if (received > 0 && res.status === 200) {
        // the registry ignored Range: the bytes already given to the sink cannot be taken back
        await res.discard();
        throw new OciError(
          'REGISTRY_UNAVAILABLE',
          `${what}: the registry cannot resume (no Range support)`,
        );
      }
      if (received > 0 && res.status === 416) {
        // asked to resume past the end: the blob is shorter than its descriptor says
        await res.discard();
        throw new OciError(
          'SIZE_MISMATCH',
          `${what}: ${received} bytes, its descriptor gives ${desc.size}`,
        );
      }
      if (res.status !== 200 && res.status !== 206) await RegistryClient.fail(res, what);
      try {
        for await (const c of res.body) {
          received += c.length;
          if (received > desc.size) throw oversize(what, desc);
          hash.update(c);
          await sink(c);
        }
      } catch (e) {
        if (e instanceof OciError) throw e;
        if (e instanceof TransportError && e.code === 'TOO_LARGE') throw oversize(what, desc);
        // the connection broke: resume where it stopped (a timed-out attempt is not resumed)
        if (e instanceof TransportError && e.retryable && attempt < retries) continue;
        throw ociError(e, what);
      }
      // A body that ended cleanly is the whole answer: a short one fails the size check below,
      // it is not an outage to retry.
      break;
    }
    if (received !== desc.size) {
      throw new OciError(
        'SIZE_MISMATCH',
        `${what}: ${received} bytes, its descriptor gives ${desc.size}`,
      );
    }
    const digest = `sha256:${hash.digest('hex')}`;
    if (digest !== desc.digest)
      throw new OciError('DIGEST_MISMATCH', `${what}: the bytes have digest ${digest}`);
  }
  // ---- push (the signing side: `tufa repo publish --to oci://…`) ---------------------------

  /**
   * pushBlob uploads `bytes` as a blob unless the repository has it already (`HEAD`), in one
   * monolithic upload (`POST` then `PUT ?digest=`, OCI distribution spec "Pushing a blob
   * monolithically"). The upload location must be on the registry's own origin: the request
   * carrying the bytes goes nowhere else.
   * @returns the blob's descriptor (media type as given, digest computed here)
   */
  async pushBlob(repo: RepositoryRef, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = digestOf(bytes);
    const desc: Descriptor = { mediaType, digest, size: bytes.length };
    const what = `${repo.registry}/${repo.repository}@${digest}`;
    const base = this.baseUrl(repo.registry);
    const head = await this.push(repo, 'HEAD', `${base}${repo.repository}/blobs/${digest}`, what);
    await drain(head);
    if (head.status === 200) return desc;
    const start = await this.push(repo, 'POST', `${base}${repo.repository}/blobs/uploads/`, what);
    await drain(start);
    if (start.status !== 202) await RegistryClient.fail(start, `${what}: starting the upload`);
    const location = start.headers.location;
    let url: URL;
    try {
      url = new URL(location ?? '', base);
    } catch {
      throw new OciError('REGISTRY_UNAVAILABLE', `${what}: the upload location is not a URL`);
    }
    if (location === undefined || url.origin !== new URL(base).origin) {
      throw new OciError(
        'REGISTRY_UNAVAILABLE',
        `${what}: the registry gave ${location === undefined ? 'no upload location' : 'an upload location on another origin'} (refused)`,
      );
    }
    url.searchParams.set('digest', digest);
    const put = await this.push(repo, 'PUT', url.href, what, bytes, 'application/octet-stream');
    await drain(put);
    if (put.status !== 201) await RegistryClient.fail(put, `${what}: upload`);
    return desc;
  }

  /**
   * pushManifest stores a manifest or index under `reference` (a tag, or its own digest).
   * @returns its digest (computed here)
   */
  async pushManifest(
    repo: RepositoryRef,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<string> {
    const digest = digestOf(bytes);
    const what = `${repo.registry}/${repo.repository}:${reference}`;
    if (bytes.length > MAX_MANIFEST_BYTES)
      throw new OciError('TOO_LARGE', `${what}: a manifest of ${bytes.length} bytes (over 4 MiB)`);
    const url = `${this.baseUrl(repo.registry)}${repo.repository}/manifests/${reference}`;
    const res = await this.push(repo, 'PUT', url, what, bytes, mediaType);
    await drain(res);
    if (res.status !== 201) await RegistryClient.fail(res, what);
    return digest;
  }

  /** push sends one request of a push (scope `pull,push`), with auth; no redirects are followed. */
  private async push(
    repo: RepositoryRef,
    method: 'HEAD' | 'POST' | 'PUT',
    url: string,
    what: string,
    body?: Uint8Array,
    contentType?: string,
  ): Promise<TransportResponse> {
    try {
      return await this.transport.send({
        method,
        url,
        headers: contentType === undefined ? {} : { 'content-type': contentType },
        ...(body === undefined ? {} : { body }),
        maxLength: 64 * 1024,
        deadline: performance.now() + 4 * this.timeout + Math.ceil((body?.length ?? 0) / 1024),
        scope: `repository:${repo.repository}:pull,push`,
      });
    } catch (e) {
      throw ociError(e, what);
    }
  }
}

/**
 * drain reads a push answer's (small) body to its end, so its connection goes back to the pool
 * (a discarded body that was complete would keep the socket busy until it is read).
 */
async function drain(res: TransportResponse): Promise<void> {
  await res.bytes().catch(() => undefined);
}

function oversize(what: string, desc: Descriptor): OciError {
  return new OciError(
    'SIZE_MISMATCH',
    `${what}: more than the ${desc.size} bytes its descriptor gives`,
  );
}

/** retryable: a registry error worth another attempt (the network, not a refusal). */
function retryable(e: unknown): boolean {
  return e instanceof OciError && e.cause instanceof TransportError && e.cause.retryable;
}

/** ociError maps a transport error to the OCI client's typed errors. */
function ociError(e: unknown, what: string): unknown {
  if (!(e instanceof TransportError)) return e;
  switch (e.code) {
    case 'TIMEOUT':
    case 'ABORTED':
      return new OciError('REGISTRY_UNAVAILABLE', `${what}: too slow (${e.message})`, { cause: e });
    case 'TOO_LARGE':
      return new OciError('TOO_LARGE', `${what}: ${e.message}`, { cause: e });
    case 'UNAUTHORIZED':
      return new OciError('UNAUTHORIZED', e.message, { cause: e });
    default:
      return new OciError('REGISTRY_UNAVAILABLE', e.message, { cause: e });
  }
}
