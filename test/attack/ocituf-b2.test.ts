/**
 * Attacks (attack-b, part 2): rollback through the registry source, a layer whose descriptor
 * lies about its size, manifest-level terminal escapes, a private key owned by another user.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initMetadataDir, RegistryFetcher, Updater } from '../../src/client/index.js';
import {
  parseOciRepository,
  parseOciUrl,
  pushTufRepository,
  RegistryClient,
} from '../../src/oci/index.js';
import { RepositorySimulator } from '../sim/repository-simulator.js';
import { OciSim } from '../support/oci-sim.js';
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

function run(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(
      process.execPath,
      [resolve('bin/tufa'), ...args],
      { env: { ...process.env, ...env }, timeout: 15000 },
      (err, stdout, stderr) =>
        done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('attack-b part 2', () => {
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
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'tufa-attack-b2-'));
    tmp.push(d);
    return d;
  };

  it('held? rollback: an old metadata image re-tagged is refused by the registry source', async () => {
    const sim = new RepositorySimulator(new SimRepo());
    sim.addTargetFile('a.txt', enc('a'));
    sim.publish();
    await pushTufRepository(client, tree(sim), parseOciUrl(meta), parseOciRepository(targets));
    const old = reg.manifest('tuf/meta', 'latest');
    assert.ok(old);
    const md = join(dir(), 'md');
    await initMetadataDir(md, sim.repo.rootBytes(1));
    sim.repo.bump('targets');
    sim.repo.bump('snapshot');
    sim.repo.bump('timestamp');
    sim.publish();
    await pushTufRepository(client, tree(sim), parseOciUrl(meta), parseOciRepository(targets));
    const fetcher = new RegistryFetcher(client, { targetBaseUrl: targets });
    const mk = () =>
      new Updater({ metadataDir: md, metadataBaseUrl: meta, fetcher, now: () => NOW });
    const u1 = mk();
    await u1.refresh();
    const v = u1.trusted.timestamp?.signed.version;
    await u1.close();
    reg.putManifest('tuf/meta', old.bytes, old.mediaType, 'latest');
    const u2 = mk();
    await assert.rejects(u2.refresh());
    await u2.close();
    assert.ok(v !== undefined && v > 1);
  });

  it('held? a layer whose descriptor says 10 bytes but whose blob is 5 MB is cut off at 11 bytes', async () => {
    const sim = new RepositorySimulator(new SimRepo());
    sim.publish();
    await pushTufRepository(client, tree(sim), parseOciUrl(meta), parseOciRepository(targets));
    const m = reg.manifest('tuf/meta', 'latest');
    assert.ok(m);
    const doc = JSON.parse(dec(m.bytes)) as { layers: Array<{ size: number; digest: string }> };
    (doc.layers.at(-1) as { size: number }).size = 10;
    reg.putManifest('tuf/meta', enc(JSON.stringify(doc)), m.mediaType, 'latest');
    let sent = 0;
    reg.intercept = (req, res) => {
      if (!req.url?.includes('/blobs/')) return false;
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const pump = () => {
        while (sent < 5_000_000) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => undefined);
      pump();
      return true;
    };
    await assert.rejects(new RegistryFetcher(client).fetch(`${meta}timestamp.json`, 1_000_000));
  });

  it('ATTACK terminal escapes: manifest-level media type of a hostile metadata image reaches stderr raw', async () => {
    const sim = new RepositorySimulator(new SimRepo());
    sim.publish();
    await pushTufRepository(client, tree(sim), parseOciUrl(meta), parseOciRepository(targets));
    const m = reg.manifest('tuf/meta', 'latest');
    assert.ok(m);
    const doc = JSON.parse(dec(m.bytes)) as Record<string, unknown>;
    doc.mediaType = '\u001b[2J\u001b[Hall images verified\u001b[8m';
    reg.putManifest('tuf/meta', enc(JSON.stringify(doc)), m.mediaType, 'latest');
    const d = dir();
    const md = join(d, 'md');
    await initMetadataDir(md, sim.repo.rootBytes(1));
    const r = await run(
      ['tuf', '--metadata-dir', md, '--metadata-url', `oci://${reg.host}/tuf/meta`, 'refresh'],
      { DOCKER_CONFIG: d, HOME: d },
    );
    assert.notEqual(r.code, 0);
    assert.ok(
      !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(r.stderr),
      `control characters on stderr: ${JSON.stringify(r.stderr)}`,
    );
  });

  it('ATTACK key permissions: a 0600 private key owned by ANOTHER user is used without --insecure-key-permissions (that user reads it)', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const d = dir();
    chmodSync(d, 0o755);
    const key = join(d, 'k');
    const g = await run(['key', 'generate', '--type', 'ed25519', '--out', key], {});
    assert.equal(g.code, 0, g.stderr);
    chownSync(key, 65534, 65534); // nobody: mode stays 0600, nobody may read (and replace) it
    const r = await run(['key', 'reencrypt', '--in', key], { TUFA_KEY_PASSPHRASE: 'pw' });
    // the secure behaviour: refused as a key others may read (as ssh refuses a key not owned)
    assert.notEqual(r.code, 0, `accepted: ${r.stdout}`);
    assert.match(r.stderr, /owner|owned|permission/);
  });
});
