/**
 * Verify before pull: an image reference is a signed TUF target; the manifest is fetched by the
 * signed digest and its bytes checked against the target's length and every hash. Nothing is
 * pulled before this passes, and the result is the pinned reference to deploy.
 *
 * A tag or a `Docker-Content-Digest` header is never trusted: the registry is asked for
 * `<repo>@sha256:<signed digest>`, and the bytes it returns are hashed here.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DefaultFetcher,
  type Fetcher,
  initMetadataDir,
  isOciUrl,
  RegistryFetcher,
  Updater,
} from '../client/index.js';
import {
  checkLengthAndHashes,
  DownloadError,
  ExpiredMetadataError,
  type HashEncoding,
  MisuseError,
} from '../core/index.js';
import { nodeBackend } from '../crypto/index.js';
import { lookupTag, NotaryClient, type NotaryCollection, signedTags } from '../notary/index.js';
import {
  extractArchive,
  type ImageIndex,
  type ImageLocation,
  type ImageManifest,
  OciError,
  type Platform,
  parseLocation,
  parseManifest,
  Reference,
  RegistryClient,
  type RegistryClientOptions,
  readLayout,
  selectPlatform,
} from '../oci/index.js';
import { redact } from '../transport/index.js';
import { ImageVerificationError } from './errors.js';
import type { NotarySource, TrustPolicy, TufSource } from './policy.js';

/** Options of {@link ImageVerifier}: the policy, where trust data is cached, and limits. */
export interface VerifierOptions {
  policy: TrustPolicy;
  /** Where TUF metadata is cached, one folder per trust source. */
  cacheDir: string;
  registry?: RegistryClient;
  registryOptions?: RegistryClientOptions;
  /** Metadata fetcher for TUF repositories (default: HTTP). */
  fetcher?: Fetcher;
  /** The clock (epoch ms). */
  now?: () => number;
  /**
   * How long refreshed trust data is reused, ms (default: for the verifier's lifetime, as a CLI
   * run wants). Never past the earliest expiry of the metadata it holds. The admission webhook
   * sets this, so many reviews share one refresh.
   */
  refreshIntervalMs?: number;
  /** How many verified manifests to keep by digest (default 256). */
  manifestCacheSize?: number;
  /**
   * How long a failed refresh of a trust source is answered from memory, ms (default 0: the
   * next caller tries again). The webhook sets a few seconds, so a trust server that does not
   * answer is not asked again by every review.
   */
  failureCacheMs?: number;
  /**
   * How long one refresh of a trust source may take, ms (default 30 s). A refresh is shared by
   * every caller that needs it and runs under this timeout, not under any one caller's signal;
   * it is stopped early only when every caller waiting for it has gone.
   */
  refreshTimeoutMs?: number;
  /** Trust sources kept in memory at once, per kind (default 1,024; least recently used go). */
  maxSources?: number;
}

/** A refreshed trust source and how long it may be reused. */
interface Fresh<T> {
  readonly value: Promise<T>;
  readonly refreshedAt: number;
  /**
   * Earliest expiry of the metadata it holds, read at every use: a role loaded after the
   * refresh lowers it. Infinite while the refresh runs.
   */
  validUntil: () => number;
  /** Set when the refresh failed: the failure is the answer until then. */
  failedUntil?: number;
  /** While the refresh runs: the callers waiting for it, and how to stop it. */
  running?: { waiters: number; readonly stop: AbortController; readonly drop: () => void };
}

/** Trust sources kept at once, per kind (TUF repositories, Notary collections): least recently used go first. */
const MAX_SOURCES = 1024;

/** How long a shared refresh may run, ms, whoever waits for it (default). */
const REFRESH_TIMEOUT_MS = 30_000;

/**
 * The abort signal of the verification running in this async context: every request a
 * verification makes (its refreshes and lookups included) ends when it aborts.
 */
const currentSignal = new AsyncLocalStorage<AbortSignal | undefined>();

/** abortable settles with `p`, or fails at once when `signal` aborts. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (signal === undefined) return p;
  const stopped = () =>
    new DownloadError(`${redact(what)}: aborted (deadline)`, {
      code: 'SLOW_RETRIEVAL',
      cause: signal.reason,
    });
  if (signal.aborted) {
    p.catch(() => undefined); // its own failure is no longer anyone's answer
    return Promise.reject(stopped());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(stopped());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** A fetcher that passes on the signal of the verification it runs for. */
class SignalFetcher implements Fetcher {
  constructor(private readonly inner: Fetcher) {}

  fetch(url: string, maxLength: number, headers?: Record<string, string>): Promise<Uint8Array> {
    const signal = currentSignal.getStore();
    return abortable(this.inner.fetch(url, maxLength, headers, signal), signal, url);
  }
}

/** A manifest as its trust source signs it. */
export interface SignedManifest {
  /** `sha256:<hex>`: the digest to fetch by. */
  readonly digest: string;
  readonly length: number;
  readonly hashes: Record<string, string>;
  /** How `hashes` are written: hex (TUF) or base64 (Notary). */
  readonly encoding: HashEncoding;
  /** Who signed it, for messages: the TUF repository, or the Notary server and role. */
  readonly signedBy: string;
}

/** What a verification established. */
export interface VerifiedImage {
  /** The argument as given. */
  readonly input: string;
  readonly location: ImageLocation;
  readonly reference: Reference;
  /** The target path: `registry/repository:tag`, or `registry/repository@sha256:…` for a digest alone. */
  readonly targetPath: string;
  /** The signed manifest digest. */
  readonly digest: string;
  /** `registry/repository@sha256:…`: what to deploy. */
  readonly pinned: string;
  readonly length: number;
  readonly manifest: Uint8Array;
  readonly parsed: ImageManifest | ImageIndex;
  /** The policy rule that governed the decision. */
  readonly rule: string;
  /** What signed the manifest, and its signed length and hashes. */
  readonly signed: SignedManifest;
  /** For an index and a requested platform: that platform's manifest digest. */
  readonly platformDigest?: string;
}

function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The trust source of a TUF rule: the repository and the root trusted for it (as the cache folder). */
function tufId(source: TufSource, root: Uint8Array): string {
  return `${source.metadataUrl}\n${sha256Hex(root)}`;
}

/**
 * The trust source of a Notary rule for a GUN: the server, the GUN and how its root is trusted
 * (`trust`, as the cache folder), and the server CA besides (`id`).
 */
function notaryId(
  source: NotarySource,
  gun: string,
  rootCa: string | undefined,
  serverCa: string | undefined,
): { trust: string; id: string } {
  const trust = `${source.server}\n${gun}\n${source.rootKeys.join(',')}\n${rootCa ?? ''}\n${source.tofu}`;
  return { trust, id: `${trust}\n${serverCa ?? ''}` };
}

/** Verifies images under a trust policy; keeps one refreshed TUF client per trust source. */
export class ImageVerifier {
  readonly registry: RegistryClient;
  private readonly ownsRegistry: boolean;
  private readonly updaters = new Map<string, Fresh<Updater>>();
  private readonly notary = new Map<string, Fresh<NotaryCollection>>();
  private readonly manifests = new Map<string, { bytes: Uint8Array; mediaType?: string }>();
  /** HTTP fetchers by extra CA (`''`: none): one connection pool per origin for the process. */
  private readonly http = new Map<string, { fetcher: Fetcher; close?: () => Promise<void> }>();
  /** The origins of the notary servers in use: they get their hosts' credentials. */
  private readonly notaryOrigins = new Set<string>();
  /** Trusted roots and CA files as first read, by path. */
  private readonly files = new Map<string, Promise<Uint8Array>>();
  /** The same files once read, for the synchronous {@link hasFreshTrust}. */
  private readonly read = new Map<string, Uint8Array>();

  /** Reads TUF repositories stored in registries (`oci://` sources), shared by all of them. */
  private readonly registryFetcher: RegistryFetcher;

  constructor(private readonly options: VerifierOptions) {
    this.ownsRegistry = options.registry === undefined;
    this.registry = options.registry ?? new RegistryClient(options.registryOptions);
    this.registryFetcher = new RegistryFetcher(this.registry);
  }

  /** The trust policy verifications run under. */
  get policy(): TrustPolicy {
    return this.options.policy;
  }

  async close(): Promise<void> {
    for (const u of this.updaters.values()) await (await u.value.catch(() => undefined))?.close();
    for (const h of this.http.values()) await h.close?.();
    if (this.ownsRegistry) await this.registry.close();
  }

  /** fetcherFor returns the shared fetcher for servers trusted with `ca` (PEM) besides the system's. */
  private fetcherFor(ca: string | undefined): Fetcher {
    const key = ca ?? '';
    let h = this.http.get(key);
    if (h === undefined) {
      if (this.options.fetcher !== undefined) {
        h = { fetcher: new SignalFetcher(this.options.fetcher) };
      } else {
        const d = new DefaultFetcher({
          ...(ca === undefined ? {} : { ca }),
          // a notary server's own challenges are answered with its host's credentials (the
          // transport answers only the origin asked, and the realm its challenge names)
          credentials: async (origin) =>
            this.notaryOrigins.has(origin.origin)
              ? this.options.registryOptions?.credentials?.get(origin.host)
              : undefined,
        });
        h = { fetcher: new SignalFetcher(d), close: () => d.close() };
      }
      this.http.set(key, h);
    }
    return h.fetcher;
  }

  /** file reads a policy file (a trusted root, a CA) once for the verifier's lifetime. */
  private file(path: string, what: string): Promise<Uint8Array> {
    let p = this.files.get(path);
    if (p === undefined) {
      p = readFile(path).then(
        (b) => {
          const bytes = new Uint8Array(b);
          this.read.set(path, bytes);
          return bytes;
        },
        (cause) => {
          this.files.delete(path);
          throw new MisuseError(`${what} ${path}: ${(cause as Error).message}`);
        },
      );
      this.files.set(path, p);
    }
    return p;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * fresh returns a source's refreshed value, refreshing it (once, shared by concurrent callers)
   * when the refresh interval passed or the metadata it holds expired (checked at every use).
   * The refresh runs under its own timeout, not under the signal of the caller that started it:
   * each caller stops waiting when its own signal aborts, and the refresh is stopped only when
   * no caller waits for it any more. A failed refresh is answered for `failureCacheMs`, then
   * forgotten, so a later caller tries again; meanwhile nothing is trusted. A refresh stopped
   * because its callers left is never remembered as a failure. At most `maxSources` sources are
   * kept: expired failures and the least recently used go first.
   */
  private fresh<T>(
    map: Map<string, Fresh<T>>,
    key: string,
    what: string,
    refresh: (previous: Promise<T> | undefined) => Promise<{ value: T; validUntil: () => number }>,
  ): Promise<T> {
    const now = this.now();
    const interval = this.options.refreshIntervalMs ?? Number.POSITIVE_INFINITY;
    const cur = map.get(key);
    const signal = currentSignal.getStore();
    if (cur !== undefined) {
      if (
        cur.running !== undefined ||
        (cur.failedUntil !== undefined
          ? now < cur.failedUntil
          : now - cur.refreshedAt < interval && now < cur.validUntil())
      ) {
        // most recently used last
        map.delete(key);
        map.set(key, cur);
        return this.wait(cur, signal, what);
      }
    }
    // its own signal: aborted at its timeout, or when no caller waits for it any more
    const stop = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stop.abort(new Error(`${redact(what)}: the refresh timed out`));
    }, this.options.refreshTimeoutMs ?? REFRESH_TIMEOUT_MS);
    timer.unref?.();
    const entry: Fresh<T> = {
      refreshedAt: now,
      validUntil: () => Number.POSITIVE_INFINITY,
      running: {
        waiters: 0,
        stop,
        // stopped: later callers start a refresh of their own rather than join this one
        drop: () => {
          if (map.get(key) === entry) map.delete(key);
        },
      },
      // its requests end with its own signal, not with the caller's
      value: currentSignal
        .run(stop.signal, () => refresh(cur?.value))
        .then((r) => {
          entry.validUntil = r.validUntil;
          return r.value;
        })
        .finally(() => clearTimeout(timer)),
    };
    map.delete(key);
    map.set(key, entry);
    this.evict(map, now);
    entry.value.then(
      () => {
        delete entry.running;
      },
      () => {
        delete entry.running;
        if (map.get(key) !== entry) return;
        const ttl = this.options.failureCacheMs ?? 0;
        // stopped because nobody waits: not an answer about the trust source (a refresh that
        // ran out its own timeout is one: the server is too slow)
        if (ttl > 0 && (!stop.signal.aborted || timedOut)) entry.failedUntil = this.now() + ttl;
        else map.delete(key);
      },
    );
    return this.wait(entry, signal, what);
  }

  /** wait waits for a source until `signal` aborts; the last waiter to leave stops its refresh. */
  private wait<T>(entry: Fresh<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
    const running = entry.running;
    if (running === undefined) return abortable(entry.value, signal, what);
    if (signal === undefined) {
      // a caller that never aborts keeps the refresh wanted until it ends
      running.waiters++;
      return entry.value;
    }
    if (signal.aborted) return abortable(entry.value, signal, what);
    running.waiters++;
    return abortable(entry.value, signal, what).finally(() => {
      if (--running.waiters === 0 && entry.running === running) {
        running.drop();
        running.stop.abort();
      }
    });
  }

  /** evict forgets failures past their time, then the least recently used beyond the bound. */
  private evict<T>(map: Map<string, Fresh<T>>, now: number): void {
    for (const [k, e] of map) {
      if (e.failedUntil !== undefined && now >= e.failedUntil) map.delete(k);
    }
    const max = this.options.maxSources ?? MAX_SOURCES;
    // (an evicted TUF client holds no connections: its fetcher is the verifier's, shared)
    for (const k of map.keys()) {
      if (map.size <= max) break;
      map.delete(k);
    }
  }

  /**
   * hasFreshTrust tells, without waiting, whether the trust data an image needs is refreshed
   * and fresh in memory (no refresh to wait for): the admission webhook lets such images pass
   * its limiter queue.
   */
  hasFreshTrust(input: string): boolean {
    let reference: Reference;
    try {
      const location = parseLocation(input);
      if (location.transport !== 'docker') return false;
      reference = Reference.parse(location.reference);
    } catch {
      return false;
    }
    const source = this.options.policy.match(reference.name)?.source;
    if (source === undefined) return false;
    if (source.kind === 'tuf') {
      const root = this.read.get(source.root);
      return root !== undefined && this.isFresh(this.updaters.get(tufId(source, root)));
    }
    const text = (path: string | undefined): string | undefined | null => {
      if (path === undefined) return undefined;
      const b = this.read.get(path);
      return b === undefined ? null : new TextDecoder().decode(b);
    };
    const rootCa = text(source.rootCa);
    const serverCa = text(source.serverCa);
    if (rootCa === null || serverCa === null) return false;
    const { id } = notaryId(source, reference.name, rootCa, serverCa);
    return this.isFresh(this.notary.get(id));
  }

  private isFresh<T>(e: Fresh<T> | undefined): boolean {
    const now = this.now();
    const interval = this.options.refreshIntervalMs ?? Number.POSITIVE_INFINITY;
    return (
      e !== undefined &&
      e.running === undefined &&
      e.failedUntil === undefined &&
      now - e.refreshedAt < interval &&
      now < e.validUntil()
    );
  }

  /** updaterFor returns the refreshed client of a TUF source (one per URL and trusted root). */
  private async updaterFor(source: TufSource): Promise<Updater> {
    const root = await this.file(source.root, 'trusted root');
    // the trust source is the repository and the root trusted for it, as the cache folder is
    const id = tufId(source, root);
    return this.fresh(this.updaters, id, source.metadataUrl, async (previous) => {
      const updater =
        (await previous?.catch(() => undefined)) ?? (await this.newUpdater(source, id, root));
      await updater.refresh();
      const validUntil = () => {
        try {
          return updater.trusted.validUntil();
        } catch {
          return Number.NEGATIVE_INFINITY; // a later refresh of this client failed
        }
      };
      return { value: updater, validUntil };
    });
  }

  private async newUpdater(source: TufSource, id: string, root: Uint8Array): Promise<Updater> {
    // One cache per (repository, trusted root): changing the policy's root starts afresh.
    const dir = join(this.options.cacheDir, 'tuf', sha256Hex(id).slice(0, 32));
    if ((await readFile(join(dir, 'root.json')).catch(() => undefined)) === undefined) {
      await initMetadataDir(dir, root, nodeBackend);
    }
    return new Updater({
      metadataDir: dir,
      metadataBaseUrl: source.metadataUrl,
      // a repository in a registry is read through the verifier's registry client: the same
      // credentials, limits and deadlines as the images it governs
      fetcher: isOciUrl(source.metadataUrl)
        ? new SignalFetcher(this.registryFetcher)
        : this.fetcherFor(undefined),
      ...(this.options.now ? { now: this.options.now } : {}),
    });
  }

  /** referenceOf reads the image reference of a location (for oci:/oci-archive:, the ref name). */
  static referenceOf(loc: ImageLocation): Reference {
    if (loc.transport === 'docker') return Reference.parse(loc.reference);
    if (loc.refName === undefined) {
      throw new OciError(
        'BAD_REFERENCE',
        `${loc.transport}:${loc.path}: give the image's full name, e.g. ${loc.transport}:${loc.path}:registry.example/app:1.0`,
      );
    }
    return Reference.parse(loc.refName);
  }

  /**
   * verify checks one image.
   * @throws {@link ImageVerificationError} (`NO_POLICY`, `UNSIGNED_IMAGE`, `DIGEST_MISMATCH`),
   *   a TUF {@link RepositoryError} (expired, threshold, hash…), a {@link DownloadError} or an
   *   {@link OciError}; a `SLOW_RETRIEVAL` {@link DownloadError} when `signal` aborted it
   */
  verify(
    input: string,
    options: { platform?: Platform; signal?: AbortSignal } = {},
  ): Promise<VerifiedImage> {
    // every request this verification makes, shared refreshes it starts included, ends when
    // the signal aborts
    return currentSignal.run(options.signal, () => this.verifyIn(input, options));
  }

  private async verifyIn(
    input: string,
    options: { platform?: Platform; signal?: AbortSignal },
  ): Promise<VerifiedImage> {
    const location = parseLocation(input);
    const reference = ImageVerifier.referenceOf(location);
    const rule = this.options.policy.match(reference.name);
    if (rule === undefined) {
      throw new ImageVerificationError(
        'NO_POLICY',
        `${reference.name}: no trust policy rule matches it (denied)`,
      );
    }
    const { targetPath, signed } = await this.signedFor(rule.source, reference, input);
    const digest = signed.digest;
    const { bytes, mediaType } = await this.fetchManifest(
      location,
      reference,
      digest,
      signed.length,
    );
    // TUF 5.7.3: the manifest is the target: its length and every signed hash
    checkLengthAndHashes(bytes, signed, targetPath, nodeBackend, signed.encoding);
    const parsed = parseManifest(bytes, mediaType);
    let platformDigest: string | undefined;
    if (options.platform !== undefined && parsed.kind === 'index') {
      const entry = selectPlatform(parsed, options.platform);
      if (entry === undefined) {
        const p = options.platform;
        throw new ImageVerificationError(
          'UNSIGNED_IMAGE',
          `${targetPath}: the signed index lists no ${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''} manifest`,
        );
      }
      platformDigest = entry.digest;
    }
    return {
      input,
      location,
      reference,
      targetPath,
      digest,
      pinned: reference.pinned(digest),
      length: bytes.length,
      manifest: bytes,
      parsed,
      rule: rule.match,
      signed,
      ...(platformDigest === undefined ? {} : { platformDigest }),
    };
  }

  /**
   * signedFor finds the signed target that governs a reference. A tag (alone or with a digest)
   * is the target `registry/repository:tag`; a given digest must then equal the tag's signed
   * one. A digest alone is the target `registry/repository@sha256:D` (TUF: `repo add-image`
   * lists it beside the tag, so the lookup is one delegation walk, hashed bins included) or, for
   * Notary, a tag Docker Content Trust resolves (`targets/releases`, else `targets`) to D. Either
   * way the signed digest must be D: an entry listing other bytes under D's path is refused.
   */
  private async signedFor(
    source: TufSource | NotarySource,
    reference: Reference,
    input: string,
  ): Promise<{ targetPath: string; signed: SignedManifest }> {
    const targetPath = reference.tagged ?? reference.pinned();
    const signed =
      source.kind === 'tuf'
        ? await this.signedByTuf(source, targetPath)
        : await this.signedByNotary(source, reference, targetPath);
    if (reference.digest !== undefined && reference.digest !== signed.digest) {
      throw new ImageVerificationError(
        'DIGEST_MISMATCH',
        `${input}: the reference's digest ${reference.digest} is not the signed ${signed.digest} (${targetPath})`,
      );
    }
    return { targetPath, signed };
  }

  /** signedByTuf looks the image up as a target of a TUF repository. */
  private async signedByTuf(source: TufSource, targetPath: string): Promise<SignedManifest> {
    let updater = await this.updaterFor(source);
    let target = await updater.getTargetInfo(targetPath);
    // TUF 5.6.5 (freeze attack): every use checks expiry against the current time, the roles
    // this lookup loaded included; expired trust data is refreshed once, then refused
    if (this.now() >= updater.trusted.validUntil()) {
      updater = await this.updaterFor(source);
      target = await updater.getTargetInfo(targetPath);
      const until = updater.trusted.validUntil();
      if (this.now() >= until) {
        throw new ExpiredMetadataError(
          `${targetPath}: the trust data of ${redact(source.metadataUrl)} expired at ${new Date(until).toISOString()}`,
        );
      }
    }
    if (target === undefined) {
      throw new ImageVerificationError(
        'UNSIGNED_IMAGE',
        `${targetPath}: not signed (no such target in ${redact(source.metadataUrl)})`,
      );
    }
    const hex = target.hashes.sha256;
    if (hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) {
      throw new ImageVerificationError(
        'UNSIGNED_IMAGE',
        `${targetPath}: the signed target has no sha256 to fetch the manifest by`,
      );
    }
    return {
      digest: `sha256:${hex}`,
      length: target.length,
      hashes: target.hashes,
      encoding: 'hex',
      signedBy: redact(source.metadataUrl),
    };
  }

  /** signedByNotary looks the tag up the way Docker Content Trust does (GUN = registry/repository). */
  private async signedByNotary(
    source: NotarySource,
    reference: Reference,
    targetPath: string,
  ): Promise<SignedManifest> {
    const gun = reference.name;
    const text = async (path: string | undefined, what: string) =>
      path === undefined ? undefined : new TextDecoder().decode(await this.file(path, what));
    const rootCa = await text(source.rootCa, 'root CA');
    const serverCa = await text(source.serverCa, 'server CA');
    // the trust source is the server, the GUN and how its root is trusted, as the cache folder is
    const { trust, id } = notaryId(source, gun, rootCa, serverCa);
    this.notaryOrigins.add(new URL(source.server).origin);
    const collection = this.fresh(this.notary, id, `${source.server} ${gun}`, async () => {
      const cacheDir = join(this.options.cacheDir, 'notary', sha256Hex(trust).slice(0, 32));
      const client = new NotaryClient({
        server: source.server,
        gun,
        trust: {
          rootKeyIds: source.rootKeys,
          ...(rootCa === undefined ? {} : { rootCa }),
          tofu: source.tofu,
        },
        cacheDir,
        fetcher: this.fetcherFor(serverCa),
        ...(this.options.now ? { now: this.options.now } : {}),
      });
      try {
        const c = await client.refresh();
        const all = [c.root, c.timestamp, c.snapshot, ...c.roles.values()];
        const until = Math.min(...all.map((r) => r.expiresAt));
        return { value: c, validUntil: () => until };
      } finally {
        await client.close();
      }
    });
    const c = await collection;
    // a digest alone: signed when a tag DCT resolves (releases before targets) has it
    const hit =
      reference.tag !== undefined
        ? lookupTag(c, reference.tag)
        : signedTags(c).find((t) => t.digest === reference.digest);
    if (hit === undefined) {
      const what =
        reference.tag !== undefined
          ? `tag ${reference.tag}`
          : `tag signed with ${reference.digest}`;
      throw new ImageVerificationError(
        'UNSIGNED_IMAGE',
        `${targetPath}: not signed (no ${what} in targets/releases or targets of ${gun} on ${redact(source.server)})`,
      );
    }
    if (hit.digest === undefined) {
      throw new ImageVerificationError(
        'UNSIGNED_IMAGE',
        `${targetPath}: the signed tag has no sha256 (Docker Content Trust requires one)`,
      );
    }
    return {
      digest: hit.digest,
      length: hit.target.length,
      hashes: hit.target.hashes,
      encoding: 'base64',
      signedBy: `${redact(source.server)} ${hit.role}`,
    };
  }

  private remember(digest: string, m: { bytes: Uint8Array; mediaType?: string }): void {
    const max = this.options.manifestCacheSize ?? 256;
    if (max <= 0) return;
    if (this.manifests.size >= max)
      this.manifests.delete(this.manifests.keys().next().value as string);
    this.manifests.set(digest, m);
  }

  /** fetchManifest gets the manifest by the signed digest from the image's location. */
  private async fetchManifest(
    loc: ImageLocation,
    ref: Reference,
    digest: string,
    length: number,
  ): Promise<{ bytes: Uint8Array; mediaType?: string }> {
    if (loc.transport === 'docker') {
      // Content-addressed: bytes verified for a digest stay right for it; the signed length and
      // hashes are still checked against them on every verification.
      const hit = this.manifests.get(digest);
      if (hit !== undefined) return hit;
      try {
        const signal = currentSignal.getStore();
        // the request itself ends when the verification is aborted, not just the wait for it
        const m = await abortable(
          this.registry.getManifest(ref, digest, length, signal === undefined ? {} : { signal }),
          signal,
          `${ref.name}@${digest}`,
        );
        this.remember(digest, {
          bytes: m.bytes,
          ...(m.mediaType ? { mediaType: m.mediaType } : {}),
        });
        return { bytes: m.bytes, ...(m.mediaType ? { mediaType: m.mediaType } : {}) };
      } catch (e) {
        if (e instanceof OciError && e.code === 'NOT_FOUND') {
          throw new ImageVerificationError(
            'DIGEST_MISMATCH',
            `${ref.name}: the registry does not have the signed manifest ${digest}`,
          );
        }
        throw e;
      }
    }
    return withLayout(loc, async (dir) => {
      const image = await readLayout(dir, loc.refName);
      if (image.descriptor.digest !== digest) {
        throw new ImageVerificationError(
          'DIGEST_MISMATCH',
          `${loc.transport}:${loc.path}:${loc.refName} names ${image.descriptor.digest}, the signed digest is ${digest}`,
        );
      }
      return { bytes: image.manifest, mediaType: image.descriptor.mediaType };
    });
  }
}

/** withLayout runs `fn` on a layout folder: the folder itself, or an unpacked archive. */
export async function withLayout<T>(
  loc: ImageLocation,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  if (loc.transport === 'docker') throw new MisuseError('not a local layout');
  if (loc.transport === 'oci') return fn(loc.path);
  const dir = await extractArchive(loc.path, tmpdir());
  try {
    return await fn(dir);
  } catch (e) {
    // messages name the archive the user gave, never the folder it was unpacked into
    if (e instanceof Error) e.message = e.message.replaceAll(dir, loc.path);
    throw e;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
