/**
 * Verify-before-pull against a lying registry: a real registry (docker-registry) behind a proxy
 * on 127.0.0.1 that swaps manifests and blobs, pads, drips, redirects and re-tags, driven through
 * ImageVerifier / pullImage and through `tufa verify` / `tufa pull`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { LayoutWriter, readLayout } from '../../src/oci/layout.js';
import { MEDIA_TYPES } from '../../src/oci/manifest.js';
import { inspectLocal } from '../support/registry.js';
import { codeOf, defineCases, type SecurityCase, show, sleep } from './harness.js';
import type { SeenRequest } from './oci-proxy.js';
import { CREDS, type OciWorld, ociSkipReason, startOciWorld } from './oci-world.js';

let W: OciWorld;

/** layerOf returns the first layer descriptor of an image's manifest. */
function layerOf(manifest: Buffer): { digest: string; size: number } {
  return (JSON.parse(manifest.toString()) as { layers: Array<{ digest: string; size: number }> })
    .layers[0] as {
    digest: string;
    size: number;
  };
}

/** serveFor answers GETs whose path ends with `suffix` with `body` (status 200). */
function serveFor(suffix: string, body: Uint8Array, headers: Record<string, string> = {}) {
  return (req: SeenRequest, res: ServerResponse): boolean => {
    if (!req.path.endsWith(suffix)) return false;
    res.writeHead(200, { 'content-length': String(body.length), ...headers });
    res.end(body);
    return true;
  };
}

/** expectNoOutput asserts a failed pull left nothing in its parent folder. */
function expectNoOutput(parent: string): void {
  assert.deepEqual(readdirSync(parent), [], 'no output and no temp folder left beside it');
}

const cases: SecurityCase[] = [
  {
    id: 'OCI-00',
    title: 'control: the untouched registry verifies and pulls the signed image',
    attack:
      'none: the proxy forwards everything (shows the setting works, so refusals below mean something)',
    source: 'control',
    expect: 'safe: exit 0, the output layout holds the signed digest',
    async run(t) {
      const { app } = W.images;
      const out = join(t.tmp(), 'out');
      const r = await W.cli(t, 'pull', W.image('demo/app:1.0'), '--output', `oci:${out}`);
      assert.equal(r.status, 0, show(r));
      assert.equal((await readLayout(out)).descriptor.digest, app.digest);
    },
  },
  {
    id: 'OCI-01',
    title: 'a registry serving another manifest for the signed digest is refused',
    attack:
      'For GET /manifests/<signed digest> the registry answers a manifest naming another layer (same length), with a Docker-Content-Digest header claiming the signed digest',
    source: 'tufa verify-before-pull design; registry compromise / man in the middle on plain HTTP',
    expect: 'DIGEST_MISMATCH',
    async run(t) {
      const { app } = W.images;
      const text = app.manifest.toString();
      const layer = layerOf(app.manifest).digest;
      const swapped = Buffer.from(
        text.replace(layer, `${layer.slice(0, -4)}${layer.slice(-4) === 'aaaa' ? 'bbbb' : 'aaaa'}`),
      );
      assert.equal(swapped.length, app.manifest.length);
      W.proxy.hooks.push(
        serveFor(`/manifests/${app.digest}`, swapped, {
          'content-type': MEDIA_TYPES.ociManifest,
          'docker-content-digest': app.digest,
        }),
      );
      await t.refuses(W.verifier(t).verify(W.image('demo/app:1.0')), 'DIGEST_MISMATCH');
      const r = await W.cli(t, 'verify', W.image('demo/app:1.0'));
      assert.equal(r.status, 1, show(r));
      // refusals are diagnostics: stderr; nothing to deploy on stdout
      assert.match(r.stderr, /refused \(DIGEST_MISMATCH\)/);
      assert.equal(r.stdout, '', show(r));
      t.refusedBy('DIGEST_MISMATCH');
      const parent = t.tmp();
      const p = await W.cli(
        t,
        'pull',
        W.image('demo/app:1.0'),
        '--output',
        `oci:${join(parent, 'out')}`,
      );
      assert.equal(p.status, 1, show(p));
      expectNoOutput(parent);
    },
  },
  {
    id: 'OCI-02',
    title: 'a manifest larger than signed, endless, or above the 4 MiB cap is refused',
    attack:
      'The registry pads the signed manifest with 1 MiB of whitespace, streams an endless body, or serves a 6 MiB "manifest" that a signed target really lists',
    source: 'TUF endless data applied to OCI; registries cap manifests at 4 MiB',
    expect: 'TOO_LARGE',
    async run(t) {
      const { app } = W.images;
      W.proxy.hooks.push(
        serveFor(
          `/manifests/${app.digest}`,
          Buffer.concat([app.manifest, Buffer.alloc(1 << 20, 0x20)]),
        ),
      );
      await t.refuses(W.verifier(t).verify(W.image('demo/app:1.0')), 'TOO_LARGE');
      W.proxy.reset();
      W.proxy.hooks.push((req, res) => {
        if (!req.path.endsWith(`/manifests/${app.digest}`)) return false;
        res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          while (!res.destroyed && sent < 64 << 20) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
        return true;
      });
      await t.refuses(W.verifier(t).verify(W.image('demo/app:1.0')), 'TOO_LARGE');
      W.proxy.reset();
      const bigDigest = `sha256:${createHash('sha256').update(W.big).digest('hex')}`;
      W.proxy.hooks.push(
        serveFor(`/manifests/${bigDigest}`, W.big, { 'content-type': MEDIA_TYPES.ociManifest }),
      );
      await t.refuses(W.verifier(t).verify(W.image('demo/big:1.0')), 'TOO_LARGE', /4194304/);
    },
  },
  {
    id: 'OCI-03',
    title: 'a blob with the wrong digest or size fails the pull and leaves no output',
    attack:
      'During a pull the registry flips a byte of the layer, appends bytes to it, cuts it short, or serves another config blob',
    source: 'OCI image spec (content addressability); tufa pull design',
    expect: 'DIGEST_MISMATCH | SIZE_MISMATCH',
    timeout: 60_000,
    async run(t) {
      const { app, other } = W.images;
      const layer = layerOf(app.manifest);
      const path = `/blobs/${layer.digest}`;
      const genuine = (await W.proxy.get(`/v2/demo/app${path}`)).body;
      assert.equal(genuine.length, layer.size);
      const flipped = Buffer.from(genuine);
      flipped[flipped.length >> 1] = (flipped[flipped.length >> 1] as number) ^ 0xff;
      const variants: Array<[string, Buffer, string]> = [
        ['flipped', flipped, 'DIGEST_MISMATCH'],
        ['extended', Buffer.concat([genuine, Buffer.from('more')]), 'SIZE_MISMATCH'],
        ['truncated', genuine.subarray(0, genuine.length - 100), 'SIZE_MISMATCH'],
      ];
      for (const [what, body, code] of variants) {
        W.proxy.reset();
        W.proxy.hooks.push(serveFor(path, body));
        const parent = t.tmp();
        await t.refuses(
          W.verifier(t).pull(W.image('demo/app:1.0'), `oci:${join(parent, 'out')}`),
          code,
        );
        expectNoOutput(parent);
        assert.ok(W.proxy.requestsTo(path).length > 0, what);
      }
      // another image's config blob under this config's digest
      W.proxy.reset();
      const config = (JSON.parse(app.manifest.toString()) as { config: { digest: string } }).config
        .digest;
      const otherConfig = (JSON.parse(other.manifest.toString()) as { config: { digest: string } })
        .config.digest;
      const otherBody = (await W.proxy.get(`/v2/demo/app/blobs/${otherConfig}`)).body;
      W.proxy.hooks.push(serveFor(`/blobs/${config}`, otherBody));
      const parent = t.tmp();
      const e = await W.verifier(t)
        .pull(W.image('demo/app:1.0'), `oci-archive:${join(parent, 'out.tar')}`)
        .then(
          () => undefined,
          (x: unknown) => x,
        );
      assert.ok(codeOf(e) === 'DIGEST_MISMATCH' || codeOf(e) === 'SIZE_MISMATCH', String(e));
      t.refusedBy(codeOf(e) as string);
      expectNoOutput(parent);
      // the CLI: exit 1 (a refusal, not an outage), nothing written
      W.proxy.reset();
      W.proxy.hooks.push(serveFor(path, flipped));
      const cliParent = t.tmp();
      const r = await W.cli(
        t,
        'pull',
        W.image('demo/app:1.0'),
        '--output',
        `oci:${join(cliParent, 'out')}`,
      );
      assert.equal(r.status, 1, show(r));
      assert.match(r.stderr + r.stdout, /DIGEST_MISMATCH/);
      expectNoOutput(cliParent);
    },
  },
  {
    id: 'OCI-04',
    title: 'a blob redirect to another host gets no Authorization, and its bytes are verified',
    attack:
      'A registry that wants credentials redirects blob downloads (307) to another origin it controls, hoping for the Authorization header; then that origin serves a tampered layer',
    source:
      'Docker / distribution credential leaks on redirect (e.g. CVE-2020-15157 in containerd); tufa registry client design',
    expect: 'DIGEST_MISMATCH',
    timeout: 60_000,
    async run(t) {
      const { app } = W.images;
      W.mirror.log.length = 0;
      W.mirror.bodies.clear();
      t.defer(() => W.mirror.bodies.clear());
      W.proxy.requireBasic = CREDS;
      W.proxy.hooks.push((req, res) => {
        if (!/\/blobs\/sha256:/.test(req.path)) return false;
        res
          .writeHead(307, { location: `${W.mirror.origin}${req.path}`, 'content-length': '0' })
          .end();
        return true;
      });
      const parent = t.tmp();
      const out = join(parent, 'out');
      await W.verifier(t).pull(W.image('demo/app:1.0'), `oci:${out}`);
      assert.equal((await inspectLocal(`oci:${out}:1.0`)).Digest, app.digest);
      assert.ok(W.mirror.log.length >= 2, 'blobs were fetched from the other host');
      for (const r of W.mirror.log)
        assert.equal(r.headers.authorization, undefined, `leaked to ${r.path}`);
      assert.ok(
        W.proxy.log.some((r) => r.headers.authorization !== undefined),
        'the registry itself did get the credentials',
      );
      // the other host serves a tampered layer
      const layer = layerOf(app.manifest);
      W.mirror.bodies.set(`/v2/demo/app/blobs/${layer.digest}`, Buffer.alloc(layer.size, 0x41));
      const parent2 = t.tmp();
      await t.refuses(
        W.verifier(t).pull(W.image('demo/app:1.0'), `oci:${join(parent2, 'out')}`),
        'DIGEST_MISMATCH',
      );
      expectNoOutput(parent2);
      // the CLI with credentials from $DOCKER_CONFIG: no leak, no secret printed
      W.mirror.bodies.clear();
      W.mirror.log.length = 0;
      const parent3 = t.tmp();
      const r = await W.cli(
        t,
        'pull',
        W.image('demo/app:1.0'),
        '--output',
        `oci:${join(parent3, 'out')}`,
      );
      assert.equal(r.status, 0, show(r));
      assert.ok(W.mirror.log.length >= 2);
      for (const m of W.mirror.log) assert.equal(m.headers.authorization, undefined);
      assert.ok(!(r.stdout + r.stderr).includes(CREDS.password));
    },
  },
  {
    id: 'OCI-05',
    title: 'a tag moved during the pull changes nothing: the signed digest is pulled',
    attack:
      'While the client pulls demo/moving:1.0, the tag is pushed to another image (the registry now answers the tag with it)',
    source: 'TOCTOU between verify and pull (tag mutability); Notary / DCT pull-by-digest design',
    expect:
      'safe: the pull fetches by the signed digest only; the output holds the signed image; the tag is never asked for',
    timeout: 60_000,
    async run(t) {
      const { app, other } = W.images;
      let moved = false;
      W.proxy.hooks.push(async (req) => {
        if (!moved && /\/demo\/moving\/blobs\//.test(req.path)) {
          moved = true;
          await W.reg.push(other.built.ref, 'demo/moving:1.0');
        }
        return false;
      });
      t.defer(() => W.reg.push(app.built.ref, 'demo/moving:1.0'));
      const parent = t.tmp();
      const out = join(parent, 'out');
      const r = await W.verifier(t).pull(W.image('demo/moving:1.0'), `oci:${out}`);
      assert.ok(moved, 'the tag moved mid-pull');
      assert.equal(r.manifestDigest, app.digest);
      assert.equal((await inspectLocal(`oci:${out}:1.0`)).Digest, app.digest);
      assert.equal(
        (await W.proxy.get('/v2/demo/moving/manifests/1.0', { accept: MEDIA_TYPES.ociManifest }))
          .headers['docker-content-digest'],
        other.digest,
        'the registry tag did move',
      );
      assert.deepEqual(W.proxy.requestsTo('/manifests/1.0'), [], 'the tag itself is never fetched');
      // verifying again after the move: still the signed digest
      const v = await W.verifier(t).verify(W.image('demo/moving:1.0'));
      assert.equal(v.digest, app.digest);
    },
  },
  {
    id: 'OCI-06',
    title: 'a reference whose digest is not the signed one is refused',
    attack:
      'The user (or a deploy manifest an attacker edited) asks for demo/app:1.0@<digest of another image in the registry>, or for a digest without a tag, or a local layout tags another manifest',
    source: 'tufa verify design: the tag finds the signed target, the digest must agree',
    expect: 'DIGEST_MISMATCH | UNSIGNED_IMAGE',
    async run(t) {
      const { app, other } = W.images;
      const v = W.verifier(t);
      await t.refuses(v.verify(`${W.image('demo/app:1.0')}@${other.digest}`), 'DIGEST_MISMATCH');
      await t.refuses(v.verify(`${W.image('demo/app')}@${app.digest}`), 'UNSIGNED_IMAGE');
      // the right digest is fine
      assert.equal((await v.verify(`${W.image('demo/app:1.0')}@${app.digest}`)).digest, app.digest);
      // a local layout whose ref name points to another manifest
      const layoutDir = join(t.tmp(), 'layout');
      const w = await LayoutWriter.create('dir', layoutDir);
      const desc = {
        mediaType: MEDIA_TYPES.ociManifest,
        digest: other.digest,
        size: other.manifest.length,
      };
      await w.putBlob(desc, other.manifest);
      w.addManifest(desc, W.image('demo/app:1.0'));
      await w.commit();
      await t.refuses(v.verify(`oci:${layoutDir}:${W.image('demo/app:1.0')}`), 'DIGEST_MISMATCH');
      const r = await W.cli(t, 'verify', `${W.image('demo/app:1.0')}@${other.digest}`);
      assert.equal(r.status, 1, show(r));
      // refusals are diagnostics: stderr; nothing to deploy on stdout
      assert.match(r.stderr, /refused \(DIGEST_MISMATCH\)/);
      assert.equal(r.stdout, '', show(r));
    },
  },
  {
    id: 'OCI-07',
    title: 'a swapped platform manifest under a signed index is refused',
    attack:
      'For the linux/arm64 entry of a signed index, the registry serves the amd64 manifest instead',
    source:
      'OCI image index handling; tufa pull design (children verified by the digest the signed index lists)',
    expect: 'DIGEST_MISMATCH',
    async run(t) {
      const { amd, arm } = W.images;
      W.proxy.hooks.push(
        serveFor(`/manifests/${arm.digest}`, amd.manifest, {
          'content-type': MEDIA_TYPES.ociManifest,
        }),
      );
      const parent = t.tmp();
      await t.refuses(
        W.verifier(t).pull(W.image('demo/multi:1.0'), `oci:${join(parent, 'out')}`, {
          platform: { os: 'linux', architecture: 'arm64' },
        }),
        'DIGEST_MISMATCH',
      );
      expectNoOutput(parent);
    },
  },
  {
    id: 'OCI-08',
    title: 'a registry dripping a manifest or a blob is cut off in bounded time',
    attack:
      'The registry sends the signed manifest, then a layer, a few bytes every 300 ms: each gap is under the read timeout, so only an overall deadline ends it',
    source: 'TUF specification 1.0.34, attacks: slow retrieval, applied to the registry side',
    expect:
      'safe: verify and pull fail with a typed error well before the drip would end (here: within 10 s with a 1 s timeout)',
    timeout: 40_000,
    async run(t) {
      const { app } = W.images;
      const bounded = async (what: string, p: Promise<unknown>) => {
        const started = performance.now();
        const outcome = await Promise.race([
          p.then(
            () => ({ kind: 'resolved' as const }),
            (e: unknown) => ({ kind: 'rejected' as const, e }),
          ),
          sleep(10_000).then(() => ({ kind: 'hung' as const })),
        ]);
        if (outcome.kind === 'hung') {
          W.proxy.dropConnections();
          await p.catch(() => undefined);
        }
        assert.notEqual(
          outcome.kind,
          'hung',
          `${what}: still reading after 10 s with timeoutMs 1000 (no overall deadline on registry reads)`,
        );
        assert.equal(outcome.kind, 'rejected', `${what}: resolved`);
        const e = (outcome as { e: unknown }).e;
        assert.ok(codeOf(e) !== undefined, `${what}: untyped ${String(e)}`);
        return performance.now() - started;
      };
      W.proxy.hooks.push((req, res) => {
        if (!req.path.endsWith(`/manifests/${app.digest}`)) return false;
        res.writeHead(200, {
          'content-type': MEDIA_TYPES.ociManifest,
          'content-length': String(app.manifest.length),
        });
        W.proxy.sendSlowly(res, app.manifest, 2, 300);
        return true;
      });
      await bounded('verify (manifest drip)', W.verifier(t, 1000).verify(W.image('demo/app:1.0')));
      W.proxy.reset();
      W.proxy.throttle = { chunk: 16, delayMs: 300 };
      const parent = t.tmp();
      await bounded(
        'pull (blob drip)',
        W.verifier(t, 1000).pull(W.image('demo/app:1.0'), `oci:${join(parent, 'out')}`),
      );
      expectNoOutput(parent);
    },
  },
];

describe('security: OCI verify-before-pull against a lying registry', function () {
  this.timeout(60_000);

  before(async function () {
    this.timeout(240_000);
    const why = ociSkipReason();
    if (why !== undefined) {
      process.stderr.write(`  skipping the OCI security cases: ${why}\n`);
      this.skip();
    }
    W = await startOciWorld();
  });

  beforeEach(() => {
    W?.proxy.reset();
  });

  after(async () => {
    await W?.close();
  });

  defineCases(cases);
});
