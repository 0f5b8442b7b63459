/**
 * Security round 2 (issue 12 items 7–10, issue 13 item 6): the admission webhook as a network
 * service and the verifiers it keeps for its lifetime. The webhook runs as `tufa admission
 * serve` (a child process, so its own memory can be read from /proc) on 127.0.0.1; slow trust
 * servers are local listeners that never answer.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { AdmissionController } from '../../src/admission/index.js';
import { ImageArgs, readTrustFile } from '../../src/cli/images.js';
import { formatExpires } from '../../src/core/metadata/fields.js';
import { MEDIA_TYPES, Reference, RegistryClient } from '../../src/oci/index.js';
import { LayoutWriter } from '../../src/oci/layout.js';
import { digestOf } from '../../src/oci/manifest.js';
import { ImageVerificationError } from '../../src/verify/errors.js';
import { TrustPolicy } from '../../src/verify/policy.js';
import { type ImageVerifier, ImageVerifier as Verifier } from '../../src/verify/verify-image.js';
import { makeTls, ReviewClient, type TlsFiles } from '../admission/environment.js';
import { METADATA_URL } from '../sim/repository-simulator.js';
import { NOW, SimRepo } from '../support/tuf-builder.js';
import { type CaseContext, defineCases, type SecurityCase, sleep, startTufa } from './harness.js';
import { manifestBytes, type SimWorld, simWorld } from './worlds.js';

const HOUR = 3_600_000;

// ---------------------------------------------------------------------------------------------
// the webhook as a child process

interface Webhook {
  readonly url: string;
  readonly pid: number;
  readonly client: ReviewClient;
  /** rss is the webhook process's resident memory now, bytes (/proc/<pid>/status VmRSS). */
  rss(): number;
  stdout(): string;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', () => ok()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

/** serve starts `tufa admission serve` on 127.0.0.1 and waits for its `listening` line. */
async function serve(
  t: CaseContext,
  tls: TlsFiles,
  policy: object,
  extra: string[] = [],
): Promise<Webhook> {
  const dir = t.tmp();
  const policyFile = join(dir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(policy));
  const port = await freePort();
  const p = startTufa(
    [
      'admission',
      'serve',
      '--policy',
      policyFile,
      '--tls-cert',
      tls.certFile,
      '--tls-key',
      tls.keyFile,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--cache-dir',
      join(dir, 'cache'),
      ...extra,
    ],
    { timeoutMs: 120_000 },
  );
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
  if (!out.includes('"listening"')) {
    p.kill();
    throw new Error(`the webhook did not start: ${(await p.done).stderr}`);
  }
  const url = `https://127.0.0.1:${port}`;
  const pid = p.child.pid as number;
  return {
    url,
    pid,
    client: new ReviewClient(url, tls.ca, { timeoutMs: 30_000, maxSockets: 4 }),
    rss: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return Number(m?.[1]) * 1024;
    },
    stdout: () => out,
  };
}

function review(object: object, kind = 'Pod', uid = 'uid-1'): object {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind },
      operation: 'CREATE',
      namespace: 'default',
      name: 'x',
      object,
    },
  };
}

interface Answer {
  response: {
    allowed: boolean;
    status?: { message?: string };
    patch?: string;
  };
}

const MiB = 1024 * 1024;

/**
 * A server on 127.0.0.1 that reads every request and never answers; it sees a connection end
 * as soon as the client closes it (it reads, unlike a listener that leaves sockets paused).
 */
async function silentServer(t: CaseContext): Promise<{ host: string; open: () => number }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
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
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    open: () => sockets.size,
  };
}

/** raw sends one HTTP request over TLS and resolves with the status line (or what happened). */
function raw(
  port: number,
  tls: TlsFiles,
  request: string,
  timeoutMs = 10_000,
  localAddress?: string,
): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({
      host: '127.0.0.1',
      port,
      ca: tls.ca,
      servername: 'localhost',
      ...(localAddress === undefined ? {} : { localAddress }),
    });
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

function post(path: string, body: string): string {
  return `POST ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

// ---------------------------------------------------------------------------------------------
// a verifier whose images sit in an OCI layout, against the repository simulator

async function layout(t: CaseContext, images: Record<string, Uint8Array>): Promise<string> {
  const dir = join(t.tmp(), 'layout');
  const writer = await LayoutWriter.create('dir', dir);
  for (const [name, manifest] of Object.entries(images)) {
    const desc = {
      mediaType: MEDIA_TYPES.ociManifest,
      digest: digestOf(manifest),
      size: manifest.length,
    };
    await writer.putBlob(desc, manifest);
    writer.addManifest(desc, name);
  }
  await writer.commit();
  return dir;
}

function verifier(
  t: CaseContext,
  w: SimWorld,
  rules: object[],
  clock: () => number,
  dir = t.tmp(),
): ImageArgs {
  const v = new ImageArgs(
    new Verifier({
      policy: TrustPolicy.fromJSON({ rules }, dir),
      files: readTrustFile,
      cacheDir: join(dir, 'cache'),
      fetcher: w.sim,
      now: clock,
      refreshIntervalMs: 24 * HOUR,
    }),
  );
  t.defer(() => v.close());
  return v;
}

/** registry makes a registry client closed after the case (loopback registries: plain HTTP). */
function registry(t: CaseContext): RegistryClient {
  const r = new RegistryClient({ timeoutMs: 5_000 });
  t.defer(() => r.close());
  return r;
}

/** A verifier stand-in for the review logic: images in `signed` verify, others do not. */
function stubVerifier(signed: ReadonlySet<string>): ImageVerifier {
  return {
    async verify(reference: Reference) {
      const image = reference.original;
      if (!signed.has(image))
        throw new ImageVerificationError('UNSIGNED_IMAGE', `${image}: not signed`);
      return { reference: Reference.parse(image), digest: `sha256:${'a'.repeat(64)}` };
    },
  } as unknown as ImageVerifier;
}

const cases: SecurityCase[] = [
  {
    id: 'R2-07',
    title: 'one review with 20,000 images is answered within the deadline and bounded in memory',
    attack:
      'A Pod with 20,000 containers (distinct images, then 64 images repeated) under a Notary rule whose server accepts connections and never answers',
    source: 'Outside review, round 2 (issue 12 item 7): 19,000 concurrent refreshes, 632 MiB, 42 s',
    expect: 'TOO_MANY_IMAGES | DEADLINE_EXCEEDED',
    timeout: 90_000,
    async run(t) {
      const tls = await makeTls(t.tmp());
      const hole = await silentServer(t);
      const policy = {
        rules: [
          {
            match: 'registry.example/**',
            notary: { server: `http://${hole.host}`, rootKeys: ['0'.repeat(64)] },
          },
        ],
      };
      const deadline = 3;
      const hook = await serve(t, tls, policy, ['--deadline', String(deadline)]);
      const pod = (image: (i: number) => string) => ({
        spec: {
          containers: Array.from({ length: 20_000 }, (_, i) => ({
            name: `c${i}`,
            image: image(i),
          })),
        },
      });
      let peak = 0;
      const watch = setInterval(() => {
        peak = Math.max(peak, hole.open());
      }, 20);
      t.defer(() => clearInterval(watch));
      const before = hook.rss();
      let maxRss = before;
      const sampler = setInterval(() => {
        maxRss = Math.max(maxRss, hook.rss());
      }, 50);
      t.defer(() => clearInterval(sampler));

      // 20,000 distinct images: more than a review may ask for, refused at once, saying so
      const distinct = await hook.client.post(
        '/validate',
        review(pod((i) => `registry.example/app${i}:1.0`)),
      );
      assert.equal(distinct.status, 200);
      const a = JSON.parse(distinct.text) as Answer;
      assert.equal(a.response.allowed, false);
      const msg = a.response.status?.message ?? '';
      assert.ok(Buffer.byteLength(msg) <= 4096, `denial message of ${msg.length} bytes`);
      assert.match(msg, /TOO_MANY_IMAGES/);
      assert.match(msg, /20000 distinct images/);
      assert.ok(distinct.ms < deadline * 1000, `answered after ${distinct.ms} ms`);
      t.refusedBy('TOO_MANY_IMAGES');

      // 64 images among 20,000 containers, every one pending on the silent server
      const repeated = await hook.client.post(
        '/validate',
        review(pod((i) => `registry.example/svc${i % 64}:1.0`)),
      );
      const b = JSON.parse(repeated.text) as Answer;
      assert.equal(b.response.allowed, false);
      const msg2 = b.response.status?.message ?? '';
      assert.ok(Buffer.byteLength(msg2) <= 4096, `denial message of ${msg2.length} bytes`);
      assert.match(msg2, /DEADLINE_EXCEEDED/);
      assert.ok(
        repeated.ms < deadline * 1000 + 1500,
        `answered after ${repeated.ms} ms (deadline ${deadline} s)`,
      );
      t.refusedBy('DEADLINE_EXCEEDED');
      // one agent per origin: the silent server never saw more than its socket pool
      assert.ok(peak <= 8, `${peak} connections to the notary server at once`);
      // in-flight work is aborted at the deadline: the connections are gone soon after
      for (let i = 0; i < 40 && hole.open() > 0; i++) await sleep(50);
      assert.equal(
        hole.open(),
        0,
        'connections to the notary server still open after the deadline',
      );

      // a refresh stopped because its reviews' deadline passed is not remembered as a failure
      // of the trust source (that would deny good images of later reviews): asked again
      const again = await hook.client.post(
        '/validate',
        review(
          pod((i) => `registry.example/svc${i % 8}:1.0`),
          'Pod',
          'uid-2',
        ),
      );
      const c = JSON.parse(again.text) as Answer;
      assert.equal(c.response.allowed, false);
      assert.match(c.response.status?.message ?? '', /DEADLINE_EXCEEDED/);
      assert.doesNotMatch(c.response.status?.message ?? '', /aborted/);
      const growth = maxRss - before;
      assert.ok(growth < 100 * MiB, `the webhook grew by ${Math.round(growth / MiB)} MiB`);

      // a registry that never answers a manifest request: the requests end with their review
      const reg = await silentServer(t);
      const n = 16;
      const ms = Array.from({ length: n }, (_, i) => manifestBytes(`img${i}`));
      const w = await simWorld(t, (_repo, add) => {
        for (let i = 0; i < n; i++) add(`${reg.host}/app${i}:1.0`, ms[i] as Uint8Array);
      });
      const dir = t.tmp();
      writeFileSync(join(dir, 'root.json'), w.repo.rootBytes(1));
      const v = verifier(
        t,
        w,
        [{ match: `${reg.host}/**`, tuf: { metadataUrl: METADATA_URL, root: 'root.json' } }],
        () => NOW,
        dir,
      );
      const slowRegistry = new AdmissionController({
        verifier: v.verifier,
        registry: registry(t),
        deadlineMs: 300,
        maxConcurrent: 4,
      });
      for (let r = 0; r < 4; r++) {
        const p = {
          spec: {
            containers: [0, 1, 2, 3].map((j) => ({
              name: `c${j}`,
              image: `${reg.host}/app${r * 4 + j}:1.0`,
            })),
          },
        };
        const out = await slowRegistry.review(review(p), 'validate');
        assert.equal(out.allowed, false);
        t.refusedBy('DEADLINE_EXCEEDED');
      }
      for (let i = 0; i < 40 && reg.open() > 0; i++) await sleep(50);
      assert.equal(reg.open(), 0, 'manifest requests still open after their reviews were denied');

      // two reviews of 64 slow images each cannot starve a review of a signed image (fair share)
      const slowVerifier = {
        async verify(reference: Reference) {
          const image = reference.original;
          if (image.startsWith('registry.example/slow')) {
            await sleep(1_500);
            throw new ImageVerificationError('UNSIGNED_IMAGE', `${image}: not signed`);
          }
          return { reference: Reference.parse(image), digest: `sha256:${'a'.repeat(64)}` };
        },
      } as unknown as ImageVerifier;
      const shared = new AdmissionController({
        verifier: slowVerifier,
        registry: registry(t),
        deadlineMs: 2_500,
      });
      const slowPod = (r: number) => ({
        spec: {
          containers: Array.from({ length: 64 }, (_, i) => ({
            name: `c${i}`,
            image: `registry.example/slow${r}-${i}:1.0`,
          })),
        },
      });
      const attack = [0, 1].map((r) =>
        shared.review(review(slowPod(r), 'Pod', `a${r}`), 'validate'),
      );
      await sleep(50);
      const legit = await shared.review(
        review({ spec: { containers: [{ name: 'c', image: 'registry.example/good:1.0' }] } }),
        'validate',
      );
      await Promise.all(attack);
      assert.equal(legit.allowed, true, `starved: ${JSON.stringify(legit.verdicts)}`);
      // an image whose trust data is fresh in memory needs no slot at all
      const oneSlot = new AdmissionController({
        verifier: Object.assign(slowVerifier, {
          hasFreshTrust: (r: Reference) => r.original.includes('/good:'),
        }),
        registry: registry(t),
        deadlineMs: 1_000,
        maxConcurrent: 1,
      });
      const hog = oneSlot.review(review(slowPod(2), 'Pod', 'hog'), 'validate');
      await sleep(50);
      const fast = await oneSlot.review(
        review({ spec: { containers: [{ name: 'c', image: 'registry.example/good:1.0' }] } }),
        'validate',
      );
      await hog;
      assert.equal(fast.allowed, true, `queued: ${JSON.stringify(fast.verdicts)}`);
    },
  },
  {
    id: 'R2-08',
    title: 'image volumes are verified and pinned in every workload kind',
    attack:
      'A Pod (or Deployment, CronJob, …) mounts an unsigned image as a volume (spec.volumes[].image.reference), which the kubelet pulls',
    source: 'Outside review, round 2 (issue 12 item 8); Kubernetes image volumes (KEP-4639)',
    expect: 'UNSIGNED_IMAGE | UNPINNED_IMAGE',
    async run(t) {
      const signed = 'registry.example/app:1.0';
      const controller = new AdmissionController({
        verifier: stubVerifier(new Set([signed])),
        registry: registry(t),
        deadlineMs: 5_000,
      });
      const spec = (ref: string) => ({
        containers: [{ name: 'c', image: signed }],
        volumes: [
          { name: 'cfg', configMap: { name: 'x' } },
          { name: 'data', image: { reference: ref } },
        ],
      });
      const kinds: Record<string, [(s: object) => object, string]> = {
        Pod: [(s) => ({ spec: s }), '/spec'],
        Deployment: [(s) => ({ spec: { template: { spec: s } } }), '/spec/template/spec'],
        StatefulSet: [(s) => ({ spec: { template: { spec: s } } }), '/spec/template/spec'],
        DaemonSet: [(s) => ({ spec: { template: { spec: s } } }), '/spec/template/spec'],
        ReplicaSet: [(s) => ({ spec: { template: { spec: s } } }), '/spec/template/spec'],
        ReplicationController: [
          (s) => ({ spec: { template: { spec: s } } }),
          '/spec/template/spec',
        ],
        Job: [(s) => ({ spec: { template: { spec: s } } }), '/spec/template/spec'],
        PodTemplate: [(s) => ({ template: { spec: s } }), '/template/spec'],
        CronJob: [
          (s) => ({ spec: { jobTemplate: { spec: { template: { spec: s } } } } }),
          '/spec/jobTemplate/spec/template/spec',
        ],
      };
      for (const [kind, [wrap, prefix]] of Object.entries(kinds)) {
        const bad = await controller.review(
          review(wrap(spec('registry.example/evil:1.0')), kind),
          'validate',
        );
        assert.equal(bad.allowed, false, `${kind}: an unsigned image volume was admitted`);
        const v = bad.verdicts.find((x) => x.path === `${prefix}/volumes/1/image/reference`);
        assert.equal(v?.code, 'UNSIGNED_IMAGE', `${kind}: ${JSON.stringify(bad.verdicts)}`);
        t.refusedBy('UNSIGNED_IMAGE');
        const good = await controller.review(review(wrap(spec(signed)), kind), 'mutate');
        assert.equal(good.allowed, true, kind);
        const patch = JSON.parse(
          Buffer.from((good.body as Answer).response.patch as string, 'base64').toString(),
        ) as Array<{ path: string; value: string }>;
        assert.ok(
          patch.some(
            (p) => p.path === `${prefix}/volumes/1/image/reference` && p.value.includes('@sha256:'),
          ),
          `${kind}: the image volume is not pinned: ${JSON.stringify(patch)}`,
        );
      }
      // an image volume without a readable reference is not an image we verified
      const unreadable = await controller.review(
        review({
          spec: {
            containers: [{ name: 'c', image: signed }],
            volumes: [{ name: 'v', image: { reference: 7 } }],
          },
        }),
        'validate',
      );
      assert.equal(unreadable.allowed, false);

      // a Pod UPDATE is not pinned by the mutating webhook: a changed image must name its digest
      const pinned = `${signed}@sha256:${'a'.repeat(64)}`;
      const update = (image: string, old: string) => ({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          operation: 'UPDATE',
          namespace: 'default',
          name: 'x',
          object: { spec: { containers: [{ name: 'c', image }] } },
          oldObject: { spec: { containers: [{ name: 'c', image: old }] } },
        },
      });
      const toTag = await controller.review(update(signed, pinned), 'validate');
      assert.equal(toTag.allowed, false, 'a Pod UPDATE to an unpinned tag was admitted');
      assert.match(
        (toTag.body as Answer).response.status?.message ?? '',
        /UNPINNED_IMAGE.*pin it by digest/,
      );
      t.refusedBy('UNPINNED_IMAGE');
      // a pinned change goes on to verification (the stub knows only the tag): not UNPINNED
      const toPinned = await controller.review(update(pinned, signed), 'validate');
      assert.doesNotMatch((toPinned.body as Answer).response.status?.message ?? '', /UNPINNED/);
      // an image the update leaves as it was is not asked to change
      assert.equal((await controller.review(update(signed, signed), 'validate')).allowed, true);
    },
  },
  {
    id: 'R2-09',
    title:
      'a delegated role that expires after the refresh is not used within the refresh interval',
    attack:
      'A delegated role expiring one hour after the refresh keeps vouching for an image for the whole --refresh-interval (a freeze of that role)',
    source: 'TUF 5.6.5 (freeze attack); outside review, round 2 (issue 12 item 9)',
    expect: 'EXPIRED',
    async run(t) {
      const inTeam = manifestBytes('team');
      const inTargets = manifestBytes('top');
      const w = await simWorld(t, (repo, add) => {
        repo.delegate('targets', 'team', { paths: ['registry.example/team/*'] });
        const team = repo.delegated.get('team');
        if (team !== undefined) team.signed.expires = formatExpires(NOW + HOUR);
        add('registry.example/team/app:1.0', inTeam, 'team');
        add('registry.example/top:1.0', inTargets);
      });
      const dir = t.tmp();
      writeFileSync(join(dir, 'root.json'), w.repo.rootBytes(1));
      const images = await layout(t, {
        'registry.example/team/app:1.0': inTeam,
        'registry.example/top:1.0': inTargets,
      });
      const rules = [
        { match: 'registry.example/**', tuf: { metadataUrl: METADATA_URL, root: 'root.json' } },
      ];
      // 1. the role is loaded while valid, then used after it expired
      let now = NOW;
      const v1 = verifier(t, w, rules, () => now, dir);
      await v1.verify(`oci:${images}:registry.example/team/app:1.0`);
      now = NOW + 2 * HOUR;
      await v1.verify(`oci:${images}:registry.example/top:1.0`); // others still verify
      await t.refuses(v1.verify(`oci:${images}:registry.example/team/app:1.0`), 'EXPIRED');
      // 2. the role is first loaded after it expired, by a lookup after the refresh
      now = NOW;
      const dir2 = t.tmp();
      writeFileSync(join(dir2, 'root.json'), w.repo.rootBytes(1));
      const v2 = verifier(t, w, rules, () => now, dir2);
      await v2.verify(`oci:${images}:registry.example/top:1.0`);
      now = NOW + 2 * HOUR;
      await t.refuses(v2.verify(`oci:${images}:registry.example/team/app:1.0`), 'EXPIRED');

      // 3. a shared refresh is not cut by the deadline of the review that started it: the
      // reviews that joined it still get its answer, and the abort is not cached as a failure
      const dir3 = t.tmp();
      writeFileSync(join(dir3, 'root.json'), w.repo.rootBytes(1));
      const slow = {
        async fetch(url: string, maxLength: number) {
          await sleep(100);
          return w.sim.fetch(url, maxLength);
        },
      } as typeof w.sim;
      const v3 = new ImageArgs(
        new Verifier({
          policy: TrustPolicy.fromJSON({ rules }, dir3),
          files: readTrustFile,
          cacheDir: join(dir3, 'cache'),
          fetcher: slow,
          now: () => NOW,
          refreshIntervalMs: 60_000,
          failureCacheMs: 5_000,
        }),
      );
      t.defer(() => v3.close());
      const top = `oci:${images}:registry.example/top:1.0`;
      const outcome = (p: Promise<unknown>) =>
        p.then(
          () => 'verified',
          (e: Error) => e.message,
        );
      const first = outcome(v3.verify(top, { signal: AbortSignal.timeout(50) }));
      await sleep(10);
      const joined = outcome(v3.verify(top, { signal: AbortSignal.timeout(10_000) }));
      assert.match(await first, /aborted/);
      assert.equal(await joined, 'verified', "denied by another review's deadline");
      assert.equal(
        await outcome(v3.verify(top, { signal: AbortSignal.timeout(10_000) })),
        'verified',
      );
      assert.equal(v3.verifier.hasFreshTrust(Reference.parse('registry.example/top:1.0')), true);
      assert.equal(v3.verifier.hasFreshTrust(Reference.parse('other.example/top:1.0')), false);
    },
  },
  {
    id: 'R2-10',
    title: 'two rules with the same metadata URL and different trusted roots do not share a client',
    attack:
      'A second rule names the same metadataUrl with another trusted root; whichever rule is used first decides the trust of both',
    source: 'Outside review, round 2 (issue 12 item 10)',
    expect: 'THRESHOLD_NOT_MET',
    async run(t) {
      const a = manifestBytes('a');
      const b = manifestBytes('b');
      const w = await simWorld(t, (_repo, add) => {
        add('registry.example/a/app:1.0', a);
        add('registry.example/b/app:1.0', b);
      });
      const images = await layout(t, {
        'registry.example/a/app:1.0': a,
        'registry.example/b/app:1.0': b,
      });
      for (const order of [
        ['a', 'b'],
        ['b', 'a'],
      ]) {
        const dir = t.tmp();
        writeFileSync(join(dir, 'genuine.json'), w.repo.rootBytes(1));
        writeFileSync(join(dir, 'other.json'), new SimRepo().rootBytes(1));
        const rules = [
          {
            match: 'registry.example/a/**',
            tuf: { metadataUrl: METADATA_URL, root: 'genuine.json' },
          },
          {
            match: 'registry.example/b/**',
            tuf: { metadataUrl: METADATA_URL, root: 'other.json' },
          },
        ];
        const v = verifier(t, w, rules, () => NOW, dir);
        for (const which of order) {
          const attempt = v.verify(`oci:${images}:registry.example/${which}/app:1.0`);
          if (which === 'a') await attempt;
          else await t.refuses(attempt, 'THRESHOLD_NOT_MET');
        }
      }

      // the trust sources kept are bounded: invented names do not pile up entries for ever
      const dir = t.tmp();
      const invented = new ImageArgs(
        new Verifier({
          policy: TrustPolicy.fromJSON(
            {
              rules: [
                {
                  match: 'registry.example/**',
                  notary: { server: 'https://notary.example', rootKeys: ['0'.repeat(64)] },
                },
              ],
            },
            dir,
          ),
          files: readTrustFile,
          cacheDir: join(dir, 'cache'),
          fetcher: w.sim, // knows no Notary collection: every refresh fails
          now: () => NOW,
          refreshIntervalMs: 60_000,
          failureCacheMs: 5_000,
          maxSources: 32,
        }),
      );
      t.defer(() => invented.close());
      for (let i = 0; i < 200; i++) {
        await invented.verify(`docker://registry.example/x${i}:1.0`).catch(() => undefined);
      }
      const kept = (invented.verifier as unknown as { notary: { size: number } }).notary.size;
      assert.ok(kept <= 32, `${kept} Notary collections kept for 200 invented names`);
    },
  },
  {
    id: 'R2B-06',
    title: 'held request bodies cannot exhaust the webhook',
    attack:
      '150 TLS connections each send the headers of a 3 MiB review and most of its body, then hold; clients without the API server certificate send reviews; idle keep-alive connections fill the cap; deeply nested bodies; paced parsed reviews pending on a silent trust server',
    source: 'Outside review, round 2b (issue 13 item 6): 150 connections, 696 MiB RSS',
    expect:
      'safe: buffered bytes are capped in total (503 beyond), parsed reviews count until answered (503 beyond), connections are capped in total and per address, idle keep-alive connections close soon, nesting is capped before parsing, a held request is cut at about the review deadline, and with --client-ca a review needs the client certificate',
    timeout: 90_000,
    async run(t) {
      const tmp = t.tmp();
      const tls = await makeTls(tmp);
      const policy = {
        rules: [
          {
            match: 'registry.example/**',
            notary: { server: 'http://127.0.0.1:9', rootKeys: ['0'.repeat(64)] },
          },
        ],
      };
      const hook = await serve(t, tls, policy, ['--deadline', '2']);
      const port = Number(new URL(hook.url).port);
      const before = hook.rss();
      const body = Buffer.alloc(3 * MiB - 4096, 0x20);
      const sockets: ReturnType<typeof connect>[] = [];
      const answers: string[] = [];
      let closed = 0;
      for (let i = 0; i < 150; i++) {
        const s = connect({ host: '127.0.0.1', port, ca: tls.ca, servername: 'localhost' });
        s.on('error', () => undefined);
        s.on('data', (d: Buffer) => answers.push(d.toString('latin1').split('\r\n')[0] as string));
        s.on('close', () => {
          closed++;
        });
        s.write(
          `POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${3 * MiB}\r\n\r\n`,
        );
        s.write(body);
        sockets.push(s);
      }
      t.defer(() => {
        for (const s of sockets) s.destroy();
      });
      let maxRss = before;
      for (let i = 0; i < 60; i++) {
        await sleep(100);
        maxRss = Math.max(maxRss, hook.rss());
      }
      // every held request ends by itself at about the deadline (2 s), a few seconds at most
      for (let i = 0; i < 100 && closed < sockets.length; i++) {
        await sleep(100);
        maxRss = Math.max(maxRss, hook.rss());
      }
      const growth = maxRss - before;
      assert.ok(growth < 100 * MiB, `the webhook grew by ${Math.round(growth / MiB)} MiB`);
      assert.ok(
        answers.some((l) => / (503|429) /.test(l)),
        `no request was refused for the total buffered bytes: ${[...new Set(answers)].join(', ')}`,
      );
      assert.equal(closed, sockets.length, `${sockets.length - closed} held connections stay open`);
      // the webhook still answers
      const ok = await hook.client.get('/healthz');
      assert.equal(ok.status, 200);
      // connections that never finish the TLS handshake, or never send a request, do not hold
      // the connection cap either: closed at about the deadline
      const idle = [
        tcpConnect(port, '127.0.0.1'),
        connect({ host: '127.0.0.1', port, ca: tls.ca, servername: 'localhost' }),
      ];
      let idleClosed = 0;
      for (const s of idle) {
        s.on('error', () => undefined);
        s.on('close', () => {
          idleClosed++;
        });
      }
      t.defer(() => {
        for (const s of idle) s.destroy();
      });
      for (let i = 0; i < 80 && idleClosed < idle.length; i++) await sleep(50);
      assert.equal(idleClosed, idle.length, 'idle connections still open 4 s after the deadline');

      // keep-alive connections left idle after a probe are closed soon, and one client address
      // holds at most its share of --max-connections: the API server still gets in
      const capped = await serve(t, tls, policy, [
        '--deadline',
        '1',
        '--max-connections',
        '8',
        '--max-connections-per-ip',
        '4',
      ]);
      const cport = Number(new URL(capped.url).port);
      const held: ReturnType<typeof connect>[] = [];
      t.defer(() => {
        for (const s of held) s.destroy();
      });
      for (let i = 0; i < 8; i++) {
        const s = connect({ host: '127.0.0.1', port: cport, ca: tls.ca, servername: 'localhost' });
        s.on('error', () => undefined);
        await new Promise<void>((ok) => {
          s.once('data', () => ok());
          s.once('close', () => ok());
          s.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n');
        });
        held.push(s);
      }
      const podText = JSON.stringify(
        review({ spec: { containers: [{ name: 'c', image: 'registry.example/app:1.0' }] } }),
      );
      // another address (the whole 127/8 is loopback) while 127.0.0.1 holds its share
      assert.match(await raw(cport, tls, post('/validate', podText), 10_000, '127.0.0.2'), / 200 /);
      await sleep(2_500); // past the keep-alive timeout (the 1 s deadline)
      assert.ok(
        held.every((s) => s.destroyed || s.readyState !== 'open'),
        'idle keep-alive connections still open',
      );
      assert.match(await raw(cport, tls, post('/validate', podText)), / 200 /);

      // a deeply nested body is refused before parsing: the event loop does not stall
      const depth = Math.floor((3 * MiB - 4096) / 2);
      const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      const attackers = Array.from({ length: 3 }, () =>
        raw(port, tls, post('/validate', nested), 30_000),
      );
      await sleep(300);
      const started = Date.now();
      assert.match(
        await raw(port, tls, 'GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n'),
        / 200 /,
      );
      const probeMs = Date.now() - started;
      for (const a of await Promise.all(attackers)) assert.match(a, / (400|503) /);
      assert.ok(probeMs < 1_000, `/healthz took ${probeMs} ms during nested bodies`);
      // larger than the API server ever sends: 413
      // (refused at its content-length: the server may close before the body is written)
      assert.match(
        await raw(port, tls, post('/validate', ' '.repeat(3 * MiB + 1))),
        / 413 |EPIPE|ECONNRESET/,
      );

      // parsed reviews count against memory until answered: complete 3 MiB reviews of small
      // objects, each pending on a trust server that never answers, stay bounded
      const hole = await silentServer(t);
      const pending = await serve(
        t,
        tls,
        {
          rules: [
            {
              match: 'registry.example/**',
              notary: { server: `http://${hole.host}`, rootKeys: ['0'.repeat(64)] },
            },
          ],
        },
        ['--deadline', '6'],
      );
      const pport = Number(new URL(pending.url).port);
      const base = pending.rss();
      const junk = `[${new Array(Math.floor((3 * MiB - 1024) / 3)).fill('{}').join(',')}]`;
      const bodyOf = (k: number) => {
        const head = JSON.stringify(
          review({ spec: { containers: [{ name: 'c', image: `registry.example/r${k}:1.0` }] } }),
        );
        return `${head.slice(0, -2)},"junk":${junk}}}`;
      };
      let peak = base;
      const sampler = setInterval(() => {
        peak = Math.max(peak, pending.rss());
      }, 50);
      t.defer(() => clearInterval(sampler));
      const sent: Array<Promise<string>> = [];
      for (let k = 0; k < 24; k++) {
        sent.push(raw(pport, tls, post('/validate', bodyOf(k)), 60_000));
        await sleep(150);
      }
      const statuses = await Promise.all(sent);
      clearInterval(sampler);
      assert.ok(
        statuses.some((x) => / 503 /.test(x)),
        `no review refused: ${statuses.join(', ')}`,
      );
      assert.ok(peak - base < 400 * MiB, `grew by ${Math.round((peak - base) / MiB)} MiB`);

      // --client-ca: a review needs a client certificate from that CA; probes do not
      const ca = tls.caFile;
      const f = (n: string) => join(tmp, n);
      const openssl = (args: string[]) => {
        const r = spawnSync('openssl', args, { timeout: 30_000 });
        assert.equal(r.status, 0, r.stderr?.toString());
      };
      const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
      openssl([
        'req',
        ...ec,
        '-keyout',
        f('client.key'),
        '-out',
        f('client.csr'),
        '-subj',
        '/CN=kube-apiserver',
      ]);
      writeFileSync(f('client.ext'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
      openssl([
        'x509',
        '-req',
        '-in',
        f('client.csr'),
        '-CA',
        ca,
        '-CAkey',
        f('ca.key'),
        '-CAcreateserial',
        '-out',
        f('client.crt'),
        '-days',
        '2',
        '-extfile',
        f('client.ext'),
      ]);
      const mtls = await serve(t, tls, policy, ['--deadline', '2', '--client-ca', ca]);
      const pod = review({
        spec: { containers: [{ name: 'c', image: 'registry.example/app:1.0' }] },
      });
      const anonymous = await mtls.client.post('/validate', pod).catch((e: Error) => e);
      assert.ok(
        anonymous instanceof Error || anonymous.status === 401 || anonymous.status === 403,
        `a review without a client certificate was answered: ${JSON.stringify(anonymous)}`,
      );
      assert.equal((await mtls.client.get('/healthz')).status, 200, 'probes need no certificate');
      const withCert = await new Promise<number>((resolve, reject) => {
        const s = connect({
          host: '127.0.0.1',
          port: Number(new URL(mtls.url).port),
          ca: tls.ca,
          servername: 'localhost',
          cert: readFileSync(f('client.crt')),
          key: readFileSync(f('client.key')),
        });
        const text = JSON.stringify(pod);
        let got = '';
        s.on('error', reject);
        s.on('data', (d: Buffer) => {
          got += d.toString();
          const m = /^HTTP\/1\.1 (\d+)/.exec(got);
          if (m) {
            s.destroy();
            resolve(Number(m[1]));
          }
        });
        s.write(
          `POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
        );
        setTimeout(() => reject(new Error('no answer')), 15_000).unref();
      });
      assert.equal(withCert, 200, 'the API server (with its certificate) is answered');
    },
  },
];

describe('security round 2: the webhook and long-lived verifiers', () => {
  defineCases(cases);
});
