/**
 * MetaFile (a role's entry in timestamp/snapshot `meta`) and TargetFile (an entry in `targets`),
 * with the length and hash checks of TUF 5.5.2, 5.6.2 and 5.7.3.
 */
import type { CryptoBackend, HashAlgorithm } from '../crypto/backend.js';
import { base64ToBytes, bytesEqual, bytesToHex, hexToBytes } from '../encoding.js';
import { FormatError, LengthOrHashMismatchError } from '../errors.js';
import type { JsonObject, JsonValue } from '../json.js';
import { describe, Fields, withRest } from './fields.js';

/** How hash values are written: hex (TUF) or base64 (Notary). */
export type HashEncoding = 'hex' | 'base64';

/**
 * parseHashes reads a non-empty `hashes` object of algorithm → string; with `base64` (Notary)
 * each value must also decode as base64.
 * @throws {@link FormatError} `METADATA_FORMAT` naming the field
 */
export function parseHashes(
  obj: JsonObject,
  where: string,
  encoding: HashEncoding = 'hex',
): Record<string, string> {
  const names = Object.keys(obj);
  if (names.length === 0) throw new FormatError(`${where}: expected at least one hash, got none`);
  for (const n of names) {
    const v = obj[n];
    if (typeof v !== 'string' || v.length === 0) {
      throw new FormatError(`${where}.${n}: expected a non-empty string, got ${describe(v)}`);
    }
    if (encoding === 'base64' && base64ToBytes(v) === undefined) {
      throw new FormatError(`${where}.${n}: expected base64`);
    }
  }
  return obj as Record<string, string>;
}

function isSupported(alg: string): alg is HashAlgorithm {
  return alg === 'sha256' || alg === 'sha512';
}

/**
 * checkLengthAndHashes throws a LengthOrHashMismatchError unless `data` has the expected length
 * (when one is given) and matches every listed hash. An algorithm we cannot compute fails: a
 * hash that cannot be checked is not taken as checked.
 * @throws {@link LengthOrHashMismatchError} `LENGTH_OR_HASH_MISMATCH` naming the file and what
 *   differs
 */
export function checkLengthAndHashes(
  data: Uint8Array,
  expected: { length?: number | undefined; hashes?: Record<string, string> | undefined },
  what: string,
  backend: CryptoBackend,
  encoding: HashEncoding = 'hex',
): void {
  if (expected.length !== undefined && data.length !== expected.length) {
    throw new LengthOrHashMismatchError(
      `${what}: length ${data.length} does not match the signed length ${expected.length}`,
    );
  }
  if (expected.hashes === undefined) return;
  for (const [alg, value] of Object.entries(expected.hashes)) {
    if (!isSupported(alg)) {
      throw new LengthOrHashMismatchError(
        `${what}: hash algorithm ${JSON.stringify(alg)} is not supported`,
      );
    }
    const want = encoding === 'hex' ? hexToBytes(value) : base64ToBytes(value);
    const got = backend.digest(alg, data);
    if (want === undefined || !bytesEqual(got, want)) {
      throw new LengthOrHashMismatchError(
        `${what}: ${alg} ${bytesToHex(got)} does not match the signed ${alg} ${value}`,
      );
    }
  }
}

/** A role's entry in `meta`: its version and, optionally, length and hashes. */
export class MetaFile {
  constructor(
    readonly version: number,
    readonly length?: number,
    readonly hashes?: Record<string, string>,
    readonly unrecognized?: JsonObject,
  ) {}

  static fromJSON(json: JsonValue | undefined, where: string): MetaFile {
    const f = Fields.of(json, where);
    const version = f.int('version', 1);
    const length = f.optionalInt('length', 1);
    const h = f.optionalObject('hashes');
    const hashes = h === undefined ? undefined : parseHashes(h, `${where}.hashes`);
    return new MetaFile(version, length, hashes, f.rest());
  }

  toJSON(): JsonObject {
    const out: JsonObject = { version: this.version };
    if (this.length !== undefined) out.length = this.length;
    if (this.hashes !== undefined) out.hashes = this.hashes;
    return withRest(out, this.unrecognized);
  }
}

/** A target: its length, hashes and free-form `custom` data. */
export class TargetFile {
  constructor(
    readonly path: string,
    readonly length: number,
    readonly hashes: Record<string, string>,
    readonly custom?: JsonValue,
    readonly unrecognized?: JsonObject,
  ) {}

  static fromJSON(path: string, json: JsonValue | undefined, where: string): TargetFile {
    const f = Fields.of(json, where);
    const length = f.int('length', 0);
    const hashes = parseHashes(f.object('hashes'), `${where}.hashes`);
    const custom = f.raw('custom');
    return new TargetFile(path, length, hashes, custom, f.rest());
  }

  /**
   * fromPlain reads a target of the common shape (`length`, `hashes`, optional `custom`, nothing
   * else) with the same checks as {@link fromJSON}, or returns undefined for fromJSON to read
   * (and explain) anything else.
   */
  static fromPlain(path: string, v: JsonValue | undefined): TargetFile | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    let n = 0;
    for (const k in v) {
      if (k !== 'length' && k !== 'hashes' && k !== 'custom') return undefined;
      n++;
    }
    const { length, hashes, custom } = v as {
      length?: JsonValue;
      hashes?: JsonValue;
      custom?: JsonValue;
    };
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) return undefined;
    if (typeof hashes !== 'object' || hashes === null || Array.isArray(hashes)) return undefined;
    let h = 0;
    for (const k in hashes) {
      const hv = hashes[k];
      if (typeof hv !== 'string' || hv.length === 0) return undefined;
      h++;
    }
    if (h === 0 || n < 2) return undefined;
    return new TargetFile(path, length, hashes as Record<string, string>, custom);
  }

  toJSON(): JsonObject {
    const out: JsonObject = { length: this.length, hashes: this.hashes };
    if (this.custom !== undefined) out.custom = this.custom;
    return withRest(out, this.unrecognized);
  }
}
