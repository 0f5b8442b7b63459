/**
 * `tufa proxy` / createVerifyingRegistryHandler (issue 15 part 3): skopeo pulls through the
 * proxy (plain HTTP on 127.0.0.1) from a real docker-registry upstream; the images are signed as
 * TUF targets `<upstream>/demo/<name>:<tag>` in a repository served on 127.0.0.1. Signed
 * single- and multi-arch images come through as the signed bytes; an unsigned tag, the signed
 * image copied to another repository and a corrupted upstream blob are refused; 50 pulls at once.
 * The library example (examples/registry-proxy.mjs) is run as a child process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  digestOf,
  type ImageManifest,
  parseManifest,
  RegistryClient,
} from '../../src/oci/index.js';
import { type RunningRegistryProxy, startRegistryProxy } from '../../src/proxy/index.js';
import { ImageVerifier, TrustPolicy } from '../../src/verify/index.js';
import { makeTls } from '../admission/environment.js';
import { liveExpiries, publishEncoded, simulator, startTufa } from '../security/harness.js';
import { ROOT } from '../support/paths.js';
import {
  type BuiltImage,
  buildImage,
  buildIndex,
  corruptFile,
  RegistryServer,
  run,
  skipReason,
} from '../support/registry.js';
import { StaticServer } from '../support/static-server.js';
import { SimRepo } from '../support/tuf-builder.js';

const SKIP = skipReason(['docker-registry', 'skopeo', 'umoci']);

/** get makes one request to the proxy and reads the answer (a body cut short: `aborted`). */
function get(
  url: string,
  method = 'GET',
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      const chunks: Buffer[] = [];
      let aborted = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('aborted', () => {
        aborted = true;
      });
      res.on('error', () => {
        aborted = true;
      });
      res.on('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          aborted: aborted || !res.complete,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('tufa proxy: a registry front serving only signed images (skopeo, docker-registry upstream)', function () {
  this.timeout(180_000);
  let dir: string;
  let reg: RegistryServer;
  let tuf: StaticServer;
  let proxy: RunningRegistryProxy;
  let verifier: ImageVerifier;
  let upstreamClient: RegistryClient;
  let policyFile: string;
  const built: Record<string, BuiltImage> = {};
  const digests: Record<string, string> = {};

  before(async function () {
    if (SKIP !== undefined) this.skip();
    dir = mkdtempSync(join(tmpdir(), 'tufa-proxy-test-'));
    const layout = join(dir, 'build', 'layout');
    const unique = (what: string) => `${what} ${randomBytes(8).toString('hex')}\n`;
    built.app = await buildImage(`${layout}:app`, {
      '/etc/app.conf': unique('app'),
      '/bin/app': randomBytes(512 * 1024),
    });
    built.other = await buildImage(`${layout}:other`, { '/etc/other.conf': unique('other') });
    built.corrupt = await buildImage(`${layout}:corrupt`, { '/bin/c': randomBytes(64 * 1024) });
    for (const arch of ['amd64', 'arm64'])
      built[arch] = await buildImage(
        `${layout}:${arch}`,
        { '/arch': unique(arch) },
        { os: 'linux', architecture: arch },
      );
    built.multi = await buildIndex(`${layout}:multi`, [
      { image: built.amd64 as BuiltImage, platform: { os: 'linux', architecture: 'amd64' } },
      { image: built.arm64 as BuiltImage, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    reg = await RegistryServer.start('plain');
    const b = (n: string) => built[n] as BuiltImage;
    await reg.push(b('app').ref, 'demo/app:1.0');
    await reg.push(b('other').ref, 'demo/app:unsigned');
    await reg.push(b('app').ref, 'demo/copy:1.0'); // the signed image, re-tagged elsewhere
    await reg.push(b('app').ref, 'demo/moved:1.0');
    await reg.push(b('other').ref, 'demo/moved:1.0'); // the tag moved upstream after signing
    await reg.push(b('corrupt').ref, 'demo/corrupt:1.0');
    await reg.push(b('multi').ref, 'demo/multi:1.0', { all: true });
    for (const [n, ref] of [
      ['app', 'demo/app:1.0'],
      ['other', 'demo/app:unsigned'],
      ['corrupt', 'demo/corrupt:1.0'],
      ['multi', 'demo/multi:1.0'],
    ] as const) {
      const m = await reg.inspectRaw(ref);
      digests[n] = digestOf(m);
      built[`${n}-manifest`] = { ...b(n), manifest: m };
    }

    const repo = liveExpiries(new SimRepo());
    const sim = simulator(repo);
    const at = (ref: string) => `${reg.host}/${ref}`;
    const manifestOf = (n: string) => (built[`${n}-manifest`] as BuiltImage).manifest;
    sim.addTargetFile(at('demo/app:1.0'), manifestOf('app'));
    sim.addTargetFile(at('demo/moved:1.0'), manifestOf('app'));
    sim.addTargetFile(at('demo/corrupt:1.0'), manifestOf('corrupt'));
    sim.addTargetFile(at('demo/multi:1.0'), manifestOf('multi'));
    publishEncoded(sim);
    tuf = await StaticServer.start(sim.files);
    const policyDir = join(dir, 'policy');
    mkdirSync(policyDir);
    writeFileSync(join(policyDir, 'root.json'), repo.rootBytes(1));
    const policyJson = {
      rules: [
        {
          match: `${reg.host}/demo/**`,
          tuf: { metadataUrl: tuf.url('metadata/'), root: 'root.json' },
        },
      ],
    };
    policyFile = join(policyDir, 'tufa-policy.json');
    writeFileSync(policyFile, JSON.stringify(policyJson));
    writeFileSync(
      join(dir, 'skopeo-policy.json'),
      JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }),
    );
    upstreamClient = new RegistryClient();
    verifier = new ImageVerifier({
      registry: upstreamClient,
      files: (path) => readFile(path),
      policy: TrustPolicy.fromJSON(policyJson, policyDir),
      cacheDir: join(dir, 'cache'),
      refreshIntervalMs: 60_000,
      failureCacheMs: 2_000,
    });
    proxy = await startRegistryProxy({
      verifier,
      registry: upstreamClient,
      upstream: reg.host,
      log: (r) => {
        if (process.env.PROXY_LOG) console.error(JSON.stringify({ t: Date.now() % 100000, ...r }));
      },
    });
  });

  after(async () => {
    await proxy?.close();
    await verifier?.close();
    await upstreamClient?.close();
    await tuf?.close();
    await reg?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  let n = 0;
  /** pull runs `skopeo copy docker://<host>/<ref> oci:<fresh dir>:x` and reads the result. */
  const pull = async (ref: string, extra: string[] = [], host = proxy.host) => {
    const out = join(dir, `out-${++n}`);
    const r = await run(
      'skopeo',
      [
        '--policy',
        join(dir, 'skopeo-policy.json'),
        'copy',
        '--quiet',
        // over TLS with the proxy's CA when a cert dir is given, else plain HTTP
        ...(extra.some((e) => e.startsWith('--src-cert-dir')) ? [] : ['--src-tls-verify=false']),
        '--retry-times=0',
        ...extra,
        `docker://${host}/${ref}`,
        `oci:${out}:x`,
      ],
      {
        env: { ...process.env, REGISTRY_AUTH_FILE: join(dir, 'no-auth.json'), TMPDIR: dir },
        timeoutMs: 120_000,
      },
    );
    const digest =
      r.status === 0
        ? (
            JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as {
              manifests: Array<{ digest: string }>;
            }
          ).manifests[0]?.digest
        : undefined;
    return { ...r, digest };
  };

  it('pulls a signed single-arch image: the signed manifest and every blob', async () => {
    const r = await pull('demo/app:1.0');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.digest, digests.app);
  });

  it('pulls a signed multi-arch image: one platform through its index, and --all', async () => {
    const one = await pull('demo/multi:1.0', [
      '--override-arch',
      'arm64',
      '--override-os',
      'linux',
    ]);
    assert.equal(one.status, 0, one.stderr);
    assert.equal(one.digest, (built.arm64 as BuiltImage).digest);
    const all = await pull('demo/multi:1.0', ['--all']);
    assert.equal(all.status, 0, all.stderr);
    assert.equal(all.digest, digests.multi);
  });

  it('refuses an unsigned tag: 403 DENIED naming the image and the rule; skopeo fails', async () => {
    const r = await pull('demo/app:unsigned');
    assert.notEqual(r.status, 0);
    const res = await get(`${proxy.url}/v2/demo/app/manifests/unsigned`);
    assert.equal(res.status, 403);
    const body = JSON.parse(res.body.toString()) as {
      errors: Array<{ code: string; message: string }>;
    };
    assert.equal(body.errors[0]?.code, 'DENIED');
    assert.ok(body.errors[0]?.message.includes(`${reg.host}/demo/app:unsigned`));
    assert.ok(body.errors[0]?.message.includes(`rule ${reg.host}/demo/**`));
    assert.match(body.errors[0]?.message ?? '', /UNSIGNED_IMAGE/);
    // the unsigned manifest is not served by digest either
    const byDigest = await get(`${proxy.url}/v2/demo/app/manifests/${digests.other}`);
    assert.equal(byDigest.status, 403);
    // a name no rule covers
    const none = await get(`${proxy.url}/v2/elsewhere/x/manifests/1.0`);
    assert.equal(none.status, 403);
    assert.match(none.body.toString(), /no trust policy rule/);
  });

  it('refuses the signed image re-tagged into another repository, and serves a moved tag as signed', async () => {
    const copy = await pull('demo/copy:1.0');
    assert.notEqual(copy.status, 0, 'demo/copy was never signed');
    const moved = await pull('demo/moved:1.0');
    assert.equal(moved.status, 0, moved.stderr);
    assert.equal(moved.digest, digests.app, 'the signed digest, not what the tag points at now');
  });

  it('a corrupted upstream blob fails the transfer: never complete-looking wrong bytes', async () => {
    const m = parseManifest((built['corrupt-manifest'] as BuiltImage).manifest) as ImageManifest;
    const layer = m.layers[0]?.digest as string;
    await corruptFile(reg.storagePath('demo/corrupt', layer), 'flip');
    const r = await pull('demo/corrupt:1.0');
    assert.notEqual(r.status, 0);
    const res = await get(`${proxy.url}/v2/demo/corrupt/blobs/${layer}`);
    assert.equal(res.status, 200);
    assert.equal(res.aborted, true, 'the body ended short');
    assert.ok(res.body.length < Number(res.headers['content-length']));
  });

  it('a platform manifest by digest: only as a child of a signed index this proxy served', async () => {
    const fresh = await startRegistryProxy({
      verifier,
      registry: upstreamClient,
      upstream: reg.host,
    });
    try {
      const arm = (built.arm64 as BuiltImage).digest;
      const before = await get(`${fresh.url}/v2/demo/multi/manifests/${arm}`);
      assert.equal(before.status, 403, 'no signed index lists it yet');
      assert.equal((await get(`${fresh.url}/v2/demo/multi/manifests/1.0`)).status, 200);
      const after = await get(`${fresh.url}/v2/demo/multi/manifests/${arm}`);
      assert.equal(after.status, 200);
      assert.equal(after.headers['docker-content-digest'], arm);
      assert.equal(digestOf(after.body), arm);
      // the same digest under another repository is not a child of that index
      assert.equal((await get(`${fresh.url}/v2/demo/app/manifests/${arm}`)).status, 403);
    } finally {
      await fresh.close();
    }
  });

  it('answers /v2/, /healthz and /metrics; is read-only', async () => {
    const base = await get(`${proxy.url}/v2/`);
    assert.equal(base.status, 200);
    assert.equal(base.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.equal((await get(`${proxy.url}/healthz`)).status, 200);
    const missing = await get(`${proxy.url}/v2/demo/app/blobs/sha256:${'0'.repeat(64)}`);
    assert.equal(missing.status, 404);
    assert.match(missing.body.toString(), /BLOB_UNKNOWN/);
    assert.equal((await get(`${proxy.url}/v2/demo/app/manifests/1.0`, 'DELETE')).status, 405);
    const head = await get(`${proxy.url}/v2/demo/app/manifests/1.0`, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['docker-content-digest'], digests.app);
    assert.match(
      (await get(`${proxy.url}/metrics`)).body.toString(),
      /tufa_proxy_requests_total\{route="manifests",status="200"\} \d+/,
    );
  });

  it('50 parallel pulls all get the signed image', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => pull('demo/app:1.0')));
    for (const r of results) {
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.digest, digests.app);
    }
  });

  it('tufa proxy on its own TLS: skopeo pulls the signed image with the proxy CA, the unsigned one is refused', async () => {
    const tls = await makeTls(join(dir, 'tls'));
    const certDir = join(dir, 'skopeo-certs');
    mkdirSync(certDir);
    writeFileSync(join(certDir, 'ca.crt'), tls.ca);
    const p = startTufa(
      [
        'proxy',
        '--policy',
        policyFile,
        '--upstream',
        reg.host,
        '--tls-cert',
        tls.certFile,
        '--tls-key',
        tls.keyFile,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--cache-dir',
        join(dir, 'cli-cache'),
      ],
      { timeoutMs: 120_000, env: { ...process.env, DOCKER_CONFIG: join(dir, 'no-docker') } },
    );
    try {
      let url: string | undefined;
      let out = '';
      p.child.stdout?.on('data', (d: Buffer | string) => {
        out += String(d);
      });
      for (let i = 0; i < 200 && url === undefined; i++) {
        url = /"url":"(https:\/\/[^"]+)"/.exec(out)?.[1];
        if (url === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(url !== undefined, `no listening line: ${out}`);
      const host = new URL(url).host;
      const ok = await pull('demo/app:1.0', [`--src-cert-dir=${certDir}`], host);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.digest, digests.app);
      const refused = await pull('demo/app:unsigned', [`--src-cert-dir=${certDir}`], host);
      assert.notEqual(refused.status, 0);
      assert.match(refused.stderr, /DENIED|denied/);
    } finally {
      p.kill();
    }
  });

  it('examples/registry-proxy.mjs mounts the handler in its own server', async () => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'examples', 'registry-proxy.mjs'), policyFile, reg.host],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 20_000);
        child.stdout.setEncoding('utf8').on('data', (s: string) => {
          out += s;
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m !== null) {
            clearTimeout(timer);
            resolve(m[1] as string);
          }
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      const host = new URL(url).host;
      const ok = await pull('demo/app:1.0', [], host);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.digest, digests.app);
      assert.notEqual((await pull('demo/app:unsigned', [], host)).status, 0);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
