/**
 * Signers: anything that can sign canonical bytes for a key ID. The interface is async so that
 * KMS/HSM signers plug in; {@link KeyObjectSigner} signs with a private key held in memory.
 * A signer never exposes or logs private material.
 */
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { base64ToBytes, computeKeyId, hexToBytes, Key } from '../core/index.js';
import { nodeBackend } from '../crypto/index.js';
import { childEnvironment, killGroup, NEVER_CHILD_ENV } from '../internal/index.js';
import { keyFileWarnings } from './key-file.js';

/** Signs bytes as one key. */
export interface Signer {
  /** The key ID the signature is filed under. */
  readonly keyid: string;
  /** The public key, in TUF form. */
  readonly publicKey: Key;
  /** sign returns the raw signature over `data` (the canonical bytes of `signed`). */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** publicKeyOf returns the TUF form of a public key (Ed25519, ECDSA P-256 or RSA-PSS). */
export function publicKeyOf(key: KeyObject): Key {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const make = (keytype: string, scheme: string, value: string) =>
    new Key('', keytype, scheme, { public: value });
  let k: Key;
  if (pub.asymmetricKeyType === 'ed25519') {
    const raw = pub.export({ format: 'der', type: 'spki' }).subarray(12).toString('hex');
    k = make('ed25519', 'ed25519', raw);
  } else if (
    pub.asymmetricKeyType === 'ec' &&
    pub.asymmetricKeyDetails?.namedCurve === 'prime256v1'
  ) {
    k = make(
      'ecdsa',
      'ecdsa-sha2-nistp256',
      pub.export({ format: 'pem', type: 'spki' }).toString(),
    );
  } else if (pub.asymmetricKeyType === 'rsa') {
    k = make('rsa', 'rsassa-pss-sha256', pub.export({ format: 'pem', type: 'spki' }).toString());
  } else {
    throw new RangeError(
      `unsupported key type ${pub.asymmetricKeyType ?? 'unknown'}: expected Ed25519, ECDSA P-256 or RSA`,
    );
  }
  const keyid = computeKeyId(k, nodeBackend);
  return new Key(keyid, k.keytype, k.scheme, k.keyval);
}

/** Signs with a private key held in memory. */
export class KeyObjectSigner implements Signer {
  readonly keyid: string;
  readonly publicKey: Key;
  readonly #key: KeyObject;

  constructor(privateKey: KeyObject) {
    if (privateKey.type !== 'private') throw new TypeError('privateKey: expected a private key');
    this.#key = privateKey;
    this.publicKey = publicKeyOf(privateKey);
    this.keyid = this.publicKey.keyid;
  }

  /**
   * fromPem reads a PKCS#8 PEM private key, optionally encrypted. A key that loads but is weakly
   * protected (see {@link keyFileWarnings}) is used, and `onWarning` told why (this library
   * prints nothing; a CLI shows it).
   * @param passphrase - for an encrypted key (take it from the environment, never from argv)
   */
  static fromPem(
    pem: string | Uint8Array,
    passphrase?: string,
    options: { onWarning?: (message: string) => void } = {},
  ): KeyObjectSigner {
    let key: KeyObject;
    try {
      key = createPrivateKey({
        key: typeof pem === 'string' ? pem : Buffer.from(pem),
        format: 'pem',
        ...(passphrase === undefined ? {} : { passphrase }),
      });
    } catch (cause) {
      // The message of node's error is kept out: it never contains key material, but say less.
      throw new RangeError('private key: not a readable PKCS#8 PEM key (or wrong passphrase)', {
        cause,
      });
    }
    const text = typeof pem === 'string' ? pem : Buffer.from(pem).toString('utf8');
    for (const w of keyFileWarnings(text, passphrase)) options.onWarning?.(w);
    return new KeyObjectSigner(key);
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    const t = this.publicKey.keytype;
    if (t === 'ed25519') return new Uint8Array(sign(null, data, this.#key));
    if (t === 'ecdsa') return new Uint8Array(sign('sha256', data, this.#key));
    // RSASSA-PSS with SHA-256 and a 32-byte salt (securesystemslib's choice)
    return new Uint8Array(sign('sha256', data, { key: this.#key, padding: 6, saltLength: 32 }));
  }

  /** Never print private material, not even by accident. */
  toJSON(): object {
    return { keyid: this.keyid };
  }
}

/**
 * signerEnvironment picks from `env` what a signer command gets: PATH, HOME, USER, LOGNAME,
 * LANG, LANGUAGE, LC_*, TZ, TMPDIR, TERM, SSL_CERT_FILE, SSL_CERT_DIR, plus the variables
 * named in `pass` (a name, or a prefix ending with `*`, e.g. `AWS_*`). Nothing else of the
 * caller's environment (CI tokens, other secrets) reaches the command, and
 * `TUFA_KEY_PASSPHRASE` never does.
 * @throws {@link RangeError} for a malformed name, or one that would pass TUFA_KEY_PASSPHRASE
 */
export function signerEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  pass: readonly string[] = [],
): Record<string, string> {
  const matchers = pass.map((p) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*\*?$/.test(p)) {
      throw new RangeError(
        `signer environment: expected a variable name or a prefix ending with *, got ${JSON.stringify(p)}`,
      );
    }
    const test = p.endsWith('*')
      ? (name: string) => name.startsWith(p.slice(0, -1))
      : (name: string) => name === p;
    if (test(NEVER_CHILD_ENV)) {
      throw new RangeError(
        `signer environment: ${p} would pass ${NEVER_CHILD_ENV}, which is never given to a signer command`,
      );
    }
    return test;
  });
  return childEnvironment(env, (name) => matchers.some((m) => m(name)));
}

/**
 * Signs by running an external command (a KMS or HSM client): the canonical bytes go to its
 * standard input, and it prints the signature (hex or base64) on standard output. The command
 * is run by /bin/sh; it comes from the operator's configuration, never from metadata. It gets
 * exactly the environment `env` (default: none; build one with {@link signerEnvironment}),
 * never this process's: the passphrase of a key file or a CI token stays out of its reach.
 */
export class ExternalCommandSigner implements Signer {
  readonly keyid: string;

  constructor(
    readonly command: string,
    readonly publicKey: Key,
    readonly timeoutMs = 60_000,
    private readonly env: Readonly<Record<string, string>> = {},
  ) {
    this.keyid = publicKey.keyid;
  }

  sign(data: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      // Its own process group, so a timeout stops the command and everything it started.
      const child = spawn('/bin/sh', ['-c', this.command], {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        env: { ...this.env },
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let settled = false;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      };
      const timer = setTimeout(() => {
        killGroup(child);
        finish(() => reject(new Error(`signer command timed out after ${this.timeoutMs} ms`)));
      }, this.timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) =>
        finish(() => reject(new Error(`signer command failed to start: ${e.message}`))),
      );
      child.on('close', (code, signal) => {
        finish(() => {
          if (code !== 0) {
            const tail = Buffer.concat(err).toString('utf8').trim().slice(-500);
            reject(
              new Error(`signer command exited with ${signal ?? code}${tail ? `: ${tail}` : ''}`),
            );
            return;
          }
          const text = Buffer.concat(out).toString('utf8').trim();
          const sig = /^[0-9a-fA-F]+$/.test(text) ? hexToBytes(text) : base64ToBytes(text);
          if (sig === undefined || sig.length === 0) {
            reject(new Error('signer command printed no hex or base64 signature'));
            return;
          }
          resolve(sig);
        });
      });
      child.stdin.on('error', () => undefined); // the command may exit without reading
      child.stdin.end(data);
    });
  }
}
