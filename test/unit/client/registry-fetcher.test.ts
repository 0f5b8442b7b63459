/**
 * TUF repositories stored in a registry (docker/attest's layout), on the in-process registry
 * simulator: what `pushTufRepository` writes (tags, media types, annotations, the metadata
 * image pushed last), and the client reading it through `RegistryFetcher` (refresh, root
 * rotation, delegated roles, targets in images and indexes), with the limits and checks of the
 * registry client (layer over the length asked for, bytes of another digest, a file named twice,
 * credentials).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initMetadataDir, RegistryFetcher, Updater } from '../../../src/client/index.js';
import { DownloadError } from '../../../src/core/index.js';
import {
  OciError,
  parseOciRepository,
  parseOciUrl,
  pushTufRepository,
  RegistryClient,
  StaticCredentials,
  TUF_FILENAME_ANNOTATION,
} from '../../../src/oci/index.js';
import { RepositorySimulator } from '../../sim/repository-simulator.js';
import { OciSim, sha256 } from '../../support/oci-sim.js';
import { NOW, SimRepo, sha256Hex, TestKey } from '../../support/tuf-builder.js';

const enc = (s: string) => new TextEncoder().encode(s);

/** tree is the simulator's site as a publish tree (metadata at the top, targets/…). */
function tree(sim: RepositorySimulator): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [rel, bytes] of sim.files) {
    if (rel.startsWith('targets/')) out.set(rel, bytes);
  }
  for (const [rel, bytes] of sim.files) {
    if (rel.startsWith('metadata/')) out.set(rel.slice('metadata/'.length), bytes);
  }
  return out;
}

interface Manifest {
  mediaType: string;
  config?: { mediaType: string };
  layers?: Array<{ mediaType: string; digest: string; annotations?: Record<string, string> }>;
  manifests?: Array<{ digest: string; annotations?: Record<string, string> }>;
}

describe('TUF repositories in a registry (docker/attest layout, simulator)', () => {
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
    await client.close();
    await reg.close();
  });
  after(() => {
    for (const d of tmp) rmSync(d, { recursive: true, force: true });
  });

  function fixture(): RepositorySimulator {
    const repo = new SimRepo();
    repo.delegate('targets', 'team', { paths: ['team/*'] });
    const sim = new RepositorySimulator(repo);
    sim.addTargetFile('top.txt', enc('top level'));
    sim.addTargetFile('team/app.conf', enc('delegated'), 'team');
    sim.publish();
    return sim;
  }

  async function updater(sim: RepositorySimulator): Promise<Updater> {
    const dir = mkdtempSync(join(tmpdir(), 'tufa-ocituf-'));
    tmp.push(dir);
    await initMetadataDir(join(dir, 'md'), sim.repo.rootBytes(1));
    return new Updater({
      metadataDir: join(dir, 'md'),
      metadataBaseUrl: meta,
      targetDir: join(dir, 'targets'),
      targetBaseUrl: targets,
      fetcher: new RegistryFetcher(client, { targetBaseUrl: targets }),
      now: () => NOW,
    });
  }

  const push = (files: Map<string, Uint8Array>) =>
    pushTufRepository(client, files, parseOciUrl(meta), parseOciRepository(targets));

  function stored(repo: string, ref: string): Manifest {
    const m = reg.manifest(repo, ref);
    assert.ok(m, `${repo}:${ref} is in the registry`);
    return JSON.parse(new TextDecoder().decode(m.bytes)) as Manifest;
  }

  it("writes docker/attest's layout: tags, media types, annotations; the metadata image last", async () => {
    const sim = fixture();
    const pushed = await pushTufRepository(
      client,
      tree(sim),
      parseOciUrl(meta),
      parseOciRepository(targets),
    );
    const top = stored('tuf/meta', 'latest');
    assert.equal(top.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(top.config?.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.deepEqual(
      top.layers?.map((l) => [l.mediaType, l.annotations?.[TUF_FILENAME_ANNOTATION]]),
      ['1.root.json', '1.snapshot.json', '1.targets.json', 'timestamp.json'].map((n) => [
        'application/vnd.tuf.metadata+json',
        n,
      ]),
    );
    const team = stored('tuf/meta', 'team');
    assert.deepEqual(
      team.layers?.map((l) => l.annotations?.[TUF_FILENAME_ANNOTATION]),
      ['1.team.json'],
    );
    const topName = `${sha256Hex(enc('top level'))}.top.txt`;
    const image = stored('tuf/targets', topName);
    assert.deepEqual(
      image.layers?.map((l) => [l.mediaType, l.annotations?.[TUF_FILENAME_ANNOTATION]]),
      [['application/vnd.tuf.target', topName]],
    );
    const index = stored('tuf/targets', 'team');
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    const teamName = `${sha256Hex(enc('delegated'))}.app.conf`;
    const entry = index.manifests?.[0];
    assert.equal(entry?.annotations?.[TUF_FILENAME_ANNOTATION], `team/${teamName}`);
    const child = stored('tuf/targets', entry?.digest as string);
    assert.equal(child.layers?.[0]?.annotations?.[TUF_FILENAME_ANNOTATION], teamName);
    // the metadata image (with timestamp.json) is the last manifest written
    const puts = reg.requests.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'));
    assert.equal(puts.at(-1)?.path, '/v2/tuf/meta/manifests/latest');
    assert.equal(pushed.at(-1), `${reg.host}/tuf/meta:latest`);
  });

  it('refreshes, follows a root rotation, finds delegated targets and downloads targets from images and indexes', async () => {
    const sim = fixture();
    await push(tree(sim));
    const u = await updater(sim);
    await u.refresh();
    for (const [path, body] of [
      ['top.txt', 'top level'],
      ['team/app.conf', 'delegated'],
    ] as const) {
      const t = await u.getTargetInfo(path);
      assert.ok(t, `${path} is signed`);
      const file = await u.downloadTarget(t);
      const { readFileSync } = await import('node:fs');
      assert.equal(readFileSync(file, 'utf8'), body);
    }
    // a new root version, pushed: the next refresh follows it
    const old = sim.repo.rootKeys;
    sim.repo.rootKeys = [new TestKey()];
    sim.repo.setRootKeys();
    sim.repo.publishRoot(old);
    sim.repo.bump('timestamp');
    sim.publish();
    await push(tree(sim));
    await u.refresh();
    assert.equal(u.trusted.root.signed.version, 2);
  });

  it('a layer longer than the limit asked for is refused before its blob is read', async () => {
    const sim = fixture();
    await push(tree(sim));
    const layer = stored('tuf/meta', 'latest').layers?.at(-1);
    const before = reg.requests.length;
    const fetcher = new RegistryFetcher(client);
    await assert.rejects(
      fetcher.fetch(`${meta}timestamp.json`, 10),
      (e: DownloadError) => e instanceof DownloadError && e.code === 'TOO_LARGE',
    );
    const blobGets = reg.requests
      .slice(before)
      .filter((r) => r.path.endsWith(`/blobs/${layer?.digest}`));
    assert.deepEqual(blobGets, []);
  });

  it('bytes of another digest, and a file named by two layers, are refused', async () => {
    const sim = fixture();
    await push(tree(sim));
    const m = stored('tuf/meta', 'latest');
    const ts = m.layers?.at(-1) as { digest: string };
    const original = reg.blob('tuf/meta', ts.digest) as Uint8Array;
    const forged = Uint8Array.from(original);
    forged[10] = (forged[10] as number) ^ 1;
    reg.intercept = (req, res) => {
      if (!req.url?.endsWith(`/blobs/${ts.digest}`)) return false;
      res.writeHead(200, { 'content-length': String(forged.length) });
      res.end(forged);
      return true;
    };
    const fetcher = new RegistryFetcher(client);
    await assert.rejects(
      fetcher.fetch(`${meta}timestamp.json`, 100_000),
      (e: DownloadError) =>
        e instanceof DownloadError &&
        e.cause instanceof OciError &&
        e.cause.code === 'DIGEST_MISMATCH',
    );
    reg.intercept = undefined;
    // two layers named timestamp.json: which one is meant cannot be told
    const twice = { ...m, layers: [...(m.layers ?? []), ts] };
    const bytes = enc(JSON.stringify(twice));
    reg.putManifest('tuf/meta', bytes, m.mediaType, 'latest');
    await assert.rejects(
      new RegistryFetcher(client).fetch(`${meta}timestamp.json`, 100_000),
      (e: DownloadError) => e instanceof DownloadError && /2 entries are annotated/.test(e.message),
    );
  });

  it('no metadata image, or no such file in it, is a 404 (the end of the root chain)', async () => {
    const fetcher = new RegistryFetcher(client);
    await assert.rejects(
      fetcher.fetch(`${meta}timestamp.json`, 1000),
      (e: DownloadError & { statusCode?: number }) => e.statusCode === 404,
    );
    await push(tree(fixture()));
    await assert.rejects(
      fetcher.fetch(`${meta}2.root.json`, 100_000),
      (e: DownloadError & { statusCode?: number }) => e.statusCode === 404,
    );
  });

  it('a publish that moves the tag mid-refresh: versioned files still come from the image read', async () => {
    const sim = fixture();
    await push(tree(sim));
    const fetcher = new RegistryFetcher(client);
    await fetcher.fetch(`${meta}timestamp.json`, 100_000);
    // a new metadata image holding only version 2 of snapshot and targets
    sim.repo.bump('targets');
    sim.repo.bump('snapshot');
    sim.repo.bump('timestamp');
    sim.publish();
    const only = new Map(
      [...tree(sim)].filter(([n]) => !n.startsWith('1.s') && !n.startsWith('1.t')),
    );
    await push(only);
    const snap = await fetcher.fetch(`${meta}1.snapshot.json`, 100_000);
    assert.equal(sha256(snap), sha256(sim.files.get('metadata/1.snapshot.json') as Uint8Array));
  });

  it('pushes and reads with the credentials of the registry client; without them, access denied', async () => {
    await reg.close();
    reg = await OciSim.start({ auth: { kind: 'basic', username: 'u', password: 'p' } });
    meta = `oci://${reg.host}/tuf/meta:v1/`;
    const authed = new RegistryClient({
      credentials: new StaticCredentials(new Map([[reg.host, { username: 'u', password: 'p' }]])),
    });
    try {
      await pushTufRepository(
        authed,
        tree(fixture()),
        parseOciUrl(meta),
        parseOciRepository(`oci://${reg.host}/tuf/targets`),
      );
      assert.ok(
        (await new RegistryFetcher(authed).fetch(`${meta}1.root.json`, 100_000)).length > 0,
      );
    } finally {
      await authed.close();
    }
    await assert.rejects(
      new RegistryFetcher(client).fetch(`${meta}1.root.json`, 100_000),
      (e: DownloadError) => e instanceof DownloadError && /denied|401/.test(e.message),
    );
  });

  it('refuses what the layout cannot hold before pushing anything', async () => {
    const sim = fixture();
    const before = reg.requests.length;
    // target files without a targets repository
    await assert.rejects(
      pushTufRepository(client, tree(sim), parseOciUrl(meta)),
      (e: OciError) => e.code === 'BAD_REFERENCE' && /--targets-to/.test(e.message),
    );
    assert.equal(reg.requests.length, before, 'nothing was sent');
    // a role named like the metadata tag would overwrite the metadata image
    const files = new Map(tree(sim));
    files.set('1.latest.json', enc('{}'));
    const n = reg.requests.length;
    await assert.rejects(
      pushTufRepository(client, files, parseOciUrl(meta), parseOciRepository(targets)),
      (e: OciError) => e.code === 'BAD_REFERENCE' && /metadata tag/.test(e.message),
    );
    assert.equal(reg.requests.length, n, 'nothing was sent');
    assert.throws(() => parseOciUrl(`oci://${reg.host}/tuf/meta@sha256:${'a'.repeat(64)}`));
    assert.throws(() => parseOciRepository(`oci://${reg.host}/tuf/targets:v1`));
  });
});
