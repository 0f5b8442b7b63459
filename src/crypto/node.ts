/**
 * The node:crypto backend (what every Node entry of tufa passes to the core). Keys are imported once, from JWK where the encoding allows
 * (15–35× faster than PEM/DER import on Node 20), and kept as KeyObjects.
 */
import {
  constants,
  createHash,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  verify as nodeVerify,
} from 'node:crypto';
import {
  assertBytes,
  type CryptoBackend,
  type HashAlgorithm,
  hasPrefix,
  type KeyAlgorithm,
  P256_SPKI_PREFIX,
  P384_SPKI_PREFIX,
  type PublicKeyMaterial,
  type VerifyingKey,
} from '../core/crypto/backend.js';
import { ed25519PointProblem } from '../core/crypto/ed25519-point.js';
import { bytesToBase64Url, bytesToHex } from '../core/encoding.js';

const MIN_RSA_BITS = 2048;

function importFromJwk(jwk: JsonWebKey): KeyObject {
  return createPublicKey({ key: jwk, format: 'jwk' });
}

function importFromSpki(der: Uint8Array, what: string): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new RangeError(`${what}: not a valid SubjectPublicKeyInfo`, { cause });
  }
}

/** An ECDSA curve as TUF names it, with how node:crypto and JWK name it. */
interface EcCurve {
  readonly tag: string;
  readonly jwk: 'P-256' | 'P-384';
  readonly openssl: string;
  readonly spkiPrefix: Uint8Array;
  /** Bytes of one coordinate. */
  readonly size: number;
}

const EC_CURVES = {
  p256: {
    tag: 'p256',
    jwk: 'P-256',
    openssl: 'prime256v1',
    spkiPrefix: P256_SPKI_PREFIX,
    size: 32,
  },
  p384: { tag: 'p384', jwk: 'P-384', openssl: 'secp384r1', spkiPrefix: P384_SPKI_PREFIX, size: 48 },
} as const satisfies Record<string, EcCurve>;

/**
 * importEcKey imports an ECDSA public key given as DER SPKI. The fingerprint is the point x‖y,
 * however the key was encoded (uncompressed, compressed, hex point), so aliases count once.
 */
function importEcKey(der: Uint8Array, curve: EcCurve): { key: KeyObject; fingerprint: string } {
  const { size } = curve;
  if (der.length === curve.spkiPrefix.length + 2 * size && hasPrefix(der, curve.spkiPrefix)) {
    // the common spelling: JWK import is much faster than DER
    const x = der.subarray(curve.spkiPrefix.length, curve.spkiPrefix.length + size);
    const y = der.subarray(curve.spkiPrefix.length + size);
    let key: KeyObject;
    try {
      key = importFromJwk({
        kty: 'EC',
        crv: curve.jwk,
        x: bytesToBase64Url(x),
        y: bytesToBase64Url(y),
      });
    } catch (cause) {
      throw new RangeError(`ecdsa key: point is not on ${curve.jwk}`, { cause });
    }
    return { key, fingerprint: `${curve.tag}:${bytesToHex(x)}${bytesToHex(y)}` };
  }
  // Compressed points and other SPKI spellings: slower import, same identity.
  const key = importFromSpki(der, 'ecdsa key');
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== curve.openssl) {
    throw new RangeError(`ecdsa key: expected a ${curve.jwk} key`);
  }
  const jwk = key.export({ format: 'jwk' });
  const hex = (s: string | undefined) => Buffer.from(s ?? '', 'base64url').toString('hex');
  return { key, fingerprint: `${curve.tag}:${hex(jwk.x)}${hex(jwk.y)}` };
}

function importKeyObject(m: PublicKeyMaterial): { key: KeyObject; fingerprint: string } {
  switch (m.algorithm) {
    case 'ed25519': {
      const problem = ed25519PointProblem(m.bytes);
      if (problem !== undefined) throw new RangeError(`ed25519 key: ${problem}`);
      let key: KeyObject;
      try {
        key = importFromJwk({ kty: 'OKP', crv: 'Ed25519', x: bytesToBase64Url(m.bytes) });
      } catch (cause) {
        throw new RangeError('ed25519 key: not importable', { cause });
      }
      return { key, fingerprint: `ed25519:${bytesToHex(m.bytes)}` };
    }
    case 'ecdsa-p256-sha256':
      return importEcKey(m.bytes, EC_CURVES.p256);
    case 'ecdsa-p384-sha384':
      return importEcKey(m.bytes, EC_CURVES.p384);
    case 'rsa-pss-sha256':
    case 'rsa-pkcs1v15-sha256': {
      const key = importFromSpki(m.bytes, 'rsa key');
      if (key.asymmetricKeyType !== 'rsa') throw new RangeError('rsa key: expected an RSA key');
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) {
        throw new RangeError(
          `rsa key: ${bits}-bit modulus is below the ${MIN_RSA_BITS}-bit minimum`,
        );
      }
      const jwk = key.export({ format: 'jwk' });
      return { key, fingerprint: `rsa:${jwk.n}:${jwk.e}` };
    }
    default:
      throw new RangeError(
        `unsupported key algorithm ${String((m as { algorithm: unknown }).algorithm)}`,
      );
  }
}

function makeVerify(
  algorithm: KeyAlgorithm,
  key: KeyObject,
  encoding: 'der' | 'raw',
): (sig: Uint8Array, msg: Uint8Array) => boolean {
  switch (algorithm) {
    case 'ed25519':
      return (sig, msg) => sig.length === 64 && nodeVerify(null, msg, key, sig);
    case 'ecdsa-p256-sha256': {
      const opts = { key, dsaEncoding: encoding === 'raw' ? 'ieee-p1363' : 'der' } as const;
      return (sig, msg) =>
        (encoding !== 'raw' || sig.length === 64) && nodeVerify('sha256', msg, opts, sig);
    }
    case 'ecdsa-p384-sha384': {
      const opts = { key, dsaEncoding: encoding === 'raw' ? 'ieee-p1363' : 'der' } as const;
      return (sig, msg) =>
        (encoding !== 'raw' || sig.length === 96) && nodeVerify('sha384', msg, opts, sig);
    }
    case 'rsa-pss-sha256': {
      const opts = {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_AUTO,
      };
      return (sig, msg) => nodeVerify('sha256', msg, opts, sig);
    }
    case 'rsa-pkcs1v15-sha256': {
      const opts = { key, padding: constants.RSA_PKCS1_PADDING };
      return (sig, msg) => nodeVerify('sha256', msg, opts, sig);
    }
  }
}

/** The node:crypto backend. */
export const nodeBackend: CryptoBackend = {
  name: 'node',
  importKey(material: PublicKeyMaterial): VerifyingKey {
    assertBytes(material.bytes, 'key bytes');
    const { key, fingerprint } = importKeyObject(material);
    const check = makeVerify(material.algorithm, key, material.signatureEncoding ?? 'der');
    return {
      algorithm: material.algorithm,
      fingerprint,
      verify(signature: Uint8Array, message: Uint8Array): boolean {
        assertBytes(signature, 'signature');
        assertBytes(message, 'message');
        try {
          return check(signature, message);
        } catch {
          return false; // OpenSSL refuses malformed encodings by throwing: still just invalid
        }
      },
    };
  },
  digest(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array {
    assertBytes(data, 'data');
    if (algorithm !== 'sha256' && algorithm !== 'sha512') {
      throw new RangeError(`unsupported hash algorithm ${String(algorithm)}`);
    }
    return new Uint8Array(createHash(algorithm).update(data).digest());
  },
};
