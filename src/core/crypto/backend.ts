/**
 * The crypto backend interface: how the core imports public keys, checks signatures and hashes
 * bytes. Two implementations pass the same vectors: `nodeBackend` (node:crypto, fastest; in src/crypto,
 * entry `tufa/core/node`, so the core loads nothing from `node:`) and {@link portableBackend} (@noble, for runtimes without node:crypto).
 */

/** Signature algorithms the core can check. */
export type KeyAlgorithm =
  | 'ed25519'
  | 'ecdsa-p256-sha256'
  | 'ecdsa-p384-sha384'
  | 'rsa-pss-sha256'
  | 'rsa-pkcs1v15-sha256';

/** Hash algorithms for target and metadata hashes. */
export type HashAlgorithm = 'sha256' | 'sha512';

/** A public key in normalized form, independent of how metadata wrote it. */
export interface PublicKeyMaterial {
  readonly algorithm: KeyAlgorithm;
  /** Ed25519: the 32 raw bytes; every other algorithm: DER SubjectPublicKeyInfo. */
  readonly bytes: Uint8Array;
  /** ECDSA signature encoding: `der` (TUF) or `raw` r‖s (Notary). Default `der`. */
  readonly signatureEncoding?: 'der' | 'raw';
}

/** An imported public key, ready to check signatures. */
export interface VerifyingKey {
  readonly algorithm: KeyAlgorithm;
  /**
   * The key's identity: equal for the same public key however it was encoded, so that a
   * threshold counts distinct keys, never key IDs.
   */
  readonly fingerprint: string;
  /** verify returns false for an invalid or malformed signature; it never throws for one. */
  verify(signature: Uint8Array, message: Uint8Array): boolean;
}

/** Crypto primitives the core needs. */
export interface CryptoBackend {
  readonly name: string;
  /**
   * importKey turns normalized key material into a verifying key.
   * @throws {@link RangeError} when the material is not a valid key of its algorithm or the
   *   backend does not support the algorithm
   */
  importKey(material: PublicKeyMaterial): VerifyingKey;
  /** digest hashes bytes. */
  digest(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array;
}

/** DER prefix of a P-256 SubjectPublicKeyInfo holding an uncompressed point (then 64 bytes x‖y). */
export const P256_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
  0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
]);

/** DER prefix of a P-384 SubjectPublicKeyInfo holding an uncompressed point (then 96 bytes x‖y). */
export const P384_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
  0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04,
]);

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (then the 32 raw bytes). */
export const ED25519_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
]);

/** hasPrefix tells whether `bytes` starts with `prefix`. */
export function hasPrefix(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** assertBytes throws a TypeError naming the argument when `v` is not a Uint8Array. */
export function assertBytes(v: unknown, name: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) {
    throw new TypeError(`${name}: expected Uint8Array, got ${v === null ? 'null' : typeof v}`);
  }
}
