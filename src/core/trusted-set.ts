/**
 * TrustedMetadataSet: the client workflow of TUF 5.3–5.6 as a state machine over bytes.
 *
 * Rules of this module:
 * - It does no I/O and reads no clock: the caller passes bytes in and a fixed reference time
 *   (TUF 5.1), and gets verified models back or a typed error.
 * - Order is fixed: root (any number of updates) → timestamp → snapshot → targets → delegated
 *   targets. A step out of order is a {@link MisuseError}; there is no going back.
 * - Timestamp and snapshot may be loaded as *intermediate* metadata: an expired or mismatching
 *   copy (e.g. from the local cache) still becomes the reference for the rollback checks of the
 *   next copy, but the error is raised so the caller knows it is not final.
 * - Delegated targets are verified against the delegator on the current search path. A role
 *   reached through two delegators is verified once per delegator (the "diamond" case), never
 *   reused from one path on another.
 */

import type { CryptoBackend } from './crypto/backend.js';
import {
  BadVersionNumberError,
  EqualVersionNumberError,
  ExpiredMetadataError,
  MisuseError,
  RepositoryError,
} from './errors.js';
import type { KeyRing } from './keys.js';
import type { RoleType, Signed } from './metadata/base.js';
import { Metadata, type SignedTypes } from './metadata/envelope.js';
import { checkLengthAndHashes, type HashEncoding } from './metadata/files.js';
import type { RoleKeys } from './metadata/role.js';
import type { Root } from './metadata/root.js';
import type { Snapshot } from './metadata/snapshot.js';
import type { Targets } from './metadata/targets.js';
import type { Timestamp } from './metadata/timestamp.js';
import { hexSignature, type SignatureDecoder, verifyThreshold } from './verify.js';

/** Parses bytes of a role into metadata (the TUF dialect by default; Notary plugs its own). */
export type MetadataParser = <K extends RoleType>(
  bytes: Uint8Array,
  type: K,
  source: string,
) => Metadata<SignedTypes[K]>;

/** Options of {@link TrustedMetadataSet}. */
export interface TrustedSetOptions {
  /** Crypto backend: `nodeBackend` (`tufa/core/node`) or `portableBackend` (`tufa/core/portable`). */
  backend: CryptoBackend;
  /** Metadata parser (default: TUF 1.0 JSON). */
  parse?: MetadataParser;
  /** How signature values are decoded (default: hex). */
  decodeSignature?: SignatureDecoder;
  /** How `hashes` values are written (default: hex). */
  hashEncoding?: HashEncoding;
  /**
   * Accept expired metadata (default false). Only for reading an offline cache on purpose, e.g.
   * forensics: it turns off freeze-attack protection.
   */
  allowExpiredMetadata?: boolean;
}

const defaultParse: MetadataParser = (bytes, type, source) =>
  Metadata.fromBytes(bytes, type, source);

/** The trusted metadata of one refresh. */
export class TrustedMetadataSet {
  readonly referenceTime: number;
  private readonly backend: CryptoBackend;
  private readonly parse: MetadataParser;
  private readonly decode: SignatureDecoder;
  private readonly hashEncoding: HashEncoding;
  private readonly allowExpired: boolean;
  private rootMd: Metadata<Root>;
  private timestampMd?: Metadata<Timestamp>;
  private snapshotMd?: Metadata<Snapshot>;
  private targetsMd?: Metadata<Targets>;
  /** delegator → role name → the role verified against that delegator. */
  private readonly delegated = new Map<Metadata<Targets>, Map<string, Metadata<Targets>>>();
  /** role name → the role as last verified (for lookups by name). */
  private readonly byName = new Map<string, Metadata<Targets>>();
  /** Every targets role this set has verified. */
  private readonly verifiedTargets = new WeakSet<Metadata<Targets>>();

  /**
   * Loads the trusted root (TUF 5.2). It must be signed by its own threshold: a local root that
   * does not verify against itself is never used, not even to check its successor.
   * @param rootBytes - the trusted root, as stored
   * @param referenceTime - the fixed update start time, epoch milliseconds (TUF 5.1)
   */
  constructor(rootBytes: Uint8Array, referenceTime: number, options: TrustedSetOptions) {
    if (!Number.isFinite(referenceTime)) {
      throw new TypeError(`referenceTime: expected epoch milliseconds, got ${referenceTime}`);
    }
    this.referenceTime = referenceTime;
    this.backend = options.backend;
    this.parse = options.parse ?? defaultParse;
    this.decode = options.decodeSignature ?? hexSignature;
    this.hashEncoding = options.hashEncoding ?? 'hex';
    this.allowExpired = options.allowExpiredMetadata === true;
    const root = this.parse(rootBytes, 'root', 'trusted root.json');
    // TUF 5.2: the trusted root must verify against its own keys and threshold
    this.verify(
      'trusted root.json',
      root,
      root.signed.role('root'),
      root.signed.keyRing(this.backend),
    );
    this.rootMd = root;
  }

  get root(): Metadata<Root> {
    return this.rootMd;
  }
  get timestamp(): Metadata<Timestamp> | undefined {
    return this.timestampMd;
  }
  get snapshot(): Metadata<Snapshot> | undefined {
    return this.snapshotMd;
  }
  get targets(): Metadata<Targets> | undefined {
    return this.targetsMd;
  }

  /** delegatedTargets returns a delegated role as last verified, if any. */
  delegatedTargets(role: string): Metadata<Targets> | undefined {
    return role === 'targets' ? this.targetsMd : this.byName.get(role);
  }

  private expired(signed: Signed): boolean {
    return !this.allowExpired && signed.isExpired(this.referenceTime);
  }

  private verify(what: string, md: Metadata, role: RoleKeys, ring: KeyRing): void {
    verifyThreshold(what, md, role, ring, this.decode);
  }

  /**
   * updateRoot verifies and trusts root version N+1 (TUF 5.3.4–5.3.7).
   * @throws {@link UnsignedMetadataError} when either threshold is not met
   * @throws {@link BadVersionNumberError} unless the version is exactly N+1
   */
  updateRoot(bytes: Uint8Array): Metadata<Root> {
    if (this.timestampMd !== undefined) {
      throw new MisuseError('cannot update root after timestamp has been loaded');
    }
    const trusted = this.rootMd.signed;
    const next = trusted.version + 1;
    const md = this.parse(bytes, 'root', `${next}.root.json`);
    // TUF 5.3.4: signed by a threshold of the trusted root's root keys ...
    this.verify(
      `${next}.root.json (by trusted root v${trusted.version})`,
      md,
      trusted.role('root'),
      trusted.keyRing(this.backend),
    );
    // TUF 5.3.5: rollback: the new version is exactly N+1
    if (md.signed.version !== next) {
      throw new BadVersionNumberError(
        `${next}.root.json: expected version ${next}, got ${md.signed.version}`,
        md.signed.version < next ? 'ROLLBACK' : 'BAD_VERSION',
      );
    }
    // TUF 5.3.4: ... and by a threshold of its own root keys
    this.verify(
      `${next}.root.json (by itself)`,
      md,
      md.signed.role('root'),
      md.signed.keyRing(this.backend),
    );
    // TUF 5.3.6: expiry of an intermediate root does not matter yet (checked in 5.3.10)
    // TUF 5.3.7: set the trusted root
    this.rootMd = md;
    return md;
  }

  /**
   * updateTimestamp verifies and trusts a timestamp (TUF 5.3.10, 5.4.2–5.4.4).
   * An expired timestamp is kept as the rollback reference but raises ExpiredMetadataError.
   * @throws {@link EqualVersionNumberError} when the version equals the trusted one (not an
   *   attack: keep the trusted copy)
   */
  updateTimestamp(bytes: Uint8Array): Metadata<Timestamp> {
    if (this.snapshotMd !== undefined) {
      throw new MisuseError('cannot update timestamp after snapshot has been loaded');
    }
    const root = this.rootMd.signed;
    // TUF 5.3.10: freeze attack: the final root must not be expired
    if (this.expired(root)) {
      throw new ExpiredMetadataError(`root.json v${root.version} expired at ${root.expires}`);
    }
    const md = this.parse(bytes, 'timestamp', 'timestamp.json');
    // TUF 5.4.2: signed by a threshold of the timestamp keys in root
    this.verify('timestamp.json', md, root.role('timestamp'), root.keyRing(this.backend));
    const old = this.timestampMd?.signed;
    if (old !== undefined) {
      // TUF 5.4.3.1: rollback: the version must not decrease; an equal version changes nothing
      if (md.signed.version < old.version) {
        throw new BadVersionNumberError(
          `timestamp.json: version ${md.signed.version} is lower than the trusted version ${old.version}`,
          'ROLLBACK',
        );
      }
      if (md.signed.version === old.version) {
        throw new EqualVersionNumberError(
          `timestamp.json: version ${md.signed.version} is already trusted`,
        );
      }
      // TUF 5.4.3.2: rollback: the snapshot version it names must not decrease
      if (md.signed.snapshotMeta.version < old.snapshotMeta.version) {
        throw new BadVersionNumberError(
          `timestamp.json: snapshot version ${md.signed.snapshotMeta.version} is lower than the trusted ${old.snapshotMeta.version}`,
          'ROLLBACK',
        );
      }
    }
    // Trusted as intermediate metadata even if expired: it is the reference for rollback checks.
    this.timestampMd = md;
    this.checkFinalTimestamp();
    return md;
  }

  private checkFinalTimestamp(): Timestamp {
    const ts = this.timestampMd?.signed;
    if (ts === undefined) throw new MisuseError('timestamp must be loaded first');
    // TUF 5.4.4: freeze attack: the timestamp must not be expired
    if (this.expired(ts)) {
      throw new ExpiredMetadataError(`timestamp.json v${ts.version} expired at ${ts.expires}`);
    }
    return ts;
  }

  /**
   * updateSnapshot verifies and trusts a snapshot (TUF 5.5.2–5.5.6).
   * @param trusted - the bytes come from the local cache: skip the length/hash check against
   *   timestamp (a cached snapshot may be older than the new timestamp), but verify all else
   */
  updateSnapshot(bytes: Uint8Array, trusted = false): Metadata<Snapshot> {
    if (this.timestampMd === undefined)
      throw new MisuseError('cannot load snapshot before timestamp');
    if (this.targetsMd !== undefined)
      throw new MisuseError('cannot update snapshot after targets has been loaded');
    const ts = this.checkFinalTimestamp();
    const meta = ts.snapshotMeta;
    if (!trusted) {
      // TUF 5.5.2: length and hashes as the timestamp lists them (mix-and-match)
      checkLengthAndHashes(bytes, meta, 'snapshot.json', this.backend, this.hashEncoding);
    }
    const md = this.parse(bytes, 'snapshot', 'snapshot.json');
    const root = this.rootMd.signed;
    // TUF 5.5.3: signed by a threshold of the snapshot keys in root
    this.verify('snapshot.json', md, root.role('snapshot'), root.keyRing(this.backend));
    const old = this.snapshotMd?.signed;
    if (old !== undefined) {
      // TUF 5.5.5: rollback: every role listed before is still listed, at no lower version
      for (const [name, oldMeta] of old.meta) {
        const now = md.signed.meta.get(name);
        if (now === undefined) {
          throw new RepositoryError(
            'ROLLBACK',
            `snapshot.json: ${name} was listed by the trusted snapshot and is missing`,
          );
        }
        if (now.version < oldMeta.version) {
          throw new BadVersionNumberError(
            `snapshot.json: ${name} version ${now.version} is lower than the trusted ${oldMeta.version}`,
            'ROLLBACK',
          );
        }
      }
    }
    // Trusted as intermediate metadata: the reference for the rollback checks of the next one.
    this.snapshotMd = md;
    this.checkFinalSnapshot();
    return md;
  }

  private checkFinalSnapshot(): Snapshot {
    const sn = this.snapshotMd?.signed;
    if (sn === undefined) throw new MisuseError('snapshot must be loaded first');
    const ts = this.checkFinalTimestamp();
    // TUF 5.5.6: freeze attack: the snapshot must not be expired
    if (this.expired(sn)) {
      throw new ExpiredMetadataError(`snapshot.json v${sn.version} expired at ${sn.expires}`);
    }
    // TUF 5.5.4: the version is the one the timestamp lists
    if (sn.version !== ts.snapshotMeta.version) {
      throw new BadVersionNumberError(
        `snapshot.json: expected version ${ts.snapshotMeta.version} (from timestamp), got ${sn.version}`,
      );
    }
    return sn;
  }

  /** updateTargets verifies and trusts the top-level targets (TUF 5.6). */
  updateTargets(bytes: Uint8Array): Metadata<Targets> {
    return this.updateDelegatedTargets(bytes, 'targets', 'root');
  }

  /**
   * updateDelegatedTargets verifies a targets role against its delegator (TUF 5.6.2–5.6.5).
   * @param role - `targets` or a delegated role name
   * @param delegator - `root` for `targets`; otherwise the delegating role's verified metadata
   *   (as the delegation walk hands it over) or its name (its last verified copy)
   */
  updateDelegatedTargets(
    bytes: Uint8Array,
    role: string,
    delegator: 'root' | string | Metadata<Targets>,
  ): Metadata<Targets> {
    if (this.snapshotMd === undefined) throw new MisuseError('cannot load targets before snapshot');
    const sn = this.checkFinalSnapshot();
    let keys: RoleKeys | undefined;
    let ring: KeyRing;
    let parent: Metadata<Targets> | undefined;
    if (delegator === 'root') {
      if (role !== 'targets')
        throw new MisuseError(`only "targets" is delegated by root, not ${JSON.stringify(role)}`);
      keys = this.rootMd.signed.role('targets');
      ring = this.rootMd.signed.keyRing(this.backend);
    } else {
      parent = typeof delegator === 'string' ? this.delegatedTargets(delegator) : delegator;
      if (parent === undefined || !this.verifiedTargets.has(parent)) {
        throw new MisuseError(`cannot load ${role}: its delegator is not trusted yet`);
      }
      const delegations = parent.signed.delegations;
      keys = delegations?.roleKeys(role);
      if (delegations === undefined || keys === undefined) {
        throw new RepositoryError(
          'DELEGATION',
          `${role}: not delegated by the role that leads to it`,
        );
      }
      ring = delegations.keyRing(this.backend);
    }
    const file = `${role}.json`;
    const meta = sn.roleMeta(role);
    if (meta === undefined) {
      throw new RepositoryError('UNKNOWN_ROLE', `snapshot.json does not list ${file}`);
    }
    // TUF 5.6.2: length and hashes as the snapshot lists them (mix-and-match)
    checkLengthAndHashes(bytes, meta, file, this.backend, this.hashEncoding);
    const md = this.parse(bytes, 'targets', file);
    // TUF 5.6.3: signed by a threshold of the keys the delegator names for this role
    this.verify(file, md, keys, ring);
    // TUF 5.6.4: the version is the one the snapshot lists
    if (md.signed.version !== meta.version) {
      throw new BadVersionNumberError(
        `${file}: expected version ${meta.version} (from snapshot), got ${md.signed.version}`,
      );
    }
    // TUF 5.6.5: freeze attack: not expired
    if (this.expired(md.signed)) {
      throw new ExpiredMetadataError(
        `${file} v${md.signed.version} expired at ${md.signed.expires}`,
      );
    }
    if (parent === undefined) {
      this.targetsMd = md;
    } else {
      let children = this.delegated.get(parent);
      if (children === undefined) {
        children = new Map();
        this.delegated.set(parent, children);
      }
      children.set(role, md);
      this.byName.set(role, md);
    }
    this.verifiedTargets.add(md);
    return md;
  }

  /**
   * validUntil is the earliest expiry (epoch ms) of everything this set trusts: a decision made
   * from it must not be reused past that time.
   */
  validUntil(): number {
    let t = this.rootMd.signed.expiresAt;
    for (const md of [this.timestampMd, this.snapshotMd, this.targetsMd, ...this.byName.values()]) {
      if (md !== undefined) t = Math.min(t, md.signed.expiresAt);
    }
    for (const children of this.delegated.values()) {
      for (const md of children.values()) t = Math.min(t, md.signed.expiresAt);
    }
    return t;
  }

  /** verifiedChild returns `role` as verified against this very delegator, if it was. */
  verifiedChild(delegator: Metadata<Targets>, role: string): Metadata<Targets> | undefined {
    return this.delegated.get(delegator)?.get(role);
  }
}
