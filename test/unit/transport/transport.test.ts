/**
 * The one HTTP transport, layer by layer, against small servers on 127.0.0.1: limits and
 * deadlines (base), redirects and the credential rule, retries, and the auth layer answering
 * only the asked origin's own challenges.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  createTransport,
  NodeTransport,
  RedirectLayer,
  RetryLayer,
  type Transport,
  TransportError,
} from '../../../src/transport/index.js';
import { OciSim, type SimAuth } from '../../support/oci-sim.js';

interface TestServer {
  readonly origin: string;
  readonly seen: IncomingMessage[];
  close(): Promise<void>;
}

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse, n: number) => void,
): Promise<TestServer> {
  const seen: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    seen.push(req);
    handler(req, res, seen.length);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

async function fails(p: Promise<unknown>, code: string, message?: RegExp): Promise<TransportError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TransportError, `expected a TransportError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('transport', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });
  function use<T extends { close(): Promise<void> }>(x: T): T {
    open.push(x);
    return x;
  }

  describe('base (node:http)', () => {
    it('reads a body within its limit; longer, announced or streamed, is TOO_LARGE', async () => {
      const s = use(
        await serve((req, res) => {
          if (req.url === '/ok') res.end('hello');
          else if (req.url === '/announced') {
            res.writeHead(200, { 'content-length': '1000000' });
            res.write('x');
          } else {
            res.writeHead(200); // chunked: no length announced
            for (let i = 0; i < 10; i++) res.write('0123456789');
            res.end();
          }
        }),
      );
      const t = use(new NodeTransport());
      const ok = await t.send({ url: `${s.origin}/ok`, maxLength: 5 });
      assert.equal(ok.status, 200);
      assert.equal(text(await ok.bytes()), 'hello');
      await fails(
        t.send({ url: `${s.origin}/announced`, maxLength: 100 }),
        'TOO_LARGE',
        /announced/,
      );
      const streamed = await t.send({ url: `${s.origin}/streamed`, maxLength: 50 });
      await fails(streamed.bytes(), 'TOO_LARGE');
    });

    it('a silent server hits the read-gap timeout; a dripping one the deadline (TIMEOUT)', async () => {
      const s = use(
        await serve((req, res) => {
          if (req.url === '/silent') return; // never answers
          res.writeHead(200);
          const drip = setInterval(() => {
            if (res.destroyed) clearInterval(drip);
            else res.write('.');
          }, 50);
          res.on('close', () => clearInterval(drip));
        }),
      );
      const t = use(new NodeTransport({ readGapTimeout: 200 }));
      const started = performance.now();
      await fails(t.send({ url: `${s.origin}/silent`, maxLength: 10 }), 'TIMEOUT', /read gap/);
      const res = await t.send({
        url: `${s.origin}/drip`,
        maxLength: 1_000_000,
        deadline: performance.now() + 600,
      });
      await fails(res.bytes(), 'TIMEOUT', /deadline/);
      assert.ok(performance.now() - started < 3000, 'bounded');
    });

    it('an aborted request is ABORTED; a non-http URL is REFUSED', async () => {
      const s = use(await serve(() => undefined));
      const t = use(new NodeTransport());
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      await fails(t.send({ url: `${s.origin}/x`, maxLength: 10, signal: ac.signal }), 'ABORTED');
      await fails(t.send({ url: 'file:///etc/passwd', maxLength: 10 }), 'REFUSED');
    });

    it('reuses a kept-alive connection after a body read to its end', async () => {
      const s = use(await serve((_req, res) => res.end('x')));
      const t = use(new NodeTransport());
      for (let i = 0; i < 3; i++)
        await (await t.send({ url: `${s.origin}/`, maxLength: 1 })).bytes();
      const ports = new Set(s.seen.map((r) => r.socket.remotePort));
      assert.equal(ports.size, 1);
    });

    it('a discarded answer frees its connection: 30 discarded answers in a row do not hang', async () => {
      const s = use(await serve((_req, res) => res.end('{"errors":[]}')));
      const t = use(new NodeTransport({ readGapTimeout: 2000 }));
      for (let i = 0; i < 30; i++) {
        const res = await t.send({
          url: `${s.origin}/${i}`,
          maxLength: 100,
          deadline: performance.now() + 5000,
        });
        // let the whole small body arrive before it is discarded unread
        await new Promise((ok) => setTimeout(ok, 5));
        await res.discard();
      }
      assert.equal(s.seen.length, 30);
    });
  });

  describe('redirects', () => {
    it('drop Authorization, Cookie and Proxy-Authorization at another origin, for good', async () => {
      const other = use(await serve((_req, res) => res.end('there')));
      const first = use(
        await serve((req, res) => {
          if (req.url === '/start')
            res.writeHead(302, { location: `${other.origin}/elsewhere` }).end();
          else res.end('here');
        }),
      );
      const t = use(new RedirectLayer(new NodeTransport()));
      const headers = {
        authorization: 'Basic c2VjcmV0',
        cookie: 'session=1',
        'proxy-authorization': 'x',
        accept: 'a/b',
      };
      const res = await t.send({ url: `${first.origin}/start`, maxLength: 100, headers });
      assert.equal(text(await res.bytes()), 'there');
      assert.equal(res.url, `${other.origin}/elsewhere`);
      const there = other.seen[0] as IncomingMessage;
      assert.equal(there.headers.authorization, undefined);
      assert.equal(there.headers.cookie, undefined);
      assert.equal(there.headers['proxy-authorization'], undefined);
      assert.equal(there.headers.accept, 'a/b');
      // and to the first origin they did go
      assert.equal(first.seen[0]?.headers.authorization, 'Basic c2VjcmV0');
    });

    it('stop after the limit (REFUSED)', async () => {
      const s = use(await serve((_req, res) => res.writeHead(302, { location: '/again' }).end()));
      const t = use(new RedirectLayer(new NodeTransport(), 3));
      await fails(
        t.send({ url: `${s.origin}/`, maxLength: 10 }),
        'REFUSED',
        /more than 3 redirects/,
      );
      assert.equal(s.seen.length, 4);
    });
  });

  describe('retries', () => {
    it('retry a 5xx and a broken connection, never a 4xx', async () => {
      const s = use(
        await serve((req, res, n) => {
          if (req.url === '/flaky') {
            if (n === 1) res.writeHead(503).end();
            else if (n === 2) req.socket.destroy();
            else res.end('finally');
          } else res.writeHead(404).end();
        }),
      );
      const t = use(new RetryLayer(new NodeTransport(), 2, 10));
      const res = await t.send({ url: `${s.origin}/flaky`, maxLength: 100 });
      assert.equal(text(await res.bytes()), 'finally');
      assert.equal(s.seen.length, 3);
      const missing = await t.send({ url: `${s.origin}/missing`, maxLength: 100 });
      assert.equal(missing.status, 404);
      await missing.discard();
      assert.equal(s.seen.length, 4);
    });

    it('do not resend a POST', async () => {
      const s = use(await serve((_req, res) => res.writeHead(503).end()));
      const t = use(new RetryLayer(new NodeTransport(), 2, 10));
      const res = await t.send({
        method: 'POST',
        url: `${s.origin}/`,
        maxLength: 10,
        body: new Uint8Array(1),
      });
      assert.equal(res.status, 503);
      await res.discard();
      assert.equal(s.seen.length, 1);
    });
  });

  describe('auth', () => {
    let sim: OciSim;
    let t: Transport;
    const creds = { username: 'ci', password: 's3cret' };
    async function setup(auth: SimAuth): Promise<void> {
      sim = use(await OciSim.start({ auth }));
      sim.pushImage('team/app', '1.0', [new TextEncoder().encode('layer')]);
      t = use(
        createTransport({
          credentials: async (origin) => (origin.host === sim.host ? creds : undefined),
        }),
      );
    }

    it('answers the origin own Basic challenge with its credentials', async () => {
      await setup({ kind: 'basic', ...creds });
      const res = await t.send({
        url: `${sim.origin}/v2/team/app/manifests/1.0`,
        maxLength: 1 << 20,
      });
      assert.equal(res.status, 200);
      await res.discard();
    });

    it('Bearer: one token from the realm (another origin) for many requests; the scope asked', async () => {
      const realm = use(await OciSim.start());
      await setup({ kind: 'bearer', ...creds, realmOrigin: realm.origin });
      realm.tokenFor = sim;
      for (let i = 0; i < 3; i++) {
        const res = await t.send({
          url: `${sim.origin}/v2/team/app/manifests/1.0`,
          maxLength: 1 << 20,
          scope: 'repository:team/app:pull',
        });
        assert.equal(res.status, 200);
        await res.discard();
      }
      const tokens = realm.requests.filter((r) => r.path.startsWith('/token'));
      assert.equal(tokens.length, 1);
      assert.match(String(tokens[0]?.headers.authorization), /^Basic /);
      assert.match(String(tokens[0]?.path), /scope=repository%3Ateam%2Fapp%3Apull/);
    });

    it('a 401 from a redirect target is UNAUTHORIZED and its realm gets nothing', async () => {
      await setup({ kind: 'basic', ...creds });
      const store = use(await OciSim.blobStoreFor(sim));
      // the storage origin names a realm of its own
      store.auth = { kind: 'bearer', realmOrigin: store.origin };
      const manifest = JSON.parse(
        text(
          await (
            await t.send({ url: `${sim.origin}/v2/team/app/manifests/1.0`, maxLength: 1 << 20 })
          ).bytes(),
        ),
      ) as { layers: Array<{ digest: string }> };
      await fails(
        t.send({
          url: `${sim.origin}/v2/team/app/blobs/${manifest.layers[0]?.digest}`,
          maxLength: 1 << 20,
        }),
        'UNAUTHORIZED',
        /redirect target/,
      );
      assert.ok(store.requests.every((r) => r.headers.authorization === undefined));
      assert.ok(!store.requests.some((r) => r.path.startsWith('/token')), 'no token asked there');
    });

    it('a token service that refuses: UNAUTHORIZED, and the 401 it answered is ended (no timer left behind)', async () => {
      const realm = use(
        await serve((_req, res) => {
          res.writeHead(401, { 'www-authenticate': 'Basic realm="t"' });
          res.end('{"details":"invalid credentials"}');
        }),
      );
      const s = use(
        await serve((_req, res) => {
          res.writeHead(401, {
            'www-authenticate': `Bearer realm="${realm.origin}/token",service="s"`,
          });
          res.end('unauthorized');
        }),
      );
      const tr = use(createTransport({ credentials: async () => creds, retries: 0 }));
      const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const before = timers();
      await fails(tr.send({ url: `${s.origin}/x`, maxLength: 100 }), 'UNAUTHORIZED', /HTTP 401/);
      // an exchange left open keeps its deadline timer (and a CLI process) alive
      assert.equal(timers(), before);
    });

    it('no credentials for the origin: the 401 is returned as it is', async () => {
      await setup({ kind: 'basic', username: 'other', password: 'x' });
      const stranger = use(createTransport({}));
      const res = await stranger.send({
        url: `${sim.origin}/v2/team/app/manifests/1.0`,
        maxLength: 1 << 20,
      });
      assert.equal(res.status, 401);
      await res.discard();
    });
  });
});
