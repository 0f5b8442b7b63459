/**
 * `tufa verify` and `tufa pull` end to end, as a platform team runs them: images built with
 * umoci and pushed with skopeo to a real registry (CNCF distribution 2.8, plain HTTP on
 * loopback; a second one with htpasswd auth for credentials from $DOCKER_CONFIG), signed with `tufa key generate` + `tufa repo init/add-image/sign/snapshot/
 * timestamp/publish`, the TUF repository served over HTTP, a trust policy file, and the CLI run
 * as a subprocess. Pulled layouts and archives are read back with skopeo.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, MEDIA_TYPES } from '../../src/oci/index.js';
import { ROOT, TUFA_BIN } from '../support/paths.js';
import {
  type BuiltImage,
  buildImage,
  buildIndex,
  corruptFile,
  inspectLocal,
  RegistryServer,
  type RunResult,
  run,
  skipReason,
} from '../support/registry.js';
import { StaticServer } from '../support/static-server.js';

interface Cli {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function show(r: Cli): string {
  return `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l.length > 0);
}

describe('tufa verify and tufa pull against a real registry (CLI, integration)', function () {
  this.timeout(60_000);
  let tmp: string;
  let reg: RegistryServer;
  /** A registry that wants a password (htpasswd). */
  let authReg: RegistryServer;
  let tuf: StaticServer;
  let policyFile: string;
  let env: NodeJS.ProcessEnv;

  let app: BuiltImage;
  let retagA: BuiltImage;
  let retagB: BuiltImage;
  let gone: BuiltImage;
  let corrupt: BuiltImage;
  let amd: BuiltImage;
  let arm: BuiltImage;
  let multi: BuiltImage;
  /** The same image as app, pushed as Docker schema 2 under demo/app: another digest. */
  let appDockerDigest: string;

  /** tufa runs the CLI asynchronously (the TUF server lives in this process), 30 s at most. */
  async function tufa(...args: string[]): Promise<Cli> {
    return tufaWith(env, ...args);
  }

  async function tufaWith(environment: NodeJS.ProcessEnv, ...args: string[]): Promise<Cli> {
    const r: RunResult = await run(process.execPath, [TUFA_BIN, ...args], {
      env: environment,
      cwd: tmp,
      timeoutMs: 30_000,
    });
    assert.equal(r.timedOut, false, `tufa ${args.join(' ')} timed out`);
    return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
  }

  async function tufaOk(...args: string[]): Promise<Cli> {
    const r = await tufa(...args);
    assert.equal(r.status, 0, `tufa ${args.join(' ')}\n${show(r)}`);
    return r;
  }

  /** The verification options every call shares. */
  function opts(): string[] {
    return ['--policy', policyFile, '--cache-dir', join(tmp, 'cache')];
  }

  const image = (ref: string) => `${reg.host}/${ref}`;

  before(async function () {
    this.timeout(180_000);
    const why = skipReason();
    if (why !== undefined) {
      process.stderr.write(`  skipping the verify/pull CLI integration tests: ${why}\n`);
      this.skip();
    }
    tmp = mkdtempSync(join(tmpdir(), 'tufa-verify-pull-cli-'));
    mkdirSync(join(tmp, 'docker'));
    env = {
      ...process.env,
      DOCKER_CONFIG: join(tmp, 'docker'),
      XDG_CACHE_HOME: join(tmp, 'xdg-cache'),
      NO_COLOR: '1',
    };
    delete env.TUFA_POLICY;
    delete env.TUFA_KEY_PASSPHRASE;

    // images
    const layout = join(tmp, 'build', 'layout');
    const unique = (what: string) => `${what} ${randomBytes(8).toString('hex')}\n`;
    app = await buildImage(`${layout}:app`, {
      '/etc/app.conf': unique('app'),
      '/bin/app': unique('bin'),
    });
    retagA = await buildImage(`${layout}:retag-a`, { '/v.txt': unique('retag A') });
    retagB = await buildImage(`${layout}:retag-b`, { '/v.txt': unique('retag B') });
    gone = await buildImage(`${layout}:gone`, { '/g.txt': unique('gone') });
    corrupt = await buildImage(`${layout}:corrupt`, { '/c.bin': randomBytes(64 * 1024) });
    amd = await buildImage(
      `${layout}:amd64`,
      { '/arch': unique('amd64') },
      { os: 'linux', architecture: 'amd64' },
    );
    arm = await buildImage(
      `${layout}:arm64`,
      { '/arch': unique('arm64') },
      { os: 'linux', architecture: 'arm64' },
    );
    multi = await buildIndex(`${layout}:multi`, [
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);

    // the registry
    reg = await RegistryServer.start('plain');
    await reg.push(app.ref, 'demo/app:1.0');
    await reg.push(app.ref, 'demo/app:2.0'); // never signed
    await reg.push(app.ref, 'other/app:1.0'); // no policy rule
    appDockerDigest = await reg.push(app.ref, 'demo/app:1.0-docker', { format: 'v2s2' });
    await reg.push(retagA.ref, 'demo/retag:1.0');
    await reg.push(gone.ref, 'demo/gone:1.0');
    await reg.push(corrupt.ref, 'demo/corrupt:1.0');
    await reg.push(multi.ref, 'demo/multi:1.0', { all: true });
    authReg = await RegistryServer.start('htpasswd');
    await authReg.push(app.ref, 'demo/private:1.0');

    // signing, as a release engineer would: the manifests exactly as the registry serves them
    const ws = join(tmp, 'tuf-workspace');
    const keys = join(tmp, 'keys');
    mkdirSync(keys);
    const roles = ['root', 'targets', 'snapshot', 'timestamp'] as const;
    for (const role of roles) {
      await tufaOk('key', 'generate', '--type', 'ed25519', '--out', join(keys, role));
    }
    await tufaOk(
      'repo',
      '--repo',
      ws,
      'init',
      ...roles.flatMap((role) => [`--${role}-key`, join(keys, `${role}.pub.json`)]),
    );
    const manifests = join(tmp, 'manifests');
    mkdirSync(manifests);
    for (const ref of [
      'demo/app:1.0',
      'demo/retag:1.0',
      'demo/gone:1.0',
      'demo/corrupt:1.0',
      'demo/multi:1.0',
    ]) {
      const file = join(manifests, `${ref.replace(/[/:]/g, '_')}.json`);
      writeFileSync(file, await reg.inspectRaw(ref));
      await tufaOk('repo', '--repo', ws, 'add-image', image(ref), '--manifest', file);
    }
    const privateManifest = join(manifests, 'private.json');
    writeFileSync(privateManifest, await authReg.inspectRaw('demo/private:1.0'));
    await tufaOk(
      'repo',
      '--repo',
      ws,
      'add-image',
      `${authReg.host}/demo/private:1.0`,
      '--manifest',
      privateManifest,
    );
    await tufaOk('repo', '--repo', ws, 'sign', '--role', 'root', '--key', join(keys, 'root'));
    await tufaOk('repo', '--repo', ws, 'sign', '--role', 'targets', '--key', join(keys, 'targets'));
    await tufaOk('repo', '--repo', ws, 'snapshot', '--key', join(keys, 'snapshot'));
    await tufaOk('repo', '--repo', ws, 'timestamp', '--key', join(keys, 'timestamp'));
    const published = join(tmp, 'published');
    await tufaOk('repo', '--repo', ws, 'publish', '--to', published);
    tuf = await StaticServer.start(published);

    // the platform team's policy, with the trusted root beside it
    const policyDir = join(tmp, 'policy');
    mkdirSync(policyDir);
    copyFileSync(join(published, '1.root.json'), join(policyDir, 'root.json'));
    policyFile = join(policyDir, 'tufa-policy.json');
    writeFileSync(
      policyFile,
      JSON.stringify({
        rules: [reg.host, authReg.host].map((host) => ({
          match: `${host}/demo/**`,
          tuf: { metadataUrl: tuf.url(), root: 'root.json' },
        })),
      }),
    );
  });

  after(async () => {
    await tuf?.close();
    await reg?.close();
    await authReg?.close();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  /** outDir returns a new empty folder for one test's outputs. */
  function outDir(): string {
    return mkdtempSync(join(tmp, 'out-'));
  }

  it('verify prints the pinned registry/repo@sha256 of the signed manifest and exits 0', async () => {
    const served = digestOf(await reg.inspectRaw('demo/app:1.0'));
    assert.equal(served, app.digest);
    const r = await tufaOk('verify', image('demo/app:1.0'), ...opts());
    assert.equal(r.stdout, `✔ ${image('demo/app:1.0')} → ${reg.host}/demo/app@${app.digest}\n`);
  });

  it('verify --json prints results that parse', async () => {
    const r = await tufaOk('verify', image('demo/app:1.0'), '--json', ...opts());
    const [res, ...more] = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    assert.equal(more.length, 0);
    assert.equal(res?.verified, true);
    assert.equal(res?.pinned, `${reg.host}/demo/app@${app.digest}`);
    assert.equal(res?.digest, app.digest);
    assert.equal(res?.target, image('demo/app:1.0'));
    assert.equal(res?.length, app.size);
    assert.equal(res?.mediaType, MEDIA_TYPES.ociManifest);
    assert.equal(res?.rule, `${reg.host}/demo/**`);

    const mixed = await tufa(
      'verify',
      image('demo/app:1.0'),
      image('demo/app:2.0'),
      '--json',
      ...opts(),
    );
    assert.equal(mixed.status, 1, show(mixed));
    const both = JSON.parse(mixed.stdout) as Array<{ verified: boolean; error?: { code: string } }>;
    assert.deepEqual(
      both.map((b) => [b.verified, b.error?.code]),
      [
        [true, undefined],
        [false, 'UNSIGNED_IMAGE'],
      ],
    );
  });

  it('refuses an unsigned tag: exit 1, one line naming UNSIGNED_IMAGE', async () => {
    const r = await tufa('verify', image('demo/app:2.0'), ...opts());
    assert.equal(r.status, 1, show(r));
    assert.equal(r.stdout, '', show(r));
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /^✘ .*demo\/app:2\.0: refused \(UNSIGNED_IMAGE\)/);
    assert.doesNotMatch(r.stdout, /sha256:/, 'no digest to deploy');
  });

  it('refuses an image no rule matches: exit 1, NO_POLICY', async () => {
    const r = await tufa('verify', image('other/app:1.0'), ...opts());
    assert.equal(r.status, 1, show(r));
    assert.equal(r.stdout, '', show(r));
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /refused \(NO_POLICY\)/);
  });

  it('refuses a reference whose digest is not the signed one: exit 1, DIGEST_MISMATCH', async () => {
    // the same image as Docker schema 2: in the registry, but not what was signed
    const r = await tufa('verify', `${image('demo/app:1.0')}@${appDockerDigest}`, ...opts());
    assert.equal(r.status, 1, show(r));
    assert.equal(r.stdout, '', show(r));
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /refused \(DIGEST_MISMATCH\)/);
  });

  it('exits 3 when the registry is down, and verifies again when it is back', async function () {
    this.timeout(60_000);
    await reg.stop();
    try {
      const r = await tufa('verify', image('demo/app:1.0'), ...opts());
      assert.equal(r.status, 3, show(r));
      assert.match(r.stderr, /REGISTRY_UNAVAILABLE/);
    } finally {
      await reg.restart();
    }
    await tufaOk('verify', image('demo/app:1.0'), ...opts());
  });

  it('pull --output oci:DIR writes a layout skopeo reads, with the signed digest', async () => {
    const dir = join(outDir(), 'app');
    const r = await tufaOk(
      'pull',
      image('demo/app:1.0'),
      '--output',
      `oci:${dir}`,
      '--json',
      ...opts(),
    );
    const res = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(res.digest, app.digest);
    assert.equal(res.manifest, app.digest);
    assert.equal(res.blobs, 2);
    const seen = await inspectLocal(`oci:${dir}:1.0`);
    assert.equal(seen.Digest, app.digest);
    assert.equal(seen.Layers?.length, 1);
  });

  it('pull --output oci-archive:FILE writes an archive skopeo reads, with the signed digest', async () => {
    const parent = outDir();
    const file = join(parent, 'app.tar');
    const r = await tufaOk(
      'pull',
      image('demo/app:1.0'),
      '--output',
      `oci-archive:${file}`,
      ...opts(),
    );
    assert.match(r.stdout, new RegExp(`→ ${reg.host}/demo/app@${app.digest}`));
    assert.equal((await inspectLocal(`oci-archive:${file}:1.0`)).Digest, app.digest);
    assert.deepEqual(readdirSync(parent), ['app.tar'], 'nothing else beside it');
  });

  /** tufaUmask runs the CLI under a umask (through sh, as a shell would set it). */
  async function tufaUmask(mask: string, ...args: string[]): Promise<Cli> {
    const r: RunResult = await run(
      '/bin/sh',
      ['-c', `umask ${mask} && exec "$0" "$@"`, process.execPath, TUFA_BIN, ...args],
      { env, cwd: tmp, timeoutMs: 30_000 },
    );
    return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
  }

  /** modes lists every path under a folder with its permission bits. */
  function modes(root: string): Map<string, number> {
    const m = new Map<string, number>([['.', statSync(root).mode & 0o777]]);
    for (const e of readdirSync(root, { recursive: true }) as string[])
      m.set(e, statSync(join(root, e)).mode & 0o777);
    return m;
  }

  it('pull: the layout follows the umask (0755/0644 under 022, as skopeo writes), quiet when stderr is no terminal', async () => {
    for (const [mask, dirMode, fileMode, extra] of [
      ['022', 0o755, 0o644, []],
      ['027', 0o750, 0o640, ['--quiet']],
    ] as const) {
      const dir = join(outDir(), 'app');
      const r = await tufaUmask(
        mask,
        'pull',
        image('demo/app:1.0'),
        '--output',
        `oci:${dir}`,
        ...extra,
        ...opts(),
      );
      assert.equal(r.status, 0, show(r));
      assert.equal(r.stderr, '', 'no progress and no diagnostics off a terminal');
      const seen = modes(dir);
      assert.ok(seen.size >= 6, [...seen.keys()].join(' '));
      for (const [path, mode] of seen) {
        const isDir = statSync(join(dir, path)).isDirectory();
        assert.equal(
          mode,
          isDir ? dirMode : fileMode,
          `umask ${mask}: ${path} is 0${mode.toString(8)}`,
        );
      }
    }
  });

  it('--ca with a certificate keeps a loopback registry on plain HTTP, and says so', async () => {
    const ca = join(ROOT, 'test', 'vectors', 'notary-v1', 'keys', 'rsa-root.crt');
    const r = await tufaOk('verify', image('demo/app:1.0'), '--ca', ca, ...opts());
    assert.equal(r.stdout, `✔ ${image('demo/app:1.0')} → ${reg.host}/demo/app@${app.digest}\n`);
    assert.match(
      r.stderr,
      new RegExp(
        `${reg.host.replace(/\./g, '\\.')}: plain HTTP \\(a loopback registry.*--https ${reg.host.replace(/\./g, '\\.')}`,
      ),
    );
  });

  it('oci-archive: pulled under a full name, verify finds it again; messages name the archive, not a temp folder', async () => {
    const file = join(outDir(), 'named.tar');
    const name = image('demo/app:1.0');
    await tufaOk('pull', name, '--output', `oci-archive:${file}:${name}`, ...opts());
    const again = await tufaOk('verify', `oci-archive:${file}:${name}`, ...opts());
    assert.match(again.stdout, new RegExp(`→ ${reg.host}/demo/app@${app.digest}`));
    const other = await tufa('verify', `oci-archive:${file}:${image('demo/app:9.9')}`, ...opts());
    assert.notEqual(other.status, 0, show(other));
    assert.ok(other.stderr.includes(file), show(other));
    assert.doesNotMatch(other.stderr + other.stdout, /tufa-archive-/, 'no temp folder named');
  });

  it('oci-archive: pulled without a name, verify of the archive alone finds it again (its full name is annotated); skopeo still reads the tag', async () => {
    const file = join(outDir(), 'unnamed.tar');
    await tufaOk('pull', image('demo/app:1.0'), '--output', `oci-archive:${file}`, ...opts());
    const again = await tufaOk('verify', `oci-archive:${file}`, ...opts());
    assert.match(again.stdout, new RegExp(`→ ${reg.host}/demo/app@${app.digest}`));
    assert.equal((await inspectLocal(`oci-archive:${file}:1.0`)).Digest, app.digest);
    // a layout whose image carries no full name: the name must be given
    const dir = join(outDir(), 'unnamed-layout');
    await tufaOk('pull', image('demo/app:1.0'), '--output', `oci:${dir}`, ...opts());
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
      manifests: Array<{ annotations?: Record<string, string> }>;
    };
    assert.equal(
      index.manifests[0]?.annotations?.['io.containerd.image.name'],
      image('demo/app:1.0'),
    );
    delete index.manifests[0]?.annotations?.['io.containerd.image.name'];
    writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
    const bare = await tufa('verify', `oci:${dir}`, ...opts());
    assert.equal(bare.status, 2, show(bare));
    assert.match(bare.stderr, /give the image's full name/);
  });

  it('re-tag: a new image under the signed tag is not trusted; the signed digest is fetched', async () => {
    const newDigest = await reg.push(retagB.ref, 'demo/retag:1.0');
    assert.equal(newDigest, retagB.digest);
    assert.equal(digestOf(await reg.inspectRaw('demo/retag:1.0')), retagB.digest, 'tag moved');

    const ok = await tufaOk('verify', image('demo/retag:1.0'), ...opts());
    assert.match(ok.stdout, new RegExp(`→ ${reg.host}/demo/retag@${retagA.digest}\\n$`));

    const refused = await tufa('verify', `${image('demo/retag:1.0')}@${retagB.digest}`, ...opts());
    assert.equal(refused.status, 1, show(refused));
    assert.match(refused.stderr, /refused \(DIGEST_MISMATCH\)/);

    const dir = join(outDir(), 'retag');
    await tufaOk('pull', image('demo/retag:1.0'), '--output', `oci:${dir}`, ...opts());
    assert.equal((await inspectLocal(`oci:${dir}:1.0`)).Digest, retagA.digest);
  });

  it('refuses an image whose signed manifest was deleted from the registry', async () => {
    await tufaOk('verify', image('demo/gone:1.0'), ...opts());
    assert.equal(await reg.deleteManifest('demo/gone', gone.digest), 202);
    const r = await tufa('verify', image('demo/gone:1.0'), ...opts());
    assert.equal(r.status, 1, show(r));
    assert.equal(r.stdout, '', show(r));
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /refused \(DIGEST_MISMATCH\).*does not have the signed manifest/);
  });

  it('pull of an image with a corrupted layer fails and leaves nothing behind', async () => {
    const manifest = JSON.parse(corrupt.manifest.toString()) as {
      layers: Array<{ digest: string }>;
    };
    const layer = manifest.layers[0]?.digest as string;
    await corruptFile(reg.storagePath('demo/corrupt', layer), 'flip');
    // the manifest is intact: verify passes, only pull reads the layer
    await tufaOk('verify', image('demo/corrupt:1.0'), ...opts());
    for (const output of ['oci:DEST', 'oci-archive:DEST']) {
      const parent = outDir();
      const dest = join(parent, 'image');
      const r = await tufa(
        'pull',
        image('demo/corrupt:1.0'),
        '--output',
        output.replace('DEST', dest),
        ...opts(),
      );
      assert.notEqual(r.status, 0, show(r));
      assert.equal(r.status, 1, `a refusal, not an outage\n${show(r)}`);
      assert.match(r.stderr + r.stdout, /DIGEST_MISMATCH/);
      assert.deepEqual(
        readdirSync(parent),
        [],
        `${output}: no output and no temp folder beside it`,
      );
    }
  });

  it('multi-arch index: verify --platform accepts a listed platform and refuses another', async () => {
    const ok = await tufaOk(
      'verify',
      image('demo/multi:1.0'),
      '--platform',
      'linux/arm64',
      '--json',
      ...opts(),
    );
    const [res] = JSON.parse(ok.stdout) as Array<Record<string, unknown>>;
    assert.equal(res?.digest, multi.digest);
    assert.equal(res?.mediaType, MEDIA_TYPES.ociIndex);
    assert.equal(res?.platformDigest, arm.digest);

    const r = await tufa('verify', image('demo/multi:1.0'), '--platform', 'linux/s390x', ...opts());
    assert.equal(r.status, 1, show(r));
    assert.equal(r.stdout, '', show(r));
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /refused \(UNSIGNED_IMAGE\).*linux\/s390x/);
  });

  it('multi-arch index: pull --platform linux/arm64 pulls that manifest (default linux/amd64)', async () => {
    const dir = join(outDir(), 'arm');
    await tufaOk(
      'pull',
      image('demo/multi:1.0'),
      '--platform',
      'linux/arm64',
      '--output',
      `oci:${dir}`,
      ...opts(),
    );
    const seen = await inspectLocal(`oci:${dir}:1.0`);
    assert.equal(seen.Digest, arm.digest);
    assert.equal(seen.Architecture, 'arm64');

    const def = join(outDir(), 'default');
    await tufaOk('pull', image('demo/multi:1.0'), '--output', `oci:${def}`, ...opts());
    const amdSeen = await inspectLocal(`oci:${def}:1.0`);
    assert.equal(amdSeen.Digest, amd.digest);
    assert.equal(amdSeen.Architecture, 'amd64');
  });

  it('reads registry credentials from $DOCKER_CONFIG/config.json (htpasswd registry)', async () => {
    const ref = `${authReg.host}/demo/private:1.0`;
    const pinned = `${authReg.host}/demo/private@${app.digest}`;
    const denied = await tufa('verify', ref, ...opts());
    assert.equal(
      denied.status,
      2,
      `no credentials: unauthorized (a login is configuration: exit 2)\n${show(denied)}`,
    );
    assert.match(denied.stderr, /UNAUTHORIZED/);

    const account = authReg.account as NonNullable<typeof authReg.account>;
    const dockerConfig = join(tmp, 'docker-with-auth');
    mkdirSync(dockerConfig, { recursive: true });
    const auth = Buffer.from(`${account.username}:${account.password}`).toString('base64');
    writeFileSync(
      join(dockerConfig, 'config.json'),
      JSON.stringify({ auths: { [authReg.host]: { auth } } }),
      { mode: 0o600 },
    );
    const withAuth = { ...env, DOCKER_CONFIG: dockerConfig };
    const ok = await tufaWith(withAuth, 'verify', ref, ...opts());
    assert.equal(ok.status, 0, show(ok));
    assert.equal(ok.stdout, `✔ ${ref} → ${pinned}\n`);
    assert.ok(!(ok.stdout + ok.stderr).includes(account.password), 'no secret printed');

    const dir = join(outDir(), 'private');
    const pulled = await tufaWith(withAuth, 'pull', ref, '--output', `oci:${dir}`, ...opts());
    assert.equal(pulled.status, 0, show(pulled));
    assert.equal((await inspectLocal(`oci:${dir}:1.0`)).Digest, app.digest);
  });
});
