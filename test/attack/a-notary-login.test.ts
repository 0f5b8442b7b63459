/**
 * attack-a: the notary login (credentials for notary servers) and the transport auth layer.
 * Tests that FAIL demonstrate a break (they assert the secure / documented behaviour).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliCredentials, registryOptions } from '../../src/cli/registry-options.js';
import { RegistryClient } from '../../src/oci/index.js';
import { Reference } from '../../src/oci/index.js';
import {
  AuthLayer,
  createTransport,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from '../../src/transport/index.js';
import { OciSim } from '../support/oci-sim.js';

interface TestServer {
  readonly origin: string;
  readonly seen: IncomingMessage[];
  readonly bodies: string[];
  close(): Promise<void>;
}

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse, n: number) => void,
): Promise<TestServer> {
  const seen: IncomingMessage[] = [];
  const bodies: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    seen.push(req);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      handler(req, res, seen.length);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    bodies,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

const SECRET = 's3cr3t-notary-password';
const creds = { username: 'ci', password: SECRET };
const b64 = Buffer.from(`ci:${SECRET}`).toString('base64');
const leaked = (s: TestServer) =>
  s.seen.some((r) => JSON.stringify(r.headers).includes(b64) || JSON.stringify(r.headers).includes(SECRET)) ||
  s.bodies.some((b) => b.includes(SECRET) || b.includes(b64));

describe('attack-a: notary login credentials', () => {
  let dir: string;
  let saved: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'attack-a-'));
    saved = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = dir;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('BROKEN? the --username/--password-stdin login for the notary server must never go to the registry (docs: "never for the registry")', async () => {
    // `tufa notary verify IMG --server https://H --username … --password-stdin` builds
    // registryOptions(o, login(o, o.server)); the registry client then answers the registry's
    // 401 at the same host with the notary password.
    const reg = await OciSim.start({ auth: { kind: 'basic', username: 'x', password: 'y' } });
    try {
      const img = reg.pushImage('team/app', '1', [new TextEncoder().encode('layer')]);
      const given = { host: reg.host, credentials: creds }; // notary server https://<same host:port>
      const client = new RegistryClient(await registryOptions({ plainHttp: [] }, given));
      try {
        await client
          .getManifest(Reference.parse(`${reg.host}/team/app:1`), img.digest)
          .catch(() => undefined);
      } finally {
        await client.close();
      }
      const auths = reg.requests.map((r) => String(r.headers.authorization ?? ''));
      assert.ok(
        !auths.some((a) => a.includes(b64)),
        `the notary login was sent to the registry (plain http here): ${auths.join(', ')}`,
      );
    } finally {
      await reg.close();
    }
  });

  it('held: notary.docker.io fallback is not applied to look-alike hosts', async () => {
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64 } } }),
    );
    const c = cliCredentials();
    assert.ok((await c.get('notary.docker.io')) !== undefined);
    for (const h of [
      'notary.docker.io.evil.test',
      'notary.docker.io:4443',
      'evilnotary.docker.io',
      'notary.docker.io.',
      'notary-docker.io',
    ])
      assert.equal(await c.get(h), undefined, h);
  });

  it('held: Docker config keys with schemes/paths/ports/userinfo do not match another host', async () => {
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://evil.test/notary.example.com': { auth: b64 },
          'notary.example.com:4443': { auth: b64 },
          'https://notary.example.com@evil2.test/': { auth: b64 },
          'notary.example.com.evil3.test': { auth: b64 },
        },
      }),
    );
    const c = cliCredentials();
    assert.equal(await c.get('notary.example.com'), undefined);
    assert.equal(await c.get('notary.example.com:443'), undefined);
  });

  it('held: a credHelpers value with a path or spaces is refused, never run', async () => {
    for (const helper of ['../../x', 'a b', 'x;id', '/bin/sh']) {
      writeFileSync(
        join(dir, 'config.json'),
        JSON.stringify({ credHelpers: { 'notary.example.com': helper } }),
      );
      await assert.rejects(cliCredentials().get('notary.example.com'), /not valid/);
    }
  });

  it('held: a crashing credential helper printing the secret: the error does not contain it', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'docker-credential-leaky'),
      `#!/bin/sh\necho "${SECRET}" >&2\necho '{"Secret":"${SECRET}"' \nexit 3\n`,
      { mode: 0o755 },
    );
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ credsStore: 'leaky' }));
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      await assert.rejects(cliCredentials().get('notary.example.com'), (e: Error) => {
        assert.ok(!e.message.includes(SECRET), e.message);
        return true;
      });
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('attack-a: transport auth layer (loopback servers)', () => {
  const servers: TestServer[] = [];
  const transports: Transport[] = [];
  afterEach(async () => {
    for (const t of transports.splice(0)) await t.close();
    for (const s of servers.splice(0)) await s.close();
  });
  const start = async (h: (req: IncomingMessage, res: ServerResponse, n: number) => void) => {
    const s = await serve(h);
    servers.push(s);
    return s;
  };
  const transport = (notary: string, c: object = creds, extra: object = {}) => {
    const t = createTransport({
      credentials: async (u) => (u.origin === notary ? (c as never) : undefined),
      ...extra,
    });
    transports.push(t);
    return t;
  };

  it('held: the token service redirecting to another origin does not carry the Basic credentials', async () => {
    const evil = await start((_q, res) => res.end('{"token":"x"}'));
    const tokens = await start((_q, res) => {
      res.writeHead(302, { location: `${evil.origin}/steal` });
      res.end();
    });
    const notary = await start((q, res) => {
      if (q.headers.authorization === 'Bearer x') return res.end('ok');
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${tokens.origin}/token",service="n"` });
      res.end();
    });
    const t = transport(notary.origin);
    const r = await t.send({ maxLength: 1 << 20, url: `${notary.origin}/v2/a/b/_trust/tuf/root.json` });
    await r.discard();
    assert.ok(leaked(tokens), 'the token service got the credentials');
    assert.ok(!leaked(evil), 'the redirect target of the token service got the credentials');
  });

  it('held: an identity token (refresh_token POST) is not re-posted to a redirect target', async () => {
    const evil = await start((_q, res) => res.end('{"access_token":"x"}'));
    const tokens = await start((_q, res) => {
      res.writeHead(307, { location: `${evil.origin}/steal` });
      res.end();
    });
    const notary = await start((_q, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${tokens.origin}/token"` });
      res.end();
    });
    const t = transport(notary.origin, { identityToken: SECRET });
    await t.send({ maxLength: 1 << 20, url: `${notary.origin}/x` }).then((r) => r.discard(), () => undefined);
    assert.ok(!leaked(evil) && evil.seen.length === 0);
  });

  it('held: a 401 from the notary server redirect target (naming its own realm) gets nothing', async () => {
    const evil = await start((_q, res) => {
      res.writeHead(401, { 'www-authenticate': `Basic realm="x"` });
      res.end();
    });
    const evilRealm = await start((_q, res) => res.end('{"token":"t"}'));
    const notary = await start((_q, res) => {
      res.writeHead(302, { location: `${evil.origin}/x` });
      res.end();
    });
    const t = transport(notary.origin);
    await t.send({ maxLength: 1 << 20, url: `${notary.origin}/x` }).then((r) => r.discard(), () => undefined);
    assert.ok(!leaked(evil) && !leaked(evilRealm));
    assert.equal(evil.seen.length, 1);
  });

  it('held: redirect A -> B -> A then 401 with a realm: credentials only to A\'s realm (no header via B)', async () => {
    let a: TestServer;
    const b = await start((_q, res) => {
      res.writeHead(302, { location: `${a.origin}/back` });
      res.end();
    });
    a = await start((q, res) => {
      if (q.url === '/start') {
        res.writeHead(302, { location: `${b.origin}/x` });
        return res.end();
      }
      res.writeHead(401, { 'www-authenticate': 'Basic realm="a"' });
      res.end();
    });
    const t = transport(a.origin);
    await t.send({ maxLength: 1 << 20, url: `${a.origin}/start` }).then((r) => r.discard(), () => undefined);
    assert.ok(!leaked(b), 'B saw the credentials');
  });

  it('held: a plain-http realm off loopback is refused before any request', async () => {
    const notary = await start((_q, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://example.invalid/token"' });
      res.end();
    });
    const t = transport(notary.origin);
    await assert.rejects(t.send({ maxLength: 1 << 20, url: `${notary.origin}/x` }), /plain http/);
  });

  it('held: infinite redirects and 401 after a token are bounded', async () => {
    const loop = await start((q, res) => {
      res.writeHead(302, { location: `/r${Number(q.url?.slice(2) || 0) + 1}` });
      res.end();
    });
    await assert.rejects(transport(loop.origin).send({ maxLength: 1 << 20, url: `${loop.origin}/r0` }), /redirects/);
    const tokens = await start((_q, res) => res.end('{"token":"t"}'));
    const always = await start((_q, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${tokens.origin}/t"` });
      res.end();
    });
    const r = await transport(always.origin).send({ maxLength: 1 << 20, url: `${always.origin}/x` });
    assert.equal(r.status, 401);
    await r.discard();
    assert.ok(always.seen.length <= 2 && tokens.seen.length <= 1);
  });

  it('held: a token service that never answers is bounded by tokenTimeout; a huge token body is refused', async () => {
    const slow = await start(() => undefined);
    const n1 = await start((_q, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${slow.origin}/t"` });
      res.end();
    });
    const t0 = Date.now();
    await assert.rejects(transport(n1.origin, creds, { tokenTimeout: 500 }).send({ maxLength: 1 << 20, url: `${n1.origin}/x` }));
    assert.ok(Date.now() - t0 < 5000);
    const big = await start((_q, res) => res.end(`{"token":"${'a'.repeat(3 * 1024 * 1024)}"}`));
    const n2 = await start((_q, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${big.origin}/t"` });
      res.end();
    });
    await assert.rejects(transport(n2.origin).send({ maxLength: 1 << 20, url: `${n2.origin}/x` }), /too large|more than the limit/);
  });

  it('WEAKNESS: a challenge received over plain http (MITM-able notary server in a policy) can send the credentials to any https realm', async () => {
    // The policy allows `notary.server: http://…`; verify-image answers its 401 with the Docker
    // config credentials of its host (stored for https). A MITM injects a challenge:
    const sent: TransportRequest[] = [];
    const inner: Transport = {
      close: async () => undefined,
      send: async (r: TransportRequest): Promise<TransportResponse> => {
        sent.push(r);
        const u = new URL(r.url);
        const res = (status: number, headers: Record<string, string>, body = '') => ({
          status,
          url: r.url,
          headers,
          body: (async function* () {})(),
          bytes: async () => new TextEncoder().encode(body),
          discard: async () => undefined,
        });
        if (u.host === 'attacker.example') return res(200, {}, '{"token":"t"}') as never;
        return res(401, { 'www-authenticate': 'Bearer realm="https://attacker.example/token"' }) as never;
      },
    };
    const auth = new AuthLayer(inner, {
      credentials: async (u) => (u.host === 'notary.example.com' ? creds : undefined),
    });
    await auth.send({ maxLength: 1 << 20, url: 'http://notary.example.com/v2/x/_trust/tuf/root.json' }).catch(() => undefined);
    const toAttacker = sent.filter((r) => new URL(r.url).host === 'attacker.example');
    assert.ok(
      !toAttacker.some((r) => (r.headers?.authorization ?? '').includes(b64)),
      'a challenge that came over plain http sent the password to attacker.example',
    );
  });
});
