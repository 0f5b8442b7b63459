/** `tufa key generate`: a new key pair; the private key file is written 0600 and never printed. */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { generateKey, KEY_TYPES, type KeyType, publicKeyJson } from '../../repository/index.js';
import type { Output } from '../output.js';

/** The environment variable holding a key passphrase (never a command-line argument). */
export const PASSPHRASE_ENV = 'TUFA_KEY_PASSPHRASE';

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
}
