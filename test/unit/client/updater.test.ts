/**
 * The Updater against the in-process repository simulator: request sequences, cache contents,
 * key rotations, rollback and fast-forward, lazy delegations, target downloads, offline mode.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initMetadataDir, Updater, type UpdaterOptions } from '../../../src/client/index.js';
import type { TufaError } from '../../../src/core/errors.js';
import { METADATA_URL, RepositorySimulator, TARGETS_URL } from '../../sim/repository-simulator.js';
import { expiresIn, NOW, SimRepo, TestKey } from '../../support/tuf-builder.js';

const enc = new TextEncoder();
const DAY = 86_400_000;

async function rejectsCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as TufaError).code, code, (e as Error).message);
    return true;
  });
}

describe('Updater (simulated repository)', () => {
  let dir: string;
  let md: string;
  let td: string;
  let repo: SimRepo;
  let sim: RepositorySimulator;

  const updater = (extra: Partial<UpdaterOptions> = {}) =>
    new Updater({
      metadataDir: md,
      metadataBaseUrl: METADATA_URL,
      targetDir: td,
      targetBaseUrl: TARGETS_URL,
      fetcher: sim,
      now: () => NOW,
      ...extra,
    });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tufa-updater-'));
    md = join(dir, 'metadata');
    td = join(dir, 'targets');
    repo = new SimRepo();
    sim = new RepositorySimulator(repo);
    await initMetadataDir(md, repo.rootBytes(1));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('fresh refresh: root chain, timestamp, snapshot, targets, in that order', async () => {
    await updater().refresh();
    assert.deepEqual(sim.take(), [
      'metadata/2.root.json',
      'metadata/timestamp.json',
      'metadata/1.snapshot.json',
      'metadata/1.targets.json',
    ]);
    assert.deepEqual(readdirSync(md).sort(), [
      'root.json',
      'snapshot.json',
      'targets.json',
      'timestamp.json',
    ]);
    assert.deepEqual(
      new Uint8Array(readFileSync(join(md, 'timestamp.json'))),
      repo.timestampBytes(),
    );
  });

  it('warm refresh with nothing new: only N+1 root and timestamp; equal timestamp not rewritten', async () => {
    await updater().refresh();
    sim.take();
    const before = statSync(join(md, 'timestamp.json'));
    await new Promise((r) => setTimeout(r, 20));
    await updater().refresh();
    assert.deepEqual(sim.take(), ['metadata/2.root.json', 'metadata/timestamp.json']);
    assert.equal(statSync(join(md, 'timestamp.json')).mtimeMs, before.mtimeMs);
  });

  it('warm refresh after a new targets version fetches snapshot and targets by version', async () => {
    await updater().refresh();
    sim.take();
    repo.bump('targets');
    repo.bump('snapshot');
    repo.bump('timestamp');
    sim.publish();
    await updater().refresh();
    assert.deepEqual(sim.take(), [
      'metadata/2.root.json',
      'metadata/timestamp.json',
      'metadata/2.snapshot.json',
      'metadata/2.targets.json',
    ]);
  });

  it('follows a root rotation chain and persists the newest root', async () => {
    const k1 = repo.rootKeys;
    repo.rootKeys = [new TestKey()];
    repo.setRootKeys();
    repo.publishRoot(k1);
    const k2 = repo.rootKeys;
    repo.rootKeys = [new TestKey('ecdsa')];
    repo.setRootKeys();
    repo.publishRoot(k2);
    sim.publish();
    const u = updater();
    await u.refresh();
    assert.deepEqual(sim.take().slice(0, 3), [
      'metadata/2.root.json',
      'metadata/3.root.json',
      'metadata/4.root.json',
    ]);
    assert.equal(u.trusted.root.signed.version, 3);
    assert.deepEqual(new Uint8Array(readFileSync(join(md, 'root.json'))), repo.rootBytes(3));
  });

  it('stops after maxRootRotations new roots', async () => {
    for (let i = 0; i < 4; i++) repo.publishRoot(repo.rootKeys);
    sim.publish();
    const u = updater({ config: { maxRootRotations: 2 } });
    await u.refresh();
    assert.deepEqual(
      sim.take().filter((r) => r.endsWith('root.json')),
      ['metadata/2.root.json', 'metadata/3.root.json'],
    );
    assert.equal(u.trusted.root.signed.version, 3);
  });

  it('refuses a root N+1 that the old keys did not sign, and keeps the old root', async () => {
    repo.rootKeys = [new TestKey()];
    repo.setRootKeys();
    repo.publishRoot([], repo.rootKeys);
    sim.publish();
    await rejectsCode(updater().refresh(), 'THRESHOLD_NOT_MET');
    assert.deepEqual(new Uint8Array(readFileSync(join(md, 'root.json'))), repo.rootBytes(1));
  });

  it('refuses a timestamp rollback and keeps the newer cached copy (CVE-2022-29173)', async () => {
    repo.timestamp.version = 5;
    sim.publish();
    await updater().refresh();
    const newer = readFileSync(join(md, 'timestamp.json'));
    repo.timestamp.version = 4;
    sim.publish();
    await rejectsCode(updater().refresh(), 'ROLLBACK');
    assert.deepEqual(readFileSync(join(md, 'timestamp.json')), newer);
  });

  it('uses an expired cached timestamp as rollback reference', async () => {
    repo.timestamp.version = 5;
    sim.publish();
    await updater().refresh();
    repo.timestamp.version = 4;
    repo.timestamp.expires = expiresIn(10);
    sim.publish();
    // two days later the cached v5 has expired; the mirror serves an older v4
    await rejectsCode(updater({ now: () => NOW + 2 * DAY }).refresh(), 'ROLLBACK');
  });

  it('recovers from a fast-forward attack once the timestamp key is rotated (TUF 5.3.11)', async () => {
    repo.timestamp.version = 1000; // attacker-inflated, signed with the (compromised) timestamp key
    sim.publish();
    await updater().refresh();
    repo.timestampKeys = [new TestKey()];
    repo.setRootKeys();
    repo.publishRoot(repo.rootKeys);
    repo.timestamp.version = 1;
    sim.publish();
    const u = updater();
    await u.refresh();
    assert.equal(u.trusted.timestamp?.signed.version, 1);
  });

  it('refuses everything when the local root does not verify, before any request', async () => {
    const bytes = new TextDecoder()
      .decode(repo.rootBytes(1))
      .replace('"version": 1', '"version": 9');
    writeFileSync(join(md, 'root.json'), bytes);
    await rejectsCode(updater().refresh(), 'THRESHOLD_NOT_MET');
    assert.deepEqual(sim.take(), []);
  });

  it('fails cleanly on a 404 in the middle and caches nothing unverified', async () => {
    sim.overrides.set('metadata/1.snapshot.json', 404);
    await rejectsCode(updater().refresh(), 'HTTP_STATUS');
    assert.ok(!existsSync(join(md, 'snapshot.json')));
    assert.ok(!existsSync(join(md, 'targets.json')));
  });

  it('bounds the snapshot read by the length timestamp lists', async () => {
    const real = sim.files.get('metadata/1.snapshot.json') as Uint8Array;
    sim.overrides.set(
      'metadata/1.snapshot.json',
      new Uint8Array([...real, ...enc.encode(' '.repeat(1000))]),
    );
    await rejectsCode(updater().refresh(), 'TOO_LARGE');
  });

  it('fetches delegated roles only when the search reaches them, in pre-order', async () => {
    repo.delegate('targets', 'A', { paths: ['a/*'] });
    repo.delegate('targets', 'B', { paths: ['b/*'] });
    repo.delegate('B', 'B1', { paths: ['b/*'] });
    sim.addTargetFile('b/x', enc.encode('x'), 'B1');
    sim.publish();
    const u = updater();
    await u.refresh();
    sim.take();
    const info = await u.getTargetInfo('b/x');
    assert.equal(info?.length, 1);
    assert.deepEqual(sim.take(), ['metadata/1.B.json', 'metadata/1.B1.json']);
    assert.equal(await u.getTargetInfo('c/none'), undefined);
    assert.deepEqual(sim.take(), []);
  });

  it('keeps a role named with path traversal inside the metadata folder (CVE-2021-41131)', async () => {
    repo.delegate('targets', '../../evil', { paths: ['*'] });
    repo.delegate('targets', 'a/b', { paths: ['*'] });
    sim.addTargetFile('f', enc.encode('f'), 'a/b');
    sim.publish();
    const u = updater();
    await u.refresh();
    assert.ok(await u.getTargetInfo('f'));
    assert.deepEqual(readdirSync(md).sort(), [
      '..%2F..%2Fevil.json',
      'a%2Fb.json',
      'root.json',
      'snapshot.json',
      'targets.json',
      'timestamp.json',
    ]);
    assert.ok(
      !existsSync(join(dir, 'evil.json')) && !existsSync(join(md, '..', '..', 'evil.json')),
    );
  });

  it('downloads a target by hash name, verifies it, and does not fetch it again', async () => {
    sim.addTargetFile('dir/file.txt', enc.encode('content'));
    sim.publish();
    const u = updater();
    await u.refresh();
    const info = await u.getTargetInfo('dir/file.txt');
    assert.ok(info);
    assert.equal(await u.findCachedTarget(info), undefined);
    sim.take();
    const file = await u.downloadTarget(info);
    assert.equal(file, join(td, 'dir%2Ffile.txt'));
    assert.equal(readFileSync(file, 'utf8'), 'content');
    assert.equal(sim.take().length, 1);
    assert.equal(await u.findCachedTarget(info), file);
  });

  it('refuses a target with the wrong bytes and writes nothing', async () => {
    sim.addTargetFile('f.bin', enc.encode('genuine'));
    sim.publish();
    const u = updater();
    await u.refresh();
    const info = await u.getTargetInfo('f.bin');
    assert.ok(info);
    const [name] = [...sim.files.keys()].filter((k) => k.startsWith('targets/'));
    sim.overrides.set(name as string, enc.encode('malware'));
    await rejectsCode(u.downloadTarget(info), 'LENGTH_OR_HASH_MISMATCH');
    assert.ok(!existsSync(td) || readdirSync(td).length === 0);
    sim.overrides.set(name as string, enc.encode('genuine!!'));
    await rejectsCode(u.downloadTarget(info), 'TOO_LARGE');
  });

  it('offline: verifies from the cache alone; expired only with the separate option', async () => {
    sim.addTargetFile('t', enc.encode('t'));
    sim.publish();
    await updater().refresh();
    sim.take();
    const off = updater({ offline: true });
    await off.refresh();
    assert.ok(await off.getTargetInfo('t'));
    assert.deepEqual(sim.take(), []);
    const later = () => NOW + 3 * DAY;
    await rejectsCode(updater({ offline: true, now: later }).refresh(), 'EXPIRED');
    await updater({ offline: true, now: later, allowExpiredMetadata: true }).refresh();
    assert.throws(
      () => updater({ allowExpiredMetadata: true }),
      /only allowed together with offline/,
    );
    assert.deepEqual(sim.take(), []);
  });

  it('two refreshes of one folder at once both end in a valid state', async () => {
    await Promise.all([updater().refresh(), updater().refresh()]);
    const u = updater({ offline: true });
    await u.refresh();
    assert.equal(u.trusted.timestamp?.signed.version, 1);
    assert.ok(!readdirSync(md).some((f) => f.endsWith('.tmp') || f === '.tufa.lock'));
  });
});

describe('Updater cache names', () => {
  it('percent-encodes capitals, so Root or A never share a file with root or a on a case-insensitive disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tufa-updater-case-'));
    try {
      const repo = new SimRepo();
      repo.delegate('targets', 'A', { paths: ['*'] });
      repo.delegate('targets', 'a', { paths: ['*'] });
      const sim = new RepositorySimulator(repo);
      sim.addTargetFile('f', enc.encode('f'), 'a');
      sim.publish();
      const md = join(dir, 'md');
      await initMetadataDir(md, repo.rootBytes(1));
      const u = new Updater({
        metadataDir: md,
        metadataBaseUrl: METADATA_URL,
        fetcher: sim,
        now: () => NOW,
      });
      await u.refresh();
      assert.ok(await u.getTargetInfo('f'));
      assert.deepEqual(
        readdirSync(md)
          .filter((n) => !n.startsWith('.'))
          .sort(),
        ['%41.json', 'a.json', 'root.json', 'snapshot.json', 'targets.json', 'timestamp.json'],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
