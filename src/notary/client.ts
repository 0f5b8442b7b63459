/**
 * A Notary v1 client: reads and verifies the trust data of one GUN from a notary-server, the
 * way Docker Content Trust does, with TUF's protections.
 *
 * Rules of this module:
 * - Root: X.509 leaf certificates with CN = GUN, valid at the reference time, trusted through a
 *   pin (certificate or canonical key ID, or a CA). Trust on first use only when asked for.
 *   A cached root is updated through every `N.root.json` in between, each signed by a
 *   threshold of the previous root's keys and of its own.
 * - Timestamp (at most 1 MiB) → snapshot and targets fetched by the SHA-256 their parent lists
 *   (`<role>.<sha256>.json`), length and every hash checked, thresholds, expiry, and versions
 *   never lower than the cached ones.
 * - Delegations `targets/<x>` are read in pre-order; one without a snapshot entry is skipped (it
 *   was never published), an expired or under-signed one is skipped and reported (as Docker
 *   does). A hash mismatch is never skipped: it ends the refresh.
 * - DCT lookup: the tag in `targets/releases`, else in `targets`; `hashes.sha256` required.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { join, posix } from 'node:path';
import { DefaultFetcher, type Fetcher } from '../client/index.js';
import {
  BadVersionNumberError,
  base64ToBytes,
  bytesToHex,
  type CryptoBackend,
  checkLengthAndHashes,
  DownloadHttpError,
  ExpiredMetadataError,
  MisuseError,
  nodeBackend,
  RepositoryError,
  UnsignedMetadataError,
  verificationResult,
} from '../core/index.js';
import {
  type BasicCredentials,
  parseChallenge,
  readIfExists,
  requestToken,
  type Token,
  writeFileAtomic,
} from '../internal/index.js';
import {
  base64Signature,
  canonicalKeyId,
  certificates,
  chainsTo,
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
  readonly credentials?: BasicCredentials;
  readonly now?: () => number;
  readonly backend?: CryptoBackend;
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

function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** digestOfTarget is `sha256:<hex>` of a target's base64 sha256, if any. */
export function digestOfTarget(t: NotaryTarget): string | undefined {
  const b = t.hashes.sha256 === undefined ? undefined : base64ToBytes(t.hashes.sha256);
  return b?.length === 32 ? `sha256:${bytesToHex(b)}` : undefined;
}

/** withinPaths: Notary delegation paths are string prefixes; `""` is everything. */
function withinPaths(name: string, paths: readonly string[]): boolean {
  return paths.some((p) => name.startsWith(p));
}

export class NotaryClient {
  private readonly fetcher: Fetcher;
  private readonly backend: CryptoBackend;
  private token?: Token;

  constructor(private readonly o: NotaryClientOptions) {
    if (!o.trust.tofu && (o.trust.rootKeyIds ?? []).length === 0 && o.trust.rootCa === undefined) {
      throw new MisuseError(
        `${o.gun}: no root trust configured (pin root key IDs or a CA; trust on first use only when asked for)`,
      );
    }
    this.fetcher =
      o.fetcher ?? new DefaultFetcher(o.serverCa === undefined ? {} : { ca: o.serverCa });
    this.backend = o.backend ?? nodeBackend;
  }

  async close(): Promise<void> {
    if (this.o.fetcher === undefined && this.fetcher instanceof DefaultFetcher)
      await this.fetcher.close();
  }

  /** url is where a role file lives: `<server>/v2/<GUN>/_trust/tuf/<name>` (GUN unescaped). */
  url(name: string): string {
    return `${this.o.server.replace(/\/+$/, '')}/v2/${this.o.gun}/_trust/tuf/${name}`;
  }

  /** get fetches a file, answering a bearer challenge once (the registry token flow). */
  private async get(name: string, maxLength: number): Promise<Uint8Array> {
    const url = this.url(name);
    const auth =
      this.token && this.token.expiresAt > Date.now()
        ? { authorization: this.token.header }
        : undefined;
    try {
      return await this.fetcher.fetch(url, maxLength, auth);
    } catch (e) {
      if (!(e instanceof DownloadHttpError) || e.statusCode !== 401 || e.challenge === undefined)
        throw e;
      const ch = parseChallenge(e.challenge);
      if (ch?.scheme !== 'bearer') throw e;
      // the fetcher gives a challenge only from the server's own origin (never a redirect target's)
      this.token = await requestToken(
        ch.params,
        `repository:${this.o.gun}:pull`,
        this.o.credentials,
        { challenger: url },
      );
      return this.fetcher.fetch(url, maxLength, { authorization: this.token.header });
    }
  }

  private parse<K extends NotaryType>(
    raw: Uint8Array,
    type: K,
    source: string,
  ): NotaryDocument<NotaryTypes[K]> {
    return parseNotary(raw, type, `${this.o.gun} ${source}`);
  }

  private threshold(
    what: string,
    doc: NotaryDocument<unknown>,
    role: NotaryRole,
    ring: NotaryKeyRing,
  ): void {
    const r = verificationResult(doc, role, ring, base64Signature);
    if (!r.verified) {
      throw new UnsignedMetadataError(
        `${this.o.gun} ${what}: signed by ${r.signed.length} of the required ${role.threshold} distinct keys`,
      );
    }
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
  ): Set<string> {
    const ok = new Set<string>();
    const role = root.roles.get('root') as NotaryRole;
    const cas =
      this.o.trust.rootCa === undefined
        ? []
        : (
            this.o.trust.rootCa.match(
              /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
            ) ?? []
          ).map((p) => new X509Certificate(p));
    for (const keyid of role.keyids) {
      const key = root.keys.get(keyid);
      if (key === undefined || (key.keytype !== 'ecdsa-x509' && key.keytype !== 'rsa-x509'))
        continue;
      let chain: X509Certificate[];
      try {
        chain = certificates(key);
      } catch {
        continue;
      }
      if (rootCertificateProblem(chain, this.o.gun, now, checkExpiry) !== undefined) continue;
      if (pin) {
        // A first root: pinned IDs or a pinned CA decide; without pins only TOFU (which the
        // constructor requires to be asked for) lets it through.
        const ids = this.o.trust.rootKeyIds ?? [];
        const pinned = ids.length > 0 || cas.length > 0;
        const byId = ids.includes(keyid) || ids.includes(canonicalKeyId(key) ?? '');
        const byCa = cas.length > 0 && chainsTo(chain, cas);
        if (pinned ? !(byId || byCa) : !this.o.trust.tofu) continue;
      }
      ok.add(keyid);
    }
    return ok;
  }

  /** verifyRoot checks a root's own threshold over valid certificates, and its predecessor's. */
  private verifyRoot(
    doc: NotaryDocument<NotaryRoot>,
    now: number,
    previous: NotaryRoot | undefined,
    pin: boolean,
  ): void {
    const root = doc.signed;
    const valid = this.validRootKeys(root, now, true, pin);
    if (valid.size === 0) {
      throw new UnsignedMetadataError(
        `${this.o.gun} root.json v${root.version}: no root certificate is valid for this GUN${pin ? ' and matches the trust pin' : ''}`,
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

  private async updateRoot(
    now: number,
  ): Promise<{ doc: NotaryDocument<NotaryRoot>; bytes: Uint8Array }> {
    const cacheFile = join(this.o.cacheDir, 'root.json');
    const cachedBytes = await readIfExists(cacheFile);
    const currentBytes = await this.get('root.json', MAX_ROOT);
    const current = this.parse(currentBytes, 'Root', 'root.json');
    let trusted: NotaryDocument<NotaryRoot>;
    if (cachedBytes !== undefined) {
      trusted = this.parse(cachedBytes, 'Root', 'cached root.json');
      this.verifyRoot(trusted, now, undefined, false);
    } else {
      try {
        this.verifyRoot(current, now, undefined, true);
        trusted = current;
      } catch (e) {
        if (!(e instanceof RepositoryError) || this.o.trust.tofu) throw e;
        // The pin may name an earlier root key: start from version 1 and walk forward. Without
        // a 1.root.json, the answer stays the trust refusal, not the 404.
        const first = await this.get('1.root.json', MAX_ROOT).catch((err: unknown) => {
          if (
            err instanceof DownloadHttpError &&
            (err.statusCode === 404 || err.statusCode === 403)
          )
            throw e;
          throw err;
        });
        trusted = this.parse(first, 'Root', '1.root.json');
        if (trusted.signed.version !== 1)
          throw new BadVersionNumberError(
            `${this.o.gun} 1.root.json: version ${trusted.signed.version}`,
          );
        this.verifyRoot(trusted, now, undefined, true);
      }
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
    let trustedBytes = cachedBytes ?? (trusted === current ? currentBytes : undefined);
    for (let v = trusted.signed.version + 1; v <= target; v++) {
      const bytes = v === target ? currentBytes : await this.get(`${v}.root.json`, MAX_ROOT);
      const next = this.parse(bytes, 'Root', `${v}.root.json`);
      if (next.signed.version !== v)
        throw new BadVersionNumberError(
          `${this.o.gun} ${v}.root.json: version ${next.signed.version}`,
        );
      // TUF 5.3.4: signed by the previous root's threshold and its own
      this.verifyRoot(next, now, trusted.signed, false);
      trusted = next;
      trustedBytes = bytes;
    }
    if (
      trusted.signed.version === target &&
      sha256Hex(trustedBytes ?? currentBytes) !== sha256Hex(currentBytes)
    ) {
      // same version, other content: serve one or the other, never both
      throw new RepositoryError(
        'BAD_VERSION',
        `${this.o.gun} root.json: version ${target} differs from the trusted copy`,
      );
    }
    // TUF 5.3.10: the final root must not be expired
    this.expired('root.json', trusted.signed, now);
    await writeFileAtomic(cacheFile, currentBytes);
    return { doc: trusted, bytes: currentBytes };
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

  private async cachedVersion(
    name: string,
    type: 'Timestamp' | 'Snapshot',
  ): Promise<number | undefined> {
    const b = await readIfExists(join(this.o.cacheDir, `${name}.json`));
    if (b === undefined) return undefined;
    try {
      return this.parse(b, type, `cached ${name}.json`).signed.version;
    } catch {
      return undefined;
    }
  }

  /** refresh reads and verifies the whole collection. */
  async refresh(): Promise<NotaryCollection> {
    const now = (this.o.now ?? Date.now)();
    const { doc: rootDoc, bytes: rootBytes } = await this.updateRoot(now);
    const root = rootDoc.signed;
    const ring = new NotaryKeyRing(root.keys, this.backend);

    const tsBytes = await this.get('timestamp.json', MAX_TIMESTAMP);
    const ts = this.parse(tsBytes, 'Timestamp', 'timestamp.json');
    // TUF 5.4.2, 5.4.3, 5.4.4
    this.threshold('timestamp.json', ts, root.roles.get('timestamp') as NotaryRole, ring);
    const oldTs = await this.cachedVersion('timestamp', 'Timestamp');
    if (oldTs !== undefined && ts.signed.version < oldTs) {
      throw new BadVersionNumberError(
        `${this.o.gun} timestamp.json: version ${ts.signed.version} is lower than the trusted ${oldTs}`,
        'ROLLBACK',
      );
    }
    this.expired('timestamp.json', ts.signed, now);

    // TUF 5.5.2–5.5.6 (Notary lists no snapshot version: the hash pins it)
    const sn = await this.fetchByHash('snapshot', ts.signed.snapshot, 'Snapshot');
    this.threshold('snapshot.json', sn, root.roles.get('snapshot') as NotaryRole, ring);
    const oldSn = await this.cachedVersion('snapshot', 'Snapshot');
    if (oldSn !== undefined && sn.signed.version < oldSn) {
      throw new BadVersionNumberError(
        `${this.o.gun} snapshot.json: version ${sn.signed.version} is lower than the trusted ${oldSn}`,
        'ROLLBACK',
      );
    }
    this.expired('snapshot.json', sn.signed, now);
    const rootMeta = sn.signed.meta.get('root');
    if (rootMeta !== undefined) {
      // mix-and-match: the snapshot must name the root we trust
      checkLengthAndHashes(
        rootBytes,
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
    this.expired('targets.json', targets.signed, now);

    const roles = new Map<string, NotaryTargets>([['targets', targets.signed]]);
    const skipped: SkippedRole[] = [];
    // pre-order walk of the delegations
    const stack: Array<{ parent: NotaryTargets; parentName: string; index: number }> = [
      { parent: targets.signed, parentName: 'targets', index: 0 },
    ];
    while (stack.length > 0 && roles.size < MAX_ROLES) {
      const top = stack[stack.length - 1] as {
        parent: NotaryTargets;
        parentName: string;
        index: number;
      };
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
      const meta = sn.signed.meta.get(d.name);
      if (meta === undefined) {
        skipped.push({ role: d.name, reason: 'not in snapshot (never published)' });
        continue;
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

    await writeFileAtomic(join(this.o.cacheDir, 'timestamp.json'), tsBytes);
    await writeFileAtomic(join(this.o.cacheDir, 'snapshot.json'), sn.raw);
    return { gun: this.o.gun, root, timestamp: ts.signed, snapshot: sn.signed, roles, skipped };
  }
}

/**
 * lookupTag finds a tag the way Docker Content Trust does: in `targets/releases`, else in
 * `targets`; other roles are not consulted.
 */
export function lookupTag(c: NotaryCollection, tag: string): SignedTag | undefined {
  for (const role of ['targets/releases', 'targets']) {
    const target = c.roles.get(role)?.targets.get(tag);
    if (target !== undefined) return { role, target, digest: digestOfTarget(target) };
  }
  return undefined;
}

/** signedTags lists every tag DCT would resolve, with the role that wins for it. */
export function signedTags(c: NotaryCollection): SignedTag[] {
  const names = new Set<string>();
  for (const role of ['targets/releases', 'targets'])
    for (const n of c.roles.get(role)?.targets.keys() ?? []) names.add(n);
  return [...names].sort().map((n) => lookupTag(c, n) as SignedTag);
}
