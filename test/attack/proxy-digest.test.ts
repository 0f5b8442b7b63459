/**
 * attack-c: issue 15 parts 2 and 3 (digest references, `tufa proxy`).
 * Each test asserts the secure behaviour: a failing test is a break.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Key } from '../../src/core/index.js';
import { createHash } from 'node:crypto';
import { type RunningRegistryProxy, startRegistryProxy } from '../../src/proxy/index.js';
import {
  hashesOf,
  KeyObjectSigner,
  publishWorkspace,
  type Signer,
  Workspace,
} from '../../src/repository/index.js';
import { TrustPolicy } from '../../src/verify/policy.js';
import { ImageVerifier } from '../../src/verify/verify-image.js';
import { readFile } from 'node:fs/promises';
import { Reference, RegistryClient, RegistrySource } from '../../src/oci/index.js';
const registry = new RegistryClient();
const vf = (v: ImageVerifier, i: string) => { const r = Reference.parse(i); return v.verify(r, new RegistrySource(registry, r)); };
import { OciSim, type SimImage } from '../support/oci-sim.js';
import { StaticServer } from '../support/static-server.js';

const te = new TextEncoder();
const signer = (): KeyObjectSigner =>
  new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);

interface World {
  reg: OciSim;
  ws: Workspace;
  dir: string;
  image(path: string): string;
  entry(img: SimImage): { length: number; hashes: Record<string, string> };
  release(refreshIntervalMs?: number): Promise<ImageVerifier>;
  close(): Promise<void>;
}

async function world(): Promise<World> {
  const defers: Array<() => unknown> = [];
  const reg = await OciSim.start();
  defers.push(() => reg.close());
  const dir = mkdtempSync(join(tmpdir(), 'attack-c-'));
  defers.push(() => rmSync(dir, { recursive: true, force: true }));
  const k: Record<'root' | 'targets' | 'snapshot' | 'timestamp', Signer> = {
    root: signer(),
    targets: signer(),
    snapshot: signer(),
    timestamp: signer(),
  };
  const pub = (s: Signer): Key[] => [s.publicKey];
  const ws = await Workspace.init(join(dir, 'repo'), {
    keys: {
      root: pub(k.root),
      targets: pub(k.targets),
      snapshot: pub(k.snapshot),
      timestamp: pub(k.timestamp),
    },
    now: Date.now(),
  });
  const site = join(dir, 'site');
  mkdirSync(site);
  const server = await StaticServer.start(site);
  defers.push(() => server.close());
  let n = 0;
  return {
    reg,
    ws,
    dir,
    image: (path) => `${reg.host}/${path}`,
    entry: (i) => ({ length: i.bytes.length, hashes: hashesOf(i.bytes) }),
    async release(refreshIntervalMs?: number) {
      for (const { name } of await ws.targetsRoles()) await ws.sign(name, k.targets);
      await ws.sign('root', k.root);
      await ws.refreshSnapshotMeta();
      await ws.sign('snapshot', k.snapshot);
      await ws.refreshTimestampMeta();
      await ws.sign('timestamp', k.timestamp);
      await publishWorkspace(ws, site);
      if (n === 0) writeFileSync(join(dir, 'root.json'), await ws.bytes('root'));
      const policy = TrustPolicy.fromJSON(
        {
          rules: [
            { match: `${reg.host}/demo/**`, tuf: { metadataUrl: server.url(''), root: 'root.json' } },
          ],
        },
        dir,
      );
      const v = new ImageVerifier({
        policy,
        registry,
        files: (p) => readFile(p),
        cacheDir: join(dir, `cache-${++n}`),
        ...(refreshIntervalMs === undefined ? {} : { refreshIntervalMs }),
      });
      defers.push(() => v.close());
      return v;
    },
    async close() {
      for (const d of defers.reverse()) await d();
    },
  };
}

function get(
  url: string,
  method = 'GET',
  timeoutMs = 15_000,
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let aborted = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('aborted', () => (aborted = true));
      res.on('error', () => (aborted = true));
      res.on('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          aborted: aborted || !res.complete,
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('attack-c: digest references (issue 15 part 2)', function () {
  this.timeout(60_000);

  it('held: `repo add-target` (addTargetFile) cannot list an image tag path at all (a : in the path)', async () => {
    const w = await world();
    try {
      const v2 = w.reg.pushImage('demo/app', undefined, [te.encode('layer v2')]);
      await assert.rejects(w.ws.addTargetFile('registry.example/demo/app:1.0', v2.bytes), /holds a :/);
    } finally {
      await w.close();
    }
  });

  it('ATTACK moved tag via Workspace.addTarget leaves the old digest signed', async () => {
    const w = await world();
    try {
      const v1 = w.reg.pushImage('demo/app', '1.0', [te.encode('layer v1')]);
      const v2 = w.reg.pushImage('demo/app', undefined, [te.encode('layer v2')]);
      await w.ws.addImage(w.image('demo/app:1.0'), w.entry(v1));
      await w.ws.addTarget(w.image('demo/app:1.0'), w.entry(v2));
      const v = await w.release();
      await assert.rejects(vf(v, w.image(`demo/app@${v1.digest}`)), /UNSIGNED|not signed/);
    } finally {
      await w.close();
    }
  });

  it('held: digest signed for another repository / digest path listing other bytes / tag@digest mismatch', async () => {
    const w = await world();
    try {
      const v1 = w.reg.pushImage('demo/app', '1.0', [te.encode('layer v1')]);
      const o = w.reg.pushImage('demo/other', '1.0', [te.encode('layer v1')]);
      const x = w.reg.pushImage('demo/app', undefined, [te.encode('layer x')]);
      await w.ws.addImage(w.image('demo/app:1.0'), w.entry(v1));
      // a digest path of x listing v1's bytes
      await w.ws.addTarget(w.image(`demo/app@${x.digest}`), w.entry(v1));
      const v = await w.release();
      assert.equal(o.digest, v1.digest);
      await assert.rejects(vf(v, w.image(`demo/other@${v1.digest}`)));
      await assert.rejects(vf(v, w.image(`demo/app@${x.digest}`)), /DIGEST_MISMATCH|not the signed/);
      await assert.rejects(vf(v, w.image(`demo/app:1.0@${x.digest}`)));
      await assert.rejects(vf(v, w.image(`demo/app:latest@${v1.digest}`)));
    } finally {
      await w.close();
    }
  });
});

describe('attack-c: tufa proxy (issue 15 part 3)', function () {
  this.timeout(120_000);
  let w: World;
  let v: ImageVerifier;
  let proxy: RunningRegistryProxy;
  let signed: SimImage;
  let unsigned: SimImage;
  let big: SimImage;
  let a64: SimImage;
  let arm: SimImage;
  let index: { digest: string; bytes: Uint8Array };
  const bigLayer = new Uint8Array(64 * 1024 * 1024).fill(7);

  before(async () => {
    w = await world();
    signed = w.reg.pushImage('demo/app', '1.0', [te.encode('signed layer')]);
    unsigned = w.reg.pushImage('demo/app', 'evil', [te.encode('unsigned layer')]);
    w.reg.pushImage('demo/other', '1.0', [te.encode('signed layer')]);
    big = w.reg.pushImage('demo/big', '1.0', [bigLayer]);
    a64 = w.reg.pushImage('demo/multi', undefined, [te.encode('amd64')]);
    arm = w.reg.pushImage('demo/multi', undefined, [te.encode('arm64')], {
      os: 'linux',
      architecture: 'arm64',
    });
    const idx = te.encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: a64.digest,
            size: a64.bytes.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: arm.digest,
            size: arm.bytes.length,
            platform: { os: 'linux', architecture: 'arm64' },
          },
        ],
      }),
    );
    index = {
      digest: w.reg.putManifest('demo/multi', idx, 'application/vnd.oci.image.index.v1+json', '1.0'),
      bytes: idx,
    };
    // the same child manifests also exist in another repository
    w.reg.putManifest('demo/copy', a64.bytes, 'application/vnd.oci.image.manifest.v1+json');
    await w.ws.addImage(w.image('demo/app:1.0'), w.entry(signed));
    await w.ws.addImage(w.image('demo/big:1.0'), w.entry(big));
    await w.ws.addTarget(w.image('demo/multi:1.0'), {
      length: idx.length,
      hashes: hashesOf(idx),
    });
    v = await w.release();
    proxy = await startRegistryProxy({ registry, verifier: v, upstream: w.reg.host });
  });
  after(async () => {
    await proxy?.close();
    await w?.close();
  });

  it('held: path tricks never serve the unsigned manifest', async () => {
    const bad = new Set([unsigned.digest]);
    const paths = [
      `/v2/demo/app/manifests/evil`,
      `/v2/demo/app/manifests/${unsigned.digest}`,
      `/v2/demo//app/manifests/evil`,
      `/v2/demo/app/manifests/1.0/../evil`,
      `/v2/demo/x/../app/manifests/evil`,
      `/v2/demo%2Fapp/manifests/evil`,
      `/v2/demo/app/manifests/evil%3F`,
      `/v2/demo/app/manifests/1.0@${unsigned.digest}`,
      `/v2/demo/app/manifests/1.0%40${unsigned.digest}`,
      `/v2/DEMO/APP/manifests/evil`,
      `/v2/demo/app/manifests/evil?ns=${w.reg.host}`,
      `/v2/demo/app/manifests/evil#x`,
      `/v2/demo\\app/manifests/evil`,
      `/v2/${w.reg.host}/demo/app/manifests/evil`,
      `/v2/demo/other/manifests/${signed.digest}`,
      `/v2/demo/copy/manifests/${a64.digest}`,
    ];
    for (const p of paths)
      for (const m of ['GET', 'HEAD']) {
        const r = await get(`${proxy.url}${p}`, m);
        const d = r.headers['docker-content-digest'];
        if (r.status === 200) {
          assert.ok(!bad.has(d as string), `${m} ${p} served unsigned ${d}`);
          if (m === 'GET') assert.ok(!bad.has(sha(r.body)), `${m} ${p} served unsigned bytes`);
        }
        // error bodies must not echo raw control characters
        assert.ok(!/[\u0000-\u001f]/.test(r.body.toString('utf8')), `${p}: control chars`);
      }
    // sanity: the signed ones come through
    assert.equal((await get(`${proxy.url}/v2/demo/app/manifests/1.0`)).status, 200);
    assert.equal((await get(`${proxy.url}/v2/demo/multi/manifests/1.0`)).status, 200);
    assert.equal((await get(`${proxy.url}/v2/demo/multi/manifests/${arm.digest}`)).status, 200);
    // a child of the index this proxy served, asked for under another repository
    assert.equal((await get(`${proxy.url}/v2/demo/copy/manifests/${a64.digest}`)).status, 403);
  });

  it('held: write methods, catalog, tags list, sha512 / malformed blob digests', async () => {
    for (const m of ['PUT', 'POST', 'DELETE', 'PATCH'])
      assert.equal((await get(`${proxy.url}/v2/demo/app/manifests/1.0`, m)).status, 405);
    assert.notEqual((await get(`${proxy.url}/v2/_catalog`)).status, 200);
    assert.notEqual((await get(`${proxy.url}/v2/demo/app/tags/list`)).status, 200);
    assert.equal(
      (await get(`${proxy.url}/v2/demo/app/blobs/sha512:${'a'.repeat(128)}`)).status,
      400,
    );
    assert.equal((await get(`${proxy.url}/v2/demo/app/blobs/sha256:${'A'.repeat(64)}`)).status, 400);
    const m = (await get(`${proxy.url}/metrics`)).body.toString();
    assert.ok(!m.includes('demo/app'), 'metrics name images');
  });

  it('held: a blob whose upstream bytes differ never looks complete', async () => {
    const layer = signed.layers[0] as { digest: string; size: number };
    const orig = w.reg.intercept;
    const size = 3 * 1024 * 1024;
    const fake = new Uint8Array(size).fill(1);
    const digest = `sha256:${'1'.repeat(64)}`;
    w.reg.intercept = (req, res) => {
      if (!req.url?.includes(digest)) return false;
      res.writeHead(200, { 'content-length': size });
      res.end(req.method === 'HEAD' ? undefined : fake);
      return true;
    };
    try {
      const r = await get(`${proxy.url}/v2/demo/app/blobs/${digest}`);
      assert.ok(r.status !== 200 || r.aborted, 'a wrong blob arrived complete');
      assert.ok(r.body.length < size);
      const ok = await get(`${proxy.url}/v2/demo/app/blobs/${layer.digest}`);
      assert.equal(ok.status, 200);
    } finally {
      w.reg.intercept = orig;
    }
  });

  it('ATTACK DoS: 8 clients that never read a large blob hold every blob stream slot', async () => {
    const layer = big.layers[0] as { digest: string; size: number };
    const [host, port] = proxy.host.split(':') as [string, string];
    const sockets: Socket[] = [];
    try {
      const small = signed.layers[0] as { digest: string; size: number };
      const open = () => {
        const s = connect({ host, port: Number(port) });
        s.on('error', () => {});
        s.write(`GET /v2/demo/big/blobs/${layer.digest} HTTP/1.1\r\nHost: x\r\n\r\n`);
        s.pause(); // never read: the proxy's writes stall on drain
        sockets.push(s);
      };
      // control: 7 stalled clients leave one slot, an honest request still gets through
      for (let i = 0; i < 7; i++) open();
      await new Promise((r) => setTimeout(r, 2000));
      const c = await get(`${proxy.url}/v2/demo/app/blobs/${small.digest}`, 'GET', 10_000);
      assert.equal(c.status, 200, 'control');
      open(); // the 8th takes the last slot
      await new Promise((r) => setTimeout(r, 2000));
      // an honest client's GET of a small blob of a signed image
      const r = await get(`${proxy.url}/v2/demo/app/blobs/${small.digest}`, 'GET', 10_000).catch(
        (e: Error) => ({ status: 0, err: e.message }),
      );
      assert.equal(r.status, 200, `an honest blob request starved: ${JSON.stringify(r).slice(0, 200)}`);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('held?: a child of a signed index is no longer served once the index tag moves', async () => {
    const w2 = await world();
    let p2: RunningRegistryProxy | undefined;
    try {
      const a = w2.reg.pushImage('demo/multi', undefined, [te.encode('amd64')]);
      const b = w2.reg.pushImage('demo/multi', undefined, [te.encode('arm64 vulnerable')], {
        os: 'linux',
        architecture: 'arm64',
      });
      const b2 = w2.reg.pushImage('demo/multi', undefined, [te.encode('arm64 fixed')], {
        os: 'linux',
        architecture: 'arm64',
      });
      const mk = (kids: SimImage[]) =>
        te.encode(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.index.v1+json',
            manifests: kids.map((k, i) => ({
              mediaType: 'application/vnd.oci.image.manifest.v1+json',
              digest: k.digest,
              size: k.bytes.length,
              platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' },
            })),
          }),
        );
      const i1 = mk([a, b]);
      const i2 = mk([a, b2]);
      const IDX = 'application/vnd.oci.image.index.v1+json';
      const d1 = w2.reg.putManifest('demo/multi', i1, IDX, '1.0');
      const d2 = w2.reg.putManifest('demo/multi', i2, IDX);
      await w2.ws.addImage(w2.image('demo/multi:1.0'), { length: i1.length, hashes: hashesOf(i1) });
      const v2 = await w2.release(50);
      p2 = await startRegistryProxy({ registry, verifier: v2, upstream: w2.reg.host });
      assert.equal((await get(`${p2.url}/v2/demo/multi/manifests/1.0`)).status, 200);
      assert.equal((await get(`${p2.url}/v2/demo/multi/manifests/${b.digest}`)).status, 200);
      assert.equal((await get(`${p2.url}/v2/demo/multi/manifests/${d1}`)).status, 200);
      // re-release 1.0 as i2 (the vulnerable arm64 child b is gone)
      await w2.ws.addImage(w2.image('demo/multi:1.0'), { length: i2.length, hashes: hashesOf(i2) });
      await w2.release();
      w2.reg.tag('demo/multi', '1.0', d2);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await get(`${p2.url}/v2/demo/multi/manifests/1.0`)).status, 200);
      const old = await get(`${p2.url}/v2/demo/multi/manifests/${b.digest}`);
      assert.equal(old.status, 403, 'the vulnerable child of the re-released index is still served');
      assert.equal((await get(`${p2.url}/v2/demo/multi/manifests/${d1}`)).status, 403);
      // the old index served by digest earlier: its children must not come back either
      assert.equal((await get(`${p2.url}/v2/demo/multi/manifests/${b.digest}`)).status, 403);
    } finally {
      await p2?.close();
      await w2.close();
    }
  });

  it('ATTACK DoS: stalled blob readers + queued blob requests exhaust maxConnections: /healthz and manifests die', async () => {
    const p3 = await startRegistryProxy({ registry, verifier: v, upstream: w.reg.host, maxConnections: 64 });
    const layer = big.layers[0] as { digest: string; size: number };
    const [host, port] = p3.host.split(':') as [string, string];
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 64; i++) {
        const s = connect({ host, port: Number(port) });
        s.on('error', () => {});
        s.write(`GET /v2/demo/big/blobs/${layer.digest} HTTP/1.1\r\nHost: x\r\n\r\n`);
        s.pause();
        sockets.push(s);
      }
      await new Promise((r) => setTimeout(r, 12_000)); // past headersTimeout and keepAliveTimeout
      const h = await get(`${p3.url}/healthz`, 'GET', 5_000).catch((e: Error) => ({
        status: 0,
        err: e.message,
      }));
      assert.equal(h.status, 200, `healthz: ${JSON.stringify(h).slice(0, 200)}`);
      const m = await get(`${p3.url}/v2/demo/app/manifests/1.0`, 'GET', 5_000).catch(
        (e: Error) => ({ status: 0, err: e.message }),
      );
      assert.equal(m.status, 200, `manifest: ${JSON.stringify(m).slice(0, 200)}`);
    } finally {
      for (const s of sockets) s.destroy();
      await p3.close();
    }
  });
});
