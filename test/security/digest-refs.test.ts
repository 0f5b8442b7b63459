/**
 * Security round 3 (issue 15 part 2): digest references. An image named by digest alone
 * (`registry/repo@sha256:D`) verifies only when a signed target of that repository has D: the
 * signing side (`Workspace.addImage`, `tufa repo add-image`) lists the digest path beside the
 * tag and takes it away when the tag moves or goes. Images sit in an in-process registry
 * (test/support/oci-sim.ts); the TUF repository is a real signing workspace, published and
 * served on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AdmissionController } from '../../src/admission/index.js';
import { ImageArgs } from '../../src/cli/images.js';
import type { Key } from '../../src/core/index.js';
import { RegistryClient } from '../../src/oci/index.js';
import {
  hashesOf,
  KeyObjectSigner,
  publishWorkspace,
  type Signer,
  Workspace,
} from '../../src/repository/index.js';
import { TrustPolicy } from '../../src/verify/policy.js';
import { ImageVerifier } from '../../src/verify/verify-image.js';
import { NotaryFixtureFetcher } from '../support/notary-fixtures.js';
import {
  ecdsaKey,
  forgeClock,
  forgeCollection,
  forgedCrawl,
  forgeRoot,
  Openssl,
  x509Key,
} from '../support/notary-forge.js';
import { OciSim, type SimImage } from '../support/oci-sim.js';
import { StaticServer } from '../support/static-server.js';
import { type CaseContext, defineCases, type SecurityCase } from './harness.js';

const te = new TextEncoder();

const signer = (): KeyObjectSigner =>
  new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);

interface DigestWorld {
  readonly reg: OciSim;
  readonly ws: Workspace;
  /** Pushed to `demo/app`: `v1` (tagged 1.0 upstream), `v2`, `v3`, `unsigned`. */
  readonly img: Record<'v1' | 'v2' | 'v3' | 'unsigned', SimImage>;
  image(path: string): string;
  entry(img: SimImage): { length: number; hashes: Record<string, string> };
  /** release signs every role, publishes the workspace and returns a fresh verifier of it. */
  release(): Promise<ImageArgs>;
}

/** world: a registry, a signing workspace (optionally with 2^bins succinct hashed bins). */
async function world(t: CaseContext, bins?: number): Promise<DigestWorld> {
  const reg = await OciSim.start();
  t.defer(() => reg.close());
  const push = (label: string, tag?: string) =>
    reg.pushImage('demo/app', tag, [te.encode(`layer of ${label}`)]);
  const img = { v1: push('v1', '1.0'), v2: push('v2'), v3: push('v3'), unsigned: push('x') };
  const dir = t.tmp();
  const k: Record<'root' | 'targets' | 'snapshot' | 'timestamp' | 'bin', Signer> = {
    root: signer(),
    targets: signer(),
    snapshot: signer(),
    timestamp: signer(),
    bin: signer(),
  };
  const pub = (s: Signer): Key[] => [s.publicKey];
  const ws = await Workspace.init(join(dir, 'repo'), {
    keys: {
      root: pub(k.root),
      targets: pub(k.targets),
      snapshot: pub(k.snapshot),
      timestamp: pub(k.timestamp),
    },
    now: Date.now(),
  });
  if (bins !== undefined)
    await ws.delegate({ name: 'bin', keys: pub(k.bin), succinctBits: bins, threshold: 1 });
  const site = join(dir, 'site');
  mkdirSync(site);
  const server = await StaticServer.start(site);
  t.defer(() => server.close());
  let n = 0;
  return {
    reg,
    ws,
    img,
    image: (path) => `${reg.host}/${path}`,
    entry: (i) => ({ length: i.bytes.length, hashes: hashesOf(i.bytes) }),
    async release() {
      for (const { name } of await ws.targetsRoles())
        await ws.sign(name, name === 'targets' ? k.targets : k.bin);
      await ws.sign('root', k.root);
      await ws.refreshSnapshotMeta();
      await ws.sign('snapshot', k.snapshot);
      await ws.refreshTimestampMeta();
      await ws.sign('timestamp', k.timestamp);
      await publishWorkspace(ws, site);
      if (n === 0) writeFileSync(join(dir, 'root.json'), await ws.bytes('root'));
      const policy = TrustPolicy.fromJSON(
        {
          rules: [
            { match: `${reg.host}/**`, tuf: { metadataUrl: server.url(''), root: 'root.json' } },
          ],
        },
        dir,
      );
      const registry = new RegistryClient();
      const v = new ImageArgs(
        new ImageVerifier({
          policy,
          registry,
          files: (path) => readFile(path),
          cacheDir: join(dir, `cache-${++n}`),
        }),
        registry,
      );
      t.defer(() => v.close());
      return v;
    },
  };
}

const cases: SecurityCase[] = [
  {
    id: 'R3-01',
    title:
      'a digest reference verifies only when a signed target of that repository has the digest',
    attack:
      'Deploy demo/app@<a digest pushed to the registry but never signed>, or the signed digest under another repository (demo/other@<signed digest>), or a digest-only image where nothing lists the digest path',
    source: 'issue 15 part 2 (digest references)',
    expect: 'UNSIGNED_IMAGE',
    async run(t) {
      const w = await world(t);
      await w.ws.addImage(w.image('demo/app:1.0'), w.entry(w.img.v1));
      const v = await w.release();
      const ok = await v.verify(w.image(`demo/app@${w.img.v1.digest}`));
      assert.equal(ok.digest, w.img.v1.digest);
      assert.equal(ok.pinned, w.image(`demo/app@${w.img.v1.digest}`));
      assert.equal(ok.targetPath, w.image(`demo/app@${w.img.v1.digest}`));
      await t.refuses(v.verify(w.image(`demo/app@${w.img.unsigned.digest}`)), 'UNSIGNED_IMAGE');
      await t.refuses(v.verify(w.image(`demo/other@${w.img.v1.digest}`)), 'UNSIGNED_IMAGE');
    },
  },
  {
    id: 'R3-02',
    title: 'a digest path whose entry lists other bytes is refused',
    attack:
      'A signer (or a hand-edited role) lists demo/app@sha256:<A> with the length and hashes of manifest B, so that asking for A would deploy B',
    source: 'issue 15 part 2: the signed digest must be the one asked for',
    expect: 'DIGEST_MISMATCH',
    async run(t) {
      const w = await world(t);
      await w.ws.addTarget(w.image(`demo/app@${w.img.v1.digest}`), w.entry(w.img.unsigned));
      const v = await w.release();
      await t.refuses(v.verify(w.image(`demo/app@${w.img.v1.digest}`)), 'DIGEST_MISMATCH');
    },
  },
  {
    id: 'R3-03',
    title: 'tag@digest needs both: the tag signed, and its signed digest equal to the one given',
    attack:
      'demo/app:1.0@<another signed digest of the repository>; demo/app:9.9@<a signed digest> where tag 9.9 was never signed',
    source: 'issue 15 part 2',
    expect: 'DIGEST_MISMATCH | UNSIGNED_IMAGE',
    async run(t) {
      const w = await world(t);
      await w.ws.addImage(w.image('demo/app:1.0'), w.entry(w.img.v1));
      await w.ws.addImage(w.image('demo/app:2.0'), w.entry(w.img.v2));
      const v = await w.release();
      const both = await v.verify(w.image(`demo/app:1.0@${w.img.v1.digest}`));
      assert.equal(both.digest, w.img.v1.digest);
      await t.refuses(
        v.verify(w.image(`demo/app:1.0@${w.img.v2.digest}`)),
        'DIGEST_MISMATCH',
        /is not the signed/,
      );
      await t.refuses(v.verify(w.image(`demo/app:9.9@${w.img.v1.digest}`)), 'UNSIGNED_IMAGE');
    },
  },
  {
    id: 'R3-04',
    title: 'a re-released or removed tag takes its old digest with it, unless another tag has it',
    attack:
      'demo/app:1.0 is re-released from a vulnerable v1 to v2; the vulnerable digest stays deployable as demo/app@<v1>; with hashed bins the digest path lands in another bin than the tag; removing the tag leaves its digest signed',
    source: 'issue 15 part 2 (a re-released tag must not leave its vulnerable digest signed)',
    expect: 'UNSIGNED_IMAGE',
    timeout: 60_000,
    async run(t) {
      const w = await world(t, 4); // 16 bins: tag and digest paths fall in different bins
      const at = (i: SimImage) => w.image(`demo/app@${i.digest}`);
      await w.ws.addImage(w.image('demo/app:1.0'), w.entry(w.img.v1));
      let v = await w.release();
      assert.equal((await v.verify(at(w.img.v1))).digest, w.img.v1.digest);
      // re-release 1.0: v1's digest path goes
      await w.ws.addImage(w.image('demo/app:1.0'), w.entry(w.img.v2));
      // stable and 1.0 both point at v2; then 1.0 moves on: v2 stays signed through stable
      await w.ws.addImage(w.image('demo/app:stable'), w.entry(w.img.v2));
      await w.ws.addImage(w.image('demo/app:1.0'), w.entry(w.img.v3));
      v = await w.release();
      await t.refuses(v.verify(at(w.img.v1)), 'UNSIGNED_IMAGE');
      assert.equal((await v.verify(at(w.img.v2))).digest, w.img.v2.digest);
      assert.equal((await v.verify(at(w.img.v3))).digest, w.img.v3.digest);
      // removing the last tag of v2 removes its digest path
      await w.ws.removeTarget(w.image('demo/app:stable'));
      v = await w.release();
      await t.refuses(v.verify(at(w.img.v2)), 'UNSIGNED_IMAGE');
      assert.equal((await v.verify(w.image('demo/app:1.0'))).digest, w.img.v3.digest);
      // the digest paths were listed in bins, never in targets (one walk finds them)
      const top = (await w.ws.read('targets')).signed.targets as object;
      assert.deepEqual(Object.keys(top), []);
    },
  },
  {
    id: 'R3-05',
    title: 'the webhook verifies a digest-only image, and its pinned output verifies on UPDATE',
    attack:
      'A Pod names demo/app@<signed digest> (once denied outright), or an unsigned digest; the webhook patches demo/app:1.0 to its pinned form, and a later UPDATE carries that pinned form',
    source: 'issue 15 part 2 (webhook)',
    expect: 'UNSIGNED_IMAGE',
    async run(t) {
      const w = await world(t);
      await w.ws.addImage(w.image('demo/app:1.0'), w.entry(w.img.v1));
      const v = await w.release();
      const registry = new RegistryClient();
      t.defer(() => registry.close());
      const ctl = new AdmissionController({
        verifier: v.verifier,
        registry,
        deadlineMs: 10_000,
      });
      const review = (image: string, operation = 'CREATE') => ({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          operation,
          namespace: 'default',
          name: 'x',
          object: { spec: { containers: [{ name: 'c', image }] } },
          ...(operation === 'UPDATE'
            ? { oldObject: { spec: { containers: [{ name: 'c', image: 'old.example/x:1' }] } } }
            : {}),
        },
      });
      const byDigest = w.image(`demo/app@${w.img.v1.digest}`);
      const a = await ctl.review(review(byDigest), 'mutate');
      assert.equal(a.allowed, true, JSON.stringify(a.verdicts));
      assert.equal(a.verdicts[0]?.pinned, byDigest);
      const tagged = await ctl.review(review(w.image('demo/app:1.0')), 'mutate');
      const pinned = tagged.verdicts[0]?.pinned as string;
      assert.equal(pinned, w.image(`demo/app:1.0@${w.img.v1.digest}`));
      for (const image of [pinned, byDigest]) {
        const u = await ctl.review(review(image, 'UPDATE'), 'validate');
        assert.equal(u.allowed, true, `${image}: ${JSON.stringify(u.verdicts)}`);
      }
      const bad = await ctl.review(
        review(w.image(`demo/app@${w.img.unsigned.digest}`)),
        'validate',
      );
      assert.equal(bad.allowed, false);
      assert.equal(bad.verdicts[0]?.code, 'UNSIGNED_IMAGE');
      t.refusedBy('UNSIGNED_IMAGE');
    },
  },
  {
    id: 'R3-06',
    title:
      'Notary: a digest verifies when a tag Docker Content Trust resolves has it, never a shadowed entry',
    attack:
      'targets lists 1.0 as the vulnerable v1; targets/releases re-releases 1.0 as v2: demo/app@<v1> would stay deployable if any entry counted; a digest no tag has',
    source: 'issue 15 part 2 (Notary: targets/releases, else targets, as DCT resolves a tag)',
    expect: 'UNSIGNED_IMAGE',
    timeout: 30_000,
    async run(t) {
      const reg = await OciSim.start();
      t.defer(() => reg.close());
      const push = (label: string) => reg.pushImage('demo/app', undefined, [te.encode(label)]);
      const v1 = push('v1');
      const v2 = push('v2');
      const unsigned = push('x');
      const gun = `${reg.host}/demo/app`;
      const leaf = new Openssl(t.tmp()).cert({ cn: gun, days: 3650 });
      const keys = {
        root: [x509Key(leaf.pem, leaf.privateKey)],
        targets: [ecdsaKey()],
        snapshot: [ecdsaKey()],
        timestamp: [ecdsaKey()],
      };
      const text = (i: SimImage) => new TextDecoder().decode(i.bytes);
      const collection = forgeCollection({
        roots: [forgeRoot(1, keys)],
        keys,
        tags: { '1.0': text(v1) },
        delegations: [{ name: 'targets/releases', keys: [ecdsaKey()], tags: { '1.0': text(v2) } }],
      });
      const server = 'https://notary.test';
      const dir = t.tmp();
      const registry = new RegistryClient();
      const v = new ImageArgs(
        new ImageVerifier({
          registry,
          policy: TrustPolicy.fromJSON(
            {
              rules: [
                { match: `${reg.host}/**`, notary: { server, rootKeys: [keys.root[0]?.id] } },
              ],
            },
            dir,
          ),
          cacheDir: join(dir, 'cache'),
          fetcher: new NotaryFixtureFetcher(forgedCrawl(server, gun, collection)),
          now: forgeClock(),
        }),
        registry,
      );
      t.defer(() => v.close());
      const ok = await v.verify(`${gun}@${v2.digest}`);
      assert.equal(ok.digest, v2.digest);
      assert.equal((await v.verify(`${gun}:1.0@${v2.digest}`)).digest, v2.digest);
      await t.refuses(v.verify(`${gun}@${v1.digest}`), 'UNSIGNED_IMAGE', /targets\/releases/);
      await t.refuses(v.verify(`${gun}@${unsigned.digest}`), 'UNSIGNED_IMAGE');
    },
  },
];

describe('security round 3: digest references (issue 15 part 2)', () => {
  defineCases(cases);
});
