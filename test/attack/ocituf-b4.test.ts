/**
 * Attack (attack-b, part 4): RegistryFetcher routes by prefix: with the targets repository
 * `oci://REG/acme/` and the metadata image `oci://REG/acme/tuf:latest` (nested repository
 * names are ordinary), every metadata URL starts with the targets base and is read as a target.
 */
import assert from 'node:assert/strict';
import { RegistryFetcher } from '../../src/client/index.js';
import { parseOciRepository, parseOciUrl, pushTufRepository, RegistryClient } from '../../src/oci/index.js';
import { RepositorySimulator } from '../sim/repository-simulator.js';
import { OciSim } from '../support/oci-sim.js';
import { SimRepo } from '../support/tuf-builder.js';

describe('attack-b part 4', () => {
  it('ATTACK routing: a metadata image nested under the targets repository is still read as metadata', async () => {
    const reg = await OciSim.start();
    const client = new RegistryClient({ timeoutMs: 5000 });
    try {
      const sim = new RepositorySimulator(new SimRepo());
      sim.addTargetFile('a.txt', new TextEncoder().encode('a'));
      sim.publish();
      const files = new Map<string, Uint8Array>();
      for (const [rel, b] of sim.files) {
        if (rel.startsWith('targets/')) files.set(rel, b);
        if (rel.startsWith('metadata/')) files.set(rel.slice('metadata/'.length), b);
      }
      const meta = `oci://${reg.host}/acme/tuf:latest/`;
      const targets = `oci://${reg.host}/acme/`;
      await pushTufRepository(client, files, parseOciUrl(meta), parseOciRepository(targets));
      const f = new RegistryFetcher(client, { targetBaseUrl: targets });
      const bytes = await f.fetch(`${meta}timestamp.json`, 100_000);
      assert.ok(bytes.length > 0);
    } finally {
      await client.close();
      await reg.close();
    }
  });
});
