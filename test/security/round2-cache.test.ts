/**
 * Security round 2 (issue 12), the TUF metadata cache: a failed refresh must never delete the
 * rollback reference (R2-02), a lock left by a dead process is recognised as such at once, also
 * when its pid is ours or in use by another process (R2-11), and many processes refreshing one
 * cache at once all succeed (R2-12). Each case failed on d132131.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { TargetFile } from '../../src/core/index.js';
import { formatExpires } from '../../src/core/metadata/fields.js';
import { withLock } from '../../src/internal/index.js';
import { expiresIn, NOW, type SimRepo, TestKey } from '../support/tuf-builder.js';
import {
  type CaseContext,
  defineCases,
  publishEncoded,
  type SecurityCase,
  show,
  sleep,
  tufa,
} from './harness.js';
import { httpWorld, type SimWorld, simWorld } from './worlds.js';

const DAY = 86_400_000;
const TOP = ['root', 'timestamp', 'snapshot', 'targets'] as const;

/** release publishes new versions of targets, snapshot and timestamp. */
function release(w: { repo: SimRepo; sim: SimWorld['sim'] }): void {
  w.repo.bump('targets');
  w.repo.bump('snapshot');
  w.repo.bump('timestamp');
  publishEncoded(w.sim);
}

/** cached reads the four top-level files of a metadata folder (undefined when missing). */
function cached(md: string): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const role of TOP) {
    const f = join(md, `${role}.json`);
    out[role] = existsSync(f) ? readFileSync(f, 'latin1') : undefined;
  }
  return out;
}

function versionOf(md: string, role: string): number {
  return JSON.parse(readFileSync(join(md, `${role}.json`), 'utf8')).signed.version;
}

/** assertKept asserts the files of `roles` are still cached, byte for byte as `before`. */
function assertKept(
  md: string,
  before: Record<string, string | undefined>,
  roles: readonly string[],
  what: string,
): void {
  const now = cached(md);
  for (const role of roles) {
    assert.ok(now[role] !== undefined, `${what}: ${role}.json was deleted`);
    assert.ok(now[role] === before[role], `${what}: ${role}.json changed`);
  }
}

// ---------------------------------------------------------------------------------------------
// the identity of this process, as the lock records it

/** procIdentity returns the boot id and pid namespace of this machine/process, if /proc has them. */
function procIdentity(): { boot: string; pidns: string } | undefined {
  try {
    return {
      boot: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      pidns: readlinkSync('/proc/self/ns/pid'),
    };
  } catch {
    return undefined;
  }
}

/** startOf returns a process's start time (clock ticks after boot, /proc/<pid>/stat field 22). */
function startOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string;
}

/** lockOf writes `.tufa.lock` in `md` naming `owner` (JSON) or a bare pid (older versions). */
function lockOf(md: string, owner: Record<string, unknown> | number): string {
  const file = join(md, '.tufa.lock');
  writeFileSync(file, typeof owner === 'number' ? String(owner) : JSON.stringify(owner));
  return file;
}

/** quick asserts `p` settles within `ms` (a stale lock would keep it waiting 60 s). */
async function quick<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_ok, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** sleeper starts a node process that lives until killed (a live lock holder). */
function sleeper(t: CaseContext): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], {
    stdio: 'ignore',
  });
  t.defer(() => {
    child.kill('SIGKILL');
  });
  return child;
}

/** The module under test, compiled (for worker threads and child processes). */
const LIB = new URL('../../src/internal/index.js', import.meta.url).href;

/** threadsAtOnce runs two worker threads taking `lock` three times each; the most inside at once. */
async function threadsAtOnce(lock: string): Promise<number> {
  const sab = new SharedArrayBuffer(8);
  const code = `const { workerData, parentPort } = require('node:worker_threads');
import(${JSON.stringify(LIB)}).then(async ({ withLock }) => {
  const c = new Int32Array(workerData.sab);
  const body = async () => {
    const n = Atomics.add(c, 0, 1) + 1;
    if (n > Atomics.load(c, 1)) Atomics.store(c, 1, n);
    await new Promise((r) => setTimeout(r, 150));
    Atomics.sub(c, 0, 1);
  };
  for (let i = 0; i < 3; i++) await withLock(workerData.lock, body, { waitMs: 30000 });
  parentPort.postMessage('done');
}).catch((e) => parentPort.postMessage(String(e)));`;
  const run = () =>
    new Promise<string>((ok, fail) => {
      const w = new Worker(code, { eval: true, workerData: { sab, lock } });
      w.once('message', (m: string) => {
        void w.terminate();
        ok(m);
      });
      w.once('error', fail);
    });
  assert.deepEqual(await Promise.all([run(), run()]), ['done', 'done']);
  return Atomics.load(new Int32Array(sab), 1);
}

/** atOnce takes each of `locks` at the same time in this thread; the most inside at once. */
async function atOnce(locks: string[]): Promise<number> {
  let inside = 0;
  let most = 0;
  const body = async () => {
    most = Math.max(most, ++inside);
    await sleep(150);
    inside--;
  };
  await Promise.all(locks.map((l) => withLock(l, body, { waitMs: 10_000 })));
  return most;
}

/**
 * breakRace has `waiters` processes find one dead lock (a bare pid of an exited process) at
 * once; each marks its critical section with an exclusive mkdir. Returns the overlaps seen.
 */
async function breakRace(t: CaseContext, waiters: number): Promise<number> {
  const dir = t.tmp();
  const lock = join(dir, '.tufa.lock');
  const marker = join(dir, 'inside');
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  writeFileSync(lock, gone.stdout);
  const code = `const { mkdirSync, rmdirSync } = require('node:fs');
import(${JSON.stringify(LIB)}).then(async ({ withLock }) => {
  await new Promise((r) => process.stdin.once('data', r));
  let overlap = false;
  await withLock(${JSON.stringify(lock)}, async () => {
    try { mkdirSync(${JSON.stringify(marker)}); } catch { overlap = true; return; }
    await new Promise((r) => setTimeout(r, 30));
    rmdirSync(${JSON.stringify(marker)});
  }, { waitMs: 30000 });
  process.stdout.write(overlap ? 'OVERLAP' : 'ok', () => process.exit(0));
});`;
  const kids = Array.from({ length: waiters }, () =>
    spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  for (const k of kids) t.defer(() => k.kill('SIGKILL'));
  await sleep(800); // all loaded the module
  for (const k of kids) k.stdin?.write('go\n');
  const outs = await Promise.all(
    kids.map(
      (k) =>
        new Promise<string>((ok) => {
          let o = '';
          k.stdout?.on('data', (d) => {
            o += d;
          });
          k.on('exit', () => ok(o));
        }),
    ),
  );
  assert.equal(outs.filter((o) => o === 'ok' || o === 'OVERLAP').length, waiters, outs.join());
  return outs.filter((o) => o === 'OVERLAP').length;
}

const cases: SecurityCase[] = [
  {
    id: 'R2-02',
    title: 'a refresh failing on an expired root or a frozen timestamp keeps every cached file',
    attack:
      'The trusted root expires (or a mirror freezes the timestamp); the failing refresh deleted the cached timestamp.json (or snapshot.json), so the next refresh, after the root was renewed, accepted an older timestamp',
    source:
      'TUF specification 1.0.34, client workflow 5.3.10, 5.3.11, 5.4.3; tuf-conformance test_expiration.py test_root_expired, test_timestamp_expired',
    expect: 'EXPIRED | ROLLBACK | MISUSE',
    timeout: 60_000,
    async run(t) {
      // a client trusting timestamp v3
      const w = await simWorld(t);
      await w.refresh();
      const tsV1 = w.sim.files.get('metadata/timestamp.json') as Uint8Array;
      release(w);
      await w.refresh();
      release(w);
      await w.refresh();
      assert.equal(versionOf(w.md, 'timestamp'), 3);
      let before = cached(w.md);
      // root v2, already expired: the refresh persists it and fails (TUF 5.3.10)
      const keys = w.repo.rootKeys;
      w.repo.root.expires = expiresIn(-1);
      w.repo.publishRoot(keys);
      publishEncoded(w.sim);
      await t.refuses(w.refresh(), 'EXPIRED', /root/);
      assert.equal(versionOf(w.md, 'root'), 2);
      assertKept(
        w.md,
        before,
        ['timestamp', 'snapshot', 'targets'],
        'after a refresh on an expired root',
      );
      await t.refuses(w.refresh({ offline: true }), 'EXPIRED', /root/);
      assertKept(
        w.md,
        before,
        ['timestamp', 'snapshot', 'targets'],
        'after an offline refresh on an expired root',
      );
      // root v3 renews it; the server now serves timestamp v1: a rollback
      w.repo.root.expires = expiresIn(365);
      w.repo.publishRoot(keys);
      publishEncoded(w.sim);
      w.sim.overrides.set('metadata/timestamp.json', tsV1);
      await t.refuses(w.refresh(), 'ROLLBACK', /timestamp/);
      assert.equal(versionOf(w.md, 'timestamp'), 3);

      // a frozen timestamp: the same, expired copy served again; snapshot.json stays
      const f = await simWorld(t);
      await f.refresh();
      before = cached(f.md);
      const later = () => NOW + 2 * DAY;
      await t.refuses(f.refresh({ now: later }), 'EXPIRED', /timestamp/);
      assertKept(f.md, before, TOP, 'after a frozen timestamp');
      await t.refuses(f.refresh({ now: later, offline: true }), 'EXPIRED', /timestamp/);
      assertKept(f.md, before, TOP, 'after a frozen timestamp, offline');

      // the same two through the conformance protocol (`tufa tuf refresh`, exit 0/1)
      const h = await httpWorld(t);
      let r = await h.tuf('refresh');
      assert.equal(r.status, 0, show(r));
      before = cached(h.md);
      h.repo.root.expires = formatExpires(Date.now() - DAY);
      h.repo.publishRoot(h.repo.rootKeys);
      h.repo.bump('targets');
      publishEncoded(h.sim);
      r = await h.tuf('refresh');
      assert.equal(r.status, 1, show(r));
      assert.match(r.stderr, /expired/);
      assert.equal(versionOf(h.md, 'root'), 2);
      assertKept(h.md, before, ['timestamp', 'snapshot', 'targets'], 'CLI, expired root');

      const z = await httpWorld(t);
      const expiresAt = Date.now() + 6_000;
      z.repo.timestamp.expires = formatExpires(expiresAt);
      publishEncoded(z.sim);
      r = await z.tuf('refresh');
      assert.equal(r.status, 0, show(r));
      before = cached(z.md);
      await sleep(Math.max(0, expiresAt - Date.now() + 1_100));
      r = await z.tuf('refresh');
      assert.equal(r.status, 1, show(r));
      assert.match(r.stderr, /timestamp\.json v1 expired/);
      assertKept(z.md, before, TOP, 'CLI, frozen timestamp');

      // a fast-forward of the snapshot (v99999, named by the honest timestamp key), recovered by
      // rotating the snapshot keys only (TUF 5.3.11): the cached timestamp naming v99999 is
      // dropped with the snapshot, not kept as rollback reference for ever
      const ff = await simWorld(t);
      await ff.refresh();
      ff.repo.snapshot.version = 99_999;
      ff.repo.bump('timestamp');
      publishEncoded(ff.sim);
      await ff.refresh();
      const oldRoot = ff.repo.rootKeys;
      ff.repo.snapshotKeys = [new TestKey()];
      ff.repo.setRootKeys();
      ff.repo.publishRoot(oldRoot);
      ff.repo.snapshot.version = 2;
      release(ff);
      await ff.refresh();
      assert.equal(versionOf(ff.md, 'snapshot'), 3);

      // the target folder is the metadata folder (or inside it, or holds it): refused, so a
      // signed target named timestamp.json never overwrites the rollback reference
      const te = new TextEncoder();
      const tw = await simWorld(t, (repo, add) => {
        repo.delegate('targets', 'team', { paths: ['*'] });
        add('timestamp.json', te.encode('{"not":"metadata"}'), 'team');
      });
      await tw.refresh();
      before = cached(tw.md);
      for (const targetDir of [tw.md, join(tw.md, 'targets'), join(tw.md, '..')]) {
        const u = await tw.refresh({ targetDir });
        const info = await u.getTargetInfo('timestamp.json');
        assert.ok(info !== undefined);
        await t.refuses(u.downloadTarget(info), 'MISUSE', /metadataDir/);
        await t.refuses(u.findCachedTarget(info), 'MISUSE', /metadataDir/);
        await t.refuses(u.downloadTarget(info, join(tw.md, 'timestamp.json')), 'MISUSE');
      }
      assertKept(tw.md, before, TOP, 'targets refused in the metadata folder');
      const ok = await tw.refresh({ targetDir: join(t.tmp(), 'targets') });
      await ok.downloadTarget((await ok.getTargetInfo('timestamp.json')) as TargetFile);
    },
  },
  {
    id: 'R2-11',
    title: 'a lock naming our own pid, or a pid now used by another process, is broken at once',
    attack:
      'tufa runs as PID 1 in a container and is killed holding .tufa.lock; restarted, it is PID 1 again and took the lock as held by a live process, so every run waited and failed for 10 minutes (likewise a pid reused after a kill or a reboot)',
    source: 'tufa cache lock (src/internal/fs-atomic.ts withLock); review of d132131',
    expect:
      'safe: the lock records pid, start time, boot id and pid namespace; a holder that is not that very process is dead at once, a live holder keeps its lock (CACHE_LOCKED)',
    timeout: 90_000,
    async run(t) {
      const w = await simWorld(t);
      await w.refresh();
      // our own pid, as written by earlier versions (the pid alone)
      lockOf(w.md, process.pid);
      await quick(w.refresh(), 5_000, 'a lock naming our own pid');
      const id = procIdentity();
      const me = { pid: process.pid, host: hostname(), ...id };
      // our own pid, but another process's start time (the killed PID 1 of the last container)
      lockOf(w.md, { ...me, start: '1' });
      await quick(w.refresh(), 5_000, 'a lock naming our pid with another start time');
      if (id !== undefined) {
        // a live process holds the lock: it keeps it, whatever the format
        const child = sleeper(t);
        await sleep(200);
        const pid = child.pid as number;
        const held = { pid, host: hostname(), ...id, start: startOf(pid) };
        const file = lockOf(w.md, held);
        await t.refuses(
          withLock(file, async () => 1, { waitMs: 500 }),
          'CACHE_LOCKED',
        );
        lockOf(w.md, pid);
        await t.refuses(
          withLock(file, async () => 1, { waitMs: 500 }),
          'CACHE_LOCKED',
        );
        // its pid, but another start time: the pid was reused, the holder is gone
        lockOf(w.md, { ...held, start: String(Number(held.start) - 1) });
        assert.equal(
          await quick(
            withLock(file, async () => 2, { waitMs: 5_000 }),
            2_000,
            'reused pid',
          ),
          2,
        );
        // the holder dies: broken at once
        lockOf(w.md, held);
        child.kill('SIGKILL');
        await sleep(200);
        assert.equal(
          await quick(
            withLock(file, async () => 3, { waitMs: 5_000 }),
            2_000,
            'dead holder',
          ),
          3,
        );
        // a lock from an earlier boot of this host (its pid runs now: our parent): gone
        const parent = { ...me, pid: process.ppid, start: startOf(process.ppid) };
        lockOf(w.md, parent);
        await t.refuses(
          withLock(file, async () => 1, { waitMs: 500 }),
          'CACHE_LOCKED',
        );
        lockOf(w.md, { ...parent, boot: 'another-boot' });
        assert.equal(
          await quick(
            withLock(file, async () => 5, { waitMs: 5_000 }),
            2_000,
            'earlier boot',
          ),
          5,
        );
        // a holder in another pid namespace (another container): its pid means nothing here;
        // alive while it keeps the lock fresh, dead when it stopped doing so
        lockOf(w.md, { ...me, pidns: 'pid:[1]', start: '1' });
        await t.refuses(
          withLock(file, async () => 1, { waitMs: 500 }),
          'CACHE_LOCKED',
        );
        const old = (Date.now() - 60_000) / 1000;
        utimesSync(file, old, old);
        assert.equal(
          await quick(
            withLock(file, async () => 4, { waitMs: 5_000 }),
            2_000,
            'silent holder',
          ),
          4,
        );
        // the holder keeps its lock fresh while it works
        await withLock(file, async () => {
          const m0 = statSync(file).mtimeMs;
          await sleep(2_600);
          assert.ok(statSync(file).mtimeMs > m0, 'the holder refreshes the lock while holding it');
        });
        // through the CLI: the lock names this test process (alive) with another start time
        const h = await httpWorld(t);
        lockOf(h.md, { ...me, start: '1' });
        const r = await tufa(h.refreshArgs(), { timeoutMs: 20_000 });
        assert.ok(
          !r.timedOut,
          `the CLI still waited for a reused pid's lock after 20 s\n${show(r)}`,
        );
        assert.equal(r.status, 0, show(r));
      }
      if (id !== undefined) {
        // two worker threads of this process (no shared in-memory queue): one holder at a time
        const dir = t.tmp();
        assert.equal(await threadsAtOnce(join(dir, '.tufa.lock')), 1, 'two threads held the lock');
      }
      // one folder reached through a symlink: one lock
      const real = t.tmp();
      const alias = join(t.tmp(), 'alias');
      symlinkSync(real, alias);
      assert.equal(
        await atOnce([join(real, '.tufa.lock'), join(alias, '.tufa.lock')]),
        1,
        'the folder and its symlink were locked at once',
      );
      // planted lock names: never blocking, never followed, bounded
      const planted = async (what: string, plant: (lock: string) => void, ms = 10_000) => {
        const lock = join(t.tmp(), '.tufa.lock');
        plant(lock);
        return quick(
          withLock(lock, async () => 'got', { waitMs: ms }),
          ms + 2_000,
          what,
        );
      };
      if (spawnSync('mkfifo', ['--help'], { stdio: 'ignore' }).status === 0) {
        assert.equal(await planted('a FIFO', (l) => spawnSync('mkfifo', [l])), 'got');
        // a cached metadata file that is a FIFO: refused at once, not read for ever
        const f = await simWorld(t);
        await f.refresh();
        rmSync(join(f.md, 'timestamp.json'));
        spawnSync('mkfifo', [join(f.md, 'timestamp.json')]);
        await t.refuses(quick(f.refresh(), 5_000, 'a FIFO timestamp.json'), 'CACHE', /regular/);
      }
      assert.equal(await planted('a dangling symlink', (l) => symlinkSync(`${l}.x`, l)), 'got');
      const victim = join(t.tmp(), 'victim');
      writeFileSync(victim, 'kept');
      utimesSync(victim, 1_000, 1_000);
      assert.equal(await planted('a symlink to a file', (l) => symlinkSync(victim, l)), 'got');
      assert.equal(readFileSync(victim, 'utf8'), 'kept');
      assert.equal(statSync(victim).mtimeMs, 1_000_000, 'the symlink target was touched');
      const future = Date.UTC(2099, 0, 1) / 1000;
      const garbage = (l: string) => {
        writeFileSync(l, 'x');
        utimesSync(l, future, future);
      };
      assert.equal(await planted('garbage with an mtime in 2099', garbage, 20_000), 'got');
      await t.refuses(
        planted('a directory', (l) => mkdirSync(l)),
        'CACHE',
        /directory/,
      );
      assert.ok(!existsSync(join(w.md, '.tufa.lock')), 'the lock is released');
    },
  },
  {
    id: 'R2-12',
    title: 'sixteen concurrent refreshes of one cache, ten rounds, all succeed',
    attack:
      "16 `tufa tuf refresh` at once on one cache, 10 releases: the lock holder's clean-up deleted the waiters' lock temp files, and 22 of 160 runs failed with ENOENT (link .tufa.lock.N.X.tmp)",
    source: 'tufa cache lock and MetadataCache.removeLeftovers; review of d132131',
    expect: 'safe: 160 of 160 runs exit 0, the cache is current, no lock is left',
    timeout: 300_000,
    async run(t) {
      const h = await httpWorld(t);
      const failures: string[] = [];
      for (let round = 0; round < 10; round++) {
        release(h);
        const runs = await Promise.all(
          Array.from({ length: 16 }, () => tufa(h.refreshArgs(), { timeoutMs: 120_000 })),
        );
        for (const r of runs) if (r.status !== 0) failures.push(`round ${round}: ${show(r)}`);
      }
      assert.deepEqual(
        failures.length,
        0,
        `${failures.length} of 160 runs failed; first:\n${failures[0]}`,
      );
      assert.equal(versionOf(h.md, 'timestamp'), h.repo.timestamp.version);
      assert.ok(!existsSync(join(h.md, '.tufa.lock')), 'no lock is left');
      // twelve waiters find one dead lock at once: one breaks it, one holder at a time
      for (let trial = 0; trial < 5; trial++) {
        assert.equal(await breakRace(t, 12), 0, `trial ${trial}: two holders at once`);
      }
    },
  },
];

describe('security round 2: the TUF cache (rollback references, the lock)', () => {
  defineCases(cases);
});
