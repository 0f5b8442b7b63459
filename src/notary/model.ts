/**
 * The Notary v1 dialect of TUF metadata (see shared NOTARY-FORMAT.md): capitalised `_type`, no
 * `spec_version`, base64 keys, hashes and signatures, a `method` per signature, RFC 3339
 * expiries with nanoseconds and offsets, `meta` keyed by role name without versions, and
 * delegations named `targets/<x>` with prefix paths.
 *
 * Parsing is as strict as for TUF 1.0 (core's strict JSON, every field type-checked), and the
 * signed bytes are the canonical JSON of the parsed `signed` object, which is what notary
 * itself verifies (the served bytes may be HTML-escaped).
 */
// the dialect's parser reads fields as the core's parser does (not public API)

import {
  base64ToBytes,
  canonicalize,
  FormatError,
  type JsonObject,
  type JsonValue,
  parseExpires,
  parseHashes,
  parseJson,
  type Signature,
} from '../core/index.js';
import { describe, Fields } from '../core/metadata/fields.js';

export type NotaryType = 'Root' | 'Targets' | 'Snapshot' | 'Timestamp';

/** A key as Notary lists it. */
export interface NotaryKey {
  readonly keyid: string;
  readonly keytype: string;
  /** `keyval.public`, base64. */
  readonly public: string;
}

/** A `meta` entry: length and base64 hashes (no version in Notary). */
export interface NotaryMeta {
  readonly length: number;
  readonly hashes: Record<string, string>;
}

export interface NotaryRole {
  readonly keyids: readonly string[];
  readonly threshold: number;
}

export interface NotaryDelegation extends NotaryRole {
  readonly name: string;
  readonly paths: readonly string[];
}

export interface NotaryTarget {
  readonly name: string;
  readonly length: number;
  readonly hashes: Record<string, string>;
  readonly custom?: JsonValue;
}

interface Header {
  readonly type: NotaryType;
  readonly version: number;
  readonly expires: string;
  readonly expiresAt: number;
}

export interface NotaryRoot extends Header {
  readonly type: 'Root';
  readonly keys: ReadonlyMap<string, NotaryKey>;
  readonly roles: ReadonlyMap<string, NotaryRole>;
}
export interface NotaryTimestamp extends Header {
  readonly type: 'Timestamp';
  readonly snapshot: NotaryMeta;
}
export interface NotarySnapshot extends Header {
  readonly type: 'Snapshot';
  /** role name (`root`, `targets`, `targets/releases`) → entry */
  readonly meta: ReadonlyMap<string, NotaryMeta>;
}
export interface NotaryTargets extends Header {
  readonly type: 'Targets';
  readonly targets: ReadonlyMap<string, NotaryTarget>;
  readonly delegationKeys: ReadonlyMap<string, NotaryKey>;
  readonly delegations: readonly NotaryDelegation[];
}

export interface NotaryTypes {
  Root: NotaryRoot;
  Timestamp: NotaryTimestamp;
  Snapshot: NotarySnapshot;
  Targets: NotaryTargets;
}

/** A parsed, not yet verified, Notary document. */
export interface NotaryDocument<T> {
  readonly signed: T;
  readonly signatures: ReadonlyMap<string, Signature & { method: string }>;
  /** The canonical JSON of `signed` as parsed: what the signatures cover. */
  readonly signedBytes: Uint8Array;
  /** The bytes as served. */
  readonly raw: Uint8Array;
}

function header(f: Fields, type: NotaryType): Header {
  const t = f.string('_type');
  if (t !== type) {
    throw new FormatError(
      `${f.where}._type: expected ${JSON.stringify(type)}, got ${JSON.stringify(t)}`,
      { code: 'WRONG_TYPE' },
    );
  }
  const version = f.int('version', 1);
  const expires = f.string('expires');
  return { type, version, expires, expiresAt: parseExpires(expires, `${f.where}.expires`) };
}

function base64Field(f: Fields, name: string): string {
  const v = f.string(name);
  if (base64ToBytes(v) === undefined) throw new FormatError(`${f.where}.${name}: expected base64`);
  return v;
}

function parseKeys(obj: JsonObject, where: string): Map<string, NotaryKey> {
  const out = new Map<string, NotaryKey>();
  for (const keyid of Object.keys(obj)) {
    const f = Fields.of(obj[keyid], `${where}.${keyid}`);
    const keytype = f.string('keytype');
    const kv = Fields.of(f.object('keyval'), `${where}.${keyid}.keyval`);
    out.set(keyid, { keyid, keytype, public: base64Field(kv, 'public') });
  }
  return out;
}

function parseMeta(v: JsonValue | undefined, where: string): NotaryMeta {
  const f = Fields.of(v, where);
  return {
    length: f.int('length', 1),
    hashes: parseHashes(f.object('hashes'), `${where}.hashes`, 'base64'),
  };
}

function parseRole(v: JsonValue | undefined, where: string): NotaryRole {
  const f = Fields.of(v, where);
  return { keyids: f.stringArray('keyids', true), threshold: f.int('threshold', 1) };
}

/** Delegated role names: `targets/<x>[/<y>…]`, lowercase letters, digits, `-_/`, < 256 chars. */
export const DELEGATION_NAME = /^targets(\/[-a-z0-9_]+)+$/;

const PARSERS: { [K in NotaryType]: (f: Fields) => NotaryTypes[K] } = {
  Root: (f) => {
    const h = header(f, 'Root');
    const keys = parseKeys(f.object('keys'), `${f.where}.keys`);
    const rolesObj = f.object('roles');
    const roles = new Map<string, NotaryRole>();
    for (const name of ['root', 'targets', 'snapshot', 'timestamp']) {
      if (!Object.hasOwn(rolesObj, name))
        throw new FormatError(`${f.where}.roles: role ${name} is missing`);
      roles.set(name, parseRole(rolesObj[name], `${f.where}.roles.${name}`));
    }
    return { ...h, type: 'Root', keys, roles };
  },
  Timestamp: (f) => {
    const h = header(f, 'Timestamp');
    const meta = f.object('meta');
    if (!Object.hasOwn(meta, 'snapshot'))
      throw new FormatError(`${f.where}.meta: no snapshot entry`);
    return {
      ...h,
      type: 'Timestamp',
      snapshot: parseMeta(meta.snapshot, `${f.where}.meta.snapshot`),
    };
  },
  Snapshot: (f) => {
    const h = header(f, 'Snapshot');
    const obj = f.object('meta');
    const meta = new Map<string, NotaryMeta>();
    for (const name of Object.keys(obj))
      meta.set(name, parseMeta(obj[name], `${f.where}.meta.${name}`));
    return { ...h, type: 'Snapshot', meta };
  },
  Targets: (f) => {
    const h = header(f, 'Targets');
    const obj = f.object('targets');
    const targets = new Map<string, NotaryTarget>();
    for (const name of Object.keys(obj)) {
      const tf = Fields.of(obj[name], `${f.where}.targets[${JSON.stringify(name)}]`);
      const length = tf.int('length', 0);
      const hashes = parseHashes(tf.object('hashes'), `${tf.where}.hashes`, 'base64');
      const custom = tf.raw('custom');
      targets.set(name, { name, length, hashes, ...(custom === undefined ? {} : { custom }) });
    }
    let delegationKeys = new Map<string, NotaryKey>();
    const delegations: NotaryDelegation[] = [];
    const d = f.optionalObject('delegations');
    if (d !== undefined) {
      const df = new Fields(d, `${f.where}.delegations`);
      delegationKeys = parseKeys(df.object('keys'), `${df.where}.keys`);
      const roles = df.raw('roles');
      if (!Array.isArray(roles)) throw new FormatError(`${df.where}.roles: expected an array`);
      const seen = new Set<string>();
      for (const [i, r] of roles.entries()) {
        const rf = Fields.of(r, `${df.where}.roles[${i}]`);
        const name = rf.string('name');
        if (!DELEGATION_NAME.test(name) || name.length >= 256) {
          throw new FormatError(
            `${rf.where}.name: ${JSON.stringify(name)} is not a Notary delegation name (targets/<name>)`,
          );
        }
        if (seen.has(name)) throw new FormatError(`${df.where}.roles: ${name} is listed twice`);
        seen.add(name);
        delegations.push({
          name,
          keyids: rf.stringArray('keyids', true),
          threshold: rf.int('threshold', 1),
          paths: rf.stringArray('paths', false),
        });
      }
    }
    return { ...h, type: 'Targets', targets, delegationKeys, delegations };
  },
};

/**
 * parseNotary parses a Notary document of the expected type.
 * @throws {@link FormatError}
 */
export function parseNotary<K extends NotaryType>(
  raw: Uint8Array,
  type: K,
  source: string,
): NotaryDocument<NotaryTypes[K]> {
  const json = parseJson(raw, { source });
  const f = Fields.of(json, source);
  const signedJson = f.object('signed');
  const sigs = f.raw('signatures');
  if (!Array.isArray(sigs))
    throw new FormatError(`${source}.signatures: expected an array, got ${describe(sigs)}`);
  const signatures = new Map<string, Signature & { method: string }>();
  for (const [i, s] of sigs.entries()) {
    const sf = Fields.of(s, `${source}.signatures[${i}]`);
    const keyid = sf.string('keyid');
    const method = sf.string('method').toLowerCase();
    const sig = sf.string('sig');
    if (signatures.has(keyid))
      throw new FormatError(`${source}.signatures: key ID ${keyid} signs more than once`);
    signatures.set(keyid, { keyid, sig, method });
  }
  const signed = PARSERS[type](new Fields(signedJson, `${source}.signed`)) as NotaryTypes[K];
  return { signed, signatures, signedBytes: canonicalize(signedJson), raw };
}
