/**
 * Delegations (TUF 4.5): the keys and roles a targets role delegates to, either as a list of
 * roles with path patterns or hash prefixes, or as succinct hashed bins (TAP 15).
 */
import type { CryptoBackend } from '../crypto/backend.js';
import { bytesToHex } from '../encoding.js';
import { FormatError } from '../errors.js';
import type { JsonObject } from '../json.js';
import { type Key, type KeyRing, KeyRings, keysToJSON, parseKeys } from '../keys.js';
import { TOP_LEVEL_ROLES } from './base.js';
import { Fields, isObject, withRest } from './fields.js';
import { isTargetInPathPattern } from './pattern.js';
import type { RoleKeys } from './role.js';

const encoder = new TextEncoder();

/** The SHA-256 of a target path, computed at most once per lookup. */
export class TargetPathHash {
  private hex?: string;
  private bytes?: Uint8Array;

  constructor(
    readonly path: string,
    private readonly backend: CryptoBackend,
  ) {}

  digest(): Uint8Array {
    this.bytes ??= this.backend.digest('sha256', encoder.encode(this.path));
    return this.bytes;
  }

  hexDigest(): string {
    this.hex ??= bytesToHex(this.digest());
    return this.hex;
  }
}

/** A role reached through a delegation, with whether it ends the search. */
export interface DelegatedChild {
  readonly name: string;
  readonly terminating: boolean;
}

/** One entry of `delegations.roles`. */
export class DelegatedRole implements RoleKeys {
  constructor(
    readonly name: string,
    readonly keyids: readonly string[],
    readonly threshold: number,
    readonly terminating: boolean,
    readonly paths?: readonly string[],
    readonly pathHashPrefixes?: readonly string[],
    readonly unrecognized?: JsonObject,
  ) {}

  static fromJSON(json: unknown, where: string): DelegatedRole {
    const f = Fields.of(json as JsonObject, where);
    const name = f.nonEmptyString('name');
    const keyids = f.stringArray('keyids', true);
    // TUF 4.3: threshold ≥ 1 (go-tuf CVE-2026-23992)
    const threshold = f.int('threshold', 1);
    const terminating = f.bool('terminating');
    const hasPaths = f.has('paths');
    const hasPrefixes = f.has('path_hash_prefixes');
    if (hasPaths === hasPrefixes) {
      throw new FormatError(`${where}: expected exactly one of "paths" and "path_hash_prefixes"`);
    }
    const paths = hasPaths ? f.stringArray('paths', false) : undefined;
    const prefixes = hasPrefixes ? f.stringArray('path_hash_prefixes', false) : undefined;
    for (const [i, p] of (prefixes ?? []).entries()) {
      if (!/^[0-9a-fA-F]*$/.test(p)) {
        throw new FormatError(
          `${where}.path_hash_prefixes[${i}]: expected hex digits, got ${JSON.stringify(p)}`,
        );
      }
    }
    return new DelegatedRole(name, keyids, threshold, terminating, paths, prefixes, f.rest());
  }

  /**
   * isDelegatedPath tells whether this role is trusted for a target path: a path pattern
   * matches it, or the hex SHA-256 of the path starts with one of the hash prefixes (compared as
   * lowercase hex, never as raw bytes or another encoding).
   */
  isDelegatedPath(target: TargetPathHash): boolean {
    if (this.paths !== undefined)
      return this.paths.some((p) => isTargetInPathPattern(target.path, p));
    const hex = target.hexDigest();
    return (this.pathHashPrefixes ?? []).some((p) => hex.startsWith(p.toLowerCase()));
  }

  toJSON(): JsonObject {
    const out: JsonObject = {
      name: this.name,
      keyids: [...this.keyids],
      threshold: this.threshold,
      terminating: this.terminating,
    };
    if (this.paths !== undefined) out.paths = [...this.paths];
    if (this.pathHashPrefixes !== undefined) out.path_hash_prefixes = [...this.pathHashPrefixes];
    return withRest(out, this.unrecognized);
  }
}

/** Succinct hashed bins (TAP 15): 2^bit_length roles named `<prefix>-<hex bin>`. */
export class SuccinctRoles implements RoleKeys {
  readonly suffixLength: number;
  readonly numberOfBins: number;

  constructor(
    readonly keyids: readonly string[],
    readonly threshold: number,
    readonly bitLength: number,
    readonly namePrefix: string,
    readonly unrecognized?: JsonObject,
  ) {
    this.numberOfBins = 2 ** bitLength;
    this.suffixLength = (this.numberOfBins - 1).toString(16).length;
  }

  static fromJSON(json: unknown, where: string): SuccinctRoles {
    const f = Fields.of(json as JsonObject, where);
    const keyids = f.stringArray('keyids', true);
    const threshold = f.int('threshold', 1);
    const bitLength = f.int('bit_length', 1);
    if (bitLength > 32)
      throw new FormatError(`${where}.bit_length: expected 1 to 32, got ${bitLength}`);
    const namePrefix = f.string('name_prefix');
    return new SuccinctRoles(keyids, threshold, bitLength, namePrefix, f.rest());
  }

  /** roleForTarget returns the bin a target path falls in: the top bit_length bits of its SHA-256. */
  roleForTarget(target: TargetPathHash): string {
    const d = target.digest();
    const first32 =
      (((d[0] as number) << 24) |
        ((d[1] as number) << 16) |
        ((d[2] as number) << 8) |
        (d[3] as number)) >>>
      0;
    const bin = this.bitLength === 32 ? first32 : first32 >>> (32 - this.bitLength);
    return this.binName(bin);
  }

  binName(bin: number): string {
    return `${this.namePrefix}-${bin.toString(16).padStart(this.suffixLength, '0')}`;
  }

  /** isDelegatedRole tells whether `name` is one of the bins. */
  isDelegatedRole(name: string): boolean {
    const head = `${this.namePrefix}-`;
    if (!name.startsWith(head)) return false;
    const suffix = name.slice(head.length);
    if (suffix.length !== this.suffixLength || !/^[0-9a-f]+$/.test(suffix)) return false;
    return Number.parseInt(suffix, 16) < this.numberOfBins;
  }

  toJSON(): JsonObject {
    return withRest(
      {
        keyids: [...this.keyids],
        threshold: this.threshold,
        bit_length: this.bitLength,
        name_prefix: this.namePrefix,
      },
      this.unrecognized,
    );
  }
}

/** The `delegations` object of a targets role. */
export class Delegations {
  private readonly rings: KeyRings;
  private readonly byName: Map<string, DelegatedRole>;

  constructor(
    readonly keys: Map<string, Key>,
    /** Delegated roles in the order the JSON lists them: the order the search follows. */
    readonly roles?: readonly DelegatedRole[],
    readonly succinctRoles?: SuccinctRoles,
    readonly unrecognized?: JsonObject,
  ) {
    this.byName = new Map((roles ?? []).map((r) => [r.name, r]));
    this.rings = new KeyRings(keys);
  }

  static fromJSON(json: unknown, where: string): Delegations {
    const f = Fields.of(json as JsonObject, where);
    const keys = parseKeys(f.object('keys'), `${where}.keys`);
    const hasRoles = f.has('roles');
    const hasSuccinct = f.has('succinct_roles');
    if (hasRoles === hasSuccinct) {
      throw new FormatError(`${where}: expected exactly one of "roles" and "succinct_roles"`);
    }
    let roles: DelegatedRole[] | undefined;
    if (hasRoles) {
      const arr = f.raw('roles');
      if (!Array.isArray(arr)) throw new FormatError(`${where}.roles: expected an array`);
      roles = arr.map((r, i) => DelegatedRole.fromJSON(r, `${where}.roles[${i}]`));
      const seen = new Set<string>();
      for (const r of roles) {
        // compared ignoring case: on a case-insensitive file system `Root` would be root's file
        if ((TOP_LEVEL_ROLES as readonly string[]).includes(r.name.toLowerCase())) {
          throw new FormatError(
            `${where}.roles: a delegated role cannot be named ${JSON.stringify(r.name)}`,
          );
        }
        if (seen.has(r.name))
          throw new FormatError(`${where}.roles: role ${JSON.stringify(r.name)} is listed twice`);
        seen.add(r.name);
      }
    }
    const sr = hasSuccinct ? f.raw('succinct_roles') : undefined;
    if (hasSuccinct && !isObject(sr ?? null))
      throw new FormatError(`${where}.succinct_roles: expected an object`);
    const succinct =
      sr === undefined ? undefined : SuccinctRoles.fromJSON(sr, `${where}.succinct_roles`);
    return new Delegations(keys, roles, succinct, f.rest());
  }

  /**
   * rolesForTarget lists, in order, the roles trusted for a target path. A succinct bin is
   * terminating: no other role is trusted for its paths.
   */
  rolesForTarget(target: TargetPathHash): DelegatedChild[] {
    if (this.succinctRoles !== undefined) {
      return [{ name: this.succinctRoles.roleForTarget(target), terminating: true }];
    }
    const out: DelegatedChild[] = [];
    for (const r of this.roles ?? []) {
      if (r.isDelegatedPath(target)) out.push({ name: r.name, terminating: r.terminating });
    }
    return out;
  }

  /** roleKeys returns the keys and threshold this delegation sets for `name`, if it delegates to it. */
  roleKeys(name: string): RoleKeys | undefined {
    if (this.succinctRoles !== undefined) {
      return this.succinctRoles.isDelegatedRole(name) ? this.succinctRoles : undefined;
    }
    return this.byName.get(name);
  }

  /** keyRing returns the delegation keys imported with `backend` (imported once, then cached). */
  keyRing(backend: CryptoBackend): KeyRing {
    return this.rings.for(backend);
  }

  toJSON(): JsonObject {
    const out: JsonObject = { keys: keysToJSON(this.keys) };
    if (this.roles !== undefined) out.roles = this.roles.map((r) => r.toJSON());
    if (this.succinctRoles !== undefined) out.succinct_roles = this.succinctRoles.toJSON();
    return withRest(out, this.unrecognized);
  }
}
