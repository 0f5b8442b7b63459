/**
 * The attacks the TUF specification (1.0.34, "Goals" → "Attacks and weaknesses") lists, each
 * mounted against tufa's client through the public API (Updater with the repository simulator or
 * with HttpFetcher on 127.0.0.1) and, where a subprocess can show it quickly, through
 * `tufa tuf … refresh|download`.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HttpFetcher, Updater } from '../../src/client/index.js';
import { envelope, expiresIn, NOW, SimRepo, sha256Hex, TestKey } from '../support/tuf-builder.js';
import { defineCases, publishEncoded, type SecurityCase, show } from './harness.js';
import { httpWorld, manifestBytes, type SimWorld, simWorld, te, verifyInLayout } from './worlds.js';

const DAY = 86_400_000;

/** targetName is the simulator's file of a target under consistent snapshots. */
function targetName(path: string, content: Uint8Array): string {
  const slash = path.lastIndexOf('/');
  return `targets/${path.slice(0, slash + 1)}${sha256Hex(content)}.${path.slice(slash + 1)}`;
}

/** release publishes new versions of targets, snapshot and timestamp. */
function release(w: { repo: SimRepo; sim: SimWorld['sim'] }): void {
  w.repo.bump('targets');
  w.repo.bump('snapshot');
  w.repo.bump('timestamp');
  publishEncoded(w.sim);
}

function emptyOrMissing(dir: string): boolean {
  return !existsSync(dir) || readdirSync(dir).length === 0;
}

/** A fetcher with short limits, so slow and endless servers are cut quickly. */
function quickFetcher(): HttpFetcher {
  return new HttpFetcher({
    connectTimeout: 1000,
    readGapTimeout: 500,
    totalTimeout: 1500,
    retries: 0,
  });
}

const cases: SecurityCase[] = [
  {
    id: 'TUF-01',
    title: 'arbitrary installation: a tampered target and a forged repository are refused',
    attack:
      'A man in the middle serves other bytes for a signed target, then a whole repository (timestamp, snapshot, targets) signed with keys of its own',
    source: 'TUF specification 1.0.34, attacks: arbitrary installation',
    expect: 'LENGTH_OR_HASH_MISMATCH | THRESHOLD_NOT_MET',
    async run(t) {
      const genuine = te.encode('genuine app');
      const w = await simWorld(t, (_r, add) => add('app.bin', genuine));
      const u = await w.refresh();
      const info = await u.getTargetInfo('app.bin');
      assert.ok(info);
      w.sim.overrides.set(targetName('app.bin', genuine), te.encode('malware app'));
      await t.refuses(u.downloadTarget(info), 'LENGTH_OR_HASH_MISMATCH');
      assert.ok(emptyOrMissing(w.td), 'nothing written to the target folder');

      const cachedTimestamp = readFileSync(join(w.md, 'timestamp.json'));
      const evil = new SimRepo();
      evil.addTarget('app.bin', te.encode('malware app'));
      evil.timestamp.version = 2;
      evil.snapshot.version = 2;
      evil.targets.version = 2;
      evil.refreshMeta();
      w.sim.overrides.set('metadata/timestamp.json', evil.timestampBytes());
      w.sim.overrides.set('metadata/2.snapshot.json', evil.snapshotBytes());
      w.sim.overrides.set('metadata/2.targets.json', evil.targetsBytes());
      await t.refuses(w.refresh(), 'THRESHOLD_NOT_MET');
      assert.deepEqual(readFileSync(join(w.md, 'timestamp.json')), cachedTimestamp);

      // the CLI: a tampered target, exit 1, nothing in the target folder
      const h = await httpWorld(t, (_r, add) => add('app.bin', genuine));
      h.server.set(targetName('app.bin', genuine), {
        kind: 'body',
        body: te.encode('malware app'),
      });
      const r = await h.download(['app.bin']);
      assert.equal(r.status, 1, show(r));
      assert.match(r.stderr, /does not match the signed/);
      assert.deepEqual(readdirSync(h.td), []);
    },
  },
  {
    id: 'TUF-02',
    title: 'endless data: every read is bounded (root, timestamp, snapshot, target)',
    attack:
      'The server answers with an endless body for N.root.json, timestamp.json, the snapshot and a target',
    source: 'TUF specification 1.0.34, attacks: endless data',
    expect: 'TOO_LARGE',
    timeout: 40_000,
    async run(t) {
      const content = te.encode('a small target');
      const h = await httpWorld(t, (_r, add) => add('t.bin', content));
      const fetcher = quickFetcher();
      t.defer(() => fetcher.close());
      const updater = () =>
        new Updater({
          metadataDir: h.md,
          metadataBaseUrl: h.server.url('metadata/'),
          targetDir: h.td,
          targetBaseUrl: h.server.url('targets/'),
          fetcher,
        });
      for (const file of [
        'metadata/2.root.json',
        'metadata/timestamp.json',
        'metadata/1.snapshot.json',
      ]) {
        h.server.clear();
        h.server.set(file, { kind: 'endless' });
        const started = performance.now();
        await t.refuses(updater().refresh(), 'TOO_LARGE');
        assert.ok(performance.now() - started < 5000, `${file}: refused quickly`);
      }
      h.server.clear();
      const u = updater();
      await u.refresh();
      const info = await u.getTargetInfo('t.bin');
      assert.ok(info);
      h.server.set(targetName('t.bin', content), { kind: 'endless' });
      await t.refuses(u.downloadTarget(info), 'TOO_LARGE');
      assert.deepEqual(readdirSync(h.td), []);

      // the CLI, with its default limits: refused in seconds, not after gigabytes
      h.server.clear();
      h.server.set('metadata/timestamp.json', { kind: 'endless' });
      const started = performance.now();
      const r = await h.tuf('refresh');
      assert.equal(r.status, 1, show(r));
      assert.match(r.stderr, /limit/);
      assert.ok(performance.now() - started < 15_000);
    },
  },
  {
    id: 'TUF-03',
    title: 'extraneous dependencies: a role cannot sign a target outside its delegated paths',
    attack:
      'A delegated role trusted for registry.example/team-a/* lists an image of team-b (a dependency the client never asked it for)',
    source: 'TUF specification 1.0.34, attacks: extraneous dependencies',
    expect: 'UNSIGNED_IMAGE',
    async run(t) {
      const evilManifest = manifestBytes('team-b impostor');
      const w = await simWorld(t, (repo, add) => {
        repo.delegate('targets', 'team-a', { paths: ['registry.example/team-a/*'] });
        add('registry.example/team-a/app:1.0', manifestBytes('team-a app'), 'team-a');
        add('registry.example/team-b/app:1.0', evilManifest, 'team-a');
      });
      const u = await w.refresh();
      assert.ok(await u.getTargetInfo('registry.example/team-a/app:1.0'));
      assert.equal(await u.getTargetInfo('registry.example/team-b/app:1.0'), undefined);
      await t.refuses(
        verifyInLayout(t, w, 'registry.example/team-b/app:1.0', evilManifest),
        'UNSIGNED_IMAGE',
      );
      // the CLI: not a signed target
      const h = await httpWorld(t, (repo, add) => {
        repo.delegate('targets', 'team-a', { paths: ['a/*'] });
        add('b/dep.tar', te.encode('extraneous'), 'team-a');
      });
      const r = await h.download(['b/dep.tar']);
      assert.equal(r.status, 1, show(r));
      assert.match(r.stderr, /not a signed target/);
      assert.deepEqual(readdirSync(h.td), []);
    },
  },
  {
    id: 'TUF-04',
    title: 'fast-forward: a timestamp pushed to a huge version is dropped once its key rotates',
    attack:
      'With the timestamp key, the attacker publishes timestamp version 2^31 (naming snapshot 2^31), so the client refuses every genuine version as a rollback',
    source: 'TUF specification 1.0.34, attacks: fast-forward; client workflow 5.3.11',
    expect:
      'safe: after the timestamp key rotates, the cached timestamp no longer verifies and is deleted; the client recovers',
    async run(t) {
      const w = await simWorld(t);
      await w.refresh();
      const honest = w.repo.timestamp;
      const huge = 2 ** 31;
      const forged = { ...honest, version: huge, meta: { 'snapshot.json': { version: huge } } };
      w.sim.overrides.set('metadata/timestamp.json', envelope(forged, w.repo.timestampKeys));
      // the forged timestamp verifies (stolen key) and becomes the rollback reference
      // (the snapshot it names does not exist: this refresh fails, the timestamp stays cached)
      await t.refuses(w.refresh(), 'HTTP_STATUS');
      assert.match(readFileSync(join(w.md, 'timestamp.json'), 'utf8'), /2147483648/);
      w.sim.overrides.clear();
      release(w);
      await t.refuses(w.refresh(), 'ROLLBACK');
      // recovery: root v2 rotates the timestamp key
      const oldRoot = w.repo.rootKeys;
      w.repo.timestampKeys = [new TestKey()];
      w.repo.setRootKeys();
      w.repo.publishRoot(oldRoot);
      release(w);
      const u = await w.refresh();
      assert.equal(u.trusted.timestamp?.signed.version, 3);
      assert.equal(u.trusted.root.signed.version, 2);
    },
  },
  {
    id: 'TUF-05',
    title: 'indefinite freeze: expired metadata of every role is refused',
    attack:
      'A mirror keeps serving the last metadata it saw after it expired, so the client never learns of updates',
    source:
      'TUF specification 1.0.34, attacks: indefinite freeze; client workflow 5.3.10, 5.4.4, 5.5.6, 5.6.5',
    expect: 'EXPIRED',
    async run(t) {
      // a replayed timestamp: valid yesterday, expired today
      const w = await simWorld(t);
      await w.refresh();
      await t.refuses(w.refresh({ now: () => NOW + 2 * DAY }), 'EXPIRED');
      // each role expired in turn
      for (const role of ['root', 'timestamp', 'snapshot', 'targets'] as const) {
        const x = await simWorld(t, (repo) => {
          repo[role].expires = expiresIn(-1);
          if (role === 'root') repo.rootHistory[0] = envelope(repo.root, repo.rootKeys);
        });
        await t.refuses(x.refresh(), 'EXPIRED', new RegExp(role));
      }
      // the CLI on the real clock: a timestamp that expired a minute ago
      const h = await httpWorld(t);
      h.repo.timestamp.expires = `${new Date(Date.now() - 60_000).toISOString().slice(0, 19)}Z`;
      publishEncoded(h.sim);
      const r = await h.tuf('refresh');
      assert.equal(r.status, 1, show(r));
      assert.match(r.stderr, /expired/);
    },
  },
  {
    id: 'TUF-06',
    title: 'malicious mirrors: a mirror cannot make the client trust anything unsigned',
    attack:
      'A mirror serves a root N+1 of its own, a timestamp it signed claiming a huge version, and a targets file with an added target',
    source: 'TUF specification 1.0.34, attacks: malicious mirrors preventing updates',
    expect: 'THRESHOLD_NOT_MET | LENGTH_OR_HASH_MISMATCH | TOO_LARGE',
    async run(t) {
      const w = await simWorld(t);
      await w.refresh();
      const cached = readFileSync(join(w.md, 'timestamp.json'));
      const mirror = new TestKey();
      // root N+1 signed by the mirror
      const root2 = { ...w.repo.root, version: 2 };
      w.sim.overrides.set('metadata/2.root.json', envelope(root2, [mirror]));
      await t.refuses(w.refresh(), 'THRESHOLD_NOT_MET');
      w.sim.overrides.clear();
      // a timestamp signed by the mirror, version 10^6: refused and never cached
      const ts = { ...w.repo.timestamp, version: 1_000_000 };
      w.sim.overrides.set('metadata/timestamp.json', envelope(ts, [mirror]));
      await t.refuses(w.refresh(), 'THRESHOLD_NOT_MET');
      assert.deepEqual(readFileSync(join(w.md, 'timestamp.json')), cached);
      w.sim.overrides.clear();
      // a targets file changed in place (same length), keeping the genuine signature
      release(w);
      const genuine = new TextDecoder().decode(w.repo.targetsBytes());
      const sameLength = genuine.replace(
        /"expires": "(\d)/,
        (_m, d: string) => `"expires": "${(Number(d) + 1) % 10}`,
      );
      assert.notEqual(sameLength, genuine);
      w.sim.overrides.set('metadata/2.targets.json', te.encode(sameLength));
      await t.refuses(w.refresh(), 'LENGTH_OR_HASH_MISMATCH');
      // … and with a target added (longer than signed: cut at the signed length)
      const targets = JSON.parse(genuine);
      targets.signed.targets['evil.bin'] = {
        length: 4,
        hashes: { sha256: sha256Hex(te.encode('evil')) },
      };
      w.sim.overrides.set('metadata/2.targets.json', te.encode(JSON.stringify(targets, null, 1)));
      await t.refuses(w.refresh(), 'TOO_LARGE');
      // the genuine repository still works afterwards
      w.sim.overrides.clear();
      const u = await w.refresh();
      assert.equal(u.trusted.targets?.signed.version, 2);

      // the CLI against a mirror that forged the timestamp: exit 1, cache untouched
      const h = await httpWorld(t);
      let r = await h.tuf('refresh');
      assert.equal(r.status, 0, show(r));
      const before = readFileSync(join(h.md, 'timestamp.json'));
      h.server.set('metadata/timestamp.json', {
        kind: 'body',
        body: envelope({ ...h.repo.timestamp, version: 99 }, [mirror]),
      });
      r = await h.tuf('refresh');
      assert.equal(r.status, 1, show(r));
      assert.match(r.stderr, /signed by 0 of the required 1/);
      assert.deepEqual(readFileSync(join(h.md, 'timestamp.json')), before);
    },
  },
  {
    id: 'TUF-07',
    title: 'mix-and-match: an older snapshot or targets file under a newer name is refused',
    attack:
      'After a release, a mirror serves the new timestamp with the previous snapshot (or the previous targets) renamed to the new version',
    source:
      'TUF specification 1.0.34, attacks: mix-and-match; client workflow 5.5.2, 5.5.4, 5.6.2, 5.6.4',
    expect: 'LENGTH_OR_HASH_MISMATCH | BAD_VERSION',
    async run(t) {
      for (const withHashes of [true, false]) {
        const w = await simWorld(t, (repo) => {
          repo.withHashes = withHashes;
        });
        publishEncoded(w.sim);
        const oldSnapshot = w.repo.snapshotBytes();
        const oldTargets = w.repo.targetsBytes();
        release(w);
        const code = withHashes ? 'LENGTH_OR_HASH_MISMATCH' : 'BAD_VERSION';
        w.sim.overrides.set('metadata/2.snapshot.json', oldSnapshot);
        await t.refuses(w.refresh(), code);
        w.sim.overrides.clear();
        w.sim.overrides.set('metadata/2.targets.json', oldTargets);
        await t.refuses(w.refresh(), code);
        w.sim.overrides.clear();
        const u = await w.refresh();
        assert.equal(u.trusted.targets?.signed.version, 2);
      }
    },
  },
  {
    id: 'TUF-08',
    title: 'rollback: older root, timestamp, snapshot and targets versions are refused',
    attack:
      'After the client saw version 2, a mirror serves version 1 of the timestamp, a snapshot listing targets v1, and root v1 as 2.root.json',
    source: 'TUF specification 1.0.34, attacks: rollback; client workflow 5.3.5, 5.4.3, 5.5.5',
    expect: 'ROLLBACK',
    async run(t) {
      const w = await simWorld(t);
      const ts1 = w.repo.timestampBytes();
      release(w);
      await w.refresh();
      // timestamp v1 after v2
      w.sim.overrides.set('metadata/timestamp.json', ts1);
      await t.refuses(w.refresh(), 'ROLLBACK');
      assert.match(readFileSync(join(w.md, 'timestamp.json'), 'utf8'), /"version": 2/);
      w.sim.overrides.clear();
      // a new snapshot (v3, properly signed) that lists targets v1
      w.repo.bump('snapshot');
      w.repo.bump('timestamp');
      w.repo.refreshMeta();
      (w.repo.snapshot.meta as Record<string, { version: number }>)['targets.json'] = {
        version: 1,
      };
      w.repo.timestamp.meta = { 'snapshot.json': { version: 3 } };
      w.sim.files.set('metadata/3.snapshot.json', w.repo.snapshotBytes());
      w.sim.files.set('metadata/timestamp.json', w.repo.timestampBytes());
      await t.refuses(w.refresh(), 'ROLLBACK');
      // root v1 served as 2.root.json
      w.sim.overrides.set('metadata/2.root.json', w.repo.rootBytes(1));
      await t.refuses(w.refresh(), 'ROLLBACK');
    },
  },
  {
    id: 'TUF-09',
    title: 'slow retrieval: a drip-feeding server is cut by the read-gap and total timeouts',
    attack:
      'The server sends timestamp.json one byte every 50 ms (under any read-gap timeout), or pauses for seconds, or drips a target',
    source: 'TUF specification 1.0.34, attacks: slow retrieval',
    expect: 'SLOW_RETRIEVAL',
    timeout: 30_000,
    async run(t) {
      const content = te.encode('x'.repeat(4000));
      const h = await httpWorld(t, (_r, add) => add('big.txt', content));
      const fetcher = quickFetcher();
      t.defer(() => fetcher.close());
      const updater = () =>
        new Updater({
          metadataDir: h.md,
          metadataBaseUrl: h.server.url('metadata/'),
          targetDir: h.td,
          targetBaseUrl: h.server.url('targets/'),
          fetcher,
        });
      h.server.set('metadata/timestamp.json', { kind: 'drip', intervalMs: 50 });
      let started = performance.now();
      await t.refuses(updater().refresh(), 'SLOW_RETRIEVAL');
      assert.ok(performance.now() - started < 4000, 'cut by the total timeout');
      h.server.set('metadata/timestamp.json', { kind: 'drip', intervalMs: 5000 });
      started = performance.now();
      await t.refuses(updater().refresh(), 'SLOW_RETRIEVAL');
      assert.ok(performance.now() - started < 4000, 'cut by the read-gap timeout');
      h.server.clear();
      const u = updater();
      await u.refresh();
      const info = await u.getTargetInfo('big.txt');
      assert.ok(info);
      h.server.set(targetName('big.txt', content), { kind: 'drip', intervalMs: 20 });
      await t.refuses(u.downloadTarget(info), 'SLOW_RETRIEVAL');
      assert.deepEqual(readdirSync(h.td), []);
    },
  },
  {
    id: 'TUF-10',
    title: 'key compromise: one stolen key of a 2-of-3 role is not enough',
    attack:
      'The attacker holds one of three targets keys (and the online snapshot and timestamp keys), or one of two root keys, and signs a release of its own',
    source: 'TUF specification 1.0.34, attacks: vulnerability to key compromises',
    expect: 'THRESHOLD_NOT_MET',
    async run(t) {
      const w = await simWorld(t, (repo) => {
        // (ed25519: deterministic signatures, so the simulator's bytes and hashes agree)
        repo.targetsKeys = [new TestKey(), new TestKey(), new TestKey()];
        repo.rootKeys = [new TestKey(), new TestKey()];
        repo.setRootKeys({ targets: 2, root: 2 });
        repo.rootHistory[0] = envelope(repo.root, repo.rootKeys);
      });
      await w.refresh();
      // one stolen targets key: a release signed by it alone (snapshot and timestamp re-signed)
      w.repo.addTarget('evil.bin', te.encode('evil'));
      w.repo.targetsBytes = () => envelope(w.repo.targets, [w.repo.targetsKeys[2] as TestKey]);
      release(w);
      await t.refuses(w.refresh(), 'THRESHOLD_NOT_MET');
      // one stolen root key: root v2 signed by it alone
      const root2 = { ...w.repo.root, version: 2 };
      w.sim.overrides.set('metadata/2.root.json', envelope(root2, [w.repo.rootKeys[0] as TestKey]));
      await t.refuses(w.refresh(), 'THRESHOLD_NOT_MET');
    },
  },
  {
    id: 'TUF-11',
    title: 'wrong software installation: a target comes only from the role trusted for its path',
    attack:
      "Role A (trusted for a/*, listed first) also lists b/app with its own hashes; role B is trusted for b/*; the mirror serves A's bytes for b/app",
    source: 'TUF specification 1.0.34, attacks: wrong software installation; client workflow 5.6.7',
    expect: 'LENGTH_OR_HASH_MISMATCH',
    async run(t) {
      const good = te.encode('b/app as B signed it');
      const evil = te.encode('b/app as A signs it!');
      const setup = (repo: SimRepo, add: (p: string, c: Uint8Array, r?: string) => void) => {
        repo.delegate('targets', 'A', { paths: ['a/*'] });
        repo.delegate('targets', 'B', { paths: ['b/*'] });
        add('b/app', evil, 'A');
        add('b/app', good, 'B');
      };
      const w = await simWorld(t, setup);
      const u = await w.refresh();
      const info = await u.getTargetInfo('b/app');
      assert.equal(info?.hashes.sha256, sha256Hex(good), "B's target, never A's");
      w.sim.overrides.set(targetName('b/app', good), evil);
      await t.refuses(
        u.downloadTarget(info as NonNullable<typeof info>),
        'LENGTH_OR_HASH_MISMATCH',
      );
      // the CLI downloads B's bytes, and refuses A's
      const h = await httpWorld(t, setup);
      let r = await h.download(['b/app']);
      assert.equal(r.status, 0, show(r));
      assert.deepEqual(readFileSync(join(h.td, 'b%2Fapp')), Buffer.from(good));
      const td2 = join(h.dir, 'td2');
      h.server.set(targetName('b/app', good), { kind: 'body', body: evil });
      r = await h.download(['b/app'], td2);
      assert.equal(r.status, 1, show(r));
      assert.ok(emptyOrMissing(td2));
    },
  },
];

describe('security: the attacks of the TUF specification', () => {
  defineCases(cases);
});
