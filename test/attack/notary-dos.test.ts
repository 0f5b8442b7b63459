/**
 * Cost of --root-ca chain checks on attacker-shaped chains (event-loop blocking in the webhook).
 * Run: npx tsc -p tsconfig.json && npx mocha --timeout 120000 dist/test/attack/notary-dos.test.js
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotaryClient } from '../../src/notary/index.js';
import { NotaryFixtureFetcher } from '../support/notary-fixtures.js';
import { ecdsaKey, forgeClock, forgeCollection, forgedCrawl, forgeRoot, type RootRoles, x509Key } from '../support/notary-forge.js';

const GUN = 'registry.test/forged/app';
const tmp = () => mkdtempSync(join(tmpdir(), 'tufa-attack-'));

describe('attack: Notary CA chain cost', function () {
  this.timeout(300_000);
  it('F1. a chain [leaf, X, CA x N] under a pathlen:0 CA is refused in bounded time', async () => {
    const dir = tmp();
    const run = (a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe', timeout: 30_000 });
    const mk = (name: string, subj: string, ext: string, issuer?: string) => {
      const k = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      writeFileSync(join(dir, `${name}.key`), k.export({ format: 'pem', type: 'pkcs8' }) as string);
      writeFileSync(join(dir, `${name}.cnf`), `[v3]\n${ext}\n`);
      run(['req', '-new', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`]);
      run(['x509', '-req', '-in', `${name}.csr`, ...(issuer ? ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-set_serial', '7'] : ['-signkey', `${name}.key`]), '-days', '30', '-sha256', '-extfile', `${name}.cnf`, '-extensions', 'v3', '-out', `${name}.pem`]);
      return { pem: readFileSync(join(dir, `${name}.pem`), 'utf8'), key: k };
    };
    const ca = mk('ca', '/CN=Pinned CA', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign');
    const x = mk('x', '/CN=X', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign', 'ca');
    const leaf = mk('leaf', `/CN=${GUN.replace(/\//g, '\\/')}`, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature', 'x');
    const n = Math.floor((1024 * 1024 * 0.97) / (ca.pem.length * 1.34));
    const chain = leaf.pem + x.pem + ca.pem.repeat(n);
    const keys: RootRoles = { root: [x509Key(chain, leaf.key)], targets: [ecdsaKey()], snapshot: [ecdsaKey()], timestamp: [ecdsaKey()] };
    const c = forgeCollection({ roots: [forgeRoot(1, keys)], keys, tags: { latest: 'x' } });
    const f = new NotaryFixtureFetcher(forgedCrawl('https://notary.test', GUN, c));
    const client = new NotaryClient({ server: 'https://notary.test', gun: GUN, trust: { rootCa: ca.pem }, cacheDir: tmp(), fetcher: f, now: forgeClock(), onWarning: () => {} });
    const t0 = Date.now();
    const r = await client.refresh().then(() => undefined, (e: unknown) => e as Error);
    const ms = Date.now() - t0;
    console.log(`      chain of ${n + 2} certificates: ${ms} ms, ${r?.message.slice(0, 120)}`);
    assert.ok(r instanceof Error);
    assert.ok(ms < 5000, `blocked the event loop for ${ms} ms`);
  });
});
