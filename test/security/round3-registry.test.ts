/**
 * Security round 3 (the redesign's third attack round, attack-b): TUF repositories stored in a
 * registry (`RegistryFetcher`, `TufRegistryReader`, `pushTufRepository`, `parseOciUrl`) and the
 * CLI conventions around them (messages, `--https`, private key files).
 *
 * Everything runs on 127.0.0.1: the in-process registry simulator (with its `intercept` hook
 * for a lying registry), the repository simulator, and the CLI as a subprocess.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { registryOptions } from '../../src/cli/registry-options.js';
import { initMetadataDir, RegistryFetcher, Updater } from '../../src/client/index.js';
import {
  parseOciRepository,
  parseOciUrl,
  pushTufRepository,
  RegistryClient,
  TUF_FILENAME_ANNOTATION,
} from '../../src/oci/index.js';
import { RepositorySimulator } from '../sim/repository-simulator.js';
import { OciSim, sha256 } from '../support/oci-sim.js';
import { NOW, SimRepo } from '../support/tuf-builder.js';
import { type CaseContext, defineCases, type SecurityCase, show, tufa } from './harness.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we look for
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

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

/** tree is a published repository as pushTufRepository takes it. */
function tree(sim: RepositorySimulator): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [rel, bytes] of sim.files) if (rel.startsWith('targets/')) out.set(rel, bytes);
  for (const [rel, bytes] of sim.files)
    if (rel.startsWith('metadata/')) out.set(rel.slice('metadata/'.length), bytes);
  return out;
}

/** fixture: a repository with a top-level target and a delegated role `team`. */
function fixture(): RepositorySimulator {
  const repo = new SimRepo();
  repo.delegate('targets', 'team', { paths: ['team/*'] });
  const sim = new RepositorySimulator(repo);
  sim.addTargetFile('top.txt', enc('top level'));
  sim.addTargetFile('team/app.conf', enc('delegated'), 'team');
  sim.publish();
  return sim;
}

/** registry starts the simulator and a client for it, both closed after the case. */
async function registry(t: CaseContext): Promise<{ reg: OciSim; client: RegistryClient }> {
  const reg = await OciSim.start();
  const client = new RegistryClient({ timeoutMs: 5000 });
  t.defer(() => reg.close());
  t.defer(() => client.close());
  return { reg, client };
}

/** manifestOf reads the stored manifest at `repo:tag` as JSON. */
function manifestOf(reg: OciSim, repo: string, tag: string): Manifest {
  const m = reg.manifest(repo, tag);
  assert.ok(m, `${repo}:${tag} is stored`);
  return JSON.parse(dec(m.bytes)) as Manifest;
}

const cases: SecurityCase[] = [
  {
    id: 'R3-12',
    title:
      'one forged metadata-image answer does not break later refreshes of a long-lived fetcher',
    attack:
      'A MITM answers one manifest GET of the metadata image (the one for `timestamp.json`) with the real image plus a layer annotated `2.root.json` whose blob does not exist: the reader remembered that manifest and served versioned names from it first, so every later refresh of the same `RegistryFetcher` (as `ImageVerifier` keeps it) failed on that digest, long after the attacker left',
    source: 'attack round 3 (attack-b); TUF 5.3 (the root chain ends at the first missing version)',
    expect:
      'safe: the poisoned refresh still succeeds, and the three refreshes after it succeed against the honest registry (an older image tagged again is still a refused rollback)',
    async run(t) {
      const { reg, client } = await registry(t);
      const meta = `oci://${reg.host}/tuf/meta:latest/`;
      const targets = `oci://${reg.host}/tuf/targets/`;
      const sim = fixture();
      await pushTufRepository(client, tree(sim), parseOciUrl(meta), parseOciRepository(targets));
      const md = join(t.tmp(), 'md');
      await initMetadataDir(md, sim.repo.rootBytes(1));
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
      const m = manifestOf(reg, 'tuf/meta', 'latest');
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
        res.writeHead(200, { 'content-type': m.mediaType, 'content-length': poisoned.length });
        res.end(poisoned);
        return true;
      };
      await refresh();
      assert.ok(gets >= 2, 'the forged answer was served');
      reg.intercept = undefined;
      for (let i = 0; i < 3; i++) await refresh();
      // (held) the older metadata image tagged again after a publish: a rollback, refused
      const old = reg.manifest('tuf/meta', 'latest');
      assert.ok(old);
      for (const role of ['targets', 'snapshot', 'timestamp']) sim.repo.bump(role);
      sim.publish();
      await pushTufRepository(client, tree(sim), parseOciUrl(meta), parseOciRepository(targets));
      await refresh();
      reg.putManifest('tuf/meta', old.bytes, old.mediaType, 'latest');
      await assert.rejects(refresh(), /version|rollback/i);
    },
  },
  {
    id: 'R3-13',
    title: 'control characters of a registry string never reach the terminal',
    attack:
      "A metadata image whose `timestamp.json` layer has the media type `x ESC]0;owned BEL ESC[2J … FAKE: verified OK`, or whose manifest's own media type is `ESC[2J ESC[H all images verified`: `tufa tuf refresh` printed them raw in its error, so the registry could retitle, clear and repaint the user's terminal",
    source: 'attack round 3 (attack-b); CWE-150',
    expect: 'safe: the refresh fails, and stdout and stderr hold no control character',
    timeout: 60_000,
    async run(t) {
      const { reg, client } = await registry(t);
      const sim = fixture();
      const meta = `oci://${reg.host}/tuf/meta`;
      await pushTufRepository(
        client,
        tree(sim),
        parseOciUrl(meta),
        parseOciRepository(`oci://${reg.host}/tuf/targets`),
      );
      const honest = manifestOf(reg, 'tuf/meta', 'latest');
      const d = t.tmp();
      const md = join(d, 'md');
      await initMetadataDir(md, sim.repo.rootBytes(1));
      const hostile = (m: Manifest) => {
        reg.putManifest('tuf/meta', enc(JSON.stringify(m)), honest.mediaType, 'latest');
      };
      const layerType = structuredClone(honest);
      (layerType.layers.at(-1) as Layer).mediaType =
        'x\u001b]0;owned\u0007\u001b[2J\u001b[1;31mFAKE: verified OK\u001b[0m\u009b2J\u007f';
      const manifestType = {
        ...structuredClone(honest),
        mediaType: '\u001b[2J\u001b[Hok\u001b[8m',
      };
      for (const m of [layerType, manifestType]) {
        hostile(m);
        const r = await tufa(['tuf', '--metadata-dir', md, '--metadata-url', meta, 'refresh'], {
          env: { ...process.env, DOCKER_CONFIG: d, HOME: d },
        });
        assert.notEqual(r.status, 0, show(r));
        assert.match(r.stderr, /media type/, show(r));
        assert.ok(
          !CONTROL.test(r.stdout + r.stderr),
          `control characters: ${JSON.stringify(r.stderr)}`,
        );
      }
    },
  },
  {
    id: 'R3-14',
    title: "a delegated role's tag never overwrites another TUF repository's metadata image",
    attack:
      "Two TUF repositories in one registry repository (`oci://R/acme/tuf:prod` and `:staging`): staging delegates to a role named `prod`, and its publish pushed that role's image tagged `prod`, over prod's metadata image (only the repository's own metadata tag was refused as a role name): a delegatee of staging took prod down. Likewise a metadata image pushed over a tag holding a role image",
    source: 'attack round 3 (attack-b)',
    expect: 'BAD_REFERENCE',
    async run(t) {
      const { reg, client } = await registry(t);
      const prod = new RepositorySimulator(new SimRepo());
      prod.addTargetFile('a.txt', enc('prod file'));
      prod.publish();
      await pushTufRepository(
        client,
        tree(prod),
        parseOciUrl(`oci://${reg.host}/acme/tuf:prod`),
        parseOciRepository(`oci://${reg.host}/acme/prod-targets`),
      );
      const before = reg.manifest('acme/tuf', 'prod')?.bytes;
      const staging = new SimRepo();
      staging.delegate('targets', 'prod', { paths: ['p/*'] });
      const ssim = new RepositorySimulator(staging);
      ssim.publish();
      const puts = reg.requests.length;
      await t.refuses(
        pushTufRepository(client, tree(ssim), parseOciUrl(`oci://${reg.host}/acme/tuf:staging`)),
        'BAD_REFERENCE',
        /acme\/tuf:prod holds an image that is not role "prod"'s/,
      );
      assert.deepEqual(
        reg.manifest('acme/tuf', 'prod')?.bytes,
        before,
        "prod's image is untouched",
      );
      assert.ok(
        reg.requests.slice(puts).every((r) => r.method === 'GET' || r.method === 'HEAD'),
        'refused before the first push',
      );
      // the other way: staging (with role `team`) first, then a repository whose tag is `team`
      const other = fixture();
      await pushTufRepository(
        client,
        tree(other),
        parseOciUrl(`oci://${reg.host}/acme/tuf:staging`),
        parseOciRepository(`oci://${reg.host}/acme/staging-targets`),
      );
      await t.refuses(
        pushTufRepository(client, tree(prod), parseOciUrl(`oci://${reg.host}/acme/tuf:team`), {
          registry: reg.host,
          repository: 'acme/prod-targets',
        }),
        'BAD_REFERENCE',
        /is not a TUF metadata image/,
      );
      // a republish of the same repository still works (its tags hold its own images)
      await pushTufRepository(
        client,
        tree(other),
        parseOciUrl(`oci://${reg.host}/acme/tuf:staging`),
        parseOciRepository(`oci://${reg.host}/acme/staging-targets`),
      );
    },
  },
  {
    id: 'R3-15',
    title: 'a private key owned by another user is refused without --insecure-key-permissions',
    attack:
      'A 0600 private key file owned by another user (who can read and replace it) was used for signing: only the mode bits were checked',
    source: 'attack round 3 (attack-b); OpenSSH `sshkey_perm_ok`',
    expect:
      'safe: `tufa key reencrypt` refuses the key naming its owner; with --insecure-key-permissions it is read',
    timeout: 60_000,
    async run(t) {
      const d = t.tmp();
      chmodSync(d, 0o755);
      const key = join(d, 'k');
      const env = { ...process.env, TUFA_KEY_PASSPHRASE: 'pw' };
      const g = await tufa(['key', 'generate', '--type', 'ed25519', '--out', key], { env });
      assert.equal(g.status, 0, show(g));
      if (process.getuid?.() !== 0) {
        // only root can give a file away: what can be checked here is that an own key is read
        const own = await tufa(['key', 'reencrypt', '--in', key], { env });
        assert.equal(own.status, 0, show(own));
        return;
      }
      chownSync(key, 65534, 65534); // mode stays 0600
      const r = await tufa(['key', 'reencrypt', '--in', key], { env });
      assert.notEqual(r.status, 0, show(r));
      assert.match(r.stderr, /owned by uid 65534, not by you/, show(r));
      const ok = await tufa(['key', 'reencrypt', '--in', key, '--insecure-key-permissions'], {
        env,
      });
      assert.equal(ok.status, 0, show(ok));
    },
  },
  {
    id: 'R3-16',
    title: '--https and --plain-http match every spelling of the registry they name',
    attack:
      '`--https LOCALHOST:5000` or `--https [0:0:0:0:0:0:0:1]:5000` for a TLS registry behind a port-forward: the flag was compared verbatim with the normalized registry name (`localhost:5000`, `[::1]:5000`), so the registry was silently spoken to over plain HTTP, credentials included; a value that is no registry host was accepted and matched nothing',
    source: 'attack round 3 (attack-b)',
    expect: 'safe: each spelling means HTTPS; an invalid host is a usage error',
    async run() {
      for (const [flag, url] of [
        ['LOCALHOST:5000', 'oci://LOCALHOST:5000/tuf/meta'],
        ['localhost:5000', 'oci://LOCALHOST:5000/tuf/meta'],
        ['[0:0:0:0:0:0:0:1]:5000', 'oci://[::1]:5000/tuf/meta'],
        ['127.0.0.1:443', 'oci://127.0.0.1/tuf/meta'],
      ] as const) {
        const o = await registryOptions({ plainHttp: [], https: [flag] });
        const { registry } = parseOciUrl(url);
        assert.equal(o.plainHttp?.(registry), false, `--https ${flag}: ${registry} over HTTP`);
      }
      const p = await registryOptions({ plainHttp: ['Registry.Example:80'], https: [] });
      assert.equal(p.plainHttp?.('registry.example'), true, '--plain-http Registry.Example:80');
      for (const bad of ['https://localhost:5000', 'localhost:0443', '']) {
        await assert.rejects(registryOptions({ plainHttp: [], https: [bad] }), RangeError);
        await assert.rejects(registryOptions({ plainHttp: [bad], https: [] }), RangeError);
      }
    },
  },
  {
    id: 'R3-17',
    title: 'a metadata image nested under the targets repository is read as metadata',
    attack:
      '`--targets-to oci://R/acme/` with the metadata image `oci://R/acme/tuf:latest` (nested repository names are ordinary): `RegistryFetcher` routed by prefix, so every metadata URL was read as a target and the repository could not be used',
    source: 'attack round 3 (attack-b)',
    expect:
      'safe: metadata URLs (a `:TAG` in their first segment) are metadata, targets stay targets',
    async run(t) {
      const { reg, client } = await registry(t);
      const sim = new RepositorySimulator(new SimRepo());
      sim.addTargetFile('a.txt', enc('a'));
      sim.publish();
      const meta = `oci://${reg.host}/acme/tuf:latest/`;
      const targets = `oci://${reg.host}/acme/`;
      await pushTufRepository(client, tree(sim), parseOciUrl(meta), parseOciRepository(targets));
      const f = new RegistryFetcher(client, { targetBaseUrl: targets });
      assert.equal(
        dec(await f.fetch(`${meta}timestamp.json`, 100_000)),
        dec(sim.files.get('metadata/timestamp.json') as Uint8Array),
      );
      const name = [...sim.files.keys()].find((k) => k.startsWith('targets/')) as string;
      assert.equal(dec(await f.fetch(`${targets}${name.slice(8)}`, 100_000)), 'a');
    },
  },
  {
    id: 'R3-18',
    title: 'the first segment of an oci:// URL is always the registry',
    attack:
      "`oci://registry/tuf/meta` (a short, dotless registry host, as in a compose network) was parsed with Docker's rules and meant `docker.io/registry/tuf/meta`: the repository was fetched from, and published to, Docker Hub",
    source: 'attack round 3 (attack-b)',
    expect: 'BAD_REFERENCE',
    async run(t) {
      const r = parseOciUrl('oci://registry/tuf/meta:v1');
      assert.deepEqual(r, { registry: 'registry', repository: 'tuf/meta', tag: 'v1' });
      assert.equal(parseOciRepository('oci://registry/targets').registry, 'registry');
      assert.equal(parseOciUrl('oci://Registry:5000/tuf').registry, 'registry:5000');
      await t.refuses(() => parseOciUrl('oci:///tuf/meta'), 'BAD_REFERENCE');
    },
  },
  {
    id: 'R3-19',
    title: "publish does not believe a registry's 201 for the metadata image",
    attack:
      'The registry answers 201 to the metadata image `PUT` but stores nothing (or keeps the old image): `tufa repo publish --to oci://…` reported the repository pushed',
    source: 'attack round 3 (attack-b)',
    expect: 'DIGEST_MISMATCH',
    async run(t) {
      const { reg, client } = await registry(t);
      const sim = new RepositorySimulator(new SimRepo());
      sim.publish();
      reg.intercept = (req, res) => {
        if (req.method !== 'PUT' || !req.url?.includes('/manifests/latest')) return false;
        res.writeHead(201, { 'docker-content-digest': `sha256:${'0'.repeat(64)}` });
        res.end();
        return true;
      };
      await t.refuses(
        pushTufRepository(
          client,
          tree(sim),
          parseOciUrl(`oci://${reg.host}/tuf/meta:latest`),
          parseOciRepository(`oci://${reg.host}/tuf/t`),
        ),
        'DIGEST_MISMATCH',
        /the tag names nothing/,
      );
    },
  },
  {
    id: 'R3-20',
    title: '--targets-to the repository of the metadata image is refused before the first push',
    attack:
      "`tufa repo publish --to oci://R/tuf/meta --targets-to oci://R/tuf/meta`: target images and role images share the repository's tags; the collision was refused only after target images had been pushed over its tags",
    source: 'attack round 3 (attack-b)',
    expect: 'BAD_REFERENCE',
    async run(t) {
      const { reg, client } = await registry(t);
      await t.refuses(
        pushTufRepository(
          client,
          tree(fixture()),
          parseOciUrl(`oci://${reg.host}/tuf/meta:latest`),
          parseOciRepository(`oci://${reg.host}/tuf/meta/`),
        ),
        'BAD_REFERENCE',
        /must be another repository/,
      );
      assert.deepEqual(reg.requests, [], 'no request reached the registry');
    },
  },
];

describe('security round 3: TUF in a registry, the CLI conventions', () => {
  defineCases(cases);
});
