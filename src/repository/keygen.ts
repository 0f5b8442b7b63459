/** Key generation for signers: private key as PKCS#8 PEM (optionally encrypted), public key in TUF form. */
import {
  createCipheriv,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  pbkdf2Sync,
  randomBytes,
} from 'node:crypto';
import { computeKeyId, FormatError, Key, parseJson } from '../core/index.js';
import { nodeBackend } from '../crypto/index.js';
import { PBKDF2_ITERATIONS } from './key-file.js';
import { publicKeyOf } from './signer.js';

/** Key types `tufa key generate` makes. */
export type KeyType = 'ed25519' | 'ecdsa-p256' | 'rsa';

export const KEY_TYPES: readonly KeyType[] = ['ed25519', 'ecdsa-p256', 'rsa'];

/** A new key pair. */
export interface GeneratedKey {
  /**
   * PKCS#8 PEM; with a passphrase, encrypted (PBES2: PBKDF2-HMAC-SHA256 with
   * {@link PBKDF2_ITERATIONS} iterations, AES-256-CBC).
   */
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
  const privatePem = passphrase
    ? encryptPkcs8(privateKey, passphrase)
    : privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { privatePem, publicKey: publicKeyOf(privateKey) };
}

export { PBKDF2_ITERATIONS };

/**
 * reencryptKey rewrites a PKCS#8 PEM private key (encrypted with `passphrase`, or not encrypted)
 * encrypted as {@link generateKey} does: PBES2, PBKDF2-HMAC-SHA256 with
 * {@link PBKDF2_ITERATIONS} iterations, AES-256-CBC.
 * @param newPassphrase - the passphrase of the result (default: `passphrase`)
 * @throws {@link RangeError} for an unreadable key, a wrong passphrase or no passphrase to use
 */
export function reencryptKey(
  pem: string,
  passphrase: string | undefined,
  newPassphrase = passphrase,
): GeneratedKey {
  if (!newPassphrase) throw new RangeError('re-encrypting a key needs a passphrase');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', ...(passphrase ? { passphrase } : {}) });
  } catch (cause) {
    throw new RangeError('private key: not a readable PKCS#8 PEM key (or wrong passphrase)', {
      cause,
    });
  }
  return { privatePem: encryptPkcs8(key, newPassphrase), publicKey: publicKeyOf(key) };
}

/** der encodes one DER element (tag, definite length, content). */
function der(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const long = hexBytes(n);
  const len = n < 0x80 ? Buffer.from([n]) : Buffer.from([0x80 | long.length, ...long]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

function hexBytes(n: number): Buffer {
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
}

const OID = {
  pbes2: '2a864886f70d01050d', // 1.2.840.113549.1.5.13
  pbkdf2: '2a864886f70d01050c', // 1.2.840.113549.1.5.12
  hmacWithSha256: '2a864886f70d0209', // 1.2.840.113549.2.9
  aes256Cbc: '60864801650304012a', // 2.16.840.1.101.3.4.1.42
} as const;
const oid = (hex: string) => der(0x06, Buffer.from(hex, 'hex'));

/**
 * encryptPkcs8 writes an EncryptedPrivateKeyInfo (RFC 5958) with PBES2 (RFC 8018): PBKDF2 with
 * HMAC-SHA256, {@link PBKDF2_ITERATIONS} iterations and a 16-byte salt, AES-256-CBC. OpenSSL
 * (and so `KeyObjectSigner.fromPem`) reads it like any other encrypted PKCS#8 key.
 */
function encryptPkcs8(privateKey: KeyObject, passphrase: string): string {
  const plain = privateKey.export({ type: 'pkcs8', format: 'der' });
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(passphrase, salt, PBKDF2_ITERATIONS, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  key.fill(0);
  plain.fill(0);
  const NULL = Buffer.from([0x05, 0x00]);
  const kdf = der(
    0x30,
    oid(OID.pbkdf2),
    der(
      0x30,
      der(0x04, salt),
      der(0x02, integer(PBKDF2_ITERATIONS)),
      der(0x02, integer(32)),
      der(0x30, oid(OID.hmacWithSha256), NULL),
    ),
  );
  const scheme = der(0x30, oid(OID.aes256Cbc), der(0x04, iv));
  const info = der(0x30, der(0x30, oid(OID.pbes2), der(0x30, kdf, scheme)), der(0x04, encrypted));
  const b64 = info.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${b64}-----END ENCRYPTED PRIVATE KEY-----\n`;
}

/** integer is the content of a DER INTEGER for a non-negative number. */
function integer(n: number): Buffer {
  const b = hexBytes(n);
  return (b[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
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
