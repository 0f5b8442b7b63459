/**
 * `tufa key` and `tufa repo` as a release engineer runs them: every step is a `node bin/tufa …`
 * subprocess (spawned asynchronously, killed after 30 s). The published tree is served on
 * 127.0.0.1 and read with `tufa tuf init|refresh|download` (subprocesses) and with the tuf-js
 * Updater. Every command's output is checked for private key material and passphrases.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Updater as TufJsUpdater } from 'tuf-js';
import { OciSim } from '../support/oci-sim.js';
import { TUFA_BIN } from '../support/paths.js';
import { StaticServer } from '../support/static-server.js';

const DAY = 86_400_000;
const PASSPHRASE = 'correct horse battery staple 7f3a';
const WRONG_PASSPHRASE = 'incorrect donkey 91c2';

interface RunResult {
  args: readonly string[];
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** Extra environment (TUFA_KEY_PASSPHRASE is removed unless given here). */
  env?: Record<string, string>;
  /** Shift the subprocess's clock by this many ms (a preloaded module moves Date.now). */
  clockOffsetMs?: number;
}

function show(r: RunResult): string {
  return `tufa ${r.args.join(' ')}\nstatus ${r.status} signal ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

function sha256(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

function consistentName(path: string, hash: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}${hash}.${path.slice(slash + 1)}`;
}

interface StatusJson {
  ready: boolean;
  problems: string[];
  roles: Array<{
    role: string;
    version: number;
    expired: boolean;
    thresholds: Array<{ what: string; threshold: number; missing: number; signed: string[] }>;
  }>;
}

describe('tufa repo CLI: a release engineer’s session (subprocesses)', function () {
  this.timeout(60_000);
  let tmp: string;
  let clockModule: string;
  const servers: StaticServer[] = [];
  /** Every run, for the final leak check. */
  const runs: RunResult[] = [];
  /** Strings no command may ever print: filled with every private key's base64 lines. */
  const secrets = new Set<string>(['PRIVATE KEY', PASSPHRASE, WRONG_PASSPHRASE]);

  function assertNoSecrets(r: RunResult): void {
    for (const s of secrets) {
      assert.ok(!r.stdout.includes(s), `stdout of \`tufa ${r.args.join(' ')}\` contains a secret`);
      assert.ok(!r.stderr.includes(s), `stderr of \`tufa ${r.args.join(' ')}\` contains a secret`);
    }
  }

  /** tufa runs `node bin/tufa args…` asynchronously (the test server lives in this process). */
  function tufa(args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...o.env };
    if (o.env?.TUFA_KEY_PASSPHRASE === undefined) delete env.TUFA_KEY_PASSPHRASE;
    const node: string[] = [];
    if (o.clockOffsetMs !== undefined) {
      node.push('--import', pathToFileURL(clockModule).href);
      env.TUFA_TEST_CLOCK_OFFSET_MS = String(o.clockOffsetMs);
    }
    return new Promise((ok, fail) => {
      const child = spawn(process.execPath, [...node, TUFA_BIN, ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 30_000,
        killSignal: 'SIGKILL',
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      child.on('error', fail);
      child.on('close', (status, signal) => {
        const r = { args, status, signal, stdout, stderr };
        runs.push(r);
        try {
          assertNoSecrets(r);
          ok(r);
        } catch (e) {
          fail(e);
        }
      });
    });
  }

  /** ok runs tufa and asserts exit 0. */
  async function ok(args: readonly string[], o?: RunOptions): Promise<RunResult> {
    const r = await tufa(args, o);
    assert.equal(r.status, 0, show(r));
    return r;
  }

  /** generate makes a key pair with the CLI and remembers its private lines as secrets. */
  async function generate(out: string, type = 'ed25519', env?: Record<string, string>) {
    const r = await ok(['key', 'generate', '--type', type, '--out', out], env ? { env } : {});
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      if (line.length >= 16 && !line.startsWith('-----')) secrets.add(line);
    }
    const pub = JSON.parse(readFileSync(`${out}.pub.json`, 'utf8')) as { keyid: string };
    return { r, keyid: pub.keyid, pub: `${out}.pub.json`, key: out };
  }

  async function status(repo: string, o?: RunOptions): Promise<StatusJson> {
    const r = await ok(['repo', '--repo', repo, 'status', '--json'], o);
    return JSON.parse(r.stdout) as StatusJson;
  }

  function role(s: StatusJson, name: string) {
    const r = s.roles.find((x) => x.role === name);
    assert.ok(r !== undefined, name);
    return r;
  }

  async function serve(dir: string): Promise<StaticServer> {
    mkdirSync(dir, { recursive: true });
    const s = await StaticServer.start(dir);
    servers.push(s);
    return s;
  }

  /** A `tufa tuf` client folder (metadata + targets) trusting `rootFile`. */
  async function tufClient(dir: string, rootFile: string) {
    const md = join(dir, 'md');
    const td = join(dir, 'td');
    mkdirSync(md, { recursive: true });
    mkdirSync(td, { recursive: true });
    await ok(['tuf', '--metadata-dir', md, 'init', rootFile]);
    const common = (s: StaticServer) => ['--metadata-url', s.url(''), '--metadata-dir', md];
    return {
      md,
      td,
      refresh: (s: StaticServer) => tufa(['tuf', ...common(s), 'refresh']),
      download: (s: StaticServer, names: string[]) =>
        tufa([
          'tuf',
          ...common(s),
          ...names.flatMap((n) => ['--target-name', n]),
          '--target-dir',
          td,
          '--target-base-url',
          s.url('targets/'),
          'download',
        ]),
    };
  }

  function tufJs(dir: string, s: StaticServer, rootFile?: string): TufJsUpdater {
    const md = join(dir, 'md');
    const td = join(dir, 'td');
    mkdirSync(md, { recursive: true });
    mkdirSync(td, { recursive: true });
    if (rootFile !== undefined) copyFileSync(rootFile, join(md, 'root.json'));
    return new TufJsUpdater({
      metadataDir: md,
      metadataBaseUrl: s.url(''),
      targetDir: td,
      targetBaseUrl: s.url('targets/'),
      config: { fetchTimeout: 5000, fetchRetry: 0 },
    });
  }

  /**
   * copyByHand lays the workspace's files out as a consistent-snapshot tree, bypassing
   * `tufa repo publish` and its checks: what a careless script copying files would serve.
   */
  function copyByHand(repo: string, site: string): void {
    const md = join(repo, 'metadata');
    mkdirSync(site, { recursive: true });
    const put = (rel: string, from: string) => {
      mkdirSync(dirname(join(site, rel)), { recursive: true });
      copyFileSync(from, join(site, rel));
    };
    for (const name of readdirSync(md))
      if (/^\d+\.root\.json$/.test(name)) put(name, join(md, name));
    for (const name of readdirSync(md)) {
      if (!name.endsWith('.json') || /^\d+\./.test(name) || name === 'root.json') continue;
      if (name === 'timestamp.json') continue;
      const doc = JSON.parse(readFileSync(join(md, name), 'utf8'));
      put(`${doc.signed.version}.${name}`, join(md, name));
      for (const [path, t] of Object.entries(
        (doc.signed.targets ?? {}) as Record<string, { hashes: { sha256: string } }>,
      )) {
        put(
          `targets/${consistentName(path, t.hashes.sha256)}`,
          join(repo, 'targets', t.hashes.sha256),
        );
      }
    }
    put('timestamp.json', join(md, 'timestamp.json'));
  }

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tufa-repo-cli-test-'));
    clockModule = join(tmp, 'shift-clock.mjs');
    writeFileSync(
      clockModule,
      [
        '// test helper: moves this process clock by $TUFA_TEST_CLOCK_OFFSET_MS',
        'const offset = Number(process.env.TUFA_TEST_CLOCK_OFFSET_MS ?? 0);',
        'const realNow = Date.now;',
        'Date.now = () => realNow() + offset;',
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    for (const s of servers) await s.close();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  describe('tufa key generate', () => {
    let keys: string;
    before(() => {
      keys = join(tmp, 'keygen');
      mkdirSync(keys);
    });

    it('writes NAME (0600) and NAME.pub.json for each key type; prints the key ID only', async () => {
      for (const [type, keytype] of [
        ['ed25519', 'ed25519'],
        ['ecdsa-p256', 'ecdsa'],
        ['rsa', 'rsa'],
      ] as const) {
        const out = join(keys, `${type}.key`);
        const { r, keyid } = await generate(out, type);
        assert.equal(statSync(out).mode & 0o777, 0o600, `${type} private key mode`);
        assert.match(readFileSync(out, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
        const pub = JSON.parse(readFileSync(`${out}.pub.json`, 'utf8'));
        assert.equal(pub.keytype, keytype);
        assert.match(keyid, /^[0-9a-f]{64}$/);
        assert.ok(r.stdout.includes(keyid));
        assert.match(r.stdout, /NOT encrypted/);
      }
    });

    it('refuses to overwrite an existing key', async () => {
      const out = join(keys, 'once.key');
      await generate(out);
      const before = readFileSync(out);
      const beforePub = readFileSync(`${out}.pub.json`);
      const r = await tufa(['key', 'generate', '--type', 'ed25519', '--out', out]);
      assert.notEqual(r.status, 0, show(r));
      assert.match(r.stderr, /exists/);
      assert.ok(readFileSync(out).equals(before), 'private key unchanged');
      assert.ok(readFileSync(`${out}.pub.json`).equals(beforePub), 'public key unchanged');
    });

    it('an unknown --type is a usage error (exit 2), nothing written', async () => {
      const out = join(keys, 'dsa.key');
      const r = await tufa(['key', 'generate', '--type', 'dsa', '--out', out]);
      assert.equal(r.status, 2, show(r));
      assert.equal(existsSync(out), false);
    });

    it('TUFA_KEY_PASSPHRASE: the PEM is encrypted; signing needs the same passphrase', async () => {
      const env = { TUFA_KEY_PASSPHRASE: PASSPHRASE };
      const enc = await generate(join(keys, 'targets-enc.key'), 'ed25519', env);
      assert.match(readFileSync(enc.key, 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
      assert.match(enc.r.stdout, /0600, encrypted/);
      assert.equal(statSync(enc.key).mode & 0o777, 0o600);

      const others = await Promise.all(
        ['root', 'snapshot', 'timestamp'].map((r) => generate(join(keys, `${r}-plain.key`))),
      );
      const [root, snapshot, timestamp] = others as [
        (typeof others)[0],
        (typeof others)[0],
        (typeof others)[0],
      ];
      const repo = join(tmp, 'enc-repo');
      await ok([
        'repo',
        '--repo',
        repo,
        'init',
        '--root-key',
        root.pub,
        '--targets-key',
        enc.pub,
        '--snapshot-key',
        snapshot.pub,
        '--timestamp-key',
        timestamp.pub,
      ]);
      const before = readFileSync(join(repo, 'metadata', 'targets.json'));
      const sign = ['repo', '--repo', repo, 'sign', '--role', 'targets', '--key', enc.key];

      // no passphrase, then a wrong one: exit 2, a clear message naming the flag and the file,
      // nothing signed or printed
      for (const [o, why] of [
        [{}, /the key is encrypted: set \$TUFA_KEY_PASSPHRASE/],
        [
          { env: { TUFA_KEY_PASSPHRASE: WRONG_PASSPHRASE } },
          /not a readable PKCS#8 PEM key \(or wrong passphrase\)/,
        ],
      ] as const) {
        const r = await tufa(sign, o);
        assert.equal(r.status, 2, show(r));
        assert.ok(r.stderr.includes(`--key ${enc.key}: `), show(r));
        assert.match(r.stderr, why);
        assert.equal(r.stdout, '');
        assert.ok(readFileSync(join(repo, 'metadata', 'targets.json')).equals(before));
      }
      assert.equal(role(await status(repo), 'targets').thresholds[0]?.missing, 1);

      const r = await ok(sign, { env });
      assert.match(r.stdout, new RegExp(`targets: signed by ${enc.keyid}`));
      assert.equal(role(await status(repo), 'targets').thresholds[0]?.missing, 0);
    });
  });

  describe('a full release, then clients', () => {
    let dir: string;
    let repo: string;
    let site: string;
    let server: StaticServer;
    let k: Record<'root' | 'targets' | 'snapshot' | 'timestamp', { key: string; pub: string }>;
    const hello = 'hello from a release\n';
    const app = Buffer.alloc(3000, 'app-bytes ');
    let client: Awaited<ReturnType<typeof tufClient>>;

    before(async () => {
      dir = join(tmp, 'release');
      repo = join(dir, 'repo');
      site = join(dir, 'site');
      mkdirSync(join(dir, 'keys'), { recursive: true });
      const made = await Promise.all(
        (['root', 'targets', 'snapshot', 'timestamp'] as const).map((r) =>
          generate(join(dir, 'keys', `${r}.key`)),
        ),
      );
      k = {
        root: made[0] as { key: string; pub: string },
        targets: made[1] as { key: string; pub: string },
        snapshot: made[2] as { key: string; pub: string },
        timestamp: made[3] as { key: string; pub: string },
      };
      writeFileSync(join(dir, 'hello.txt'), hello);
      writeFileSync(join(dir, 'app.bin'), app);
      server = await serve(site);
    });

    it('init → add-target → sign root, targets → snapshot --key → timestamp --key → status → publish', async () => {
      const r = ['repo', '--repo', repo];
      await ok([
        ...r,
        'init',
        '--root-key',
        k.root.pub,
        '--targets-key',
        k.targets.pub,
        '--snapshot-key',
        k.snapshot.pub,
        '--timestamp-key',
        k.timestamp.pub,
      ]);
      assert.ok(existsSync(join(repo, 'metadata', 'root.json')));
      let out = await ok([...r, 'add-target', join(dir, 'hello.txt')]);
      assert.match(out.stdout, /hello\.txt: 21 bytes, listed in targets/);
      out = await ok([
        ...r,
        'add-target',
        join(dir, 'app.bin'),
        '--path',
        'v1.0.0/app.bin',
        '--custom',
        '{"build":"1.0.0"}',
      ]);
      assert.match(out.stdout, /v1\.0\.0\/app\.bin: 3000 bytes, listed in targets/);
      const before = await status(repo);
      assert.equal(before.ready, false);
      assert.ok(before.problems.some((p) => p.startsWith('snapshot: does not list')));

      await ok([...r, 'sign', '--role', 'root', '--key', k.root.key]);
      await ok([...r, 'sign', '--role', 'targets', '--key', k.targets.key]);
      out = await ok([...r, 'snapshot', '--key', k.snapshot.key]);
      assert.match(out.stdout, /snapshot: .*1\/1 signatures/);
      out = await ok([...r, 'timestamp', '--key', k.timestamp.key]);
      assert.match(out.stdout, /timestamp: .*1\/1 signatures/);

      const s = await status(repo);
      assert.equal(s.ready, true, s.problems.join('\n'));
      assert.deepEqual(
        s.roles.map((x) => [x.role, x.thresholds[0]?.missing]),
        [
          ['root', 0],
          ['targets', 0],
          ['snapshot', 0],
          ['timestamp', 0],
        ],
      );
      const text = await ok([...r, 'status']);
      assert.match(text.stdout, /ready to publish/);

      out = await ok([...r, 'publish', '--to', site]);
      assert.match(out.stdout, /published \d+ files \(2 targets\)/);
      for (const f of ['1.root.json', '1.targets.json', '1.snapshot.json', 'timestamp.json']) {
        assert.ok(existsSync(join(site, f)), f);
      }
    });

    it('tufa tuf init, refresh and download read the published tree over HTTP', async () => {
      client = await tufClient(join(dir, 'client'), join(site, '1.root.json'));
      let r = await client.refresh(server);
      assert.equal(r.status, 0, show(r));
      r = await client.download(server, ['hello.txt', 'v1.0.0/app.bin']);
      assert.equal(r.status, 0, show(r));
      assert.equal(readFileSync(join(client.td, 'hello.txt'), 'utf8'), hello);
      assert.ok(readFileSync(join(client.td, 'v1.0.0%2Fapp.bin')).equals(app));
      r = await client.download(server, ['not-released.bin']);
      assert.equal(r.status, 1, show(r));
    });

    it('publish --to oci:// pushes the repository into a registry; tufa tuf reads it from there', async () => {
      const reg = await OciSim.start();
      const env = { DOCKER_CONFIG: mkdtempSync(join(dir, 'docker-')) };
      try {
        const meta = `oci://${reg.host}/acme/tuf-metadata:latest`;
        const targets = `oci://${reg.host}/acme/tuf-targets`;
        const r = ['repo', '--repo', repo];
        // target files need a targets repository: refused before anything is pushed
        const refused = await tufa([...r, 'publish', '--to', meta], { env });
        assert.notEqual(refused.status, 0, show(refused));
        assert.match(refused.stderr, /--targets-to/);
        assert.equal(reg.requests.length, 0);
        const out = await ok([...r, 'publish', '--to', meta, '--targets-to', targets], { env });
        assert.match(out.stdout, /pushed \d+ images \(2 targets\); the metadata image last/);
        assert.match(out.stdout, new RegExp(`${reg.host}/acme/tuf-metadata:latest\\s*$`));
        const md = join(dir, 'oci-client', 'md');
        const td = join(dir, 'oci-client', 'td');
        mkdirSync(td, { recursive: true });
        await ok(['tuf', '--metadata-dir', md, 'init', join(site, '1.root.json')]);
        await ok(['tuf', '--metadata-url', meta, '--metadata-dir', md, 'refresh'], { env });
        await ok(
          [
            'tuf',
            '--metadata-url',
            meta,
            '--metadata-dir',
            md,
            '--target-name',
            'hello.txt',
            '--target-name',
            'v1.0.0/app.bin',
            '--target-dir',
            td,
            '--target-base-url',
            targets,
            'download',
          ],
          { env },
        );
        assert.equal(readFileSync(join(td, 'hello.txt'), 'utf8'), hello);
        assert.ok(readFileSync(join(td, 'v1.0.0%2Fapp.bin')).equals(app));
      } finally {
        await reg.close();
      }
    });

    it('scheduled job: timestamp --key twice gives two new versions; clients accept the newer', async () => {
      const r = ['repo', '--repo', repo];
      const version = async () => role(await status(repo), 'timestamp').version;
      const cachedVersion = () =>
        JSON.parse(readFileSync(join(client.md, 'timestamp.json'), 'utf8')).signed.version;
      const v0 = await version();
      assert.equal(cachedVersion(), v0);
      // a tuf-js client that has seen v0
      await tufJs(join(dir, 'tufjs'), server, join(site, '1.root.json')).refresh();

      for (const expected of [v0 + 1, v0 + 2]) {
        const out = await ok([...r, 'timestamp', '--key', k.timestamp.key]);
        assert.match(out.stdout, /timestamp: new version; 1\/1 signatures/);
        assert.equal(await version(), expected);
        assert.equal((await status(repo)).ready, true);
        await ok([...r, 'publish', '--to', site]);
        const served = JSON.parse(readFileSync(join(site, 'timestamp.json'), 'utf8'));
        assert.equal(served.signed.version, expected);

        const refreshed = await client.refresh(server);
        assert.equal(refreshed.status, 0, show(refreshed));
        assert.equal(cachedVersion(), expected, 'tufa tuf cached the newer timestamp');
        await tufJs(join(dir, 'tufjs'), server).refresh();
        const tufjsCached = JSON.parse(
          readFileSync(join(dir, 'tufjs', 'md', 'timestamp.json'), 'utf8'),
        );
        assert.equal(tufjsCached.signed.version, expected, 'tuf-js cached the newer timestamp');
      }
      // the snapshot did not change: still version 1
      assert.equal(role(await status(repo), 'snapshot').version, 1);
      const again = await client.download(server, ['hello.txt']);
      assert.equal(again.status, 0, show(again));
    });
  });

  describe('targets threshold 2-of-3, signed by three separate processes', () => {
    it('status shows the missing count go 2 → 1 → 0; publish works once the threshold is met', async () => {
      const dir = join(tmp, 'threshold');
      mkdirSync(join(dir, 'keys'), { recursive: true });
      const names = ['root', 'snapshot', 'timestamp', 'alice', 'bob', 'carol'] as const;
      const made = await Promise.all(names.map((n) => generate(join(dir, 'keys', `${n}.key`))));
      const key = Object.fromEntries(names.map((n, i) => [n, made[i]])) as Record<
        (typeof names)[number],
        (typeof made)[number]
      >;
      const repo = join(dir, 'repo');
      const site = join(dir, 'site');
      const r = ['repo', '--repo', repo];
      await ok([
        ...r,
        'init',
        '--root-key',
        key.root.pub,
        '--targets-key',
        key.alice.pub,
        '--targets-key',
        key.bob.pub,
        '--targets-key',
        key.carol.pub,
        '--snapshot-key',
        key.snapshot.pub,
        '--timestamp-key',
        key.timestamp.pub,
        '--threshold',
        'targets=2',
      ]);
      writeFileSync(join(dir, 'tool.sh'), '#!/bin/sh\necho release tool\n');
      await ok([...r, 'add-target', join(dir, 'tool.sh'), '--path', 'tools/tool.sh']);
      await ok([...r, 'sign', '--role', 'root', '--key', key.root.key]);

      const targets = async () => role(await status(repo), 'targets').thresholds[0];
      const missing: number[] = [];
      const signed: number[] = [];
      let t = await targets();
      missing.push(t?.missing ?? -1);
      signed.push(t?.signed.length ?? -1);
      assert.equal(t?.threshold, 2);

      // Alice signs; the release cannot be published yet
      await ok([...r, 'sign', '--role', 'targets', '--key', key.alice.key]);
      t = await targets();
      missing.push(t?.missing ?? -1);
      signed.push(t?.signed.length ?? -1);
      await ok([...r, 'snapshot', '--key', key.snapshot.key]);
      await ok([...r, 'timestamp', '--key', key.timestamp.key]);
      const text = await ok([...r, 'status']);
      assert.match(text.stdout, /targets: needs 1 more signature\(s\) \(1\/2\)/);
      const refused = await tufa([...r, 'publish', '--to', site]);
      assert.equal(refused.status, 2, show(refused));
      assert.match(refused.stderr, /not ready to publish/);
      assert.match(refused.stderr, /targets: needs 1 more signature/);
      assert.equal(existsSync(site), false, 'nothing published');

      // Bob signs (a separate process, as on another machine): the threshold is met
      await ok([...r, 'sign', '--role', 'targets', '--key', key.bob.key]);
      t = await targets();
      missing.push(t?.missing ?? -1);
      signed.push(t?.signed.length ?? -1);
      // Carol signs too: more than the threshold is fine
      await ok([...r, 'sign', '--role', 'targets', '--key', key.carol.key]);
      t = await targets();
      missing.push(t?.missing ?? -1);
      signed.push(t?.signed.length ?? -1);
      assert.deepEqual(missing, [2, 1, 0, 0]);
      assert.deepEqual(signed, [0, 1, 2, 3]);
      // signing again with Alice's key: nothing changes
      const again = await ok([...r, 'sign', '--role', 'targets', '--key', key.alice.key]);
      assert.match(again.stdout, /targets: already signed by/);

      // the signatures changed targets.json: snapshot and timestamp must follow
      const stale = await status(repo);
      assert.equal(stale.ready, false);
      assert.ok(stale.problems.some((p) => p.startsWith('snapshot: does not list')));
      await ok([...r, 'snapshot', '--key', key.snapshot.key]);
      await ok([...r, 'timestamp', '--key', key.timestamp.key]);
      assert.equal((await status(repo)).ready, true);
      await ok([...r, 'publish', '--to', site]);

      const server = await serve(site);
      const c = await tufClient(join(dir, 'client'), join(site, '1.root.json'));
      const d = await c.download(server, ['tools/tool.sh']);
      assert.equal(d.status, 0, show(d));
      assert.equal(
        readFileSync(join(c.td, 'tools%2Ftool.sh'), 'utf8'),
        '#!/bin/sh\necho release tool\n',
      );
    });
  });

  describe('trees published by hand, bypassing publish, are refused by clients', () => {
    let keys: Record<
      'root' | 'targets' | 'targets2' | 'snapshot' | 'timestamp',
      { key: string; pub: string }
    >;

    before(async () => {
      const dir = join(tmp, 'by-hand-keys');
      mkdirSync(dir);
      const names = ['root', 'targets', 'targets2', 'snapshot', 'timestamp'] as const;
      const made = await Promise.all(names.map((n) => generate(join(dir, `${n}.key`))));
      keys = Object.fromEntries(names.map((n, i) => [n, made[i]])) as unknown as typeof keys;
    });

    async function initRepo(repo: string, o: RunOptions, threshold2: boolean): Promise<void> {
      const targetsKeys = threshold2
        ? ['--targets-key', keys.targets.pub, '--targets-key', keys.targets2.pub]
        : ['--targets-key', keys.targets.pub];
      await ok(
        [
          'repo',
          '--repo',
          repo,
          'init',
          '--root-key',
          keys.root.pub,
          ...targetsKeys,
          '--snapshot-key',
          keys.snapshot.pub,
          '--timestamp-key',
          keys.timestamp.pub,
          ...(threshold2 ? ['--threshold', 'targets=2'] : []),
        ],
        o,
      );
      const file = join(dirname(repo), 'payload.txt');
      writeFileSync(file, 'payload\n');
      const r = ['repo', '--repo', repo];
      await ok([...r, 'add-target', file], o);
      await ok([...r, 'sign', '--role', 'root', '--key', keys.root.key], o);
      await ok([...r, 'sign', '--role', 'targets', '--key', keys.targets.key], o);
      await ok([...r, 'snapshot', '--key', keys.snapshot.key], o);
      await ok([...r, 'timestamp', '--key', keys.timestamp.key], o);
    }

    async function assertRefused(
      dir: string,
      site: string,
      expected: RegExp,
      tufJsError: RegExp,
    ): Promise<void> {
      const server = await serve(site);
      const c = await tufClient(join(dir, 'client'), join(site, '1.root.json'));
      const r = await c.refresh(server);
      assert.equal(r.status, 1, show(r));
      assert.match(r.stderr, expected);
      const d = await c.download(server, ['payload.txt']);
      assert.equal(d.status, 1, show(d));
      assert.deepEqual(readdirSync(c.td), [], 'nothing downloaded');
      await assert.rejects(
        tufJs(join(dir, 'tufjs'), server, join(site, '1.root.json')).refresh(),
        (e: Error) => tufJsError.test(`${e.constructor.name}: ${e.message}`),
      );
    }

    it('under-signed targets (1 of 2 signatures)', async () => {
      const dir = join(tmp, 'under-signed');
      const repo = join(dir, 'repo');
      mkdirSync(dir);
      await initRepo(repo, {}, true);
      const s = await status(repo);
      assert.equal(s.ready, false);
      assert.equal(role(s, 'targets').thresholds[0]?.missing, 1);
      const refused = await tufa(['repo', '--repo', repo, 'publish', '--to', join(dir, 'out')]);
      assert.equal(refused.status, 2, show(refused));
      const site = join(dir, 'site');
      copyByHand(repo, site);
      await assertRefused(
        dir,
        site,
        /targets\.json: signed by 1 of the required 2 distinct keys/,
        /targets was signed by 1\/2 keys/,
      );
    });

    it('expired timestamp (the scheduled job stopped two days ago)', async () => {
      const dir = join(tmp, 'expired');
      const repo = join(dir, 'repo');
      mkdirSync(dir);
      // the whole release ran two days ago: the 1-day timestamp has expired since
      await initRepo(repo, { clockOffsetMs: -2 * DAY }, false);
      assert.equal((await status(repo, { clockOffsetMs: -2 * DAY })).ready, true);
      const s = await status(repo);
      assert.equal(s.ready, false);
      assert.equal(role(s, 'timestamp').expired, true);
      assert.ok(s.problems.some((p) => p.startsWith('timestamp: expired at')));
      const refused = await tufa(['repo', '--repo', repo, 'publish', '--to', join(dir, 'out')]);
      assert.equal(refused.status, 2, show(refused));
      assert.match(refused.stderr, /timestamp: expired/);
      const site = join(dir, 'site');
      copyByHand(repo, site);
      assert.ok(
        existsSync(join(site, `targets/${consistentName('payload.txt', sha256('payload\n'))}`)),
      );
      await assertRefused(dir, site, /timestamp\.json v\d+ expired at/, /ExpiredMetadataError/);
    });
  });

  // a suite of its own: mocha runs a suite's own tests before its nested suites
  describe('after every command above', () => {
    it('no command printed private key material or a passphrase', () => {
      assert.ok(runs.length >= 40, `${runs.length} runs checked`);
      for (const r of runs) assertNoSecrets(r);
      assert.ok(secrets.size > 20, 'private key lines collected');
    });
  });
});
