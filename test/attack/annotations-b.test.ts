/**
 * attack-b: hostile annotations and big manifests in a metadata image: `../`, NUL, a 1 MB
 * value, ~20k layers (under the 4 MiB cap), an index at the metadata tag, a 5 MiB manifest.
 */
import assert from 'node:assert/strict';
import { RegistryFetcher } from '../../src/client/index.js';
import { DownloadError } from '../../src/core/index.js';
import {
  parseOciRepository,
  parseOciUrl,
  pushTufRepository,
  RegistryClient,
  TUF_FILENAME_ANNOTATION,
} from '../../src/oci/index.js';
import { RepositorySimulator } from '../sim/repository-simulator.js';
import { OciSim, sha256 } from '../support/oci-sim.js';
import { SimRepo } from '../support/tuf-builder.js';

const enc = (s: string) => new TextEncoder().encode(s);
type L = { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };

describe('attack-b: hostile annotations', () => {
  let reg: OciSim;
  let client: RegistryClient;
  let meta: string;
  let m: { mediaType: string; layers: L[] };
  beforeEach(async () => {
    reg = await OciSim.start();
    client = new RegistryClient({ timeoutMs: 5000 });
    meta = `oci://${reg.host}/tuf/meta:latest/`;
    const sim = new RepositorySimulator(new SimRepo());
    sim.publish();
    const files = new Map<string, Uint8Array>();
    for (const [rel, b] of sim.files)
      if (rel.startsWith('metadata/')) files.set(rel.slice('metadata/'.length), b);
    await pushTufRepository(client, files, parseOciUrl(meta), parseOciRepository(`oci://${reg.host}/t`));
    const stored = reg.manifest('tuf/meta', 'latest');
    assert.ok(stored);
    m = JSON.parse(new TextDecoder().decode(stored.bytes));
  });
  afterEach(async () => {
    await client.close();
    await reg.close();
  });
  const bogus = (name: string): L => ({
    mediaType: 'application/vnd.tuf.metadata+json',
    digest: sha256(enc(name)),
    size: 1,
    annotations: { [TUF_FILENAME_ANNOTATION]: name },
  });

  it('held? look-alike names (../, NUL, /, 1 MB) do not shadow timestamp.json', async () => {
    m.layers = [
      bogus('../timestamp.json'),
      bogus('timestamp.json\u0000'),
      bogus('/timestamp.json'),
      bogus(`${'x'.repeat(1_000_000)}timestamp.json`),
      ...m.layers,
    ];
    reg.putManifest('tuf/meta', enc(JSON.stringify(m)), m.mediaType, 'latest');
    const b = await new RegistryFetcher(client).fetch(`${meta}timestamp.json`, 100_000);
    assert.match(new TextDecoder().decode(b), /"_type":\s*"timestamp"/);
  });

  it('held? ~20k layers under 4 MiB are looked up quickly; 5 MiB is refused', async () => {
    const many: L[] = [];
    for (let i = 0; i < 20_000; i++) many.push(bogus(`${i + 2}.root.json`));
    const doc = { ...m, layers: [...m.layers, ...many] };
    const bytes = enc(JSON.stringify(doc));
    assert.ok(bytes.length < 4 * 1024 * 1024, `${bytes.length}`);
    reg.putManifest('tuf/meta', bytes, m.mediaType, 'latest');
    const t0 = performance.now();
    await new RegistryFetcher(client).fetch(`${meta}timestamp.json`, 100_000);
    assert.ok(performance.now() - t0 < 3000);
    const huge = { ...m, layers: [...m.layers, ...many, ...many] };
    reg.putManifest('tuf/meta', enc(JSON.stringify(huge)), m.mediaType, 'latest');
    await assert.rejects(new RegistryFetcher(client).fetch(`${meta}timestamp.json`, 100_000), DownloadError);
  });

  it('held? an index at the metadata tag is refused', async () => {
    const idx = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ ...bogus('timestamp.json'), mediaType: 'application/vnd.oci.image.manifest.v1+json' }],
    };
    reg.putManifest('tuf/meta', enc(JSON.stringify(idx)), idx.mediaType, 'latest');
    await assert.rejects(
      new RegistryFetcher(client).fetch(`${meta}timestamp.json`, 100_000),
      (e: Error) => e instanceof DownloadError && /expected a TUF metadata image/.test(e.message),
    );
  });
});
