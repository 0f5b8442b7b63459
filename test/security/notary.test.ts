/**
 * Notary v1 / Docker Content Trust: the pinned root, tampered delegations and rollback, against
 * real notary-server output (the shared fixtures, served without sockets by
 * NotaryFixtureFetcher). Skipped when the fixtures are not there.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { NotaryClient } from '../../src/notary/index.js';
import {
  consistentName,
  final,
  fixtureClock,
  flipByte,
  NotaryFixtureFetcher,
  notaryFixturesSkipReason,
  stage,
} from '../support/notary-fixtures.js';
import { type CaseContext, defineCases, type SecurityCase } from './harness.js';

/** rootKeyId is the root role's first key ID in a crawl's root.json. */
function rootKeyId(files: ReadonlyMap<string, Uint8Array>): string {
  const doc = JSON.parse(new TextDecoder().decode(files.get('root.json'))) as {
    signed: { roles: { root: { keyids: string[] } } };
  };
  return doc.signed.roles.root.keyids[0] as string;
}

function client(
  t: CaseContext,
  fetcher: NotaryFixtureFetcher,
  trust: { rootKeyIds?: string[]; tofu?: boolean },
  cacheDir = join(t.tmp(), 'notary'),
): NotaryClient {
  const c = new NotaryClient({
    server: fetcher.serverUrl,
    gun: fetcher.gun,
    trust,
    cacheDir,
    fetcher,
    now: fixtureClock,
  });
  t.defer(() => c.close());
  return c;
}

const cases: SecurityCase[] = [
  {
    id: 'NOT-01',
    title: 'a Notary root that does not match the pin, or names another GUN, is refused',
    attack:
      'The notary server answers with a root whose key is not the pinned one, or with the (validly signed) trust data of another GUN',
    source: 'Docker Content Trust root pinning; Notary v1 certificate checks (CN = GUN)',
    expect: 'THRESHOLD_NOT_MET',
    async run(t) {
      const app = final('app');
      const good = new NotaryFixtureFetcher(app);
      // control: the right pin verifies
      await client(t, good, { rootKeyIds: [rootKeyId(app.files)] }).refresh();
      await t.refuses(
        client(t, new NotaryFixtureFetcher(app), { rootKeyIds: ['0'.repeat(64)] }).refresh(),
        'THRESHOLD_NOT_MET',
        /trust pin/,
      );
      // another GUN's trust data under this GUN's URLs, even with trust on first use
      const other = new NotaryFixtureFetcher(final('multi'), { gun: app.gun });
      await t.refuses(client(t, other, { tofu: true }).refresh(), 'THRESHOLD_NOT_MET', /GUN/);
    },
  },
  {
    id: 'NOT-02',
    title: 'a tampered Notary delegation ends the refresh, it is never skipped',
    attack:
      'The server flips one byte of targets/releases, the delegation Docker Content Trust reads tags from',
    source: 'Notary v1 client design (hash mismatch is fatal, unlike an expired delegation)',
    expect: 'LENGTH_OR_HASH_MISMATCH',
    async run(t) {
      const app = final('app');
      const fetcher = new NotaryFixtureFetcher(app);
      fetcher.modify(consistentName(app, 'targets/releases'), (b) => flipByte(b));
      await t.refuses(
        client(t, fetcher, { rootKeyIds: [rootKeyId(app.files)] }).refresh(),
        'LENGTH_OR_HASH_MISMATCH',
      );
    },
  },
  {
    id: 'NOT-03',
    title: 'Notary trust data older than the cached one is refused (rollback)',
    attack:
      'After the client saw the latest trust data, the server replays an earlier stage of the same GUN',
    source: 'TUF rollback protection as the Notary client applies it',
    expect: 'ROLLBACK',
    async run(t) {
      const latest = stage('6-root-key-rotated');
      const fetcher = new NotaryFixtureFetcher(latest);
      const cacheDir = join(t.tmp(), 'notary');
      const pin = { rootKeyIds: [rootKeyId(latest.files)] };
      await client(t, fetcher, pin, cacheDir).refresh();
      fetcher.serve(stage('5-targets-key-rotated'));
      const e = await t.refuses(client(t, fetcher, pin, cacheDir).refresh(), 'ROLLBACK');
      assert.match(e.message, /lower than/);
    },
  },
];

describe('security: Notary v1 trust data', () => {
  before(function () {
    const why = notaryFixturesSkipReason();
    if (why !== undefined) {
      process.stderr.write(`  skipping the Notary security cases: ${why}\n`);
      this.skip();
    }
  });
  defineCases(cases);
});
