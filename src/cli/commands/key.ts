/**
 * `tufa key generate`: a new key pair; the private key file is written 0600 and never printed.
 * `tufa key reencrypt`: a key file rewritten with the strong KDF new keys get.
 */
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../internal/index.js';
import {
  generateKey,
  KEY_TYPES,
  KeyObjectSigner,
  type KeyType,
  PBKDF2_ITERATIONS,
  publicKeyJson,
  reencryptKey,
} from '../../repository/index.js';
import { checkRegularFile, createFlagFile, flagError, readFlagText, UsageError } from '../flags.js';
import type { Output } from '../output.js';

/** The environment variable holding a key passphrase (never a command-line argument). */
export const PASSPHRASE_ENV = 'TUFA_KEY_PASSPHRASE';

/** keyWarning is the line shown for a weakly protected key file that is used anyway. */
export function keyWarning(file: string, warning: string): string {
  return `tufa: warning: ${file}: ${warning}; re-encrypt it: TUFA_KEY_PASSPHRASE=… tufa key reencrypt --in ${file}`;
}

export const INSECURE_KEY_FLAG = '--insecure-key-permissions';

/**
 * readPrivateKey reads the private key file a flag names, as ssh does: refused when group or
 * others may read it or another user owns it (unless `insecure`), and an encrypted key without the passphrase says so.
 * @throws {@link UsageError} naming the flag and the file
 */
export async function readPrivateKey(
  flag: string,
  file: string,
  insecure: boolean,
): Promise<{ pem: string; passphrase: string | undefined }> {
  await checkRegularFile(flag, file);
  const st = await stat(file);
  const mode = st.mode & 0o777;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0 && !insecure) {
    throw flagError(
      flag,
      file,
      `permissions 0${mode.toString(8)} are too open: a private key must be readable by its owner only (chmod 600 ${file}; or ${INSECURE_KEY_FLAG})`,
    );
  }
  // as ssh: a key owned by another user is that user's to read and replace
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid && !insecure) {
    throw flagError(
      flag,
      file,
      `owned by uid ${st.uid}, not by you (uid ${uid}): another user can read and replace this private key (chown it; or ${INSECURE_KEY_FLAG})`,
    );
  }
  const pem = await readFlagText(flag, file);
  const passphrase = process.env[PASSPHRASE_ENV] || undefined;
  if (passphrase === undefined && pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) {
    throw flagError(flag, file, `the key is encrypted: set $${PASSPHRASE_ENV} to its passphrase`);
  }
  return { pem, passphrase };
}

/** signerFromKeyFile is the signer of the private key file a flag names. @throws {@link UsageError} */
export async function signerFromKeyFile(
  flag: string,
  file: string,
  insecure: boolean,
  out: Output,
): Promise<KeyObjectSigner> {
  const { pem, passphrase } = await readPrivateKey(flag, file, insecure);
  try {
    return KeyObjectSigner.fromPem(pem, passphrase, {
      onWarning: (w) => out.error(keyWarning(file, w)),
    });
  } catch (e) {
    throw flagError(flag, file, (e as Error).message.replace(/^private key: /, ''));
  }
}

export function addKeyCommands(program: Command, out: Output): void {
  const key = program.command('key').description('signing keys');
  key
    .command('generate')
    .description(
      `generate a key pair: NAME (private, 0600; encrypted when $${PASSPHRASE_ENV} is set) and NAME.pub.json`,
    )
    .requiredOption('--type <type>', `key type: ${KEY_TYPES.join(', ')}`)
    .requiredOption('--out <name>', 'private key file to create')
    .action(async (o: { type: string; out: string }) => {
      if (!(KEY_TYPES as readonly string[]).includes(o.type)) {
        throw new RangeError(`--type: expected one of ${KEY_TYPES.join(', ')}, got ${o.type}`);
      }
      const passphrase = process.env[PASSPHRASE_ENV] || undefined;
      const k = generateKey(o.type as KeyType, passphrase);
      // wx: never overwrite an existing key; 0600 from creation on
      await createFlagFile('--out', o.out, k.privatePem, 0o600);
      await createFlagFile('--out', `${o.out}.pub.json`, publicKeyJson(k.publicKey), 0o644);
      out.line(`key ${k.publicKey.keyid} (${o.type})`);
      out.line(`  private: ${o.out} (0600${passphrase ? ', encrypted' : ', NOT encrypted'})`);
      out.line(`  public:  ${o.out}.pub.json`);
    });
  key
    .command('reencrypt')
    .description(
      `rewrite a private key file (0600, in place, atomically) encrypted with $${PASSPHRASE_ENV}: PBKDF2-HMAC-SHA256, ${PBKDF2_ITERATIONS.toLocaleString('en')} iterations, AES-256-CBC`,
    )
    .requiredOption(
      '--in <file>',
      'private key file (not encrypted, or encrypted with the passphrase)',
    )
    .option(INSECURE_KEY_FLAG, 'use a key file that group or others may read', false)
    .action(async (o: { in: string; insecureKeyPermissions: boolean }) => {
      const passphrase = process.env[PASSPHRASE_ENV] || undefined;
      if (passphrase === undefined) throw new UsageError(`key reencrypt: set $${PASSPHRASE_ENV}`);
      const { pem } = await readPrivateKey('--in', o.in, o.insecureKeyPermissions);
      let k: ReturnType<typeof reencryptKey>;
      try {
        k = reencryptKey(pem, passphrase);
      } catch (e) {
        throw flagError('--in', o.in, (e as Error).message.replace(/^private key: /, ''));
      }
      await writeFileAtomic(o.in, new TextEncoder().encode(k.privatePem), 0o600);
      out.line(`key ${k.publicKey.keyid}: ${o.in} re-encrypted (0600)`);
    });
}
