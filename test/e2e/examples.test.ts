/**
 * The examples in examples/ are real code: each runs as a new Node process from the package
 * root (so `import 'tufa/…'` resolves to this package's own entry points, built in dist/), and
 * what it prints is checked. One `example(…)` per file (a server example starts, is asked over
 * loopback and is stopped in an `it` of its own, listed in `tested`); a file in examples/ that
 * no test runs fails.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRepository, KeyObjectSigner } from '../../src/repository/index.js';
import { OciSim } from '../support/oci-sim.js';
import { ROOT } from '../support/paths.js';
import { StaticServer } from '../support/static-server.js';

const tested: string[] = [];

const signer = () => new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);

/** get makes one GET on loopback: status, headers and body. */
function get(
  url: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** start runs an example until it prints its URL (at most 15 s). */
function start(
  file: string,
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'examples', file)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`${file} did not start: ${out}${err}`));
    }, 15_000);
    child.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited (${code}): ${out}${err}`));
    });
  });
}

/** Examples that need a real registry run in that registry's integration test. */
const RUN_ELSEWHERE: Record<string, string> = {
  'registry-proxy.mjs': 'test/integration/registry-proxy.test.ts',
};

/** example runs `examples/<file>` and hands what it printed to `check`. */
function example(file: string, what: string, check: (stdout: string) => void): void {
  tested.push(file);
  it(`${file}: ${what}`, () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'examples', file)], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stderr);
    check(r.stdout);
  });
}

describe('examples', function () {
  this.timeout(60_000);

  example(
    'memory-store.mjs',
    'the in-memory store and a fetcher over a Map refresh, fetch a verified target and refuse a tampered one',
    (out) => {
      assert.equal(
        out,
        'app/config.json: 16 bytes verified: {"replicas": 3}\n\n' +
          'tampered copy refused: LENGTH_OR_HASH_MISMATCH\n',
      );
    },
  );

  example(
    'sign-release.mjs',
    'a release signed by an asynchronous signer (a signing service stand-in), published and verified by the client',
    (out) => {
      assert.match(out, /^published \d+ files: .*timestamp\.json\n/m);
      assert.match(out, /verified app\/app-1\.2\.0\.tar\.gz: 23 bytes, sha256 [0-9a-f]{64}\n$/);
    },
  );

  tested.push('registry-handler.mjs');
  it('registry-handler.mjs: a node:http handler serves signed manifests only', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tufa-example-'));
    const sim = await OciSim.start();
    let tuf: StaticServer | undefined;
    let child: ChildProcess | undefined;
    try {
      const signed = sim.pushImage('demo/app', '1.0', [new TextEncoder().encode('layer one')]);
      sim.pushImage('demo/unsigned', '1.0', [new TextEncoder().encode('layer two')]);
      const moved = sim.pushImage('demo/moved', '1.0', [new TextEncoder().encode('layer three')]);
      const lie = sim.pushImage('demo/lie', '1.0', [new TextEncoder().encode('layer four')]);
      const repo = await buildRepository({
        root: { signers: [signer()] },
        targets: { signers: [signer()] },
        snapshot: { signers: [signer()] },
        timestamp: { signers: [signer()] },
        files: [
          { path: `${sim.host}/demo/app:1.0`, content: signed.bytes },
          // signed, but the registry's tag now names other bytes: the signed digest is asked for
          { path: `${sim.host}/demo/moved:1.0`, content: moved.bytes },
          { path: `${sim.host}/demo/lie:1.0`, content: lie.bytes },
        ],
        now: Date.now(),
      });
      sim.pushImage('demo/moved', '1.0', [new TextEncoder().encode('an attacker layer')]);
      tuf = await StaticServer.start(repo);
      writeFileSync(join(tmp, 'root.json'), repo.get('1.root.json') as Uint8Array);
      const ex = await start('registry-handler.mjs', {
        UPSTREAM: sim.host,
        METADATA_URL: tuf.url(''),
        ROOT: join(tmp, 'root.json'),
      });
      child = ex.child;

      const ok = await get(`${ex.url}/v2/demo/app/manifests/1.0`);
      assert.equal(ok.status, 200, ok.body.toString());
      assert.deepEqual(new Uint8Array(ok.body), signed.bytes);
      assert.equal(ok.headers['docker-content-digest'], signed.digest);

      const unsigned = await get(`${ex.url}/v2/demo/unsigned/manifests/1.0`);
      assert.equal(unsigned.status, 403);
      assert.match(unsigned.body.toString(), /DENIED.*UNSIGNED_IMAGE/);

      // the tag moved upstream: the handler still serves the signed bytes, asked by digest
      const m = await get(`${ex.url}/v2/demo/moved/manifests/1.0`);
      assert.equal(m.status, 200, m.body.toString());
      assert.deepEqual(new Uint8Array(m.body), moved.bytes);
      const byDigest = sim.requests.filter((r) => r.path.includes('/manifests/sha256:'));
      assert.ok(byDigest.length >= 2, 'manifests are asked for by the signed digest');
      assert.equal(
        sim.requests.filter((r) => /\/manifests\/1\.0$/.test(r.path)).length,
        0,
        'a tag is never asked for',
      );

      // a registry that answers the signed digest with other bytes: denied
      sim.intercept = (req, res) => {
        if (!req.url?.includes('/demo/lie/manifests/')) return false;
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        res.end('{"schemaVersion":2,"layers":[]}');
        return true;
      };
      const lying = await get(`${ex.url}/v2/demo/lie/manifests/1.0`);
      assert.equal(lying.status, 403);
      assert.match(lying.body.toString(), /DIGEST_MISMATCH/);
      const path = await get(`${ex.url}/v2/demo/app/blobs/${signed.digest}`);
      assert.equal(path.status, 403, 'only manifest reads are served');
    } finally {
      child?.kill('SIGTERM');
      await tuf?.close();
      await sim.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('every file in examples/ is run above or by the test named for it', () => {
    for (const [file, test] of Object.entries(RUN_ELSEWHERE)) {
      const source = readFileSync(join(ROOT, test), 'utf8');
      assert.ok(source.includes(`'${file}'`), `${test} does not run examples/${file}`);
    }
    assert.deepEqual(
      readdirSync(join(ROOT, 'examples')).sort(),
      [...tested, ...Object.keys(RUN_ELSEWHERE)].sort(),
    );
  });
});
