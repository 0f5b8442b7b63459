/**
 * The cache rules of the Updater, for each metadata store (the filesystem one and the in-memory
 * one): a cached file is deleted only when it fails verification under the current root's keys;
 * expired files stay rollback references; a rotation of the timestamp or snapshot keys drops
 * both (TUF 5.3.11), also when the root that rotated them was already expired when first seen.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MemoryMetadataStore,
  type MetadataStore,
  Updater,
  type UpdaterOptions,
} from '../../../src/client/index.js';
import type { TufaError } from '../../../src/core/errors.js';
import { METADATA_URL, RepositorySimulator, TARGETS_URL } from '../../sim/repository-simulator.js';
import { expiresIn, NOW, SimRepo, TestKey } from '../../support/tuf-builder.js';

async function rejectsCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as TufaError).code, code, (e as Error).message);
    return true;
  });
}

const enc = new TextEncoder();
const DAY = 86_400_000;
const TOP = ['root', 'timestamp', 'snapshot', 'targets'] as const;

for (const kind of ['filesystem', 'memory'] as const) {
  describe(`Updater cache rules (${kind} store)`, () => {
    let dir: string;
    let md: string;
    let repo: SimRepo;
    let sim: RepositorySimulator;
    let memory: MemoryMetadataStore;

    /** A client of the simulator on this kind of store, started from root v1's bytes. */
    const updater = (extra: Partial<UpdaterOptions> = {}) =>
      new Updater({
        ...(kind === 'memory' ? { store: memory } : { metadataDir: md }),
        trustedRoot: repo.rootBytes(1),
        metadataBaseUrl: METADATA_URL,
        targetBaseUrl: TARGETS_URL,
        fetcher: sim,
        now: () => NOW,
        ...extra,
      });
    const refresh = async (extra: Partial<UpdaterOptions> = {}) => {
      const u = updater(extra);
      await u.refresh();
      return u;
    };
    const store = (): MetadataStore => updater().store;
    /** cached reads the four top-level roles as stored (undefined when missing). */
    const cached = async () => {
      const out: Record<string, string | undefined> = {};
      for (const role of TOP) {
        const b = await store().read(role);
        out[role] = b === undefined ? undefined : Buffer.from(b).toString('latin1');
      }
      return out;
    };
    const versionOf = async (role: string) =>
      JSON.parse(new TextDecoder().decode(await store().read(role))).signed.version as number;
    const release = () => {
      repo.bump('targets');
      repo.bump('snapshot');
      repo.bump('timestamp');
      sim.publish();
    };

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'tufa-store-'));
      md = join(dir, 'metadata');
      repo = new SimRepo();
      sim = new RepositorySimulator(repo);
      memory = new MemoryMetadataStore();
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('starts from the trusted root bytes and keeps them (and refuses a root that does not sign itself)', async () => {
      const bad = new TextDecoder()
        .decode(repo.rootBytes(1))
        .replace('"version": 1', '"version": 7');
      await rejectsCode(refresh({ trustedRoot: enc.encode(bad) }), 'THRESHOLD_NOT_MET');
      assert.equal(await store().read('root'), undefined);
      await rejectsCode(
        new Updater({
          ...(kind === 'memory' ? { store: memory } : { metadataDir: md }),
          metadataBaseUrl: METADATA_URL,
          fetcher: sim,
        }).refresh(),
        'MISUSE',
      );
      for (const both of [{}, { store: memory, metadataDir: md }]) {
        assert.throws(
          () => new Updater({ ...both, metadataBaseUrl: METADATA_URL }),
          (e: TufaError) => e.code === 'MISUSE' && /metadataDir or store/.test(e.message),
        );
      }
      await refresh();
      assert.deepEqual(await store().read('root'), repo.rootBytes(1));
      assert.equal(await versionOf('snapshot'), 1);
    });

    it('a refresh failing on an expired root or a frozen timestamp deletes nothing', async () => {
      await refresh();
      release();
      await refresh();
      const tsV2 = sim.files.get('metadata/timestamp.json') as Uint8Array;
      release();
      await refresh();
      let before = await cached();
      // root v2, already expired: persisted, the refresh fails, nothing else changes
      repo.root.expires = expiresIn(-1);
      repo.publishRoot(repo.rootKeys);
      sim.publish();
      await rejectsCode(refresh(), 'EXPIRED');
      assert.equal(await versionOf('root'), 2);
      const after = await cached();
      for (const role of ['timestamp', 'snapshot', 'targets'])
        assert.equal(after[role], before[role], `${role} kept`);
      // renewed; an older timestamp is a rollback against the kept one
      repo.root.expires = expiresIn(365);
      repo.publishRoot(repo.rootKeys);
      sim.publish();
      sim.overrides.set('metadata/timestamp.json', tsV2);
      await rejectsCode(refresh(), 'ROLLBACK');
      assert.equal(await versionOf('timestamp'), 3);
      sim.overrides.clear();
      // a frozen timestamp two days later: refused, every file kept (the expired one too)
      await refresh();
      before = await cached();
      await rejectsCode(refresh({ now: () => NOW + 2 * DAY }), 'EXPIRED');
      assert.deepEqual(await cached(), before);
      await rejectsCode(refresh({ now: () => NOW + 2 * DAY, offline: true }), 'EXPIRED');
      assert.deepEqual(await cached(), before);
    });

    it('a rotation of the snapshot keys drops both cached files: a fast-forward is recovered (TUF 5.3.11)', async () => {
      await refresh();
      repo.snapshot.version = 99_999;
      repo.bump('timestamp');
      sim.publish();
      await refresh();
      const rootKeys = repo.rootKeys;
      repo.snapshotKeys = [new TestKey()];
      repo.setRootKeys();
      repo.publishRoot(rootKeys);
      repo.snapshot.version = 2;
      release();
      await refresh();
      assert.equal(await versionOf('snapshot'), 3);
    });

    it('a cached timestamp the current timestamp keys do not sign is dropped (TUF 5.3.11)', async () => {
      repo.timestamp.version = 1000;
      sim.publish();
      await refresh();
      repo.timestampKeys = [new TestKey()];
      repo.setRootKeys();
      repo.publishRoot(repo.rootKeys);
      repo.timestamp.version = 1;
      sim.publish();
      const u = await refresh();
      assert.equal(u.trusted.timestamp?.signed.version, 1);
      assert.equal(await versionOf('timestamp'), 1);
    });

    it('recovers from a snapshot fast-forward when the root rotating the snapshot keys was expired when first seen (TUF 5.3.11)', async () => {
      await refresh();
      // fast-forward: the (compromised) snapshot key signs v99999, the timestamp names it
      repo.snapshot.version = 99_999;
      repo.bump('timestamp');
      sim.publish();
      await refresh();
      // recovery: root v2 rotates the snapshot key, but the client first sees it expired
      const rootKeys = repo.rootKeys;
      repo.snapshotKeys = [new TestKey()];
      repo.setRootKeys();
      repo.root.expires = expiresIn(-1);
      repo.publishRoot(rootKeys);
      sim.publish();
      await rejectsCode(refresh(), 'EXPIRED');
      assert.equal(await versionOf('snapshot'), 99_999, 'an expired root deletes nothing');
      // root v3 renews it (same keys as v2); the repository starts again at snapshot v2
      repo.root.expires = expiresIn(365);
      repo.publishRoot(rootKeys);
      repo.snapshot.version = 2;
      repo.bump('targets');
      repo.bump('timestamp');
      sim.publish();
      const u = await refresh();
      assert.equal(u.trusted.root.signed.version, 3);
      assert.equal(u.trusted.snapshot?.signed.version, 2);
      assert.equal(await versionOf('snapshot'), 2);
      // and a genuine snapshot rollback under the current keys is still refused
      repo.snapshot.version = 1;
      repo.bump('timestamp');
      sim.publish();
      await rejectsCode(refresh(), 'ROLLBACK');
      assert.equal(await versionOf('snapshot'), 2);
    });

    it('fetchTarget returns the verified bytes; wrong bytes are refused', async () => {
      const content = enc.encode('hello, store');
      sim.addTargetFile('dir/hello.txt', content);
      sim.publish();
      const u = await refresh();
      const info = await u.getTargetInfo('dir/hello.txt');
      assert.ok(info !== undefined);
      assert.deepEqual(await u.fetchTarget(info), content);
      const name = `targets/dir/${[...sim.files.keys()].find((k) => k.endsWith('.hello.txt'))?.slice(12)}`;
      sim.overrides.set(name, enc.encode('hello, STORE'));
      await rejectsCode(u.fetchTarget(info), 'LENGTH_OR_HASH_MISMATCH');
      // no target folder: downloadTarget has nowhere to write, and nothing was written
      await rejectsCode(u.downloadTarget(info), 'MISUSE');
      if (kind === 'memory') assert.ok(!existsSync(md) && readdirSync(dir).length === 0);
    });

    it('two refreshes of one store at once both succeed', async () => {
      await refresh();
      release();
      const [a, b] = [updater(), updater()];
      await Promise.all([a.refresh(), b.refresh()]);
      assert.equal(a.trusted.snapshot?.signed.version, 2);
      assert.equal(b.trusted.snapshot?.signed.version, 2);
    });
  });
}
