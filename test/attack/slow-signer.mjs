// An external signer for attack tests: reads the bytes, waits $2 ms (a slow KMS), optionally
// runs a hook command ($3, e.g. tufa on the same workspace), then prints an Ed25519/ECDSA
// signature in hex made with the PKCS#8 key file $1.
import { execSync } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
const [keyFile, delay = '0', hook] = process.argv.slice(2);
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
await new Promise((r) => setTimeout(r, Number(delay)));
if (hook) execSync(hook, { stdio: ['ignore', 'ignore', 'inherit'] });
const key = createPrivateKey(readFileSync(keyFile));
const data = Buffer.concat(chunks);
const sig = key.asymmetricKeyType === 'ed25519' ? sign(null, data, key) : sign('sha256', data, key);
process.stdout.write(sig.toString('hex'));
