/** Key generation for signers: private key as PKCS#8 PEM (optionally encrypted), public key in TUF form. */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { computeKeyId, FormatError, Key, nodeBackend, parseJson } from '../core/index.js';
import { publicKeyOf } from './signer.js';

/** Key types `tufa key generate` makes. */
export type KeyType = 'ed25519' | 'ecdsa-p256' | 'rsa';

export const KEY_TYPES: readonly KeyType[] = ['ed25519', 'ecdsa-p256', 'rsa'];

/** A new key pair. */
export interface GeneratedKey {
  /** PKCS#8 PEM, encrypted with AES-256-CBC when a passphrase was given. */
  readonly privatePem: string;
  readonly publicKey: Key;
}

/**
 * generateKey makes a new key pair.
 * @param passphrase - encrypts the private key (take it from the environment, never from argv)
 */
export function generateKey(type: KeyType, passphrase?: string): GeneratedKey {
  let privateKey: KeyObject;
  if (type === 'ed25519') privateKey = generateKeyPairSync('ed25519').privateKey;
  else if (type === 'ecdsa-p256')
    privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  else if (type === 'rsa')
    privateKey = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
  else
    throw new RangeError(`key type: expected one of ${KEY_TYPES.join(', ')}, got ${String(type)}`);
  const privatePem = privateKey
    .export({
      type: 'pkcs8',
      format: 'pem',
      ...(passphrase ? { cipher: 'aes-256-cbc', passphrase } : {}),
    })
    .toString();
  return { privatePem, publicKey: publicKeyOf(privateKey) };
}

/** publicKeyJson writes a public key file: the TUF key object plus its `keyid`. */
export function publicKeyJson(key: Key): string {
  return `${JSON.stringify({ keyid: key.keyid, ...key.toJSON() }, null, 2)}\n`;
}

/**
 * parsePublicKeyFile reads a public key file (a TUF key object; `keyid` optional, computed when
 * absent and checked when present).
 */
export function parsePublicKeyFile(text: string | Uint8Array, source: string): Key {
  const json = parseJson(text, { source });
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FormatError(`${source}: expected a TUF public key object`);
  }
  const { keyid, ...rest } = json as Record<string, unknown>;
  const parsed = Key.fromJSON('', rest, source);
  if (parsed.material() === undefined) {
    throw new FormatError(
      `${source}: unsupported key (keytype ${parsed.keytype}, scheme ${parsed.scheme})`,
    );
  }
  // TUF 4.2: key ID = hex SHA-256 of the canonical key object
  const id = computeKeyId(parsed, nodeBackend);
  const computed = new Key(id, parsed.keytype, parsed.scheme, parsed.keyval, parsed.unrecognized);
  if (keyid !== undefined && keyid !== computed.keyid) {
    throw new FormatError(
      `${source}: keyid ${String(keyid)} is not the key's ID ${computed.keyid}`,
    );
  }
  return computed;
}
