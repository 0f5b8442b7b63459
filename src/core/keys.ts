/**
 * TUF public keys (TUF 4.2): the `keys` entries of root and delegations, their key IDs, and how
 * each `keytype`/`scheme` pair maps to a signature algorithm.
 *
 * A key whose type or scheme we do not support is still parsed and kept (metadata must
 * round-trip), but it can never verify a signature, so it never counts toward a threshold.
 */
import { canonicalize } from './canonical-json.js';
import {
  type CryptoBackend,
  P256_SPKI_PREFIX,
  type PublicKeyMaterial,
  type VerifyingKey,
} from './crypto/backend.js';
import { bytesToHex, hexToBytes, pemToDer } from './encoding.js';
import { FormatError } from './errors.js';
import type { JsonObject } from './json.js';
import { Fields, withRest } from './metadata/fields.js';

/** A public key as metadata lists it. */
export class Key {
  constructor(
    readonly keyid: string,
    readonly keytype: string,
    readonly scheme: string,
    /** `keyval`, including `public` and any other members. */
    readonly keyval: JsonObject & { public: string },
    readonly unrecognized?: JsonObject,
  ) {}

  /** fromJSON parses one `keys` entry; `where` names it in errors. */
  static fromJSON(keyid: string, json: unknown, where: string): Key {
    const f = Fields.of(json as JsonObject, where);
    const keytype = f.string('keytype');
    const scheme = f.string('scheme');
    const kv = Fields.of(f.object('keyval'), `${where}.keyval`);
    kv.string('public');
    return new Key(keyid, keytype, scheme, kv.obj as JsonObject & { public: string }, f.rest());
  }

  toJSON(): JsonObject {
    return withRest(
      { keytype: this.keytype, scheme: this.scheme, keyval: this.keyval },
      this.unrecognized,
    );
  }

  /**
   * material maps the key to a signature algorithm and its bytes, or returns undefined when the
   * type/scheme pair is not supported or the public value does not decode.
   */
  material(): PublicKeyMaterial | undefined {
    const pub = this.keyval.public;
    if (this.keytype === 'ed25519' && this.scheme === 'ed25519') {
      const bytes = hexToBytes(pub);
      return bytes?.length === 32 ? { algorithm: 'ed25519', bytes } : undefined;
    }
    if (
      (this.keytype === 'ecdsa' || this.keytype === 'ecdsa-sha2-nistp256') &&
      this.scheme === 'ecdsa-sha2-nistp256'
    ) {
      // PEM SPKI, or (securesystemslib's older form, e.g. sigstore's early roots) the hex
      // uncompressed point 04‖x‖y
      if (/^04[0-9a-fA-F]{128}$/.test(pub)) {
        const point = hexToBytes(pub) as Uint8Array;
        const bytes = new Uint8Array(P256_SPKI_PREFIX.length + 64);
        bytes.set(P256_SPKI_PREFIX);
        bytes.set(point.subarray(1), P256_SPKI_PREFIX.length);
        return { algorithm: 'ecdsa-p256-sha256', bytes };
      }
      const bytes = pemToDer(pub, 'PUBLIC KEY');
      return bytes && { algorithm: 'ecdsa-p256-sha256', bytes };
    }
    if (
      (this.keytype === 'ecdsa' || this.keytype === 'ecdsa-sha2-nistp384') &&
      this.scheme === 'ecdsa-sha2-nistp384'
    ) {
      // PEM SPKI (tuf-on-ci, e.g. Docker's and Datadog's roots)
      const bytes = pemToDer(pub, 'PUBLIC KEY');
      return bytes && { algorithm: 'ecdsa-p384-sha384', bytes };
    }
    if (
      this.keytype === 'rsa' &&
      (this.scheme === 'rsassa-pss-sha256' || this.scheme === 'rsa-pkcs1v15-sha256')
    ) {
      const bytes = pemToDer(pub, 'PUBLIC KEY');
      const algorithm =
        this.scheme === 'rsassa-pss-sha256' ? 'rsa-pss-sha256' : 'rsa-pkcs1v15-sha256';
      return bytes && { algorithm, bytes };
    }
    return undefined;
  }
}

/**
 * computeKeyId returns the TUF key ID of a key: the hex SHA-256 of its canonical JSON.
 * (Clients do not require listed key IDs to equal this: deployed repositories such as
 * sigstore's use other key ID schemes. Thresholds count distinct keys, so a key listed under
 * two IDs still counts once.)
 */
export function computeKeyId(key: Key, backend: CryptoBackend): string {
  return bytesToHex(backend.digest('sha256', canonicalize(key.toJSON())));
}

/** parseKeys reads a `keys` object (key ID → key). */
export function parseKeys(obj: JsonObject, where: string): Map<string, Key> {
  const out = new Map<string, Key>();
  for (const keyid of Object.keys(obj)) {
    if (keyid.length === 0) throw new FormatError(`${where}: empty key ID`);
    out.set(keyid, Key.fromJSON(keyid, obj[keyid], `${where}.${keyid}`));
  }
  return out;
}

/** keysToJSON writes a key map back as a `keys` object. */
export function keysToJSON(keys: Map<string, Key>): JsonObject {
  const out: JsonObject = {};
  for (const [id, k] of keys) {
    Object.defineProperty(out, id, {
      value: k.toJSON(),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * KeyRings caches one {@link KeyRing} per crypto backend for a key map (root's keys, or a
 * delegation's), so each key is imported once per backend.
 */
export class KeyRings {
  private readonly rings = new WeakMap<CryptoBackend, KeyRing>();

  constructor(private readonly keys: ReadonlyMap<string, Key>) {}

  for(backend: CryptoBackend): KeyRing {
    let ring = this.rings.get(backend);
    if (ring === undefined) {
      ring = new KeyRing(this.keys, backend);
      this.rings.set(backend, ring);
    }
    return ring;
  }
}

/**
 * A set of keys with their imported, ready-to-verify forms, each imported at most once per
 * backend. `resolve` returns undefined for an unknown key ID or a key that cannot verify.
 */
export class KeyRing {
  private readonly imported = new Map<string, VerifyingKey | null>();
  private readonly problems = new Map<string, string>();

  constructor(
    readonly keys: ReadonlyMap<string, Key>,
    private readonly backend: CryptoBackend,
  ) {}

  resolve(keyid: string): VerifyingKey | undefined {
    const hit = this.imported.get(keyid);
    if (hit !== undefined) return hit ?? undefined;
    const key = this.keys.get(keyid);
    let vk: VerifyingKey | null = null;
    const material = key?.material();
    if (material !== undefined) {
      try {
        vk = this.backend.importKey(material);
      } catch (e) {
        vk = null; // a key that does not import can never verify
        this.problems.set(keyid, e instanceof Error ? e.message : String(e));
      }
    } else if (key !== undefined) {
      this.problems.set(
        keyid,
        `unsupported key type ${JSON.stringify(key.keytype)} with scheme ${JSON.stringify(key.scheme)}, or a public value that does not decode`,
      );
    }
    this.imported.set(keyid, vk);
    return vk ?? undefined;
  }

  unusable(keyid: string): string | undefined {
    this.resolve(keyid);
    return this.problems.get(keyid);
  }
}
