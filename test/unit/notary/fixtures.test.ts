/**
 * The Notary client against real notary-server 0.7.0 output (shared fixtures/notary-v1), served
 * without sockets by {@link NotaryFixtureFetcher}, at a clock one hour after the lab ran.
 *
 * - Every stage of demo/app's history and every `final` crawl verifies, with the root pinned by
 *   the root role's certificate key ID, by the canonical key ID `notary key list` prints, and
 *   with trust on first use; the tags Docker Content Trust would resolve, with their digests and
 *   lengths, are those the lab pushed (registry/manifests.json).
 * - Delegations without a snapshot entry are skipped; qa/legacy are read but never consulted for
 *   DCT tags.
 * - Root rotation: a cached root v3 accepts v4 (signed by the old and the new key); a pin of the
 *   old key walks `1.root.json`… from a fresh cache.
 * - HTML-escaped targets, server B (RSA-PSS root, Ed25519 timestamp/snapshot, UTC offsets), the
 *   request sequence of NOTARY-FORMAT.md §8.1, the bearer challenge, and the trust settings
 *   (no pin → MisuseError, wrong pin, a CA the roots do not chain to).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MisuseError, TufaError } from '../../../src/core/index.js';
import {
  canonicalKeyId,
  certificates,
  lookupTag,
  NotaryClient,
  type NotaryCollection,
  type NotaryTrust,
  parseNotary,
  signedTags,
} from '../../../src/notary/index.js';
import {
  type Crawl,
  consistentName,
  final,
  fixtureClock,
  fixturePath,
  labManifests,
  NotaryFixtureFetcher,
  notaryFixturesSkipReason,
  STAGES,
  type Stage,
  stage,
  text,
} from '../../support/notary-fixtures.js';

const MiB = 1024 * 1024;

/** The root role's key ID (a certificate ID) of a crawl's current root.json. */
function rootRoleKeyId(crawl: Crawl, file = 'root.json'): string {
  const bytes = crawl.files.get(file);
  assert.ok(bytes, `${crawl.name}: no ${file}`);
  const root = parseNotary(bytes, 'Root', file).signed;
  const ids = root.roles.get('root')?.keyids ?? [];
  assert.equal(ids.length, 1, `${crawl.name}: one root key expected`);
  return ids[0] as string;
}

/** The root key IDs `notary key list` printed in the lab (canonical IDs). */
function keyListRootIds(server: 'A' | 'B'): string[] {
  const list = readFileSync(fixturePath('keys', `notary-key-list-${server}.txt`), 'utf8');
  return list
    .split('\n')
    .filter((l) => l.startsWith('root '))
    .map((l) => (/\b([0-9a-f]{64})\b/.exec(l)?.[1] as string) ?? '');
}

interface ExpectedTag {
  readonly tag: string;
  readonly role: string;
  /** The lab manifest whose digest and size the tag must carry: `repository:tag`. */
  readonly manifest: string;
}

interface Case {
  readonly crawl: () => Crawl;
  readonly label: string;
  readonly keyList: 'A' | 'B';
  /** The canonical ID of the root key (from notary key list). */
  readonly canonical: string;
  readonly tags: readonly ExpectedTag[];
  readonly roles: readonly string[];
  readonly skipped: readonly string[];
  /**
   * `targets` delegates `targets/releases` but it is not usable (here: never published): the
   * DCT lookup refuses rather than fall back to `targets`.
   */
  readonly releasesUnusable?: boolean;
}

const OLD_ROOT = '36aa2807f3730b9401c49b6a57a207541c170f9f19b935c092f8efb994926a46';
const NEW_ROOT = '4747b52b3dafa9a1511536eb13507e75cd3da7e9e0f1ed9787fdc49248854ed0';
const B_ROOT = '8fbf189b7832c7f07f5bb633b68fd9623c13667aecd5261839dfade7d30a1d85';
/** The root certificate IDs of demo/app on server A: before and after the root key rotation. */
const APP_OLD_CERT = '75244184df98989d38ca8d1218f8eb2ad4692512281c938e58d99150ca76d67f';
const APP_NEW_CERT = '893325389c5ce40d2ec35df98747c261aee0da9fd5604461cd20ecc01c4dcdc7';

const DELEGATED = ['targets', 'targets/releases', 'targets/qa', 'targets/legacy'];
const RELEASES: readonly ExpectedTag[] = [
  { tag: '1.0', role: 'targets/releases', manifest: 'demo/app:1.0' },
  { tag: '2.0', role: 'targets/releases', manifest: 'demo/app:2.0' },
];

function stageCase(s: Stage): Case {
  const n = Number(s[0]);
  return {
    crawl: () => stage(s),
    label: `demo/app stage ${s}`,
    keyList: 'A',
    canonical: n >= 6 ? NEW_ROOT : OLD_ROOT,
    tags: n <= 2 ? [{ tag: '1.0', role: 'targets', manifest: 'demo/app:1.0' }] : RELEASES,
    roles: n <= 2 ? ['targets'] : DELEGATED,
    skipped: n === 2 ? ['targets/releases', 'targets/qa', 'targets/legacy'] : [],
  };
}

const CASES: readonly Case[] = [
  ...STAGES.map(stageCase),
  {
    crawl: () => final('app'),
    label: 'demo/app final',
    keyList: 'A',
    canonical: NEW_ROOT,
    tags: RELEASES,
    roles: DELEGATED,
    skipped: [],
  },
  {
    crawl: () => final('multi'),
    label: 'demo/multi final (image index)',
    keyList: 'A',
    canonical: OLD_ROOT,
    tags: [{ tag: '3.0', role: 'targets', manifest: 'demo/multi:3.0' }],
    roles: ['targets'],
    skipped: [],
  },
  {
    crawl: () => final('quirks'),
    label: 'demo/quirks final (HTML-escaped target name)',
    keyList: 'A',
    canonical: NEW_ROOT,
    tags: [
      { tag: 'amp&<lt>', role: 'targets', manifest: 'demo/app:1.0' },
      { tag: 'sorted-custom', role: 'targets', manifest: 'demo/app:1.0' },
    ],
    roles: ['targets'],
    skipped: [],
  },
  {
    crawl: () => final('serverB'),
    label: 'server B demo/app final (rsa-x509 root, ed25519 timestamp/snapshot)',
    keyList: 'B',
    canonical: B_ROOT,
    tags: [
      { tag: '1.0', role: 'targets', manifest: 'demo/app:1.0' },
      { tag: '2.0', role: 'targets', manifest: 'demo/app:2.0' },
    ],
    roles: ['targets'],
    skipped: [],
  },
];

describe('Notary client: real notary-server 0.7.0 trust data (fixtures)', () => {
  let tmp: string;
  let counter = 0;
  const freshCache = () => join(tmp, `cache-${counter++}`);

  before(function () {
    const why = notaryFixturesSkipReason();
    if (why !== undefined) {
      process.stderr.write(`  skipping the Notary fixture tests: ${why}\n`);
      this.skip();
    }
    tmp = mkdtempSync(join(tmpdir(), 'tufa-notary-fixtures-'));
  });

  after(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  function client(
    fetcher: NotaryFixtureFetcher,
    trust: NotaryTrust,
    o: { cacheDir?: string; now?: number; gun?: string } = {},
  ): NotaryClient {
    const now = o.now ?? fixtureClock();
    return new NotaryClient({
      server: fetcher.serverUrl,
      gun: o.gun ?? fetcher.gun,
      trust,
      cacheDir: o.cacheDir ?? freshCache(),
      fetcher,
      now: () => now,
    });
  }

  const fetcherFor = (...crawls: Crawl[]) => new NotaryFixtureFetcher(crawls);

  async function refresh(crawl: Crawl, trust: NotaryTrust): Promise<NotaryCollection> {
    return client(fetcherFor(crawl), trust).refresh();
  }

  const manifests = () => new Map(labManifests().map((m) => [`${m.repository}:${m.tag}`, m]));

  function checkTags(c: NotaryCollection, k: Case): void {
    const lab = manifests();
    if (k.releasesUnusable) {
      assert.throws(
        () => signedTags(c),
        (e: unknown) => e instanceof TufaError && e.code === 'DELEGATION',
      );
      assert.deepEqual([...c.roles.keys()], k.roles);
      assert.deepEqual(
        c.skipped.map((s) => s.role),
        k.skipped,
      );
      return;
    }
    const got = signedTags(c).map((t) => ({
      tag: t.target.name,
      role: t.role,
      digest: t.digest,
      length: t.target.length,
    }));
    const want = k.tags.map((t) => {
      const m = lab.get(t.manifest);
      assert.ok(m, `no lab manifest ${t.manifest}`);
      return { tag: t.tag, role: t.role, digest: m.digest, length: m.size };
    });
    assert.deepEqual(got, want);
    assert.deepEqual([...c.roles.keys()], k.roles);
    assert.deepEqual(
      c.skipped.map((s) => s.role),
      k.skipped,
    );
    for (const s of c.skipped) assert.match(s.reason, /not in snapshot/);
  }

  describe('every stage and every final crawl verifies', () => {
    for (const k of CASES) {
      describe(k.label, () => {
        it("pinned by the root role's key ID (certificate ID)", async () => {
          const crawl = k.crawl();
          checkTags(await refresh(crawl, { rootKeyIds: [rootRoleKeyId(crawl)] }), k);
        });

        it(`pinned by the canonical key ID notary key list prints (${k.canonical.slice(0, 8)}…)`, async () => {
          assert.ok(keyListRootIds(k.keyList).includes(k.canonical), 'not in the key list');
          const crawl = k.crawl();
          const root = parseNotary(crawl.files.get('root.json') as Uint8Array, 'Root', 'r').signed;
          const key = root.keys.get(rootRoleKeyId(crawl));
          assert.ok(key);
          assert.equal(canonicalKeyId(key), k.canonical);
          checkTags(await refresh(crawl, { rootKeyIds: [k.canonical] }), k);
        });

        it('with trust on first use', async () => {
          checkTags(await refresh(k.crawl(), { tofu: true }), k);
        });
      });
    }
  });

  describe('collections in detail', () => {
    it('stage 2: delegations defined but not in the snapshot are skipped, not fetched', async () => {
      const f = fetcherFor(stage('2-delegations'));
      const c = await client(f, { tofu: true }).refresh();
      assert.equal(c.roles.get('targets')?.delegations.length, 3);
      assert.deepEqual(
        c.skipped.map((s) => s.role),
        ['targets/releases', 'targets/qa', 'targets/legacy'],
      );
      assert.ok(
        f.names().every((n) => !n?.startsWith('targets/')),
        String(f.names()),
      );
      // targets delegates targets/releases, never published (and never trusted here): DCT
      // reads targets, and so does tufa (a once-trusted releases left out is a ROLLBACK)
      assert.equal(lookupTag(c, '1.0')?.role, 'targets');
    });

    it('stage 3: qa (ecdsa-x509, sha512 + custom) and legacy (rsa-x509, rsapss, paths legacy/) are read, DCT consults releases then targets only', async () => {
      const crawl = stage('3-delegated-targets');
      const legacyRaw = text(
        crawl.files.get(consistentName(crawl, 'targets/legacy')) as Uint8Array,
      );
      assert.match(legacyRaw, /"method":"rsapss"/);
      const c = await refresh(crawl, { rootKeyIds: [APP_OLD_CERT] });
      const qa = c.roles.get('targets/qa')?.targets.get('2.0-rc');
      assert.deepEqual(qa?.custom, { note: 'release candidate', signer: 'qa' });
      assert.deepEqual(Object.keys(qa?.hashes ?? {}).sort(), ['sha256', 'sha512']);
      assert.equal(qa?.length, 423);
      assert.ok(c.roles.get('targets/legacy')?.targets.has('legacy/1.0'));
      assert.equal(lookupTag(c, '2.0-rc'), undefined, 'qa is not a DCT role');
      assert.equal(lookupTag(c, 'legacy/1.0'), undefined, 'legacy is not a DCT role');
      // 1.0 is in targets and in releases: releases wins
      assert.ok(c.roles.get('targets')?.targets.has('1.0'));
      assert.equal(lookupTag(c, '1.0')?.role, 'targets/releases');
    });

    it('demo/multi: the tag is the OCI image index digest', async () => {
      const c = await refresh(final('multi'), { tofu: true });
      const m = labManifests().find((x) => x.repository === 'demo/multi');
      assert.equal(m?.mediaType, 'application/vnd.oci.image.index.v1+json');
      assert.equal(lookupTag(c, '3.0')?.digest, m?.digest);
      assert.equal(lookupTag(c, '3.0')?.target.length, 645);
    });

    it('demo/quirks: a target served HTML-escaped ("amp\\u0026\\u003clt\\u003e") verifies; canonical custom data is kept', async () => {
      const crawl = final('quirks');
      const served = text(crawl.files.get(consistentName(crawl, 'targets')) as Uint8Array);
      assert.ok(served.includes('"amp\\u0026\\u003clt\\u003e"'), 'the fixture is HTML-escaped');
      assert.ok(!served.includes('amp&<lt>'));
      const c = await refresh(crawl, { rootKeyIds: [NEW_ROOT] });
      const t = lookupTag(c, 'amp&<lt>');
      assert.equal(t?.role, 'targets');
      assert.equal(t?.digest, manifests().get('demo/app:1.0')?.digest);
      assert.deepEqual(c.roles.get('targets')?.targets.get('sorted-custom')?.custom, {
        alpha: 'plain',
        zeta: 2,
      });
    });

    it('server B: rsa-x509 root (rsapss), ed25519 timestamp and snapshot (eddsa), +05:30 and -05:00 expiries', async () => {
      const crawl = final('serverB');
      const ts = text(crawl.files.get('timestamp.json') as Uint8Array);
      const sn = text(crawl.files.get(consistentName(crawl, 'snapshot')) as Uint8Array);
      const root = text(crawl.files.get('root.json') as Uint8Array);
      assert.match(ts, /"method":"eddsa"/);
      assert.match(sn, /"method":"eddsa"/);
      assert.match(root, /"keytype":"rsa-x509"/);
      assert.match(root, /"method":"rsapss"/);
      const c = await refresh(crawl, { rootKeyIds: [B_ROOT] });
      assert.match(c.timestamp.expires, /-05:00$/);
      assert.match(c.roles.get('targets')?.expires ?? '', /\+05:30$/);
      assert.match(c.root.expires, /\+05:30$/);
      // the offsets are honoured: 07:12:39.260 at -05:00 is 12:12:39.260 UTC
      assert.equal(c.timestamp.expiresAt, Date.parse(c.timestamp.expires));
      assert.equal(new Date(c.timestamp.expiresAt).toISOString().slice(11, 23), '12:12:39.260');
      // the RSA root certificate in keys/ is the one the root lists
      const rsaRoot = new X509Certificate(readFileSync(fixturePath('keys', 'rsa-root.crt')));
      const key = c.root.keys.get(rootRoleKeyId(crawl));
      assert.ok(key);
      assert.equal(certificates(key)[0]?.fingerprint256, rsaRoot.fingerprint256);
    });
  });

  describe('root rotation', () => {
    it('a client that cached the root of stage 5 (v3) accepts stage 6 (v4, signed by the old and the new key)', async () => {
      const cacheDir = freshCache();
      const f = fetcherFor(stage('5-targets-key-rotated'));
      const c5 = await client(f, { rootKeyIds: [APP_OLD_CERT] }, { cacheDir }).refresh();
      assert.equal(c5.root.version, 3);
      f.serve(stage('6-root-key-rotated')).reset();
      const c6 = await client(f, { rootKeyIds: [APP_OLD_CERT] }, { cacheDir }).refresh();
      assert.equal(c6.root.version, 4);
      assert.deepEqual(c6.root.roles.get('root')?.keyids, [APP_NEW_CERT]);
      const v4 = parseNotary(
        stage('6-root-key-rotated').files.get('root.json') as Uint8Array,
        'Root',
        'r',
      );
      assert.deepEqual([...v4.signatures.keys()].sort(), [APP_NEW_CERT, APP_OLD_CERT].sort());
      // the cache now holds v4
      const cached = parseNotary(readFileSync(join(cacheDir, 'root.json')), 'Root', 'cached');
      assert.equal(cached.signed.version, 4);
      checkTags(c6, stageCase('6-root-key-rotated'));
    });

    it('one cache follows the whole history: stage 1 → 6 → final', async () => {
      const cacheDir = freshCache();
      const f = fetcherFor(stage('1-init'));
      const versions: number[] = [];
      for (const crawl of [...STAGES.map((s) => stage(s)), final('app')]) {
        f.serve(crawl);
        const c = await client(f, { rootKeyIds: [OLD_ROOT] }, { cacheDir }).refresh();
        versions.push(c.root.version);
      }
      assert.deepEqual(versions, [1, 1, 1, 2, 3, 4, 4]);
    });

    for (const pin of [
      { what: 'certificate ID', id: APP_OLD_CERT },
      { what: 'canonical ID', id: OLD_ROOT },
    ]) {
      it(`a pin of the old root key (${pin.what}) works from a fresh cache by walking 1.root.json … 3.root.json (final crawl)`, async () => {
        const f = fetcherFor(final('app'));
        const c = await client(f, { rootKeyIds: [pin.id] }).refresh();
        assert.equal(c.root.version, 4);
        const names = f.names();
        for (const n of ['root.json', '1.root.json', '2.root.json', '3.root.json']) {
          assert.ok(names.includes(n), `${n} not requested: ${names.join(', ')}`);
        }
        assert.ok(!names.includes('4.root.json'), 'the current root is not fetched twice');
        checkTags(c, CASES.find((k) => k.label === 'demo/app final') as Case);
      });
    }

    it('a pin of the old root key is refused when the server has no 1.root.json (stage 6 crawl)', async () => {
      const f = fetcherFor(stage('6-root-key-rotated'));
      await assert.rejects(client(f, { rootKeyIds: [OLD_ROOT] }).refresh(), (e: unknown) => {
        assert.ok(e instanceof TufaError);
        return true;
      });
      assert.ok(f.names().includes('1.root.json'));
    });

    it('a pin of the new root key is refused for a history before the rotation (stage 5 + versioned roots)', async () => {
      const f = fetcherFor(stage('5-targets-key-rotated'), final('app'));
      await assert.rejects(client(f, { rootKeyIds: [NEW_ROOT] }).refresh(), {
        code: 'THRESHOLD_NOT_MET',
      });
    });
  });

  describe('requests (NOTARY-FORMAT.md §8.1)', () => {
    const CLIENT_NAMES = (crawl: Crawl) =>
      crawl.requests
        .filter((r) => r.note.startsWith('client:'))
        .map((r) => r.path.slice(`/v2/${crawl.gun}/_trust/tuf/`.length));

    it('a fresh client asks for root, timestamp, then snapshot, targets and delegations by sha256, in pre-order', async () => {
      const crawl = final('app');
      const f = fetcherFor(crawl);
      await client(f, { rootKeyIds: [NEW_ROOT] }).refresh();
      assert.deepEqual(f.names(), CLIENT_NAMES(crawl));
      // the sequence the real notary CLI made (its access log), without its GET /v2/ ping
      const logged = readFileSync(
        fixturePath('notary-A-ecdsa', 'demo-app', 'notary-list-requests.txt'),
        'utf8',
      )
        .split('\n')
        .map((l) => /^GET \/v2\/.+?\/_trust\/tuf\/(\S+) -> 200$/.exec(l)?.[1])
        .filter((n): n is string => n !== undefined);
      assert.equal(logged.length, 7);
      assert.deepEqual(f.names(), logged);
      assert.ok(
        f.requests.every(
          (r) =>
            r.status === 200 && r.url.startsWith(`${crawl.server}/v2/${crawl.gun}/_trust/tuf/`),
        ),
      );
    });

    it('size limits: root and timestamp at most 1 MiB, the rest exactly the length their parent lists', async () => {
      const crawl = final('app');
      const f = fetcherFor(crawl);
      const c = await client(f, { rootKeyIds: [NEW_ROOT] }).refresh();
      const limit = new Map(f.requests.map((r) => [r.name, r.maxLength]));
      assert.equal(limit.get('root.json'), MiB);
      assert.equal(limit.get('timestamp.json'), MiB);
      assert.equal(limit.get(consistentName(crawl, 'snapshot')), c.timestamp.snapshot.length);
      for (const role of ['targets', 'targets/releases', 'targets/qa', 'targets/legacy']) {
        const name = consistentName(crawl, role);
        assert.equal(limit.get(name), c.snapshot.meta.get(role)?.length, role);
        assert.equal(limit.get(name), crawl.files.get(name)?.length, role);
      }
    });

    it('every crawl: the client requests exactly what the lab recorded as client requests', async () => {
      for (const crawl of [
        ...STAGES.map((s) => stage(s)),
        final('multi'),
        final('quirks'),
        final('serverB'),
      ]) {
        const f = fetcherFor(crawl);
        await client(f, { tofu: true }).refresh();
        assert.deepEqual(f.names(), CLIENT_NAMES(crawl), crawl.name);
      }
    });

    it('a warm cache asks for the same files again (no root walk)', async () => {
      const cacheDir = freshCache();
      const crawl = final('app');
      const f = fetcherFor(crawl);
      await client(f, { rootKeyIds: [NEW_ROOT] }, { cacheDir }).refresh();
      f.reset();
      await client(f, { rootKeyIds: [NEW_ROOT] }, { cacheDir }).refresh();
      assert.deepEqual(f.names(), CLIENT_NAMES(crawl));
    });
  });

  describe('over HTTP with the default fetcher (a notary-server stand-in on 127.0.0.1)', () => {
    /** Serves a crawl at /v2/<GUN>/_trust/tuf/…, optionally behind a bearer token from /token. */
    async function crawlServer(
      crawl: Crawl,
      requireToken: boolean,
    ): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
      const seen: string[] = [];
      const sockets = new Set<Socket>();
      let url = '';
      const handle = (req: IncomingMessage, res: ServerResponse) => {
        const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
        seen.push(`${req.headers.authorization ?? '-'} ${path}`);
        if (path === '/token') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ token: 'http-token' }));
          return;
        }
        if (requireToken && req.headers.authorization !== 'Bearer http-token') {
          res.writeHead(401, {
            'content-type': 'application/json',
            'www-authenticate': `Bearer realm="${url}/token",service="notary-server",scope="repository:${crawl.gun}:pull"`,
          });
          res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
          return;
        }
        const prefix = `/v2/${crawl.gun}/_trust/tuf/`;
        const body = path.startsWith(prefix)
          ? crawl.files.get(path.slice(prefix.length))
          : undefined;
        if (body === undefined) {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end('{"errors":[{"code":"METADATA_NOT_FOUND"}]}');
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(body);
      };
      const server: Server = createServer(handle);
      server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      return {
        url,
        seen,
        close: async () => {
          for (const s of sockets) s.destroy();
          await new Promise((r) => server.close(r));
        },
      };
    }

    async function refreshOverHttp(crawl: Crawl, requireToken: boolean) {
      const srv = await crawlServer(crawl, requireToken);
      const now = fixtureClock();
      const c = new NotaryClient({
        server: srv.url,
        gun: crawl.gun,
        trust: { rootKeyIds: [B_ROOT] },
        cacheDir: freshCache(),
        now: () => now,
      });
      try {
        return { collection: await c.refresh(), seen: srv.seen };
      } finally {
        await c.close();
        await srv.close();
      }
    }

    it('without auth: server B verifies through the real HTTP fetcher', async () => {
      const { collection } = await refreshOverHttp(final('serverB'), false);
      assert.equal(lookupTag(collection, '1.0')?.digest, manifests().get('demo/app:1.0')?.digest);
    });

    // A token-protected notary server (server B, Docker Hub's): the transport under the default
    // fetcher answers the server's own bearer challenge once, and sends the token from then on.
    it('with a bearer challenge, the default fetcher gets one token and sends it', async () => {
      const { collection, seen } = await refreshOverHttp(final('serverB'), true).catch((e) => {
        throw new Error(`refresh failed: ${(e as Error).message}`);
      });
      assert.equal(lookupTag(collection, '1.0')?.digest, manifests().get('demo/app:1.0')?.digest);
      assert.ok(
        seen.some((s) => s.startsWith('Bearer http-token ')),
        seen.join('\n'),
      );
      assert.equal(seen.filter((s) => s.endsWith(' /token')).length, 1, 'one token per refresh');
    });
  });

  describe('trust settings', () => {
    it('no pin and no trust on first use: MisuseError when the client is made', () => {
      const f = fetcherFor(final('app'));
      for (const trust of [
        {},
        { rootKeyIds: [] },
        { tofu: false },
        { rootKeyIds: [], tofu: false },
      ]) {
        assert.throws(
          () => client(f, trust),
          (e: unknown) => {
            assert.ok(e instanceof MisuseError);
            assert.equal(e.code, 'MISUSE');
            return true;
          },
        );
      }
      assert.equal(f.requests.length, 0);
    });

    it('a wrong pin is refused (THRESHOLD_NOT_MET), also after walking 1.root.json', async () => {
      const f = fetcherFor(final('app'));
      const wrong = 'ab'.repeat(32);
      await assert.rejects(client(f, { rootKeyIds: [wrong] }).refresh(), {
        code: 'THRESHOLD_NOT_MET',
      });
      assert.ok(f.names().includes('1.root.json'));
      assert.ok(!f.names().includes('timestamp.json'), 'nothing read past the root');
    });

    // When the pin does not match the served root and the server has no 1.root.json, the answer
    // is the trust refusal (exit 1), not the fallback's 404 (exit 3, "unavailable").
    it('a wrong pin against a server without versioned roots is a trust refusal, not HTTP 404', async () => {
      const f = fetcherFor(stage('1-init'));
      await assert.rejects(client(f, { rootKeyIds: ['ab'.repeat(32)] }).refresh(), {
        code: 'THRESHOLD_NOT_MET',
      });
    });

    it("a pin of another GUN's root certificate is refused (demo/multi's ID for demo/app)", async () => {
      const multiCert = rootRoleKeyId(final('multi'));
      await assert.rejects(refresh(final('app'), { rootKeyIds: [multiCert] }), {
        code: 'THRESHOLD_NOT_MET',
      });
    });

    it('the lab CA (keys/ca.crt) is not an issuer of any root: the roots are self-signed leaves', () => {
      const ca = new X509Certificate(readFileSync(fixturePath('keys', 'ca.crt')));
      assert.ok(ca.ca);
      for (const k of CASES) {
        const crawl = k.crawl();
        const root = parseNotary(crawl.files.get('root.json') as Uint8Array, 'Root', 'r').signed;
        const key = root.keys.get(rootRoleKeyId(crawl));
        assert.ok(key);
        const [leaf, ...rest] = certificates(key);
        assert.ok(leaf);
        assert.equal(rest.length, 0, `${k.label}: a single certificate`);
        assert.equal(leaf.ca, false, k.label);
        assert.equal(leaf.subject, leaf.issuer, `${k.label}: self-issued`);
        assert.ok(leaf.verify(leaf.publicKey), `${k.label}: self-signed`);
        assert.equal(leaf.checkIssued(ca), false, k.label);
        assert.equal(leaf.verify(ca.publicKey), false, k.label);
        assert.equal(leaf.subject, `CN=${crawl.gun}`);
      }
    });

    it('so a CA pin of keys/ca.crt refuses every collection', async () => {
      const rootCa = readFileSync(fixturePath('keys', 'ca.crt'), 'utf8');
      for (const k of CASES) {
        const crawl = k.crawl();
        // stages have no N.root.json: the final crawl of the same GUN supplies 1.root.json
        const f = crawl.name.includes('/stages/')
          ? fetcherFor(crawl, final('app'))
          : fetcherFor(crawl);
        await assert.rejects(
          client(f, { rootCa }).refresh(),
          { code: 'THRESHOLD_NOT_MET' },
          k.label,
        );
        assert.ok(!f.names().includes('timestamp.json'), `${k.label}: nothing read past the root`);
      }
    });

    it('a CA pin and a key ID pin together: the key ID admits the root', async () => {
      const rootCa = readFileSync(fixturePath('keys', 'ca.crt'), 'utf8');
      const c = await refresh(final('app'), { rootCa, rootKeyIds: [NEW_ROOT] });
      assert.equal(c.root.version, 4);
    });

    it('trust on first use keeps the root: a later root of another GUN is refused', async () => {
      const cacheDir = freshCache();
      const f = fetcherFor(stage('1-init'));
      await client(f, { tofu: true }, { cacheDir }).refresh();
      f.modify('root.json', final('multi').files.get('root.json') as Uint8Array);
      await assert.rejects(client(f, { tofu: true }, { cacheDir }).refresh(), {
        code: 'THRESHOLD_NOT_MET',
      });
    });
  });
});
