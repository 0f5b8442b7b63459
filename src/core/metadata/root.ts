/** Root metadata (TUF 4.3): keys, the top-level roles' key IDs and thresholds. */
import type { CryptoBackend } from '../crypto/backend.js';
import { FormatError } from '../errors.js';
import type { JsonObject, JsonValue } from '../json.js';
import { type Key, type KeyRing, KeyRings, keysToJSON, parseKeys } from '../keys.js';
import {
  headerToJSON,
  type RoleType,
  readHeader,
  Signed,
  type SignedHeader,
  TOP_LEVEL_ROLES,
} from './base.js';
import { Fields } from './fields.js';
import { Role } from './role.js';

export class Root extends Signed {
  private readonly rings: KeyRings;

  constructor(
    header: SignedHeader,
    readonly keys: Map<string, Key>,
    readonly roles: Map<RoleType, Role>,
    readonly consistentSnapshot: boolean | undefined,
    unrecognized?: JsonObject,
  ) {
    super(header, unrecognized);
    this.rings = new KeyRings(keys);
  }

  static fromJSON(json: JsonValue, where = 'root'): Root {
    const f = Fields.of(json, where);
    const header = readHeader(f, 'root');
    const consistentSnapshot = f.optionalBool('consistent_snapshot');
    const keys = parseKeys(f.object('keys'), `${where}.keys`);
    const rolesObj = f.object('roles');
    const roles = new Map<RoleType, Role>();
    const names = Object.keys(rolesObj);
    for (const name of TOP_LEVEL_ROLES) {
      if (!Object.hasOwn(rolesObj, name))
        throw new FormatError(`${where}.roles: role ${JSON.stringify(name)} is missing`);
      roles.set(name, Role.fromJSON(rolesObj[name], `${where}.roles.${name}`));
    }
    if (names.length !== TOP_LEVEL_ROLES.length) {
      const extra = names.filter((n) => !(TOP_LEVEL_ROLES as readonly string[]).includes(n));
      throw new FormatError(
        `${where}.roles: unknown roles ${extra.map((n) => JSON.stringify(n)).join(', ')}`,
      );
    }
    return new Root(header, keys, roles, consistentSnapshot, f.rest());
  }

  /** role returns the keys and threshold of a top-level role. */
  role(name: RoleType): Role {
    return this.roles.get(name) as Role; // all four are present by construction
  }

  /** keyRing returns the root's keys imported with `backend` (imported once, then cached). */
  keyRing(backend: CryptoBackend): KeyRing {
    return this.rings.for(backend);
  }

  toJSON(): JsonObject {
    const roles: JsonObject = {};
    for (const [name, r] of this.roles) roles[name] = r.toJSON();
    const body: JsonObject = { keys: keysToJSON(this.keys), roles };
    if (this.consistentSnapshot !== undefined) body.consistent_snapshot = this.consistentSnapshot;
    return headerToJSON(this, body, this.unrecognized);
  }
}
