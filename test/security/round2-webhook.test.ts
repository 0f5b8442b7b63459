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
import { formatExpires } from '../../src/core/metadata/fields.js';
import { MEDIA_TYPES, Reference } from '../../src/oci/index.js';
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
): Verifier {
  const v = new Verifier({
    policy: TrustPolicy.fromJSON({ rules }, dir),
    cacheDir: join(dir, 'cache'),
    fetcher: w.sim,
    now: clock,
    refreshIntervalMs: 24 * HOUR,
  });
  t.defer(() => v.close());
  return v;
}

/** A verifier stand-in for the review logic: images in `signed` verify, others do not. */
function stubVerifier(signed: ReadonlySet<string>): ImageVerifier {
  return {
    async verify(input: string) {
      const image = input.replace(/^docker:\/\//, '');
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

      // the failures are remembered a short while: a review of images whose trust refresh
      // failed (the first ones started) is denied at once, with that failure
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
      assert.doesNotMatch(c.response.status?.message ?? '', /DEADLINE_EXCEEDED/);
      assert.ok(again.ms < 1500, `the second review took ${again.ms} ms`);
      const growth = maxRss - before;
      assert.ok(growth < 100 * MiB, `the webhook grew by ${Math.round(growth / MiB)} MiB`);
    },
  },
  {
    id: 'R2-08',
    title: 'image volumes are verified and pinned in every workload kind',
    attack:
      'A Pod (or Deployment, CronJob, …) mounts an unsigned image as a volume (spec.volumes[].image.reference), which the kubelet pulls',
    source: 'Outside review, round 2 (issue 12 item 8); Kubernetes image volumes (KEP-4639)',
    expect: 'UNSIGNED_IMAGE',
    async run(t) {
      const signed = 'registry.example/app:1.0';
      const controller = new AdmissionController({
        verifier: stubVerifier(new Set([signed])),
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
    },
  },
  {
    id: 'R2B-06',
    title: 'held request bodies cannot exhaust the webhook',
    attack:
      '150 TLS connections each send the headers of a 4 MiB review and most of its body, then hold; clients without the API server certificate send reviews',
    source: 'Outside review, round 2b (issue 13 item 6): 150 connections, 696 MiB RSS',
    expect:
      'safe: buffered bytes are capped in total (503 beyond), connections are capped, a held request is cut at about the review deadline, and with --client-ca a review needs the client certificate',
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
      const body = Buffer.alloc(4 * MiB - 4096, 0x20);
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
          `POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${4 * MiB}\r\n\r\n`,
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
