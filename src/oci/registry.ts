/**
 * A client of the OCI distribution API (v2), on undici.
 *
 * The handshake, one concern per step:
 *  1. send the request with whatever authorization is cached for (registry, scope);
 *  2. on 401, read the `WWW-Authenticate` challenge;
 *  3. Bearer: get a token from the realm (with the registry's credentials as basic auth, or
 *     anonymously), cache it per scope until it expires; Basic: use the credentials;
 *  4. send the request again, once.
 * Redirects (blob storage) are followed by hand: credential headers go only to the registry's
 * own origin, and only a 401 from that origin is answered (a redirect target's challenge fails
 * the request: it cannot name where the registry's credentials go; see transport/origin.ts).
 * Manifests are read with a 4 MiB cap and hashed here; the `Docker-Content-Digest` header is
 * never trusted. Blobs stream through a SHA-256 and a byte
 * count, resume with `Range` after a broken connection, and end with both checked.
 */
import { createHash } from 'node:crypto';
import { Agent, type Dispatcher, request } from 'undici';
import {
  basicHeader,
  type Challenge,
  headersForHop,
  isLoopbackHost,
  mayAnswerChallenge,
  originOf,
  parseChallenge,
  redact,
  requestToken,
  type Token,
  TokenError,
} from '../internal/index.js';
import type { CredentialProvider, Credentials } from './credentials.js';
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
}

/** A manifest as fetched: the exact bytes, their digest (computed here) and media type. */
export interface FetchedManifest {
  readonly bytes: Uint8Array;
  readonly digest: string;
  readonly mediaType: string | undefined;
}

/** The challenge parser (shared with the Notary client). */
export { parseChallenge };

const MAX_REDIRECTS = 5;

export class RegistryClient {
  private readonly agent: Agent;
  private readonly tokens = new Map<string, { header: string; expiresAt: number }>();
  private readonly plainHttp: (registry: string) => boolean;
  /** The connect/read-gap timeout (ms); whole requests get deadlines derived from it. */
  private readonly timeout: number;

  constructor(private readonly options: RegistryClientOptions = {}) {
    const timeout = options.timeoutMs ?? 30_000;
    this.timeout = timeout;
    this.agent = new Agent({
      connect: {
        timeout,
        ...(options.ca === undefined
          ? {}
          : { ca: Array.isArray(options.ca) ? [...options.ca] : (options.ca as string) }),
      },
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    this.plainHttp = options.plainHttp ?? isLoopbackHost;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** baseUrl is the API root of a registry (Docker Hub's API lives on registry-1.docker.io). */
  baseUrl(registry: string): string {
    const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
    return `${this.plainHttp(registry) ? 'http' : 'https'}://${host}/v2/`;
  }

  private scope(repo: RepositoryRef): string {
    return `repository:${repo.repository}:pull`;
  }

  /** send makes one API request with auth, following redirects; the caller reads the body. */
  private async send(
    repo: RepositoryRef,
    path: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    const url = `${this.baseUrl(repo.registry)}${path}`;
    const scope = this.scope(repo);
    const key = `${repo.registry}|${scope}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      const cached = this.tokens.get(key);
      const auth = cached && cached.expiresAt > Date.now() ? cached.header : undefined;
      const { res, at } = await this.follow(
        url,
        { ...headers, ...(auth ? { authorization: auth } : {}) },
        signal,
      );
      if (res.statusCode !== 401) return res;
      if (!mayAnswerChallenge(originOf(url), at)) {
        // a redirect target asks for credentials: the registry's are not its to have
        await res.body.dump().catch(() => undefined);
        throw new OciError(
          'UNAUTHORIZED',
          `${redact(at)}: HTTP 401 from a redirect target of ${repo.registry} (its credentials are sent only to the registry's own origin)`,
        );
      }
      if (attempt === 1) return res;
      const challenge = parseChallenge(String(res.headers['www-authenticate'] ?? ''));
      await res.body.dump().catch(() => undefined);
      if (challenge === undefined)
        throw new OciError(
          'UNAUTHORIZED',
          `${redact(url)}: 401 without an authentication challenge`,
        );
      this.tokens.set(key, await this.authorize(repo, challenge, scope, url));
    }
    throw new OciError('UNAUTHORIZED', `${redact(url)}: not authorized`);
  }

  /** authorize answers the challenge of the registry at `url` with a token or Basic credentials. */
  private async authorize(
    repo: RepositoryRef,
    ch: Challenge,
    scope: string,
    url: string,
  ): Promise<{ header: string; expiresAt: number }> {
    const creds = await this.options.credentials?.get(repo.registry);
    if (ch.scheme === 'basic') {
      if (creds?.username === undefined) {
        throw new OciError(
          'UNAUTHORIZED',
          `${repo.registry} asks for a user name and password, and none is configured`,
        );
      }
      return { header: basicHeader(creds), expiresAt: Number.POSITIVE_INFINITY };
    }
    if (ch.scheme !== 'bearer' || !ch.params.realm) {
      throw new OciError(
        'UNAUTHORIZED',
        `${repo.registry}: unsupported authentication scheme ${ch.scheme}`,
      );
    }
    return this.bearer(repo, ch.params, scope, creds, url);
  }

  private async bearer(
    repo: RepositoryRef,
    params: Record<string, string>,
    scope: string,
    creds: Credentials | undefined,
    url: string,
  ): Promise<Token> {
    try {
      return await requestToken(params, scope, creds, {
        dispatcher: this.agent,
        challenger: url,
        ...(this.options.userAgent ? { userAgent: this.options.userAgent } : {}),
      });
    } catch (e) {
      if (!(e instanceof TokenError)) throw e;
      throw new OciError(
        e.unavailable ? 'REGISTRY_UNAVAILABLE' : 'UNAUTHORIZED',
        `${repo.registry}: ${e.message}`,
        { cause: e },
      );
    }
  }

  /**
   * follow sends a GET and follows redirects, with credential headers on the first origin
   * only; it returns the final response and the URL (`at`) that gave it.
   */
  private async follow(
    url: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<{ res: Dispatcher.ResponseData; at: string }> {
    const origin = originOf(url);
    let current = url;
    for (let hop = 0; ; hop++) {
      const u = new URL(current);
      const h = headersForHop(origin, u, {
        'user-agent': this.options.userAgent ?? 'tufa',
        ...headers,
      });
      let res: Dispatcher.ResponseData;
      try {
        res = await request(current, {
          dispatcher: this.agent,
          headers: h,
          method: 'GET',
          ...(signal ? { signal } : {}),
        });
      } catch (cause) {
        throw new OciError(
          'REGISTRY_UNAVAILABLE',
          `${redact(current)}: ${(cause as Error).message}`,
          { cause },
        );
      }
      const loc = res.headers.location;
      if (res.statusCode >= 300 && res.statusCode < 400 && loc !== undefined) {
        await res.body.dump().catch(() => undefined);
        if (hop >= MAX_REDIRECTS)
          throw new OciError('REGISTRY_UNAVAILABLE', `${redact(url)}: too many redirects`);
        const next = new URL(String(loc), current);
        if (u.protocol === 'https:' && next.protocol !== 'https:') {
          throw new OciError(
            'REGISTRY_UNAVAILABLE',
            `${redact(current)}: refusing a redirect from https to ${next.protocol}`,
          );
        }
        current = next.toString();
        continue;
      }
      return { res, at: current };
    }
  }

  private static async fail(res: Dispatcher.ResponseData, what: string): Promise<never> {
    await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    if (res.statusCode === 404) throw new OciError('NOT_FOUND', `${what}: not found (HTTP 404)`);
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new OciError('UNAUTHORIZED', `${what}: access denied (HTTP ${res.statusCode})`);
    }
    throw new OciError('REGISTRY_UNAVAILABLE', `${what}: HTTP ${res.statusCode}`);
  }

  /**
   * getManifest fetches a manifest or index by tag or digest. The digest returned is computed
   * from the bytes; when `reference` is a digest, bytes with another digest are refused.
   * @param maxBytes - read limit (default and maximum 4 MiB)
   */
  async getManifest(
    repo: RepositoryRef,
    reference: string,
    maxBytes = MAX_MANIFEST_BYTES,
  ): Promise<FetchedManifest> {
    const what = `${repo.registry}/${repo.repository}@${reference}`;
    // A whole-request deadline: a registry dripping bytes cannot hold us past it.
    const signal = AbortSignal.timeout(4 * this.timeout);
    const bytes = await slowIsUnavailable(what, signal, async () => {
      const res = await this.send(
        repo,
        `${repo.repository}/manifests/${reference}`,
        { accept: MANIFEST_ACCEPT },
        signal,
      );
      if (res.statusCode !== 200) await RegistryClient.fail(res, what);
      const body = await readCapped(res.body, Math.min(maxBytes, MAX_MANIFEST_BYTES), what);
      return { body, ct: res.headers['content-type'] };
    });
    const ct = bytes.ct;
    const digest = digestOf(bytes.body);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new OciError(
        'DIGEST_MISMATCH',
        `${what}: the registry served bytes with digest ${digest}`,
      );
    }
    return {
      bytes: bytes.body,
      digest,
      mediaType: typeof ct === 'string' ? ct.split(';')[0]?.trim() : undefined,
    };
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
  ): Promise<void> {
    const what = `${repo.registry}/${repo.repository}@${desc.digest}`;
    const hash = createHash('sha256');
    let received = 0;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {};
      if (received > 0) headers.range = `bytes=${received}-`;
      let res: Dispatcher.ResponseData;
      // Each attempt has a deadline that grows with the blob (at least 1 MiB/s): a registry
      // dripping bytes is cut off, and a timed-out attempt is not resumed.
      const signal = AbortSignal.timeout(4 * this.timeout + Math.ceil(desc.size / 1024));
      try {
        res = await this.send(repo, `${repo.repository}/blobs/${desc.digest}`, headers, signal);
      } catch (e) {
        if (signal.aborted) throw tooSlow(what, e);
        if (e instanceof OciError && e.code === 'REGISTRY_UNAVAILABLE' && attempt < retries)
          continue;
        throw e;
      }
      if (received > 0 && res.statusCode === 200) {
        // the registry ignored Range: the bytes already given to the sink cannot be taken back
        await res.body.dump().catch(() => undefined);
        throw new OciError(
          'REGISTRY_UNAVAILABLE',
          `${what}: the registry cannot resume (no Range support)`,
        );
      }
      if (received > 0 && res.statusCode === 416) {
        // asked to resume past the end: the blob is shorter than its descriptor says
        await res.body.dump().catch(() => undefined);
        throw new OciError(
          'SIZE_MISMATCH',
          `${what}: ${received} bytes, its descriptor gives ${desc.size}`,
        );
      }
      if (res.statusCode !== 200 && res.statusCode !== 206) await RegistryClient.fail(res, what);
      try {
        for await (const chunk of res.body) {
          const c = chunk as Uint8Array;
          received += c.length;
          if (received > desc.size) {
            res.body.on('error', () => undefined);
            res.body.destroy();
            throw new OciError(
              'SIZE_MISMATCH',
              `${what}: more than the ${desc.size} bytes its descriptor gives`,
            );
          }
          hash.update(c);
          await sink(c);
        }
      } catch (e) {
        if (e instanceof OciError) throw e;
        if (signal.aborted) throw tooSlow(what, e);
        if (attempt < retries && received < desc.size) continue; // connection broke: resume
        throw new OciError('REGISTRY_UNAVAILABLE', `${what}: ${(e as Error).message}`, {
          cause: e,
        });
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
}

function tooSlow(what: string, cause: unknown): OciError {
  return new OciError('REGISTRY_UNAVAILABLE', `${what}: too slow (the request's deadline passed)`, {
    cause,
  });
}

/** slowIsUnavailable runs a request; past its deadline, any failure is the deadline's. */
async function slowIsUnavailable<T>(
  what: string,
  signal: AbortSignal,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (signal.aborted && !(e instanceof OciError && e.code !== 'REGISTRY_UNAVAILABLE'))
      throw tooSlow(what, e);
    throw e;
  }
}

/** readCapped reads a body up to `limit` bytes; more is TOO_LARGE. */
async function readCapped(
  body: Dispatcher.ResponseData['body'],
  limit: number,
  what: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Uint8Array).length;
    if (total > limit) {
      body.on('error', () => undefined);
      body.destroy();
      throw new OciError('TOO_LARGE', `${what}: more than ${limit} bytes`);
    }
    chunks.push(chunk as Uint8Array);
  }
  return Buffer.concat(chunks);
}
