/**
 * RegistryClient's push (pushBlob, pushManifest) on the in-process registry simulator: a blob
 * the repository has is not uploaded again, the upload is monolithic (POST, then PUT with the
 * digest) through the registry's bearer challenge, an upload location on another origin is refused
 * before any byte goes there, and a refused manifest is a typed error. The same pushes against
 * Debian's docker-registry run in test/integration/oci-tuf.test.ts.
 */
import assert from 'node:assert/strict';
import { digestOf, OciError, RegistryClient } from '../../../src/oci/index.js';
import { OciSim } from '../../support/oci-sim.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('RegistryClient push (simulator)', () => {
  let reg: OciSim;
  let other: OciSim;
  let client: RegistryClient;
  beforeEach(async () => {
    reg = await OciSim.start({ auth: { kind: 'bearer' } });
    other = await OciSim.start();
    client = new RegistryClient({ timeoutMs: 5000 });
  });
  afterEach(async () => {
    await client.close();
    await reg.close();
    await other.close();
  });

  it('uploads a blob monolithically (bearer auth), and not again when the repository has it', async () => {
    const repo = { registry: reg.host, repository: 'team/app' };
    const bytes = enc('blob bytes');
    const d = await client.pushBlob(repo, bytes, 'application/octet-stream');
    assert.equal(d.digest, digestOf(bytes));
    assert.ok(Buffer.from(reg.blob('team/app', d.digest) ?? []).equals(bytes));
    const methods = reg.requests.filter((r) => r.path.startsWith('/v2/team/')).map((r) => r.method);
    assert.ok(methods.includes('POST') && methods.includes('PUT'), methods.join(' '));
    // the registry asked for a bearer token (its challenge names the scope), and got one
    assert.ok(reg.requests.some((r) => r.path.startsWith('/token')));
    const before = reg.requests.length;
    await client.pushBlob(repo, bytes, 'application/octet-stream');
    const again = reg.requests.slice(before).map((r) => r.method);
    assert.ok(!again.includes('POST') && !again.includes('PUT'), again.join(' '));
  });

  it('refuses an upload location on another origin: the bytes go nowhere else', async () => {
    reg.intercept = (req, res) => {
      if (req.method !== 'POST') return false;
      res.writeHead(202, { location: `${other.origin}/v2/team/app/blobs/uploads/x` });
      res.end();
      return true;
    };
    await assert.rejects(
      client.pushBlob({ registry: reg.host, repository: 'team/app' }, enc('secret layer'), 'x'),
      (e: OciError) => e.code === 'REGISTRY_UNAVAILABLE' && /another origin/.test(e.message),
    );
    assert.deepEqual(other.requests, []);
  });

  it('stores a manifest by tag; a refused manifest is a typed error', async () => {
    const repo = { registry: reg.host, repository: 'team/app' };
    const m = enc(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}',
    );
    const digest = await client.pushManifest(
      repo,
      'v1',
      m,
      'application/vnd.oci.image.index.v1+json',
    );
    assert.equal(digest, digestOf(m));
    assert.ok(Buffer.from(reg.manifest('team/app', 'v1')?.bytes ?? []).equals(m));
    reg.intercept = (req, res) => {
      if (req.method !== 'PUT') return false;
      res.writeHead(400).end('{"errors":[{"code":"MANIFEST_INVALID"}]}');
      return true;
    };
    await assert.rejects(
      client.pushManifest(repo, 'v2', m, 'application/vnd.oci.image.index.v1+json'),
      (e: OciError) => e instanceof OciError && /HTTP 400/.test(e.message),
    );
  });
});
