/**
 * The cache rules of the Updater, for each metadata store (the filesystem one and the in-memory
 * one): a cached file is deleted only when it fails verification under the current root's keys;
 * expired files stay rollback references; a rotation of the timestamp or snapshot keys drops
 * both (TUF 5.3.11), also when the root that rotated them was already expired when first seen.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initMetadataDir, Updater, type UpdaterOptions } from '../../../src/client/index.js';
import type { TufaError } from '../../../src/core/errors.js';
import { METADATA_URL, RepositorySimulator, TARGETS_URL } from '../../sim/repository-simulator.js';
import { expiresIn, NOW, SimRepo, TestKey } from '../../support/tuf-builder.js';

async function rejectsCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as TufaError).code, code, (e as Error).message);
    return true;
  });
}

describe('Updater cache rules (filesystem store)', () => {
  let dir: string;
  let md: string;
  let repo: SimRepo;
  let sim: RepositorySimulator;

  const updater = (extra: Partial<UpdaterOptions> = {}) =>
    new Updater({
      metadataDir: md,
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

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tufa-store-'));
    md = join(dir, 'metadata');
    repo = new SimRepo();
    sim = new RepositorySimulator(repo);
    await initMetadataDir(md, repo.rootBytes(1));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

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
    // and a genuine snapshot rollback under the current keys is still refused
    repo.snapshot.version = 1;
    repo.bump('timestamp');
    sim.publish();
    await rejectsCode(refresh(), 'ROLLBACK');
  });
});
