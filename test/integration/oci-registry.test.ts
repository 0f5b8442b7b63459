/**
 * The OCI client (RegistryClient, pullImage) against a real registry (CNCF distribution 2.8) on
 * loopback, in four modes: plain HTTP, htpasswd basic auth, TLS with a test CA, and token auth
 * with a token issuer written here. Images are built with umoci and pushed with skopeo; what
 * skopeo reads (`inspect --raw`) is the reference for the bytes the client must return. Damage
 * is done in the registry's own storage, and a small proxy in front of the registry redirects
 * blobs to another origin or cuts a blob in the middle.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageArgs, readTrustFile } from '../../src/cli/images.js';
import {
  type Descriptor,
  digestOf,
  type ImageManifest,
  MEDIA_TYPES,
  OciError,
  parseManifest,
  RegistryClient,
  type RepositoryRef,
  readLayout,
  StaticCredentials,
} from '../../src/oci/index.js';
import { buildRepository, KeyObjectSigner } from '../../src/repository/index.js';
import { ImageVerifier, TrustPolicy } from '../../src/verify/index.js';
import {
  type BuiltImage,
  blobOf,
  buildImage,
  buildIndex,
  corruptFile,
  inspectLocal,
  type RegistryMode,
  RegistryServer,
  skipReason,
  TEST_ACCOUNT,
} from '../support/registry.js';
import { StaticServer } from '../support/static-server.js';

const MODES: readonly RegistryMode[] = ['plain', 'htpasswd', 'tls', 'token'];

/** manifestOf returns the config and layers of a built image. */
function manifestOf(img: BuiltImage): ImageManifest {
  const m = parseManifest(img.manifest, img.mediaType);
  assert.equal(m.kind, 'manifest');
  return m as ImageManifest;
}

function layerOf(img: BuiltImage): Descriptor {
  const layer = manifestOf(img).layers[0];
  assert.ok(layer !== undefined, 'the image has a layer');
  return layer;
}

/** expectOciError runs `fn` and checks it fails with an OciError of one of `codes`. */
async function expectOciError(
  fn: () => Promise<unknown>,
  codes: readonly string[],
): Promise<OciError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof OciError, `expected an OciError, got ${String(e)}`);
    assert.ok(
      codes.includes(e.code),
      `expected ${codes.join(' or ')}, got ${e.code}: ${e.message}`,
    );
    return e;
  }
  assert.fail(`expected ${codes.join(' or ')}, but it succeeded`);
}

/** copyAll copies a blob into memory with copyBlob. */
async function copyAll(client: RegistryClient, repo: RepositoryRef, desc: Descriptor) {
  const chunks: Uint8Array[] = [];
  await client.copyBlob(repo, desc, (c) => {
    chunks.push(Buffer.from(c));
  });
  return Buffer.concat(chunks);
}

/** checkLayoutBlobs asserts every blob of a layout folder has the digest its name says. */
function checkLayoutBlobs(dir: string): number {
  const blobs = join(dir, 'blobs', 'sha256');
  const names = readdirSync(blobs);
  for (const n of names) {
    assert.equal(digestOf(readFileSync(join(blobs, n))), `sha256:${n}`, `blob ${n}`);
  }
  return names.length;
}

function signer(): KeyObjectSigner {
  return new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);
}

interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/**
 * A reverse proxy in front of a plain-HTTP registry that can misbehave on blob GETs: answer a
 * 307 to another origin (after the registry said 200, so authorization is the registry's), or
 * cut the connection after `afterBytes` bytes of one blob, once.
 */
class BlobProxy {
  readonly log: LoggedRequest[] = [];
  redirectTo: string | undefined;
  cut: { digest: string; afterBytes: number; done: boolean } | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private port = 0;

  private constructor(private readonly upstreamPort: number) {
    this.server = createServer((req, res) => {
      const path = req.url ?? '/';
      this.log.push({ method: req.method ?? 'GET', path, headers: req.headers });
      const blob = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
      const up = httpRequest(
        {
          host: '127.0.0.1',
          port: this.upstreamPort,
          method: req.method,
          path,
          headers: { ...req.headers, host: `127.0.0.1:${this.upstreamPort}` },
          agent: false,
        },
        (upRes) => {
          const status = upRes.statusCode ?? 502;
          if (blob !== null && req.method === 'GET' && status === 200 && this.redirectTo) {
            upRes.destroy();
            res.writeHead(307, {
              location: `${this.redirectTo}/blobs/${blob[1]}?signature=abc`,
              'content-length': '0',
            });
            res.end();
            return;
          }
          const cut = this.cut;
          if (blob !== null && status === 200 && cut && !cut.done && cut.digest === blob[1]) {
            cut.done = true;
            res.writeHead(status, upRes.headers);
            let sent = 0;
            upRes.on('data', (chunk: Buffer) => {
              if (sent >= cut.afterBytes) return;
              const part = chunk.subarray(0, cut.afterBytes - sent);
              sent += part.length;
              if (sent < cut.afterBytes) {
                res.write(part);
                return;
              }
              // the last bytes reach the socket, then the connection goes
              res.write(part, () => {
                upRes.destroy();
                res.socket?.destroy();
              });
            });
            return;
          }
          res.writeHead(status, upRes.headers);
          upRes.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(upstreamPort: number): Promise<BlobProxy> {
    const p = new BlobProxy(upstreamPort);
    await new Promise<void>((ok, fail) => {
      p.server.once('error', fail);
      p.server.listen(0, '127.0.0.1', () => ok());
    });
    p.port = (p.server.address() as AddressInfo).port;
    return p;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  requests(pathSuffix: string): LoggedRequest[] {
    return this.log.filter((r) => r.path.endsWith(pathSuffix));
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((ok) => this.server.close(() => ok()));
    for (const s of this.sockets) s.destroy();
    this.server.closeAllConnections();
    await closed;
  }
}

describe('OCI registry client against distribution 2.8 (integration)', function () {
  this.timeout(60_000);
  let tmp: string;
  /** The image most tests read: one OCI manifest. */
  let app: BuiltImage;
  let arm: BuiltImage;
  /** An index of app (linux/amd64) and arm (linux/arm64). */
  let multi: BuiltImage;
  /** Images whose manifest or blobs get damaged in a registry's storage (unique blobs). */
  let badManifest: BuiltImage;
  let badBlobs: BuiltImage;
  let longBlob: BuiltImage;
  /** An image with a layer of ~384 KiB (for a cut in the middle). */
  let big: BuiltImage;

  before(async function () {
    this.timeout(120_000);
    const why = skipReason();
    if (why !== undefined) {
      process.stderr.write(`  skipping the registry integration tests: ${why}\n`);
      this.skip();
    }
    tmp = mkdtempSync(join(tmpdir(), 'tufa-oci-registry-test-'));
    const layout = join(tmp, 'layout');
    app = await buildImage(`${layout}:app`, {
      '/app.txt': `the app ${randomBytes(8).toString('hex')}\n`,
    });
    arm = await buildImage(
      `${layout}:arm`,
      { '/app.txt': `the arm64 app ${randomBytes(8).toString('hex')}\n` },
      { os: 'linux', architecture: 'arm64' },
    );
    multi = await buildIndex(`${layout}:multi`, [
      { image: app, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    badManifest = await buildImage(`${layout}:bad-manifest`, {
      '/m.txt': `manifest victim ${randomBytes(8).toString('hex')}\n`,
    });
    badBlobs = await buildImage(`${layout}:bad-blobs`, {
      '/b.txt': `blob victim ${randomBytes(8).toString('hex')}\n`,
    });
    longBlob = await buildImage(`${layout}:long-blob`, {
      '/l.txt': `long blob victim ${randomBytes(8).toString('hex')}\n`,
    });
    big = await buildImage(`${layout}:big`, { '/big.bin': randomBytes(384 * 1024) });
  });

  after(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  for (const mode of MODES) {
    describe(`${mode} registry`, () => {
      let reg: RegistryServer;
      let client: RegistryClient;
      let tuf: StaticServer | undefined;
      let repo: RepositoryRef;
      let v2s2Digest: string;

      before(async function () {
        this.timeout(120_000);
        reg = await RegistryServer.start(mode);
        repo = { registry: reg.host, repository: 'demo/app' };
        assert.equal(await reg.push(app.ref, 'demo/app:oci'), app.digest);
        v2s2Digest = await reg.push(app.ref, 'demo/app:v2s2', { format: 'v2s2' });
        assert.equal(await reg.push(multi.ref, 'demo/app:index', { all: true }), multi.digest);
        await reg.push(badManifest.ref, 'demo/bad-manifest:1.0');
        await reg.push(badBlobs.ref, 'demo/bad-blobs:1.0');
        await reg.push(longBlob.ref, 'demo/long-blob:1.0');
        client = new RegistryClient(reg.clientOptions());
      });

      after(async () => {
        await client?.close();
        await tuf?.close();
        await reg?.close();
      });

      it('fetches an OCI manifest by tag and by digest: the bytes skopeo reads, digest computed here', async () => {
        const raw = await reg.inspectRaw('demo/app:oci');
        const byTag = await client.getManifest(repo, 'oci');
        assert.ok(Buffer.from(byTag.bytes).equals(raw), 'by tag: the exact bytes');
        assert.equal(byTag.digest, digestOf(raw));
        assert.equal(byTag.digest, app.digest);
        assert.equal(byTag.mediaType, MEDIA_TYPES.ociManifest);
        const byDigest = await client.getManifest(repo, app.digest);
        assert.ok(Buffer.from(byDigest.bytes).equals(raw), 'by digest: the exact bytes');
        assert.equal(byDigest.digest, app.digest);
      });

      it('fetches a Docker schema 2 manifest with its media type, not converted', async () => {
        const raw = await reg.inspectRaw('demo/app:v2s2');
        const m = await client.getManifest(repo, 'v2s2');
        assert.equal(m.mediaType, MEDIA_TYPES.dockerManifest);
        assert.ok(Buffer.from(m.bytes).equals(raw), 'the exact bytes');
        assert.equal(m.digest, v2s2Digest);
        assert.equal(parseManifest(m.bytes, m.mediaType).mediaType, MEDIA_TYPES.dockerManifest);
        const byDigest = await client.getManifest(repo, v2s2Digest);
        assert.equal(byDigest.mediaType, MEDIA_TYPES.dockerManifest);
        assert.ok(Buffer.from(byDigest.bytes).equals(raw));
      });

      it('fetches an OCI index with its media type, as pushed', async () => {
        const raw = await reg.inspectRaw('demo/app:index');
        assert.ok(raw.equals(multi.manifest), 'skopeo pushed the index bytes unchanged');
        const m = await client.getManifest(repo, 'index');
        assert.equal(m.mediaType, MEDIA_TYPES.ociIndex);
        assert.ok(Buffer.from(m.bytes).equals(raw));
        assert.equal(m.digest, multi.digest);
        const parsed = parseManifest(m.bytes, m.mediaType);
        assert.equal(parsed.kind, 'index');
        // the children are there by the digests the index lists
        const child = await client.getManifest(repo, arm.digest);
        assert.equal(child.digest, arm.digest);
      });

      it('refuses a manifest fetched by digest whose stored bytes were corrupted (DIGEST_MISMATCH)', async () => {
        const r = { registry: reg.host, repository: 'demo/bad-manifest' };
        await corruptFile(reg.storagePath(r.repository, badManifest.digest), 'json-space');
        await expectOciError(() => client.getManifest(r, badManifest.digest), ['DIGEST_MISMATCH']);
        // by tag the registry serves the same bytes: the digest returned is theirs, not the header's
        const byTag = await client.getManifest(r, '1.0');
        assert.notEqual(byTag.digest, badManifest.digest);
        assert.equal(byTag.digest, digestOf(byTag.bytes));
      });

      it('refuses a manifest over the read limit (TOO_LARGE)', async () => {
        await expectOciError(() => client.getManifest(repo, 'oci', 64), ['TOO_LARGE']);
        await expectOciError(
          () => client.getManifest(repo, app.digest, app.size - 1),
          ['TOO_LARGE'],
        );
        const exact = await client.getManifest(repo, app.digest, app.size);
        assert.equal(exact.digest, app.digest);
      });

      it('copies blobs with their size and digest checked', async () => {
        const m = manifestOf(app);
        for (const desc of [m.config, ...m.layers]) {
          const bytes = await copyAll(client, repo, desc);
          assert.ok(bytes.equals(await blobOf(app.dir, desc.digest)), desc.digest);
        }
      });

      it('refuses a blob corrupted in storage (same size: DIGEST_MISMATCH)', async () => {
        const r = { registry: reg.host, repository: 'demo/bad-blobs' };
        const layer = layerOf(badBlobs);
        await corruptFile(reg.storagePath(r.repository, layer.digest), 'flip');
        const sunk: Uint8Array[] = [];
        await expectOciError(
          () => client.copyBlob(r, layer, (c) => void sunk.push(c)),
          ['DIGEST_MISMATCH'],
        );
      });

      it('refuses a blob grown in storage (SIZE_MISMATCH)', async () => {
        const r = { registry: reg.host, repository: 'demo/long-blob' };
        const layer = layerOf(longBlob);
        await corruptFile(reg.storagePath(r.repository, layer.digest), 'extend');
        await expectOciError(() => copyAll(client, r, layer), ['SIZE_MISMATCH']);
      });

      if (mode === 'plain') {
        // The same happens in every mode; one failing test is enough to show it.
        it('copyBlob: a blob truncated in storage is refused as SIZE_MISMATCH, not reported as an outage', async () => {
          // The registry answers 200 with a true Content-Length (the short file). copyBlob takes the
          // cleanly ended response for a broken connection, asks again with Range: bytes=<size>-,
          // gets 416 and reports REGISTRY_UNAVAILABLE (CLI exit 3, "unavailable") for tampered
          // content instead of a refusal.
          const r = { registry: reg.host, repository: 'demo/bad-blobs' };
          const config = manifestOf(badBlobs).config;
          await corruptFile(reg.storagePath(r.repository, config.digest), 'truncate');
          await expectOciError(
            () => copyAll(client, r, config),
            ['SIZE_MISMATCH', 'DIGEST_MISMATCH'],
          );
        });
      }

      it('pullImage verifies against a TUF target and writes an OCI layout skopeo reads', async function () {
        this.timeout(60_000);
        const target = `${reg.host}/demo/app:oci`;
        const files = await buildRepository({
          root: { signers: [signer()] },
          targets: { signers: [signer()] },
          snapshot: { signers: [signer()] },
          timestamp: { signers: [signer()] },
          files: [{ path: target, content: app.manifest }],
          now: Date.now(),
        });
        tuf = await StaticServer.start(files);
        const work = mkdtempSync(join(tmp, `pull-${mode}-`));
        writeFileSync(join(work, 'root.json'), files.get('1.root.json') as Uint8Array);
        const policy = TrustPolicy.fromJSON(
          {
            rules: [
              { match: `${reg.host}/demo/**`, tuf: { metadataUrl: tuf.url(), root: 'root.json' } },
            ],
          },
          work,
        );
        const verifier = new ImageArgs(
          new ImageVerifier({ policy, files: readTrustFile, cacheDir: join(work, 'cache') }),
          reg.clientOptions(),
        );
        const out = join(work, 'out');
        try {
          const r = await verifier.pull(target, `oci:${out}`);
          assert.equal(r.verified.digest, app.digest);
          assert.equal(r.manifestDigest, app.digest);
          assert.equal(r.blobs, 2);
        } finally {
          await verifier.close();
        }
        const layout = await readLayout(out, 'oci');
        assert.equal(layout.descriptor.digest, app.digest);
        assert.equal(checkLayoutBlobs(out), 3);
        assert.equal((await inspectLocal(`oci:${out}:oci`)).Digest, app.digest);
        assert.deepEqual(readdirSync(work).sort(), ['cache', 'out', 'root.json']);
      });

      if (mode === 'tls') {
        it('does not trust the registry without the test CA', async () => {
          const bare = new RegistryClient({ plainHttp: () => false, timeoutMs: 10_000 });
          try {
            const e = await expectOciError(
              () => bare.getManifest(repo, 'oci'),
              ['REGISTRY_UNAVAILABLE'],
            );
            assert.match(e.message, /certificate/i);
          } finally {
            await bare.close();
          }
        });
      }

      if (mode === 'htpasswd' || mode === 'token') {
        it('refuses a wrong password and missing credentials (UNAUTHORIZED)', async () => {
          const wrong = new RegistryClient(
            reg.clientOptions({
              credentials: new StaticCredentials(
                new Map([[reg.host, { username: TEST_ACCOUNT.username, password: 'wrong' }]]),
              ),
            }),
          );
          const none = new RegistryClient(
            reg.clientOptions({ credentials: new StaticCredentials(new Map()) }),
          );
          try {
            reg.issuer?.requests.splice(0);
            await expectOciError(() => wrong.getManifest(repo, 'oci'), ['UNAUTHORIZED']);
            await expectOciError(() => none.getManifest(repo, 'oci'), ['UNAUTHORIZED']);
            await expectOciError(() => copyAll(wrong, repo, layerOf(app)), ['UNAUTHORIZED']);
            if (reg.issuer !== undefined) {
              const [bad, anonymous] = reg.issuer.requests;
              assert.equal(bad?.status, 401);
              assert.equal(bad?.password, 'wrong', 'the wrong password was sent to the issuer');
              assert.equal(anonymous?.status, 401);
              assert.equal(anonymous?.hadAuthorization, false);
            }
          } finally {
            await wrong.close();
            await none.close();
          }
        });
      }

      if (mode === 'token') {
        it('sends the basic credentials to the token issuer, with the service and the scope', async () => {
          const fresh = new RegistryClient(reg.clientOptions());
          try {
            reg.issuer?.requests.splice(0);
            await fresh.getManifest(repo, 'oci');
            const [req] = reg.issuer?.requests ?? [];
            assert.equal(req?.status, 200);
            assert.equal(req?.username, TEST_ACCOUNT.username);
            assert.equal(req?.password, TEST_ACCOUNT.password);
            assert.equal(req?.service, reg.issuer?.service);
            assert.deepEqual(req?.scopes, ['repository:demo/app:pull']);
          } finally {
            await fresh.close();
          }
        });

        it('asks the issuer once per scope while the token is valid, again when it expired', async function () {
          this.timeout(30_000);
          const issuer = reg.issuer as NonNullable<typeof reg.issuer>;
          const fresh = new RegistryClient(reg.clientOptions());
          const other = { registry: reg.host, repository: 'demo/bad-blobs' };
          try {
            issuer.requests.splice(0);
            await fresh.getManifest(repo, 'oci');
            await fresh.getManifest(repo, app.digest);
            await fresh.getManifest(repo, 'index');
            for (const d of [manifestOf(app).config, layerOf(app)]) await copyAll(fresh, repo, d);
            assert.equal(issuer.requestsFor('repository:demo/app:pull').length, 1);
            await fresh.getManifest(other, '1.0');
            await fresh.getManifest(repo, 'v2s2');
            assert.equal(issuer.requestsFor('repository:demo/bad-blobs:pull').length, 1);
            assert.equal(issuer.requestsFor('repository:demo/app:pull').length, 1);
            assert.equal(issuer.requests.length, 2);

            // a token announced for 11 s is used for 1 s (renewed 10 s early)
            issuer.expiresIn = 11;
            const short = new RegistryClient(reg.clientOptions());
            try {
              issuer.requests.splice(0);
              await short.getManifest(repo, 'oci');
              await short.getManifest(repo, 'oci');
              assert.equal(issuer.requests.length, 1);
              await new Promise((r) => setTimeout(r, 1_300));
              await short.getManifest(repo, 'oci');
              assert.equal(issuer.requests.length, 2, 'a new token after expiry');
            } finally {
              await short.close();
            }
          } finally {
            issuer.expiresIn = 300;
            await fresh.close();
          }
        });
      }
    });
  }

  describe('through a proxy in front of an htpasswd registry', () => {
    let reg: RegistryServer;
    let proxy: BlobProxy;
    let blobServer: StaticServer;
    let client: RegistryClient;
    let repo: RepositoryRef;

    before(async function () {
      this.timeout(120_000);
      reg = await RegistryServer.start('htpasswd');
      await reg.push(app.ref, 'demo/app:1.0');
      await reg.push(big.ref, 'demo/big:1.0');
      proxy = await BlobProxy.start(reg.port);
      // the other origin serves the blobs from the registry's storage
      const blobs = new Map<string, Uint8Array>();
      for (const d of [manifestOf(app).config, layerOf(app)]) {
        blobs.set(`blobs/${d.digest}`, readFileSync(reg.storagePath('demo/app', d.digest)));
      }
      blobServer = await StaticServer.start(blobs);
      client = new RegistryClient({
        credentials: new StaticCredentials(new Map([[proxy.host, TEST_ACCOUNT]])),
        timeoutMs: 15_000,
      });
      repo = { registry: proxy.host, repository: 'demo/app' };
    });

    after(async () => {
      await client?.close();
      await proxy?.close();
      await blobServer?.close();
      await reg?.close();
    });

    it('follows a blob redirect to another origin without sending it Authorization', async () => {
      proxy.redirectTo = blobServer.origin;
      try {
        const m = await client.getManifest(repo, '1.0');
        assert.equal(m.digest, app.digest);
        for (const d of [manifestOf(app).config, layerOf(app)]) {
          const bytes = await copyAll(client, repo, d);
          assert.ok(bytes.equals(await blobOf(app.dir, d.digest)), d.digest);
          const atProxy = proxy.requests(`/blobs/${d.digest}`);
          assert.ok(
            atProxy.some((r) => /^Basic /.test(String(r.headers.authorization))),
            'the registry origin got the credentials',
          );
          const atOther = blobServer.requests(`blobs/${d.digest}`);
          assert.equal(atOther.length, 1, 'the other origin served the blob');
          assert.equal(atOther[0]?.headers.authorization, undefined, 'no Authorization there');
        }
        assert.ok(
          blobServer.log.every((r) => r.headers.authorization === undefined),
          'the other origin never saw Authorization',
        );
      } finally {
        proxy.redirectTo = undefined;
      }
    });

    it('resumes a blob cut in the middle with Range, and the blob verifies', async () => {
      const layer = layerOf(big);
      assert.ok(layer.size > 200_000, `a big layer (${layer.size} bytes)`);
      const afterBytes = 100_000;
      proxy.cut = { digest: layer.digest, afterBytes, done: false };
      const r = { registry: proxy.host, repository: 'demo/big' };
      const bytes = await copyAll(client, r, layer);
      assert.ok(bytes.equals(await blobOf(big.dir, layer.digest)), 'the blob verifies');
      assert.equal(proxy.cut.done, true, 'the connection was cut');
      const gets = proxy.requests(`/blobs/${layer.digest}`).filter((q) => q.headers.authorization);
      assert.equal(gets.length, 2, 'one request, then one to resume');
      assert.equal(gets[0]?.headers.range, undefined);
      assert.equal(gets[1]?.headers.range, `bytes=${afterBytes}-`);
    });
  });
});
