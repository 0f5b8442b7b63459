/**
 * Notary root pins across rotations (issue 16): a pin of the root key of any version anchors the
 * chain for a client with no cached root, and only a chain. Forged collections (three root
 * versions with root keys A, B, C) served without sockets:
 *
 * - a pin of A (v1), B (the middle version) or C (current) verifies;
 * - the versions after the anchor must each be signed by their predecessor's root keys: a v3
 *   that B did not sign is refused under a pin of B, even though v3 signs itself;
 * - versions before the anchor trust nothing: an unrelated v1 does not stop a pin of B;
 * - a pinned key that is not a root key of its version (here the targets key), or whose
 *   certificate names another GUN, anchors nothing; the refusal names the versions checked.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lookupTag, NotaryClient } from '../../../src/notary/index.js';
import { NotaryFixtureFetcher } from '../../support/notary-fixtures.js';
import {
  ecdsaKey,
  type ForgeKey,
  forgeClock,
  forgeCollection,
  forgedCrawl,
  forgeRoot,
  Openssl,
  type RootRoles,
  x509Key,
} from '../../support/notary-forge.js';

const SERVER = 'https://notary.test';
const GUN = 'registry.test/forged/rot';
const MANIFEST = 'the current manifest';

describe('Notary client: a pin of the root key of any version anchors the chain', () => {
  let tmp: string;
  let o: Openssl;
  let rootKey: (cn?: string) => ForgeKey;
  const rest = () => ({ targets: [ecdsaKey()], snapshot: [ecdsaKey()], timestamp: [ecdsaKey()] });
  const now = forgeClock();

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tufa-notary-pins-'));
    o = new Openssl(tmp);
    rootKey = (cn = GUN) => {
      const c = o.cert({ cn, days: 3650 });
      return x509Key(c.pem, c.privateKey);
    };
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  let n = 0;
  async function refresh(roots: Uint8Array[], keys: RootRoles, pin: string) {
    const crawl = forgedCrawl(
      SERVER,
      GUN,
      forgeCollection({ roots, keys, tags: { '1.0': MANIFEST } }),
    );
    const fetcher = new NotaryFixtureFetcher([crawl]);
    const c = new NotaryClient({
      server: SERVER,
      gun: GUN,
      trust: { rootKeyIds: [pin] },
      cacheDir: join(tmp, `c${n++}`),
      fetcher,
      now,
    });
    try {
      return await c.refresh();
    } finally {
      await c.close();
    }
  }

  /** Three versions: v1 root A, v2 root B (signed by A and B), v3 root C (signed by B and C). */
  function history() {
    const [a, b, c] = [rootKey(), rootKey(), rootKey()] as [ForgeKey, ForgeKey, ForgeKey];
    const k = rest();
    const kc: RootRoles = { root: [c], ...k };
    const roots = [
      forgeRoot(1, { root: [a], ...k }),
      forgeRoot(2, { root: [b], ...k }, [a, b]),
      forgeRoot(3, kc, [b, c]),
    ];
    return { a, b, c, k, kc, roots };
  }

  it('a pin of the root key of v1, of the middle version v2, or of the current v3 verifies', async () => {
    const h = history();
    for (const pin of [h.a, h.b, h.c]) {
      const c = await refresh(h.roots, h.kc, pin.id);
      assert.equal(c.root.version, 3);
      assert.ok(lookupTag(c, '1.0')?.digest?.startsWith('sha256:'));
    }
  });

  it('after the anchor every version must be signed by its predecessor: a v3 without B is refused under a pin of B', async () => {
    const h = history();
    const fork = forgeRoot(3, h.kc, [h.c]);
    await assert.rejects(refresh([h.roots[0], h.roots[1], fork] as Uint8Array[], h.kc, h.b.id), {
      code: 'THRESHOLD_NOT_MET',
      message: /root\.json v3 \(by root v2\)/,
    });
    // the same fork is refused under a pin of A (the chain runs through v2)
    await assert.rejects(refresh([h.roots[0], h.roots[1], fork] as Uint8Array[], h.kc, h.a.id), {
      code: 'THRESHOLD_NOT_MET',
    });
  });

  it('versions before the anchor trust nothing: a v1 of unrelated keys does not stop a pin of B', async () => {
    const h = history();
    const x = rootKey();
    const v1 = forgeRoot(1, { root: [x], ...h.k });
    const v2 = forgeRoot(2, { root: [h.b], ...h.k }); // signed by B alone, not by v1's key
    const c = await refresh([v1, v2, h.roots[2]] as Uint8Array[], h.kc, h.b.id);
    assert.equal(c.root.version, 3);
  });

  it('a pinned key that is no root key of its version, or names another GUN, anchors nothing; the refusal names the versions checked', async () => {
    const h = history();
    await assert.rejects(refresh(h.roots, h.kc, h.k.targets[0]?.id as string), {
      code: 'THRESHOLD_NOT_MET',
      message: /checked root\.json \(v3\) and 1\.root\.json…2\.root\.json/,
    });
    const other = rootKey('registry.test/forged/other');
    const k = h.k;
    const roots = [
      forgeRoot(1, { root: [h.a], ...k }),
      forgeRoot(2, { root: [other], ...k }, [h.a, other]),
      forgeRoot(3, h.kc, [other, h.c]),
    ];
    await assert.rejects(refresh(roots, h.kc, other.id), {
      code: 'THRESHOLD_NOT_MET',
      message: /1\.root\.json…2\.root\.json/,
    });
  });
});
