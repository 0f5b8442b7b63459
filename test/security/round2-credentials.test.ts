/**
 * Security round 2 (issue 12), credentials and secrets: registry, Notary and TUF credentials
 * answer only their own origin's challenges and never cross a redirect to another origin
 * (R2-04), and no URL's userinfo or query token reaches a message, a JSON field, a webhook
 * denial or a log line (R2-05).
 *
 * Everything runs against small servers on 127.0.0.1 (one port = one origin): an in-memory
 * registry serving an image built by `buildImage`, a blob store it redirects to, a token
 * service, and a TUF repository (SimRepo on the real clock) signing the image.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { AdmissionController, startAdmissionServer } from '../../src/admission/index.js';
import { ImageArgs, readTrustFile } from '../../src/cli/images.js';
import { HttpFetcher } from '../../src/client/http-fetcher.js';
import { NotaryClient } from '../../src/notary/client.js';
import { type BuiltImage, buildImage, writeLayoutImages } from '../../src/oci/build.js';
import { StaticCredentials } from '../../src/oci/credentials.js';
import { Reference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { TrustPolicy } from '../../src/verify/policy.js';
import { ImageVerifier } from '../../src/verify/verify-image.js';
import { makeTls, ReviewClient } from '../admission/environment.js';
import { StaticServer } from '../support/static-server.js';
import { SimRepo } from '../support/tuf-builder.js';
import {
  type CaseContext,
  defineCases,
  liveExpiries,
  publishEncoded,
  type SecurityCase,
  show,
  simulator,
  tufa,
} from './harness.js';

const CREDS = { username: 'r2-user', password: `r2-${randomBytes(9).toString('hex')}` };
const BASIC = `Basic ${Buffer.from(`${CREDS.username}:${CREDS.password}`).toString('base64')}`;
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'] as const;

interface Seen {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Origin is a tiny HTTP server on 127.0.0.1 (its own port, so its own origin) that logs. */
class Origin {
  readonly log: Seen[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  port = 0;

  private constructor(public handler: Handler) {
    this.server = createServer((req, res) => {
      this.log.push({ path: req.url ?? '/', headers: req.headers });
      this.handler(req, res);
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(t: CaseContext, handler: Handler = notFound): Promise<Origin> {
    const o = new Origin(handler);
    await new Promise<void>((ok, fail) => {
      o.server.once('error', fail);
      o.server.listen(0, '127.0.0.1', () => ok());
    });
    o.port = (o.server.address() as AddressInfo).port;
    t.defer(() => o.close());
    return o;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get origin(): string {
    return `http://${this.host}`;
  }

  close(): Promise<void> {
    const closed = new Promise<void>((ok) => this.server.close(() => ok()));
    for (const s of this.sockets) s.destroy();
    return closed;
  }
}

function notFound(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(404, { 'content-length': '0' }).end();
}

function json(res: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

/** credentialsSeen lists the credential headers an origin received (must be empty). */
function credentialsSeen(o: Origin): string[] {
  return o.log.flatMap((r) =>
    CREDENTIAL_HEADERS.filter((h) => r.headers[h] !== undefined).map((h) => `${h} at ${r.path}`),
  );
}

/**
 * A registry on one origin serving `image` as `demo/app` (by tag `1.0` and by digest) that
 * answers `auth` (Basic credentials, or a bearer token from `realm`) and redirects every blob
 * to `blobStore`.
 */
function registry(
  image: BuiltImage,
  auth: { basic: true } | { realm: () => string },
  blobStore: () => Origin,
): Handler {
  const blobs = new Map(image.blobs.map((b) => [b.descriptor.digest, b]));
  return (req, res) => {
    const url = req.url ?? '/';
    const ok =
      'basic' in auth
        ? req.headers.authorization === BASIC
        : req.headers.authorization === 'Bearer registry-token';
    if (!ok) {
      const challenge =
        'basic' in auth
          ? 'Basic realm="r2-registry"'
          : `Bearer realm="${auth.realm()}",service="r2-registry"`;
      res.writeHead(401, { 'www-authenticate': challenge, 'content-length': '0' }).end();
      return;
    }
    if (/^\/v2\/demo\/app\/manifests\/(1\.0|sha256:[0-9a-f]{64})$/.test(url)) {
      if (url.endsWith(':1.0') || url.endsWith(image.manifestDescriptor.digest)) {
        res.writeHead(200, {
          'content-type': image.manifestDescriptor.mediaType,
          'content-length': image.manifest.length,
        });
        res.end(image.manifest);
        return;
      }
    }
    const blob = /^\/v2\/demo\/app\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url);
    if (blob !== null && blobs.has(blob[1] as string)) {
      res.writeHead(307, { location: `${blobStore().origin}${url}`, 'content-length': '0' });
      res.end();
      return;
    }
    notFound(req, res);
  };
}

/** A blob store serving the image's blobs (the honest control). */
function blobServer(image: BuiltImage): Handler {
  const blobs = new Map(image.blobs.map((b) => [b.descriptor.digest, b.bytes]));
  return (req, res) => {
    const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
    const bytes = digest === undefined ? undefined : blobs.get(digest);
    if (bytes === undefined) return notFound(req, res);
    res.writeHead(200, { 'content-length': bytes.length });
    res.end(bytes);
  };
}

/** A redirect target that asks for credentials with its own challenge, and a token service. */
function greedy(self: () => Origin, scheme: 'bearer' | 'basic'): Handler {
  return (req, res) => {
    if ((req.url ?? '').startsWith('/token')) return json(res, { token: 'stolen' });
    const challenge =
      scheme === 'bearer'
        ? `Bearer realm="${self().origin}/token",service="evil",scope="repository:demo/app:pull"`
        : 'Basic realm="evil"';
    res.writeHead(401, { 'www-authenticate': challenge, 'content-length': '0' }).end();
  };
}

/** A TUF repository signing `image` as `<registryHost>/demo/app:1.0`, and a policy for it. */
async function signedWorld(
  t: CaseContext,
  registryHost: string,
  image: BuiltImage,
  metadataUrl: (tuf: StaticServer) => string = (tuf) => tuf.url('metadata/'),
): Promise<{ policyFile: string; policy: TrustPolicy; tuf: StaticServer }> {
  const repo = liveExpiries(new SimRepo());
  const sim = simulator(repo);
  sim.addTargetFile(`${registryHost}/demo/app:1.0`, image.manifest);
  publishEncoded(sim);
  const tuf = await StaticServer.start(sim.files);
  t.defer(() => tuf.close());
  const dir = t.tmp();
  writeFileSync(join(dir, 'root.json'), repo.rootBytes(1));
  const policyJson = {
    rules: [
      {
        match: `${registryHost}/demo/**`,
        tuf: { metadataUrl: metadataUrl(tuf), root: 'root.json' },
      },
    ],
  };
  const policyFile = join(dir, 'tufa-policy.json');
  writeFileSync(policyFile, JSON.stringify(policyJson));
  return { policyFile, policy: TrustPolicy.fromJSON(policyJson, dir), tuf };
}

function verifier(t: CaseContext, policy: TrustPolicy, registryHost: string): ImageArgs {
  const v = new ImageArgs(
    new ImageVerifier({ policy, files: readTrustFile, cacheDir: join(t.tmp(), 'cache') }),
    {
      timeoutMs: 5_000,
      credentials: new StaticCredentials(new Map([[registryHost, CREDS]])),
    },
  );
  t.defer(() => v.close());
  return v;
}

/** dockerConfig writes a $DOCKER_CONFIG folder holding Basic credentials for `host`. */
function dockerConfig(t: CaseContext, host: string): string {
  const dir = join(t.tmp(), 'docker');
  mkdirSync(dir);
  const auth = Buffer.from(`${CREDS.username}:${CREDS.password}`).toString('base64');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth } } }), {
    mode: 0o600,
  });
  return dir;
}

function cliEnv(t: CaseContext, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_CACHE_HOME: join(t.tmp(), 'xdg'),
    NO_COLOR: '1',
    ...extra,
  };
  delete e.TUFA_POLICY;
  return e;
}

async function testImage(): Promise<BuiltImage> {
  return buildImage([{ path: '/etc/r2.conf', content: randomBytes(64) }]);
}

const cases: SecurityCase[] = [
  {
    id: 'R2-04',
    title:
      'registry, Notary and TUF credentials answer only their own origin and cross no redirect',
    attack:
      'A registry wanting credentials redirects blobs to another origin, which answers 401 with its own Bearer realm (or Basic); a Notary server redirects root.json the same way; a TUF server redirects metadata with Authorization, Cookie and Proxy-Authorization set; API, `tufa pull` with $DOCKER_CONFIG',
    source:
      'ContainerDrip (CVE-2020-15157 class); go-containerregistry transport/bearer.go; outside review of d132131 (issue 12 item 4)',
    expect: 'UNAUTHORIZED | HTTP_STATUS',
    timeout: 60_000,
    async run(t) {
      const image = await testImage();

      // Control: the registry's own challenge names a realm on another origin (as Docker
      // Hub's does): the token service gets the credentials, the blob store gets none.
      const reg = await Origin.start(t);
      const auth = await Origin.start(t, (req, res) => {
        if (req.headers.authorization !== BASIC) {
          res.writeHead(401, { 'content-length': '0' }).end();
          return;
        }
        json(res, { token: 'registry-token', expires_in: 300 });
      });
      const store = await Origin.start(t, blobServer(image));
      reg.handler = registry(image, { realm: () => `${auth.origin}/token` }, () => store);
      const world = await signedWorld(t, reg.host, image);
      const out = join(t.tmp(), 'out');
      await verifier(t, world.policy, reg.host).pull(`${reg.host}/demo/app:1.0`, `oci:${out}`);
      assert.ok(store.log.length >= 2, 'the blobs came from the blob store');
      assert.deepEqual(credentialsSeen(store), []);
      assert.ok(
        auth.log.some((r) => r.headers.authorization === BASIC),
        'the realm the registry itself named got the credentials',
      );

      // The registry's own challenge may name another host, but not over plain http (unless
      // loopback): nothing is sent there.
      const plain = await Origin.start(t);
      plain.handler = registry(image, { realm: () => 'http://tufa-r2.invalid/token' }, () => store);
      const rc = new RegistryClient({
        timeoutMs: 5_000,
        credentials: new StaticCredentials(new Map([[plain.host, CREDS]])),
      });
      t.defer(() => rc.close());
      await t.refuses(
        rc.getManifest({ registry: plain.host, repository: 'demo/app' }, '1.0'),
        'UNAUTHORIZED',
        /plain http/,
      );

      // The attack: the redirect target asks for credentials with its own challenge.
      for (const scheme of ['bearer', 'basic'] as const) {
        const evil = await Origin.start(t);
        evil.handler = greedy(() => evil, scheme);
        const r2 = await Origin.start(t);
        r2.handler = registry(image, { basic: true }, () => evil);
        const w2 = await signedWorld(t, r2.host, image);
        await t.refuses(
          verifier(t, w2.policy, r2.host).pull(
            `${r2.host}/demo/app:1.0`,
            `oci:${join(t.tmp(), 'out')}`,
          ),
          'UNAUTHORIZED',
          /redirect/,
        );
        assert.ok(evil.log.length >= 1, `${scheme}: the redirect was followed`);
        assert.deepEqual(credentialsSeen(evil), [], `${scheme}: credentials leaked`);
        assert.deepEqual(
          evil.log.filter((r) => r.path.startsWith('/token')).map((r) => r.path),
          [],
          `${scheme}: the redirect target's realm was asked`,
        );

        // the CLI, credentials from $DOCKER_CONFIG
        evil.log.length = 0;
        const parent = t.tmp();
        const r = await tufa(
          [
            'pull',
            `${r2.host}/demo/app:1.0`,
            '--output',
            `oci:${join(parent, 'out')}`,
            '--policy',
            w2.policyFile,
            '--cache-dir',
            join(t.tmp(), 'cache'),
          ],
          { env: cliEnv(t, { DOCKER_CONFIG: dockerConfig(t, r2.host) }), timeoutMs: 30_000 },
        );
        assert.equal(r.status, 2, show(r)); // a refused login is configuration (exit 2)
        assert.match(r.stderr, /UNAUTHORIZED: .*redirect/, show(r));
        t.refusedBy('UNAUTHORIZED');
        assert.ok(evil.log.length >= 1, show(r));
        assert.deepEqual(credentialsSeen(evil), [], `${scheme}: the CLI leaked credentials`);
        assert.ok(!evil.log.some((x) => x.path.startsWith('/token')));
        assert.ok(!(r.stdout + r.stderr).includes(CREDS.password));
      }

      // Notary: root.json redirected to an origin that answers with its own bearer realm.
      const evil = await Origin.start(t);
      evil.handler = greedy(() => evil, 'bearer');
      const notary = await Origin.start(t, (req, res) => {
        res.writeHead(302, { location: `${evil.origin}${req.url}`, 'content-length': '0' }).end();
      });
      const client = new NotaryClient({
        server: notary.origin,
        gun: `${notary.host}/demo/app`,
        trust: { tofu: true },
        cacheDir: t.tmp(),
        credentials: CREDS,
      });
      t.defer(() => client.close());
      await t.refuses(client.refresh(), 'HTTP_STATUS', /401/);
      assert.ok(evil.log.length >= 1, 'the Notary redirect was followed');
      assert.deepEqual(credentialsSeen(evil), []);
      assert.deepEqual(
        evil.log.filter((r) => r.path.startsWith('/token')),
        [],
      );

      // The TUF fetcher: credential headers go to the first origin only.
      const sink = await Origin.start(t, (_req, res) => json(res, {}));
      const front = await Origin.start(t, (req, res) => {
        res.writeHead(302, { location: `${sink.origin}${req.url}`, 'content-length': '0' }).end();
      });
      // ... and so do the headers a caller adds that are credentials under another name
      // (an API key, GitLab's Private-Token): only harmless headers follow to another origin
      const apiKey = `k-${randomBytes(8).toString('hex')}`;
      const fetcher = new HttpFetcher(
        { retries: 0, totalTimeout: 5_000 },
        {
          authorization: BASIC,
          cookie: 'session=r2',
          'X-API-Key': apiKey,
          'Private-Token': apiKey,
        },
      );
      t.defer(() => fetcher.close());
      await fetcher.fetch(`${front.origin}/metadata/1.root.json`, 1024, {
        'Proxy-Authorization': BASIC,
      });
      assert.equal(front.log[0]?.headers.authorization, BASIC);
      assert.equal(front.log[0]?.headers.cookie, 'session=r2');
      assert.equal(front.log[0]?.headers['proxy-authorization'], BASIC);
      assert.equal(front.log[0]?.headers['x-api-key'], apiKey);
      assert.equal(front.log[0]?.headers['private-token'], apiKey);
      assert.equal(sink.log.length, 1);
      assert.deepEqual(credentialsSeen(sink), []);
      const leaked = Object.entries(sink.log[0]?.headers ?? {}).filter(([, v]) =>
        [apiKey, BASIC, 'session=r2'].some((x) => String(v).includes(x)),
      );
      assert.deepEqual(leaked, [], 'a caller header crossed to the redirect target');
    },
  },
  {
    id: 'R2-05',
    title:
      'a metadata URL with user info or a query token appears in no message, JSON field or log',
    attack:
      'The policy gives metadataUrl https://bot:<token>@host/metadata/ (and one with ?token=…): `tufa verify --json` (signedBy), a refusal naming the repository, an unreachable repository, a webhook denial and its log line; URLs the WHATWG parser reads credentials from but a naive pattern misses (`p@x@h`, quotes or a space in the password, `https:/u:p@h`, `https:u:p@h`, backslashes, `\\?token=`, `?token=a"x`) typed as the image in the CLI and in a pod; a pod naming a 60 kB `a.a.a…` image (quadratic redaction blocked the webhook for seconds)',
    source:
      'outside review of d132131 (issue 12 item 5); go-containerregistry redact.URL; attack-creds (URL Standard parsing, ReDoS)',
    expect: 'UNSIGNED_IMAGE | HTTP_STATUS | BAD_REFERENCE',
    timeout: 60_000,
    async run(t) {
      const secret = `u-${randomBytes(8).toString('hex')}`;
      const qsecret = `q-${randomBytes(8).toString('hex')}`;
      const image = await testImage();
      const host = 'registry.example';
      const repo = liveExpiries(new SimRepo());
      const sim = simulator(repo);
      sim.addTargetFile(`${host}/demo/app:1.0`, image.manifest);
      publishEncoded(sim);
      const tuf = await StaticServer.start(sim.files);
      t.defer(() => tuf.close());
      const withUser = tuf.url('metadata/').replace('http://', `http://bot:${secret}@`);
      const withQuery = tuf
        .url(`nowhere/?token=${qsecret}/`)
        .replace('http://', `http://bot:${secret}@`);
      const dir = t.tmp();
      writeFileSync(join(dir, 'root.json'), repo.rootBytes(1));
      const policyJson = {
        rules: [
          { match: `${host}/demo/**`, tuf: { metadataUrl: withUser, root: 'root.json' } },
          { match: `${host}/other/**`, tuf: { metadataUrl: withQuery, root: 'root.json' } },
        ],
      };
      const policyFile = join(dir, 'tufa-policy.json');
      writeFileSync(policyFile, JSON.stringify(policyJson));
      const layout = join(t.tmp(), 'layout');
      await writeLayoutImages(layout, [
        { refName: `${host}/demo/app:1.0`, image },
        { refName: `${host}/demo/unsigned:1.0`, image },
        { refName: `${host}/other/app:1.0`, image },
      ]);
      const clean = (what: string, text: string) => {
        assert.ok(!text.includes(secret), `${what} shows the user info: ${text}`);
        assert.ok(!text.includes(qsecret), `${what} shows the query token: ${text}`);
      };

      // the CLI: --json, and the one-line refusals
      for (const asJson of [true, false]) {
        const r = await tufa(
          [
            'verify',
            `oci:${layout}:${host}/demo/app:1.0`,
            `oci:${layout}:${host}/demo/unsigned:1.0`,
            `oci:${layout}:${host}/other/app:1.0`,
            '--policy',
            policyFile,
            '--cache-dir',
            join(t.tmp(), 'cache'),
            ...(asJson ? ['--json'] : []),
          ],
          { env: cliEnv(t), timeoutMs: 30_000 },
        );
        assert.equal(r.status, 1, show(r));
        clean('tufa verify', r.stdout + r.stderr);
        if (asJson) {
          const results = JSON.parse(r.stdout) as Array<{
            verified: boolean;
            signedBy?: string;
            error?: { code: string };
          }>;
          assert.equal(results[0]?.verified, true, show(r));
          assert.match(results[0]?.signedBy ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metadata\/$/);
          assert.equal(results[1]?.error?.code, 'UNSIGNED_IMAGE');
          assert.equal(results[2]?.error?.code, 'HTTP_STATUS');
          for (const x of results.slice(1)) t.refusedBy(x.error?.code ?? '-');
        }
      }
      // the library's own message
      const policy = TrustPolicy.fromJSON(policyJson, dir);
      const v = new ImageArgs(
        new ImageVerifier({ policy, files: readTrustFile, cacheDir: join(t.tmp(), 'cache') }),
      );
      const registry = new RegistryClient();
      t.defer(() => registry.close());
      t.defer(() => v.close());
      const e = await t.refuses(
        v.verify(`oci:${layout}:${host}/demo/unsigned:1.0`),
        'UNSIGNED_IMAGE',
      );
      clean('the refusal', e.message);
      const ok = await v.verify(`oci:${layout}:${host}/demo/app:1.0`);
      clean('signedBy', ok.signed.signedBy);

      // the webhook: denial and log lines
      const tls = await makeTls(t.tmp());
      const logs: Array<Record<string, unknown>> = [];
      const server = await startAdmissionServer({
        controller: new AdmissionController({ verifier: v.verifier, registry, deadlineMs: 8_000 }),
        tls: { cert: tls.cert, key: tls.key },
        host: '127.0.0.1',
        port: 0,
        log: (r) => logs.push(r),
      });
      t.defer(() => server.close());
      const client = new ReviewClient(server.url, tls.ca, { timeoutMs: 15_000 });
      t.defer(() => client.close());
      const pod = (img: string) => ({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: '7f1c2a3b-0000-4000-8000-000000000005',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          resource: { group: '', version: 'v1', resource: 'pods' },
          operation: 'CREATE',
          namespace: 'shop',
          name: 'web',
          object: {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'web', namespace: 'shop' },
            spec: { containers: [{ name: 'app', image: img }] },
          },
        },
      });
      for (const img of [`${host}/demo/unsigned:1.0`, `${host}/other/app:1.0`]) {
        const res = await client.post('/validate', pod(img));
        assert.equal(res.status, 200, res.text);
        const answer = JSON.parse(res.text) as { response: { allowed: boolean } };
        assert.equal(answer.response.allowed, false, res.text);
        clean('the webhook denial', res.text);
      }
      assert.ok(logs.length >= 2);
      clean('the webhook log', JSON.stringify(logs));

      // URLs the URL Standard reads credentials from, typed where an image belongs: the
      // refusal (BAD_REFERENCE) quotes them, every sink redacts them
      const typed = [
        `https://bot:p@${secret}@${host}/app:1`,
        `https://bot:p'${secret}@${host}/app:1`,
        `https://bot:p ${secret}@${host}/app:1`,
        `https://bot:p"${secret}@${host}/app:1`,
        `https:/bot:${secret}@${host}/app:1`,
        `https:bot:${secret}@${host}/app:1`,
        `https:\\\\bot:${secret}@${host}/app:1`,
        `https://${host}/app\\?token=${qsecret}`,
        `https://${host}/app?token=a"${qsecret}`,
      ];
      for (const img of typed) {
        const e = await t.refuses(async () => Reference.parse(img), 'BAD_REFERENCE');
        clean('the reference error', e.message);
        const res = await client.post('/validate', pod(img));
        assert.equal(res.status, 200, res.text);
        assert.equal(JSON.parse(res.text).response.allowed, false, res.text);
        clean('the webhook denial', res.text);
      }
      clean('the webhook log', JSON.stringify(logs));
      for (const asJson of [[], ['--json']]) {
        const r = await tufa(['verify', ...asJson, '--policy', policyFile, ...typed.slice(0, 5)], {
          env: cliEnv(t),
          timeoutMs: 30_000,
        });
        assert.equal(r.status, 2, show(r)); // a bad reference is a usage error
        assert.match(r.stdout + r.stderr, /BAD_REFERENCE/, show(r));
        clean('tufa verify of a URL as the image', r.stdout + r.stderr);
      }
      t.refusedBy('BAD_REFERENCE');

      // an image no reference can be (60 kB of `a.`): denied at once, not echoed, and the
      // review deadline still holds (redaction is linear; the reference error quotes 200
      // characters)
      const fast = new AdmissionController({ verifier: v.verifier, registry, deadlineMs: 2_000 });
      for (const img of ['a.'.repeat(30_000), 'a.'.repeat(2_000)]) {
        const started = performance.now();
        const out = await fast.review(pod(img), 'validate');
        const ms = performance.now() - started;
        assert.equal(out.allowed, false);
        assert.ok(ms < 3_000, `a review of a ${img.length}-character image took ${ms} ms`);
        const message = JSON.stringify(out.body);
        assert.match(message, /BAD_REFERENCE/);
        assert.ok(message.length < 5_000, `the denial is ${message.length} characters`);
      }
    },
  },
];

describe('security round 2: credentials and secrets', () => {
  defineCases(cases);
});
