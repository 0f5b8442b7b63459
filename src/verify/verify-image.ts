/**
 * Verify before pull: an image reference is a signed TUF target; the manifest is fetched by the
 * signed digest and its bytes checked against the target's length and every hash. Nothing is
 * pulled before this passes, and the result is the pinned reference to deploy.
 *
 * A tag or a `Docker-Content-Digest` header is never trusted: the source (a registry, a layout)
 * is asked for the manifest by the signed digest, and the bytes it returns are checked here
 * ({@link checkManifest}).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DefaultFetcher,
  type Fetcher,
  isOciUrl,
  MemoryMetadataStore,
  RegistryFetcher,
  Updater,
} from '../client/index.js';
import { ExpiredMetadataError, MisuseError } from '../core/index.js';
import { sha256Hex } from '../crypto/index.js';
import { lookupTag, NotaryClient, type NotaryCollection, signedTags } from '../notary/index.js';
import {
  type FetchedManifest,
  type ImageIndex,
  type ImageManifest,
  type ManifestSource,
  OciError,
  type Platform,
  type Reference,
  type RegistryClient,
  selectPlatform,
} from '../oci/index.js';
import { type CredentialLookup, redact } from '../transport/index.js';
import { checkManifest, checkPinnedDigest, type SignedManifest } from './check-manifest.js';
import { ImageVerificationError } from './errors.js';
import type { NotarySource, PolicyRule, TrustAnchor, TrustPolicy, TufSource } from './policy.js';
import { abortable, currentSignal, RefreshCache, SignalFetcher } from './refresh-cache.js';

/** Options of {@link ImageVerifier}: the policy, where trust data is cached, and limits. */
export interface VerifierOptions {
  policy: TrustPolicy;
  /**
   * Where trust data is cached, one folder per trust source (default: TUF data in memory, Notary
   * collections in a temp folder of the verifier's own, removed by {@link ImageVerifier.close}).
   */
  cacheDir?: string;
  /** Metadata fetcher for TUF repositories (default: HTTP). */
  fetcher?: Fetcher;
  /**
   * The registry client that reads TUF repositories stored in registries (`oci://` rules): the
   * same credentials, limits and deadlines as the images they govern. Without it such a rule is
   * refused (`MISUSE`).
   */
  registry?: RegistryClient;
  /**
   * Credentials for the notary servers of the policy, by origin: each server's own challenges
   * are answered with its origin's (never another origin's). A notary login goes here, never
   * to the registry client.
   */
  notaryCredentials?: CredentialLookup;
  /**
   * Reads the files a policy names instead of giving bytes (trusted roots, CA certificates),
   * once each for the verifier's lifetime; the CLI passes a file reader. Without it, a rule
   * naming a file is refused (`MISUSE`).
   */
  files?: (path: string) => Promise<Uint8Array>;
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

export type { SignedManifest } from './check-manifest.js';

/** What a verification established. */
export interface VerifiedImage {
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

/**
 * targetPathOf says which signed target governs `reference`: a tag (alone or with a digest) is
 * the target `registry/repository:tag`, and a digest given too must equal the tag's signed one
 * ({@link checkPinnedDigest}); a digest alone is the target `registry/repository@sha256:D`
 * (`repo add-image` lists it beside the tag, so the lookup is one delegation walk, hashed bins
 * included) or, for Notary, a tag Docker Content Trust resolves to D. Either way the signed
 * digest must be D: an entry listing other bytes under D's path is refused.
 */
function targetPathOf(reference: Reference): string {
  return reference.tagged ?? reference.pinned();
}

/**
 * platformDigestOf returns, for a signed index and a requested platform, that platform's
 * manifest digest.
 * @throws {@link ImageVerificationError} `UNSIGNED_IMAGE` when the index lists none
 */
function platformDigestOf(
  parsed: ImageManifest | ImageIndex,
  platform: Platform | undefined,
  targetPath: string,
): string | undefined {
  if (platform === undefined || parsed.kind !== 'index') return undefined;
  const entry = selectPlatform(parsed, platform);
  if (entry === undefined) {
    const p = platform;
    throw new ImageVerificationError(
      'UNSIGNED_IMAGE',
      `${targetPath}: the signed index lists no ${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''} manifest`,
    );
  }
  return entry.digest;
}

/** Verifies images under a trust policy; keeps one refreshed TUF client per trust source. */
export class ImageVerifier {
  private readonly updaters: RefreshCache<Updater>;
  private readonly notary: RefreshCache<NotaryCollection>;
  private readonly manifests = new Map<string, FetchedManifest>();
  /** HTTP fetchers by extra CA (`''`: none): one connection pool per origin for the process. */
  private readonly http = new Map<string, { fetcher: Fetcher; close?: () => Promise<void> }>();
  /** The origins of the notary servers in use: they get their hosts' credentials. */
  private readonly notaryOrigins = new Set<string>();
  /** Trusted roots and CA files as first read, by path. */
  private readonly files = new Map<string, Promise<Uint8Array>>();
  /** The same files once read, for the synchronous {@link hasFreshTrust}. */
  private readonly read = new Map<string, Uint8Array>();
  /** The cache folder, when none was given: a temp folder of this verifier's. */
  private tempDir: Promise<string> | undefined;

  /** Reads TUF repositories stored in registries (`oci://` sources), shared by all of them. */
  private readonly registryFetcher: RegistryFetcher | undefined;

  constructor(private readonly options: VerifierOptions) {
    const o = { ...options, now: () => this.now() };
    this.updaters = new RefreshCache(o);
    this.notary = new RefreshCache(o);
    this.registryFetcher =
      options.registry === undefined ? undefined : new RegistryFetcher(options.registry);
  }

  /** The trust policy verifications run under. */
  get policy(): TrustPolicy {
    return this.options.policy;
  }

  async close(): Promise<void> {
    for (const u of this.updaters.values()) await (await u.catch(() => undefined))?.close();
    for (const h of this.http.values()) await h.close?.();
    const tmp = await this.tempDir?.catch(() => undefined);
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  }

  /** notaryDir is the cache folder of a Notary collection: under `cacheDir`, or the temp folder. */
  private async notaryDir(id: string): Promise<string> {
    let root = this.options.cacheDir;
    if (root === undefined) {
      this.tempDir ??= mkdtemp(join(tmpdir(), 'tufa-verify-'));
      root = await this.tempDir;
    }
    return join(root, 'notary', sha256Hex(id).slice(0, 32));
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
          // a notary server's own challenges are answered with its credentials (the transport
          // answers only the origin asked, and the realm its challenge names)
          credentials: async (origin) =>
            this.notaryOrigins.has(origin.origin)
              ? this.options.notaryCredentials?.(origin)
              : undefined,
        });
        h = { fetcher: new SignalFetcher(d), close: () => d.close() };
      }
      this.http.set(key, h);
    }
    return h.fetcher;
  }

  /** anchor returns a rule's trusted root or CA bytes: as given, or read once from its file. */
  private anchor(value: TrustAnchor, what: string): Promise<Uint8Array> {
    if (typeof value !== 'string') return Promise.resolve(value);
    const path = value;
    const read = this.options.files;
    if (read === undefined) {
      return Promise.reject(
        new MisuseError(`${what} ${path}: a file, and this verifier reads none (give the bytes)`),
      );
    }
    let p = this.files.get(path);
    if (p === undefined) {
      p = read(path).then(
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
   * hasFreshTrust tells, without waiting, whether the trust data an image needs is refreshed
   * and fresh in memory (no refresh to wait for): the admission webhook lets such images pass
   * its limiter queue.
   */
  hasFreshTrust(reference: Reference): boolean {
    const source = this.options.policy.match(reference.name)?.source;
    if (source === undefined) return false;
    const bytes = (a: TrustAnchor) => (typeof a === 'string' ? this.read.get(a) : a);
    if (source.kind === 'tuf') {
      const root = bytes(source.root);
      return root !== undefined && this.updaters.isFresh(tufId(source, root));
    }
    const text = (a: TrustAnchor | undefined): string | undefined | null => {
      if (a === undefined) return undefined;
      const b = bytes(a);
      return b === undefined ? null : new TextDecoder().decode(b);
    };
    const rootCa = text(source.rootCa);
    const serverCa = text(source.serverCa);
    if (rootCa === null || serverCa === null) return false;
    return this.notary.isFresh(notaryId(source, reference.name, rootCa, serverCa).id);
  }

  /** updaterFor returns the refreshed client of a TUF source (one per URL and trusted root). */
  private async updaterFor(source: TufSource): Promise<Updater> {
    const root = await this.anchor(source.root, 'trusted root');
    // the trust source is the repository and the root trusted for it, as the cache folder is
    const id = tufId(source, root);
    return this.updaters.get(id, source.metadataUrl, async (previous) => {
      const updater = (await previous?.catch(() => undefined)) ?? this.newUpdater(source, id, root);
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

  /** registryOf is the fetcher of a TUF repository in a registry (an `oci://` rule). */
  private registryOf(source: TufSource): RegistryFetcher {
    if (this.registryFetcher === undefined) {
      throw new MisuseError(
        `${source.metadataUrl}: a TUF repository in a registry, and this verifier has no registry client (give one)`,
      );
    }
    return this.registryFetcher;
  }

  private newUpdater(source: TufSource, id: string, root: Uint8Array): Updater {
    // One cache per (repository, trusted root): changing the policy's root starts afresh.
    // Without a cache folder the trust data is kept in memory.
    const dir = this.options.cacheDir;
    return new Updater({
      ...(dir === undefined
        ? { store: new MemoryMetadataStore() }
        : { metadataDir: join(dir, 'tuf', sha256Hex(id).slice(0, 32)) }),
      trustedRoot: root,
      metadataBaseUrl: source.metadataUrl,
      // a repository in a registry is read through the verifier's registry client: the same
      // credentials, limits and deadlines as the images it governs
      fetcher: isOciUrl(source.metadataUrl)
        ? new SignalFetcher(this.registryOf(source))
        : this.fetcherFor(undefined),
      ...(this.options.now ? { now: this.options.now } : {}),
    });
  }

  /**
   * verify checks one image: `reference` is looked up under the trust policy, and its manifest
   * is asked of `source` by the signed digest and checked ({@link checkManifest}).
   * @param source - where the image's bytes are (a registry, a layout); it stays open
   * @throws {@link ImageVerificationError} (`NO_POLICY`, `UNSIGNED_IMAGE`, `DIGEST_MISMATCH`),
   *   a TUF {@link RepositoryError} (expired, threshold, hash…), a {@link DownloadError} or an
   *   {@link OciError}; a `SLOW_RETRIEVAL` {@link DownloadError} when `signal` aborted it
   */
  verify(
    reference: Reference,
    source: ManifestSource,
    options: { platform?: Platform; signal?: AbortSignal } = {},
  ): Promise<VerifiedImage> {
    // every request this verification makes, shared refreshes it starts included, ends when
    // the signal aborts
    return currentSignal.run(options.signal, () =>
      this.verifyIn(reference, source, options.platform),
    );
  }

  private async verifyIn(
    reference: Reference,
    source: ManifestSource,
    platform: Platform | undefined,
  ): Promise<VerifiedImage> {
    const targetPath = targetPathOf(reference);
    const rule = this.ruleFor(reference);
    const signed = await this.signedFor(rule, reference, targetPath);
    const digest = signed.digest;
    checkPinnedDigest(reference, digest);
    const fetched = await this.fetchManifest(source, digest, signed.length);
    const { bytes, mediaType } = fetched;
    const parsed = checkManifest(signed, bytes, reference, mediaType);
    // kept only once checked: a source that answers with other bytes poisons nothing
    this.remember(digest, fetched);
    const platformDigest = platformDigestOf(parsed, platform, targetPath);
    return {
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
   * ruleFor finds the policy rule that governs `reference`.
   * @throws {@link ImageVerificationError} `NO_POLICY` (no rule: denied)
   */
  private ruleFor(reference: Reference): PolicyRule {
    const rule = this.options.policy.match(reference.name);
    if (rule === undefined) {
      throw new ImageVerificationError(
        'NO_POLICY',
        `${reference.name}: no trust policy rule matches it (denied)`,
      );
    }
    return rule;
  }

  /** signedFor looks the image up in the trust source of its rule. */
  private signedFor(
    rule: PolicyRule,
    reference: Reference,
    targetPath: string,
  ): Promise<SignedManifest> {
    return rule.source.kind === 'tuf'
      ? this.signedByTuf(rule.source, targetPath)
      : this.signedByNotary(rule.source, reference, targetPath);
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
      path: targetPath,
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
    const text = async (a: TrustAnchor | undefined, what: string) =>
      a === undefined ? undefined : new TextDecoder().decode(await this.anchor(a, what));
    const rootCa = await text(source.rootCa, 'root CA');
    const serverCa = await text(source.serverCa, 'server CA');
    // the trust source is the server, the GUN and how its root is trusted, as the cache folder is
    const { trust, id } = notaryId(source, gun, rootCa, serverCa);
    this.notaryOrigins.add(new URL(source.server).origin);
    const collection = this.notary.get(id, `${source.server} ${gun}`, async () => {
      const cacheDir = await this.notaryDir(trust);
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
      path: targetPath,
      signedBy: `${redact(source.server)} ${hit.role}`,
    };
  }

  private remember(digest: string, m: FetchedManifest): void {
    const max = this.options.manifestCacheSize ?? 256;
    if (max <= 0 || this.manifests.has(digest)) return;
    if (this.manifests.size >= max)
      this.manifests.delete(this.manifests.keys().next().value as string);
    this.manifests.set(digest, m);
  }

  /**
   * fetchManifest asks `source` for the manifest by the signed digest. A source that names a
   * digest itself (a layout's ref name) must name the signed one.
   */
  private async fetchManifest(
    source: ManifestSource,
    digest: string,
    length: number,
  ): Promise<FetchedManifest> {
    const signal = currentSignal.getStore();
    const request = signal === undefined ? {} : { signal };
    const named = await source.named?.(request);
    if (named !== undefined && named.digest !== digest) {
      throw new ImageVerificationError(
        'DIGEST_MISMATCH',
        `${source.name} names ${named.digest}, the signed digest is ${digest}`,
      );
    }
    // Content-addressed: bytes verified for a digest stay right for it; the signed length and
    // hashes are still checked against them on every verification.
    const hit = this.manifests.get(digest);
    if (hit !== undefined) return hit;
    try {
      // the request itself ends when the verification is aborted, not just the wait for it
      return await abortable(
        source.manifest(digest, length, request),
        signal,
        `${source.name}@${digest}`,
      );
    } catch (e) {
      if (e instanceof OciError && e.code === 'NOT_FOUND') {
        throw new ImageVerificationError(
          'DIGEST_MISMATCH',
          `${source.name}: the registry does not have the signed manifest ${digest}`,
        );
      }
      throw e;
    }
  }
}
