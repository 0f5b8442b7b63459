/**
 * RegistryClient against the in-process distribution simulator (test/support/oci-sim.ts): every
 * behaviour of the client, without Debian's docker-registry. The real registry's tests stay in
 * test/integration; these run everywhere.
 */
import assert from 'node:assert/strict';
import { OciError } from '../../../src/oci/errors.js';
import { RegistryClient, type RepositoryRef, StaticCredentials } from '../../../src/oci/index.js';
import { OciSim, type SimImage, sha256 } from '../../support/oci-sim.js';

const enc = (s: string) => new TextEncoder().encode(s);

async function fails(p: Promise<unknown>, code: string, message?: RegExp): Promise<OciError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OciError, `expected an OciError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

async function collect(
  client: RegistryClient,
  repo: RepositoryRef,
  desc: { digest: string; size: number },
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  await client.copyBlob(repo, { mediaType: 'x', ...desc }, (c) => {
    chunks.push(c);
  });
  return Buffer.concat(chunks);
}

describe('RegistryClient against the distribution simulator', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });

  async function world(
    options: Parameters<typeof OciSim.start>[0] = {},
    clientOptions: ConstructorParameters<typeof RegistryClient>[0] = {},
  ): Promise<{ sim: OciSim; client: RegistryClient; repo: RepositoryRef; image: SimImage }> {
    const sim = await OciSim.start(options);
    open.push(sim);
    const client = new RegistryClient({ timeoutMs: 2000, ...clientOptions });
    open.push(client);
    const image = sim.pushImage('team/app', '1.0', [enc('layer one'), enc('layer two')]);
    return { sim, client, repo: { registry: sim.host, repository: 'team/app' }, image };
  }

  it('error answers give their connection back: 20 × 404 in a row reuse one connection', async () => {
    // an unread error body used to keep its pooled socket until a timeout: after 8 of them
    // (the pool) the next request waited seconds for a free socket
    const { sim, client, repo, image } = await world({}, { timeoutMs: 60_000 });
    for (let i = 0; i < 20; i++) await fails(client.getManifest(repo, `missing-${i}`), 'NOT_FOUND');
    assert.equal((await client.getManifest(repo, '1.0')).digest, image.digest);
    assert.equal(sim.connections, 1, 'one keep-alive connection for all 21 requests');
  });

  it('gets a manifest by tag and by digest, computing the digest from the bytes', async () => {
    const { client, repo, image } = await world();
    const byTag = await client.getManifest(repo, '1.0');
    assert.equal(byTag.digest, image.digest);
    assert.deepEqual(Buffer.from(byTag.bytes), Buffer.from(image.bytes));
    assert.equal(byTag.mediaType, image.mediaType);
    const byDigest = await client.getManifest(repo, image.digest);
    assert.equal(byDigest.digest, image.digest);
  });

  it('never trusts Docker-Content-Digest: other bytes for a digest are DIGEST_MISMATCH', async () => {
    const { sim, client, repo, image } = await world();
    const other = sim.pushImage('team/app', undefined, [enc('evil')]);
    sim.intercept = (req, res) => {
      if (!req.url?.includes('/manifests/')) return false;
      res.writeHead(200, {
        'content-type': other.mediaType,
        'docker-content-digest': image.digest,
      });
      res.end(other.bytes);
      return true;
    };
    await fails(client.getManifest(repo, image.digest), 'DIGEST_MISMATCH');
  });

  it('caps manifests at 4 MiB while streaming (TOO_LARGE)', async () => {
    const { sim, client, repo } = await world();
    sim.intercept = (req, res) => {
      if (!req.url?.includes('/manifests/')) return false;
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.end(new Uint8Array(5 * 1024 * 1024).fill(0x20));
      return true;
    };
    await fails(client.getManifest(repo, '1.0'), 'TOO_LARGE');
  });

  it('streams a blob with its digest and size checked; a flipped or short blob is refused', async () => {
    const { sim, client, repo, image } = await world();
    const layer = image.layers[0] as { digest: string; size: number };
    assert.equal(new TextDecoder().decode(await collect(client, repo, layer)), 'layer one');
    const stored = sim.blob('team/app', layer.digest) as Uint8Array;
    sim.intercept = (req, res) => {
      if (!req.url?.includes('/blobs/')) return false;
      const bad = Buffer.from(stored);
      bad[0] = (bad[0] as number) ^ 1;
      res.writeHead(200);
      res.end(bad);
      return true;
    };
    await fails(collect(client, repo, layer), 'DIGEST_MISMATCH');
    sim.intercept = (req, res) => {
      if (!req.url?.includes('/blobs/')) return false;
      res.writeHead(200);
      res.end(stored.subarray(0, 3));
      return true;
    };
    await fails(collect(client, repo, layer), 'SIZE_MISMATCH');
  });

  it('resumes a broken blob transfer with Range and still checks the whole digest', async () => {
    const { sim, client, repo } = await world();
    const big = new Uint8Array(256 * 1024).map((_, i) => i % 251);
    const digest = sim.putBlob('team/app', big);
    let broken = 0;
    sim.intercept = (req, res) => {
      if (!req.url?.includes('/blobs/') || req.headers.range !== undefined || broken > 0)
        return false;
      broken++;
      res.writeHead(200, { 'content-length': String(big.length) });
      res.write(big.subarray(0, 1000));
      setTimeout(() => res.socket?.destroy(), 50);
      return true;
    };
    const got = await collect(client, repo, { digest, size: big.length });
    assert.equal(sha256(got), digest);
    assert.equal(broken, 1);
    assert.ok(sim.requests.some((r) => r.headers.range === 'bytes=1000-'));
  });

  it('Basic auth: credentials answer the registry own challenge; none configured is UNAUTHORIZED', async () => {
    const auth = { kind: 'basic', username: 'ci', password: 's3cret' } as const;
    const { sim, client, repo, image } = await world(
      { auth },
      { credentials: new StaticCredentials(new Map()) },
    );
    await fails(client.getManifest(repo, '1.0'), 'UNAUTHORIZED');
    const withCreds = new RegistryClient({
      timeoutMs: 2000,
      credentials: new StaticCredentials(
        new Map([[sim.host, { username: 'ci', password: 's3cret' }]]),
      ),
    });
    open.push(withCreds);
    assert.equal((await withCreds.getManifest(repo, '1.0')).digest, image.digest);
  });

  it('Bearer: one token from the realm (with Basic credentials) serves many requests', async () => {
    const auth = { kind: 'bearer', username: 'ci', password: 's3cret' } as const;
    const sim = await OciSim.start({ auth });
    open.push(sim);
    const image = sim.pushImage('team/app', '1.0', [enc('a')]);
    const client = new RegistryClient({
      timeoutMs: 2000,
      credentials: new StaticCredentials(
        new Map([[sim.host, { username: 'ci', password: 's3cret' }]]),
      ),
    });
    open.push(client);
    const repo = { registry: sim.host, repository: 'team/app' };
    for (let i = 0; i < 3; i++) await client.getManifest(repo, '1.0');
    await collect(client, repo, image.layers[0] as { digest: string; size: number });
    const tokenRequests = sim.requests.filter((r) => r.path.startsWith('/token'));
    assert.equal(tokenRequests.length, 1);
    assert.match(String(tokenRequests[0]?.path), /scope=repository%3Ateam%2Fapp%3Apull/);
    assert.match(String(tokenRequests[0]?.headers.authorization), /^Basic /);
  });

  it('follows a blob redirect to another origin without sending Authorization there', async () => {
    const auth = { kind: 'basic', username: 'ci', password: 's3cret' } as const;
    const sim = await OciSim.start({ auth });
    open.push(sim);
    const store = await OciSim.blobStoreFor(sim);
    open.push(store);
    const image = sim.pushImage('team/app', '1.0', [enc('redirected layer')]);
    const client = new RegistryClient({
      timeoutMs: 2000,
      credentials: new StaticCredentials(
        new Map([[sim.host, { username: 'ci', password: 's3cret' }]]),
      ),
    });
    open.push(client);
    const repo = { registry: sim.host, repository: 'team/app' };
    const got = await collect(client, repo, image.layers[0] as { digest: string; size: number });
    assert.equal(new TextDecoder().decode(got), 'redirected layer');
    assert.ok(store.requests.length >= 1);
    for (const r of store.requests) {
      assert.equal(r.headers.authorization, undefined, 'no Authorization at the other origin');
    }
  });

  it('a registry dripping a manifest is cut off by the deadline (REGISTRY_UNAVAILABLE)', async () => {
    const { client, repo } = await world({ dripBytesPerTick: 4, tickMs: 100 }, { timeoutMs: 300 });
    const started = Date.now();
    await fails(client.getManifest(repo, '1.0'), 'REGISTRY_UNAVAILABLE', /too slow/);
    assert.ok(Date.now() - started < 5000, 'bounded');
  });

  it('404 is NOT_FOUND; an unknown tag names the reference', async () => {
    const { client, repo } = await world();
    await fails(client.getManifest(repo, 'nope'), 'NOT_FOUND', /nope/);
  });
});
