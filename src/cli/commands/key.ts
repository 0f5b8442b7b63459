/**
 * `tufa key generate`: a new key pair; the private key file is written 0600 and never printed.
 * `tufa key reencrypt`: a key file rewritten with the strong KDF new keys get.
 */
import { lstat, readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../internal/index.js';
import {
  generateKey,
  KEY_TYPES,
  type KeyType,
  PBKDF2_ITERATIONS,
  publicKeyJson,
  reencryptKey,
} from '../../repository/index.js';
import type { Output } from '../output.js';

/** The environment variable holding a key passphrase (never a command-line argument). */
export const PASSPHRASE_ENV = 'TUFA_KEY_PASSPHRASE';

/** keyWarning is the line shown for a weakly protected key file that is used anyway. */
export function keyWarning(file: string, warning: string): string {
  return `tufa: warning: ${file}: ${warning}; re-encrypt it: TUFA_KEY_PASSPHRASE=… tufa key reencrypt --in ${file}`;
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
      await writeFile(o.out, k.privatePem, { mode: 0o600, flag: 'wx' });
      await writeFile(`${o.out}.pub.json`, publicKeyJson(k.publicKey), { mode: 0o644, flag: 'wx' });
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
    .action(async (o: { in: string }) => {
      const passphrase = process.env[PASSPHRASE_ENV] || undefined;
      if (passphrase === undefined) throw new RangeError(`key reencrypt: set $${PASSPHRASE_ENV}`);
      if (!(await lstat(o.in)).isFile()) throw new RangeError(`${o.in}: not a regular file`);
      const k = reencryptKey(await readFile(o.in, 'utf8'), passphrase);
      await writeFileAtomic(o.in, new TextEncoder().encode(k.privatePem), 0o600);
      out.line(`key ${k.publicKey.keyid}: ${o.in} re-encrypted (0600)`);
    });
}
