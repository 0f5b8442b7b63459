/**
 * Security round 3 (attack-c): the verifying registry proxy (`tufa proxy`) and digest references.
 * Clients that never read a blob must not hold the proxy's blob streams or connections, and a
 * tag moved by `Workspace.addTarget` (what `tufa notary import` calls) must not leave its old
 * digest path signed.
 *
 * Everything runs on 127.0.0.1 (a second client address is 127.0.0.2): the in-process registry
 * simulator, a real signing workspace published by a static server, the proxy.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Key } from '../../src/core/index.js';
import { Reference, RegistryClient, RegistrySource } from '../../src/oci/index.js';
import {
  type RegistryProxyOptions,
  type RunningRegistryProxy,
  startRegistryProxy,
} from '../../src/proxy/index.js';
import {
  hashesOf,
  KeyObjectSigner,
  publishWorkspace,
  type Signer,
  Workspace,
} from '../../src/repository/index.js';
import { ImageVerifier, TrustPolicy } from '../../src/verify/index.js';
import { OciSim, type SimImage } from '../support/oci-sim.js';
import { StaticServer } from '../support/static-server.js';
import { type CaseContext, defineCases, type SecurityCase, sleep } from './harness.js';

const te = new TextEncoder();
const signer = (): KeyObjectSigner =>
  new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);

interface World {
  readonly reg: OciSim;
  readonly ws: Workspace;
  readonly registry: RegistryClient;
  image(path: string): string;
  entry(img: SimImage): { length: number; hashes: Record<string, string> };
  /** release signs and publishes the workspace and returns a fresh verifier of it. */
  release(): Promise<ImageVerifier>;
  /** verify verifies an image through the registry. */
  verify(v: ImageVerifier, image: string): Promise<{ digest: string }>;
}

async function world(t: CaseContext): Promise<World> {
  const reg = await OciSim.start();
  t.defer(() => reg.close());
  const dir = t.tmp();
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
  t.defer(() => server.close());
  const registry = new RegistryClient();
  let n = 0;
  return {
    reg,
    ws,
    registry,
    image: (path) => `${reg.host}/${path}`,
    entry: (i) => ({ length: i.bytes.length, hashes: hashesOf(i.bytes) }),
    async release() {
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
            { match: `${reg.host}/**`, tuf: { metadataUrl: server.url(''), root: 'root.json' } },
          ],
        },
        dir,
      );
      const v = new ImageVerifier({
        policy,
        registry,
        files: (path) => readFile(path),
        cacheDir: join(dir, `cache-${++n}`),
      });
      t.defer(() => v.close());
      return v;
    },
    verify(v, image) {
      const r = Reference.parse(image);
      return v.verify(r, new RegistrySource(registry, r));
    },
  };
}

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
}

/** get asks the proxy once (from `localAddress`, default 127.0.0.1); status 0 when it hung. */
function get(
  url: string,
  o: { method?: string; timeoutMs?: number; localAddress?: string } = {},
): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: o.method ?? 'GET',
        timeout: o.timeoutMs ?? 10_000,
        localAddress: o.localAddress ?? '127.0.0.1',
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => {});
        res.on('close', () =>
          resolve({
            status: res.complete ? (res.statusCode ?? 0) : 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, headers: {}, body: Buffer.alloc(0) }));
    req.end();
  });
}

/** until asks again (bounded) until the answer has `status`. */
async function until(ask: () => Promise<Answer>, status: number, tries = 40): Promise<Answer> {
  let a = await ask();
  for (let i = 1; i < tries && a.status !== status; i++) {
    await sleep(500);
    a = await ask();
  }
  return a;
}

/** A signed image with a 64 MiB layer and a small one, behind a proxy. */
async function proxied(
  t: CaseContext,
  options: Partial<RegistryProxyOptions>,
): Promise<{
  proxy: RunningRegistryProxy;
  big: string;
  small: string;
  host: string;
  evil: string;
}> {
  const w = await world(t);
  const big = w.reg.pushImage('demo/big', '1.0', [new Uint8Array(64 * 1024 * 1024).fill(7)]);
  const app = w.reg.pushImage('demo/app', '1.0', [te.encode('signed layer')]);
  const evil = w.reg.pushImage('demo/app', 'evil', [te.encode('unsigned layer')]);
  await w.ws.addImage(w.image('demo/big:1.0'), w.entry(big));
  await w.ws.addImage(w.image('demo/app:1.0'), w.entry(app));
  const verifier = await w.release();
  // a variable, not a literal: the options are checked as the proxy reads them
  const o = { verifier, registry: w.registry, upstream: w.reg.host, ...options };
  const proxy = await startRegistryProxy(o);
  t.defer(() => proxy.close());
  return {
    proxy,
    big: (big.layers[0] as { digest: string }).digest,
    small: (app.layers[0] as { digest: string }).digest,
    host: w.reg.host,
    evil: evil.digest,
  };
}

/** stall opens `n` connections from 127.0.0.1 that ask for a blob and never read. */
function stall(t: CaseContext, proxy: RunningRegistryProxy, digest: string, n: number): void {
  const [host, port] = proxy.host.split(':') as [string, string];
  const sockets: Socket[] = [];
  t.defer(() => {
    for (const s of sockets) s.destroy();
  });
  for (let i = 0; i < n; i++) {
    const s = connect({ host, port: Number(port), localAddress: '127.0.0.1' });
    s.on('error', () => {});
    s.write(`GET /v2/demo/big/blobs/${digest} HTTP/1.1\r\nHost: x\r\n\r\n`);
    s.pause(); // never read: the proxy's writes wait for a drain that never comes
    sockets.push(s);
  }
}

const cases: SecurityCase[] = [
  {
    id: 'R3-30',
    title: 'a tag moved with Workspace.addTarget takes its old digest path with it',
    attack:
      'A tag listed with addImage (tag and digest paths) is moved with addTarget, as `tufa notary import` does for a re-released `<gun>:<tag>`: the old digest path stayed signed, so `demo/app@<old digest>` kept verifying',
    source: 'attack round 3 (attack-c); issue 15 part 2',
    expect: 'UNSIGNED_IMAGE',
    async run(t) {
      const w = await world(t);
      const v1 = w.reg.pushImage('demo/app', '1.0', [te.encode('layer v1')]);
      const v2 = w.reg.pushImage('demo/app', undefined, [te.encode('layer v2')]);
      // held: a tag path cannot be listed as a file target at all
      await assert.rejects(w.ws.addTargetFile(w.image('demo/app:1.0'), v2.bytes), /holds a :/);
      await w.ws.addImage(w.image('demo/app:1.0'), w.entry(v1));
      await w.ws.addTarget(w.image('demo/app:1.0'), w.entry(v2));
      const v = await w.release();
      await t.refuses(w.verify(v, w.image(`demo/app@${v1.digest}`)), 'UNSIGNED_IMAGE');
      w.reg.tag('demo/app', '1.0', v2.digest);
      assert.equal((await w.verify(v, w.image('demo/app:1.0'))).digest, v2.digest);
    },
  },
  {
    id: 'R3-31',
    title: 'clients that never read a blob cannot hold the proxy blob streams',
    attack:
      '8 connections from one address GET a 64 MiB blob and never read: the proxy waited for drain forever, the 8 blob streams stayed taken, and every later blob GET/HEAD of every client queued without end',
    source: 'attack round 3 (attack-c); issue 15 part 3',
    expect: 'TOOMANYREQUESTS',
    timeout: 60_000,
    async run(t) {
      const { proxy, big, small } = await proxied(t, {
        queueTimeoutMs: 1_000,
        stallTimeoutMs: 3_000,
      });
      stall(t, proxy, big, 8);
      await sleep(500);
      // another client gets a stream at once: one address holds at most 4 of the 8
      const other = await get(`${proxy.url}/v2/demo/app/blobs/${small}`, {
        localAddress: '127.0.0.2',
      });
      assert.equal(other.status, 200, 'another client starved');
      assert.equal(other.body.toString(), 'signed layer');
      // the stalling address waits a bounded time, then is told to come back
      const busy = await get(`${proxy.url}/v2/demo/app/blobs/${small}`);
      assert.equal(busy.status, 503, 'a queued blob request has no deadline');
      assert.ok(Number(busy.headers['retry-after']) > 0, 'no Retry-After');
      const body = JSON.parse(busy.body.toString()) as { errors: Array<{ code: string }> };
      assert.equal(body.errors[0]?.code, 'TOOMANYREQUESTS');
      t.refusedBy('TOOMANYREQUESTS');
      const head = await get(`${proxy.url}/v2/demo/app/blobs/${small}`, { method: 'HEAD' });
      assert.equal(head.status, 503, 'a queued blob HEAD has no deadline');
      // the stalled streams are cut at the write-progress timeout: the address is served again
      const later = await until(() => get(`${proxy.url}/v2/demo/app/blobs/${small}`), 200);
      assert.equal(later.status, 200, 'stalled streams never released');
    },
  },
  {
    id: 'R3-32',
    title: 'never-read blob requests on every connection leave /healthz and manifests answering',
    attack:
      'With maxConnections 64, 64 connections GET a 64 MiB blob and never read: every connection slot stayed taken, so /healthz failed (the orchestrator restarts the proxy) and no image could be pulled',
    source: 'attack round 3 (attack-c); issue 15 part 3',
    expect:
      'safe: /healthz answers at once on a reserved connection; the stuck ones are cut and manifests are served again',
    timeout: 90_000,
    async run(t) {
      const { proxy, big, host, evil } = await proxied(t, {
        maxConnections: 64,
        queueTimeoutMs: 1_000,
        stallTimeoutMs: 2_000,
      });
      stall(t, proxy, big, 64);
      await sleep(1_000);
      const h = await get(`${proxy.url}/healthz`, { timeoutMs: 5_000 });
      assert.equal(h.status, 200, '/healthz refused or hung');
      const m = await until(
        () => get(`${proxy.url}/v2/demo/app/manifests/1.0`, { timeoutMs: 5_000 }),
        200,
      );
      assert.equal(m.status, 200, 'manifests never served again');
      // held (attack-c): path tricks never serve the unsigned manifest; the proxy is read-only
      for (const p of [
        '/v2/demo/app/manifests/evil',
        `/v2/demo/app/manifests/${evil}`,
        '/v2/demo//app/manifests/evil',
        '/v2/demo/x/../app/manifests/evil',
        '/v2/demo%2Fapp/manifests/evil',
        `/v2/demo/app/manifests/1.0@${evil}`,
        `/v2/demo/app/manifests/1.0%40${evil}`,
        '/v2/DEMO/APP/manifests/evil',
        `/v2/demo/app/manifests/evil?ns=${host}`,
        `/v2/${host}/demo/app/manifests/evil`,
      ]) {
        const r = await get(`${proxy.url}${p}`);
        assert.notEqual(r.status, 200, `${p} served`);
        assert.ok(![...r.body].some((b) => b < 0x20), `${p}: control characters`);
      }
      for (const method of ['PUT', 'POST', 'DELETE', 'PATCH'])
        assert.equal((await get(`${proxy.url}/v2/demo/app/manifests/1.0`, { method })).status, 405);
    },
  },
];

describe('security battery: round 3, the registry proxy and digest references', () => {
  defineCases(cases);
});
