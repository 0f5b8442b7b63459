/**
 * Docker Content Trust against a live Notary v1 stack, as Debian ships it (package `notary`
 * 0.7.0: notary-signer, notary-server, the notary CLI), with a real registry
 * (docker-registry + umoci + skopeo, test/support/registry.ts):
 *
 * - a test CA (openssl) gives notary-signer and notary-server their TLS certificates; both run on
 *   127.0.0.1 with memory storage, the server signing timestamps through the signer (gRPC, TLS);
 * - the notary CLI (its own trust dir and HOME in the temp folder, passphrases from
 *   NOTARY_*_PASSPHRASE) initialises the GUN `<registry>/demo/app`, signs tag 1.0 into `targets`
 *   and 2.0 into a `targets/releases` delegation (`notary addhash` with the manifest's length and
 *   sha256, exactly as the registry serves it), and a second GUN whose root certificate is
 *   issued by a root CA made here (`notary init --rootkey --rootcert`);
 * - `tufa notary verify` (a subprocess; the notary server's TLS CA through --server-ca)
 *   pins the root by the ID `notary key list` prints, by the certificate ID, or by the CA, and
 *   prints the pinned digests; wrong pins are refused;
 * - `tufa notary import` carries the tags into a `tufa repo init` workspace, which is signed,
 *   published and verified with a `tuf` policy rule (the migration of docs/docker-content-trust.md);
 * - `notary remove` + publish: the tag is refused afterwards.
 *
 * Every subprocess has a timeout; the servers run in their own process groups, killed in
 * `after` (and on exit); the temp folder is removed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TUFA_BIN } from '../support/paths.js';
import {
  type BuiltImage,
  buildImage,
  REGISTRY_TOOLS,
  RegistryServer,
  run,
  runOk,
  skipReason,
  TEST_ACCOUNT,
  TokenIssuer,
} from '../support/registry.js';
import { StaticServer } from '../support/static-server.js';

const NOTARY_TOOLS = ['notary', 'notary-server', 'notary-signer'];

interface Cli {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function show(r: Cli): string {
  return `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** A free TCP port on 127.0.0.1 (the servers take fixed ports from their configuration). */
async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A long-running server in its own process group, its output kept for messages. */
class Daemon {
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  output = '';
  done = false;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const s of [this.child.stdout, this.child.stderr]) {
      s?.setEncoding('utf8').on('data', (d: string) => {
        this.output = (this.output + d).slice(-20_000);
      });
    }
    this.exited = new Promise((r) =>
      this.child.once('close', () => {
        this.done = true;
        r();
      }),
    );
    this.child.once('error', (e) => {
      this.output += `\nspawn error: ${e.message}`;
    });
    DAEMONS.add(this);
  }

  private kill(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // gone
    }
  }

  /** stop: SIGTERM to the group, SIGKILL after 5 s. */
  async stop(): Promise<void> {
    DAEMONS.delete(this);
    if (this.done) return;
    this.kill('SIGTERM');
    const gone = await Promise.race([this.exited.then(() => true), sleep(5_000).then(() => false)]);
    if (!gone) {
      this.kill('SIGKILL');
      await Promise.race([this.exited, sleep(5_000)]);
    }
  }

  killNow(): void {
    this.kill('SIGKILL');
  }
}

const DAEMONS = new Set<Daemon>();
process.once('exit', () => {
  for (const d of DAEMONS) d.killNow();
});

/** waitFor polls `check` every 200 ms until it is true, `ms` at most. */
async function waitFor(what: string, ms: number, check: () => Promise<boolean>, d: Daemon) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (d.done) throw new Error(`${d.name} exited while waiting for ${what}\n${d.output}`);
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`${what}: not ready after ${ms} ms\n${d.output}`);
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, timeout: 1_000 });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

function httpsStatus(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** A manifest exactly as the registry serves it. */
interface Served {
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly digest: string;
}

describe('Notary v1 live: notary-server + notary-signer + notary CLI, then tufa notary verify / import (integration)', function () {
  this.timeout(120_000);
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let notaryEnv: NodeJS.ProcessEnv;
  let tlsCaPem: string;
  let signer: Daemon | undefined;
  let server: Daemon | undefined;
  let reg: RegistryServer | undefined;
  let tufServer: StaticServer | undefined;
  let notaryUrl: string;
  let grpcPort: number;
  let gun: string;
  let caGun: string;
  /** `notary key list`'s root ID (canonical) for gun, and the certificate ID root.json lists. */
  let rootKeyId: string;
  let rootCertId: string;
  let one: Served;
  let two: Served;

  const image = (tag: string) => `${gun}:${tag}`;

  async function tufa(...args: string[]): Promise<Cli> {
    const r = await run(process.execPath, [TUFA_BIN, ...args], {
      env,
      cwd: tmp,
      timeoutMs: 60_000,
    });
    assert.equal(r.timedOut, false, `tufa ${args.join(' ')} timed out`);
    return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
  }

  async function tufaOk(...args: string[]): Promise<Cli> {
    const r = await tufa(...args);
    assert.equal(r.status, 0, `tufa ${args.join(' ')}\n${show(r)}`);
    return r;
  }

  /** notary runs the notary CLI with a trust dir of the temp folder. */
  function notary(trustDir: string, ...args: string[]): Promise<Buffer> {
    return notaryAt(notaryUrl, notaryEnv, undefined, trustDir, ...args);
  }

  /** notaryWith runs the notary CLI with `input` on stdin (answers to its prompts). */
  function notaryWith(
    input: string | undefined,
    trustDir: string,
    ...args: string[]
  ): Promise<Buffer> {
    return notaryAt(notaryUrl, notaryEnv, input, trustDir, ...args);
  }

  function notaryAt(
    url: string,
    e: NodeJS.ProcessEnv,
    input: string | undefined,
    trustDir: string,
    ...args: string[]
  ): Promise<Buffer> {
    return runOk(
      'notary',
      ['-d', join(tmp, trustDir), '-s', url, '--tlscacert', join(tmp, 'tls', 'ca.crt'), ...args],
      { env: e, cwd: tmp, timeoutMs: 60_000, ...(input === undefined ? {} : { input }) },
    );
  }

  function openssl(...args: string[]): Promise<Buffer> {
    return runOk('openssl', args, { cwd: tmp, timeoutMs: 30_000 });
  }

  /** An X.509 subject with the `/`s of a GUN escaped for `openssl -subj`. */
  const subject = (cn: string) => `/CN=${cn.replace(/\//g, '\\/')}`;

  async function makeCa(dir: string, cn: string): Promise<void> {
    mkdirSync(join(tmp, dir), { recursive: true });
    await openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(tmp, dir, 'ca.key'),
      '-out',
      join(tmp, dir, 'ca.crt'),
      '-days',
      '30',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
  }

  /** issue makes an EC P-256 key and a certificate for it, signed by the CA of `caDir`. */
  async function issue(caDir: string, name: string, subj: string, ext: string): Promise<void> {
    const d = join(tmp, caDir);
    await openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(d, `${name}.key`),
      '-out',
      join(d, `${name}.csr`),
      '-subj',
      subj,
    );
    writeFileSync(join(d, `${name}.ext`), ext);
    await openssl(
      'x509',
      '-req',
      '-sha256',
      '-in',
      join(d, `${name}.csr`),
      '-CA',
      join(d, 'ca.crt'),
      '-CAkey',
      join(d, 'ca.key'),
      '-CAcreateserial',
      '-out',
      join(d, `${name}.crt`),
      '-days',
      '30',
      '-extfile',
      join(d, `${name}.ext`),
    );
  }

  async function served(ref: string): Promise<Served> {
    const bytes = await (reg as RegistryServer).inspectRaw(ref);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    return { bytes, sha256, digest: `sha256:${sha256}` };
  }

  function verifyArgs(...extra: string[]): string[] {
    return [
      'notary',
      'verify',
      '--server',
      notaryUrl,
      '--server-ca',
      join(tmp, 'tls', 'ca.crt'),
      ...extra,
    ];
  }

  before(async function () {
    this.timeout(300_000);
    const why = skipReason([...REGISTRY_TOOLS, ...NOTARY_TOOLS]);
    if (why !== undefined) {
      process.stderr.write(
        `  skipping the live Notary tests: ${why.replace('(Debian packages', '(Debian packages notary,')}\n`,
      );
      this.skip();
    }
    tmp = mkdtempSync(join(tmpdir(), 'tufa-notary-live-'));
    const home = join(tmp, 'home');
    mkdirSync(home);

    // TLS for the signer (gRPC, client certificates required) and the server (HTTPS)
    await makeCa('tls', 'tufa notary test TLS CA');
    const tlsExt =
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n';
    await issue('tls', 'signer', '/CN=notary-signer', tlsExt);
    await issue('tls', 'server', '/CN=notary-server', tlsExt);
    tlsCaPem = readFileSync(join(tmp, 'tls', 'ca.crt'), 'utf8');
    const tls = (f: string) => join(tmp, 'tls', f);

    const daemonEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home };
    grpcPort = await freePort();
    writeFileSync(
      join(tmp, 'signer.json'),
      JSON.stringify({
        server: {
          grpc_addr: `127.0.0.1:${grpcPort}`,
          tls_cert_file: tls('signer.crt'),
          tls_key_file: tls('signer.key'),
          client_ca_file: tls('ca.crt'),
        },
        logging: { level: 'info' },
        storage: { backend: 'memory' },
      }),
    );
    signer = new Daemon(
      'notary-signer',
      'notary-signer',
      ['-config', join(tmp, 'signer.json')],
      daemonEnv,
    );
    await waitFor(
      `notary-signer on 127.0.0.1:${grpcPort}`,
      15_000,
      () => tcpOpen(grpcPort),
      signer,
    );

    const httpsPort = await freePort();
    notaryUrl = `https://127.0.0.1:${httpsPort}`;
    writeFileSync(
      join(tmp, 'server.json'),
      JSON.stringify({
        server: {
          http_addr: `127.0.0.1:${httpsPort}`,
          tls_cert_file: tls('server.crt'),
          tls_key_file: tls('server.key'),
        },
        trust_service: {
          type: 'remote',
          hostname: '127.0.0.1',
          port: String(grpcPort),
          tls_ca_file: tls('ca.crt'),
          key_algorithm: 'ecdsa',
          tls_client_cert: tls('server.crt'),
          tls_client_key: tls('server.key'),
        },
        logging: { level: 'info' },
        storage: { backend: 'memory' },
      }),
    );
    server = new Daemon(
      'notary-server',
      'notary-server',
      ['-config', join(tmp, 'server.json')],
      daemonEnv,
    );
    await waitFor(
      `${notaryUrl}/_notary_server/health`,
      20_000,
      async () => (await httpsStatus(`${notaryUrl}/_notary_server/health`, tlsCaPem)) === 200,
      server,
    );

    notaryEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      NOTARY_ROOT_PASSPHRASE: 'root-passphrase',
      NOTARY_TARGETS_PASSPHRASE: 'targets-passphrase',
      NOTARY_SNAPSHOT_PASSPHRASE: 'snapshot-passphrase',
      NOTARY_DELEGATION_PASSPHRASE: 'delegation-passphrase',
    };
    env = {
      ...process.env,
      HOME: home,
      DOCKER_CONFIG: join(tmp, 'docker'),
      XDG_CACHE_HOME: join(tmp, 'xdg-cache'),
      NO_COLOR: '1',
    };
    delete env.TUFA_POLICY;
    delete env.TUFA_KEY_PASSPHRASE;

    // the images, as the registry serves them
    reg = await RegistryServer.start('plain');
    const layout = join(tmp, 'build', 'layout');
    const unique = (what: string) => `${what} ${randomBytes(8).toString('hex')}\n`;
    const a: BuiltImage = await buildImage(`${layout}:one`, { '/etc/one': unique('one') });
    const b: BuiltImage = await buildImage(`${layout}:two`, { '/etc/two': unique('two') });
    await reg.push(a.ref, 'demo/app:1.0');
    await reg.push(b.ref, 'demo/app:2.0');
    await reg.push(a.ref, 'demo/ca:1.0');
    await reg.push(a.ref, 'demo/rot:1.0');
    one = await served('demo/app:1.0');
    two = await served('demo/app:2.0');
    assert.equal(one.digest, a.digest);
    gun = `${reg.host}/demo/app`;
    caGun = `${reg.host}/demo/ca`;

    // demo/app: notary's own root (self-signed certificate); 1.0 in targets, 2.0 in targets/releases
    await notary('trust-app', 'init', gun, '-p');
    await notary(
      'trust-app',
      'addhash',
      gun,
      '1.0',
      String(one.bytes.length),
      '--sha256',
      one.sha256,
      '-p',
    );
    mkdirSync(join(tmp, 'releases'));
    await openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(tmp, 'releases', 'releases.key'),
      '-out',
      join(tmp, 'releases', 'releases.crt'),
      '-days',
      '30',
      '-subj',
      '/CN=releases',
      '-addext',
      'basicConstraints=critical,CA:FALSE',
    );
    await notary(
      'trust-app',
      'delegation',
      'add',
      gun,
      'targets/releases',
      join(tmp, 'releases', 'releases.crt'),
      '--all-paths',
      '-p',
    );
    await notary(
      'trust-app',
      'key',
      'import',
      join(tmp, 'releases', 'releases.key'),
      '--role',
      'targets/releases',
    );
    await notary(
      'trust-app',
      'addhash',
      gun,
      '2.0',
      String(two.bytes.length),
      '--sha256',
      two.sha256,
      '-r',
      'targets/releases',
      '-p',
    );
    const keyList = (await notary('trust-app', 'key', 'list')).toString();
    const rootLine = keyList.split('\n').find((l) => /^root\s/.test(l));
    rootKeyId = /\b[0-9a-f]{64}\b/.exec(rootLine ?? '')?.[0] ?? '';
    assert.match(rootKeyId, /^[0-9a-f]{64}$/, keyList);
    const rootJson = JSON.parse(
      readFileSync(join(tmp, 'trust-app', 'tuf', gun, 'metadata', 'root.json'), 'utf8'),
    ) as { signed: { roles: { root: { keyids: string[] } } } };
    rootCertId = rootJson.signed.roles.root.keyids[0] as string;
    assert.notEqual(rootCertId, rootKeyId);

    // demo/ca: the root certificate issued by a root CA (a leaf: CN = GUN, codeSigning)
    await makeCa('rootca', 'tufa notary test root CA');
    await issue(
      'rootca',
      'root',
      subject(caGun),
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=codeSigning\n',
    );
    // notary imports only encrypted root keys (PBES2 with HMAC-SHA1 is what it can read)
    await openssl(
      'pkcs8',
      '-topk8',
      '-in',
      join(tmp, 'rootca', 'root.key'),
      '-out',
      join(tmp, 'rootca', 'root.enc.key'),
      '-v2',
      'aes-256-cbc',
      '-v2prf',
      'hmacWithSHA1',
      '-passout',
      `pass:${notaryEnv.NOTARY_ROOT_PASSPHRASE}`,
    );
    await notary(
      'trust-ca',
      'init',
      caGun,
      '--rootkey',
      join(tmp, 'rootca', 'root.enc.key'),
      '--rootcert',
      join(tmp, 'rootca', 'root.crt'),
      '-p',
    );
    const caOne = await served('demo/ca:1.0');
    await notary(
      'trust-ca',
      'addhash',
      caGun,
      '1.0',
      String(caOne.bytes.length),
      '--sha256',
      caOne.sha256,
      '-p',
    );
  });

  after(async function () {
    this.timeout(60_000);
    await tufServer?.close();
    await server?.stop();
    await signer?.stop();
    await reg?.close();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  it('the notary CLI lists what it signed (the setup worked)', async () => {
    const list = (await notary('trust-app', 'list', gun)).toString();
    assert.match(
      list,
      new RegExp(`^1\\.0\\s+${one.sha256}\\s+${one.bytes.length}\\s+targets\\s*$`, 'm'),
    );
    assert.match(
      list,
      new RegExp(`^2\\.0\\s+${two.sha256}\\s+${two.bytes.length}\\s+targets/releases\\s*$`, 'm'),
    );
  });

  it('tufa notary verify --root-key <ID from notary key list>: the pinned digests, 1.0 from targets, 2.0 from targets/releases', async () => {
    const r = await tufaOk(
      ...verifyArgs('--root-key', rootKeyId, '--cache-dir', join(tmp, 'c-key')),
      image('1.0'),
      image('2.0'),
    );
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines, [
      `✔ ${image('1.0')} → ${gun}@${one.digest}`,
      `✔ ${image('2.0')} → ${gun}@${two.digest}`,
    ]);
    const json = await tufaOk(
      ...verifyArgs('--root-key', rootKeyId, '--cache-dir', join(tmp, 'c-key'), '--json'),
      image('1.0'),
      image('2.0'),
    );
    const res = JSON.parse(json.stdout) as Array<{ signedBy: string; length: number }>;
    assert.deepEqual(
      res.map((x) => [x.signedBy, x.length]),
      [
        [`${notaryUrl} targets`, one.bytes.length],
        [`${notaryUrl} targets/releases`, two.bytes.length],
      ],
    );
  });

  it('--json, pinned by the certificate ID root.json lists', async () => {
    const r = await tufaOk(
      ...verifyArgs('--root-key', rootCertId, '--cache-dir', join(tmp, 'c-cert'), '--json'),
      image('2.0'),
    );
    const [res] = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    assert.ok(res);
    assert.deepEqual(
      {
        input: res.input,
        verified: res.verified,
        pinned: res.pinned,
        digest: res.digest,
        length: res.length,
        signedBy: res.signedBy,
      },
      {
        input: image('2.0'),
        verified: true,
        pinned: `${gun}@${two.digest}`,
        digest: two.digest,
        length: two.bytes.length,
        signedBy: `${notaryUrl} targets/releases`,
      },
    );
  });

  it('--root-ca: a root certificate issued by the pinned CA verifies; a CA that issued no root certificate is refused', async () => {
    const caOne = await served('demo/ca:1.0');
    const ok = await tufaOk(
      ...verifyArgs('--root-ca', join(tmp, 'rootca', 'ca.crt'), '--cache-dir', join(tmp, 'c-ca')),
      `${caGun}:1.0`,
    );
    assert.equal(ok.stdout.trim(), `✔ ${caGun}:1.0 → ${caGun}@${caOne.digest}`);
    // the TLS CA is not the root CA; notary's own roots (demo/app) chain to no CA at all
    for (const [ca, ref] of [
      [join(tmp, 'tls', 'ca.crt'), `${caGun}:1.0`],
      [join(tmp, 'rootca', 'ca.crt'), image('1.0')],
    ] as const) {
      const r = await tufa(
        ...verifyArgs(
          '--root-ca',
          ca,
          '--cache-dir',
          join(tmp, `c-ca-${randomBytes(4).toString('hex')}`),
          '--json',
        ),
        ref,
      );
      assert.equal(r.status, 1, show(r));
      const [res] = JSON.parse(r.stdout) as Array<{ verified: boolean; error: { code: string } }>;
      assert.equal(res?.verified, false);
      assert.equal(res?.error.code, 'THRESHOLD_NOT_MET', show(r));
    }
  });

  it('a wrong root key pin is refused (exit 1, THRESHOLD_NOT_MET); no pin at all is a usage error (exit 2)', async () => {
    const wrong = await tufa(
      ...verifyArgs('--root-key', 'ab'.repeat(32), '--cache-dir', join(tmp, 'c-wrong'), '--json'),
      image('1.0'),
    );
    assert.equal(wrong.status, 1, show(wrong));
    assert.equal(
      (JSON.parse(wrong.stdout) as Array<{ error: { code: string } }>)[0]?.error.code,
      'THRESHOLD_NOT_MET',
    );
    // the root of demo/ca does not admit demo/app
    const other = await tufa(
      ...verifyArgs('--root-key', rootKeyId, '--cache-dir', join(tmp, 'c-other')),
      `${caGun}:1.0`,
    );
    assert.equal(other.status, 1, show(other));
    const none = await tufa(...verifyArgs('--cache-dir', join(tmp, 'c-none')), image('1.0'));
    assert.equal(none.status, 2, show(none));
    // the flags to give, not the policy file's fields (issue 16)
    assert.match(none.stderr, /--root-key.*--root-ca.*--tofu/);
    assert.doesNotMatch(none.stderr, /rootKeys/);
  });

  // issue 16: a malformed --root-key (here a private key pasted by mistake) is a usage error
  // naming the flag, and the value is not echoed
  it('a malformed --root-key is a usage error (exit 2) naming the flag, for verify and import', async () => {
    const pem = readFileSync(join(tmp, 'releases', 'releases.key'), 'utf8');
    for (const bad of [pem, 'abc123', 'ab'.repeat(31)]) {
      for (const args of [
        [...verifyArgs('--root-key', bad, '--cache-dir', join(tmp, 'c-bad')), image('1.0')],
        [
          'notary',
          'import',
          gun,
          '--server',
          notaryUrl,
          '--root-key',
          bad,
          '--into',
          join(tmp, 'nowhere'),
        ],
      ]) {
        const r = await tufa(...args);
        assert.equal(r.status, 2, show(r));
        assert.match(r.stderr, /--root-key/);
        assert.doesNotMatch(r.stderr, /PRIVATE KEY|MI[A-Za-z0-9+/]{20}/, 'the value is not echoed');
      }
    }
  });

  // issue 16: a GUN nobody signed has no trust data (notary-server answers 404 on root.json):
  // the image is unsigned (exit 1), not an outage (exit 3, which CI jobs retry)
  it('a GUN with no trust data is UNSIGNED_IMAGE (exit 1), not unavailable', async () => {
    const r = await tufa(
      ...verifyArgs('--root-key', rootKeyId, '--cache-dir', join(tmp, 'c-nodata'), '--json'),
      `${reg?.host}/demo/nothing:1.0`,
    );
    assert.equal(r.status, 1, show(r));
    const [res] = JSON.parse(r.stdout) as Array<{
      verified: boolean;
      error: { code: string; message: string };
    }>;
    assert.equal(res?.verified, false);
    assert.equal(res?.error.code, 'UNSIGNED_IMAGE', show(r));
    assert.match(res?.error.message ?? '', /no trust data/);
  });

  // issue 16: a pin of the root key of any version in the chain works for a new client; the
  // refusal of a wrong pin names the versions it checked
  it('pins across root rotations: the root key of v1, of a middle version and of the current one each verify from a fresh cache', async () => {
    const host = (reg as RegistryServer).host;
    const rotGun = `${host}/demo/rot`;
    const rot = await served('demo/rot:1.0');
    const rootJson = () =>
      JSON.parse(
        readFileSync(join(tmp, 'trust-rot', 'tuf', rotGun, 'metadata', 'root.json'), 'utf8'),
      ) as { signed: { version: number; roles: { root: { keyids: string[] } } } };
    const rootKeys = async () =>
      new Set(
        (await notary('trust-rot', 'key', 'list'))
          .toString()
          .split('\n')
          .filter((l) => /^root\s/.test(l))
          .map((l) => /\b[0-9a-f]{64}\b/.exec(l)?.[0] ?? ''),
      );
    await notary('trust-rot', 'init', rotGun, '-p');
    await notary(
      'trust-rot',
      'addhash',
      rotGun,
      '1.0',
      String(rot.bytes.length),
      '--sha256',
      rot.sha256,
      '-p',
    );
    const canonical = [...(await rootKeys())];
    assert.equal(canonical.length, 1);
    const certIds = [rootJson().signed.roles.root.keyids[0] as string];
    for (let i = 0; i < 2; i++) {
      const before = await rootKeys();
      // notary asks before rotating a root key
      await notaryWith('yes\n', 'trust-rot', 'key', 'rotate', rotGun, 'root');
      await notary('trust-rot', 'list', rotGun); // pulls the published root
      const added = [...(await rootKeys())].filter((k) => !before.has(k));
      assert.equal(
        added.length,
        1,
        `one new root key per rotation\n${(await notary('trust-rot', 'key', 'list')).toString()}\n${JSON.stringify(rootJson())}`,
      );
      canonical.push(added[0] as string);
      certIds.push(rootJson().signed.roles.root.keyids[0] as string);
    }
    const version = rootJson().signed.version;
    assert.ok(version >= 3, `root version ${version} after two rotations`);
    assert.equal(new Set(certIds).size, 3);
    // canonical IDs of v1, the middle version and the current one; the middle one's cert ID
    for (const [i, pin] of [...canonical, certIds[1] as string].entries()) {
      const r = await tufa(
        ...verifyArgs('--root-key', pin, '--cache-dir', join(tmp, `c-rot-${i}`)),
        `${rotGun}:1.0`,
      );
      assert.equal(r.status, 0, `pin ${i}\n${show(r)}`);
      assert.equal(r.stdout.trim(), `✔ ${rotGun}:1.0 → ${rotGun}@${rot.digest}`);
    }
    const wrong = await tufa(
      ...verifyArgs(
        '--root-key',
        'ab'.repeat(32),
        '--cache-dir',
        join(tmp, 'c-rot-wrong'),
        '--json',
      ),
      `${rotGun}:1.0`,
    );
    assert.equal(wrong.status, 1, show(wrong));
    const [res] = JSON.parse(wrong.stdout) as Array<{ error: { code: string; message: string } }>;
    assert.equal(res?.error.code, 'THRESHOLD_NOT_MET');
    assert.match(
      res?.error.message ?? '',
      new RegExp(
        `checked root\\.json \\(v${version}\\) and 1\\.root\\.json…${version - 1}\\.root\\.json`,
      ),
    );
  });

  it('the cache of a --tofu run does not let a later wrong pin through (tufa notary verify)', async () => {
    const cache = join(tmp, 'c-tofu-then-pin');
    await tufaOk(...verifyArgs('--tofu', '--cache-dir', cache), image('1.0'));
    const r = await tufa(
      ...verifyArgs('--root-key', 'ab'.repeat(32), '--cache-dir', cache),
      image('1.0'),
    );
    assert.equal(r.status, 1, show(r));
  });

  it('a tag nobody signed is UNSIGNED_IMAGE; a digest other than the signed one is DIGEST_MISMATCH', async () => {
    const r = await tufa(
      ...verifyArgs('--root-key', rootKeyId, '--cache-dir', join(tmp, 'c-unsigned'), '--json'),
      image('3.0'),
      `${gun}:1.0@${two.digest}`,
    );
    assert.equal(r.status, 1, show(r));
    const res = JSON.parse(r.stdout) as Array<{ error: { code: string } }>;
    assert.deepEqual(
      res.map((x) => x.error.code),
      ['UNSIGNED_IMAGE', 'DIGEST_MISMATCH'],
    );
  });

  it('a trust policy with a notary rule: tufa verify', async () => {
    const policy = join(tmp, 'notary-policy.json');
    writeFileSync(
      policy,
      JSON.stringify({
        rules: [
          {
            match: `${reg?.host}/demo/**`,
            notary: {
              server: notaryUrl,
              serverCa: join(tmp, 'tls', 'ca.crt'),
              rootKeys: [rootKeyId],
            },
          },
        ],
      }),
    );
    const r = await tufaOk(
      'verify',
      '--policy',
      policy,
      '--cache-dir',
      join(tmp, 'c-policy'),
      '--json',
      image('1.0'),
    );
    assert.match(r.stdout, new RegExp(`"${gun}@${one.digest}"`));
  });

  // migration (docs/docker-content-trust.md): tufa notary import, then sign and publish with
  // tufa repo, then a tuf rule. Plain `it`s: mocha runs a suite's own tests before its nested
  // suites, and the removal below must come last.
  {
    const ws = () => join(tmp, 'migrated');
    const keys = () => join(tmp, 'tuf-keys');

    it('migration: tufa notary import carries both tags over with the same digest and length', async () => {
      mkdirSync(keys());
      const roles = ['root', 'targets', 'snapshot', 'timestamp'] as const;
      for (const role of roles) {
        await tufaOk('key', 'generate', '--type', 'ed25519', '--out', join(keys(), role));
      }
      await tufaOk(
        'repo',
        '--repo',
        ws(),
        'init',
        ...roles.flatMap((role) => [`--${role}-key`, join(keys(), `${role}.pub.json`)]),
      );
      const r = await tufaOk(
        'notary',
        'import',
        gun,
        '--server',
        notaryUrl,
        '--server-ca',
        join(tmp, 'tls', 'ca.crt'),
        '--root-key',
        rootKeyId,
        '--cache-dir',
        join(tmp, 'c-import'),
        '--into',
        ws(),
        '--json',
      );
      const report = JSON.parse(r.stdout) as {
        gun: string;
        added: Array<Record<string, unknown>>;
        changed: unknown[];
        removed: unknown[];
        unchanged: unknown[];
        refused: unknown[];
      };
      assert.equal(report.gun, gun);
      assert.deepEqual(report.refused, []);
      assert.deepEqual(report.changed, []);
      assert.deepEqual(report.removed, []);
      assert.deepEqual(report.unchanged, []);
      assert.deepEqual(report.added, [
        {
          tag: '1.0',
          target: image('1.0'),
          digest: one.digest,
          length: one.bytes.length,
          from: 'targets',
          into: 'targets',
        },
        {
          tag: '2.0',
          target: image('2.0'),
          digest: two.digest,
          length: two.bytes.length,
          from: 'targets/releases',
          into: 'targets',
        },
      ]);
    });

    it('migration: signed and published with tufa repo, the images verify under a tuf rule with the same digests', async () => {
      await tufaOk('repo', '--repo', ws(), 'sign', '--role', 'root', '--key', join(keys(), 'root'));
      await tufaOk(
        'repo',
        '--repo',
        ws(),
        'sign',
        '--role',
        'targets',
        '--key',
        join(keys(), 'targets'),
      );
      await tufaOk('repo', '--repo', ws(), 'snapshot', '--key', join(keys(), 'snapshot'));
      await tufaOk('repo', '--repo', ws(), 'timestamp', '--key', join(keys(), 'timestamp'));
      const published = join(tmp, 'published');
      await tufaOk('repo', '--repo', ws(), 'publish', '--to', published);
      tufServer = await StaticServer.start(published);
      const policyDir = join(tmp, 'tuf-policy');
      mkdirSync(policyDir);
      writeFileSync(join(policyDir, 'root.json'), readFileSync(join(published, '1.root.json')));
      writeFileSync(
        join(policyDir, 'tufa-policy.json'),
        JSON.stringify({
          rules: [
            {
              match: `${reg?.host}/demo/**`,
              tuf: { metadataUrl: tufServer.url(), root: 'root.json' },
            },
          ],
        }),
      );
      const r = await tufaOk(
        'verify',
        '--policy',
        join(policyDir, 'tufa-policy.json'),
        '--cache-dir',
        join(tmp, 'c-tuf'),
        '--json',
        image('1.0'),
        image('2.0'),
      );
      const res = JSON.parse(r.stdout) as Array<{ pinned: string }>;
      assert.deepEqual(
        res.map((x) => x.pinned),
        [`${gun}@${one.digest}`, `${gun}@${two.digest}`],
      );
    });

    // A root trusted once (here with --tofu) must not satisfy a later, different --root-key: the
    // import's cache is keyed by the trust settings, as verify's is.
    it('tufa notary import refuses a wrong --root-key after an earlier --tofu import with the same cache', async () => {
      const cache = join(tmp, 'c-import-tofu');
      const other = join(tmp, 'migrated-2');
      await tufaOk(
        'repo',
        '--repo',
        other,
        'init',
        ...['root', 'targets', 'snapshot', 'timestamp'].flatMap((role) => [
          `--${role}-key`,
          join(keys(), `${role}.pub.json`),
        ]),
      );
      await tufaOk(
        'notary',
        'import',
        gun,
        '--server',
        notaryUrl,
        '--server-ca',
        join(tmp, 'tls', 'ca.crt'),
        '--tofu',
        '--cache-dir',
        cache,
        '--into',
        other,
      );
      const r = await tufa(
        'notary',
        'import',
        gun,
        '--server',
        notaryUrl,
        '--server-ca',
        join(tmp, 'tls', 'ca.crt'),
        '--root-key',
        'ab'.repeat(32),
        '--cache-dir',
        cache,
        '--into',
        other,
      );
      assert.equal(r.status, 1, `a wrong pin must be refused\n${show(r)}`);
    });
  }

  it('after notary remove + publish, the removed tag is refused and the other still verifies', async () => {
    await notary('trust-app', 'remove', gun, '1.0', '-p');
    const list = (await notary('trust-app', 'list', gun)).toString();
    assert.doesNotMatch(list, /^1\.0\s/m);
    const cache = join(tmp, 'c-key'); // the cache of the first verification: the removal is newer
    const r = await tufa(
      ...verifyArgs('--root-key', rootKeyId, '--cache-dir', cache, '--json'),
      image('1.0'),
      image('2.0'),
    );
    assert.equal(r.status, 1, show(r));
    const res = JSON.parse(r.stdout) as Array<{ verified: boolean; error?: { code: string } }>;
    assert.equal(res[0]?.verified, false);
    assert.equal(res[0]?.error?.code, 'UNSIGNED_IMAGE');
    assert.equal(res[1]?.verified, true);
  });
  // re-import (after the removal above): the workspace follows Notary, in one change
  function importArgs(into: string, ...extra: string[]): string[] {
    return [
      'notary',
      'import',
      gun,
      '--server',
      notaryUrl,
      '--server-ca',
      join(tmp, 'tls', 'ca.crt'),
      '--root-key',
      rootKeyId,
      '--cache-dir',
      join(tmp, 'c-import'),
      '--into',
      into,
      ...extra,
    ];
  }

  interface ImportReport {
    added: Array<{ tag: string; digest: string }>;
    changed: Array<{ tag: string; digest: string; was: string }>;
    removed: Array<{ tag: string; digest: string }>;
    unchanged: Array<{ tag: string }>;
    refused: Array<{ tag?: string; reason: string }>;
  }

  const wsTargets = () =>
    JSON.parse(readFileSync(join(tmp, 'migrated', 'metadata', 'targets.json'), 'utf8')) as {
      signed: { version: number; targets: Record<string, { hashes: { sha256: string } }> };
    };

  it('re-import after notary remove: the removed tag leaves the workspace (one new targets version), the other is unchanged', async () => {
    const before = wsTargets();
    assert.ok(before.signed.targets[image('1.0')], 'the first import listed 1.0');
    const r = await tufaOk(...importArgs(join(tmp, 'migrated'), '--json'));
    const report = JSON.parse(r.stdout) as ImportReport;
    assert.deepEqual(report.added, []);
    assert.deepEqual(report.changed, []);
    assert.deepEqual(
      report.removed.map((x) => [x.tag, x.digest]),
      [['1.0', one.digest]],
    );
    assert.deepEqual(
      report.unchanged.map((x) => x.tag),
      ['2.0'],
    );
    assert.deepEqual(report.refused, []);
    const after = wsTargets();
    assert.equal(after.signed.targets[image('1.0')], undefined);
    assert.equal(after.signed.targets[image('2.0')]?.hashes.sha256, two.sha256);
    assert.equal(after.signed.version, before.signed.version + 1);
    // nothing changed in Notary since: nothing to do, no new version
    const again = JSON.parse(
      (await tufaOk(...importArgs(join(tmp, 'migrated'), '--json'))).stdout,
    ) as ImportReport;
    assert.deepEqual(
      [again.added, again.changed, again.removed, again.unchanged.map((x) => x.tag)],
      [[], [], [], ['2.0']],
    );
    assert.equal(wsTargets().signed.version, after.signed.version);
  });

  it('re-import: added, changed and refused tags are reported; a refused tag makes the import exit 1', async () => {
    // 3.0 added (in targets), 2.0 re-signed with the manifest of 1.0, and a name that is no tag
    await notary(
      'trust-app',
      'addhash',
      gun,
      '3.0',
      String(two.bytes.length),
      '--sha256',
      two.sha256,
      '-p',
    );
    await notary(
      'trust-app',
      'addhash',
      gun,
      '2.0',
      String(one.bytes.length),
      '--sha256',
      one.sha256,
      '-r',
      'targets/releases',
      '-p',
    );
    await notary(
      'trust-app',
      'addhash',
      gun,
      '.not-a-tag',
      String(one.bytes.length),
      '--sha256',
      one.sha256,
      '-p',
    );
    const r = await tufa(...importArgs(join(tmp, 'migrated'), '--json'));
    assert.equal(r.status, 1, `a refused tag must fail the import\n${show(r)}`);
    const report = JSON.parse(r.stdout) as ImportReport;
    assert.deepEqual(
      report.added.map((x) => [x.tag, x.digest]),
      [['3.0', two.digest]],
    );
    assert.deepEqual(
      report.changed.map((x) => [x.tag, x.digest, x.was]),
      [['2.0', one.digest, two.digest]],
    );
    assert.deepEqual(report.removed, []);
    assert.deepEqual(report.unchanged, []);
    assert.deepEqual(
      report.refused.map((x) => x.tag),
      ['.not-a-tag'],
    );
    const t = wsTargets().signed.targets;
    assert.equal(t[image('2.0')]?.hashes.sha256, one.sha256);
    assert.equal(t[image('3.0')]?.hashes.sha256, two.sha256);
    // the text report names each kind
    const text = await tufa(...importArgs(join(tmp, 'migrated')));
    assert.equal(text.status, 1, show(text));
    assert.match(text.stdout, /0 added, 0 changed, 0 removed, 2 unchanged, 1 refused/);
  });
  // login: a private GUN on a notary-server with token auth (its own token service on another
  // origin, as notary.docker.io's is auth.docker.io), the image on a registry with token auth of
  // its own; credentials from the Docker config or --username/--password-stdin
  describe('a private GUN on a notary-server with token auth', () => {
    const notaryAccount = {
      username: 'notary-user',
      password: `notary-pw-${randomBytes(9).toString('base64url')}`,
    };
    let notaryIssuer: TokenIssuer | undefined;
    let privateServer: Daemon | undefined;
    let privateReg: RegistryServer | undefined;
    let privateUrl: string;
    let privateGun: string;
    let privateKeyId: string;
    let privateOne: Served;

    const basic = (a: { username: string; password: string }) =>
      Buffer.from(`${a.username}:${a.password}`).toString('base64');

    /** dockerConfig writes a Docker config with these auths and returns its folder. */
    function dockerConfig(
      name: string,
      auths: Record<string, { username: string; password: string }>,
    ) {
      const dir = join(tmp, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, 'config.json'),
        JSON.stringify({
          auths: Object.fromEntries(
            Object.entries(auths).map(([host, a]) => [host, { auth: basic(a) }]),
          ),
        }),
      );
      return dir;
    }

    async function tufaWith(dockerDir: string, input: string | undefined, ...args: string[]) {
      const r = await run(process.execPath, [TUFA_BIN, ...args], {
        env: { ...env, DOCKER_CONFIG: dockerDir },
        cwd: tmp,
        timeoutMs: 60_000,
        ...(input === undefined ? {} : { input }),
      });
      assert.equal(r.timedOut, false, `tufa ${args.join(' ')} timed out`);
      const out = { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
      // the password is never printed, not even in an error
      assert.ok(!`${out.stdout}${out.stderr}`.includes(notaryAccount.password), show(out));
      assert.ok(!`${out.stdout}${out.stderr}`.includes(basic(notaryAccount)), show(out));
      return out;
    }

    const privateArgs = (cache: string, ...extra: string[]) => [
      'notary',
      'verify',
      '--server',
      privateUrl,
      '--server-ca',
      join(tmp, 'tls', 'ca.crt'),
      '--root-key',
      privateKeyId,
      '--cache-dir',
      join(tmp, cache),
      '--json',
      ...extra,
      `${privateGun}:1.0`,
    ];

    /** The notary token service got the notary account, the registry's never did. */
    function credentialsStayed(): void {
      const gunScope = `repository:${privateGun}:pull`;
      const granted = (notaryIssuer as TokenIssuer).requests.filter(
        (q) =>
          q.status === 200 && q.scopes.some((sc) => sc.startsWith(`repository:${privateGun}:`)),
      );
      assert.ok(granted.length > 0, 'the notary token service issued a token');
      assert.ok(
        granted.every((q) => q.username === notaryAccount.username),
        JSON.stringify(granted),
      );
      assert.ok(
        (notaryIssuer as TokenIssuer).requestsFor(gunScope).length > 0,
        'a pull token of the GUN was asked for',
      );
      for (const q of (notaryIssuer as TokenIssuer).requests)
        assert.notEqual(
          q.password,
          TEST_ACCOUNT.password,
          'registry password sent to the notary token service',
        );
      for (const q of privateReg?.issuer?.requests ?? [])
        assert.notEqual(
          q.password,
          notaryAccount.password,
          'notary password sent to the registry token service',
        );
    }

    before(async function () {
      this.timeout(300_000);
      if (tmp === undefined || grpcPort === undefined) this.skip();
      const t = join(tmp, 'notary-token');
      mkdirSync(t);
      await openssl(
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(t, 'signing.key'),
        '-out',
        join(t, 'signing.crt'),
        '-days',
        '2',
        '-subj',
        '/CN=tufa notary token issuer',
      );
      notaryIssuer = await TokenIssuer.start({
        keyPem: readFileSync(join(t, 'signing.key'), 'utf8'),
        certPem: readFileSync(join(t, 'signing.crt'), 'utf8'),
        issuer: 'tufa-notary-issuer',
        service: 'notary-server',
        account: notaryAccount,
      });
      const tls = (f: string) => join(tmp, 'tls', f);
      const port = await freePort();
      privateUrl = `https://127.0.0.1:${port}`;
      writeFileSync(
        join(tmp, 'server-token.json'),
        JSON.stringify({
          server: {
            http_addr: `127.0.0.1:${port}`,
            tls_cert_file: tls('server.crt'),
            tls_key_file: tls('server.key'),
          },
          trust_service: {
            type: 'remote',
            hostname: '127.0.0.1',
            port: String(grpcPort),
            tls_ca_file: tls('ca.crt'),
            key_algorithm: 'ecdsa',
            tls_client_cert: tls('server.crt'),
            tls_client_key: tls('server.key'),
          },
          auth: {
            type: 'token',
            options: {
              realm: notaryIssuer.realm,
              service: notaryIssuer.service,
              issuer: notaryIssuer.issuer,
              rootcertbundle: join(t, 'signing.crt'),
            },
          },
          logging: { level: 'info' },
          storage: { backend: 'memory' },
        }),
      );
      privateServer = new Daemon(
        'notary-server (token auth)',
        'notary-server',
        ['-config', join(tmp, 'server-token.json')],
        { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: join(tmp, 'home') },
      );
      await waitFor(
        `${privateUrl}/_notary_server/health`,
        20_000,
        async () => (await httpsStatus(`${privateUrl}/_notary_server/health`, tlsCaPem)) === 200,
        privateServer,
      );
      privateReg = await RegistryServer.start('token');
      const layout = join(tmp, 'build', 'layout');
      await privateReg.push(`oci:${layout}:one`, 'private/app:1.0');
      const bytes = await privateReg.inspectRaw('private/app:1.0');
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      privateOne = { bytes, sha256, digest: `sha256:${sha256}` };
      privateGun = `${privateReg.host}/private/app`;
      const authed = { ...notaryEnv, NOTARY_AUTH: basic(notaryAccount) };
      await notaryAt(privateUrl, authed, undefined, 'trust-private', 'init', privateGun, '-p');
      await notaryAt(
        privateUrl,
        authed,
        undefined,
        'trust-private',
        'addhash',
        privateGun,
        '1.0',
        String(bytes.length),
        '--sha256',
        sha256,
        '-p',
      );
      const keyList = (
        await notaryAt(privateUrl, authed, undefined, 'trust-private', 'key', 'list')
      ).toString();
      privateKeyId =
        /\b[0-9a-f]{64}\b/.exec(keyList.split('\n').find((l) => /^root\s/.test(l)) ?? '')?.[0] ??
        '';
      assert.match(privateKeyId, /^[0-9a-f]{64}$/, keyList);
    });

    after(async function () {
      this.timeout(60_000);
      await privateServer?.stop();
      await notaryIssuer?.close();
      await privateReg?.close();
    });

    it('the server wants a token: anonymous, the verification fails with HTTP 401 and how to log in (exit 2: configuration, not an outage)', async () => {
      const dir = dockerConfig('docker-registry-only', {
        [privateReg?.host as string]: TEST_ACCOUNT,
      });
      const r = await tufaWith(dir, undefined, ...privateArgs('c-private-anon'));
      assert.equal(r.status, 2, show(r));
      const [res] = JSON.parse(r.stdout) as Array<{
        verified: boolean;
        error: { code: string; message: string };
      }>;
      assert.equal(res?.verified, false);
      assert.equal(res?.error.code, 'HTTP_STATUS', show(r));
      assert.match(res?.error.message ?? '', /HTTP 401/, show(r));
      assert.match(res?.error.message ?? '', /--username|docker login/, show(r));
      // the registry's credentials never went to the notary token service
      for (const q of (notaryIssuer as TokenIssuer).requests)
        assert.notEqual(q.password, TEST_ACCOUNT.password);
    });

    it('credentials from the Docker config (auths) for the notary host: verified; they reached only the notary token service', async () => {
      const dir = dockerConfig('docker-both', {
        [new URL(privateUrl).host]: notaryAccount,
        [privateReg?.host as string]: TEST_ACCOUNT,
      });
      const r = await tufaWith(dir, undefined, ...privateArgs('c-private-config'));
      assert.equal(r.status, 0, show(r));
      const [res] = JSON.parse(r.stdout) as Array<{ pinned: string }>;
      assert.equal(res?.pinned, `${privateGun}@${privateOne.digest}`);
      credentialsStayed();
    });

    it('--username + --password-stdin: verified; a wrong password fails without showing it', async () => {
      const dir = dockerConfig('docker-registry-only-2', {
        [privateReg?.host as string]: TEST_ACCOUNT,
      });
      (notaryIssuer as TokenIssuer).requests.length = 0;
      const r = await tufaWith(
        dir,
        `${notaryAccount.password}\n`,
        ...privateArgs('c-private-flags', '--username', notaryAccount.username, '--password-stdin'),
      );
      assert.equal(r.status, 0, show(r));
      credentialsStayed();
      const wrong = `wrong-${randomBytes(6).toString('hex')}`;
      const bad = await tufaWith(
        dir,
        wrong,
        ...privateArgs('c-private-wrong', '--username', notaryAccount.username, '--password-stdin'),
      );
      assert.equal(bad.status, 2, show(bad));
      assert.ok(!`${bad.stdout}${bad.stderr}`.includes(wrong), show(bad));
      // --password-stdin without --username (and the reverse) is a usage error
      const half = await tufaWith(dir, 'x', ...privateArgs('c-private-half', '--password-stdin'));
      assert.equal(half.status, 2, show(half));
      const other = await tufaWith(
        dir,
        undefined,
        ...privateArgs('c-private-half', '--username', 'u'),
      );
      assert.equal(other.status, 2, show(other));
    });

    it('a notary rule of a trust policy uses the Docker config credentials of the notary host (tufa verify)', async () => {
      const dir = dockerConfig('docker-both-2', {
        [new URL(privateUrl).host]: notaryAccount,
        [privateReg?.host as string]: TEST_ACCOUNT,
      });
      const policy = join(tmp, 'private-policy.json');
      writeFileSync(
        policy,
        JSON.stringify({
          rules: [
            {
              match: `${privateReg?.host}/private/**`,
              notary: {
                server: privateUrl,
                serverCa: join(tmp, 'tls', 'ca.crt'),
                rootKeys: [privateKeyId],
              },
            },
          ],
        }),
      );
      const r = await tufaWith(
        dir,
        undefined,
        'verify',
        '--policy',
        policy,
        '--cache-dir',
        join(tmp, 'c-private-policy'),
        '--json',
        `${privateGun}:1.0`,
      );
      assert.equal(r.status, 0, show(r));
      credentialsStayed();
    });

    it('tufa notary import of the private GUN with --username + --password-stdin', async () => {
      const into = join(tmp, 'migrated-private');
      await tufaOk(
        'repo',
        '--repo',
        into,
        'init',
        ...['root', 'targets', 'snapshot', 'timestamp'].flatMap((role) => [
          `--${role}-key`,
          join(tmp, 'tuf-keys', `${role}.pub.json`),
        ]),
      );
      const dir = dockerConfig('docker-empty', {});
      const args = [
        'notary',
        'import',
        privateGun,
        '--server',
        privateUrl,
        '--server-ca',
        join(tmp, 'tls', 'ca.crt'),
        '--root-key',
        privateKeyId,
        '--cache-dir',
        join(tmp, 'c-private-import'),
        '--into',
        into,
        '--json',
      ];
      const anon = await tufaWith(dir, undefined, ...args);
      assert.equal(anon.status, 2, show(anon));
      const r = await tufaWith(
        dir,
        notaryAccount.password,
        ...args,
        '--username',
        notaryAccount.username,
        '--password-stdin',
      );
      assert.equal(r.status, 0, show(r));
      const report = JSON.parse(r.stdout) as { added: Array<{ tag: string; digest: string }> };
      assert.deepEqual(
        report.added.map((x) => [x.tag, x.digest]),
        [['1.0', privateOne.digest]],
      );
    });
  });
});
