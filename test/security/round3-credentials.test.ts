/**
 * Security round 3 (the redesign's third attack round): the notary login, the trusted root an
 * embedder gives the Updater, credential helpers, `tufa notary import` rollbacks, and the
 * transport's rule of who may receive credentials.
 *
 * Everything runs on 127.0.0.1: the in-process registry simulator, a forged Notary collection
 * served by a small HTTP server, the repository simulator, and shell-script credential helpers.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { login, notaryCredentials } from '../../src/cli/registry-options.js';
import { MemoryMetadataStore, Updater } from '../../src/client/index.js';
import { DockerConfigCredentials } from '../../src/oci/index.js';
import {
  AuthLayer,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from '../../src/transport/index.js';
import { METADATA_URL, RepositorySimulator, TARGETS_URL } from '../sim/repository-simulator.js';
import {
  ecdsaKey,
  type ForgedCollection,
  forgeCollection,
  forgedCrawl,
  forgeRoot,
  Openssl,
  type RootRoles,
  x509Key,
} from '../support/notary-forge.js';
import { OciSim } from '../support/oci-sim.js';
import { TUFA_BIN } from '../support/paths.js';
import { NOW, SimRepo, TestKey } from '../support/tuf-builder.js';
import { type CaseContext, defineCases, type SecurityCase, show, tufa } from './harness.js';

const SECRET = 'r3-notary-only-password';
const B64 = Buffer.from(`ci:${SECRET}`).toString('base64');

/** cli runs tufa with `input` on stdin (the harness's runner gives none). */
function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
  input = '',
): Promise<{ code: number; out: string }> {
  return new Promise((ok) => {
    const p = execFile(
      process.execPath,
      [TUFA_BIN, ...args],
      { timeout: 60_000, env: { ...process.env, ...env } },
      (e, stdout, stderr) =>
        ok({ code: e ? Number((e as { code?: number }).code) : 0, out: stdout + stderr }),
    );
    p.stdin?.end(input);
  });
}

/** A notary collection for `gun`, signed with a certificate root key (for --tofu). */
function notaryKeys(t: CaseContext, gun: string): RootRoles {
  const leaf = new Openssl(t.tmp()).cert({ cn: gun, days: 3650 });
  return {
    root: [x509Key(leaf.pem, leaf.privateKey)],
    targets: [ecdsaKey()],
    snapshot: [ecdsaKey()],
    timestamp: [ecdsaKey()],
  };
}

/** serveNotary serves a GUN's collection on 127.0.0.1; `set` changes what it serves. */
async function serveNotary(
  t: CaseContext,
  gun: string,
): Promise<{ url: string; set(c: ForgedCollection): void }> {
  let files = new Map<string, Uint8Array>();
  const prefix = `/v2/${gun}/_trust/tuf/`;
  const server = createServer((req, res) => {
    const b = req.url?.startsWith(prefix) ? files.get(req.url.slice(prefix.length)) : undefined;
    if (b === undefined) res.writeHead(404);
    res.end(b === undefined ? undefined : Buffer.from(b));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  t.defer(() => new Promise<void>((ok) => server.close(() => ok())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    set(c) {
      files = forgedCrawl(url, gun, c).files as Map<string, Uint8Array>;
    },
  };
}

const cases: SecurityCase[] = [
  {
    id: 'R3-07',
    title: 'the --password-stdin notary login never reaches the registry',
    attack:
      "`tufa notary verify IMG --server <notary on the registry host:port> --username ci --password-stdin`: the login sat in the one credential provider the registry client used too, so the registry's own 401 was answered with the notary password",
    source: 'attack round 3 (attack-a), issue 14',
    expect: 'safe: the registry sees no request carrying the notary password',
    timeout: 60_000,
    async run(t) {
      const reg = await OciSim.start({ auth: { kind: 'basic', username: 'reg', password: 'pw' } });
      t.defer(() => reg.close());
      const img = reg.pushImage('team/app', '1', [new TextEncoder().encode('layer')]);
      const gun = `${reg.host}/team/app`;
      const keys = notaryKeys(t, gun);
      const c = forgeCollection({
        roots: [forgeRoot(1, keys)],
        keys,
        tags: { '1': new TextDecoder('latin1').decode(img.bytes) },
      });
      const files = forgedCrawl(reg.origin, gun, c).files as Map<string, Uint8Array>;
      const prefix = `/v2/${gun}/_trust/tuf/`;
      reg.intercept = (req, res) => {
        if (!req.url?.startsWith(prefix)) return false;
        const b = files.get(req.url.slice(prefix.length));
        if (b === undefined) res.writeHead(404);
        res.end(b === undefined ? undefined : Buffer.from(b));
        return true;
      };
      const tmp = t.tmp();
      const r = await cli(
        [
          'notary',
          'verify',
          `${gun}:1`,
          '--server',
          reg.origin,
          '--tofu',
          '--cache-dir',
          join(tmp, 'cache'),
          '--username',
          'ci',
          '--password-stdin',
        ],
        { DOCKER_CONFIG: join(tmp, 'no-docker') },
        `${SECRET}\n`,
      );
      const asked = reg.requests.filter((q) => !q.path.includes('/_trust/'));
      assert.ok(asked.length > 0, `the registry was asked (exit ${r.code}): ${r.out}`);
      assert.deepEqual(
        asked
          .filter((q) => String(q.headers.authorization ?? '').includes(B64))
          .map((q) => `${q.method} ${q.path}`),
        [],
        'the notary password went to the registry',
      );
    },
  },
  {
    id: 'R3-08',
    title: 'a newer trustedRoot replaces an older cached root (both stores)',
    attack:
      'The store holds root v1; the embedder ships root v2, which removed a compromised root key; the attacker holding that key withholds the real 2.root.json and serves its own, signed by the old key: the Updater walked from the cached v1 and accepted it',
    source: 'attack round 3 (attack-a); TUF 5.2, 5.3; python-tuf ngclient `bootstrap`',
    expect: 'safe: the walk starts from the newer trustedRoot; the forged root is never trusted',
    timeout: 30_000,
    async run(t) {
      for (const kind of ['filesystem', 'memory'] as const) {
        const repo = new SimRepo();
        const sim = new RepositorySimulator(repo);
        const md = join(t.tmp(), 'metadata');
        mkdirSync(md);
        const memory = new MemoryMetadataStore();
        const updater = (trustedRoot: Uint8Array) =>
          new Updater({
            ...(kind === 'memory' ? { store: memory } : { metadataDir: md }),
            trustedRoot,
            metadataBaseUrl: METADATA_URL,
            targetBaseUrl: TARGETS_URL,
            fetcher: sim,
            now: () => NOW,
          });
        await updater(repo.rootBytes(1)).refresh(); // the store holds root v1
        const compromised = repo.rootKeys;
        repo.rootKeys = [new TestKey()];
        repo.setRootKeys();
        repo.publishRoot(compromised); // v2: the old root key is out
        sim.publish();
        const shipped = repo.rootBytes(2);
        // the attacker's own 2.root.json, signed by the compromised key
        const attackerKeys = [new TestKey()];
        const saved = repo.rootKeys;
        repo.rootKeys = attackerKeys;
        repo.setRootKeys();
        (repo.root as { version: number }).version = 1;
        const forged = repo.publishRoot(compromised, [...compromised, ...attackerKeys]);
        repo.rootKeys = saved;
        sim.overrides.set('metadata/2.root.json', forged);
        const u = updater(shipped);
        await u.refresh().catch(() => undefined);
        const root = JSON.parse(new TextDecoder().decode(await u.store.read('root')));
        assert.equal(root.signed.version, 2, kind);
        assert.ok(
          !root.signed.roles.root.keyids.includes(attackerKeys[0]?.keyid),
          `${kind}: the cached older root won over the newer trustedRoot`,
        );
        assert.deepEqual(await u.store.read('root'), shipped, `${kind}: the store holds v2`);
        // an older trustedRoot than the cached root yields to it (reached by a verified chain)
        const again = updater(repo.rootBytes(1));
        await again.refresh().catch(() => undefined);
        assert.deepEqual(
          await again.store.read('root'),
          shipped,
          `${kind}: v1 does not replace v2`,
        );
      }
    },
  },
  {
    id: 'R3-09',
    title:
      'a credential helper that ignores SIGTERM or leaves a child holding stdout is killed at its timeout',
    attack:
      'A Docker credential helper (`credsStore`) traps SIGTERM, or starts an agent that keeps its stdout open: the helper timeout only sent SIGTERM and waited for the pipes to close, so tufa waited for ever',
    source: 'attack round 3 (attack-a)',
    expect: 'UNAUTHORIZED',
    timeout: 30_000,
    async run(t) {
      for (const script of ["trap '' TERM; sleep 20; sleep 20", 'sleep 20 &\nsleep 20']) {
        const dir = t.tmp();
        mkdirSync(join(dir, 'bin'));
        writeFileSync(
          join(dir, 'bin', 'docker-credential-slow'),
          `#!/bin/sh\necho '${SECRET}'\n${script}\n`,
          { mode: 0o755 },
        );
        writeFileSync(join(dir, 'config.json'), JSON.stringify({ credsStore: 'slow' }));
        const creds = new DockerConfigCredentials(join(dir, 'config.json'), 500, {
          PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
        });
        const t0 = Date.now();
        const bounded = Promise.race([
          creds.get('notary.example.com'),
          new Promise((_, no) => setTimeout(() => no(new Error('still waiting after 8 s')), 8000)),
        ]);
        const e = await t.refuses(bounded, 'UNAUTHORIZED', /docker-credential-slow/);
        assert.ok(!e.message.includes(SECRET), e.message);
        assert.ok(Date.now() - t0 < 8000);
      }
    },
  },
  {
    id: 'R3-10',
    title: 'notary import refuses an older collection with a fresh cache or a respelled server',
    attack:
      'After `tufa notary import` carried targets v2 into a workspace, the server serves the older, validly signed v1 to a re-import with a fresh `--cache-dir` (ephemeral CI) or with `--server URL/` (a trailing slash made a new cache): the import removed the tags v2 added',
    source: 'attack round 3 (attack-a); TUF 5.5.5',
    expect: 'ROLLBACK',
    timeout: 120_000,
    async run(t) {
      const gun = 'registry.example.com/team/app';
      const keys = notaryKeys(t, gun);
      const roots = [forgeRoot(1, keys)];
      const notary = await serveNotary(t, gun);
      const tmp = t.tmp();
      const ws = join(tmp, 'ws');
      const env = { ...process.env, DOCKER_CONFIG: join(tmp, 'no-docker') };
      const kd = join(tmp, 'keys');
      mkdirSync(kd);
      const roles = ['root', 'targets', 'snapshot', 'timestamp'];
      for (const r of roles) {
        const g = await tufa(['key', 'generate', '--type', 'ed25519', '--out', join(kd, r)], {
          env,
        });
        assert.equal(g.status, 0, show(g));
      }
      const init = await tufa(
        [
          'repo',
          '--repo',
          ws,
          'init',
          ...roles.flatMap((r) => [`--${r}-key`, join(kd, `${r}.pub.json`)]),
        ],
        { env },
      );
      assert.equal(init.status, 0, show(init));
      const targets = () => {
        const names: string[] = [];
        for (const f of readdirSync(ws, { recursive: true }) as string[]) {
          if (!f.endsWith('targets.json')) continue;
          const j = JSON.parse(readFileSync(join(ws, f), 'utf8'));
          if (j?.signed?.targets) names.push(...Object.keys(j.signed.targets));
        }
        return [...new Set(names)].sort();
      };
      const importWith = (cache: string, server = notary.url) =>
        tufa(
          [
            'notary',
            'import',
            gun,
            '--server',
            server,
            '--tofu',
            '--cache-dir',
            join(tmp, cache),
            '--into',
            ws,
          ],
          { env, timeoutMs: 60_000 },
        );
      const versions = (n: number) => ({ timestamp: n, snapshot: n, targets: n });
      notary.set(
        forgeCollection({
          roots,
          keys,
          tags: { '1.0': 'one', '2.0': 'two' },
          versions: versions(2),
        }),
      );
      const a = await importWith('c-1');
      assert.equal(a.status, 0, show(a));
      const carried = [`${gun}:1.0`, `${gun}:2.0`];
      assert.deepEqual(targets(), carried);
      notary.set(forgeCollection({ roots, keys, tags: { '1.0': 'one' }, versions: versions(1) }));
      for (const [cache, server] of [
        ['c-2', notary.url],
        ['c-1', `${notary.url}/`],
      ] as const) {
        const b = await importWith(cache, server);
        assert.notEqual(b.status, 0, show(b));
        assert.match(b.stderr, /ROLLBACK/, show(b));
        assert.deepEqual(targets(), carried, `${cache} ${server}: ${show(b)}`);
      }
      t.refusedBy('ROLLBACK');
      // the same versions again (nothing new) are fine
      notary.set(
        forgeCollection({
          roots,
          keys,
          tags: { '1.0': 'one', '2.0': 'two' },
          versions: versions(2),
        }),
      );
      const c = await importWith('c-3');
      assert.equal(c.status, 0, show(c));
    },
  },
  {
    id: 'R3-11',
    title: 'no credentials to a plain-http challenger off loopback; notary logins keyed by origin',
    attack:
      'A policy names `notary.server: http://…` off loopback: the Docker config credentials of its host (stored for https) answered its 401, and a MITM injecting `Bearer realm="https://attacker/"` received them; a `--username` login for `https://H` was answered to `http://H` too (lookups by host)',
    source: 'attack round 3 (attack-a); go-containerregistry transport/bearer.go',
    expect:
      'safe: the plain-http challenger and the realm it names get no credentials; a login answers its own origin only',
    async run(t) {
      const creds = { username: 'ci', password: SECRET };
      const sent: TransportRequest[] = [];
      const inner: Transport = {
        close: async () => undefined,
        send: async (r: TransportRequest): Promise<TransportResponse> => {
          sent.push(r);
          const attacker = new URL(r.url).host === 'attacker.example';
          const body = attacker ? '{"token":"t"}' : '';
          return {
            status: attacker ? 200 : 401,
            url: r.url,
            headers: attacker
              ? {}
              : { 'www-authenticate': 'Bearer realm="https://attacker.example/token"' },
            body: (async function* () {})(),
            bytes: async () => new TextEncoder().encode(body),
            discard: async () => undefined,
          } as unknown as TransportResponse;
        },
      };
      const looked: string[] = [];
      const auth = new AuthLayer(inner, {
        credentials: async (u) => {
          looked.push(u.origin);
          return creds;
        },
      });
      for (const url of [
        'http://notary.example.com/v2/x/_trust/tuf/root.json',
        'http://10.0.0.5:4443/x',
      ]) {
        await auth.send({ maxLength: 1 << 20, url }).then(
          (r) => r.discard(),
          () => undefined,
        );
      }
      assert.deepEqual(
        looked,
        [],
        'credentials were looked up for a plain-http origin off loopback',
      );
      assert.ok(
        !sent.some((r) => JSON.stringify(r.headers ?? {}).includes(B64)),
        'a challenge that came over plain http sent the password somewhere',
      );
      // control: the same over https gets the credentials to the realm
      await auth.send({ maxLength: 1 << 20, url: 'https://notary.example.com/x' }).then(
        (r) => r.discard(),
        () => undefined,
      );
      assert.deepEqual(looked, ['https://notary.example.com']);
      // a command line login answers its origin, not the same host over another scheme or port
      // and a command line login for a plain-http server off loopback is refused before stdin
      await assert.rejects(
        login({ username: 'ci', passwordStdin: true }, 'http://notary.example.com'),
        /plain http: no password is sent there/,
      );
      const saved = process.env.DOCKER_CONFIG;
      process.env.DOCKER_CONFIG = t.tmp();
      try {
        const lookup = notaryCredentials({
          origin: 'https://notary.example.com',
          credentials: creds,
        });
        assert.deepEqual(await lookup(new URL('https://notary.example.com/')), creds);
        for (const other of ['http://notary.example.com/', 'https://notary.example.com:4443/'])
          assert.equal(await lookup(new URL(other)), undefined, other);
      } finally {
        if (saved === undefined) delete process.env.DOCKER_CONFIG;
        else process.env.DOCKER_CONFIG = saved;
      }
    },
  },
];

describe('security round 3: credentials, trusted roots, notary import', () => {
  defineCases(cases);
});
