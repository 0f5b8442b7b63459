/**
 * attack-a: `tufa notary import` re-import (removals, rollback, refused tags), against a forged
 * notary collection served from 127.0.0.1, driving the real CLI.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ecdsaKey,
  type ForgedCollection,
  forgeCollection,
  forgeRoot,
  forgedCrawl,
  Openssl,
  type RootRoles,
  x509Key,
} from '../support/notary-forge.js';
import { TUFA_BIN as BIN } from '../support/paths.js';

const GUN = 'registry.example.com/team/app';

function tufa(args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const c = execFile(
      process.execPath,
      [BIN, ...args],
      { timeout: 60_000, env: { ...process.env, DOCKER_CONFIG: '/nonexistent' } },
      (e, stdout, stderr) =>
        ok({ code: e ? ((e as { code?: number }).code ?? 99) : 0, stdout, stderr }),
    );
    c.stdin?.end(input);
  });
}

describe('attack-a: notary import re-import', function () {
  this.timeout(120_000);
  let tmp: string;
  let server: Server;
  let url: string;
  let files = new Map<string, Uint8Array>();
  let keys: RootRoles;
  let roots: Uint8Array[];
  const ws = () => join(tmp, 'ws');

  const serveCollection = (c: ForgedCollection) => {
    files = forgedCrawl(url, GUN, c).files as Map<string, Uint8Array>;
  };
  const targetsOf = () => {
    const names: string[] = [];
    for (const f of readdirSync(ws(), { recursive: true }) as string[]) {
      if (!f.endsWith('targets.json')) continue;
      const j = JSON.parse(readFileSync(join(ws(), f), 'utf8'));
      if (j?.signed?.targets) names.push(...Object.keys(j.signed.targets));
    }
    return [...new Set(names)].sort();
  };
  const importWith = (cache: string, extra: string[] = []) =>
    tufa([
      'notary', 'import', GUN, '--server', url, '--tofu', '--cache-dir', join(tmp, cache),
      '--into', ws(), '--json', ...extra,
    ]);

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'attack-a-imp-'));
    server = createServer((req, res) => {
      const prefix = `/v2/${GUN}/_trust/tuf/`;
      const name = req.url?.startsWith(prefix) ? req.url.slice(prefix.length) : '';
      const b = files.get(name);
      if (b === undefined) {
        res.writeHead(404);
        return res.end();
      }
      res.end(Buffer.from(b));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const o = new Openssl(tmp);
    const leaf = o.cert({ cn: GUN, days: 3650 });
    keys = {
      root: [x509Key(leaf.pem, leaf.privateKey)],
      targets: [ecdsaKey()],
      snapshot: [ecdsaKey()],
      timestamp: [ecdsaKey()],
    };
    roots = [forgeRoot(1, keys)];
  });
  after(async () => {
    await new Promise<void>((ok) => server.close(() => ok()));
    rmSync(tmp, { recursive: true, force: true });
  });
  beforeEach(async () => {
    rmSync(ws(), { recursive: true, force: true });
    for (const c of readdirSync(tmp)) if (c.startsWith('c-')) rmSync(join(tmp, c), { recursive: true, force: true });
    const kd = join(tmp, 'keys');
    rmSync(kd, { recursive: true, force: true });
    mkdirSync(kd);
    const roles = ['root', 'targets', 'snapshot', 'timestamp'];
    for (const r of roles) {
      const g = await tufa(['key', 'generate', '--type', 'ed25519', '--out', join(kd, r)]);
      assert.equal(g.code, 0, g.stderr);
    }
    const i = await tufa([
      'repo', '--repo', ws(), 'init',
      ...roles.flatMap((r) => [`--${r}-key`, join(kd, `${r}.pub.json`)]),
    ]);
    assert.equal(i.code, 0, i.stderr);
  });

  const v1 = () => forgeCollection({ roots, keys, tags: { '1.0': 'one' }, versions: { timestamp: 1, snapshot: 1, targets: 1 } });
  const v2 = () => forgeCollection({ roots, keys, tags: { '1.0': 'one', '2.0': 'two' }, versions: { timestamp: 2, snapshot: 2, targets: 2 } });

  it('held: a rollback to an older targets version is refused with the same cache', async () => {
    serveCollection(v2());
    const a = await importWith('c-1');
    assert.equal(a.code, 0, a.stderr);
    assert.deepEqual(targetsOf(), [`${GUN}:1.0`, `${GUN}:2.0`]);
    serveCollection(v1());
    const b = await importWith('c-1');
    assert.notEqual(b.code, 0);
    assert.match(b.stderr + b.stdout, /ROLLBACK/);
    assert.deepEqual(targetsOf(), [`${GUN}:1.0`, `${GUN}:2.0`]);
  });

  it('WEAKNESS: a rollback served to a re-import with a fresh --cache-dir (ephemeral CI) removes tags the workspace already carried', async () => {
    serveCollection(v2());
    const a = await importWith('c-1');
    assert.equal(a.code, 0, a.stderr);
    serveCollection(v1()); // older, validly signed, unexpired
    const b = await importWith('c-2');
    assert.deepEqual(
      targetsOf(),
      [`${GUN}:1.0`, `${GUN}:2.0`],
      `the re-import rolled the workspace back (exit ${b.code}): ${b.stdout}`,
    );
  });

  it('WEAKNESS: the same server spelled with a trailing slash gets a fresh import cache (no rollback reference)', async () => {
    serveCollection(v2());
    assert.equal((await importWith('c-1')).code, 0);
    serveCollection(v1());
    const b = await tufa([
      'notary', 'import', GUN, '--server', `${url}/`, '--tofu', '--cache-dir', join(tmp, 'c-1'),
      '--into', ws(), '--json',
    ]);
    assert.deepEqual(targetsOf(), [`${GUN}:1.0`, `${GUN}:2.0`], `exit ${b.code}: ${b.stdout}`);
  });

  it('held: a server 404 on targets fails the import and leaves the workspace as it was', async () => {
    serveCollection(v2());
    assert.equal((await importWith('c-1')).code, 0);
    const before = targetsOf();
    const c = v2();
    serveCollection(c);
    for (const k of [...files.keys()]) if (k.startsWith('targets.')) files.delete(k);
    const b = await importWith('c-1');
    assert.notEqual(b.code, 0);
    assert.deepEqual(targetsOf(), before);
  });

  it('held: a refused tag exits 1, keeps the rest, and does not remove targets the import did not make', async () => {
    // a target added by other means under the GUN's prefix
    const f = join(tmp, 'other.bin');
    void f;
    serveCollection(forgeCollection({ roots, keys, tags: { '1.0': 'one', 'bad tag!': 'x' }, versions: { timestamp: 3, snapshot: 3, targets: 3 } }));
    const a = await importWith('c-1');
    assert.equal(a.code, 1, a.stdout + a.stderr);
    assert.deepEqual(targetsOf(), [`${GUN}:1.0`]);
  });
});
