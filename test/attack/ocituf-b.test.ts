/**
 * Attacks (attack-b) on TUF repositories in a registry: RegistryFetcher / TufRegistryReader,
 * pushTufRepository, the oci:// URL parser, and the CLI's messages for hostile registry strings.
 * A test that FAILS demonstrates a break (it asserts the secure behaviour).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initMetadataDir, RegistryFetcher, Updater } from '../../src/client/index.js';
import {
  parseOciRepository,
  parseOciUrl,
  pushTufRepository,
  RegistryClient,
  StaticCredentials,
  TUF_FILENAME_ANNOTATION,
} from '../../src/oci/index.js';
import { RepositorySimulator } from '../sim/repository-simulator.js';
import { OciSim, sha256 } from '../support/oci-sim.js';
import { NOW, SimRepo } from '../support/tuf-builder.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function tree(sim: RepositorySimulator): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [rel, bytes] of sim.files) if (rel.startsWith('targets/')) out.set(rel, bytes);
  for (const [rel, bytes] of sim.files)
    if (rel.startsWith('metadata/')) out.set(rel.slice('metadata/'.length), bytes);
  return out;
}

function fixture(): RepositorySimulator {
  const repo = new SimRepo();
  repo.delegate('targets', 'team', { paths: ['team/*'] });
  const sim = new RepositorySimulator(repo);
  sim.addTargetFile('top.txt', enc('top level'));
  sim.addTargetFile('team/app.conf', enc('delegated'), 'team');
  sim.publish();
  return sim;
}

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}
interface Manifest {
  mediaType: string;
  layers: Layer[];
}

describe('attack-b: TUF in OCI registries', () => {
  let reg: OciSim;
  let client: RegistryClient;
  const tmp: string[] = [];
  let meta: string;
  let targets: string;

  beforeEach(async () => {
    reg = await OciSim.start();
    client = new RegistryClient({ timeoutMs: 5000 });
    meta = `oci://${reg.host}/tuf/meta:latest/`;
    targets = `oci://${reg.host}/tuf/targets/`;
  });
  afterEach(async () => {
    reg.intercept = undefined;
    await client.close();
    await reg.close();
  });
  after(() => {
    for (const d of tmp) rmSync(d, { recursive: true, force: true });
  });

  function dir(): string {
    const d = mkdtempSync(join(tmpdir(), 'tufa-attack-b-'));
    tmp.push(d);
    return d;
  }

  it('ATTACK cache poisoning: one forged metadata-image answer must not break every later refresh (transient attacker -> permanent DoS of a long-lived verifier)', async () => {
    const sim = fixture();
    await pushTufRepository(client, tree(sim), parseOciUrl(meta), parseOciRepository(targets));
    const md = join(dir(), 'md');
    await initMetadataDir(md, sim.repo.rootBytes(1));
    // one fetcher for the process lifetime, as ImageVerifier (admission webhook) keeps it
    const fetcher = new RegistryFetcher(client, { targetBaseUrl: targets });
    const refresh = async () => {
      const u = new Updater({ metadataDir: md, metadataBaseUrl: meta, fetcher, now: () => NOW });
      try {
        await u.refresh();
      } finally {
        await u.close();
      }
    };
    await refresh();

    // the attacker answers ONE manifest GET (the one for timestamp.json): the real image plus a
    // layer claiming to be the next root version (its blob does not even exist)
    const legit = reg.manifest('tuf/meta', 'latest');
    assert.ok(legit);
    const m = JSON.parse(dec(legit.bytes)) as Manifest;
    const poisoned = enc(
      JSON.stringify({
        ...m,
        layers: [
          ...m.layers,
          {
            mediaType: 'application/vnd.tuf.metadata+json',
            digest: sha256(enc('nothing')),
            size: 7,
            annotations: { [TUF_FILENAME_ANNOTATION]: '2.root.json' },
          },
        ],
      }),
    );
    let gets = 0;
    reg.intercept = (req, res) => {
      if (req.method !== 'GET' || !req.url?.endsWith('/tuf/meta/manifests/latest')) return false;
      gets++;
      if (gets !== 2) return false; // the root-chain GET is honest, the timestamp GET is not
      res.writeHead(200, {
        'content-type': m.mediaType,
        'content-length': String(poisoned.length),
      });
      res.end(poisoned);
      return true;
    };
    await refresh(); // succeeds: nobody notices the attack
    reg.intercept = undefined;

    // the attacker is gone: the registry is honest again, nothing was published meanwhile
    for (let i = 0; i < 3; i++) {
      await refresh().catch((e: Error) => {
        assert.fail(`refresh ${i + 1} after the attack ended fails: ${e.message}`);
      });
    }
  });

  it('ATTACK layout collision: --targets-to the same repository as the metadata image (a role image overwrites the target index of its own folder)', async () => {
    const sim = fixture();
    const same = `oci://${reg.host}/tuf/meta/`;
    let refused = false;
    try {
      await pushTufRepository(client, tree(sim), parseOciUrl(meta), parseOciRepository(same));
    } catch {
      refused = true;
    }
    if (refused) return; // refusing the collision is the secure answer
    const d = dir();
    await initMetadataDir(join(d, 'md'), sim.repo.rootBytes(1));
    const u = new Updater({
      metadataDir: join(d, 'md'),
      metadataBaseUrl: meta,
      targetDir: join(d, 't'),
      targetBaseUrl: same,
      fetcher: new RegistryFetcher(client, { targetBaseUrl: same }),
      now: () => NOW,
    });
    try {
      await u.refresh();
      const info = await u.getTargetInfo('team/app.conf');
      assert.ok(info);
      // publish said it succeeded: the target it pushed must be downloadable
      await u.downloadTarget(info);
    } finally {
      await u.close();
    }
  });

  it('held? a blob GET redirected to another origin does not carry the registry credentials', async () => {
    await reg.close();
    reg = await OciSim.start({ auth: { kind: 'basic', username: 'u', password: 'secret-pw' } });
    meta = `oci://${reg.host}/tuf/meta:v1/`;
    const seen: IncomingHttpHeaders[] = [];
    const other = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-length': '3' });
      res.end('xyz');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const port = (other.address() as AddressInfo).port;
    const authed = new RegistryClient({
      timeoutMs: 3000,
      credentials: new StaticCredentials(
        new Map([[reg.host, { username: 'u', password: 'secret-pw' }]]),
      ),
    });
    try {
      await pushTufRepository(
        authed,
        tree(fixture()),
        parseOciUrl(meta),
        parseOciRepository(`oci://${reg.host}/tuf/targets`),
      );
      reg.intercept = (req, res) => {
        if (req.method !== 'GET' || !req.url?.includes('/blobs/')) return false;
        res.writeHead(307, { location: `http://localhost:${port}/blob?x=1` });
        res.end();
        return true;
      };
      await new RegistryFetcher(authed).fetch(`${meta}1.root.json`, 100_000).catch(() => 0);
      assert.ok(seen.length > 0, 'the redirect was followed');
      for (const h of seen) assert.equal(h.authorization, undefined);
    } finally {
      await authed.close();
      await new Promise<void>((r) => other.close(() => r()));
    }
  });

  it('ATTACK terminal escapes: a hostile manifest string (layer media type) reaches stderr of `tufa tuf refresh` raw', async () => {
    const sim = fixture();
    await pushTufRepository(client, tree(sim), parseOciUrl(meta), parseOciRepository(targets));
    const legit = reg.manifest('tuf/meta', 'latest');
    assert.ok(legit);
    const m = JSON.parse(dec(legit.bytes)) as Manifest;
    const ts = m.layers.at(-1) as Layer;
    ts.mediaType = 'x\u001b]0;owned\u0007\u001b[2J\u001b[1;31mFAKE: verified OK\u001b[0m';
    reg.putManifest('tuf/meta', enc(JSON.stringify(m)), m.mediaType, 'latest');
    const d = dir();
    const rootFile = join(d, 'root.json');
    writeFileSync(rootFile, sim.repo.rootBytes(1));
    const md = join(d, 'md');
    await initMetadataDir(md, sim.repo.rootBytes(1));
    const bin = resolve('bin/tufa');
    const r = await new Promise<{ code: number | null; stderr: string; stdout: string }>(
      (done) => {
        execFile(
          process.execPath,
          [bin, 'tuf', '--metadata-dir', md, '--metadata-url', `oci://${reg.host}/tuf/meta`, 'refresh'],
          { env: { ...process.env, DOCKER_CONFIG: d, HOME: d }, timeout: 15000 },
          (err, stdout, stderr) =>
            done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      },
    );
    assert.notEqual(r.code, 0, 'the refresh fails');
    // the secure behaviour: no control character of the registry's reaches the terminal
    assert.ok(
      !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(r.stderr + r.stdout),
      `control characters on stderr: ${JSON.stringify(r.stderr)}`,
    );
  });

  it('observation: oci://HOST/REPO with a short host name silently means Docker Hub', () => {
    // the syntax documented is oci://REGISTRY/REPOSITORY: "registry" here is the registry
    const r = parseOciUrl('oci://registry/tuf/meta');
    assert.equal(r.registry, 'registry', `parsed as ${r.registry}/${r.repository}`);
  });
});
