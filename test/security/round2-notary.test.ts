/**
 * Security round 2, Notary trust anchors and rollback (issue 12 items 1 and 3, issue 13 items 2
 * and 5): the root pin, a fast-forwarded timestamp after a key rotation, rollback of `targets`
 * and delegated roles, and `--root-ca` chains. Real notary-server output (the fixtures) where
 * the attack allows it, otherwise trust data signed here (test/support/notary-forge.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lookupTag, NotaryClient, type NotaryTrust } from '../../src/notary/index.js';
import {
  final,
  fixtureClock,
  NotaryFixtureFetcher,
  notaryFixturesSkipReason,
} from '../support/notary-fixtures.js';
import {
  ecdsaKey,
  type ForgeKey,
  forgeClock,
  forgeCollection,
  forgedCrawl,
  forgeRoot,
  forgeTargets,
  Openssl,
  type RootRoles,
  x509Key,
} from '../support/notary-forge.js';
import { type CaseContext, defineCases, type SecurityCase } from './harness.js';

const SERVER = 'https://notary.test';
const GUN = 'registry.test/forged/app';

function client(
  t: CaseContext,
  fetcher: NotaryFixtureFetcher,
  trust: NotaryTrust,
  cacheDir: string,
  now: () => number,
  onWarning?: (m: string) => void,
): NotaryClient {
  const c = new NotaryClient({
    server: fetcher.serverUrl,
    gun: fetcher.gun,
    trust,
    cacheDir,
    fetcher,
    now,
    ...(onWarning ? { onWarning } : {}),
  });
  t.defer(() => c.close());
  return c;
}

/** rootKeyIdOf returns the root role's first key ID in a root document. */
function rootKeyIdOf(bytes: Uint8Array): string {
  const doc = JSON.parse(new TextDecoder().decode(bytes)) as {
    signed: { roles: { root: { keyids: string[] } } };
  };
  return doc.signed.roles.root.keyids[0] as string;
}

/** A forged GUN: a self-signed root key (CN = GUN) and one ECDSA key per other role. */
function forgedKeys(t: CaseContext, gun = GUN): RootRoles & { openssl: Openssl } {
  const openssl = new Openssl(t.tmp());
  const leaf = openssl.cert({ cn: gun, days: 3650 });
  return {
    openssl,
    root: [x509Key(leaf.pem, leaf.privateKey)],
    targets: [ecdsaKey()],
    snapshot: [ecdsaKey()],
    timestamp: [ecdsaKey()],
  };
}

const MANIFEST = { old: 'the old, vulnerable manifest', new: 'the current manifest' };

/** digestOf is the digest forgeTargets lists for a manifest's text. */
function digestOf(s: string): string {
  return `sha256:${createHash('sha256').update(s).digest('hex')}`;
}

const cases: SecurityCase[] = [
  {
    id: 'R2-01',
    title:
      'a Notary root that fails the pin never reaches the cache, and a cached root is bound to the pin',
    attack:
      "A fresh client pinned to the genuine root key; the server serves an attacker's self-signed root.json (version 1, CN = GUN, its own collection) and the genuine 1.root.json. Then: a cache holding the attacker's root (as the old client left it), and a pin changed under an existing cache",
    source: 'issue 12 item 1 (outside review of d132131); Docker Content Trust root pinning',
    expect: 'BAD_VERSION | THRESHOLD_NOT_MET',
    async run(t) {
      const app = final('app');
      const genuineV1 = app.files.get('1.root.json') as Uint8Array;
      const pin = { rootKeyIds: [rootKeyIdOf(genuineV1)] };
      const now = forgeClock();
      // the attacker: its own root v1 for this GUN and a whole collection under it
      const keys = forgedKeys(t, app.gun);
      const evil = forgedCrawl(
        app.server,
        app.gun,
        forgeCollection({
          roots: [forgeRoot(1, keys)],
          keys,
          tags: { '1.0': 'the attacker manifest' },
        }),
      );
      const fetcher = new NotaryFixtureFetcher([evil, app]).modify('1.root.json', genuineV1);
      const cacheDir = join(t.tmp(), 'notary');

      // first run: the served root fails the pin, 1.root.json passes; the same-version root.json
      // differs from it: refused, and nothing unverified is cached
      const first = await client(t, fetcher, pin, cacheDir, now)
        .refresh()
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      // second run on that cache: still refused, never the attacker's digest
      const second = await client(t, fetcher, pin, cacheDir, now)
        .refresh()
        .then(
          (c) => `accepted, 1.0 = ${lookupTag(c, '1.0')?.digest}`,
          (e: unknown) => e as Error,
        );
      assert.ok(second instanceof Error, `the second run (from the cache) was ${second}`);
      assert.ok(first instanceof Error, 'the first run was accepted');
      assert.match(first.message, /differs from the trusted/);
      await t.refuses(Promise.reject(first), 'BAD_VERSION');
      await t.refuses(Promise.reject(second), 'BAD_VERSION');
      const cached = join(cacheDir, 'root.json');
      assert.ok(
        !existsSync(cached) || Buffer.compare(readFileSync(cached), Buffer.from(genuineV1)) === 0,
        "the attacker's root.json was cached",
      );

      // a cache poisoned the way the old client left it: the attacker's root as root.json
      const poisoned = join(t.tmp(), 'notary');
      mkdirSync(poisoned, { recursive: true });
      writeFileSync(join(poisoned, 'root.json'), evil.files.get('root.json') as Uint8Array);
      const noV1 = new NotaryFixtureFetcher([evil, app]).modify('1.root.json', 'missing');
      await t.refuses(
        client(t, noV1, pin, poisoned, now).refresh(),
        'THRESHOLD_NOT_MET',
        /trust pin/,
      );

      // a pin changed under a cache established with the right one: the cache is not used
      const good = new NotaryFixtureFetcher(app);
      const shared = join(t.tmp(), 'notary');
      const right = { rootKeyIds: [rootKeyIdOf(app.files.get('root.json') as Uint8Array)] };
      const ok = await client(t, good, right, shared, fixtureClock).refresh();
      assert.ok(lookupTag(ok, '1.0') !== undefined);
      await t.refuses(
        client(t, good, { rootKeyIds: ['0'.repeat(64)] }, shared, fixtureClock).refresh(),
        'THRESHOLD_NOT_MET',
        /trust pin/,
      );
      // and back to the right pin: verifies again
      await client(t, good, right, shared, fixtureClock).refresh();
    },
  },
  {
    id: 'R2-03',
    title: 'a fast-forwarded Notary timestamp or snapshot is dropped once its key is rotated',
    attack:
      'A compromised server signs timestamp (and snapshot) version 2^31; the owners rotate the timestamp and snapshot keys in a new root and publish version 1 under the new keys',
    source: 'issue 12 item 3; TUF 5.3.11 (fast-forward attack recovery)',
    expect: 'ROLLBACK',
    async run(t) {
      const keys = forgedKeys(t);
      const pin = { rootKeyIds: [(keys.root[0] as ForgeKey).id] };
      const now = forgeClock();
      const cacheDir = join(t.tmp(), 'notary');
      const root1 = forgeRoot(1, keys);
      const tags = { '1.0': MANIFEST.new };
      const fetcher = new NotaryFixtureFetcher(
        forgedCrawl(SERVER, GUN, forgeCollection({ roots: [root1], keys, tags })),
      );
      await client(t, fetcher, pin, cacheDir, now).refresh();
      // the compromised keys fast-forward both versions
      const huge = 2 ** 31;
      fetcher.serve(
        forgedCrawl(
          SERVER,
          GUN,
          forgeCollection({
            roots: [root1],
            keys,
            tags,
            versions: { timestamp: huge, snapshot: huge },
          }),
        ),
      );
      await client(t, fetcher, pin, cacheDir, now).refresh();
      // control: without a rotation, version 2 stays a rollback
      fetcher.serve(
        forgedCrawl(
          SERVER,
          GUN,
          forgeCollection({ roots: [root1], keys, tags, versions: { timestamp: 2, snapshot: 2 } }),
        ),
      );
      await t.refuses(client(t, fetcher, pin, cacheDir, now).refresh(), 'ROLLBACK');
      // the owners rotate the timestamp and snapshot keys: version 1 under the new keys verifies
      const rotated = { ...keys, timestamp: [ecdsaKey()], snapshot: [ecdsaKey()] };
      const root2 = forgeRoot(2, rotated);
      fetcher.serve(
        forgedCrawl(SERVER, GUN, forgeCollection({ roots: [root1, root2], keys: rotated, tags })),
      );
      const c = await client(t, fetcher, pin, cacheDir, now).refresh();
      assert.equal(c.timestamp.version, 1);
      assert.equal(c.root.version, 2);
      // and the new floor holds: an older timestamp under the new key is a rollback again
      fetcher.serve(
        forgedCrawl(
          SERVER,
          GUN,
          forgeCollection({
            roots: [root1, root2],
            keys: rotated,
            tags,
            versions: { timestamp: 3, snapshot: 3 },
          }),
        ),
      );
      await client(t, fetcher, pin, cacheDir, now).refresh();
      fetcher.serve(
        forgedCrawl(
          SERVER,
          GUN,
          forgeCollection({
            roots: [root1, root2],
            keys: rotated,
            tags,
            versions: { timestamp: 2, snapshot: 4 },
          }),
        ),
      );
      await t.refuses(client(t, fetcher, pin, cacheDir, now).refresh(), 'ROLLBACK', /timestamp/);
    },
  },
  {
    id: 'R2B-02',
    title: 'an older targets or delegated role under a new Notary snapshot is a rollback',
    attack:
      'Whoever holds the snapshot and timestamp keys publishes a new snapshot listing an older, validly signed targets or targets/releases (the tag returns to an old digest), or leaving targets/releases out',
    source: 'issue 13 item 2; TUF 5.5.5 / 5.6.3 (versions Notary keeps per role)',
    expect: 'ROLLBACK',
    async run(t) {
      const keys = forgedKeys(t);
      const releases = [ecdsaKey()];
      const pin = { rootKeyIds: [(keys.root[0] as ForgeKey).id] };
      const now = forgeClock();
      const cacheDir = join(t.tmp(), 'notary');
      const roots = [forgeRoot(1, keys)];
      const deleg = (version: number, content: string) => [
        { name: 'targets/releases', keys: releases, version, tags: { '2.0': content } },
      ];
      // what the owners published first, then the current state (both validly signed)
      const oldTargets = forgeTargets(1, { '1.0': MANIFEST.old }, keys.targets, deleg(1, ''));
      const oldReleases = forgeTargets(1, { '2.0': MANIFEST.old }, releases);
      const current = (v: number, replace?: Record<string, Uint8Array>) =>
        forgedCrawl(
          SERVER,
          GUN,
          forgeCollection({
            roots,
            keys,
            tags: { '1.0': MANIFEST.new },
            delegations: deleg(2, MANIFEST.new),
            versions: { timestamp: v, snapshot: v, targets: 2 },
            ...(replace ? { replace } : {}),
          }),
        );
      const fetcher = new NotaryFixtureFetcher(current(1));
      const c = await client(t, fetcher, pin, cacheDir, now).refresh();
      assert.equal(lookupTag(c, '2.0')?.digest, digestOf(MANIFEST.new));
      assert.equal(lookupTag(c, '1.0')?.digest, digestOf(MANIFEST.new));

      // a new snapshot listing the older targets
      fetcher.serve(current(2, { targets: oldTargets }));
      await t.refuses(client(t, fetcher, pin, cacheDir, now).refresh(), 'ROLLBACK', /targets/);
      // a new snapshot listing the older targets/releases
      fetcher.serve(current(3, { 'targets/releases': oldReleases }));
      await t.refuses(
        client(t, fetcher, pin, cacheDir, now).refresh(),
        'ROLLBACK',
        /targets\/releases/,
      );
      // a new snapshot leaving targets/releases out (DCT would fall back to targets)
      const ts = forgeCollection({
        roots,
        keys,
        tags: { '1.0': MANIFEST.new },
        delegations: deleg(2, MANIFEST.new),
        versions: { timestamp: 4, snapshot: 4, targets: 2 },
      });
      const withoutReleases = forgeCollection({
        roots,
        keys,
        versions: { timestamp: 4, snapshot: 4, targets: 2 },
        replace: { targets: ts.roles.targets as Uint8Array },
      });
      fetcher.serve(forgedCrawl(SERVER, GUN, withoutReleases));
      await t.refuses(
        client(t, fetcher, pin, cacheDir, now).refresh(),
        'ROLLBACK',
        /targets\/releases/,
      );
      // control: the current versions under a newer snapshot still verify
      fetcher.serve(current(5));
      const again = await client(t, fetcher, pin, cacheDir, now).refresh();
      assert.equal(lookupTag(again, '2.0')?.digest, digestOf(MANIFEST.new));
    },
  },
  {
    id: 'R2B-05',
    title: 'Notary root certificates chain to a pinned CA only through valid, constrained CAs',
    attack:
      'Root certificates issued through an expired intermediate, by an expired pinned CA, past a pathLenConstraint, or by an issuer without keyCertSign; a pinned "CA" that is expired or no CA at load',
    source: 'issue 13 item 5; RFC 5280 6.1 (as notary and openssl verify apply it)',
    expect: 'THRESHOLD_NOT_MET | MISUSE',
    async run(t) {
      const openssl = new Openssl(t.tmp());
      const DAY = 86_400_000;
      const later = forgeClock(2 * DAY); // past every 1-day certificate
      const soon = forgeClock();
      const ca = openssl.cert({ cn: 'pinned CA', basicConstraints: 'CA:TRUE', days: 3650 });
      const tryChain = (
        issuer: Parameters<Openssl['cert']>[0]['issuer'],
        intermediates: string[],
        trustCa: string,
        now: () => number,
        onWarning?: (m: string) => void,
      ) => {
        const leaf = openssl.cert({ cn: GUN, days: 3650, ...(issuer ? { issuer } : {}) });
        const keys: RootRoles = {
          root: [x509Key([leaf.pem, ...intermediates].join(''), leaf.privateKey)],
          targets: [ecdsaKey()],
          snapshot: [ecdsaKey()],
          timestamp: [ecdsaKey()],
        };
        const fetcher = new NotaryFixtureFetcher(
          forgedCrawl(SERVER, GUN, forgeCollection({ roots: [forgeRoot(1, keys)], keys })),
        );
        // loaded now (the CAs are checked at load), verified when called
        const c = client(t, fetcher, { rootCa: trustCa }, join(t.tmp(), 'notary'), now, onWarning);
        return () => c.refresh();
      };
      const inter = (o: {
        days?: number;
        basicConstraints?: string;
        keyUsage?: string;
        issuer?: typeof ca;
      }) =>
        openssl.cert({
          cn: 'intermediate',
          basicConstraints: 'CA:TRUE',
          days: 3650,
          issuer: ca,
          ...o,
        });

      // control: CA → intermediate → leaf verifies, now and in two days
      const good = inter({});
      await tryChain(good, [good.pem], ca.pem, soon)();
      await tryChain(good, [good.pem], ca.pem, later)();

      // an expired intermediate
      const shortInter = inter({ days: 1 });
      await t.refuses(
        tryChain(shortInter, [shortInter.pem], ca.pem, later),
        'THRESHOLD_NOT_MET',
        /"intermediate" expired/,
      );
      // an expired pinned CA (valid when loaded, expired when the root is verified)
      const shortCa = openssl.cert({ cn: 'short CA', basicConstraints: 'CA:TRUE', days: 1 });
      const underShort = inter({ issuer: shortCa });
      let at = soon();
      const moving = () => at;
      const attempt = tryChain(underShort, [underShort.pem], shortCa.pem, moving);
      at = later();
      await t.refuses(attempt, 'THRESHOLD_NOT_MET', /"short CA" expired/);
      // a chain longer than the CA's pathLenConstraint (0: no intermediate CA below it)
      const ca0 = openssl.cert({
        cn: 'pathlen 0 CA',
        basicConstraints: 'CA:TRUE, pathlen:0',
        days: 3650,
      });
      const under0 = inter({ issuer: ca0 });
      await t.refuses(
        tryChain(under0, [under0.pem], ca0.pem, soon),
        'THRESHOLD_NOT_MET',
        /allows 0 intermediate CAs below it, the chain has 1/,
      );
      // an intermediate's own pathLen too: CA → I1 (pathlen 0) → I2 → leaf
      const i1 = inter({ basicConstraints: 'CA:TRUE, pathlen:0' });
      const i2 = inter({ issuer: i1 });
      await t.refuses(
        tryChain(i2, [i2.pem, i1.pem], ca.pem, soon),
        'THRESHOLD_NOT_MET',
        /allows 0 intermediate CAs below it, the chain has 1/,
      );
      // an issuer without keyCertSign
      const noSign = inter({ keyUsage: 'critical,digitalSignature' });
      await t.refuses(
        tryChain(noSign, [noSign.pem], ca.pem, soon),
        'THRESHOLD_NOT_MET',
        /keyCertSign/,
      );

      // at load: an expired pinned CA and a non-CA are dropped, with a message
      const warnings: string[] = [];
      const notCa = openssl.cert({ cn: 'not a CA', days: 3650 });
      await t.refuses(
        () => tryChain(undefined, [], shortCa.pem + notCa.pem, later, (m) => warnings.push(m))(),
        'MISUSE',
        /no usable/,
      );
      assert.equal(warnings.length, 2, warnings.join('\n'));
      assert.match(warnings.join('\n'), /expired/);
      assert.match(warnings.join('\n'), /not a CA/);
      // beside a good CA, the dropped ones leave the good one working
      warnings.length = 0;
      await tryChain(good, [good.pem], notCa.pem + ca.pem, soon, (m) => warnings.push(m))();
      assert.equal(warnings.length, 1);
    },
  },
];

describe('security round 2: Notary trust anchors and rollback', () => {
  before(function () {
    const why = notaryFixturesSkipReason();
    if (why !== undefined) {
      process.stderr.write(`  skipping the Notary round 2 cases: ${why}\n`);
      this.skip();
    }
  });
  defineCases(cases);
});
