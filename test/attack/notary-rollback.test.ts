/**
 * Attacks on the Notary role floors (versions.json) and the delegation walk.
 * Run: npx tsc -p tsconfig.json && npx mocha --timeout 60000 dist/test/attack/notary-rollback.test.js
 * Each `it` asserts the SECURE outcome: a failing test is a successful attack.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fetcher } from '../../src/client/index.js';
import { lookupTag, NotaryClient, type NotaryTrust } from '../../src/notary/index.js';
import { NotaryFixtureFetcher } from '../support/notary-fixtures.js';
import {
  ecdsaKey,
  type ForgeKey,
  forgeClock,
  forgeCollection,
  forgedCrawl,
  forgeRoot,
  forgeSnapshot,
  forgeTargets,
  forgeTimestamp,
  Openssl,
  type RootRoles,
  x509Key,
} from '../support/notary-forge.js';

const SERVER = 'https://notary.test';
const GUN = 'registry.test/forged/app';
const OLD = 'the old, vulnerable manifest';
const NEW = 'the current manifest';
const EVIL = 'the attacker manifest';
const digestOf = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const tmp = () => mkdtempSync(join(tmpdir(), 'tufa-attack-'));

function keysFor(gun = GUN): RootRoles {
  const o = new Openssl(tmp());
  const leaf = o.cert({ cn: gun, days: 3650 });
  return {
    root: [x509Key(leaf.pem, leaf.privateKey)],
    targets: [ecdsaKey()],
    snapshot: [ecdsaKey()],
    timestamp: [ecdsaKey()],
  };
}

function mk(fetcher: Fetcher, trust: NotaryTrust, cacheDir: string, now: () => number) {
  return new NotaryClient({ server: SERVER, gun: GUN, trust, cacheDir, fetcher, now });
}

async function outcome<T>(p: Promise<T>): Promise<T | Error> {
  return p.then(
    (v) => v,
    (e: unknown) => e as Error,
  );
}

describe('attack: Notary rollback floors and delegation walk', function () {
  this.timeout(120_000);

  it('A. an under-signed targets/releases listed in the snapshot must not fall back to an old tag in targets', async () => {
    const keys = keysFor();
    const rel = [ecdsaKey()];
    const roots = [forgeRoot(1, keys)];
    const pin = { rootKeyIds: [(keys.root[0] as ForgeKey).id] };
    const now = forgeClock();
    const cacheDir = tmp();
    const good = forgeCollection({
      roots,
      keys,
      tags: { latest: OLD },
      delegations: [{ name: 'targets/releases', keys: rel, version: 2, tags: { latest: NEW } }],
      versions: { timestamp: 1, snapshot: 1, targets: 1 },
    });
    const c1 = await mk(new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, good)), pin, cacheDir, now).refresh();
    assert.equal(lookupTag(c1, 'latest')?.digest, digestOf(NEW));

    // the server (timestamp + snapshot keys) lists a targets/releases nobody with its key signed
    const bogus = forgeTargets(3, { latest: EVIL }, [ecdsaKey()]);
    const evil = forgeCollection({
      roots,
      keys,
      tags: { latest: OLD },
      delegations: [{ name: 'targets/releases', keys: rel, version: 2, tags: { latest: NEW } }],
      versions: { timestamp: 2, snapshot: 2, targets: 1 },
      replace: { 'targets/releases': bogus },
    });
    const r = await outcome(
      mk(new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, evil)), pin, cacheDir, now).refresh(),
    );
    const got = r instanceof Error ? undefined : lookupTag(r, 'latest')?.digest;
    assert.notEqual(got, digestOf(OLD), `fell back to targets' old tag; skipped=${JSON.stringify(!(r instanceof Error) && r.skipped)}`);
  });

  it('B. a low-privilege delegate filling MAX_ROLES must not hide targets/releases (fallback to targets)', async () => {
    const keys = keysFor();
    const rel = [ecdsaKey()];
    const teamA = [ecdsaKey()];
    const roots = [forgeRoot(1, keys)];
    const pin = { rootKeyIds: [(keys.root[0] as ForgeKey).id] };
    const now = forgeClock();
    const cacheDir = tmp();
    const build = (children: number, v: number) => {
      const kids = Array.from({ length: children }, (_, i) => ({
        name: `targets/a/c${i}`,
        keys: teamA,
        paths: ['a/'],
      }));
      const roles: Record<string, Uint8Array> = {
        // the targets key holder delegates a/ to team A, then releases (DCT tags)
        targets: forgeTargets(1, { latest: OLD }, keys.targets, [
          { name: 'targets/a', keys: teamA, paths: ['a/'] },
          { name: 'targets/releases', keys: rel, paths: [''] },
        ]),
        'targets/releases': forgeTargets(2, { latest: NEW }, rel),
        // team A (its own key only) signs its role and children under a/
        'targets/a': forgeTargets(v, {}, teamA, kids),
      };
      for (const k of kids) roles[k.name] = forgeTargets(1, {}, teamA);
      const snapshot = forgeSnapshot(v, { root: roots[0] as Uint8Array, ...roles }, keys.snapshot);
      const timestamp = forgeTimestamp(v, snapshot, keys.timestamp);
      return forgedCrawl(SERVER, GUN, { roots, timestamp, snapshot, roles });
    };
    const c1 = await mk(new NotaryFixtureFetcher(build(0, 1)), pin, cacheDir, now).refresh();
    assert.equal(lookupTag(c1, 'latest')?.digest, digestOf(NEW));
    const r = await outcome(mk(new NotaryFixtureFetcher(build(300, 2)), pin, cacheDir, now).refresh());
    const got = r instanceof Error ? undefined : lookupTag(r, 'latest')?.digest;
    assert.notEqual(
      got,
      digestOf(OLD),
      `targets/releases silently not walked (roles=${r instanceof Error ? r.message : r.roles.size}, releases=${!(r instanceof Error) && r.roles.has('targets/releases')})`,
    );
  });

  it('C. two concurrent refreshes on one cache must not lower the role floors (stalled old replay)', async () => {
    const keys = keysFor();
    const roots = [forgeRoot(1, keys)];
    const pin = { rootKeyIds: [(keys.root[0] as ForgeKey).id] };
    const now = forgeClock();
    const cacheDir = tmp();
    const v1 = forgedCrawl(
      SERVER,
      GUN,
      forgeCollection({ roots, keys, tags: { latest: OLD }, versions: { timestamp: 1, snapshot: 1, targets: 1 } }),
    );
    const v2 = forgedCrawl(
      SERVER,
      GUN,
      forgeCollection({ roots, keys, tags: { latest: NEW }, versions: { timestamp: 2, snapshot: 2, targets: 2 } }),
    );
    // the server stalls client A on targets.<sha>.json of the old (replayed) collection
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let stalled!: () => void;
    const atGate = new Promise<void>((r) => {
      stalled = r;
    });
    const inner = new NotaryFixtureFetcher(v1);
    const slow: Fetcher = {
      async fetch(url: string, max: number, headers?: Record<string, string>) {
        if (/\/targets\.[0-9a-f]{64}\.json$/.test(url)) {
          stalled();
          await gate;
        }
        return inner.fetch(url, max, headers);
      },
    } as Fetcher;
    const a = mk(slow, pin, cacheDir, now).refresh();
    await atGate;
    // meanwhile B (another process or request) sees the current collection: floors targets=2
    const b = await mk(new NotaryFixtureFetcher(v2), pin, cacheDir, now).refresh();
    assert.equal(lookupTag(b, 'latest')?.digest, digestOf(NEW));
    release();
    await outcome(a);
    // later: the attacker replays the old collection
    const r = await outcome(mk(new NotaryFixtureFetcher(v1), pin, cacheDir, now).refresh());
    const got = r instanceof Error ? r.message : lookupTag(r, 'latest')?.digest;
    assert.notEqual(got, digestOf(OLD), 'the old targets v1 was accepted after v2 had been trusted');
  });

  it('E1. a snapshot key rotation must not reopen targets rollback (targets floors are not the snapshot key\'s)', async () => {
    const keys = keysFor();
    const pin = { rootKeyIds: [(keys.root[0] as ForgeKey).id] };
    const now = forgeClock();
    const cacheDir = tmp();
    const r1 = forgeRoot(1, keys);
    const oldTargets = forgeTargets(1, { latest: OLD }, keys.targets);
    await mk(new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, forgeCollection({ roots: [r1], keys, tags: { latest: NEW }, versions: { timestamp: 2, snapshot: 2, targets: 2 } }))), pin, cacheDir, now).refresh();
    // control: without a rotation the old targets v1 is a rollback
    const replay1 = forgeCollection({ roots: [r1], keys, versions: { timestamp: 3, snapshot: 3 }, replace: { targets: oldTargets } });
    const ctl = await outcome(mk(new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, replay1)), pin, cacheDir, now).refresh());
    assert.ok(ctl instanceof Error, 'control: rollback accepted without rotation');
    // the owners move the snapshot key to the server (notary key rotate --server-managed snapshot)
    const keys2: RootRoles = { ...keys, snapshot: [ecdsaKey()] };
    const r2 = forgeRoot(2, keys2, keys.root);
    // the (compromised) server, holding the new server-managed snapshot key, replays targets v1
    const replay2 = forgeCollection({ roots: [r1, r2], keys: keys2, versions: { timestamp: 4, snapshot: 1 }, replace: { targets: oldTargets } });
    const r = await outcome(mk(new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, replay2)), pin, cacheDir, now).refresh());
    const got = r instanceof Error ? r.message : lookupTag(r, 'latest')?.digest;
    assert.notEqual(got, digestOf(OLD), 'targets v1 accepted after v2 was trusted (floors dropped with the snapshot)');
  });

  it('E2. a release role cannot sign tags outside its paths; a tag in both roles resolves to targets/releases', async () => {
    const keys = keysFor();
    const rel = [ecdsaKey()];
    const roots = [forgeRoot(1, keys)];
    const pin = { rootKeyIds: [(keys.root[0] as ForgeKey).id] };
    const roles: Record<string, Uint8Array> = {
      targets: forgeTargets(1, { latest: NEW, both: NEW }, keys.targets, [{ name: 'targets/releases', keys: rel, paths: ['v'] }]),
      'targets/releases': forgeTargets(1, { latest: EVIL, v1: NEW, both: EVIL }, rel),
    };
    const snapshot = forgeSnapshot(1, { root: roots[0] as Uint8Array, ...roles }, keys.snapshot);
    const timestamp = forgeTimestamp(1, snapshot, keys.timestamp);
    const c = await mk(new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, { roots, timestamp, snapshot, roles })), pin, tmp(), forgeClock()).refresh();
    assert.equal(lookupTag(c, 'latest')?.digest, digestOf(NEW));
    assert.equal(lookupTag(c, 'both')?.digest, digestOf(NEW));
    assert.equal(lookupTag(c, 'v1')?.role, 'targets/releases');
  });

  it('E3. an old targets that did not yet delegate targets/releases is a rollback', async () => {
    const keys = keysFor();
    const rel = [ecdsaKey()];
    const roots = [forgeRoot(1, keys)];
    const pin = { rootKeyIds: [(keys.root[0] as ForgeKey).id] };
    const now = forgeClock();
    const cacheDir = tmp();
    const old = forgeTargets(1, { latest: OLD }, keys.targets);
    const good = forgeCollection({ roots, keys, tags: { latest: OLD }, delegations: [{ name: 'targets/releases', keys: rel, tags: { latest: NEW } }], versions: { timestamp: 1, snapshot: 1, targets: 2 } });
    await mk(new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, good)), pin, cacheDir, now).refresh();
    const evil = forgeCollection({ roots, keys, versions: { timestamp: 2, snapshot: 2 }, replace: { targets: old } });
    const r = await outcome(mk(new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, evil)), pin, cacheDir, now).refresh());
    assert.ok(r instanceof Error, 'old targets accepted');
  });
});
