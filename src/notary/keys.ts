/**
 * Notary keys: key IDs over `{"keytype","keyval":{"private":null,"public"}}`, the signature
 * method each key type allows, X.509 root certificates (leaf, CN = GUN, validity, no SHA-1,
 * RSA ≥ 2048 bits) and trust pinning by key ID or CA.
 */
import { X509Certificate } from 'node:crypto';
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
import { sha256Hex } from '../crypto/index.js';
import type { NotaryKey } from './model.js';

/** notaryKeyId is Notary's key ID: hex SHA-256 of the canonical key object with `"private": null`. */
export function notaryKeyId(keytype: string, publicB64: string): string {
  const bytes = canonicalize({ keytype, keyval: { private: null, public: publicB64 } });
  return sha256Hex(bytes);
}

/**
 * The most certificates a root key's chain may hold (leaf, intermediates): checking a chain
 * costs a signature check per link, and notary's own chains are a leaf and one or two CAs.
 */
export const MAX_CHAIN = 10;

/**
 * certificates decodes an `*-x509` key: base64 of PEM text, a leaf-first chain of at most
 * {@link MAX_CHAIN} certificates (a longer one throws, before any certificate is parsed).
 */
export function certificates(key: NotaryKey): X509Certificate[] {
  const pem = new TextDecoder().decode(base64ToBytes(key.public));
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length > MAX_CHAIN)
    throw new RangeError(
      `the key holds ${blocks.length} certificates, more than the ${MAX_CHAIN} a chain may have`,
    );
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
  return oidText(der.subarray(i, i + n));
}

/**
 * cnMatchesGun is notary's rule for a root leaf's CN, exactly as notary v0.7.0 applies it
 * (theupdateframework/notary `trustpinning/certs.go`: `validRootLeafCerts` calls `MatchCNToGun`,
 * present in the notary 0.7.0 binary installed here): the CN equals the GUN, or ends in `*` and,
 * with every trailing `*` removed (`strings.TrimRight`), is a prefix of the GUN. So notary itself
 * lets a certificate with CN `*` be a root for any GUN: what limits it is the trust pin (pinned
 * certificate IDs, or a CA trusted for this GUN, which could as well issue CN = GUN). The
 * wildcard of notary's trust-pinning config (`certs` keys ending in `*`, `ca` keyed by prefix) is
 * a separate rule, for choosing the pin; tufa's pins are given per client (per GUN). tufa is
 * stricter in one point: the part before the `*` must name a registry and a path (contain `/`).
 */
export function cnMatchesGun(cn: string, gun: string): boolean {
  if (cn.endsWith('*')) {
    const prefix = cn.replace(/\*+$/, '');
    // Stricter than notary: a CN of only `*` would be a root for every GUN the pin covers;
    // a wildcard must at least name its registry (`registry.example/team/*`).
    return prefix.includes('/') && gun.startsWith(prefix);
  }
  return cn === gun;
}

/**
 * What is wrong with a root certificate chain for a GUN, or undefined when it is usable: the
 * leaf's own checks, and no certificate of the chain with a critical extension tufa does not
 * process (RFC 5280 4.2).
 */
export function rootCertificateProblem(
  chain: X509Certificate[],
  gun: string,
  now: number,
  checkExpiry: boolean,
): string | undefined {
  const leaf = chain[0];
  if (leaf === undefined) return 'no certificate';
  if (chain.length > MAX_CHAIN)
    return `the chain has ${chain.length} certificates, more than ${MAX_CHAIN}`;
  if (leaf.ca) return 'the certificate is a CA, not a leaf';
  for (const cert of chain) {
    const p = criticalProblem(cert);
    if (p !== undefined) return p;
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
  if (cn === undefined) return 'the certificate has no common name';
  if (!cnMatchesGun(cn, gun)) {
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

/** One DER element: its tag and where its content starts and ends. */
interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/** tlvAt reads the DER element at `at` (definite lengths only); undefined when malformed. */
function tlvAt(der: Uint8Array, at: number, limit = der.length): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = der[at] as number;
  let i = at + 1;
  let len = der[i++] as number;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || i + n > limit) return undefined;
    len = 0;
    for (let k = 0; k < n; k++) len = len * 256 + (der[i++] as number);
  }
  return i + len > limit ? undefined : { tag, start: i, end: i + len };
}

/** childrenOf lists the elements inside a constructed element. */
function childrenOf(der: Uint8Array, parent: Tlv): Tlv[] | undefined {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const c = tlvAt(der, at, parent.end);
    if (c === undefined) return undefined;
    out.push(c);
    at = c.end;
  }
  return out;
}

/** What a certificate may do as an issuer, from its extensions (RFC 5280 4.2.1.3, 4.2.1.9). */
export interface IssuerExtensions {
  /** basicConstraints cA. */
  readonly ca: boolean;
  /** basicConstraints pathLenConstraint, when present. */
  readonly pathLen?: number;
  /** keyUsage keyCertSign; undefined when the certificate has no keyUsage extension. */
  readonly keyCertSign?: boolean;
  /** OIDs (dotted) of the critical extensions tufa does not process. */
  readonly unhandledCritical: readonly string[];
}

const OID_BASIC_CONSTRAINTS = '551d13';
const OID_KEY_USAGE = '551d0f';

/** issuerExtensions reads basicConstraints and keyUsage; undefined when the DER is unreadable. */
export function issuerExtensions(cert: X509Certificate): IssuerExtensions | undefined {
  const der = new Uint8Array(cert.raw);
  const top = tlvAt(der, 0);
  const tbs = top && childrenOf(der, top)?.[0];
  const fields = tbs && childrenOf(der, tbs);
  if (fields === undefined) return undefined;
  let ca = false;
  let pathLen: number | undefined;
  let keyCertSign: boolean | undefined;
  const unhandledCritical: string[] = [];
  const exts = fields.find((f) => f.tag === 0xa3); // [3] EXPLICIT Extensions
  const list = exts && childrenOf(der, exts)?.[0];
  for (const ext of (list && childrenOf(der, list)) ?? []) {
    const parts = childrenOf(der, ext);
    const oid = parts?.[0];
    const value = parts?.[parts.length - 1];
    if (oid?.tag !== 0x06 || value?.tag !== 0x04) return undefined;
    const id = Buffer.from(der.subarray(oid.start, oid.end)).toString('hex');
    // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }
    const flag = parts?.length === 3 ? parts[1] : undefined;
    if (parts?.length === 3 && flag?.tag !== 0x01) return undefined;
    const critical = flag !== undefined && der[flag.start] !== 0;
    if (critical && id !== OID_BASIC_CONSTRAINTS && id !== OID_KEY_USAGE)
      unhandledCritical.push(oidText(der.subarray(oid.start, oid.end)));
    const inner = tlvAt(der, value.start, value.end);
    if (id === OID_BASIC_CONSTRAINTS) {
      const items = inner?.tag === 0x30 ? childrenOf(der, inner) : undefined;
      if (items === undefined) return undefined;
      for (const item of items) {
        if (item.tag === 0x01) ca = der[item.start] !== 0;
        else if (item.tag === 0x02 && item.end - item.start <= 4) {
          pathLen = 0;
          for (let k = item.start; k < item.end; k++) pathLen = pathLen * 256 + (der[k] as number);
        }
      }
    } else if (id === OID_KEY_USAGE) {
      if (inner?.tag !== 0x03 || inner.end - inner.start < 1) return undefined;
      // BIT STRING: unused-bits byte, then bit 0 (digitalSignature) as the MSB; keyCertSign is bit 5
      keyCertSign = ((der[inner.start + 1] ?? 0) & 0x04) !== 0;
    }
  }
  return {
    ca,
    ...(pathLen === undefined ? {} : { pathLen }),
    ...(keyCertSign === undefined ? {} : { keyCertSign }),
    unhandledCritical,
  };
}

/** oidText is the dotted form of an OID's content octets. */
function oidText(bytes: Uint8Array): string {
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

/**
 * criticalProblem refuses a certificate with a critical extension tufa does not process
 * (nameConstraints, policyConstraints, …): RFC 5280 4.2 says such a certificate must be
 * rejected. tufa processes basicConstraints and keyUsage.
 */
function criticalProblem(cert: X509Certificate): string | undefined {
  const ext = issuerExtensions(cert);
  const name = JSON.stringify(commonName(cert));
  if (ext === undefined) return `${name}: the certificate's extensions are unreadable`;
  if (ext.unhandledCritical.length > 0)
    return `${name} has critical extensions tufa does not process (${ext.unhandledCritical.join(', ')})`;
  return undefined;
}

/** commonName is a certificate's subject CN (or its whole subject), for messages. */
function commonName(cert: X509Certificate): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? cert.subject.replace(/\n/g, ', ');
}

/**
 * caProblem says why a certificate cannot issue certificates at `now`, or undefined when it
 * can: basicConstraints cA, keyUsage keyCertSign when keyUsage is present, the validity dates.
 */
export function caProblem(cert: X509Certificate, now: number): string | undefined {
  const name = JSON.stringify(commonName(cert));
  const ext = issuerExtensions(cert);
  if (ext === undefined) return `${name}: the certificate's extensions are unreadable`;
  const critical = criticalProblem(cert);
  if (critical !== undefined) return critical;
  if (!ext.ca) return `${name} is not a CA (basicConstraints cA is not set)`;
  if (ext.keyCertSign === false)
    return `${name} may not sign certificates (its keyUsage lacks keyCertSign)`;
  // OpenSSL's own view (X509_check_ca) must agree
  if (!cert.ca) return `${name} is not a CA`;
  if (now < Date.parse(cert.validFrom)) return `${name} is not valid before ${cert.validFrom}`;
  if (now > Date.parse(cert.validTo)) return `${name} expired at ${cert.validTo}`;
  return undefined;
}

/**
 * chainProblem tells why a leaf-first chain is not issued, link by link, by one of the CAs
 * through valid, constrained issuers at `now` (RFC 5280 6.1.3-6.1.4: each issuer a valid CA at
 * `now` allowed to sign certificates, no more intermediate CAs below one than its
 * pathLenConstraint allows); undefined when it is. (The leaf's own checks are
 * {@link rootCertificateProblem}'s.) At most {@link MAX_CHAIN} certificates; each link's
 * signature and each issuer's own checks are computed once.
 */
export function chainProblem(
  chain: readonly X509Certificate[],
  cas: readonly X509Certificate[],
  now: number,
): string | undefined {
  if (chain.length > MAX_CHAIN)
    return `the chain has ${chain.length} certificates, more than ${MAX_CHAIN}`;
  // a link is the issuer's name and signature; what the issuer may do is checked below
  // (checkIssued would refuse a keyUsage without keyCertSign without saying so)
  const issuedBy = (cert: X509Certificate, issuer: X509Certificate) =>
    cert.issuer === issuer.subject && cert.verify(issuer.publicKey);
  const checked = new Map<X509Certificate, { problem?: string; pathLen?: number }>();
  const issuerCheck = (cert: X509Certificate) => {
    let c = checked.get(cert);
    if (c === undefined) {
      const problem = caProblem(cert, now);
      const pathLen = issuerExtensions(cert)?.pathLen;
      c = {
        ...(problem === undefined ? {} : { problem }),
        ...(pathLen === undefined ? {} : { pathLen }),
      };
      checked.set(cert, c);
    }
    return c;
  };
  // issuers of a path, the leaf's own issuer first and the trust anchor last
  const issuersProblem = (issuers: readonly X509Certificate[]): string | undefined => {
    for (const [below, cert] of issuers.entries()) {
      const { problem, pathLen } = issuerCheck(cert);
      if (problem !== undefined) return problem;
      if (pathLen !== undefined && below > pathLen) {
        return `${JSON.stringify(commonName(cert))} allows ${pathLen} intermediate CAs below it, the chain has ${below}`;
      }
    }
    return undefined;
  };
  let problem: string | undefined;
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i] as X509Certificate;
    for (const ca of cas) {
      if (!issuedBy(cert, ca)) continue;
      problem = issuersProblem([...chain.slice(1, i + 1), ca]);
      if (problem === undefined) return undefined;
    }
    const next = chain[i + 1];
    if (next === undefined || !issuedBy(cert, next)) break;
    // an intermediate that cannot issue ends the walk: no path through it can verify
    const p = issuerCheck(next).problem;
    if (p !== undefined) return problem ?? p;
  }
  return problem ?? 'the certificate does not chain to a pinned CA';
}
