/**
 * Fields common to every signed role (TUF 4.3): `_type`, `spec_version`, `version`, `expires`.
 */
import { FormatError } from '../errors.js';
import type { JsonObject } from '../json.js';
import { type Fields, parseExpires, withRest } from './fields.js';

/** The four top-level roles. */
export type RoleType = 'root' | 'timestamp' | 'snapshot' | 'targets';
/** The top-level role names, in update order. */
export const TOP_LEVEL_ROLES: readonly RoleType[] = ['root', 'timestamp', 'snapshot', 'targets'];

/** The major version of the TUF specification this client implements (1.0.34). */
export const SPEC_MAJOR = 1;

/** Common header of every signed object. */
export interface SignedHeader {
  readonly type: RoleType;
  readonly specVersion: string;
  readonly version: number;
  /** The expiry as written. */
  readonly expires: string;
  /** The expiry in epoch milliseconds. */
  readonly expiresAt: number;
}

/**
 * readHeader reads and checks the common fields. `_type` must be the expected role (a
 * timestamp file can never pass as a snapshot); `spec_version` must be 1.x or 1.x.y.
 */
export function readHeader(f: Fields, expected: RoleType): SignedHeader {
  const type = f.string('_type');
  if (type !== expected) {
    throw new FormatError(
      `${f.where}._type: expected ${JSON.stringify(expected)}, got ${JSON.stringify(type)}`,
      {
        code: 'WRONG_TYPE',
      },
    );
  }
  const specVersion = f.string('spec_version');
  const parts = specVersion.split('.');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => /^\d+$/.test(p))) {
    throw new FormatError(
      `${f.where}.spec_version: expected "major.minor[.patch]", got ${JSON.stringify(specVersion)}`,
    );
  }
  if (Number(parts[0]) !== SPEC_MAJOR) {
    throw new FormatError(
      `${f.where}.spec_version: ${specVersion} is not supported (this client implements ${SPEC_MAJOR}.x)`,
      { code: 'UNSUPPORTED_SPEC_VERSION' },
    );
  }
  const version = f.int('version', 1);
  const expires = f.string('expires');
  const expiresAt = parseExpires(expires, `${f.where}.expires`);
  return { type, specVersion, version, expires, expiresAt };
}

/** headerToJSON writes the common fields and the unknown ones. */
export function headerToJSON(
  h: SignedHeader,
  body: JsonObject,
  rest: JsonObject | undefined,
): JsonObject {
  return withRest(
    { _type: h.type, spec_version: h.specVersion, version: h.version, expires: h.expires, ...body },
    rest,
  );
}

/** Base of the role models. */
export abstract class Signed implements SignedHeader {
  readonly type: RoleType;
  readonly specVersion: string;
  readonly version: number;
  readonly expires: string;
  readonly expiresAt: number;
  readonly unrecognized: JsonObject | undefined;

  constructor(header: SignedHeader, unrecognized: JsonObject | undefined) {
    this.type = header.type;
    this.specVersion = header.specVersion;
    this.version = header.version;
    this.expires = header.expires;
    this.expiresAt = header.expiresAt;
    this.unrecognized = unrecognized;
  }

  /** isExpired: expired when the expiry is at or before the reference time (epoch ms). */
  isExpired(referenceTime: number): boolean {
    return referenceTime >= this.expiresAt;
  }

  abstract toJSON(): JsonObject;
}
