/**
 * attack-b: `--https <registry>` is compared verbatim with the normalized registry name, so a
 * loopback registry the user asked to reach over HTTPS (a TLS registry behind a port-forward,
 * with --ca) is silently spoken to over plain HTTP, credentials included.
 */
import assert from 'node:assert/strict';
import { registryOptions } from '../../src/cli/registry-options.js';
import { parseOciUrl } from '../../src/oci/index.js';

describe('attack-b: --https matching', () => {
  it('ATTACK --https LOCALHOST:5000 / [0:0:0:0:0:0:0:1]:5000 still means HTTPS for that registry (no silent plain HTTP)', async () => {
    for (const [flag, url] of [
      ['LOCALHOST:5000', 'oci://LOCALHOST:5000/tuf/meta'],
      ['localhost:5000', 'oci://LOCALHOST:5000/tuf/meta'],
      ['[0:0:0:0:0:0:0:1]:5000', 'oci://[::1]:5000/tuf/meta'],
    ] as const) {
      const o = await registryOptions({ plainHttp: [], https: [flag] });
      const registry = parseOciUrl(url).registry;
      assert.equal(o.plainHttp?.(registry), false, `--https ${flag}: ${registry} over plain HTTP`);
    }
  });
});
