/**
 * The portable backend on @noble/ed25519 and @noble/hashes, for runtimes without node:crypto
 * (edge workers in registries, browsers). It checks Ed25519 signatures with RFC 8032's stricter
 * rules (not ZIP-215), so it accepts exactly what node:crypto accepts. ECDSA and RSA keys are
 * not supported here: importing one throws, so such a key never counts toward a threshold.
 */
import * as ed from '@noble/ed25519';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '../encoding.js';
import {
  assertBytes,
  type CryptoBackend,
  type HashAlgorithm,
  type PublicKeyMaterial,
  type VerifyingKey,
} from './backend.js';

ed.hashes.sha512 = sha512;

/**
 * assertEd25519PublicKey throws a RangeError unless `pub` is the canonical encoding of a curve
 * point (RFC 8032 5.1.3) of large order. A small-order key (e.g. the identity) would accept
 * forged signatures on any message, so no backend imports one.
 */
export function assertEd25519PublicKey(pub: Uint8Array): void {
  if (pub.length !== 32) throw new RangeError(`ed25519 key: expected 32 bytes, got ${pub.length}`);
  let point: ed.Point;
  try {
    point = ed.Point.fromBytes(pub, false);
  } catch (cause) {
    throw new RangeError('ed25519 key: not a valid curve point', { cause });
  }
  if (point.isSmallOrder())
    throw new RangeError('ed25519 key: a small-order point is not a usable key');
}

/** The portable (@noble) backend. */
export const portableBackend: CryptoBackend = {
  name: 'portable',
  importKey(material: PublicKeyMaterial): VerifyingKey {
    assertBytes(material.bytes, 'key bytes');
    if (material.algorithm !== 'ed25519') {
      throw new RangeError(`portable backend: unsupported key algorithm ${material.algorithm}`);
    }
    const pub = material.bytes.slice();
    assertEd25519PublicKey(pub);
    return {
      algorithm: 'ed25519',
      fingerprint: `ed25519:${bytesToHex(pub)}`,
      verify(signature: Uint8Array, message: Uint8Array): boolean {
        assertBytes(signature, 'signature');
        assertBytes(message, 'message');
        if (signature.length !== 64) return false;
        try {
          return ed.verify(signature, message, pub, { zip215: false });
        } catch {
          return false;
        }
      },
    };
  },
  digest(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array {
    assertBytes(data, 'data');
    if (algorithm === 'sha256') return sha256(data);
    if (algorithm === 'sha512') return sha512(data);
    throw new RangeError(`unsupported hash algorithm ${String(algorithm)}`);
  },
};
