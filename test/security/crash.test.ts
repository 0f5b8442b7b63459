/**
 * Crash consistency: the CLI killed with SIGKILL at spread-out points of a refresh, a download
 * and a pull (against servers slow enough that kills land mid-transfer, and fast runs so they
 * land mid-write) never leaves a cache or an output that a later run trusts wrongly. After each
 * kill the metadata folder holds only files the repository published, byte for byte (no partial
 * `*.json`), the target folder only complete targets, a pull output is absent or complete and
 * valid; and a normal run then succeeds with the current state. Two processes sharing one cache
 * both end in a valid state. Kill points come from a seeded PRNG, so a failure can be replayed.
 */

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FsMetadataStore } from '../../src/client/store.js';
import { Metadata } from '../../src/core/metadata/envelope.js';
import { readLayout } from '../../src/oci/layout.js';
import { inspectLocal } from '../support/registry.js';
import { sha256Hex, TestKey } from '../support/tuf-builder.js';
import {
  type CaseContext,
  type CliResult,
  defineCases,
  publishEncoded,
  type SecurityCase,
  seeded,
  show,
  sleep,
  startTufa,
  tufa,
} from './harness.js';
import { type OciWorld, ociSkipReason, startOciWorld } from './oci-world.js';
import { type HttpWorld, httpWorld } from './worlds.js';

const ROLES = ['root', 'timestamp', 'snapshot', 'targets', 'D'];

/** A repository that keeps releasing, and remembers every byte it ever published. */
class Releasing {
  readonly served = new Set<string>();
  readonly contents = new Map<string, Buffer>();
  release = 0;

  constructor(readonly h: HttpWorld) {
    this.record();
  }

  /** record remembers the metadata currently served. */
  record(): void {
    for (const [name, bytes] of this.h.sim.files)
      if (name.startsWith('metadata/')) this.served.add(sha256Hex(bytes));
  }

  /** target adds a target to D (and remembers its content). */
  addTarget(path: string, content: Buffer): void {
    this.h.sim.addTargetFile(path, content, 'D');
    this.contents.set(path, content);
  }

  /** next publishes a new release: a new target in D, new versions; every third, a new root. */
  next(): string {
    this.release++;
    const path = `d/app-${this.release}.bin`;
    this.addTarget(path, Buffer.from(`release ${this.release} `.repeat(2000)));
    const r = this.h.repo;
    r.bump('D');
    r.bump('targets');
    r.bump('snapshot');
    r.bump('timestamp');
    if (this.release % 3 === 0) {
      const old = r.rootKeys;
      r.timestampKeys = [new TestKey()];
      r.setRootKeys();
      r.publishRoot(old);
    }
    publishEncoded(this.h.sim);
    this.record();
    return path;
  }

  /** current lists each role's file as the repository serves it now. */
  current(): Record<string, Buffer> {
    const r = this.h.repo;
    const f = (n: string) => this.h.sim.files.get(`metadata/${n}`) as Buffer;
    return {
      root: Buffer.from(r.rootBytes()),
      timestamp: f('timestamp.json'),
      snapshot: f(`${r.snapshot.version}.snapshot.json`),
      targets: f(`${r.targets.version}.targets.json`),
      D: f(`${r.delegated.get('D')?.signed.version}.D.json`),
    };
  }

  /** drip makes the current timestamp, snapshot, D and newest root slow (1 byte per ms). */
  drip(): void {
    this.h.server.clear();
    const r = this.h.repo;
    for (const n of [
      'timestamp.json',
      `${r.snapshot.version}.snapshot.json`,
      `${r.delegated.get('D')?.signed.version}.D.json`,
      `${r.rootHistory.length}.root.json`,
    ]) {
      this.h.server.set(`metadata/${n}`, { kind: 'drip', intervalMs: 1 });
    }
  }
}

/**
 * checkAfterKill asserts the metadata folder holds only published role files (byte for byte)
 * and the target folder only complete targets; returns the temp files left behind.
 */
function checkAfterKill(rel: Releasing, md: string, td: string, what: string): string[] {
  const leftovers: string[] = [];
  for (const name of readdirSync(md)) {
    if (name === '.tufa.lock') continue;
    if (name.startsWith('.') && name.endsWith('.tmp')) {
      leftovers.push(name);
      continue;
    }
    assert.ok(name.endsWith('.json'), `${what}: unexpected file ${name} in the metadata folder`);
    const role = decodeURIComponent(name.slice(0, -'.json'.length));
    assert.ok(ROLES.includes(role), `${what}: unexpected role file ${name}`);
    const bytes = readFileSync(join(md, name));
    assert.ok(
      rel.served.has(sha256Hex(bytes)),
      `${what}: ${name} is not a file the repository published (partial?)`,
    );
    Metadata.fromBytes(bytes, role === 'D' ? 'targets' : (role as 'root'));
  }
  if (existsSync(td)) {
    for (const name of readdirSync(td)) {
      if (name.startsWith('.') && name.endsWith('.tmp')) {
        leftovers.push(`targets/${name}`);
        continue;
      }
      const want = rel.contents.get(decodeURIComponent(name));
      assert.ok(want !== undefined, `${what}: unexpected target file ${name}`);
      assert.ok(
        readFileSync(join(td, name)).equals(want),
        `${what}: target ${name} is incomplete or wrong`,
      );
    }
  }
  return leftovers;
}

/** checkCurrent asserts the cache holds exactly what the repository serves now. */
function checkCurrent(rel: Releasing, md: string, what: string): void {
  for (const [role, bytes] of Object.entries(rel.current())) {
    const file = new FsMetadataStore(md).fileOf(role);
    assert.ok(existsSync(file), `${what}: ${role}.json missing after a normal run`);
    assert.ok(readFileSync(file).equals(bytes), `${what}: ${role}.json is not the current version`);
  }
}

async function killAfter(
  args: string[],
  delayMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<CliResult> {
  const p = startTufa(args, { timeoutMs: 60_000, ...(env ? { env } : {}) });
  await Promise.race([sleep(delayMs), p.done]);
  p.kill();
  return p.done;
}

async function releasingWorld(
  t: CaseContext,
): Promise<{ h: HttpWorld; rel: Releasing; first: string }> {
  const h = await httpWorld(t, (repo) => {
    repo.delegate('targets', 'D', { paths: ['d/*'] });
  });
  const rel = new Releasing(h);
  const first = rel.next();
  return { h, rel, first };
}

const tufCases: SecurityCase[] = [
  {
    id: 'CRASH-01',
    title: 'SIGKILL at spread points of refresh and download never leaves a cache trusted wrongly',
    attack:
      'The client is killed (SIGKILL) 12 times: 7 times while slow servers drip metadata (mid-transfer), 5 times during fast runs (mid-write); the repository releases between kills, rotating root every third release',
    source:
      'tufa cache design (atomic writes, re-verification of cached files); TUF client workflow 5.3.8, 5.4.5, 5.5.7, 5.6.6',
    expect:
      'safe: after each kill only published role files remain, byte for byte; a normal run then succeeds with the current state',
    timeout: 150_000,
    async run(t) {
      const { h, rel } = await releasingWorld(t);
      const rnd = seeded(20_260_101);
      // control runs, to time a slow and a fast download
      let path = rel.next();
      rel.drip();
      let started = performance.now();
      let r = await tufa(h.downloadArgs([path]), { timeoutMs: 60_000 });
      assert.equal(r.status, 0, show(r));
      const slow = performance.now() - started;
      path = rel.next();
      h.server.clear();
      started = performance.now();
      r = await tufa(h.downloadArgs([path]));
      assert.equal(r.status, 0, show(r));
      const fast = performance.now() - started;
      checkCurrent(rel, h.md, 'control');

      const plan = [
        ...Array.from({ length: 7 }, (_, i) => ({ slow: true, delay: (slow * (i + rnd())) / 7 })),
        ...Array.from({ length: 5 }, (_, i) => ({ slow: false, delay: (fast * (i + rnd())) / 5 })),
      ];
      let killed = 0;
      const leftovers = new Set<string>();
      for (const [i, step] of plan.entries()) {
        path = rel.next();
        if (step.slow) rel.drip();
        else h.server.clear();
        const what = `kill ${i + 1} (${step.slow ? 'slow' : 'fast'}, ${Math.round(step.delay)} ms)`;
        const k = await killAfter(h.downloadArgs([path]), step.delay);
        if (k.signal === 'SIGKILL') killed++;
        else assert.equal(k.status, 0, `${what}: ${show(k)}`);
        for (const l of checkAfterKill(rel, h.md, h.td, what)) leftovers.add(l);
        h.server.clear();
        const again = await tufa(h.downloadArgs([path]));
        assert.equal(again.status, 0, `${what}: the next normal run fails\n${show(again)}`);
        checkCurrent(rel, h.md, what);
        checkAfterKill(rel, h.md, h.td, `${what}, then a normal run`);
      }
      assert.ok(killed >= 6, `only ${killed} of ${plan.length} runs were killed before they ended`);
      if (leftovers.size > 0) {
        process.stderr.write(
          `      (CRASH-01: ${leftovers.size} temp files left by kills, never read: ${[...leftovers].slice(0, 3).join(', ')})\n`,
        );
      }
    },
  },
  {
    id: 'CRASH-02',
    title: 'two processes refreshing one cache both end valid, also when the lock holder is killed',
    attack:
      'Two `tufa tuf download` processes share one metadata folder against a slow server; then the process holding the lock is killed while the other waits for it',
    source: 'tufa cache lock (.tufa.lock with the holder pid)',
    expect:
      "safe: both exit 0 and the cache is current; the waiting process breaks the dead holder's lock and finishes",
    timeout: 90_000,
    async run(t) {
      const { h, rel } = await releasingWorld(t);
      let path = rel.next();
      rel.drip();
      const [a, b] = await Promise.all([
        tufa(h.downloadArgs([path]), { timeoutMs: 60_000 }),
        sleep(50).then(() => tufa(h.downloadArgs([path]), { timeoutMs: 60_000 })),
      ]);
      assert.equal(a.status, 0, show(a));
      assert.equal(b.status, 0, show(b));
      checkAfterKill(rel, h.md, h.td, 'two at once');
      checkCurrent(rel, h.md, 'two at once');
      assert.ok(!existsSync(join(h.md, '.tufa.lock')), 'the lock is released');

      path = rel.next();
      rel.drip();
      const holder = startTufa(h.downloadArgs([path]), { timeoutMs: 60_000 });
      for (let i = 0; i < 100 && !existsSync(join(h.md, '.tufa.lock')); i++) await sleep(20);
      assert.ok(existsSync(join(h.md, '.tufa.lock')), 'the first process holds the lock');
      const waiter = startTufa(h.downloadArgs([path]), { timeoutMs: 60_000 });
      await sleep(500);
      holder.kill();
      const k = await holder.done;
      assert.equal(k.signal, 'SIGKILL', show(k));
      const w = await waiter.done;
      assert.equal(w.status, 0, `the waiter after the holder was killed\n${show(w)}`);
      checkAfterKill(rel, h.md, h.td, 'holder killed');
      checkCurrent(rel, h.md, 'holder killed');
    },
  },
  {
    id: 'CRASH-04',
    title: 'a lock file left empty by a kill does not block later runs',
    attack:
      'The client is killed between creating .tufa.lock (open with O_EXCL) and writing its pid into it; the empty lock names no holder',
    source: 'tufa cache lock (src/internal/fs-atomic.ts withLock)',
    expect:
      'safe: the next refresh succeeds within seconds (an empty lock of a dead process is broken)',
    timeout: 30_000,
    async run(t) {
      const { h, rel } = await releasingWorld(t);
      const path = rel.next();
      // what a kill right after open(…, 'wx') leaves: an empty lock file
      writeFileSync(join(h.md, '.tufa.lock'), '');
      assert.equal(statSync(join(h.md, '.tufa.lock')).size, 0);
      const r = await tufa(h.downloadArgs([path]), { timeoutMs: 12_000 });
      assert.ok(
        !r.timedOut,
        'the refresh still waited for the empty lock after 12 s (it waits 60 s, and breaks it only after 10 min)',
      );
      assert.equal(r.status, 0, show(r));
      checkCurrent(rel, h.md, 'after an empty lock');
    },
  },
];

let O: OciWorld;

/** checkTufCache asserts every metadata file in a verifier cache parses as its role. */
function checkTufCache(cache: string, what: string): void {
  const tuf = join(cache, 'tuf');
  if (!existsSync(tuf)) return;
  for (const repoDir of readdirSync(tuf)) {
    for (const name of readdirSync(join(tuf, repoDir))) {
      if (!name.endsWith('.json')) continue;
      const role = decodeURIComponent(name.slice(0, -5));
      assert.ok(['root', 'timestamp', 'snapshot', 'targets'].includes(role), `${what}: ${name}`);
      Metadata.fromBytes(readFileSync(join(tuf, repoDir, name)), role as 'root');
    }
  }
}

const pullCases: SecurityCase[] = [
  {
    id: 'CRASH-03',
    title: 'SIGKILL at spread points of tufa pull leaves no output, or a complete valid one',
    attack:
      'tufa pull (oci: and oci-archive: outputs, one shared TUF cache) is killed 8 times at points spread over a pull whose layer is dripped from the registry',
    source: 'tufa pull design (LayoutWriter: temp folder, renamed only when complete)',
    expect:
      'safe: each output is absent or complete (readLayout and skopeo inspect give the signed digest); the cache stays valid; a normal pull then succeeds',
    timeout: 150_000,
    async run(t) {
      const cache = join(t.tmp(), 'cache');
      const args = (output: string) => [
        'pull',
        O.image('demo/pull:1.0'),
        '--output',
        output,
        '--policy',
        O.policyFile,
        '--cache-dir',
        cache,
      ];
      const env = O.env();
      O.proxy.throttle = { chunk: 16 * 1024, delayMs: 10 };
      const parent0 = t.tmp();
      let started = performance.now();
      const control = await tufa(args(`oci:${join(parent0, 'out')}`), { env, timeoutMs: 60_000 });
      assert.equal(control.status, 0, show(control));
      const total = performance.now() - started;
      const rnd = seeded(4242);
      let killed = 0;
      let complete = 0;
      for (let i = 0; i < 8; i++) {
        const parent = t.tmp();
        const archive = i % 2 === 1;
        const out = join(parent, archive ? 'out.tar' : 'out');
        const spec = `${archive ? 'oci-archive' : 'oci'}:${out}`;
        const delay = (1.1 * total * (i + rnd())) / 8;
        const what = `kill ${i + 1} (${spec}, ${Math.round(delay)} ms)`;
        started = performance.now();
        const k = await killAfter(args(spec), delay, env);
        if (k.signal === 'SIGKILL') killed++;
        else assert.equal(k.status, 0, `${what}: ${show(k)}`);
        if (existsSync(out)) {
          complete++;
          if (!archive)
            assert.equal((await readLayout(out)).descriptor.digest, O.images.app.digest, what);
          assert.equal((await inspectLocal(`${spec}:1.0`)).Digest, O.images.app.digest, what);
        }
        for (const name of readdirSync(parent)) {
          assert.ok(
            name === (archive ? 'out.tar' : 'out') || name.startsWith('.'),
            `${what}: stray ${name}`,
          );
        }
        checkTufCache(cache, what);
      }
      assert.ok(killed >= 4, `only ${killed} of 8 pulls were killed before they ended`);
      O.proxy.reset();
      const parent = t.tmp();
      const r = await tufa(args(`oci-archive:${join(parent, 'final.tar')}`), {
        env,
        timeoutMs: 60_000,
      });
      assert.equal(r.status, 0, `a normal pull after the kills\n${show(r)}`);
      assert.equal(
        (await inspectLocal(`oci-archive:${join(parent, 'final.tar')}:1.0`)).Digest,
        O.images.app.digest,
      );
      process.stderr.write(
        `      (CRASH-03: ${killed} killed, ${complete} outputs complete at the kill)\n`,
      );
    },
  },
];

describe('security: crash consistency (SIGKILL)', () => {
  describe('TUF cache (tufa tuf)', () => {
    defineCases(tufCases);
  });

  describe('pull output (tufa pull)', () => {
    before(async function () {
      this.timeout(240_000);
      const why = ociSkipReason();
      if (why !== undefined) {
        process.stderr.write(`  skipping the pull crash cases: ${why}\n`);
        this.skip();
      }
      O = await startOciWorld({ layerBytes: 1536 * 1024 });
    });
    after(async () => {
      await O?.close();
    });
    defineCases(pullCases);
  });
});
