/**
 * attack-a: the new metadata stores, `trustedRoot` bytes, fetchTarget and the fast-forward
 * recovery of the Updater.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryMetadataStore, Updater, type UpdaterOptions } from '../../src/client/index.js';
import type { TufaError } from '../../src/core/errors.js';
import { METADATA_URL, RepositorySimulator, TARGETS_URL } from '../sim/repository-simulator.js';
import { NOW, SimRepo, TestKey } from '../support/tuf-builder.js';

async function rejectsCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as TufaError).code, code, (e as Error).message);
    return true;
  });
}

for (const kind of ['filesystem', 'memory'] as const) {
  describe(`attack-a: Updater store (${kind})`, () => {
    let dir: string;
    let md: string;
    let repo: SimRepo;
    let sim: RepositorySimulator;
    let memory: MemoryMetadataStore;
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
    const versionOf = async (role: string) =>
      JSON.parse(new TextDecoder().decode(await updater().store.read(role))).signed
        .version as number;
    const release = () => {
      repo.bump('targets');
      repo.bump('snapshot');
      repo.bump('timestamp');
      sim.publish();
    };
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'attack-a-store-'));
      md = join(dir, 'metadata');
      mkdirSync(md);
      repo = new SimRepo();
      sim = new RepositorySimulator(repo);
      memory = new MemoryMetadataStore();
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('held: an attacker serving an older timestamp (to trigger the fast-forward drop) gets ROLLBACK, nothing dropped', async () => {
      await refresh();
      release();
      const oldTs = sim.files.get('metadata/timestamp.json') as Uint8Array;
      const oldSn = sim.files.get('metadata/2.snapshot.json') as Uint8Array;
      release();
      await refresh();
      sim.overrides.set('metadata/timestamp.json', oldTs);
      sim.overrides.set('metadata/3.snapshot.json', oldSn);
      await rejectsCode(refresh(), 'ROLLBACK');
      await rejectsCode(refresh(), 'ROLLBACK');
      assert.equal(await versionOf('timestamp'), 3);
      assert.equal(await versionOf('snapshot'), 3);
    });

    it('BROKEN? a newer trustedRoot (root keys rotated after a compromise) loses to an older cached root ("the store\'s root (as new or newer) is used")', async () => {
      await refresh(); // the store holds root v1
      const compromised = repo.rootKeys;
      repo.rootKeys = [new TestKey()];
      repo.setRootKeys();
      repo.publishRoot(compromised); // v2: the old root key is out
      sim.publish();
      // the embedder ships root v2 as its trust anchor; the attacker (holding the v1 root key)
      // withholds 2.root.json and serves its own 2.root.json signed by the compromised key
      const attackerKeys = [new TestKey()];
      const forkRepo = repo; // reuse the builder: fork root v2 signed by the compromised key
      const saved = forkRepo.rootKeys;
      forkRepo.rootKeys = attackerKeys;
      forkRepo.setRootKeys();
      (forkRepo.root as { version: number }).version = 1;
      const forged = forkRepo.publishRoot(compromised, [...compromised, ...attackerKeys]);
      forkRepo.rootKeys = saved;
      sim.overrides.set('metadata/2.root.json', forged);
      const u = updater({ trustedRoot: repo.rootBytes(2) });
      await u.refresh().catch(() => undefined);
      const root = JSON.parse(new TextDecoder().decode(await u.store.read('root')));
      assert.ok(
        !root.signed.roles.root.keyids.includes(attackerKeys[0]?.keyid),
        'the cached (older, compromised) root won over the newer trustedRoot: the attacker root was accepted',
      );
    });

    if (kind === 'filesystem') {
      it('held: targetDir as a symlink to metadataDir, or planned under one, is refused', async () => {
        const u0 = await refresh();
        const content = new TextEncoder().encode('timestamp.json');
        sim.addTargetFile('timestamp.json', content);
        release();
        await u0.close();
        const link = join(dir, 'link');
        symlinkSync(md, link);
        for (const targetDir of [link, join(link, 'sub'), join(md, '..', 'metadata')]) {
          const u = await refresh({ targetDir });
          const info = await u.getTargetInfo('timestamp.json');
          assert.ok(info);
          await rejectsCode(u.downloadTarget(info), 'MISUSE');
        }
        const u = await refresh({ targetDir: join(dir, 't') });
        const info = await u.getTargetInfo('timestamp.json');
        assert.ok(info);
        await rejectsCode(u.downloadTarget(info, join(link, 'timestamp.json')), 'MISUSE');
        assert.equal(await versionOf('timestamp'), 2);
      });
    }

    it('held: a memory store is not changed by the caller mutating bytes it wrote or read', async () => {
      const s = new MemoryMetadataStore();
      const b = new Uint8Array([1, 2, 3]);
      await s.write('root', b);
      b[0] = 9;
      const r = (await s.read('root')) as Uint8Array;
      r[1] = 9;
      assert.deepEqual(await s.read('root'), new Uint8Array([1, 2, 3]));
    });
  });
}
