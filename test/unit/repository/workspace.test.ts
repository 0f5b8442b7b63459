/**
 * The repository workspace at library level: init, targets, signing rounds, status, publish,
 * delegations (paths, hash prefixes, succinct bins), root rotation, init failures and external
 * signer commands. Published trees are served on 127.0.0.1 and read back by tufa's Updater (and,
 * for root rotation, by the tuf-js Updater).
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Updater as TufJsUpdater } from 'tuf-js';
import { HttpFetcher, initMetadataDir, Updater } from '../../../src/client/index.js';
import { canonicalize, type Key, MisuseError } from '../../../src/core/index.js';
import {
  consistentTargetName,
  type Envelope,
  ExternalCommandSigner,
  KeyObjectSigner,
  publicKeyOf,
  publishWorkspace,
  type RepositoryStatus,
  repositoryStatus,
  type Signer,
  type TopRole,
  Workspace,
} from '../../../src/repository/index.js';
import { StaticServer } from '../../support/static-server.js';

const DAY = 86_400_000;
const te = new TextEncoder();
const TOP: readonly TopRole[] = ['root', 'targets', 'snapshot', 'timestamp'];

type Keys = Record<TopRole, KeyObjectSigner>;

function signer(): KeyObjectSigner {
  return new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);
}

function newKeys(): Keys {
  return { root: signer(), targets: signer(), snapshot: signer(), timestamp: signer() };
}

function publicKeys(k: Keys): Record<TopRole, Key[]> {
  return {
    root: [k.root.publicKey],
    targets: [k.targets.publicKey],
    snapshot: [k.snapshot.publicKey],
    timestamp: [k.timestamp.publicKey],
  };
}

function sha256(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

function assertBytes(actual: Uint8Array, expected: Uint8Array, what = 'bytes'): void {
  assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), `${what} differ`);
}

/** release signs every targets role (delegated ones with `delegated(role)`), root, then
 * refreshes and signs snapshot and timestamp: one complete signing round. */
async function release(
  ws: Workspace,
  k: Readonly<Record<TopRole, Signer>>,
  delegated: (role: string) => readonly Signer[] = () => [],
): Promise<void> {
  for (const { name } of await ws.targetsRoles()) {
    for (const s of name === 'targets' ? [k.targets] : delegated(name)) await ws.sign(name, s);
  }
  await ws.sign('root', k.root);
  await ws.refreshSnapshotMeta();
  await ws.sign('snapshot', k.snapshot);
  await ws.refreshTimestampMeta();
  await ws.sign('timestamp', k.timestamp);
}

function roleStatus(s: RepositoryStatus, role: string) {
  const r = s.roles.find((x) => x.role === role);
  assert.ok(r !== undefined, `status lists ${role}`);
  return r;
}

/** listing returns every file under `dir` (relative paths, sorted) with its bytes. */
function listing(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else out.set(p, sha256(readFileSync(join(dir, p))));
    }
  };
  if (existsSync(dir)) walk('');
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** A tufa Updater over HTTP with short network limits, in a fresh client folder. */
class TufaClient {
  readonly md: string;
  readonly td: string;
  readonly fetcher = new HttpFetcher({
    connectTimeout: 2000,
    readGapTimeout: 2000,
    totalTimeout: 10_000,
    retries: 0,
  });
  readonly updater: Updater;

  private constructor(dir: string, server: StaticServer) {
    this.md = join(dir, 'md');
    this.td = join(dir, 'td');
    mkdirSync(this.md, { recursive: true });
    mkdirSync(this.td, { recursive: true });
    this.updater = new Updater({
      metadataDir: this.md,
      metadataBaseUrl: server.url(''),
      targetDir: this.td,
      targetBaseUrl: server.url('targets/'),
      fetcher: this.fetcher,
    });
  }

  static async start(dir: string, server: StaticServer, root: Uint8Array): Promise<TufaClient> {
    const c = new TufaClient(dir, server);
    await initMetadataDir(c.md, root);
    return c;
  }

  /** fetch refreshes, then finds and downloads each target and compares its bytes. */
  async fetch(expected: ReadonlyArray<readonly [string, Uint8Array]>): Promise<void> {
    await this.updater.refresh();
    for (const [path, content] of expected) {
      const info = await this.updater.getTargetInfo(path);
      assert.ok(info !== undefined, `${path} is a signed target`);
      assert.equal(info.length, content.length);
      assertBytes(readFileSync(await this.updater.downloadTarget(info)), content, path);
    }
  }

  close(): Promise<void> {
    return this.fetcher.close();
  }
}

/**
 * A tuf-js Updater for the client folder `dir`, trusting `root` when given (a new client), else
 * what the folder holds. A tuf-js Updater refreshes once: make a new one for each refresh.
 */
function tufJsClient(dir: string, server: StaticServer, root?: Uint8Array): TufJsUpdater {
  const md = join(dir, 'md');
  const td = join(dir, 'td');
  mkdirSync(md, { recursive: true });
  mkdirSync(td, { recursive: true });
  if (root !== undefined) writeFileSync(join(md, 'root.json'), root);
  return new TufJsUpdater({
    metadataDir: md,
    metadataBaseUrl: server.url(''),
    targetDir: td,
    targetBaseUrl: server.url('targets/'),
    config: { fetchTimeout: 5000, fetchRetry: 0 },
  });
}

/** sh quotes a word for /bin/sh. */
function sh(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

describe('repository Workspace (library)', function () {
  this.timeout(30_000);
  let tmp: string;
  const servers: StaticServer[] = [];
  let n = 0;
  /** fresh returns a new, not yet existing folder under the test's temp folder. */
  const fresh = (what: string) => join(tmp, `${++n}-${what}`);
  const serve = async (dir: string) => {
    const s = await StaticServer.start(dir);
    servers.push(s);
    return s;
  };

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tufa-workspace-test-'));
  });

  after(async () => {
    for (const s of servers) await s.close();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  describe('init → targets → sign → publish → client', () => {
    it('publishes a tree that tufa’s Updater refreshes and downloads from', async () => {
      const dir = fresh('full');
      const k = newKeys();
      const ws = await Workspace.init(dir, { keys: publicKeys(k), now: Date.now() });
      const hello = te.encode('hello from a workspace\n');
      const app = new Uint8Array(4096).map((_, i) => (i * 7) % 251);
      assert.equal(await ws.addTargetFile('hello.txt', hello), 'targets');
      assert.equal(await ws.addTargetFile('dir/app.bin', app, undefined, { build: 42 }), 'targets');
      assert.equal((await repositoryStatus(ws)).ready, false);

      await release(ws, k);
      const status = await repositoryStatus(ws);
      assert.equal(status.ready, true, status.problems.join('\n'));
      for (const role of TOP) assert.equal(roleStatus(status, role).version, 1, role);

      const site = join(dir, 'site');
      const r = await publishWorkspace(ws, site);
      assert.equal(r.targets, 2);
      assert.equal(r.files.at(-1), 'timestamp.json', 'timestamp.json is written last');
      for (const f of [
        '1.root.json',
        '1.targets.json',
        '1.snapshot.json',
        'timestamp.json',
        `targets/${consistentTargetName('hello.txt', sha256(hello))}`,
        `targets/${consistentTargetName('dir/app.bin', sha256(app))}`,
      ]) {
        assert.ok(existsSync(join(site, f)), `${f} published`);
      }

      const server = await serve(site);
      const c = await TufaClient.start(
        join(dir, 'client'),
        server,
        readFileSync(join(site, '1.root.json')),
      );
      try {
        await c.fetch([
          ['hello.txt', hello],
          ['dir/app.bin', app],
        ]);
        assert.deepEqual((await c.updater.getTargetInfo('dir/app.bin'))?.custom, { build: 42 });
        assert.equal(await c.updater.getTargetInfo('not-listed.txt'), undefined);
      } finally {
        await c.close();
      }
    });
  });

  describe('editing and signing rounds', () => {
    it('an edit of a released role bumps its version once per round and clears signatures', async () => {
      const k = newKeys();
      const ws = await Workspace.init(fresh('rounds'), { keys: publicKeys(k), now: Date.now() });
      const version = async (role: string) => (await ws.read(role)).signed.version;
      const sigs = async (role: string) => (await ws.read(role)).signatures.length;

      // unsigned (never released): edits stay in version 1
      await ws.addTargetFile('a.txt', te.encode('a'));
      await ws.addTargetFile('b.txt', te.encode('b'));
      assert.equal(await version('targets'), 1);
      assert.equal(await ws.sign('targets', k.targets), true);
      assert.equal(await sigs('targets'), 1);
      const expiresV1 = (await ws.read('targets')).signed.expires as string;

      // first edit after release: version 2, no signatures
      await ws.addTargetFile('c.txt', te.encode('c'));
      assert.equal(await version('targets'), 2);
      assert.equal(await sigs('targets'), 0);
      assert.ok(String((await ws.read('targets')).signed.expires) >= expiresV1);
      // more edits in the same round: still version 2
      await ws.addTargetFile('d.txt', te.encode('d'));
      await ws.removeTarget('a.txt');
      assert.equal(await version('targets'), 2);
      assert.deepEqual(Object.keys((await ws.read('targets')).signed.targets as object).sort(), [
        'b.txt',
        'c.txt',
        'd.txt',
      ]);
      assert.equal(await ws.sign('targets', k.targets), true);
      assert.equal(await version('targets'), 2);
      // next round: version 3
      await ws.removeTarget('b.txt');
      assert.equal(await version('targets'), 3);
      assert.equal(await sigs('targets'), 0);

      // snapshot: a refresh with nothing new changes nothing; a change after release bumps once
      await ws.sign('targets', k.targets);
      assert.equal(await ws.refreshSnapshotMeta(), true);
      assert.equal(await version('snapshot'), 1, 'unsigned snapshot edited in place');
      await ws.sign('snapshot', k.snapshot);
      assert.equal(await ws.refreshSnapshotMeta(), false, 'nothing changed');
      assert.equal(await version('snapshot'), 1);
      assert.equal(await sigs('snapshot'), 1);
      assert.equal(await ws.refreshSnapshotMeta(true), true, 'forced');
      assert.equal(await version('snapshot'), 2);
      assert.equal(await sigs('snapshot'), 0);
      // timestamp: forced refreshes of a released timestamp give one version each
      await ws.refreshTimestampMeta();
      await ws.sign('timestamp', k.timestamp);
      const ts = await version('timestamp');
      await ws.refreshTimestampMeta(true);
      assert.equal(await version('timestamp'), (ts as number) + 1);
      await ws.refreshTimestampMeta(true);
      assert.equal(await version('timestamp'), (ts as number) + 1, 'same round: no bump');
    });

    it('signing twice with one key keeps one signature and leaves the file alone', async () => {
      const k = newKeys();
      const t2 = signer();
      const keys = { ...publicKeys(k), targets: [k.targets.publicKey, t2.publicKey] };
      const ws = await Workspace.init(fresh('idempotent'), {
        keys,
        thresholds: { targets: 2 },
        now: Date.now(),
      });
      await ws.addTargetFile('x.txt', te.encode('x'));
      assert.equal(await ws.sign('targets', k.targets), true);
      const once = await ws.bytes('targets');
      assert.equal(await ws.sign('targets', k.targets), false);
      assertBytes(await ws.bytes('targets'), once, 'targets.json after a second signature');
      assert.equal((await ws.read('targets')).signatures.length, 1);
      // the second key adds its own signature and keeps the first
      assert.equal(await ws.sign('targets', t2), true);
      const env = await ws.read('targets');
      assert.deepEqual(
        env.signatures.map((s) => s.keyid).sort(),
        [k.targets.keyid, t2.keyid].sort(),
      );
      assert.equal(await ws.sign('targets', t2), false);
      assert.equal((await ws.read('targets')).signatures.length, 2);
    });

    it('a key that may not sign a role is refused with MisuseError and changes nothing', async () => {
      const k = newKeys();
      const ws = await Workspace.init(fresh('refused'), { keys: publicKeys(k), now: Date.now() });
      const cases: Array<[string, Signer]> = [
        ['targets', k.timestamp],
        ['root', k.targets],
        ['snapshot', signer()],
        ['timestamp', k.root],
      ];
      for (const [role, s] of cases) {
        const before = await ws.bytes(role);
        await assert.rejects(
          ws.sign(role, s),
          (e) => e instanceof MisuseError && /may not sign/.test(e.message),
          role,
        );
        assertBytes(await ws.bytes(role), before, role);
      }
      await assert.rejects(ws.sign('no-such-role', k.targets), MisuseError);
      // a signer that claims the targets key ID but signs with another key
      const impostor: Signer = {
        keyid: k.targets.keyid,
        publicKey: k.targets.publicKey,
        sign: (data) => signer().sign(data),
      };
      await assert.rejects(
        ws.sign('targets', impostor),
        (e) => e instanceof MisuseError && /does not verify/.test(e.message),
      );
      assert.equal((await ws.read('targets')).signatures.length, 0);
    });
  });

  describe('status', () => {
    it('lists missing signatures per role and stale snapshot/timestamp meta', async () => {
      const k = newKeys();
      const t2 = signer();
      const dir = fresh('status');
      const now = Date.now();
      const ws = await Workspace.init(dir, {
        keys: { ...publicKeys(k), targets: [k.targets.publicKey, t2.publicKey] },
        thresholds: { targets: 2 },
        now,
      });
      const stale = (s: RepositoryStatus) => ({
        snapshot: s.problems.some((p) => p.startsWith('snapshot: does not list')),
        timestamp: s.problems.some((p) => p.startsWith('timestamp: does not point')),
      });

      let s = await repositoryStatus(ws);
      assert.equal(s.ready, false);
      const t = roleStatus(s, 'targets').thresholds;
      assert.equal(t.length, 1);
      assert.equal(t[0]?.threshold, 2);
      assert.equal(t[0]?.missing, 2);
      assert.deepEqual(t[0]?.signed, []);
      assert.deepEqual([...(t[0]?.unsigned ?? [])].sort(), [k.targets.keyid, t2.keyid].sort());
      for (const role of ['root', 'snapshot', 'timestamp']) {
        assert.equal(roleStatus(s, role).thresholds[0]?.missing, 1, role);
      }
      assert.ok(s.problems.includes('targets: needs 2 more signature(s) (0/2)'), s.problems.join());
      assert.deepEqual(stale(s), { snapshot: false, timestamp: false }, 'fresh after init');

      await ws.addTargetFile('a.txt', te.encode('a'));
      s = await repositoryStatus(ws);
      assert.deepEqual(stale(s), { snapshot: true, timestamp: false });

      await ws.sign('targets', k.targets);
      s = await repositoryStatus(ws);
      assert.equal(roleStatus(s, 'targets').thresholds[0]?.missing, 1);
      assert.deepEqual(roleStatus(s, 'targets').thresholds[0]?.signed, [k.targets.keyid]);
      assert.deepEqual(roleStatus(s, 'targets').problems, [
        'targets: needs 1 more signature(s) (1/2)',
      ]);
      await ws.sign('targets', t2);
      s = await repositoryStatus(ws);
      assert.equal(roleStatus(s, 'targets').thresholds[0]?.missing, 0);
      assert.deepEqual(roleStatus(s, 'targets').problems, []);

      await ws.refreshSnapshotMeta();
      s = await repositoryStatus(ws);
      assert.deepEqual(stale(s), { snapshot: false, timestamp: true });
      await ws.refreshTimestampMeta();
      assert.deepEqual(stale(await repositoryStatus(ws)), { snapshot: false, timestamp: false });
      // signing snapshot changes its bytes: timestamp must point at the signed file
      await ws.sign('snapshot', k.snapshot);
      assert.deepEqual(stale(await repositoryStatus(ws)), { snapshot: false, timestamp: true });
      await ws.refreshTimestampMeta();
      await ws.sign('timestamp', k.timestamp);
      await ws.sign('root', k.root);
      s = await repositoryStatus(ws);
      assert.equal(s.ready, true, s.problems.join('\n'));
      assert.deepEqual(s.problems, []);

      // seen two days later: timestamp (1 day) has expired
      s = await repositoryStatus(await Workspace.open(dir, now + 2 * DAY));
      assert.equal(s.ready, false);
      assert.equal(roleStatus(s, 'timestamp').expired, true);
      assert.ok(
        s.problems.some((p) => p.startsWith('timestamp: expired at')),
        s.problems.join(),
      );
      assert.equal(roleStatus(s, 'snapshot').expiresSoon, false);
      // six days later: snapshot (7 days) expires soon
      s = await repositoryStatus(await Workspace.open(dir, now + 6 * DAY));
      assert.equal(roleStatus(s, 'snapshot').expired, false);
      assert.equal(roleStatus(s, 'snapshot').expiresSoon, true);
    });
  });

  describe('publish', () => {
    it('refuses when not ready and writes nothing', async () => {
      const k = newKeys();
      const dir = fresh('publish-refused');
      const now = Date.now();
      const ws = await Workspace.init(dir, { keys: publicKeys(k), now });
      await ws.addTargetFile('a.txt', te.encode('a'));
      const site = join(dir, 'site');
      await assert.rejects(
        publishWorkspace(ws, site),
        (e) =>
          e instanceof MisuseError &&
          /not ready to publish/.test(e.message) &&
          e.message.includes('targets: needs 1 more signature(s)'),
      );
      assert.equal(existsSync(site), false, 'no output folder');

      // a published tree stays exactly as it was when a later publish is refused
      await release(ws, k);
      await publishWorkspace(ws, site);
      const published = listing(site);
      assert.ok(published.has('timestamp.json'));
      await ws.addTargetFile('b.txt', te.encode('b')); // targets v2, unsigned
      await assert.rejects(publishWorkspace(ws, site), MisuseError);
      assert.deepEqual(listing(site), published);

      // expired (the workspace seen two days later): refused
      await ws.sign('targets', k.targets);
      await ws.refreshSnapshotMeta();
      await ws.sign('snapshot', k.snapshot);
      await ws.refreshTimestampMeta();
      await ws.sign('timestamp', k.timestamp);
      await assert.rejects(
        publishWorkspace(await Workspace.open(dir, now + 2 * DAY), site),
        /timestamp: expired/,
      );
      assert.deepEqual(listing(site), published);

      // ready, but a target's stored content was changed: the client-side check refuses it
      const content = join(ws.contentDir, sha256(te.encode('b')));
      writeFileSync(content, 'B');
      await assert.rejects(publishWorkspace(ws, site), { code: 'LENGTH_OR_HASH_MISMATCH' });
      assert.deepEqual(listing(site), published);
      writeFileSync(content, 'b');
      await publishWorkspace(ws, site);
      assert.ok(listing(site).has('2.targets.json'));
    });
  });

  describe('delegations: targets go to the right role without naming it', () => {
    it('paths, two levels deep', async () => {
      const k = newKeys();
      const docs = signer();
      const internal = signer();
      const dir = fresh('paths');
      const ws = await Workspace.init(dir, { keys: publicKeys(k), now: Date.now() });
      assert.deepEqual(
        await ws.delegate({ name: 'docs', keys: [docs.publicKey], paths: ['docs/*', 'docs/*/*'] }),
        ['docs'],
      );
      assert.deepEqual(
        await ws.delegate({
          from: 'docs',
          name: 'docs-internal',
          keys: [internal.publicKey],
          paths: ['docs/internal/*'],
          terminating: true,
        }),
        ['docs-internal'],
      );
      await assert.rejects(
        ws.delegate({ name: 'docs', keys: [docs.publicKey], paths: ['x/*'] }),
        MisuseError,
      );
      const files: Array<[string, string]> = [
        ['readme.txt', 'targets'],
        ['docs/guide.txt', 'docs'],
        ['docs/how/to.txt', 'docs'],
        ['docs/internal/secret.txt', 'docs-internal'],
      ];
      const content = (p: string) => te.encode(`content of ${p}\n`);
      for (const [path, role] of files) {
        assert.equal(await ws.addTargetFile(path, content(path)), role, path);
      }
      for (const [path, role] of files) {
        for (const r of ['targets', 'docs', 'docs-internal']) {
          const listed = Object.hasOwn((await ws.read(r)).signed.targets as object, path);
          assert.equal(listed, r === role, `${path} listed in ${r}`);
        }
      }
      await assert.rejects(ws.sign('docs-internal', docs), MisuseError);
      await assert.rejects(ws.sign('docs', k.targets), MisuseError);
      await release(ws, k, (r) => (r === 'docs' ? [docs] : [internal]));
      await publishWorkspace(ws, join(dir, 'site'));
      const c = await TufaClient.start(
        join(dir, 'client'),
        await serve(join(dir, 'site')),
        await ws.bytes('root'),
      );
      try {
        await c.fetch(files.map(([p]) => [p, content(p)] as const));
        assert.ok(c.updater.requests.includes('1.docs.json'));
        assert.ok(c.updater.requests.includes('1.docs-internal.json'));
      } finally {
        await c.close();
      }
    });

    it('path hash prefixes', async () => {
      const k = newKeys();
      const low = signer();
      const high = signer();
      const dir = fresh('prefixes');
      const ws = await Workspace.init(dir, { keys: publicKeys(k), now: Date.now() });
      await ws.delegate({
        name: 'low',
        keys: [low.publicKey],
        pathHashPrefixes: ['0', '1', '2', '3', '4', '5', '6', '7'],
      });
      await ws.delegate({
        name: 'high',
        keys: [high.publicKey],
        pathHashPrefixes: ['8', '9', 'a', 'b', 'c', 'd', 'e', 'f'],
      });
      const paths = Array.from({ length: 24 }, (_, i) => `pkg/file-${i}.tgz`);
      const expected = (p: string) =>
        Number.parseInt(sha256(p)[0] as string, 16) < 8 ? 'low' : 'high';
      const content = (p: string) => te.encode(`bytes of ${p}`);
      for (const p of paths) assert.equal(await ws.addTargetFile(p, content(p)), expected(p), p);
      const listed: Record<string, number> = {};
      for (const r of ['targets', 'low', 'high']) {
        listed[r] = Object.keys((await ws.read(r)).signed.targets as object).length;
      }
      const count = (r: string) => listed[r] ?? -1;
      assert.ok(count('low') > 0 && count('high') > 0, 'both roles got targets');
      assert.equal(count('low') + count('high'), paths.length);
      assert.equal(count('targets'), 0);
      await release(ws, k, (r) => (r === 'low' ? [low] : [high]));
      await publishWorkspace(ws, join(dir, 'site'));
      const c = await TufaClient.start(
        join(dir, 'client'),
        await serve(join(dir, 'site')),
        await ws.bytes('root'),
      );
      try {
        const lowPath = paths.find((p) => expected(p) === 'low') as string;
        const highPath = paths.find((p) => expected(p) === 'high') as string;
        await c.fetch([
          [lowPath, content(lowPath)],
          [highPath, content(highPath)],
        ]);
      } finally {
        await c.close();
      }
    });

    it('succinct hashed bins', async () => {
      const k = newKeys();
      const binKey = signer();
      const dir = fresh('succinct');
      const ws = await Workspace.init(dir, { keys: publicKeys(k), now: Date.now() });
      const created = await ws.delegate({
        name: 'bins',
        keys: [binKey.publicKey],
        succinctBits: 3,
      });
      assert.deepEqual(
        created,
        Array.from({ length: 8 }, (_, i) => `bins-${i}`),
      );
      await assert.rejects(
        ws.delegate({ name: 'more', keys: [binKey.publicKey], paths: ['*'] }),
        MisuseError,
      );
      // the bin is the top 3 bits of sha256(path)
      const binOf = (p: string) => `bins-${Number.parseInt(sha256(p).slice(0, 2), 16) >> 5}`;
      const paths = Array.from({ length: 40 }, (_, i) => `apps/${i}/app-${i}.bin`);
      const content = (p: string) => te.encode(`app ${p}`);
      for (const p of paths) assert.equal(await ws.addTargetFile(p, content(p)), binOf(p), p);
      for (const bin of created) {
        const listed = Object.keys((await ws.read(bin)).signed.targets as object);
        assert.deepEqual(listed.sort(), paths.filter((p) => binOf(p) === bin).sort(), bin);
      }
      await assert.rejects(ws.sign('bins-3', k.targets), MisuseError);
      await release(ws, k, () => [binKey]);
      const st = await repositoryStatus(ws);
      assert.equal(st.ready, true, st.problems.join('\n'));
      assert.equal(st.roles.length, 4 + 8);
      await publishWorkspace(ws, join(dir, 'site'));
      const c = await TufaClient.start(
        join(dir, 'client'),
        await serve(join(dir, 'site')),
        await ws.bytes('root'),
      );
      try {
        const chosen = [paths[0], paths[17], paths[39]] as string[];
        await c.fetch(chosen.map((p) => [p, content(p)] as const));
        for (const p of chosen) assert.ok(c.updater.requests.includes(`1.${binOf(p)}.json`), p);
      } finally {
        await c.close();
      }
    });
  });

  describe('root rotation', () => {
    it('v2 needs the old and the new threshold; clients holding v1 update (tufa and tuf-js)', async () => {
      const k = newKeys();
      const dir = fresh('rotation');
      const ws = await Workspace.init(dir, { keys: publicKeys(k), now: Date.now() });
      const hello = te.encode('before and after the rotation\n');
      await ws.addTargetFile('hello.txt', hello);
      await release(ws, k);
      const site = join(dir, 'site');
      await publishWorkspace(ws, site);
      const server = await serve(site);
      const v1 = readFileSync(join(site, '1.root.json'));

      // clients that trust v1 and have already refreshed against it (cached timestamp etc.)
      const tufa = await TufaClient.start(join(dir, 'tufa'), server, v1);
      try {
        await tufa.fetch([['hello.txt', hello]]);
        await tufJsClient(join(dir, 'tufjs'), server, v1).refresh();
        assert.ok(existsSync(join(dir, 'tufjs', 'md', 'timestamp.json')), 'tuf-js cached v1 state');

        const n1 = signer();
        const n2 = signer();
        const newTimestamp = signer();
        const v = await ws.rotateRoot({
          add: [
            { role: 'root', key: n1.publicKey },
            { role: 'root', key: n2.publicKey },
            { role: 'timestamp', key: newTimestamp.publicKey },
          ],
          remove: [
            { role: 'root', keyid: k.root.keyid },
            { role: 'timestamp', keyid: k.timestamp.keyid },
          ],
          thresholds: { root: 2 },
        });
        assert.equal(v, 2);
        await assert.rejects(ws.rotateRoot({}), /unsigned changes/);

        const rootThresholds = async () =>
          roleStatus(await repositoryStatus(ws), 'root').thresholds.map((t) => [
            t.what,
            t.threshold,
            t.missing,
          ]);
        assert.deepEqual(await rootThresholds(), [
          ['root', 2, 2],
          ['root (previous, v1)', 1, 1],
        ]);
        assert.equal(await ws.sign('root', k.root), true, 'the old key signs v2');
        assert.deepEqual(await rootThresholds(), [
          ['root', 2, 2],
          ['root (previous, v1)', 1, 0],
        ]);
        await ws.sign('root', n1);
        assert.deepEqual(await rootThresholds(), [
          ['root', 2, 1],
          ['root (previous, v1)', 1, 0],
        ]);
        await assert.rejects(publishWorkspace(ws, site), /root: needs 1 more/);
        await ws.sign('root', n2);
        assert.deepEqual(await rootThresholds(), [
          ['root', 2, 0],
          ['root (previous, v1)', 1, 0],
        ]);
        // the timestamp key changed: the old one may not sign any more, the new one must
        await assert.rejects(ws.sign('timestamp', k.timestamp), /may not sign/);
        const s = await repositoryStatus(ws);
        assert.equal(roleStatus(s, 'timestamp').thresholds[0]?.missing, 1);
        await ws.refreshTimestampMeta(true);
        await ws.sign('timestamp', newTimestamp);
        const ready = await repositoryStatus(ws);
        assert.equal(ready.ready, true, ready.problems.join('\n'));
        await publishWorkspace(ws, site);
        assert.ok(existsSync(join(site, '2.root.json')));

        await tufa.fetch([['hello.txt', hello]]);
        assert.equal(tufa.updater.trusted.root.signed.version, 2);
        assertBytes(
          readFileSync(join(tufa.md, 'root.json')),
          readFileSync(join(site, '2.root.json')),
        );

        const tufjs = tufJsClient(join(dir, 'tufjs'), server);
        await tufjs.refresh();
        assertBytes(
          readFileSync(join(dir, 'tufjs', 'md', 'root.json')),
          readFileSync(join(site, '2.root.json')),
          'tuf-js root.json',
        );
        const info = await tufjs.getTargetInfo('hello.txt');
        assert.ok(info !== undefined);
        assertBytes(readFileSync(await tufjs.downloadTarget(info)), hello, 'tuf-js download');

        // a client that never saw anything but v1 gets there too
        const late = tufJsClient(join(dir, 'tufjs-late'), server, v1);
        await late.refresh();
        assert.ok(
          (await late.getTargetInfo('hello.txt')) !== undefined,
          'tuf-js from v1 straight to v2',
        );
      } finally {
        await tufa.close();
      }
    });
  });

  describe('init', () => {
    it('refuses bad input before writing anything, and refuses an existing repository', async () => {
      const k = newKeys();
      const dir = fresh('init-bad');
      await assert.rejects(
        Workspace.init(dir, { keys: publicKeys(k), thresholds: { targets: 2 }, now: Date.now() }),
        MisuseError,
      );
      await assert.rejects(
        Workspace.init(dir, { keys: { ...publicKeys(k), snapshot: [] }, now: Date.now() }),
        MisuseError,
      );
      assert.equal(existsSync(dir), false);
      await Workspace.init(dir, { keys: publicKeys(k), now: Date.now() });
      const root = readFileSync(join(dir, 'metadata', 'root.json'));
      await assert.rejects(
        Workspace.init(dir, { keys: publicKeys(newKeys()), now: Date.now() }),
        /already holds a repository/,
      );
      assertBytes(readFileSync(join(dir, 'metadata', 'root.json')), root, 'root.json');
    });

    it('two inits racing on one folder: one is refused, the root of the other stays', async () => {
      const dir = fresh('init-race');
      const [a, b] = [newKeys(), newKeys()];
      const runs = await Promise.allSettled(
        [a, b].map((k) => Workspace.init(dir, { keys: publicKeys(k), now: Date.now() })),
      );
      const won = runs.findIndex((r) => r.status === 'fulfilled');
      assert.ok(won >= 0);
      const lost = runs[1 - won] as PromiseRejectedResult;
      assert.ok(lost.status === 'rejected' && lost.reason instanceof MisuseError);
      const root = JSON.parse(readFileSync(join(dir, 'metadata', 'root.json'), 'utf8')) as Envelope;
      assert.deepEqual(Object.keys(root.signed.keys as object), [
        ((won === 0 ? a : b) as Keys).root.keyid,
        ((won === 0 ? a : b) as Keys).targets.keyid,
        ((won === 0 ? a : b) as Keys).snapshot.keyid,
        ((won === 0 ? a : b) as Keys).timestamp.keyid,
      ]);
    });

    it('init failing halfway (timestamp.json cannot be written) leaves no metadata/root.json', async () => {
      const k = newKeys();
      const dir = fresh('init-halfway');
      // a folder where timestamp.json goes: writing it fails after targets and snapshot
      mkdirSync(join(dir, 'metadata', 'timestamp.json', 'in-the-way'), { recursive: true });
      await assert.rejects(Workspace.init(dir, { keys: publicKeys(k), now: Date.now() }));
      assert.equal(existsSync(join(dir, 'metadata', 'root.json')), false);
      await assert.rejects(Workspace.open(dir, Date.now()), MisuseError);
      // once the obstacle is gone, init works
      rmSync(join(dir, 'metadata', 'timestamp.json'), { recursive: true });
      await Workspace.init(dir, { keys: publicKeys(k), now: Date.now() });
      assert.ok(existsSync(join(dir, 'metadata', 'root.json')));
    });

    // root.json marks a repository, so it is written after N.root.json: were it first, a failed
    // N.root.json write would leave a folder init refuses and publish can never serve.
    it('init failing at its last write (1.root.json) leaves no metadata/root.json', async () => {
      const k = newKeys();
      const dir = fresh('init-last-write');
      mkdirSync(join(dir, 'metadata', '1.root.json', 'in-the-way'), { recursive: true });
      await assert.rejects(Workspace.init(dir, { keys: publicKeys(k), now: Date.now() }));
      assert.equal(
        existsSync(join(dir, 'metadata', 'root.json')),
        false,
        'a failed init left metadata/root.json (without 1.root.json)',
      );
    });
  });

  describe('ExternalCommandSigner', () => {
    let script: string;
    let keyFile: string;
    let publicKey: Key;

    before(() => {
      // a stand-in for a KMS client: reads the bytes on stdin, prints a hex Ed25519 signature
      script = join(tmp, 'sign-with-key-file.mjs');
      writeFileSync(
        script,
        [
          "import { createPrivateKey, sign } from 'node:crypto';",
          "import { readFileSync } from 'node:fs';",
          'const key = createPrivateKey(readFileSync(process.argv[2]));',
          'const chunks = [];',
          'for await (const c of process.stdin) chunks.push(c);',
          "process.stdout.write(sign(null, Buffer.concat(chunks), key).toString('hex') + '\\n');",
          '',
        ].join('\n'),
      );
      const { privateKey } = generateKeyPairSync('ed25519');
      keyFile = join(tmp, 'external.key');
      writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      publicKey = publicKeyOf(privateKey);
    });

    async function workspace(): Promise<{ ws: Workspace; k: Keys }> {
      const k = newKeys();
      const ws = await Workspace.init(fresh('external'), {
        keys: { ...publicKeys(k), targets: [publicKey] },
        now: Date.now(),
      });
      await ws.addTargetFile('a.txt', te.encode('a'));
      return { ws, k };
    }

    it('signs with a command that reads stdin and prints a hex signature', async () => {
      const { ws, k } = await workspace();
      const cmd = `${sh(process.execPath)} ${sh(script)} ${sh(keyFile)}`;
      const s = new ExternalCommandSigner(cmd, publicKey, 15_000);
      assert.equal(s.keyid, publicKey.keyid);
      assert.equal(await ws.sign('targets', s), true);
      const env: Envelope = await ws.read('targets');
      assert.equal(env.signatures.length, 1);
      assert.equal(env.signatures[0]?.keyid, publicKey.keyid);
      // the signature is a plain Ed25519 signature over the canonical bytes
      const der = Buffer.concat([
        Buffer.from('302a300506032b6570032100', 'hex'),
        Buffer.from(publicKey.keyval.public as string, 'hex'),
      ]);
      const ok = verify(
        null,
        canonicalize(env.signed),
        createPublicKey({ key: der, format: 'der', type: 'spki' }),
        Buffer.from(env.signatures[0]?.sig as string, 'hex'),
      );
      assert.ok(ok, 'signature verifies with node:crypto');
      assert.equal(await ws.sign('targets', s), false, 'idempotent: the command is not run again');
      const st = await repositoryStatus(ws);
      assert.equal(roleStatus(st, 'targets').thresholds[0]?.missing, 0);
      assert.deepEqual(roleStatus(st, 'targets').problems, []);
      // and the repository publishes and serves like any other
      await release(ws, { ...k, targets: s });
      const site = join(ws.dir, 'site');
      await publishWorkspace(ws, site);
      const c = await TufaClient.start(
        join(ws.dir, 'client'),
        await serve(site),
        await ws.bytes('root'),
      );
      try {
        await c.fetch([['a.txt', te.encode('a')]]);
      } finally {
        await c.close();
      }
    });

    it('garbage output, a signature that does not verify, or exit 1: a clear error, no signature', async () => {
      const { ws } = await workspace();
      const before = await ws.bytes('targets');
      const cases: Array<[string, RegExp]> = [
        [`echo 'this is not a signature!'`, /printed no hex or base64 signature/],
        ['true', /printed no hex or base64 signature/],
        ['echo 00ff00ff00ff', /does not verify/],
        [
          `echo 'kms: access denied' >&2; exit 1`,
          /signer command exited with 1: kms: access denied/,
        ],
        [`${sh(join(tmp, 'no-such-signer'))}`, /signer command exited with 127/],
      ];
      for (const [cmd, message] of cases) {
        await assert.rejects(
          ws.sign('targets', new ExternalCommandSigner(cmd, publicKey, 10_000)),
          (e: Error) => message.test(e.message),
          cmd,
        );
        assertBytes(await ws.bytes('targets'), before, `targets.json after ${cmd}`);
      }
      assert.equal((await ws.read('targets')).signatures.length, 0);
    });

    // The timeout must stop the whole command: a child it started (a pipeline, or dash running
    // `sleep`) would keep stdout open, and a hung KMS client would hang `tufa repo sign`.
    it('a command that hangs is stopped by the timeout', async () => {
      const { ws } = await workspace();
      const s = new ExternalCommandSigner('sleep 6', publicKey, 300);
      const started = performance.now();
      const outcome = await Promise.race([
        ws.sign('targets', s).then(
          () => 'signed',
          (e: Error) => e,
        ),
        new Promise((r) => setTimeout(() => r('still running after 3 s'), 3000)),
      ]);
      assert.ok(outcome instanceof Error, `expected a timeout error, got: ${String(outcome)}`);
      assert.ok(performance.now() - started < 3000);
      assert.equal((await ws.read('targets')).signatures.length, 0);
    });
  });
});
