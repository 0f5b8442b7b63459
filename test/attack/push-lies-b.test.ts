/**
 * attack-b: the push side against a lying registry: it answers 201 to the metadata image PUT
 * but stores nothing (or keeps the old image). publish reports success; nothing reads back.
 * (Clients still verify what they get: this is about the publisher being told the truth.)
 */
import assert from 'node:assert/strict';
import {
  parseOciRepository,
  parseOciUrl,
  pushTufRepository,
  RegistryClient,
} from '../../src/oci/index.js';
import { RepositorySimulator } from '../sim/repository-simulator.js';
import { OciSim } from '../support/oci-sim.js';
import { SimRepo } from '../support/tuf-builder.js';

describe('attack-b: push to a lying registry', () => {
  it('observation: a 201 for a manifest the registry did not store is reported as pushed', async () => {
    const reg = await OciSim.start();
    const client = new RegistryClient({ timeoutMs: 5000 });
    try {
      const sim = new RepositorySimulator(new SimRepo());
      sim.publish();
      const files = new Map<string, Uint8Array>();
      for (const [rel, b] of sim.files)
        if (rel.startsWith('metadata/')) files.set(rel.slice('metadata/'.length), b);
      reg.intercept = (req, res) => {
        if (req.method !== 'PUT' || !req.url?.includes('/manifests/latest')) return false;
        res.writeHead(201, { 'docker-content-digest': `sha256:${'0'.repeat(64)}` });
        res.end();
        return true;
      };
      const meta = `oci://${reg.host}/tuf/meta:latest`;
      let pushed = true;
      await pushTufRepository(
        client,
        files,
        parseOciUrl(meta),
        parseOciRepository(`oci://${reg.host}/tuf/t`),
      ).catch(() => {
        pushed = false;
      });
      // secure: the publish does not claim a tag it could not see move
      assert.ok(!pushed || reg.manifest('tuf/meta', 'latest') !== undefined, 'reported pushed, but the registry has no metadata image');
    } finally {
      reg.intercept = undefined;
      await client.close();
      await reg.close();
    }
  });
});
