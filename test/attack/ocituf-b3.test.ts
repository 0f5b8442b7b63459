/**
 * Attack (attack-b, part 3): two TUF repositories in one registry repository (tags `prod` and
 * `staging`, as `oci://REG/REPO:TAG` allows): a delegated role of staging named `prod` is pushed
 * as the image tagged `prod`, over prod's metadata image. A delegatee of one repository takes
 * down the other (only the repository's own metadata tag is refused as a role name).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initMetadataDir, RegistryFetcher, Updater } from '../../src/client/index.js';
import {
  parseOciRepository,
  parseOciUrl,
  pushTufRepository,
  RegistryClient,
} from '../../src/oci/index.js';
import { RepositorySimulator } from '../sim/repository-simulator.js';
import { OciSim } from '../support/oci-sim.js';
import { NOW, SimRepo } from '../support/tuf-builder.js';

const enc = (s: string) => new TextEncoder().encode(s);

function tree(sim: RepositorySimulator): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [rel, bytes] of sim.files) if (rel.startsWith('targets/')) out.set(rel, bytes);
  for (const [rel, bytes] of sim.files)
    if (rel.startsWith('metadata/')) out.set(rel.slice('metadata/'.length), bytes);
  return out;
}

describe('attack-b part 3', () => {
  let reg: OciSim;
  let client: RegistryClient;
  let dir: string;
  beforeEach(async () => {
    reg = await OciSim.start();
    client = new RegistryClient({ timeoutMs: 5000 });
    dir = mkdtempSync(join(tmpdir(), 'tufa-attack-b3-'));
  });
  afterEach(async () => {
    await client.close();
    await reg.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("ATTACK tag collision: staging's delegated role named `prod` must not overwrite the prod repository's metadata image in the same registry repository", async () => {
    const prodUrl = `oci://${reg.host}/acme/tuf:prod/`;
    const stagingUrl = `oci://${reg.host}/acme/tuf:staging/`;
    const prod = new RepositorySimulator(new SimRepo());
    prod.addTargetFile('a.txt', enc('prod file'));
    prod.publish();
    await pushTufRepository(
      client,
      tree(prod),
      parseOciUrl(prodUrl),
      parseOciRepository(`oci://${reg.host}/acme/prod-targets`),
    );
    const staging = new SimRepo();
    staging.delegate('targets', 'prod', { paths: ['p/*'] }); // a role name, chosen by staging
    const ssim = new RepositorySimulator(staging);
    ssim.publish();
    let refused = false;
    await pushTufRepository(client, tree(ssim), parseOciUrl(stagingUrl)).catch(() => {
      refused = true;
    });
    if (refused) return; // refusing a role tag that is another metadata image would hold
    await initMetadataDir(join(dir, 'md'), prod.repo.rootBytes(1));
    const u = new Updater({
      metadataDir: join(dir, 'md'),
      metadataBaseUrl: prodUrl,
      fetcher: new RegistryFetcher(client),
      now: () => NOW,
    });
    try {
      await u.refresh(); // prod's clients
    } finally {
      await u.close();
    }
  });
});
