/**
 * Threshold signature verification (TUF 5.3.4, 5.4.3, 5.5.3, 5.6.3).
 *
 * A threshold counts distinct public keys, not key IDs: the same key listed under two IDs counts
 * once (go-tuf GHSA-3633-5h82-39pq). A signature that does not decode, a key we cannot use, or a
 * key not listed for the role simply does not count.
 */

import type { VerifyingKey } from './crypto/backend.js';
import { hexToBytes } from './encoding.js';
import { UnsignedMetadataError } from './errors.js';
import type { Signature } from './metadata/envelope.js';
import type { RoleKeys } from './metadata/role.js';

/**
 * Finds the key that checks one signature: by key ID, and (for dialects like Notary's, where
 * each signature names its method) by the signature itself. `KeyRing` is one.
 */
export interface KeyResolver {
  resolve(keyid: string, signature?: Signature): VerifyingKey | undefined;
  /**
   * Why a listed key cannot verify anything (an unsupported type or scheme, a key that does not
   * import), for error messages; undefined when it can, or when the resolver cannot tell.
   */
  unusable?(keyid: string): string | undefined;
}

/** Decodes a signature value; the TUF dialect writes hex. */
export type SignatureDecoder = (sig: Signature) => Uint8Array | undefined;

/** hexSignature decodes a TUF signature (hex). */
export const hexSignature: SignatureDecoder = (s) => hexToBytes(s.sig);

/** What a role's signatures amount to. */
export interface VerificationResult {
  /** Whether the threshold is met. */
  readonly verified: boolean;
  readonly threshold: number;
  /** Key IDs whose signature verified and counted (one per distinct key). */
  readonly signed: readonly string[];
  /** Key IDs of the role that did not contribute a counted signature. */
  readonly unsigned: readonly string[];
}

/** Anything that carries signatures over canonical bytes. */
export interface SignedDocument {
  readonly signatures: ReadonlyMap<string, Signature>;
  readonly signedBytes: Uint8Array;
}

/**
 * verificationResult checks a document's signatures against a role's keys and threshold
 * without throwing. Use {@link verifyThreshold} to enforce.
 */
export function verificationResult(
  doc: SignedDocument,
  role: RoleKeys,
  ring: KeyResolver,
  decode: SignatureDecoder = hexSignature,
): VerificationResult {
  const fingerprints = new Set<string>();
  const signed: string[] = [];
  const unsigned: string[] = [];
  for (const keyid of role.keyids) {
    const sig = doc.signatures.get(keyid);
    const key = sig && ring.resolve(keyid, sig);
    const bytes = sig && key && decode(sig);
    if (key && bytes && !fingerprints.has(key.fingerprint) && key.verify(bytes, doc.signedBytes)) {
      fingerprints.add(key.fingerprint);
      signed.push(keyid);
    } else {
      unsigned.push(keyid);
    }
  }
  // TUF 4.3: a threshold below 1 never verifies (go-tuf CVE-2026-23992)
  const verified = role.threshold >= 1 && fingerprints.size >= role.threshold;
  return { verified, threshold: role.threshold, signed, unsigned };
}

/**
 * verifyThreshold throws an UnsignedMetadataError unless `threshold` distinct keys of the role
 * signed the document.
 */
export function verifyThreshold(
  what: string,
  doc: SignedDocument,
  role: RoleKeys,
  ring: KeyResolver,
  decode: SignatureDecoder = hexSignature,
): VerificationResult {
  const r = verificationResult(doc, role, ring, decode);
  if (!r.verified) {
    // Say so when signatures went uncounted because this client cannot use their keys: that
    // is not the same as a repository signed by too few keys.
    const unusable = r.unsigned
      .filter((keyid) => doc.signatures.has(keyid))
      .map((keyid) => [keyid, ring.unusable?.(keyid)] as const)
      .filter((e): e is readonly [string, string] => e[1] !== undefined)
      .map(([keyid, why]) => `key ${keyid.slice(0, 16)}…: ${why}`);
    const more = unusable.length > 0 ? `; not usable here: ${unusable.join('; ')}` : '';
    throw new UnsignedMetadataError(
      `${what}: signed by ${r.signed.length} of the required ${role.threshold} distinct keys${more}`,
    );
  }
  return r;
}
