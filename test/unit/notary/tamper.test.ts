/**
 * Attacks on real notary-server output (shared fixtures/notary-v1): one character of a good
 * document changed, documents of other stages or GUNs mixed in, older documents served after
 * newer ones were trusted, clocks past the expiries. Every one is refused with a typed error
 * (`.code`), and the refusal happens before anything later in the chain is used.
 *
 * Notary fetches the snapshot, targets and delegations by the SHA-256 their parent lists, so a
 * changed byte in any of them is a LENGTH_OR_HASH_MISMATCH before its signature is looked at;
 * only root.json and timestamp.json (fetched by name) reach the signature check
 * (THRESHOLD_NOT_MET). Mixing real, validly signed documents of two stages reaches the threshold
 * check of the snapshot.
 *
 * Also here: `parseRfc3339` (Go `time.Time` expiries) and the key IDs (`notaryKeyId`,
 * `canonicalKeyId`) against every key in the fixtures and the lab's `notary key list` output.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bytesToBase64,
  FormatError,
  parseExpires as parseRfc3339,
  type Signature,
  TufaError,
} from '../../../src/core/index.js';
import { nodeBackend } from '../../../src/crypto/index.js';
import {
  canonicalKeyId,
  certificates,
  NotaryClient,
  type NotaryCollection,
  type NotaryKey,
  NotaryKeyRing,
  type NotaryTrust,
  notaryKeyId,
  parseNotary,
} from '../../../src/notary/index.js';
import {
  type Crawl,
  consistentName,
  type Envelope,
  editJson,
  FINALS,
  final,
  fixtureClock,
  fixturePath,
  flipBase64,
  flipByte,
  flipSignature,
  generatedAt,
  loadCrawl,
  type Modification,
  NotaryFixtureFetcher,
  notaryFixturesSkipReason,
  replaceText,
  STAGES,
  stage,
  text,
} from '../../support/notary-fixtures.js';

const NEW_ROOT = '4747b52b3dafa9a1511536eb13507e75cd3da7e9e0f1ed9787fdc49248854ed0';
const OLD_ROOT = '36aa2807f3730b9401c49b6a57a207541c170f9f19b935c092f8efb994926a46';
const B_ROOT = '8fbf189b7832c7f07f5bb633b68fd9623c13667aecd5261839dfade7d30a1d85';
const APP_OLD_CERT = '75244184df98989d38ca8d1218f8eb2ad4692512281c938e58d99150ca76d67f';
const APP_NEW_CERT = '893325389c5ce40d2ec35df98747c261aee0da9fd5604461cd20ecc01c4dcdc7';
const DAY = 86_400_000;

/** Asserts a typed refusal: a TufaError with this code. */
async function refused(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TufaError, `not a TufaError: ${String(e)}`);
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

describe('Notary client: tampered, mixed, rolled back and expired trust data (fixtures)', () => {
  let tmp: string;
  let counter = 0;
  const freshCache = () => join(tmp, `cache-${counter++}`);

  before(function () {
    const why = notaryFixturesSkipReason();
    if (why !== undefined) {
      process.stderr.write(`  skipping the Notary tamper tests: ${why}\n`);
      this.skip();
    }
    tmp = mkdtempSync(join(tmpdir(), 'tufa-notary-tamper-'));
  });

  after(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  function run(
    f: NotaryFixtureFetcher,
    o: { trust?: NotaryTrust; cacheDir?: string; now?: number; gun?: string } = {},
  ): Promise<NotaryCollection> {
    const now = o.now ?? fixtureClock();
    return new NotaryClient({
      server: f.serverUrl,
      gun: o.gun ?? f.gun,
      trust: o.trust ?? { rootKeyIds: [NEW_ROOT] },
      cacheDir: o.cacheDir ?? freshCache(),
      fetcher: f,
      now: () => now,
    }).refresh();
  }

  /** The final demo/app crawl (full delegations) with one file changed. */
  function appWith(name: string | ((c: Crawl) => string), change: Modification) {
    const crawl = final('app');
    const f = new NotaryFixtureFetcher(crawl);
    return f.modify(typeof name === 'string' ? name : name(crawl), change);
  }

  const snap = (c: Crawl) => consistentName(c, 'snapshot');
  const tgts = (role: string) => (c: Crawl) => consistentName(c, role);

  it('the fixtures re-serialise byte for byte (so each change below is exactly one edit)', () => {
    for (const name of Object.values(FINALS).filter((n) => !n.includes('quirks'))) {
      for (const [file, bytes] of loadCrawl(name).files) {
        if (!file.endsWith('.json')) continue;
        assert.deepEqual(
          editJson(bytes, () => undefined),
          bytes,
          `${name}/${file}`,
        );
      }
    }
  });

  it('the untouched final crawl verifies (control)', async () => {
    const c = await run(new NotaryFixtureFetcher(final('app')));
    assert.equal(c.root.version, 4);
  });

  describe('one character of a signature', () => {
    it('root.json (the new root key): THRESHOLD_NOT_MET', async () => {
      const f = appWith('root.json', (b) =>
        editJson(b, (d) => {
          const s = d.signatures.find((x) => x.keyid === APP_NEW_CERT);
          if (s) s.sig = flipBase64(s.sig);
        }),
      );
      await refused(run(f), 'THRESHOLD_NOT_MET', /root\.json/);
    });

    it("root.json v4, the old key's signature: a fresh client trusts the root but the snapshot names the untouched one; a client that trusts v3 refuses it", async () => {
      const oldSig = (b: Uint8Array) =>
        editJson(b, (d) => {
          const s = d.signatures.find((x) => x.keyid === APP_OLD_CERT);
          if (s) s.sig = flipBase64(s.sig);
        });
      const fresh = new NotaryFixtureFetcher(stage('6-root-key-rotated')).modify(
        'root.json',
        oldSig,
      );
      await refused(run(fresh), 'LENGTH_OR_HASH_MISMATCH', /root\.json \(as snapshot lists it\)/);

      const cacheDir = freshCache();
      const f = new NotaryFixtureFetcher(stage('5-targets-key-rotated'));
      await run(f, { cacheDir, trust: { rootKeyIds: [OLD_ROOT] } });
      f.serve(stage('6-root-key-rotated')).modify('root.json', oldSig);
      await refused(
        run(f, { cacheDir, trust: { rootKeyIds: [OLD_ROOT] } }),
        'THRESHOLD_NOT_MET',
        /by root v3/,
      );
    });

    it('timestamp.json: THRESHOLD_NOT_MET', async () => {
      const f = appWith('timestamp.json', (b) => flipSignature(b));
      await refused(run(f), 'THRESHOLD_NOT_MET', /timestamp\.json/);
      assert.ok(!f.names().some((n) => n?.startsWith('snapshot')), 'the snapshot is not fetched');
    });

    for (const role of [
      'snapshot',
      'targets',
      'targets/releases',
      'targets/qa',
      'targets/legacy',
    ]) {
      it(`${role}: LENGTH_OR_HASH_MISMATCH (its parent's hash no longer matches)`, async () => {
        const f = appWith(tgts(role), (b) => flipSignature(b));
        await refused(run(f), 'LENGTH_OR_HASH_MISMATCH', new RegExp(`${role}\\.json`));
      });
    }

    it('server B: the RSA-PSS root signature and the Ed25519 timestamp signature', async () => {
      const b = final('serverB');
      const trust = { rootKeyIds: [B_ROOT] };
      await refused(
        run(
          new NotaryFixtureFetcher(b).modify('root.json', (x) => flipSignature(x)),
          { trust },
        ),
        'THRESHOLD_NOT_MET',
      );
      await refused(
        run(
          new NotaryFixtureFetcher(b).modify('timestamp.json', (x) => flipSignature(x)),
          {
            trust,
          },
        ),
        'THRESHOLD_NOT_MET',
      );
      assert.ok(await run(new NotaryFixtureFetcher(b), { trust }));
    });

    it('an ECDSA signature re-encoded as DER (not raw r‖s): THRESHOLD_NOT_MET', async () => {
      const toDer = (raw: Buffer): Buffer => {
        const int = (b: Buffer) => {
          let v = b;
          while (v.length > 1 && v[0] === 0 && ((v[1] as number) & 0x80) === 0) v = v.subarray(1);
          if (((v[0] as number) & 0x80) !== 0) v = Buffer.concat([Buffer.from([0]), v]);
          return Buffer.concat([Buffer.from([0x02, v.length]), v]);
        };
        const body = Buffer.concat([int(raw.subarray(0, 32)), int(raw.subarray(32))]);
        return Buffer.concat([Buffer.from([0x30, body.length]), body]);
      };
      const f = appWith('timestamp.json', (b) =>
        editJson(b, (d) => {
          const s = d.signatures[0] as Envelope['signatures'][number];
          s.sig = toDer(Buffer.from(s.sig, 'base64')).toString('base64');
        }),
      );
      await refused(run(f), 'THRESHOLD_NOT_MET');
    });

    it('the method: "ECDSA" is read as ecdsa (notary lower-cases it), "rsapss" or "eddsa" on an ECDSA key fails', async () => {
      const method = (m: string) => (b: Uint8Array) =>
        editJson(b, (d) => {
          (d.signatures[0] as Envelope['signatures'][number]).method = m;
        });
      assert.ok(await run(appWith('timestamp.json', method('ECDSA'))));
      await refused(run(appWith('timestamp.json', method('rsapss'))), 'THRESHOLD_NOT_MET');
      await refused(run(appWith('timestamp.json', method('eddsa'))), 'THRESHOLD_NOT_MET');
    });

    it('a signature listed under another key ID, no signature, or the same key twice', async () => {
      const noSigs = (b: Uint8Array) =>
        editJson(b, (d) => {
          d.signatures = [];
        });
      await refused(run(appWith('timestamp.json', noSigs)), 'THRESHOLD_NOT_MET');
      const otherId = (b: Uint8Array) =>
        editJson(b, (d) => {
          (d.signatures[0] as Envelope['signatures'][number]).keyid = APP_NEW_CERT;
        });
      await refused(run(appWith('timestamp.json', otherId)), 'THRESHOLD_NOT_MET');
      const twice = (b: Uint8Array) =>
        editJson(b, (d) => {
          d.signatures.push({ ...(d.signatures[0] as Envelope['signatures'][number]) });
        });
      await refused(run(appWith('timestamp.json', twice)), 'METADATA_FORMAT', /more than once/);
    });

    it('a key listed under an ID that is not its own is never used', () => {
      const ts = parseNotary(
        final('app').files.get('timestamp.json') as Uint8Array,
        'Timestamp',
        't',
      );
      const root = parseNotary(
        final('app').files.get('root.json') as Uint8Array,
        'Root',
        'r',
      ).signed;
      const id = root.roles.get('timestamp')?.keyids[0] as string;
      const key = root.keys.get(id) as NotaryKey;
      const sig = ts.signatures.get(id);
      assert.ok(sig);
      const good = new NotaryKeyRing(new Map([[id, key]]), nodeBackend);
      assert.ok(good.resolve(id, sig));
      const fake = 'cd'.repeat(32);
      const bad = new NotaryKeyRing(new Map([[fake, { ...key, keyid: fake }]]), nodeBackend);
      assert.equal(bad.resolve(fake, { ...sig, keyid: fake }), undefined);
      // and a method the key type does not allow
      const eddsa: Signature & { method: string } = { ...sig, method: 'eddsa' };
      assert.equal(good.resolve(id, eddsa), undefined);
    });
  });

  describe('real documents of another stage mixed in (valid signatures, wrong keys or roots)', () => {
    it("stage 3's root (snapshot key of the client) with stage 4's server-signed snapshot: THRESHOLD_NOT_MET", async () => {
      const f = new NotaryFixtureFetcher(stage('4-snapshot-server-managed')).modify(
        'root.json',
        stage('3-delegated-targets').files.get('root.json') as Uint8Array,
      );
      await refused(
        run(f, { trust: { rootKeyIds: [OLD_ROOT] } }),
        'THRESHOLD_NOT_MET',
        /snapshot\.json/,
      );
    });

    it("stage 4's root with stage 5's snapshot, which names root v3: LENGTH_OR_HASH_MISMATCH", async () => {
      const f = new NotaryFixtureFetcher(stage('5-targets-key-rotated')).modify(
        'root.json',
        stage('4-snapshot-server-managed').files.get('root.json') as Uint8Array,
      );
      await refused(
        run(f, { trust: { rootKeyIds: [OLD_ROOT] } }),
        'LENGTH_OR_HASH_MISMATCH',
        /as snapshot lists it/,
      );
    });
  });

  describe('hashes and lengths', () => {
    it('a hash in the timestamp meta (sha256, sha512): THRESHOLD_NOT_MET before anything is fetched by it', async () => {
      for (const alg of ['sha256', 'sha512']) {
        const f = appWith('timestamp.json', (b) =>
          editJson(b, (d) => {
            const m = d.signed.meta?.snapshot as { hashes: Record<string, string> };
            m.hashes[alg] = flipBase64(m.hashes[alg] as string);
          }),
        );
        await refused(run(f), 'THRESHOLD_NOT_MET', /timestamp\.json/);
        assert.equal(f.requests.length, 2, alg);
      }
    });

    it('a hash in the snapshot meta (targets, a delegation): LENGTH_OR_HASH_MISMATCH of the snapshot', async () => {
      for (const role of ['targets', 'targets/releases', 'root']) {
        const f = appWith(snap, (b) =>
          editJson(b, (d) => {
            const m = d.signed.meta?.[role] as { hashes: Record<string, string> };
            m.hashes.sha256 = flipBase64(m.hashes.sha256 as string);
          }),
        );
        await refused(run(f), 'LENGTH_OR_HASH_MISMATCH', /snapshot\.json/);
      }
    });

    it('a length in the timestamp meta: THRESHOLD_NOT_MET; in the snapshot meta: LENGTH_OR_HASH_MISMATCH', async () => {
      const ts = appWith('timestamp.json', (b) =>
        editJson(b, (d) => {
          (d.signed.meta?.snapshot as { length: number }).length += 1;
        }),
      );
      await refused(run(ts), 'THRESHOLD_NOT_MET');
      const sn = appWith(snap, (b) =>
        editJson(b, (d) => {
          (d.signed.meta?.targets as { length: number }).length -= 1;
        }),
      );
      await refused(run(sn), 'LENGTH_OR_HASH_MISMATCH');
    });

    it('served bytes: one byte flipped, one byte short: LENGTH_OR_HASH_MISMATCH; one byte long: TOO_LARGE', async () => {
      for (const role of ['snapshot', 'targets', 'targets/releases']) {
        await refused(run(appWith(tgts(role), (b) => flipByte(b))), 'LENGTH_OR_HASH_MISMATCH');
        await refused(
          run(appWith(tgts(role), (b) => b.subarray(0, b.length - 1))),
          'LENGTH_OR_HASH_MISMATCH',
        );
        const long = appWith(tgts(role), (b) => new Uint8Array([...b, 0x20]));
        await refused(run(long), 'TOO_LARGE');
      }
    });

    it('the same snapshot re-formatted (same signed content, other bytes): LENGTH_OR_HASH_MISMATCH', async () => {
      const f = appWith(snap, (b) =>
        new TextEncoder().encode(JSON.stringify(JSON.parse(text(b)), null, 1)),
      );
      await refused(run(f), /* longer than listed */ 'TOO_LARGE');
    });

    it('the timestamp re-formatted (fetched by name): still verifies, signatures cover the canonical form', async () => {
      const f = appWith('timestamp.json', (b) =>
        new TextEncoder().encode(JSON.stringify(JSON.parse(text(b)), null, 2)),
      );
      assert.equal((await run(f)).timestamp.version, 7);
    });

    it('a target hash or length in targets or targets/releases: LENGTH_OR_HASH_MISMATCH', async () => {
      for (const role of ['targets', 'targets/releases']) {
        const hash = appWith(tgts(role), (b) =>
          editJson(b, (d) => {
            const t = d.signed.targets?.['1.0'] as { hashes: Record<string, string> };
            t.hashes.sha256 = flipBase64(t.hashes.sha256 as string);
          }),
        );
        await refused(run(hash), 'LENGTH_OR_HASH_MISMATCH', new RegExp(role));
        const length = appWith(tgts(role), (b) =>
          editJson(b, (d) => {
            (d.signed.targets?.['2.0'] as { length: number }).length = 424;
          }),
        );
        await refused(run(length), 'LENGTH_OR_HASH_MISMATCH', new RegExp(role));
      }
      // stage 1: the tag only in the top-level targets
      const s1 = stage('1-init');
      const f = new NotaryFixtureFetcher(s1).modify(consistentName(s1, 'targets'), (b) =>
        replaceText(
          b,
          'ZcgtQZ1kkta43ukYwqMPk5XGC1vz7BX7lNTwZCOd5h8=',
          'ZcgtQZ1kkta43ukYwqMPk5XGC1vz7BX7lNTwZCOd5h9=',
        ),
      );
      await refused(run(f, { trust: { rootKeyIds: [OLD_ROOT] } }), 'LENGTH_OR_HASH_MISMATCH');
    });
  });

  describe('expiry', () => {
    it("an expiry moved into the past: the timestamp's signature breaks (THRESHOLD_NOT_MET); the snapshot's hash (LENGTH_OR_HASH_MISMATCH)", async () => {
      const past = (b: Uint8Array) =>
        editJson(b, (d) => {
          d.signed.expires = '2020-01-01T00:00:00Z';
        });
      await refused(run(appWith('timestamp.json', past)), 'THRESHOLD_NOT_MET');
      await refused(run(appWith(snap, past)), 'LENGTH_OR_HASH_MISMATCH');
      await refused(run(appWith(tgts('targets/releases'), past)), 'LENGTH_OR_HASH_MISMATCH');
      await refused(run(appWith('root.json', past)), 'THRESHOLD_NOT_MET');
    });

    it('a clock past the timestamp expiry (14 days): EXPIRED; one millisecond before it: verified', async () => {
      const c = await run(new NotaryFixtureFetcher(final('app')));
      const at = c.timestamp.expiresAt;
      assert.ok(at > generatedAt() + 13 * DAY && at < generatedAt() + 15 * DAY);
      await refused(
        run(new NotaryFixtureFetcher(final('app')), { now: at }),
        'EXPIRED',
        /timestamp\.json v7 expired/,
      );
      assert.ok(await run(new NotaryFixtureFetcher(final('app')), { now: at - 1 }));
    });

    it('a clock past the snapshot and targets expiries (3 years): EXPIRED (the timestamp first)', async () => {
      const now = generatedAt() + 3 * 365 * DAY + 2 * DAY;
      await refused(run(new NotaryFixtureFetcher(final('app')), { now }), 'EXPIRED');
    });

    it('a clock past the root expiry (10 years): refused, the root certificate has expired too', async () => {
      const now = generatedAt() + 10 * 366 * DAY;
      await refused(
        run(new NotaryFixtureFetcher(final('app')), { now }),
        'THRESHOLD_NOT_MET',
        /no root certificate is valid/,
      );
      // and with the root trusted earlier
      const cacheDir = freshCache();
      await run(new NotaryFixtureFetcher(final('app')), { cacheDir });
      await refused(
        run(new NotaryFixtureFetcher(final('app')), { cacheDir, now }),
        'THRESHOLD_NOT_MET',
      );
    });

    it('freeze: the server keeps serving the trusted timestamp after it expired: EXPIRED', async () => {
      const cacheDir = freshCache();
      const f = new NotaryFixtureFetcher(final('app'));
      await run(f, { cacheDir });
      const c = await run(f, { cacheDir });
      await refused(run(f, { cacheDir, now: c.timestamp.expiresAt + 1 }), 'EXPIRED');
    });
  });

  describe('rollback (older documents after newer ones were trusted)', () => {
    async function trustedFinal(): Promise<string> {
      const cacheDir = freshCache();
      await run(new NotaryFixtureFetcher(final('app')), { cacheDir });
      return cacheDir;
    }

    it('stage 6 after final: the older timestamp (v6 < v7) is ROLLBACK', async () => {
      // the same root v4 in both
      assert.deepEqual(
        stage('6-root-key-rotated').files.get('root.json'),
        final('app').files.get('root.json'),
      );
      const cacheDir = await trustedFinal();
      const f = new NotaryFixtureFetcher(stage('6-root-key-rotated'));
      await refused(run(f, { cacheDir }), 'ROLLBACK', /timestamp\.json: version 6 .* 7/);
      assert.ok(!f.names().some((n) => n?.startsWith('snapshot')));
    });

    it("an older timestamp by name (final's 5.timestamp.json served as timestamp.json): ROLLBACK", async () => {
      const cacheDir = await trustedFinal();
      const crawl = final('app');
      const f = new NotaryFixtureFetcher(crawl).modify(
        'timestamp.json',
        crawl.files.get('5.timestamp.json') as Uint8Array,
      );
      await refused(run(f, { cacheDir }), 'ROLLBACK');
    });

    it('stage 5 after final: the older root (v3 < v4) is ROLLBACK', async () => {
      const cacheDir = await trustedFinal();
      await refused(
        run(new NotaryFixtureFetcher(stage('5-targets-key-rotated')), { cacheDir }),
        'ROLLBACK',
        /root\.json: version 3/,
      );
    });

    it('an older snapshot behind a newer-than-trusted timestamp: ROLLBACK', async () => {
      // trusted: snapshot v8 (final), timestamp v5 (stage 5); served: stage 6 (timestamp v6 → snapshot v7)
      const cacheDir = await trustedFinal();
      writeFileSync(
        join(cacheDir, 'timestamp.json'),
        stage('5-targets-key-rotated').files.get('timestamp.json') as Uint8Array,
      );
      await refused(
        run(new NotaryFixtureFetcher(stage('6-root-key-rotated')), { cacheDir }),
        'ROLLBACK',
        /snapshot\.json: version 7 .* 8/,
      );
    });

    it('the same versions again are accepted (no false rollback)', async () => {
      const cacheDir = await trustedFinal();
      assert.equal(
        (await run(new NotaryFixtureFetcher(final('app')), { cacheDir })).timestamp.version,
        7,
      );
    });

    it('root.json with the trusted version but other content: BAD_VERSION', async () => {
      const cacheDir = await trustedFinal();
      const f = appWith('root.json', (b) => flipSignature(b, 1));
      await refused(run(f, { cacheDir }), 'BAD_VERSION', /differs from the trusted copy/);
    });
  });

  describe('the root of another GUN (demo/multi, same root key, certificate CN demo/multi)', () => {
    const multiRoot = () => final('multi').files.get('root.json') as Uint8Array;

    it('pinned by the certificate ID of demo/app: THRESHOLD_NOT_MET', async () => {
      await refused(
        run(appWith('root.json', multiRoot()), { trust: { rootKeyIds: [APP_NEW_CERT] } }),
        'THRESHOLD_NOT_MET',
      );
    });

    it("pinned by the canonical key ID that signs both GUNs' roots: the certificate's CN refuses it", async () => {
      const root = parseNotary(multiRoot(), 'Root', 'multi').signed;
      const id = root.roles.get('root')?.keyids[0] as string;
      assert.equal(canonicalKeyId(root.keys.get(id) as NotaryKey), OLD_ROOT);
      await refused(
        run(appWith('root.json', multiRoot()), { trust: { rootKeyIds: [OLD_ROOT] } }),
        'THRESHOLD_NOT_MET',
      );
    });

    it('trust on first use: THRESHOLD_NOT_MET (no certificate for this GUN)', async () => {
      await refused(
        run(appWith('root.json', multiRoot()), { trust: { tofu: true } }),
        'THRESHOLD_NOT_MET',
        /no root certificate is valid for this GUN/,
      );
    });

    it('after demo/app v1 was trusted: THRESHOLD_NOT_MET; after v4: ROLLBACK', async () => {
      const cacheDir = freshCache();
      const s1 = new NotaryFixtureFetcher(stage('1-init'));
      await run(s1, { cacheDir, trust: { rootKeyIds: [OLD_ROOT] } });
      s1.modify('root.json', multiRoot());
      await refused(run(s1, { cacheDir, trust: { rootKeyIds: [OLD_ROOT] } }), 'THRESHOLD_NOT_MET');

      const cache4 = freshCache();
      await run(new NotaryFixtureFetcher(final('app')), { cacheDir: cache4 });
      await refused(run(appWith('root.json', multiRoot()), { cacheDir: cache4 }), 'ROLLBACK');
    });

    it('the whole demo/multi collection served as demo/app: refused', async () => {
      const f = new NotaryFixtureFetcher(final('multi'), { gun: '127.0.0.1:5000/demo/app' });
      await refused(run(f, { trust: { rootKeyIds: [OLD_ROOT] } }), 'THRESHOLD_NOT_MET');
    });
  });

  describe('malformed documents: METADATA_FORMAT (or WRONG_TYPE) before any signature is checked', () => {
    const cases: Array<{
      what: string;
      file: string;
      change: (b: Uint8Array) => Uint8Array;
      code: string;
    }> = [
      {
        what: 'truncated timestamp',
        file: 'timestamp.json',
        change: (b) => b.subarray(0, b.length - 2),
        code: 'METADATA_FORMAT',
      },
      {
        what: '_type "Snapshot" in timestamp.json',
        file: 'timestamp.json',
        change: (b) => replaceText(b, '"_type":"Timestamp"', '"_type":"Snapshot"'),
        code: 'WRONG_TYPE',
      },
      {
        what: '_type "timestamp" (TUF 1.0 spelling)',
        file: 'timestamp.json',
        change: (b) => replaceText(b, '"_type":"Timestamp"', '"_type":"timestamp"'),
        code: 'WRONG_TYPE',
      },
      {
        what: 'an expiry that is not RFC 3339',
        file: 'timestamp.json',
        change: (b) =>
          editJson(b, (d) => {
            d.signed.expires = d.signed.expires.replace('T', ' ');
          }),
        code: 'METADATA_FORMAT',
      },
      {
        what: 'a version as a string',
        file: 'timestamp.json',
        change: (b) => replaceText(b, '"version":7', '"version":"7"'),
        code: 'METADATA_FORMAT',
      },
      {
        what: 'a duplicated member',
        file: 'timestamp.json',
        change: (b) => replaceText(b, '"version":7', '"version":7,"version":8'),
        code: 'METADATA_FORMAT',
      },
      {
        what: 'no snapshot entry in the timestamp meta',
        file: 'timestamp.json',
        change: (b) => replaceText(b, '"meta":{"snapshot":', '"meta":{"snapshot.json":'),
        code: 'METADATA_FORMAT',
      },
      {
        what: 'a hash that is not base64',
        file: 'timestamp.json',
        change: (b) =>
          editJson(b, (d) => {
            const m = d.signed.meta?.snapshot as { hashes: Record<string, string> };
            m.hashes.sha256 = (m.hashes.sha256 as string).replace('=', '!');
          }),
        code: 'METADATA_FORMAT',
      },
      {
        what: 'a root without the timestamp role',
        file: 'root.json',
        change: (b) =>
          editJson(b, (d) => {
            delete (d.signed.roles as Record<string, unknown>).timestamp;
          }),
        code: 'METADATA_FORMAT',
      },
      {
        what: 'a root key that is not base64',
        file: 'root.json',
        change: (b) =>
          editJson(b, (d) => {
            const k = Object.values(
              d.signed.keys as Record<string, { keyval: { public: string } }>,
            )[0];
            if (k) k.keyval.public = `${k.keyval.public.slice(0, -4)}!!!!`;
          }),
        code: 'METADATA_FORMAT',
      },
    ];
    for (const c of cases) {
      it(`${c.what}: ${c.code}`, async () => {
        const f = appWith(c.file, c.change);
        await refused(run(f), c.code);
        if (c.file === 'timestamp.json') {
          assert.ok(!f.names().some((n) => n?.startsWith('snapshot')));
        }
      });
    }

    it('targets documents: bad delegation names, a role listed twice, a negative length', () => {
      const crawl = final('app');
      const bytes = crawl.files.get(consistentName(crawl, 'targets')) as Uint8Array;
      assert.ok(parseNotary(bytes, 'Targets', 't'));
      for (const [from, to] of [
        ['"name":"targets/releases"', '"name":"releases"'],
        ['"name":"targets/releases"', '"name":"targets/Releases"'],
        ['"name":"targets/releases"', '"name":"targets/qa"'],
        ['"name":"targets/releases"', '"name":"targets/../releases"'],
        ['"length":345', '"length":-345'],
      ] as const) {
        assert.throws(
          () => parseNotary(replaceText(bytes, from, to), 'Targets', 't'),
          (e: unknown) => e instanceof FormatError && e.code === 'METADATA_FORMAT',
          to,
        );
      }
    });
  });

  describe('parseRfc3339 (Go time.Time expiries)', () => {
    const ok: Array<[string, string]> = [
      ['2036-11-19T12:07:39.324015055Z', '2036-11-19T12:07:39.324Z'],
      ['2026-12-06T07:07:40.661298761-05:00', '2026-12-06T12:07:40.661Z'],
      ['2036-11-19T17:37:40.592527086+05:30', '2036-11-19T12:07:40.592Z'],
      ['2029-11-21T12:12:38.61219311Z', '2029-11-21T12:12:38.612Z'],
      ['2029-11-21T12:12:38.9999999Z', '2029-11-21T12:12:38.999Z'],
      ['2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000Z'],
      ['2026-01-01T00:00:00.1Z', '2026-01-01T00:00:00.100Z'],
      ['2024-02-29T23:59:59+00:00', '2024-02-29T23:59:59.000Z'],
      ['2026-01-01T01:00:00+23:59', '2025-12-31T01:01:00.000Z'],
      ['2025-12-31T23:30:00-01:00', '2026-01-01T00:30:00.000Z'],
    ];
    for (const [input, utc] of ok) {
      it(`${input} → ${utc}`, () => {
        assert.equal(new Date(parseRfc3339(input, 'x')).toISOString(), utc);
      });
    }

    const bad = [
      '',
      '2026-02-30T00:00:00Z',
      '2023-02-29T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-00-10T00:00:00Z',
      '2026-01-00T00:00:00Z',
      '2026-01-01T24:00:00Z',
      '2026-01-01T00:60:00Z',
      '2026-01-01T00:00:60Z',
      '2026-01-01 00:00:00Z',
      '2026-01-01t00:00:00z',
      '2026-01-01T00:00:00',
      '2026-01-01T00:00:00.Z',
      '2026-01-01T00:00:00.1234567890Z',
      '2026-01-01T00:00:00+0500',
      '2026-01-01T00:00:00+24:00',
      '2026-01-01T00:00:00+05:60',
      '2026-1-01T00:00:00Z',
      '26-01-01T00:00:00Z',
      '+002026-01-01T00:00:00Z',
      '2026-01-01T00:00:00Z ',
      'Sun, 22 Nov 2026 07:12:39 EST',
    ];
    for (const input of bad) {
      it(`refuses ${JSON.stringify(input)} (METADATA_FORMAT)`, () => {
        assert.throws(
          () => parseRfc3339(input, 'where'),
          (e: unknown) =>
            e instanceof FormatError &&
            e.code === 'METADATA_FORMAT' &&
            e.message.startsWith('where'),
        );
      });
    }

    it('every expiry in the fixtures parses, to the millisecond JavaScript gives', () => {
      let n = 0;
      for (const name of [
        ...STAGES.map((s) => `notary-A-ecdsa/demo-app/stages/${s}`),
        ...Object.values(FINALS),
      ]) {
        for (const [file, bytes] of loadCrawl(name).files) {
          if (!file.endsWith('.json')) continue;
          const expires = (JSON.parse(text(bytes)) as Envelope).signed.expires;
          assert.equal(parseRfc3339(expires, file), Date.parse(expires), `${name}/${file}`);
          n++;
        }
      }
      assert.ok(n > 100, String(n));
    });

    // Date.UTC maps the years 0–99 to 1900–1999: "0050-…" must still be year 50.
    it('a year below 100 (0050) is read as such, not as 1950', () => {
      assert.equal(parseRfc3339('0050-01-01T00:00:00Z', 'x'), Date.parse('0050-01-01T00:00:00Z'));
    });
  });

  describe('key IDs (notaryKeyId, canonicalKeyId)', () => {
    interface KeySet {
      readonly where: string;
      readonly kind: 'root' | 'delegations';
      readonly keys: ReadonlyMap<string, NotaryKey>;
    }
    function rootsAndDelegations(): KeySet[] {
      const out: KeySet[] = [];
      for (const name of [
        ...STAGES.map((s) => `notary-A-ecdsa/demo-app/stages/${s}`),
        ...Object.values(FINALS),
      ]) {
        for (const [file, bytes] of loadCrawl(name).files) {
          if (/(^|\.)root(\.[0-9a-f]{64})?\.json$/.test(file)) {
            const keys = parseNotary(bytes, 'Root', file).signed.keys;
            out.push({ where: `${name}/${file}`, kind: 'root', keys });
          } else if (/^(\d+\.)?targets(\/\w+)?(\.[0-9a-f]{64})?\.json$/.test(file)) {
            const t = parseNotary(bytes, 'Targets', file).signed;
            out.push({ where: `${name}/${file}`, kind: 'delegations', keys: t.delegationKeys });
          }
        }
      }
      return out;
    }

    it('every key in every root and delegation is listed under its notaryKeyId', () => {
      let n = 0;
      for (const { where, keys } of rootsAndDelegations()) {
        for (const [id, key] of keys) {
          assert.equal(notaryKeyId(key.keytype, key.public), id, `${where}: ${id}`);
          n++;
        }
      }
      assert.ok(n > 100, String(n));
    });

    it('the key ID covers "private": null: without it the ID differs', () => {
      const crawl = final('app');
      const root = parseNotary(crawl.files.get('root.json') as Uint8Array, 'Root', 'r').signed;
      const key = root.keys.get(APP_NEW_CERT) as NotaryKey;
      const withoutPrivate = createHash('sha256')
        .update(JSON.stringify({ keytype: key.keytype, keyval: { public: key.public } }))
        .digest('hex');
      assert.notEqual(withoutPrivate, APP_NEW_CERT);
      assert.equal(notaryKeyId(key.keytype, key.public), APP_NEW_CERT);
    });

    it("the server's timestamp.key / snapshot.key (members in another order) give the root's key IDs", () => {
      for (const name of Object.values(FINALS)) {
        const crawl = loadCrawl(name);
        const root = parseNotary(crawl.files.get('root.json') as Uint8Array, 'Root', 'r').signed;
        for (const role of ['timestamp', 'snapshot']) {
          const raw = crawl.files.get(`${role}.key`);
          // demo/quirks keeps its snapshot key on the client (notary key list shows it); asking
          // the server for snapshot.key made the server a new key, which the root does not list
          if (raw === undefined || (role === 'snapshot' && name.includes('quirks'))) continue;
          const k = JSON.parse(text(raw)) as { keytype: string; keyval: { public: string } };
          assert.ok(text(raw).indexOf('"public"') < text(raw).indexOf('"private"'));
          const id = notaryKeyId(k.keytype, k.keyval.public);
          assert.ok(root.roles.get(role)?.keyids.includes(id), `${name} ${role}.key → ${id}`);
        }
      }
    });

    it('canonical IDs of the root certificates are the IDs `notary key list` printed', () => {
      const rootsA = new Set<string>();
      const rootsB = new Set<string>();
      for (const { where, kind, keys } of rootsAndDelegations()) {
        if (kind !== 'root') continue;
        for (const key of keys.values()) {
          const c = canonicalKeyId(key);
          if (c === undefined) continue;
          (where.startsWith('notary-B') ? rootsB : rootsA).add(c);
        }
      }
      const list = (s: 'A' | 'B') =>
        readFileSync(fixturePath('keys', `notary-key-list-${s}.txt`), 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('root '))
          .map((l) => /\b[0-9a-f]{64}\b/.exec(l)?.[0]);
      assert.deepEqual(list('A').sort(), [OLD_ROOT, NEW_ROOT].sort());
      assert.deepEqual([...rootsA].sort(), [OLD_ROOT, NEW_ROOT].sort());
      assert.deepEqual(list('B'), [B_ROOT]);
      assert.deepEqual([...rootsB], [B_ROOT]);
    });

    it('one root key, one certificate per GUN: other certificate IDs, the same canonical ID', () => {
      const app1 = parseNotary(
        final('app').files.get('1.root.json') as Uint8Array,
        'Root',
        'a',
      ).signed;
      const multi = parseNotary(
        final('multi').files.get('root.json') as Uint8Array,
        'Root',
        'm',
      ).signed;
      const appId = app1.roles.get('root')?.keyids[0] as string;
      const multiId = multi.roles.get('root')?.keyids[0] as string;
      assert.equal(appId, APP_OLD_CERT);
      assert.notEqual(appId, multiId);
      assert.equal(canonicalKeyId(app1.keys.get(appId) as NotaryKey), OLD_ROOT);
      assert.equal(canonicalKeyId(multi.keys.get(multiId) as NotaryKey), OLD_ROOT);
    });

    it('delegation keys: the files in keys/ give the IDs in targets.json and in the key list', () => {
      const crawl = final('app');
      const t = parseNotary(
        crawl.files.get(consistentName(crawl, 'targets')) as Uint8Array,
        'Targets',
        't',
      ).signed;
      const idOf = (role: string) =>
        t.delegations.find((d) => d.name === role)?.keyids[0] as string;
      const listA = readFileSync(fixturePath('keys', 'notary-key-list-A.txt'), 'utf8');
      const listed = (role: string) =>
        new RegExp(`^${role.replace('/', '\\/')}\\s+([0-9a-f]{64})`, 'm').exec(listA)?.[1];

      // releases: a bare public key (docker trust signer add): keytype ecdsa, ID = canonical
      const spki = createPublicKey(readFileSync(fixturePath('keys', 'releases.pub'))).export({
        format: 'der',
        type: 'spki',
      });
      const releases = notaryKeyId('ecdsa', bytesToBase64(new Uint8Array(spki)));
      assert.equal(releases, idOf('targets/releases'));
      assert.equal(releases, listed('targets/releases'));
      assert.equal(canonicalKeyId(t.delegationKeys.get(releases) as NotaryKey), undefined);

      // qa and legacy: certificates; the delegation lists the certificate ID, the key list the canonical one
      for (const [role, file, keytype] of [
        ['targets/qa', 'qa.crt', 'ecdsa-x509'],
        ['targets/legacy', 'legacy.crt', 'rsa-x509'],
      ] as const) {
        const pem = readFileSync(fixturePath('keys', file), 'utf8');
        const b64 = Buffer.from(pem).toString('base64');
        const certId = notaryKeyId(keytype, b64);
        assert.equal(certId, idOf(role), role);
        const key = t.delegationKeys.get(certId) as NotaryKey;
        assert.equal(key.public, b64, `${role}: the PEM text as served`);
        assert.equal(canonicalKeyId(key), listed(role), role);
        assert.equal(certificates(key)[0]?.fingerprint256, new X509Certificate(pem).fingerprint256);
      }

      // targets keys of each GUN are in the key list
      for (const [which, gun] of [
        ['app', '127.0.0.1:5000/demo/app'],
        ['multi', '127.0.0.1:5000/demo/multi'],
      ] as const) {
        const root = parseNotary(
          final(which).files.get('root.json') as Uint8Array,
          'Root',
          'r',
        ).signed;
        const id = root.roles.get('targets')?.keyids[0] as string;
        assert.match(listA, new RegExp(`^targets\\s+${gun}\\s+${id}\\s`, 'm'), gun);
      }
    });

    it('the RSA root certificate: certificate ID and canonical ID', () => {
      const pem = readFileSync(fixturePath('keys', 'rsa-root.crt'), 'utf8');
      const key: NotaryKey = {
        keyid: '',
        keytype: 'rsa-x509',
        public: Buffer.from(pem).toString('base64'),
      };
      const crawl = final('serverB');
      const root = parseNotary(crawl.files.get('root.json') as Uint8Array, 'Root', 'r').signed;
      assert.deepEqual(root.roles.get('root')?.keyids, [notaryKeyId(key.keytype, key.public)]);
      assert.equal(canonicalKeyId(key), B_ROOT);
    });

    it('canonicalKeyId is undefined for bare keys (ecdsa, ed25519)', () => {
      const b = parseNotary(
        final('serverB').files.get('root.json') as Uint8Array,
        'Root',
        'r',
      ).signed;
      for (const key of b.keys.values()) {
        if (key.keytype === 'ed25519' || key.keytype === 'ecdsa') {
          assert.equal(canonicalKeyId(key), undefined, key.keytype);
        }
      }
    });

    it('the root signature is raw r‖s over the canonical signed bytes, by the certificate key', () => {
      const root = parseNotary(final('app').files.get('root.json') as Uint8Array, 'Root', 'r');
      const cert = certificates(root.signed.keys.get(APP_NEW_CERT) as NotaryKey)[0];
      assert.ok(cert);
      const sig = Buffer.from(root.signatures.get(APP_NEW_CERT)?.sig as string, 'base64');
      assert.equal(sig.length, 64);
      const key = { key: cert.publicKey, dsaEncoding: 'ieee-p1363' as const };
      assert.ok(cryptoVerify('sha256', root.signedBytes, key, sig));
      assert.ok(!cryptoVerify('sha256', root.signedBytes, { key: cert.publicKey }, sig), 'not DER');
    });
  });
});
