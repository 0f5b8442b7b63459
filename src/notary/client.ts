/**
 * A Notary v1 client: reads and verifies the trust data of one GUN from a notary-server, the
 * way Docker Content Trust does, with TUF's protections.
 *
 * Rules of this module:
 * - Root: X.509 leaf certificates with CN = GUN, valid at the reference time, trusted through a
 *   pin (certificate or canonical key ID, or a CA). Trust on first use only when asked for.
 *   A CA pin holds through issuers valid at the verification time, CAs with keyCertSign,
 *   within their pathLenConstraint. A cached root is updated through every `N.root.json` in
 *   between, each signed by a threshold of the previous root's keys and of its own.
 * - The cache only receives root bytes that verified under the pin or through such a chain,
 *   and records the trust settings it was made under: under other ones it is dropped whole.
 *   A served `root.json` of the trusted version must be byte-identical to the trusted copy.
 * - Timestamp (at most 1 MiB) → snapshot and targets fetched by the SHA-256 their parent lists
 *   (`<role>.<sha256>.json`), length and every hash checked, thresholds, expiry, and versions
 *   never lower than the cached ones: the cached timestamp and snapshot (while the current
 *   root's keys verify them, else dropped: TUF 5.3.11) and a floor per targets role
 *   (`versions.json`), as Notary's own client keeps.
 * - Delegations `targets/<x>` are read in pre-order; one without a snapshot entry is skipped (it
 *   was never published), an expired or under-signed one is skipped and reported (as Docker
 *   does). A hash mismatch is never skipped: it ends the refresh, and so does reaching
 *   MAX_ROLES with roles left to read (never a silently shortened walk).
 * - DCT lookup: the tag in `targets/releases`, else in `targets`; `hashes.sha256` required.
 *   When `targets` delegates `targets/releases` and it was skipped, the lookup refuses: no fall
 *   back to `targets`.
 * - A refresh holds the cache folder's lock (the TUF cache's) from its first read to its last
 *   write.
 */
import { X509Certificate } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { DefaultFetcher, type Fetcher } from '../client/index.js';
import {
  BadVersionNumberError,
  base64ToBytes,
  bytesToHex,
  CacheError,
  type CryptoBackend,
  canonicalize,
  checkLengthAndHashes,
  DownloadHttpError,
  ExpiredMetadataError,
  MisuseError,
  parseJson,
  RepositoryError,
  UnsignedMetadataError,
  verificationResult,
  verifyThreshold,
} from '../core/index.js';
import { nodeBackend, sha256Hex } from '../crypto/index.js';
import { readIfExists, withLock, writeFileAtomic } from '../internal/index.js';
import type { Credentials } from '../transport/index.js';
import {
  base64Signature,
  canonicalKeyId,
  caProblem,
  certificates,
  chainProblem,
  NotaryKeyRing,
  rootCertificateProblem,
} from './keys.js';
import {
  type NotaryDocument,
  type NotaryMeta,
  type NotaryRole,
  type NotaryRoot,
  type NotarySnapshot,
  type NotaryTarget,
  type NotaryTargets,
  type NotaryTimestamp,
  type NotaryType,
  type NotaryTypes,
  parseNotary,
} from './model.js';

/** A root key ID as `notary key list` prints it and root.json lists it: 64 hex digits. */
export const ROOT_KEY_ID = /^[0-9a-fA-F]{64}$/;

/** How the root of a GUN is trusted. */
export interface NotaryTrust {
  /** Pinned root key IDs: certificate IDs as root.json lists them, or canonical key IDs. */
  readonly rootKeyIds?: readonly string[];
  /** Pinned CA certificates (PEM): root certificates must chain to one. */
  readonly rootCa?: string;
  /** Trust on first use: accept the first root seen (then pin it in the cache). */
  readonly tofu?: boolean;
}

export interface NotaryClientOptions {
  /** The notary server, e.g. `https://notary.example` (no trailing slash needed). */
  readonly server: string;
  /** The GUN: `registry/repository`. */
  readonly gun: string;
  readonly trust: NotaryTrust;
  /** Folder for this GUN's trusted root and the rollback references. */
  readonly cacheDir: string;
  readonly fetcher?: Fetcher;
  /** Extra CA certificates (PEM) for the server's TLS (used when no fetcher is given). */
  readonly serverCa?: string;
  readonly credentials?: Credentials;
  readonly now?: () => number;
  readonly backend?: CryptoBackend;
  /** Where load-time notices go (a pinned CA dropped); default `process.emitWarning`. */
  readonly onWarning?: (message: string) => void;
}

/** A role that was read but not used, and why. */
export interface SkippedRole {
  readonly role: string;
  readonly reason: string;
}

/** A verified target and the role that signed it. */
export interface SignedTag {
  readonly role: string;
  readonly target: NotaryTarget;
  /** `sha256:<hex>` of the manifest, when the target has a sha256. */
  readonly digest: string | undefined;
}

/** What a refresh established. */
export interface NotaryCollection {
  readonly gun: string;
  readonly root: NotaryRoot;
  readonly timestamp: NotaryTimestamp;
  readonly snapshot: NotarySnapshot;
  /** Verified targets roles by name (`targets`, `targets/releases`, …), in pre-order. */
  readonly roles: ReadonlyMap<string, NotaryTargets>;
  readonly skipped: readonly SkippedRole[];
}

const MAX_ROOT = 1024 * 1024;
const MAX_TIMESTAMP = 1024 * 1024;
const MAX_ROOT_ROTATIONS = 256;
const MAX_ROLES = 256;
/** The cache's record of the trust settings its root was verified under. */
const PIN_FILE = 'trust-pin';
/** The version floor of every targets role seen (Notary's snapshot lists no versions). */
const VERSIONS_FILE = 'versions.json';
/** Every file of a GUN's cache, dropped together when the pin changes. */
const CACHE_FILES = ['root.json', 'timestamp.json', 'snapshot.json', VERSIONS_FILE, PIN_FILE];
/** The cache folder's lock, the same file the TUF metadata cache locks. */
const LOCK_FILE = '.tufa.lock';

/** digestOfTarget is `sha256:<hex>` of a target's base64 sha256, if any. */
export function digestOfTarget(t: NotaryTarget): string | undefined {
  const b = t.hashes.sha256 === undefined ? undefined : base64ToBytes(t.hashes.sha256);
  return b?.length === 32 ? `sha256:${bytesToHex(b)}` : undefined;
}

/** pemBlocks splits PEM text into its certificate blocks. */
function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

const warned = new Set<string>();
/** warnOnce is the default notice sink: a process warning, once per message. */
function warnOnce(message: string): void {
  if (warned.has(message) || warned.size > 1000) return;
  warned.add(message);
  process.emitWarning(message, { code: 'TUFA_NOTARY_ROOT_CA' });
}

/**
 * nextFloors are the role versions to keep after a refresh: the verified roles' versions, and
 * the old floors of roles not verified this time (skipped, or below a skipped role), except
 * those a verified parent no longer delegates (and their descendants).
 */
function nextFloors(
  old: ReadonlyMap<string, number>,
  verified: ReadonlyMap<string, NotaryTargets>,
): Map<string, number> {
  const next = new Map(old);
  for (const [name, r] of verified) next.set(name, r.version);
  // parents before children
  for (const name of [...next.keys()].sort((a, b) => a.length - b.length)) {
    if (name === 'targets') continue;
    const parentName = posix.dirname(name);
    const parent = verified.get(parentName);
    const orphan = parentName !== 'targets' && !next.has(parentName);
    if (orphan || (parent !== undefined && !parent.delegations.some((d) => d.name === name)))
      next.delete(name);
  }
  return next;
}

/** withinPaths: Notary delegation paths are string prefixes; `""` is everything. */
function withinPaths(name: string, paths: readonly string[]): boolean {
  return paths.some((p) => name.startsWith(p));
}

export class NotaryClient {
  private readonly fetcher: Fetcher;
  private readonly backend: CryptoBackend;
  /** The pinned CAs usable at load. */
  private readonly cas: readonly X509Certificate[];
  /** Digest of the trust settings: a cache made under other ones is not used. */
  private readonly pinDigest: string;

  constructor(private readonly o: NotaryClientOptions) {
    if (!o.trust.tofu && (o.trust.rootKeyIds ?? []).length === 0 && o.trust.rootCa === undefined) {
      throw new MisuseError(
        `${o.gun}: no root trust configured (pin root key IDs or a CA; trust on first use only when asked for)`,
      );
    }
    for (const [i, id] of (o.trust.rootKeyIds ?? []).entries()) {
      // never echoed: a private key pasted here must not end up in logs
      if (!ROOT_KEY_ID.test(id))
        throw new MisuseError(
          `${o.gun}: root key ID ${i + 1}: expected 64 hex digits (a certificate or canonical key ID), got ${id.length} characters`,
        );
    }
    this.cas = o.trust.rootCa === undefined ? [] : this.loadCas(o.trust.rootCa);
    this.pinDigest = sha256Hex(
      canonicalize({
        gun: o.gun,
        rootKeyIds: [...(o.trust.rootKeyIds ?? [])].map((k) => k.toLowerCase()).sort(),
        // the CAs as configured (not only those usable now: one expiring must not reset the
        // rollback references)
        rootCa: pemBlocks(o.trust.rootCa ?? '')
          .map((b) => b.replace(/\s+/g, ''))
          .sort(),
        tofu: o.trust.tofu === true,
      }),
    );
    this.fetcher =
      o.fetcher ??
      new DefaultFetcher({
        ...(o.serverCa === undefined ? {} : { ca: o.serverCa }),
        scope: `repository:${o.gun}:pull`,
        // the credentials answer the notary server's own challenges, nobody else's
        credentials: async (origin) =>
          origin.origin === new URL(o.server).origin ? o.credentials : undefined,
      });
    this.backend = o.backend ?? nodeBackend;
  }

  /**
   * loadCas keeps the pinned CA certificates that can issue certificates now (a CA, keyCertSign,
   * within their validity); the others are dropped with a warning. A pin of CAs none of which
   * is usable is a misuse (never a silent fall back to other trust).
   */
  private loadCas(pem: string): X509Certificate[] {
    const now = (this.o.now ?? Date.now)();
    const warn = this.o.onWarning ?? warnOnce;
    const blocks = pemBlocks(pem);
    const kept: X509Certificate[] = [];
    const dropped: string[] = [];
    for (const [i, block] of blocks.entries()) {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(block);
      } catch (e) {
        dropped.push(`certificate ${i + 1}: unreadable (${(e as Error).message})`);
        continue;
      }
      const problem = caProblem(cert, now);
      if (problem === undefined) kept.push(cert);
      else dropped.push(`certificate ${i + 1}: ${problem}`);
    }
    for (const d of dropped) warn(`${this.o.gun}: pinned root CA dropped: ${d}`);
    if (kept.length === 0) {
      throw new MisuseError(
        `${this.o.gun}: no usable CA certificate among the pinned root CAs${dropped.length > 0 ? ` (${dropped.join('; ')})` : ''}`,
      );
    }
    return kept;
  }

  async close(): Promise<void> {
    if (this.o.fetcher === undefined && this.fetcher instanceof DefaultFetcher)
      await this.fetcher.close();
  }

  /** url is where a role file lives: `<server>/v2/<GUN>/_trust/tuf/<name>` (GUN unescaped). */
  url(name: string): string {
    return `${this.o.server.replace(/\/+$/, '')}/v2/${this.o.gun}/_trust/tuf/${name}`;
  }

  /**
   * get fetches a file of this GUN. The fetcher's transport answers the server's own 401
   * challenges (a bearer token from the realm it names, with the credentials if any), never a
   * redirect target's.
   */
  private get(name: string, maxLength: number): Promise<Uint8Array> {
    return this.fetcher.fetch(this.url(name), maxLength).catch((e: unknown) => {
      if (!(e instanceof DownloadHttpError) || e.statusCode !== 401) throw e;
      throw new DownloadHttpError(
        `${e.message} (${this.o.gun} needs a login at ${new URL(this.o.server).host}: docker login, or --username with --password-stdin)`,
        401,
      );
    });
  }

  private parse<K extends NotaryType>(
    raw: Uint8Array,
    type: K,
    source: string,
  ): NotaryDocument<NotaryTypes[K]> {
    return parseNotary(raw, type, `${this.o.gun} ${source}`);
  }

  /** threshold: TUF 5.4.2 / 5.5.3 / 5.6.3 in Notary's dialect (base64 r‖s signatures). */
  private threshold(
    what: string,
    doc: NotaryDocument<unknown>,
    role: NotaryRole,
    ring: NotaryKeyRing,
  ): void {
    verifyThreshold(`${this.o.gun} ${what}`, doc, role, ring, base64Signature);
  }

  private expired(
    what: string,
    s: { expiresAt: number; expires: string; version: number },
    now: number,
  ): void {
    if (now >= s.expiresAt)
      throw new ExpiredMetadataError(`${this.o.gun} ${what} v${s.version} expired at ${s.expires}`);
  }

  /**
   * validRootKeys returns the root-role key IDs whose certificates pass the checks (and, for a
   * first root, the pin).
   */
  private validRootKeys(
    root: NotaryRoot,
    now: number,
    checkExpiry: boolean,
    pin: boolean,
    problems: string[] = [],
  ): Set<string> {
    const ok = new Set<string>();
    const role = root.roles.get('root') as NotaryRole;
    const cas = this.cas;
    for (const keyid of role.keyids) {
      const key = root.keys.get(keyid);
      if (key === undefined || (key.keytype !== 'ecdsa-x509' && key.keytype !== 'rsa-x509'))
        continue;
      let chain: X509Certificate[];
      try {
        chain = certificates(key);
      } catch (e) {
        problems.push(`${keyid.slice(0, 12)}…: ${(e as Error).message}`);
        continue;
      }
      const leafProblem = rootCertificateProblem(chain, this.o.gun, now, checkExpiry);
      if (leafProblem !== undefined) {
        problems.push(`${keyid.slice(0, 12)}…: ${leafProblem}`);
        continue;
      }
      if (pin) {
        // A first root: pinned IDs or a pinned CA decide; without pins only TOFU (which the
        // constructor requires to be asked for) lets it through.
        const ids = (this.o.trust.rootKeyIds ?? []).map((k) => k.toLowerCase());
        const pinned = ids.length > 0 || this.o.trust.rootCa !== undefined;
        const byId = ids.includes(keyid) || ids.includes(canonicalKeyId(key) ?? '');
        // RFC 5280 6.1: every issuer valid now, a CA with keyCertSign, within its pathLen
        const caProblem = byId || cas.length === 0 ? undefined : chainProblem(chain, cas, now);
        const byCa = cas.length > 0 && caProblem === undefined;
        if (caProblem !== undefined && !byId) problems.push(`${keyid.slice(0, 12)}…: ${caProblem}`);
        if (pinned ? !(byId || byCa) : !this.o.trust.tofu) continue;
      }
      ok.add(keyid);
    }
    return ok;
  }

  /**
   * verifyRoot checks a root's own threshold over valid certificates (unexpired ones unless
   * `checkExpiry` is false), and its predecessor's.
   */
  private verifyRoot(
    doc: NotaryDocument<NotaryRoot>,
    now: number,
    previous: NotaryRoot | undefined,
    pin: boolean,
    checkExpiry = true,
  ): void {
    const root = doc.signed;
    const problems: string[] = [];
    const valid = this.validRootKeys(root, now, checkExpiry, pin, problems);
    if (valid.size === 0) {
      throw new UnsignedMetadataError(
        `${this.o.gun} root.json v${root.version}: no root certificate is valid for this GUN${pin ? ' and matches the trust pin' : ''}${problems.length > 0 ? ` (${problems.join('; ')})` : ''}`,
      );
    }
    this.threshold(
      `root.json v${root.version}`,
      doc,
      root.roles.get('root') as NotaryRole,
      new NotaryKeyRing(root.keys, this.backend, valid),
    );
    if (previous !== undefined) {
      // TUF 5.3.4: the previous root's threshold too (its certificates without the expiry test)
      const prevValid = this.validRootKeys(previous, now, false, false);
      this.threshold(
        `root.json v${root.version} (by root v${previous.version})`,
        doc,
        previous.roles.get('root') as NotaryRole,
        new NotaryKeyRing(previous.keys, this.backend, prevValid),
      );
    }
  }

  /**
   * trustedCache returns the cached root when the cache was made under the same trust settings;
   * a cache made under other ones (or by a version that kept no record) is dropped whole, its
   * rollback references with it.
   */
  private async trustedCache(): Promise<Uint8Array | undefined> {
    const dir = this.o.cacheDir;
    const cached = await readIfExists(join(dir, 'root.json'));
    const pin = await readIfExists(join(dir, PIN_FILE));
    if (
      cached !== undefined &&
      pin !== undefined &&
      new TextDecoder().decode(pin) === this.pinDigest
    )
      return cached;
    if (cached !== undefined || pin !== undefined) await this.drop(CACHE_FILES);
    return undefined;
  }

  /**
   * anchor finds where the pin enters the chain of roots, for a client with no cached root.
   *
   * The rule: a pin anchors root version k (1 ≤ k ≤ N, N the served root.json) when version k
   * is signed by a threshold of its own root keys that are certificates valid now for this GUN
   * and pinned (by key ID, or chaining to a pinned CA). Trust then only flows forward: the
   * caller accepts N only through k+1 … N, each signed by a threshold of its predecessor's root
   * keys and of its own (TUF 5.3.4), and N must be byte-identical to the served root.json. So
   * a pinned key vouches for nothing but the history its own version handed on: whoever lacks
   * it cannot make version k, and whoever lacks k's successors' keys cannot extend the chain.
   * Versions before k are read to find k and trust nothing. The served root.json is tried
   * first (no walk), then the first of `<v>.root.json`, v = max(1, N - MAX_ROOT_ROTATIONS) …
   * N - 1, that the pin admits. Trust on first use admits the served root.json only.
   */
  private async anchor(
    current: NotaryDocument<NotaryRoot>,
    now: number,
    read: (v: number) => Promise<NotaryDocument<NotaryRoot>>,
  ): Promise<NotaryDocument<NotaryRoot>> {
    const n = current.signed.version;
    try {
      this.verifyRoot(current, now, undefined, true);
      return current;
    } catch (e) {
      if (!(e instanceof RepositoryError) || this.o.trust.tofu) throw e;
      const first = Math.max(1, n - MAX_ROOT_ROTATIONS);
      // the message names every version checked
      const refuse = (last: number, why: string) =>
        new UnsignedMetadataError(
          `${this.o.gun}: the trust pin admits no root version: checked root.json (v${n})${last < first ? '' : ` and ${first}.root.json${last > first ? `…${last}.root.json` : ''}`} (${why}); ${e.message}`,
        );
      // up to N-1 (the walk ends with the served root.json); for N = 1, 1.root.json itself
      const last = Math.max(first, n - 1);
      for (let v = first; v <= last; v++) {
        let doc: NotaryDocument<NotaryRoot>;
        try {
          doc = await read(v);
        } catch (err) {
          // without N.root.json the answer stays the trust refusal, not the 404
          if (
            err instanceof DownloadHttpError &&
            (err.statusCode === 404 || err.statusCode === 403)
          )
            throw refuse(v - 1, `${v}.root.json is not served`);
          throw err;
        }
        try {
          this.verifyRoot(doc, now, undefined, true);
          // n.root.json admitted where root.json was not: the byte check after the walk refuses
          return doc;
        } catch (err) {
          if (!(err instanceof RepositoryError)) throw err;
        }
      }
      throw refuse(last, 'none is signed by pinned root keys valid for this GUN');
    }
  }

  private async updateRoot(now: number): Promise<NotaryDocument<NotaryRoot>> {
    const cachedBytes = await this.trustedCache();
    const currentBytes = await this.get('root.json', MAX_ROOT).catch((e: unknown) => {
      // no trust data at all: the image is not signed with Docker Content Trust (a refusal,
      // not an outage)
      if (e instanceof DownloadHttpError && e.statusCode === 404)
        throw new RepositoryError(
          'UNSIGNED_IMAGE',
          `${this.o.gun}: no trust data on ${this.o.server} (root.json: HTTP 404), not signed with Docker Content Trust`,
          { cause: e },
        );
      throw e;
    });
    const current = this.parse(currentBytes, 'Root', 'root.json');
    // each N.root.json is fetched once per refresh
    const versions = new Map<number, NotaryDocument<NotaryRoot>>();
    const read = async (v: number): Promise<NotaryDocument<NotaryRoot>> => {
      let doc = versions.get(v);
      if (doc === undefined) {
        doc = this.parse(await this.get(`${v}.root.json`, MAX_ROOT), 'Root', `${v}.root.json`);
        if (doc.signed.version !== v)
          throw new BadVersionNumberError(
            `${this.o.gun} ${v}.root.json: version ${doc.signed.version}`,
          );
        versions.set(v, doc);
      }
      return doc;
    };
    // trusted.raw: bytes that verified under the pin, or under a chain of roots from such
    // bytes (never merely the bytes served)
    let trusted: NotaryDocument<NotaryRoot>;
    if (cachedBytes !== undefined) {
      // made under this pin (trustedCache): its own keys still verify it. Its certificates
      // may have expired since (notary checks the trusted root's without the expiry test): it
      // only has to verify the next root; if it stays the final one, it is checked with the
      // expiry test below (TUF 5.3.10)
      trusted = this.parse(cachedBytes, 'Root', 'cached root.json');
      this.verifyRoot(trusted, now, undefined, false, false);
    } else {
      trusted = await this.anchor(current, now, read);
    }
    const target = current.signed.version;
    // TUF 5.3.5: a root older than the trusted one is a rollback
    if (target < trusted.signed.version) {
      throw new BadVersionNumberError(
        `${this.o.gun} root.json: version ${target} is lower than the trusted ${trusted.signed.version}`,
        'ROLLBACK',
      );
    }
    if (target - trusted.signed.version > MAX_ROOT_ROTATIONS) {
      throw new RepositoryError(
        'BAD_VERSION',
        `${this.o.gun} root.json: more than ${MAX_ROOT_ROTATIONS} rotations to follow`,
      );
    }
    for (let v = trusted.signed.version + 1; v <= target; v++) {
      const next = v === target ? current : await read(v);
      // TUF 5.3.4: signed by the previous root's threshold and its own
      this.verifyRoot(next, now, trusted.signed, false);
      trusted = next;
    }
    // TUF 5.3.5: the served root.json has the trusted version now; other bytes of that version
    // (an unverified root beside a genuine N.root.json) are refused, never cached
    if (sha256Hex(trusted.raw) !== sha256Hex(currentBytes)) {
      throw new RepositoryError(
        'BAD_VERSION',
        `${this.o.gun} root.json: version ${target} differs from the trusted copy`,
      );
    }
    // TUF 5.3.10: the final root must not be expired, nor its certificates (the cached root,
    // when no newer one replaced it, was verified without the expiry test)
    if (trusted.raw === cachedBytes) this.verifyRoot(trusted, now, undefined, false);
    this.expired('root.json', trusted.signed, now);
    // TUF 5.3.5: never a root older than the cached one on disk (the refresh holds the cache
    // lock, so this is what trustedCache read; checked again before the write all the same)
    await this.refuseOlderCachedRoot(trusted.signed.version);
    await writeFileAtomic(join(this.o.cacheDir, 'root.json'), trusted.raw);
    await writeFileAtomic(
      join(this.o.cacheDir, PIN_FILE),
      new TextEncoder().encode(this.pinDigest),
    );
    return trusted;
  }

  /** refuseOlderCachedRoot throws when the cache holds a root newer than `version`. */
  private async refuseOlderCachedRoot(version: number): Promise<void> {
    const b = await readIfExists(join(this.o.cacheDir, 'root.json'));
    if (b === undefined) return;
    let onDisk: number | undefined;
    try {
      onDisk = this.parse(b, 'Root', 'cached root.json').signed.version;
    } catch {
      return; // unreadable: replaced by the verified root
    }
    if (onDisk > version) {
      throw new BadVersionNumberError(
        `${this.o.gun} root.json: version ${version} is lower than the cached ${onDisk}`,
        'ROLLBACK',
      );
    }
  }

  /** fetchByHash gets `<role>.<sha256>.json`, checked against its parent's length and hashes. */
  private async fetchByHash<K extends NotaryType>(
    role: string,
    meta: NotaryMeta,
    type: K,
  ): Promise<NotaryDocument<NotaryTypes[K]>> {
    const sha = meta.hashes.sha256 === undefined ? undefined : base64ToBytes(meta.hashes.sha256);
    if (sha?.length !== 32)
      throw new RepositoryError(
        'LENGTH_OR_HASH_MISMATCH',
        `${this.o.gun} ${role}: its parent lists no sha256`,
      );
    const bytes = await this.get(`${role}.${bytesToHex(sha)}.json`, meta.length);
    // TUF 5.5.2 / 5.6.2: the length and every hash the parent lists
    checkLengthAndHashes(bytes, meta, `${this.o.gun} ${role}.json`, this.backend, 'base64');
    return this.parse(bytes, type, `${role}.json`);
  }

  /** drop removes cache files (missing ones are fine). */
  private async drop(names: readonly string[]): Promise<void> {
    try {
      for (const n of names) await rm(join(this.o.cacheDir, n), { force: true });
    } catch (e) {
      throw new CacheError(
        `${this.o.gun}: cannot remove ${names.join(', ')} in ${this.o.cacheDir}`,
        {
          cause: e,
        },
      );
    }
  }

  /**
   * notBelowCached refuses a timestamp or snapshot older than the cached one, which is the
   * rollback floor while the current root's keys for that role still verify it (its expiry
   * does not matter). One they do not verify was signed by keys since rotated away: it is
   * dropped. The targets roles' floors (`versions.json`) stay: their versions come from
   * documents the targets and delegation keys signed, not the snapshot key (TUF 5.3.11 is about
   * timestamp and snapshot).
   */
  private async notBelowCached(
    doc: NotaryDocument<NotaryTimestamp | NotarySnapshot>,
    root: NotaryRoot,
    ring: NotaryKeyRing,
  ): Promise<void> {
    const name = doc.signed.type === 'Timestamp' ? 'timestamp' : 'snapshot';
    const b = await readIfExists(join(this.o.cacheDir, `${name}.json`));
    if (b === undefined) return;
    let floor: number;
    try {
      const cached = this.parse(b, doc.signed.type, `cached ${name}.json`);
      // TUF 5.3.11: fast-forward recovery, a floor set by keys the root no longer trusts goes
      this.threshold(`cached ${name}.json`, cached, root.roles.get(name) as NotaryRole, ring);
      floor = cached.signed.version;
    } catch (e) {
      if (!(e instanceof RepositoryError)) throw e;
      await this.drop([`${name}.json`]);
      return;
    }
    // TUF 5.4.3 / 5.5.5: rollback
    this.rolledBack(name, doc.signed.version, floor);
  }

  /** roleFloors reads the version floor of each targets role (empty when none is recorded). */
  private async roleFloors(): Promise<Map<string, number>> {
    const file = join(this.o.cacheDir, VERSIONS_FILE);
    const b = await readIfExists(file);
    const floors = new Map<string, number>();
    if (b === undefined) return floors;
    let json: unknown;
    try {
      json = parseJson(b, { source: file });
    } catch (e) {
      throw new CacheError(
        `${file}: unreadable (remove it to start over): ${(e as Error).message}`,
      );
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json))
      throw new CacheError(`${file}: expected an object of role versions`);
    for (const [role, v] of Object.entries(json)) {
      if (!Number.isSafeInteger(v) || (v as number) < 1)
        throw new CacheError(`${file}: ${JSON.stringify(role)} has no valid version`);
      floors.set(role, v as number);
    }
    return floors;
  }

  /** rolledBack refuses a verified role older than its floor. */
  private rolledBack(name: string, version: number, floor: number | undefined): void {
    // TUF 5.4.3 / 5.5.5 / 5.6.3 in Notary's dialect: no versions in meta, a floor per role
    if (floor !== undefined && version < floor) {
      throw new BadVersionNumberError(
        `${this.o.gun} ${name}.json: version ${version} is lower than the trusted ${floor}`,
        'ROLLBACK',
      );
    }
  }

  /**
   * refresh reads and verifies the whole collection, holding the cache folder's lock (the one
   * the TUF updater takes, {@link withLock}) from the first cache read to the last write: two
   * refreshes of one cache (processes, or requests of one process) never interleave, so a
   * stalled one cannot write older references over those another has just written.
   */
  async refresh(): Promise<NotaryCollection> {
    return withLock(join(this.o.cacheDir, LOCK_FILE), () => this.refreshLocked());
  }

  private async refreshLocked(): Promise<NotaryCollection> {
    const now = (this.o.now ?? Date.now)();
    const rootDoc = await this.updateRoot(now);
    const root = rootDoc.signed;
    const ring = new NotaryKeyRing(root.keys, this.backend);

    const ts = this.parse(
      await this.get('timestamp.json', MAX_TIMESTAMP),
      'Timestamp',
      'timestamp.json',
    );
    // TUF 5.4.2, 5.4.3, 5.4.4
    this.threshold('timestamp.json', ts, root.roles.get('timestamp') as NotaryRole, ring);
    await this.notBelowCached(ts, root, ring);
    this.expired('timestamp.json', ts.signed, now);

    // TUF 5.5.2–5.5.6 (Notary lists no snapshot version: the hash pins it)
    const sn = await this.fetchByHash('snapshot', ts.signed.snapshot, 'Snapshot');
    this.threshold('snapshot.json', sn, root.roles.get('snapshot') as NotaryRole, ring);
    await this.notBelowCached(sn, root, ring);
    this.expired('snapshot.json', sn.signed, now);
    const floors = await this.roleFloors();
    const rootMeta = sn.signed.meta.get('root');
    if (rootMeta !== undefined) {
      // mix-and-match: the snapshot must name the root we trust
      checkLengthAndHashes(
        rootDoc.raw,
        rootMeta,
        `${this.o.gun} root.json (as snapshot lists it)`,
        this.backend,
        'base64',
      );
    }

    const targetsMeta = sn.signed.meta.get('targets');
    if (targetsMeta === undefined)
      throw new RepositoryError(
        'UNKNOWN_ROLE',
        `${this.o.gun} snapshot.json does not list targets`,
      );
    const targets = await this.fetchByHash('targets', targetsMeta, 'Targets');
    // TUF 5.6.3–5.6.5: an under-signed or expired top-level targets is fatal
    this.threshold('targets.json', targets, root.roles.get('targets') as NotaryRole, ring);
    this.rolledBack('targets', targets.signed.version, floors.get('targets'));
    this.expired('targets.json', targets.signed, now);
    const { roles, skipped } = await this.delegated(targets.signed, sn.signed, floors, now);

    await writeFileAtomic(
      join(this.o.cacheDir, VERSIONS_FILE),
      canonicalize(Object.fromEntries(nextFloors(floors, roles))),
    );
    await writeFileAtomic(join(this.o.cacheDir, 'timestamp.json'), ts.raw);
    await writeFileAtomic(join(this.o.cacheDir, 'snapshot.json'), sn.raw);
    return { gun: this.o.gun, root, timestamp: ts.signed, snapshot: sn.signed, roles, skipped };
  }

  /**
   * delegated reads the delegations below `targets` in pre-order: the verified roles (targets
   * first) and those skipped, with why.
   */
  private async delegated(
    targets: NotaryTargets,
    sn: NotarySnapshot,
    floors: ReadonlyMap<string, number>,
    now: number,
  ): Promise<{ roles: Map<string, NotaryTargets>; skipped: SkippedRole[] }> {
    const roles = new Map<string, NotaryTargets>([['targets', targets]]);
    const skipped: SkippedRole[] = [];
    const stack: Array<{ parent: NotaryTargets; parentName: string; index: number }> = [
      { parent: targets, parentName: 'targets', index: 0 },
    ];
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as (typeof stack)[number];
      const d = top.parent.delegations[top.index++];
      if (d === undefined) {
        stack.pop();
        continue;
      }
      // a role is delegated by its parent path only: targets/a/b by targets/a
      if (posix.dirname(d.name) !== top.parentName || roles.has(d.name)) {
        skipped.push({ role: d.name, reason: `not a child of ${top.parentName}` });
        continue;
      }
      const meta = sn.meta.get(d.name);
      if (meta === undefined && floors.has(d.name)) {
        // published before (a floor is kept) and still delegated: left out, DCT would fall back
        throw new BadVersionNumberError(
          `${this.o.gun} ${d.name}: version ${floors.get(d.name)} was trusted, the snapshot no longer lists it`,
          'ROLLBACK',
        );
      }
      if (meta === undefined) {
        skipped.push({ role: d.name, reason: NEVER_PUBLISHED });
        continue;
      }
      // no silent truncation: a walk cut short could hide targets/releases (DCT would fall back)
      if (roles.size >= MAX_ROLES) {
        throw new RepositoryError(
          'DELEGATION',
          `${this.o.gun}: more than ${MAX_ROLES} targets roles to read (${d.name} and others left)`,
        );
      }
      const doc = await this.fetchByHash(d.name, meta, 'Targets');
      const r = verificationResult(
        doc,
        d,
        new NotaryKeyRing(top.parent.delegationKeys, this.backend),
        base64Signature,
      );
      if (!r.verified) {
        skipped.push({
          role: d.name,
          reason: `signed by ${r.signed.length} of the required ${d.threshold} keys`,
        });
        continue;
      }
      this.rolledBack(d.name, doc.signed.version, floors.get(d.name));
      if (now >= doc.signed.expiresAt) {
        skipped.push({ role: d.name, reason: `expired at ${doc.signed.expires}` });
        continue;
      }
      // only the targets within the role's paths count
      const kept = new Map([...doc.signed.targets].filter(([name]) => withinPaths(name, d.paths)));
      const delegations = doc.signed.delegations.filter((c) =>
        c.paths.every((p) => withinPaths(p, d.paths)),
      );
      const verified: NotaryTargets = { ...doc.signed, targets: kept, delegations };
      roles.set(d.name, verified);
      stack.push({ parent: verified, parentName: d.name, index: 0 });
    }
    return { roles, skipped };
  }
}

/** Why a delegated role the snapshot has never listed was not read. */
const NEVER_PUBLISHED = 'not in snapshot (never published)';

/** The roles DCT consults for a tag, in order. */
const DCT_ROLES = ['targets/releases', 'targets'] as const;

/**
 * unusedDctRole throws when `targets` delegates `targets/releases` but the refresh did not
 * verify it (under-signed, expired, …): DCT would have read the tag there, so an answer from
 * `targets` would be a fall back the signer of releases never chose. A releases role that was
 * delegated but never published (no snapshot entry, and no version of it ever trusted here: a
 * once-trusted one left out is a ROLLBACK in refresh) is what `notary delegation add` leaves
 * before the first `notary publish` to it; there DCT reads `targets`, and so does tufa.
 */
function unusedDctRole(c: NotaryCollection): void {
  const role = DCT_ROLES[0];
  if (c.roles.has(role)) return;
  const delegated = c.roles.get('targets')?.delegations.some((d) => d.name === role) ?? false;
  if (!delegated) return;
  const why = c.skipped.find((s) => s.role === role)?.reason ?? 'not read';
  if (why === NEVER_PUBLISHED) return;
  throw new RepositoryError(
    'DELEGATION',
    `${c.gun} ${role}: delegated by targets but not usable (${why}); no fall back to targets`,
  );
}

/**
 * lookupTag finds a tag the way Docker Content Trust does: in `targets/releases`, else in
 * `targets`; other roles are not consulted. When `targets` delegates `targets/releases` and that
 * role was skipped, it throws (a RepositoryError naming the role) rather than fall back.
 */
export function lookupTag(c: NotaryCollection, tag: string): SignedTag | undefined {
  unusedDctRole(c);
  for (const role of DCT_ROLES) {
    const target = c.roles.get(role)?.targets.get(tag);
    if (target !== undefined) return { role, target, digest: digestOfTarget(target) };
  }
  return undefined;
}

/** signedTags lists every tag DCT would resolve, with the role that wins for it. */
export function signedTags(c: NotaryCollection): SignedTag[] {
  unusedDctRole(c);
  const names = new Set<string>();
  for (const role of DCT_ROLES)
    for (const n of c.roles.get(role)?.targets.keys() ?? []) names.add(n);
  return [...names].sort().map((n) => lookupTag(c, n) as SignedTag);
}
