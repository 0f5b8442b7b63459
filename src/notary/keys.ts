/**
 * Notary keys: key IDs over `{"keytype","keyval":{"private":null,"public"}}`, the signature
 * method each key type allows, X.509 root certificates (leaf, CN = GUN, validity, no SHA-1,
 * RSA ≥ 2048 bits) and trust pinning by key ID or CA.
 */
import { createHash, X509Certificate } from 'node:crypto';
import {
  base64ToBytes,
  bytesToBase64,
  type CryptoBackend,
  canonicalize,
  type KeyResolver,
  type PublicKeyMaterial,
  type Signature,
  type VerifyingKey,
} from '../core/index.js';
import type { NotaryKey } from './model.js';

/** notaryKeyId is Notary's key ID: hex SHA-256 of the canonical key object with `"private": null`. */
export function notaryKeyId(keytype: string, publicB64: string): string {
  const bytes = canonicalize({ keytype, keyval: { private: null, public: publicB64 } });
  return createHash('sha256').update(bytes).digest('hex');
}

/** certificates decodes an `*-x509` key: base64 of PEM text, a leaf-first chain. */
export function certificates(key: NotaryKey): X509Certificate[] {
  const pem = new TextDecoder().decode(base64ToBytes(key.public));
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/** spkiOf returns the DER SubjectPublicKeyInfo of a key (the certificate's key for `*-x509`). */
function spkiOf(key: NotaryKey): Uint8Array | undefined {
  if (key.keytype === 'ecdsa' || key.keytype === 'rsa') return base64ToBytes(key.public);
  if (key.keytype === 'ecdsa-x509' || key.keytype === 'rsa-x509') {
    const leaf = certificates(key)[0];
    return leaf && new Uint8Array(leaf.publicKey.export({ format: 'der', type: 'spki' }));
  }
  return undefined;
}

/**
 * canonicalKeyId is Notary's "canonical" ID of a certificate key: the ID of the bare public
 * key (`ecdsa`/`rsa` with its SPKI). Trust pins may name either this or the certificate's ID.
 */
export function canonicalKeyId(key: NotaryKey): string | undefined {
  if (key.keytype !== 'ecdsa-x509' && key.keytype !== 'rsa-x509') return undefined;
  const spki = spkiOf(key);
  return spki && notaryKeyId(key.keytype.replace('-x509', ''), bytesToBase64(spki));
}

/** materialFor maps a key and a signature method to verifiable key material, or undefined. */
export function materialFor(key: NotaryKey, method: string): PublicKeyMaterial | undefined {
  const t = key.keytype;
  if (t === 'ed25519') {
    const raw = base64ToBytes(key.public);
    return method === 'eddsa' && raw?.length === 32
      ? { algorithm: 'ed25519', bytes: raw }
      : undefined;
  }
  const spki = spkiOf(key);
  if (spki === undefined) return undefined;
  if ((t === 'ecdsa' || t === 'ecdsa-x509') && method === 'ecdsa') {
    // Notary's ECDSA signatures are raw r‖s (IEEE P1363), not DER
    return { algorithm: 'ecdsa-p256-sha256', bytes: spki, signatureEncoding: 'raw' };
  }
  if (t === 'rsa' || t === 'rsa-x509') {
    if (method === 'rsapss') return { algorithm: 'rsa-pss-sha256', bytes: spki };
    if (method === 'rsapkcs1v15') return { algorithm: 'rsa-pkcs1v15-sha256', bytes: spki };
  }
  return undefined;
}

/**
 * A key set that resolves (key ID, signature method) to a verifying key. A key whose listed ID
 * is not its real Notary ID is never used (notary rejects those too).
 */
export class NotaryKeyRing implements KeyResolver {
  private readonly cache = new Map<string, VerifyingKey | null>();

  constructor(
    private readonly keys: ReadonlyMap<string, NotaryKey>,
    private readonly backend: CryptoBackend,
    /** When given, only these key IDs may verify (e.g. root certificates that passed checks). */
    private readonly allowed?: ReadonlySet<string>,
  ) {}

  resolve(keyid: string, signature?: Signature): VerifyingKey | undefined {
    const method = (signature as { method?: string } | undefined)?.method ?? '';
    const id = `${keyid}\u0000${method}`;
    const hit = this.cache.get(id);
    if (hit !== undefined) return hit ?? undefined;
    let vk: VerifyingKey | null = null;
    const key = this.keys.get(keyid);
    if (
      key !== undefined &&
      (this.allowed === undefined || this.allowed.has(keyid)) &&
      notaryKeyId(key.keytype, key.public) === keyid
    ) {
      try {
        const m = materialFor(key, method);
        if (m !== undefined) vk = this.backend.importKey(m);
      } catch {
        vk = null;
      }
    }
    this.cache.set(id, vk);
    return vk ?? undefined;
  }
}

/** base64Signature decodes a Notary signature value. */
export const base64Signature = (s: Signature) => base64ToBytes(s.sig);

const SHA1_SIGNATURE_OIDS = new Set([
  '1.2.840.113549.1.1.5',
  '1.2.840.10045.4.1',
  '1.2.840.10040.4.3',
]);

/** signatureAlgorithmOid reads the outer signatureAlgorithm OID of a DER certificate. */
export function signatureAlgorithmOid(der: Uint8Array): string | undefined {
  let i = 0;
  const len = (): number => {
    const first = der[i++] as number;
    if (first < 0x80) return first;
    let n = 0;
    for (let k = 0; k < (first & 0x7f); k++) n = n * 256 + (der[i++] as number);
    return n;
  };
  if (der[i++] !== 0x30) return undefined; // Certificate SEQUENCE
  len();
  if (der[i++] !== 0x30) return undefined; // tbsCertificate SEQUENCE: skip it
  const tbs = len(); // (read before adding: len() moves i past the length bytes)
  i += tbs;
  if (der[i++] !== 0x30) return undefined; // signatureAlgorithm SEQUENCE
  len();
  if (der[i++] !== 0x06) return undefined; // OID
  const n = len();
  const bytes = der.subarray(i, i + n);
  const parts = [Math.floor((bytes[0] as number) / 40), (bytes[0] as number) % 40];
  let v = 0;
  for (const b of bytes.subarray(1)) {
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** What is wrong with a root certificate for a GUN, or undefined when it is usable. */
export function rootCertificateProblem(
  chain: X509Certificate[],
  gun: string,
  now: number,
  checkExpiry: boolean,
): string | undefined {
  const leaf = chain[0];
  if (leaf === undefined) return 'no certificate';
  if (leaf.ca) return 'the certificate is a CA, not a leaf';
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
  if (cn === undefined) return 'the certificate has no common name';
  if (!(cn === gun || (cn.endsWith('*') && gun.startsWith(cn.slice(0, -1))))) {
    return `the certificate is for ${JSON.stringify(cn)}, not ${JSON.stringify(gun)}`;
  }
  if (checkExpiry) {
    if (Date.parse(leaf.validFrom) > now + 86_400_000)
      return `the certificate is not valid before ${leaf.validFrom}`;
    if (now > Date.parse(leaf.validTo)) return `the certificate expired at ${leaf.validTo}`;
  }
  const oid = signatureAlgorithmOid(new Uint8Array(leaf.raw));
  if (oid === undefined || SHA1_SIGNATURE_OIDS.has(oid))
    return 'the certificate is signed with SHA-1 (or unreadable)';
  const key = leaf.publicKey;
  if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    return 'the certificate has an RSA key below 2048 bits';
  }
  return undefined;
}

/** chainsTo tells whether a leaf-first chain is issued, link by link, by one of the CAs. */
export function chainsTo(chain: X509Certificate[], cas: X509Certificate[]): boolean {
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i] as X509Certificate;
    if (cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) return true;
    const next = chain[i + 1];
    if (next === undefined || !next.ca || !cert.checkIssued(next) || !cert.verify(next.publicKey))
      return false;
  }
  return false;
}
