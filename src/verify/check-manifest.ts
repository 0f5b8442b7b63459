/**
 * The byte check of verify-before-pull, pure: these manifest bytes against this signed target.
 * A target *is* the image manifest: its length is the manifest's byte length and its sha256 the
 * manifest digest, so TUF's own target checks apply to the bytes as they are.
 */
import { checkLengthAndHashes, type HashEncoding } from '../core/index.js';
import { nodeBackend } from '../crypto/index.js';
import {
  digestOf,
  type ImageIndex,
  type ImageManifest,
  parseManifest,
  type Reference,
} from '../oci/index.js';
import { ImageVerificationError } from './errors.js';

/** A manifest as its trust source signs it. */
export interface SignedManifest {
  /** `sha256:<hex>`: the digest to fetch by. */
  readonly digest: string;
  readonly length: number;
  readonly hashes: Record<string, string>;
  /** How `hashes` are written: hex (TUF) or base64 (Notary). */
  readonly encoding: HashEncoding;
  /** The target it is signed as, for messages: `registry/repository:tag`. */
  readonly path: string;
  /** Who signed it, for messages: the TUF repository, or the Notary server and role. */
  readonly signedBy: string;
}

/**
 * checkPinnedDigest refuses a reference that carries a digest other than the signed one.
 * @throws {@link ImageVerificationError} `DIGEST_MISMATCH`
 */
export function checkPinnedDigest(reference: Reference, signed: string): void {
  if (reference.digest !== undefined && reference.digest !== signed) {
    throw new ImageVerificationError(
      'DIGEST_MISMATCH',
      `${reference.original}: the reference's digest ${reference.digest} is not the signed ${signed}`,
    );
  }
}

/**
 * checkManifest checks manifest `bytes` against the signed `target` of `reference` and returns
 * the parsed manifest or index: the reference's digest (if it has one) is the signed digest,
 * the bytes have the signed length, every signed hash and the signed digest, and they are a
 * manifest or index whose media type agrees with `mediaType` (as served).
 * @throws {@link ImageVerificationError} `DIGEST_MISMATCH` (another digest) or `UNSIGNED_IMAGE`
 *   (the target has no sha256); `LENGTH_OR_HASH_MISMATCH` (a length, a hash, an unknown hash
 *   algorithm); an {@link OciError} `MANIFEST_INVALID`
 */
export function checkManifest(
  target: SignedManifest,
  bytes: Uint8Array,
  reference: Reference,
  mediaType?: string,
): ImageManifest | ImageIndex {
  const what = target.path;
  checkPinnedDigest(reference, target.digest);
  if (target.hashes.sha256 === undefined) {
    throw new ImageVerificationError(
      'UNSIGNED_IMAGE',
      `${what}: the signed target has no sha256 to fetch the manifest by`,
    );
  }
  // TUF 5.7.3: the manifest is the target: its length and every signed hash
  checkLengthAndHashes(bytes, target, what, nodeBackend, target.encoding);
  // and the digest it was fetched by is the digest of these bytes
  const digest = digestOf(bytes);
  if (digest !== target.digest) {
    throw new ImageVerificationError(
      'DIGEST_MISMATCH',
      `${what}: the manifest has digest ${digest}, the signed digest is ${target.digest}`,
    );
  }
  return parseManifest(bytes, mediaType);
}
