/**
 * TUF repositories stored in a real registry (Debian `docker-registry`, CNCF distribution 2.8)
 * in docker/attest's layout, against the same repositories served over HTTP:
 *
 * - a table of scenarios (publish and refresh with target downloads, root rotation, delegated
 *   roles, hashed bins, an expired timestamp, a rolled-back metadata image, a snapshot that
 *   does not match its timestamp), each run through both sources: the verdicts must be equal;
 * - a policy with an `oci://` TUF source verifying an image on the same registry, with the same
 *   verdicts as the HTTP source;
 * - Docker's production TUF repository (docker/tuf, tuf-on-ci, P-384 root keys) mirrored into
 *   the registry, refreshed from its first root with the clock it needs, every target downloaded.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { readTrustFile } from '../../src/cli/images.js';
import { initMetadataDir, RegistryFetcher, Updater } from '../../src/client/index.js';
import {
  MEDIA_TYPES,
  parseOciRepository,
  parseOciUrl,
  pushTufRepository,
  Reference,
  RegistryClient,
  RegistrySource,
} from '../../src/oci/index.js';
import { ImageVerifier, TrustPolicy } from '../../src/verify/index.js';
import { RepositorySimulator } from '../sim/repository-simulator.js';
import { ROOT } from '../support/paths.js';
import { RegistryServer, skipReason } from '../support/registry.js';
import { StaticServer } from '../support/static-server.js';
import { expiresIn, NOW, SimRepo, sha256Hex, TestKey } from '../support/tuf-builder.js';

const enc = (s: string) => new TextEncoder().encode(s);

/** tree is the simulator's site as a publish tree (metadata at the top, targets/…). */
function tree(sim: RepositorySimulator): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [rel, bytes] of sim.files) {
    out.set(rel.startsWith('metadata/') ? rel.slice('metadata/'.length) : rel, bytes);
  }
  return out;
}

/** One published state after another, and what the client does after each. */
interface Scenario {
  readonly name: string;
  /** The repository's first state. */
  build(): RepositorySimulator;
  /** Changes made and published after the first refresh (none: one refresh only). */
  readonly next?: (
    sim: RepositorySimulator,
    first: Map<string, Uint8Array>,
  ) => Map<string, Uint8Array>;
  /** Targets looked up and downloaded after the last refresh. */
  readonly targets: readonly string[];
  /** The expected verdict of the last step. */
  readonly expect: string;
}

function base(): RepositorySimulator {
  const sim = new RepositorySimulator(new SimRepo());
  sim.addTargetFile('top.txt', enc('top level'));
  sim.publish();
  return sim;
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'publish, refresh, download',
    build: base,
    targets: ['top.txt'],
    expect: 'ok root v1, 1 targets',
  },
  {
    name: 'root rotation',
    build: base,
    next: (sim) => {
      const old = sim.repo.rootKeys;
      sim.repo.rootKeys = [new TestKey()];
      sim.repo.setRootKeys();
      sim.repo.publishRoot(old);
      sim.repo.bump('timestamp');
      sim.publish();
      return tree(sim);
    },
    targets: ['top.txt'],
    expect: 'ok root v2, 1 targets',
  },
  {
    name: 'delegated roles (two levels)',
    build: () => {
      const repo = new SimRepo();
      repo.delegate('targets', 'team', { paths: ['team/*', 'team/*/*'] });
      repo.delegate('team', 'sub', { paths: ['team/sub/*'] });
      const sim = new RepositorySimulator(repo);
      sim.addTargetFile('team/app.conf', enc('team file'), 'team');
      sim.addTargetFile('team/sub/deep.bin', enc('sub file'), 'sub');
      sim.publish();
      return sim;
    },
    targets: ['team/app.conf', 'team/sub/deep.bin'],
    expect: 'ok root v1, 2 targets',
  },
  {
    name: 'hashed bins',
    build: () => {
      const repo = new SimRepo();
      const bins = ['0123', '4567', '89ab', 'cdef'];
      for (const b of bins) repo.delegate('targets', `bin-${b}`, { path_hash_prefixes: [...b] });
      const sim = new RepositorySimulator(repo);
      for (const name of ['a.txt', 'b.txt', 'c.txt', 'd.txt']) {
        const first = sha256Hex(enc(name))[0] as string;
        const bin = bins.find((b) => b.includes(first)) as string;
        sim.addTargetFile(name, enc(`content of ${name}`), `bin-${bin}`);
      }
      sim.publish();
      return sim;
    },
    targets: ['a.txt', 'b.txt', 'c.txt', 'd.txt'],
    expect: 'ok root v1, 4 targets',
  },
  {
    name: 'an expired timestamp',
    build: () => {
      const sim = base();
      sim.repo.timestamp.expires = expiresIn(-1);
      sim.publish();
      return sim;
    },
    targets: [],
    expect: 'EXPIRED',
  },
  {
    name: 'a rolled-back metadata image (an older timestamp after a newer one)',
    build: () => {
      const sim = base();
      sim.repo.bump('timestamp');
      sim.publish(); // timestamp v2 first
      return sim;
    },
    next: (sim) => {
      sim.repo.timestamp.version = 1;
      sim.publish();
      return tree(sim);
    },
    targets: [],
    expect: 'ROLLBACK',
  },
  {
    name: 'a snapshot that does not match the hash its timestamp gives',
    build: () => {
      const sim = base();
      // other snapshot bytes under the version the timestamp names
      sim.repo.snapshot.expires = expiresIn(6);
      sim.files.set(
        `metadata/${sim.repo.snapshot.version}.snapshot.json`,
        sim.repo.snapshotBytes(),
      );
      return sim;
    },
    targets: [],
    expect: 'LENGTH_OR_HASH_MISMATCH',
  },
];

describe('TUF repositories in a real registry (docker-registry), the same verdicts as over HTTP', function () {
  this.timeout(120_000);
  let reg: RegistryServer;
  let client: RegistryClient;
  const tmp = mkdtempSync(join(tmpdir(), 'tufa-oci-tuf-'));
  let n = 0;

  before(async function () {
    const why = skipReason(['docker-registry']);
    if (why !== undefined) {
      process.stderr.write(`  skipping the OCI TUF integration tests: ${why}\n`);
      this.skip();
    }
    reg = await RegistryServer.start('plain');
    client = new RegistryClient(reg.clientOptions());
  });
  after(async () => {
    await client?.close();
    await reg?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** A place to publish to: a web server, or a metadata image and a targets repository. */
  interface Source {
    publish(files: Map<string, Uint8Array>): Promise<void>;
    updater(dir: string, root: Uint8Array, now: number): Promise<Updater>;
    close(): Promise<void>;
  }

  async function httpSource(): Promise<Source> {
    const site = new Map<string, Uint8Array>();
    const server = await StaticServer.start(site);
    return {
      async publish(files) {
        site.clear();
        for (const [k, v] of files) site.set(k, v);
      },
      async updater(dir, root, now) {
        await initMetadataDir(join(dir, 'md'), root);
        return new Updater({
          metadataDir: join(dir, 'md'),
          metadataBaseUrl: server.url(),
          targetDir: join(dir, 'targets'),
          targetBaseUrl: server.url('targets/'),
          now: () => now,
        });
      },
      close: () => server.close(),
    };
  }

  async function ociSource(): Promise<Source> {
    n++;
    const meta = `oci://${reg.host}/tuf${n}/metadata:latest`;
    const targets = `oci://${reg.host}/tuf${n}/targets/`;
    return {
      async publish(files) {
        await pushTufRepository(client, files, parseOciUrl(meta), parseOciRepository(targets));
      },
      async updater(dir, root, now) {
        await initMetadataDir(join(dir, 'md'), root);
        return new Updater({
          metadataDir: join(dir, 'md'),
          metadataBaseUrl: `${meta}/`,
          targetDir: join(dir, 'targets'),
          targetBaseUrl: targets,
          fetcher: new RegistryFetcher(client, { targetBaseUrl: targets }),
          now: () => now,
        });
      },
      close: async () => undefined,
    };
  }

  async function run(s: Scenario, source: Source): Promise<string> {
    const sim = s.build();
    const dir = mkdtempSync(join(tmp, 'client-'));
    const first = tree(sim);
    await source.publish(first);
    const u = await source.updater(dir, sim.repo.rootBytes(1), NOW);
    try {
      await u.refresh();
      if (s.next !== undefined) {
        await source.publish(s.next(sim, first));
        await u.refresh();
      }
      for (const path of s.targets) {
        const t = await u.getTargetInfo(path);
        assert.ok(t, `${path} is signed`);
        const file = await u.downloadTarget(t);
        assert.equal(statSync(file).size, t.length);
      }
      return `ok root v${u.trusted.root.signed.version}, ${s.targets.length} targets`;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === undefined) throw e;
      return code;
    } finally {
      await u.close();
    }
  }

  for (const s of SCENARIOS) {
    it(`${s.name}: ${s.expect}, over HTTP and from the registry`, async () => {
      const http = await httpSource();
      const oci = await ociSource();
      try {
        const viaHttp = await run(s, http);
        const viaOci = await run(s, oci);
        assert.equal(viaOci, viaHttp, 'the registry source decides as the HTTP source does');
        assert.equal(viaOci, s.expect);
      } finally {
        await http.close();
        await oci.close();
      }
    });
  }

  it('a policy with an oci:// TUF source verifies an image on the same registry, as the HTTP source does', async () => {
    // an image, pushed with the registry client
    const repo = { registry: reg.host, repository: 'team/app' };
    const layer = await client.pushBlob(
      repo,
      enc('layer bytes'),
      'application/vnd.oci.image.layer.v1.tar',
    );
    const config = await client.pushBlob(
      repo,
      enc('{"architecture":"amd64","os":"linux"}'),
      MEDIA_TYPES.ociConfig,
    );
    const manifest = enc(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config,
        layers: [layer],
      }),
    );
    const digest = await client.pushManifest(repo, '1.0', manifest, MEDIA_TYPES.ociManifest);
    await client.pushManifest(repo, 'unsigned', manifest, MEDIA_TYPES.ociManifest);
    const sim = new RepositorySimulator(new SimRepo());
    sim.repo.targets.targets = {
      [`${reg.host}/team/app:1.0`]: {
        length: manifest.length,
        hashes: { sha256: sha256Hex(manifest) },
      },
    };
    sim.publish();
    const files = tree(sim);
    writeFileSync(join(tmp, 'root.json'), sim.repo.rootBytes(1));
    await pushTufRepository(client, files, parseOciUrl(`oci://${reg.host}/team/tuf:v1`));
    const site = await StaticServer.start(files);
    try {
      const verdicts: string[][] = [];
      for (const metadataUrl of [`oci://${reg.host}/team/tuf:v1`, site.url()]) {
        const policy = TrustPolicy.fromJSON(
          { rules: [{ match: `${reg.host}/team/**`, tuf: { metadataUrl, root: 'root.json' } }] },
          tmp,
        );
        const v = new ImageVerifier({
          policy,
          files: readTrustFile,
          cacheDir: mkdtempSync(join(tmp, 'cache-')),
          registry: client,
          now: () => NOW,
        });
        const out: string[] = [];
        for (const image of [`${reg.host}/team/app:1.0`, `${reg.host}/team/app:unsigned`]) {
          out.push(
            await v
              .verify(Reference.parse(image), new RegistrySource(client, Reference.parse(image)))
              .then(
                (r) => r.pinned,
                (e: { code?: string }) => String(e.code),
              ),
          );
        }
        verdicts.push(out);
      }
      assert.deepEqual(verdicts[0], [`${reg.host}/team/app@${digest}`, 'UNSIGNED_IMAGE']);
      assert.deepEqual(verdicts[0], verdicts[1]);
    } finally {
      await site.close();
    }
  });

  it("Docker's production TUF repository (P-384 roots, delegations, consistent snapshots) mirrored into the registry verifies there", async () => {
    const real = join(ROOT, 'test', 'vectors', 'tuf', 'real-tuf', 'docker-tuf');
    const files = new Map<string, Uint8Array>();
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
      );
    for (const f of walk(real)) {
      const rel = relative(real, f).split(sep).join('/');
      if (rel.endsWith('.md')) continue;
      files.set(rel, new Uint8Array(readFileSync(f)));
    }
    const meta = `oci://${reg.host}/docker/tuf-metadata:latest`;
    const targets = `oci://${reg.host}/docker/tuf-targets/`;
    const pushed = await pushTufRepository(
      client,
      files,
      parseOciUrl(meta),
      parseOciRepository(targets),
    );
    assert.ok(pushed.includes(`${reg.host}/docker/tuf-metadata:doi`), pushed.join(' '));
    const dir = mkdtempSync(join(tmp, 'docker-'));
    await initMetadataDir(join(dir, 'md'), files.get('1.root.json') as Uint8Array);
    const u = new Updater({
      metadataDir: join(dir, 'md'),
      metadataBaseUrl: `${meta}/`,
      targetDir: join(dir, 'targets'),
      targetBaseUrl: targets,
      fetcher: new RegistryFetcher(client, { targetBaseUrl: targets }),
      // the clock the fixture needs (test/vectors/tuf/real-tuf/SOURCE.md)
      now: () => Date.parse('2024-12-04T00:00:00Z'),
    });
    try {
      await u.refresh();
      let downloaded = 0;
      for (const name of ['7.targets.json', '3.doi.json', '2.rekor.json', '3.testing.json']) {
        const doc = JSON.parse(new TextDecoder().decode(files.get(name))) as {
          signed: { targets: Record<string, unknown> };
        };
        for (const path of Object.keys(doc.signed.targets)) {
          const t = await u.getTargetInfo(path);
          assert.ok(t, `${path} is found`);
          assert.equal(statSync(await u.downloadTarget(t)).size, t.length);
          downloaded++;
        }
      }
      assert.ok(downloaded >= 8, `${downloaded} targets`);
    } finally {
      await u.close();
    }
  });
});
