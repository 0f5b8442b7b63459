/**
 * Builds signed TUF metadata in memory for tests, with node:crypto directly (independent of the
 * project's own signing code). Each role's `signed` object is plain JSON the test may mutate
 * before asking for its bytes, so any malformed or malicious variant can be produced.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { canonicalize } from '../../src/core/canonical-json.js';
import type { JsonObject, JsonValue } from '../../src/core/json.js';

/** A fixed reference time for tests: 2026-01-01T00:00:00Z. */
export const NOW = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

/** expiresIn writes a TUF expiry `days` after NOW (negative: in the past). */
export function expiresIn(days: number): string {
  return `${new Date(NOW + days * DAY).toISOString().slice(0, 19)}Z`;
}

export type TestKeyType = 'ed25519' | 'ecdsa' | 'rsa';

/** A key pair with its TUF public key form and key ID. */
export class TestKey {
  readonly privateKey: KeyObject;
  readonly json: JsonObject;
  readonly keyid: string;

  constructor(readonly type: TestKeyType = 'ed25519') {
    if (type === 'ed25519') {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      this.privateKey = privateKey;
      const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
      this.json = {
        keytype: 'ed25519',
        scheme: 'ed25519',
        keyval: { public: raw.toString('hex') },
      };
    } else if (type === 'ecdsa') {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      this.privateKey = privateKey;
      const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
      this.json = { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: pem } };
    } else {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      this.privateKey = privateKey;
      const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
      this.json = { keytype: 'rsa', scheme: 'rsassa-pss-sha256', keyval: { public: pem } };
    }
    this.keyid = createHash('sha256').update(canonicalize(this.json)).digest('hex');
  }

  /** signHex signs canonical bytes and returns the signature as hex. */
  signHex(data: Uint8Array): string {
    if (this.type === 'ed25519') return sign(null, data, this.privateKey).toString('hex');
    if (this.type === 'ecdsa') return sign('sha256', data, this.privateKey).toString('hex');
    return sign('sha256', data, { key: this.privateKey, padding: 6, saltLength: 32 }).toString(
      'hex',
    );
  }
}

/** envelope signs `signed` with each key and returns the document bytes (pretty-printed). */
export function envelope(
  signed: JsonObject,
  keys: readonly TestKey[],
  keyids?: readonly string[],
): Uint8Array {
  const data = canonicalize(signed);
  const signatures = keys.map((k, i) => ({ keyid: keyids?.[i] ?? k.keyid, sig: k.signHex(data) }));
  return new TextEncoder().encode(JSON.stringify({ signatures, signed }, null, 1));
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** keysObject writes keys as a `keys` object. */
export function keysObject(keys: readonly TestKey[]): JsonObject {
  const out: JsonObject = {};
  for (const k of keys) out[k.keyid] = k.json;
  return out;
}

function roleEntry(keys: readonly TestKey[], threshold: number): JsonObject {
  return { keyids: keys.map((k) => k.keyid), threshold };
}

/** A delegated targets role held by {@link SimRepo}. */
export interface SimRole {
  signed: JsonObject;
  keys: TestKey[];
}

/**
 * A whole repository in memory: top-level roles, delegated roles, root history. Call the
 * `*Bytes` methods to get signed documents; `snapshot`/`timestamp` meta are filled from the
 * current targets roles when `refreshMeta()` runs.
 */
export class SimRepo {
  rootKeys: TestKey[] = [new TestKey()];
  timestampKeys: TestKey[] = [new TestKey()];
  snapshotKeys: TestKey[] = [new TestKey()];
  targetsKeys: TestKey[] = [new TestKey()];
  root: JsonObject;
  timestamp: JsonObject;
  snapshot: JsonObject;
  targets: JsonObject;
  readonly delegated = new Map<string, SimRole>();
  /** Signed bytes of each root version, index = version - 1. */
  readonly rootHistory: Uint8Array[] = [];
  /** Include lengths and hashes in snapshot/timestamp meta. */
  withHashes = true;

  constructor() {
    this.root = {
      _type: 'root',
      spec_version: '1.0.34',
      version: 1,
      expires: expiresIn(365),
      consistent_snapshot: true,
      keys: {},
      roles: {},
    };
    this.setRootKeys();
    this.targets = {
      _type: 'targets',
      spec_version: '1.0.34',
      version: 1,
      expires: expiresIn(90),
      targets: {},
    };
    this.snapshot = {
      _type: 'snapshot',
      spec_version: '1.0.34',
      version: 1,
      expires: expiresIn(7),
      meta: {},
    };
    this.timestamp = {
      _type: 'timestamp',
      spec_version: '1.0.34',
      version: 1,
      expires: expiresIn(1),
      meta: {},
    };
    this.rootHistory.push(envelope(this.root, this.rootKeys));
    this.refreshMeta();
  }

  /** setRootKeys rewrites root's keys and roles from the key lists (thresholds kept or 1). */
  setRootKeys(
    thresholds: Partial<Record<'root' | 'timestamp' | 'snapshot' | 'targets', number>> = {},
  ): void {
    const all = [
      ...this.rootKeys,
      ...this.timestampKeys,
      ...this.snapshotKeys,
      ...this.targetsKeys,
    ];
    this.root.keys = keysObject(all);
    this.root.roles = {
      root: roleEntry(this.rootKeys, thresholds.root ?? 1),
      timestamp: roleEntry(this.timestampKeys, thresholds.timestamp ?? 1),
      snapshot: roleEntry(this.snapshotKeys, thresholds.snapshot ?? 1),
      targets: roleEntry(this.targetsKeys, thresholds.targets ?? 1),
    };
  }

  /** addTarget lists a target in a role with its real length and hashes. */
  addTarget(path: string, content: Uint8Array, role = 'targets'): void {
    const signed = role === 'targets' ? this.targets : (this.delegated.get(role) as SimRole).signed;
    (signed.targets as JsonObject)[path] = {
      length: content.length,
      hashes: { sha256: sha256Hex(content) },
    };
  }

  /**
   * delegate adds a delegated role to `from` (`targets` or another delegated role), with its
   * own new key, and an empty targets list.
   */
  delegate(
    from: string,
    name: string,
    spec: {
      paths?: string[];
      path_hash_prefixes?: string[];
      terminating?: boolean;
      threshold?: number;
      keys?: TestKey[];
    } = {},
  ): SimRole {
    const parent = from === 'targets' ? this.targets : (this.delegated.get(from) as SimRole).signed;
    const keys = spec.keys ?? [new TestKey()];
    parent.delegations ??= { keys: {}, roles: [] };
    const d = parent.delegations as JsonObject;
    Object.assign(d.keys as JsonObject, keysObject(keys));
    const role: JsonObject = {
      name,
      keyids: keys.map((k) => k.keyid),
      threshold: spec.threshold ?? 1,
      terminating: spec.terminating ?? false,
    };
    if (spec.path_hash_prefixes !== undefined) role.path_hash_prefixes = spec.path_hash_prefixes;
    else role.paths = spec.paths ?? ['*'];
    (d.roles as JsonValue[]).push(role);
    const sim: SimRole = {
      signed: {
        _type: 'targets',
        spec_version: '1.0.34',
        version: 1,
        expires: expiresIn(90),
        targets: {},
      },
      keys,
    };
    this.delegated.set(name, sim);
    return sim;
  }

  /** targetsBytes signs `targets` or a delegated role with its keys. */
  targetsBytes(role = 'targets'): Uint8Array {
    if (role === 'targets') return envelope(this.targets, this.targetsKeys);
    const sim = this.delegated.get(role);
    if (sim === undefined) throw new Error(`no role ${role}`);
    return envelope(sim.signed, sim.keys);
  }

  snapshotBytes(): Uint8Array {
    return envelope(this.snapshot, this.snapshotKeys);
  }

  timestampBytes(): Uint8Array {
    return envelope(this.timestamp, this.timestampKeys);
  }

  rootBytes(version = this.rootHistory.length): Uint8Array {
    return this.rootHistory[version - 1] as Uint8Array;
  }

  /**
   * publishRoot bumps root's version and signs it with the previous root keys and the current
   * ones (unless `signers` says otherwise).
   */
  publishRoot(previousKeys: TestKey[], signers?: TestKey[]): Uint8Array {
    this.root.version = (this.root.version as number) + 1;
    const keys = signers ?? [...new Set([...previousKeys, ...this.rootKeys])];
    const bytes = envelope(this.root, keys);
    this.rootHistory.push(bytes);
    return bytes;
  }

  /** refreshMeta rewrites snapshot meta from the current targets roles, and timestamp from snapshot. */
  refreshMeta(): void {
    const meta: JsonObject = {};
    const entry = (version: number, bytes: Uint8Array): JsonObject =>
      this.withHashes
        ? { version, length: bytes.length, hashes: { sha256: sha256Hex(bytes) } }
        : { version };
    meta['targets.json'] = entry(this.targets.version as number, this.targetsBytes());
    for (const [name, sim] of this.delegated)
      meta[`${name}.json`] = entry(sim.signed.version as number, this.targetsBytes(name));
    this.snapshot.meta = meta;
    this.timestamp.meta = {
      'snapshot.json': entry(this.snapshot.version as number, this.snapshotBytes()),
    };
  }

  /** bump increments a role's version. */
  bump(role: string): void {
    const signed =
      role === 'root'
        ? this.root
        : role === 'timestamp'
          ? this.timestamp
          : role === 'snapshot'
            ? this.snapshot
            : role === 'targets'
              ? this.targets
              : (this.delegated.get(role) as SimRole).signed;
    signed.version = (signed.version as number) + 1;
  }
}
