/**
 * Attacks on the admission webhook and the long-lived verifier (issue 12 items 7–10, issue 13
 * item 6). Each test asserts the secure behaviour: a failing test is a break.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { AdmissionController } from '../../src/admission/index.js';
import type { Fetcher } from '../../src/client/index.js';
import { MEDIA_TYPES, Reference } from '../../src/oci/index.js';
import { LayoutWriter } from '../../src/oci/layout.js';
import { digestOf } from '../../src/oci/manifest.js';
import { ImageVerificationError } from '../../src/verify/errors.js';
import { TrustPolicy } from '../../src/verify/policy.js';
import { type ImageVerifier, ImageVerifier as Verifier } from '../../src/verify/verify-image.js';
import { makeTls, type TlsFiles } from '../admission/environment.js';
import { METADATA_URL } from '../sim/repository-simulator.js';
import { NOW } from '../support/tuf-builder.js';
import { type CaseContext, sleep, tufa } from '../security/harness.js';
import { ROOT } from '../support/paths.js';
import { spawn, spawnSync } from 'node:child_process';
import { manifestBytes, simWorld } from '../security/worlds.js';

const MiB = 1024 * 1024;

/** A minimal CaseContext: temp folders and deferred cleanups. */
function context(): CaseContext & { cleanup(): Promise<void> } {
  const later: Array<() => unknown> = [];
  return {
    tmp() {
      const d = mkdtempSync(join(tmpdir(), 'tufa-attack-'));
      later.push(() => rmSync(d, { recursive: true, force: true }));
      return d;
    },
    defer(fn) {
      later.push(fn);
    },
    refusedBy() {},
    async refuses(a) {
      try {
        await (typeof a === 'function' ? a() : a);
      } catch (e) {
        return e as Error;
      }
      throw new Error('not refused');
    },
    async cleanup() {
      for (const fn of later.reverse()) await fn();
    },
  };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', () => ok()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

interface Hook {
  port: number;
  pid: number;
  rss(): number;
  out(): string;
  err(): string;
}

async function serve(t: CaseContext, tls: TlsFiles, policy: object, extra: string[] = []): Promise<Hook> {
  const dir = t.tmp();
  const policyFile = join(dir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(policy));
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [join(ROOT, 'test', 'attack', 'launch-tufa.mjs'), 'admission', 'serve', '--policy', policyFile, '--tls-cert', tls.certFile, '--tls-key', tls.keyFile,
      '--host', '127.0.0.1', '--port', String(port), '--cache-dir', join(dir, 'cache'), ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.setEncoding('utf8');
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const p = { child, done: new Promise<string>((ok) => child.on('close', () => ok(err))), kill: () => child.kill('SIGKILL') };
  t.defer(async () => {
    p.child.kill('SIGTERM');
    const killer = setTimeout(() => p.kill(), 5_000);
    await p.done;
    clearTimeout(killer);
  });
  let out = '';
  p.child.stdout?.on('data', (d: string) => {
    out += d;
  });
  for (let i = 0; i < 200 && !out.includes('"listening"'); i++) {
    if (p.child.exitCode !== null) break;
    await sleep(50);
  }
  if (!out.includes('"listening"')) throw new Error(`the webhook did not start: ${err}`);
  const pid = p.child.pid as number;
  return {
    port,
    pid,
    rss: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024,
    out: () => out,
    err: () => err,
  };
}

/** silentServer reads every request and never answers. */
async function silentServer(t: CaseContext): Promise<{ host: string; open: () => number; total: () => number }> {
  const sockets = new Set<Socket>();
  let total = 0;
  const server = createServer((s) => {
    sockets.add(s);
    total++;
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    s.resume();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  t.defer(async () => {
    const closed = new Promise<void>((ok) => server.close(() => ok()));
    for (const s of sockets) s.destroy();
    await closed;
  });
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, open: () => sockets.size, total: () => total };
}

/** raw sends one HTTP request over TLS and resolves with the status line (or the error). */
function raw(
  port: number,
  tls: TlsFiles,
  request: string,
  extra: { cert?: string; key?: string } = {},
  timeoutMs = 10_000,
): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, ca: tls.ca, servername: 'localhost', ...extra });
    let got = '';
    const done = (v: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(`timeout: ${got.split('\r\n')[0]}`), timeoutMs);
    s.on('error', (e) => done(`error: ${e.message}`));
    s.on('close', () => done(got.split('\r\n')[0] || 'closed'));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) done(got.split('\r\n')[0] as string);
    });
    s.write(request);
  });
}

function review(object: object, kind = 'Pod', uid = 'uid-1'): object {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid, kind: { group: '', version: 'v1', kind }, operation: 'CREATE', namespace: 'default', name: 'x', object },
  };
}

function post(path: string, body: string, version = 'HTTP/1.1'): string {
  return `POST ${path} ${version}\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

async function layout(t: CaseContext, images: Record<string, Uint8Array>): Promise<string> {
  const dir = join(t.tmp(), 'layout');
  const writer = await LayoutWriter.create('dir', dir);
  for (const [name, manifest] of Object.entries(images)) {
    const desc = { mediaType: MEDIA_TYPES.ociManifest, digest: digestOf(manifest), size: manifest.length };
    await writer.putBlob(desc, manifest);
    writer.addManifest(desc, name);
  }
  await writer.commit();
  return dir;
}

/** A fetcher answering after `delayMs`, as a slow (not failing) trust server does. */
function slow(inner: Fetcher, delayMs: number): Fetcher {
  return {
    async fetch(url: string, maxLength: number, headers?: Record<string, string>) {
      await sleep(delayMs);
      return inner.fetch(url, maxLength, headers);
    },
  } as Fetcher;
}

describe('attack: the admission webhook and the long-lived verifier', function () {
  this.timeout(120_000);
  let t: ReturnType<typeof context>;
  beforeEach(() => {
    t = context();
  });
  afterEach(() => t.cleanup());

  it('ATK-W0 the CLI starts at all (bin/tufa and bin/tuf-client load their redaction helper)', async () => {
    const r = await tufa(['--help']);
    assert.equal(r.status, 0, `node bin/tufa --help: exit ${r.status}: ${r.stderr.slice(0, 300)}`);
    const c = spawnSync(process.execPath, [join(ROOT, 'bin', 'tuf-client'), '--help'], { timeout: 30_000 });
    assert.doesNotMatch(String(c.stderr), /ERR_MODULE_NOT_FOUND/, 'bin/tuf-client');
  });

  it('ATK-W1 failure cache poisoning: one review aborted at its deadline during a shared refresh must not deny other reviews of a good image', async () => {
    const m = manifestBytes('good');
    const w = await simWorld(t, (_repo, add) => add('registry.example/app:1.0', m));
    const dir = t.tmp();
    writeFileSync(join(dir, 'root.json'), w.repo.rootBytes(1));
    const images = await layout(t, { 'registry.example/app:1.0': m });
    const v = new Verifier({
      policy: TrustPolicy.fromJSON(
        { rules: [{ match: 'registry.example/**', tuf: { metadataUrl: METADATA_URL, root: 'root.json' } }] },
        dir,
      ),
      cacheDir: join(dir, 'cache'),
      fetcher: slow(w.sim, 100), // a refresh takes ~ 400 ms: slow, but it always answers
      now: () => NOW,
      refreshIntervalMs: 60_000,
      failureCacheMs: 5_000, // the CLI's default
    });
    t.defer(() => v.close());
    const image = `oci:${images}:registry.example/app:1.0`;
    // the attacker's review is the first to need the trust source; its deadline fires 50 ms in
    // (in the webhook: a review that waited ~8 s in the limiter queue)
    const attacker = v.verify(image, { signal: AbortSignal.timeout(50) }).then(
      () => 'verified',
      (e: Error) => e.message,
    );
    await sleep(10);
    // a legitimate review, with all the time it needs, joins the same refresh
    const legit = v.verify(image, { signal: AbortSignal.timeout(5_000) }).then(
      () => 'verified',
      (e: Error) => e.message,
    );
    assert.match(await attacker, /aborted/);
    assert.equal(await legit, 'verified', 'a legit review was denied by another review\'s deadline');
    await sleep(100);
    // and the reviews of the next 5 s get the remembered "failure"
    const later = await v.verify(image, { signal: AbortSignal.timeout(5_000) }).then(
      () => 'verified',
      (e: Error) => e.message,
    );
    assert.equal(later, 'verified', `a legit review 100 ms later was denied: ${later}`);
  });

  it('ATK-W2 a registry manifest request is aborted at the review deadline (no connections left behind, limiter slots not freed early)', async () => {
    const reg = await silentServer(t);
    const n = 32;
    const ms = Array.from({ length: n }, (_, i) => manifestBytes(`img${i}`));
    const w = await simWorld(t, (_repo, add) => {
      for (let i = 0; i < n; i++) add(`${reg.host}/app${i}:1.0`, ms[i] as Uint8Array);
    });
    const dir = t.tmp();
    writeFileSync(join(dir, 'root.json'), w.repo.rootBytes(1));
    const v = new Verifier({
      policy: TrustPolicy.fromJSON(
        { rules: [{ match: `${reg.host}/**`, tuf: { metadataUrl: METADATA_URL, root: 'root.json' } }] },
        dir,
      ),
      cacheDir: join(dir, 'cache'),
      fetcher: w.sim,
      now: () => NOW,
      refreshIntervalMs: 60_000,
      failureCacheMs: 5_000,
    });
    t.defer(() => v.close());
    const controller = new AdmissionController({ verifier: v, deadlineMs: 300, maxConcurrent: 4 });
    // 8 reviews one after another, 4 images each: every one ends at its 300 ms deadline
    for (let r = 0; r < 8; r++) {
      const pod = { spec: { containers: [0, 1, 2, 3].map((j) => ({ name: `c${j}`, image: `${reg.host}/app${r * 4 + j}:1.0` })) } };
      const out = await controller.review(review(pod), 'validate');
      assert.equal(out.allowed, false);
    }
    await sleep(1_000);
    assert.ok(
      reg.open() <= 4,
      `${reg.open()} manifest requests to the registry still open 1 s after their reviews were denied (limiter 4): they run on for 4 × the registry timeout (120 s)`,
    );
  });

  it('ATK-W3 keep-alive connections left idle after one probe hold the connection cap: the API server is locked out', async () => {
    const tls = await makeTls(t.tmp());
    const hole = await silentServer(t);
    const policy = { rules: [{ match: 'registry.example/**', notary: { server: `http://${hole.host}`, rootKeys: ['0'.repeat(64)] } }] };
    const cap = 8;
    const hook = await serve(t, tls, policy, ['--deadline', '1', '--max-connections', String(cap)]);
    const held: TLSSocket[] = [];
    t.defer(() => {
      for (const s of held) s.destroy();
    });
    for (let i = 0; i < cap; i++) {
      const s = connect({ host: '127.0.0.1', port: hook.port, ca: tls.ca, servername: 'localhost' });
      s.on('error', () => undefined);
      await new Promise<void>((ok) => {
        s.once('data', () => ok());
        s.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n');
      });
      held.push(s);
    }
    // wait well past the request timeout (= the 1 s deadline)
    await sleep(4_000);
    const stillOpen = held.filter((s) => !s.destroyed && s.readyState === 'open').length;
    const pod = JSON.stringify(review({ spec: { containers: [{ name: 'c', image: 'registry.example/app:1.0' }] } }));
    const answer = await raw(hook.port, tls, post('/validate', pod));
    assert.match(
      answer,
      /^HTTP\/1\.1 200/,
      `the API server's review was not answered (${answer}); ${stillOpen} idle keep-alive connections from one GET /healthz each still hold the cap 4 s after the request timeout`,
    );
  });

  it('ATK-W4 parsed review bodies are not counted: paced complete 4 MiB reviews, each naming its own image under a silent trust source, stay under 512 MiB', async () => {
    const tls = await makeTls(t.tmp());
    const hole = await silentServer(t);
    const policy = { rules: [{ match: 'registry.example/**', notary: { server: `http://${hole.host}`, rootKeys: ['0'.repeat(64)] } }] };
    const hook = await serve(t, tls, policy, ['--deadline', '8']);
    const before = hook.rss();
    // a Pod (one container) and ~4 MiB of empty objects: 3 bytes each on the wire
    const junk = `[${new Array(Math.floor((4 * MiB - 1024) / 3)).fill('{}').join(',')}]`;
    // each review names its own image (its own Notary GUN): no remembered failure answers it early
    const bodyOf = (k: number) => {
      const head = JSON.stringify(review({ spec: { containers: [{ name: 'c', image: `registry.example/r${k}:1.0` }] } }));
      return `${head.slice(0, -2)},"junk":${junk}}}`;
    };
    assert.ok(Buffer.byteLength(bodyOf(1000)) < 4 * MiB);
    let peak = before;
    let dead = false;
    const sampler = setInterval(() => {
      try {
        const r = hook.rss();
        if (Number.isFinite(r)) peak = Math.max(peak, r);
        else dead = true;
      } catch {
        dead = true;
      }
    }, 50);
    t.defer(() => clearInterval(sampler));
    // paced so the 32 MiB budget of bytes being read is never hit: one review every 150 ms
    const pending: Array<Promise<string>> = [];
    for (let k = 0; k < 80; k++) {
      pending.push(raw(hook.port, tls, post('/validate', bodyOf(k)), {}, 60_000));
      await sleep(150);
      if (peak > 1536 * MiB) break; // bounded: enough to show it
    }
    const answers = await Promise.all(pending);
    clearInterval(sampler);
    const growth = peak - before;
    console.log(`    RSS ${Math.round(before / MiB)} → peak ${Math.round(peak / MiB)} MiB; answers: ${[...new Set(answers)].join(', ')}`);
    const state = /State:\s+(.*)/.exec(readFileSync(`/proc/${hook.pid}/status`, 'utf8'))?.[1];
    assert.ok(!dead, `the webhook process died (state ${state}; stderr: ${hook.err().slice(-400)})`);
    assert.ok(peak < 512 * MiB, `the webhook reached ${Math.round(peak / MiB)} MiB (grew ${Math.round(growth / MiB)} MiB)`);
  });

  it('ATK-W5 --client-ca: no path, query, version or header trick gets a review answered without the client certificate', async () => {
    const tmp = t.tmp();
    const tls = await makeTls(tmp);
    const policy = { rules: [{ match: 'registry.example/**', notary: { server: 'http://127.0.0.1:9', rootKeys: ['0'.repeat(64)] } }] };
    const hook = await serve(t, tls, policy, ['--deadline', '2', '--client-ca', tls.caFile]);
    const pod = JSON.stringify(review({ spec: { containers: [{ name: 'c', image: 'registry.example/app:1.0' }] } }));
    const tries = [
      post('/validate', pod),
      post('/mutate', pod),
      post('/validate?x=1', pod),
      post('//validate', pod),
      post('/validate/', pod),
      post('/./validate', pod),
      post('/%76alidate', pod),
      post('/VALIDATE', pod),
      post('https://localhost/validate', pod),
      post('/validate', pod, 'HTTP/1.0'),
      post('/validate#x', pod),
      `POST /validate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n${Buffer.byteLength(pod).toString(16)}\r\n${pod}\r\n0\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n${post('/validate', pod)}`,
    ];
    const leaked: string[] = [];
    for (const req of tries) {
      const status = await raw(hook.port, tls, req);
      const answered = /^HTTP\/1\.[01] 200/.test(status) && !req.startsWith('GET');
      if (answered) leaked.push(`${req.split('\r\n')[0]} → ${status}`);
    }
    assert.deepEqual(leaked, []);
  });

  it('ATK-W6 head-of-line blocking: reviews naming slow images starve a review of a cached, signed image (shared FIFO limiter)', async () => {
    // a verifier stand-in: `good` verifies at once (cached trust data), `slow/*` take 2 s each
    // (a trust source that answers slowly, e.g. one Notary refresh per GUN)
    const verifier = {
      async verify(input: string) {
        const image = input.replace(/^docker:\/\//, '');
        if (image.startsWith('registry.example/slow')) {
          await sleep(2_000);
          throw new ImageVerificationError('UNSIGNED_IMAGE', `${image}: not signed`);
        }
        return { reference: Reference.parse(image), digest: `sha256:${'a'.repeat(64)}` };
      },
    } as unknown as ImageVerifier;
    const controller = new AdmissionController({ verifier, deadlineMs: 3_000 });
    const slowPod = (r: number) => ({
      spec: { containers: Array.from({ length: 64 }, (_, i) => ({ name: `c${i}`, image: `registry.example/slow${r}-${i}:1.0` })) },
    });
    const attack = [0, 1].map((r) => controller.review(review(slowPod(r), 'Pod', `a${r}`), 'validate'));
    await sleep(50);
    const legit = await controller.review(
      review({ spec: { containers: [{ name: 'c', image: 'registry.example/good:1.0' }] } }, 'Pod', 'legit'),
      'validate',
    );
    await Promise.all(attack);
    assert.equal(
      legit.allowed,
      true,
      `a signed image was denied behind two attacker reviews: ${JSON.stringify(legit.verdicts.map((v) => v.code))}`,
    );
  });

  it('ATK-W7 a Pod UPDATE that changes an image to a bare tag is admitted unpinned (the documented mutating rules skip pods UPDATE)', async () => {
    const signed = 'registry.example/app:1.0';
    const verifier = {
      async verify(input: string) {
        const image = input.replace(/^docker:\/\//, '');
        if (image !== signed) throw new ImageVerificationError('UNSIGNED_IMAGE', `${image}: not signed`);
        return { reference: Reference.parse(image), digest: `sha256:${'a'.repeat(64)}` };
      },
    } as unknown as ImageVerifier;
    const controller = new AdmissionController({ verifier, deadlineMs: 3_000 });
    const pinned = `${signed}@sha256:${'a'.repeat(64)}`;
    const body = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'UPDATE',
        namespace: 'default',
        name: 'x',
        object: { spec: { containers: [{ name: 'c', image: signed }] } },
        oldObject: { spec: { containers: [{ name: 'c', image: pinned }] } },
      },
    };
    // docs/kubernetes.md routes pods UPDATE to /validate only: the kubelet then pulls the tag,
    // which the registry may have moved since it was verified
    const out = await controller.review(body, 'validate');
    assert.equal(
      out.allowed,
      false,
      `a Pod UPDATE to the unpinned tag ${signed} was admitted (warnings only): ${JSON.stringify((out.body as { response: unknown }).response)}`,
    );
  });

  it('ATK-W8 every distinct image name an attacker invents leaves a verifier entry (and cache folder) behind for ever', async () => {
    const http = createHttpServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"METADATA_NOT_FOUND"}]}');
    });
    await new Promise<void>((ok) => http.listen(0, '127.0.0.1', () => ok()));
    t.defer(() => new Promise<void>((ok) => {
      http.closeAllConnections();
      http.close(() => ok());
    }));
    const server = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const dir = t.tmp();
    const v = new Verifier({
      policy: TrustPolicy.fromJSON({ rules: [{ match: 'registry.example/**', notary: { server, rootKeys: ['0'.repeat(64)] } }] }, dir),
      cacheDir: join(dir, 'cache'),
      refreshIntervalMs: 60_000,
      failureCacheMs: 5_000,
    });
    t.defer(() => v.close());
    const controller = new AdmissionController({ verifier: v, deadlineMs: 5_000 });
    const n = 10_000;
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    for (let r = 0; r < n / 50; r++) {
      const pod = { spec: { containers: Array.from({ length: 50 }, (_, i) => ({ name: `c${i}`, image: `registry.example/x${r}-${i}:1.0` })) } };
      const out = await controller.review(review(pod), 'validate');
      assert.equal(out.allowed, false);
    }
    global.gc?.();
    const heap = process.memoryUsage().heapUsed - heap0;
    const entries = (v as unknown as { notary: Map<string, unknown> }).notary.size;
    const folders = existsSync(join(dir, 'cache', 'notary')) ? readdirSync(join(dir, 'cache', 'notary')).length : 0;
    console.log(`    ${n} invented names: ${entries} verifier entries, ${folders} cache folders, heap +${Math.round(heap / 1024)} KiB`);
    assert.ok(entries <= 1024 && folders <= 1024, `${entries} entries and ${folders} cache folders kept for ${n} names that were never signed`);
  });

  it('ATK-W8b the webhook process grows without bound with invented image names (RSS of tufa admission serve)', async () => {
    const http = createHttpServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"METADATA_NOT_FOUND"}]}');
    });
    await new Promise<void>((ok) => http.listen(0, '127.0.0.1', () => ok()));
    t.defer(() => new Promise<void>((ok) => {
      http.closeAllConnections();
      http.close(() => ok());
    }));
    const server = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const tls = await makeTls(t.tmp());
    const hook = await serve(t, tls, { rules: [{ match: 'registry.example/**', notary: { server, rootKeys: ['0'.repeat(64)] } }] });
    // warm up (first TLS, JIT), then measure
    for (let k = 0; k < 8; k++) await raw(hook.port, tls, post('/validate', JSON.stringify(review({ spec: { containers: [{ name: 'c', image: `registry.example/warm${k}:1.0` }] } }))));
    const before = hook.rss();
    const reviews = 400; // × 64 names = 25,600 names, never signed
    for (let r = 0; r < reviews; r += 8) {
      await Promise.all(
        Array.from({ length: 8 }, (_, j) => {
          const pod = { spec: { containers: Array.from({ length: 64 }, (_, i) => ({ name: `c${i}`, image: `registry.example/y${r + j}-${i}:1.0` })) } };
          return raw(hook.port, tls, post('/validate', JSON.stringify(review(pod))));
        }),
      );
    }
    await sleep(6_000); // past the failure cache: nothing should be kept now
    const growth = hook.rss() - before;
    console.log(`    RSS ${Math.round(before / MiB)} MiB → ${Math.round(hook.rss() / MiB)} MiB after ${reviews * 64} invented names`);
    assert.ok(growth < 50 * MiB, `the webhook kept ${Math.round(growth / MiB)} MiB for ${reviews * 64} names that were never signed`);
  });

  it('ATK-W9 deeply nested 4 MiB bodies from a client without a certificate stall the event loop: /healthz (liveness) and reviews wait seconds', async () => {
    const tls = await makeTls(t.tmp());
    const hole = await silentServer(t);
    const hook = await serve(t, tls, { rules: [{ match: 'registry.example/**', notary: { server: `http://${hole.host}`, rootKeys: ['0'.repeat(64)] } }] });
    const depth = Math.floor((4 * MiB - 4096) / 2);
    const body = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    let stop = false;
    const attackers = Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 20 && !stop; i++) await raw(hook.port, tls, post('/validate', body), {}, 30_000);
    });
    await sleep(1_000);
    let worst = 0;
    for (let i = 0; i < 8; i++) {
      const started = Date.now();
      const status = await raw(hook.port, tls, 'GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n', {}, 30_000);
      worst = Math.max(worst, Date.now() - started);
      assert.match(status, /200|timeout/);
      await sleep(250);
    }
    stop = true;
    await Promise.all(attackers);
    console.log(`    slowest /healthz during the attack: ${worst} ms`);
    assert.ok(worst < 1_000, `/healthz took ${worst} ms (a kubelet liveness probe times out after 1 s)`);
  });
});
