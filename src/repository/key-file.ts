/**
 * How a private key file is protected, read from its PEM without the passphrase: so that a key
 * that loads but is weakly protected (a cheap KDF, or not encrypted though the operator meant it
 * to be) is named to the operator instead of being used silently.
 */

/**
 * PBKDF2 iterations for new encrypted keys (OWASP's figure for PBKDF2-HMAC-SHA256). node's own
 * export uses OpenSSL's default of 2,048, cheap to guess offline; scrypt with N ≥ 2^17 is over
 * the memory limit OpenSSL applies when it decrypts, so such keys would not load.
 */
export const PBKDF2_ITERATIONS = 600_000;

/** What protects a private key file. */
export interface KeyProtection {
  readonly encrypted: boolean;
  /** PBES2 with PBKDF2: its iteration count. */
  readonly pbkdf2Iterations?: number;
  /** An encryption other than PBES2 (PBES1, PKCS#12 PBE, OpenSSL's legacy `Proc-Type`). */
  readonly legacy?: boolean;
}

const PBES2 = '2a864886f70d01050d'; // 1.2.840.113549.1.5.13
const PBKDF2 = '2a864886f70d01050c'; // 1.2.840.113549.1.5.12

/** children splits DER content into its elements (tag and content); throws on a bad length. */
function children(b: Buffer): Array<{ tag: number; body: Buffer }> {
  const out: Array<{ tag: number; body: Buffer }> = [];
  let i = 0;
  while (i < b.length) {
    const tag = b[i] as number;
    let len = b[i + 1] as number;
    i += 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) throw new RangeError('DER length');
      len = b.readUIntBE(i, n);
      i += n;
    }
    if (i + len > b.length) throw new RangeError('DER length');
    out.push({ tag, body: b.subarray(i, i + len) });
    i += len;
  }
  return out;
}

/** keyProtection reads how a PEM private key is protected (undefined when it cannot tell). */
export function keyProtection(pem: string): KeyProtection | undefined {
  const enc = /-----BEGIN ENCRYPTED PRIVATE KEY-----([\s\S]+?)-----END/.exec(pem);
  if (enc === null) {
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) return undefined;
    // OpenSSL's traditional format encrypts with an MD5-based KDF of one iteration
    if (/^Proc-Type:\s*4,\s*ENCRYPTED/m.test(pem)) return { encrypted: true, legacy: true };
    return { encrypted: false };
  }
  try {
    const [info] = children(Buffer.from((enc[1] as string).replace(/\s+/g, ''), 'base64'));
    const [alg] = children(info?.body ?? Buffer.alloc(0));
    const [scheme, params] = children(alg?.body ?? Buffer.alloc(0));
    if (scheme?.body.toString('hex') !== PBES2) return { encrypted: true, legacy: true };
    const [kdf] = children(params?.body ?? Buffer.alloc(0));
    const [kdfOid, kdfParams] = children(kdf?.body ?? Buffer.alloc(0));
    if (kdfOid?.body.toString('hex') !== PBKDF2) return { encrypted: true };
    const iterations = children(kdfParams?.body ?? Buffer.alloc(0))[1];
    if (iterations?.tag !== 0x02 || iterations.body.length > 6) return { encrypted: true };
    return {
      encrypted: true,
      pbkdf2Iterations: iterations.body.readUIntBE(0, iterations.body.length),
    };
  } catch {
    return undefined;
  }
}

/**
 * keyFileWarnings says what is weak about a key file that loads: not encrypted though a
 * passphrase was given, PBKDF2 with fewer than {@link PBKDF2_ITERATIONS} iterations, or a legacy
 * encryption scheme. Empty when nothing is.
 */
export function keyFileWarnings(pem: string, passphrase: string | undefined): string[] {
  const p = keyProtection(pem);
  if (p === undefined) return [];
  if (!p.encrypted) {
    return passphrase
      ? [
          'the key file is not encrypted, though a passphrase was given: anyone who can read it holds the key',
        ]
      : [];
  }
  if (p.legacy) {
    return [
      'the key file is encrypted with a legacy scheme (not PBES2): its passphrase is cheap to guess offline',
    ];
  }
  if (p.pbkdf2Iterations !== undefined && p.pbkdf2Iterations < PBKDF2_ITERATIONS) {
    return [
      `the key file is encrypted with PBKDF2 at ${p.pbkdf2Iterations} iterations (fewer than ${PBKDF2_ITERATIONS.toLocaleString('en')}): its passphrase is cheap to guess offline`,
    ];
  }
  return [];
}
