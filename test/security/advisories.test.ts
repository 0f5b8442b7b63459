/**
 * Past advisories in TUF clients (go-tuf, python-tuf) and the bug classes behind them, each
 * reproduced against tufa through its public API (TrustedMetadataSet, Updater, ImageVerifier)
 * and, where it matters, the CLI.
 */
import assert from 'node:assert/strict';
import { constants, createHash, createPublicKey, sign } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { initMetadataDir } from '../../src/client/index.js';
import { canonicalize } from '../../src/core/canonical-json.js';
import { TufaError } from '../../src/core/errors.js';
import type { JsonObject, JsonValue } from '../../src/core/json.js';
import { Metadata } from '../../src/core/metadata/envelope.js';
import { encodeName } from '../../src/core/names.js';
import { TrustedMetadataSet } from '../../src/core/trusted-set.js';
import { nodeBackend } from '../../src/crypto/index.js';
import {
  envelope,
  expiresIn,
  NOW,
  SimRepo,
  type SimRole,
  sha256Hex,
  TestKey,
} from '../support/tuf-builder.js';
import {
  type CaseContext,
  defineCases,
  pathsOf,
  publishEncoded,
  replaced,
  type SecurityCase,
  show,
} from './harness.js';
import { httpWorld, manifestBytes, simWorld, te, verifyInLayout } from './worlds.js';

const DAY = 86_400_000;

/** signedWith writes an envelope whose signatures are given as (key ID, signature hex). */
function signedWith(signed: JsonObject, sigs: ReadonlyArray<[string, string]>): Uint8Array {
  return te.encode(
    JSON.stringify({ signatures: sigs.map(([keyid, sig]) => ({ keyid, sig })), signed }, null, 1),
  );
}

function pem(der: Buffer): string {
  const b64 = der
    .toString('base64')
    .match(/.{1,64}/g)
    ?.join('\n');
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}

/** The public P-256 point of an ECDSA test key: x and y as hex. */
function p256Point(k: TestKey): { x: string; y: string } {
  const jwk = createPublicKey(k.privateKey).export({ format: 'jwk' });
  const hex = (s: string | undefined) => Buffer.from(s ?? '', 'base64url').toString('hex');
  return { x: hex(jwk.x), y: hex(jwk.y) };
}

/**
 * twoIdsOneKey lists `key` for the timestamp role under its own key ID and under a second ID
 * with `alias` (another spelling of the same public key), threshold 2, and has both IDs sign.
 * A control with a genuinely second key must pass, so the refusal is the key counting once.
 */
async function twoIdsOneKey(
  t: CaseContext,
  key: TestKey,
  alias: JsonObject,
  aliasSig: (data: Uint8Array) => string = (d) => key.signHex(d),
): Promise<void> {
  const repo = new SimRepo();
  const aliasId = `alias-of-${key.keyid.slice(0, 16)}`;
  repo.timestampKeys = [key];
  repo.setRootKeys({ timestamp: 2 });
  (repo.root.keys as JsonObject)[aliasId] = alias;
  ((repo.root.roles as JsonObject).timestamp as JsonObject).keyids = [key.keyid, aliasId];
  const set = new TrustedMetadataSet(envelope(repo.root, repo.rootKeys), NOW, {
    backend: nodeBackend,
  });
  const data = canonicalize(repo.timestamp);
  const bytes = signedWith(repo.timestamp, [
    [key.keyid, key.signHex(data)],
    [aliasId, aliasSig(data)],
  ]);
  await t.refuses(() => set.updateTimestamp(bytes), 'THRESHOLD_NOT_MET', /1 of the required 2/);
  // control: the alias is a usable spelling of the key (alone, threshold 1, it verifies)
  ((repo.root.roles as JsonObject).timestamp as JsonObject).keyids = [aliasId];
  ((repo.root.roles as JsonObject).timestamp as JsonObject).threshold = 1;
  new TrustedMetadataSet(envelope(repo.root, repo.rootKeys), NOW, {
    backend: nodeBackend,
  }).updateTimestamp(signedWith(repo.timestamp, [[aliasId, aliasSig(data)]]));
  ((repo.root.roles as JsonObject).timestamp as JsonObject).keyids = [key.keyid, aliasId];
  ((repo.root.roles as JsonObject).timestamp as JsonObject).threshold = 2;
  // control: a second, different key under the alias ID reaches the threshold
  const other = new TestKey(key.type);
  (repo.root.keys as JsonObject)[aliasId] = other.json;
  const set2 = new TrustedMetadataSet(envelope(repo.root, repo.rootKeys), NOW, {
    backend: nodeBackend,
  });
  set2.updateTimestamp(
    signedWith(repo.timestamp, [
      [key.keyid, key.signHex(data)],
      [aliasId, other.signHex(data)],
    ]),
  );
}

/** role returns a delegated role of a SimRepo. */
function role(repo: SimRepo, name: string): SimRole {
  return repo.delegated.get(name) as SimRole;
}

const WRONG_VALUES: JsonValue[] = [null, true, 0, -1, 2 ** 53 - 1, '', 'x', [], {}, [1], { a: 1 }];

const cases: SecurityCase[] = [
  {
    id: 'ADV-01',
    title: 'timestamp rollback, also against an expired cached timestamp',
    attack:
      'After the client trusted timestamp v2, a mirror replays v1; later, when the cached v2 has expired, it replays a v1 that was signed with a longer expiry',
    source: 'go-tuf CVE-2022-29173 (rollback of timestamp/snapshot versions)',
    expect: 'ROLLBACK',
    async run(t) {
      const w = await simWorld(t, (repo) => {
        repo.timestamp.expires = expiresIn(30);
      });
      const v1 = w.repo.timestampBytes();
      w.repo.timestamp.expires = expiresIn(1);
      w.repo.bump('timestamp');
      publishEncoded(w.sim);
      await w.refresh();
      w.sim.overrides.set('metadata/timestamp.json', v1);
      await t.refuses(w.refresh(), 'ROLLBACK');
      // two days later the cached v2 has expired; v1 is still valid, and still a rollback
      await t.refuses(w.refresh({ now: () => NOW + 2 * DAY }), 'ROLLBACK');
      assert.match(readFileSync(join(w.md, 'timestamp.json'), 'utf8'), /"version": 2/);
    },
  },
  {
    id: 'ADV-02',
    title: 'snapshot rollback: lower snapshot version, targets version, or a dropped role',
    attack:
      'A new timestamp names an older snapshot version; a new snapshot lists targets or a delegated role at a lower version, or no longer lists a role',
    source:
      'go-tuf CVE-2022-29173 (rollback of timestamp/snapshot versions); client workflow 5.4.3.2, 5.5.5',
    expect: 'ROLLBACK',
    async run(t) {
      const w = await simWorld(t, (repo) => {
        repo.delegate('targets', 'D', { paths: ['d/*'] });
      });
      w.repo.bump('D');
      w.repo.bump('targets');
      w.repo.bump('snapshot');
      w.repo.bump('timestamp');
      publishEncoded(w.sim);
      await w.refresh();
      const resign = (edit: () => void) => {
        w.repo.bump('snapshot');
        w.repo.bump('timestamp');
        w.repo.refreshMeta();
        edit();
        w.repo.timestamp.meta = { 'snapshot.json': { version: w.repo.snapshot.version as number } };
        w.sim.files.set(
          `metadata/${w.repo.snapshot.version}.snapshot.json`,
          w.repo.snapshotBytes(),
        );
        w.sim.files.set('metadata/timestamp.json', w.repo.timestampBytes());
      };
      const meta = () => w.repo.snapshot.meta as Record<string, JsonObject>;
      // a timestamp naming snapshot v1 after v2 was trusted
      w.repo.bump('timestamp');
      w.repo.timestamp.meta = { 'snapshot.json': { version: 1 } };
      w.sim.files.set('metadata/timestamp.json', w.repo.timestampBytes());
      await t.refuses(w.refresh(), 'ROLLBACK', /snapshot version 1/);
      resign(() => {
        (meta()['targets.json'] as JsonObject).version = 1;
      });
      await t.refuses(w.refresh(), 'ROLLBACK', /targets\.json/);
      resign(() => {
        (meta()['D.json'] as JsonObject).version = 1;
      });
      await t.refuses(w.refresh(), 'ROLLBACK', /D\.json/);
      resign(() => {
        delete meta()['D.json'];
      });
      await t.refuses(w.refresh(), 'ROLLBACK', /D\.json was listed/);
    },
  },
  {
    id: 'ADV-03',
    title: 'one key signing twice under the same key ID counts once',
    attack:
      "The timestamp role lists keys k1 and k2 with threshold 2; the attacker holds k1 and sends two signatures, both with k1's key ID (or the second with k2's ID)",
    source: 'go-tuf GHSA-3633-5h82-39pq (duplicate signatures counted toward the threshold)',
    expect: 'METADATA_FORMAT | THRESHOLD_NOT_MET',
    async run(t) {
      const repo = new SimRepo();
      const [k1, k2] = [new TestKey(), new TestKey()];
      repo.timestampKeys = [k1, k2];
      repo.setRootKeys({ timestamp: 2 });
      const set = new TrustedMetadataSet(envelope(repo.root, repo.rootKeys), NOW, {
        backend: nodeBackend,
      });
      const data = canonicalize(repo.timestamp);
      const s1 = k1.signHex(data);
      await t.refuses(
        () =>
          set.updateTimestamp(
            signedWith(repo.timestamp, [
              [k1.keyid, s1],
              [k1.keyid, s1],
            ]),
          ),
        'METADATA_FORMAT',
        /signs more than once/,
      );
      await t.refuses(
        () =>
          set.updateTimestamp(
            signedWith(repo.timestamp, [
              [k1.keyid, s1],
              [k2.keyid, s1],
            ]),
          ),
        'THRESHOLD_NOT_MET',
      );
    },
  },
  {
    id: 'ADV-04',
    title: 'the same public key under two key IDs counts once (root and delegations)',
    attack:
      'Root lists one ed25519 key under two key IDs for a 2-of-2 role; a delegation does the same for a delegated role; the one key signs under both IDs',
    source: 'go-tuf GHSA-3633-5h82-39pq (same key under two key IDs counted twice)',
    expect: 'THRESHOLD_NOT_MET',
    async run(t) {
      const k = new TestKey();
      await twoIdsOneKey(t, k, structuredClone(k.json));
      // in a delegation, through the Updater
      const aliasId = `alias-of-${k.keyid.slice(0, 16)}`;
      const w = await simWorld(t, (repo, add) => {
        repo.delegate('targets', 'D', { paths: ['d/*'], keys: [k], threshold: 2 });
        const d = repo.targets.delegations as JsonObject;
        (d.keys as JsonObject)[aliasId] = structuredClone(k.json);
        ((d.roles as JsonObject[])[0] as JsonObject).keyids = [k.keyid, aliasId];
        const plain = repo.targetsBytes.bind(repo);
        repo.targetsBytes = (name = 'targets') =>
          name === 'D' ? envelope(role(repo, 'D').signed, [k, k], [k.keyid, aliasId]) : plain(name);
        add('d/app', te.encode('app'), 'D');
      });
      const u = await w.refresh();
      await t.refuses(u.getTargetInfo('d/app'), 'THRESHOLD_NOT_MET');
    },
  },
  {
    id: 'ADV-05',
    title: 'one ECDSA key spelled as PEM, hex point, compressed PEM or another keytype counts once',
    attack:
      'Root lists one P-256 key twice: once as PEM and once as the hex point 04‖x‖y (also: a compressed-point PEM, or keytype "ecdsa-sha2-nistp256" instead of "ecdsa")',
    source: 'go-tuf GHSA-3633-5h82-39pq (key identity by key ID instead of public key)',
    expect: 'THRESHOLD_NOT_MET',
    async run(t) {
      const k = new TestKey('ecdsa');
      const { x, y } = p256Point(k);
      const spelled = (pub: string, keytype = 'ecdsa'): JsonObject => ({
        keytype,
        scheme: 'ecdsa-sha2-nistp256',
        keyval: { public: pub },
      });
      await twoIdsOneKey(t, k, spelled(`04${x}${y}`));
      await twoIdsOneKey(t, k, spelled(`04${x}${y}`.toUpperCase()));
      await twoIdsOneKey(
        t,
        k,
        spelled((k.json.keyval as JsonObject).public as string, 'ecdsa-sha2-nistp256'),
      );
      const yOdd = (Number.parseInt(y.slice(-2), 16) & 1) === 1;
      const compressed = Buffer.concat([
        Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'),
        Buffer.from(yOdd ? '03' : '02', 'hex'),
        Buffer.from(x, 'hex'),
      ]);
      await twoIdsOneKey(t, k, spelled(pem(compressed)));
    },
  },
  {
    id: 'ADV-06',
    title: 'ed25519 hex in upper and lower case, and RSA under two schemes, count once',
    attack:
      'Root lists one ed25519 key twice, its hex once lowercase and once uppercase; or one RSA key once as rsassa-pss-sha256 and once as rsa-pkcs1v15-sha256, signing with both paddings',
    source: 'go-tuf GHSA-3633-5h82-39pq (key identity by encoding)',
    expect: 'THRESHOLD_NOT_MET',
    timeout: 40_000,
    async run(t) {
      const k = new TestKey();
      const upper = structuredClone(k.json);
      (upper.keyval as JsonObject).public = (
        (k.json.keyval as JsonObject).public as string
      ).toUpperCase();
      await twoIdsOneKey(t, k, upper);
      const r = new TestKey('rsa');
      const pkcs1 = structuredClone(r.json);
      pkcs1.scheme = 'rsa-pkcs1v15-sha256';
      await twoIdsOneKey(t, r, pkcs1, (d) =>
        sign('sha256', d, { key: r.privateKey, padding: constants.RSA_PKCS1_PADDING }).toString(
          'hex',
        ),
      );
    },
  },
  {
    id: 'ADV-07',
    title: 'threshold 0 (or negative, or not an integer) is refused wherever it appears',
    attack:
      'Metadata sets a role\'s threshold to 0 so that no signature is needed: a top-level role in root, a delegated role, succinct hashed bins; also -1, "1", 1.5',
    source: 'go-tuf CVE-2026-23992 (threshold 0 verified anything)',
    expect: 'METADATA_FORMAT',
    async run(t) {
      for (const bad of [0, -1, '1', null] as JsonValue[]) {
        for (const r of ['root', 'timestamp', 'snapshot', 'targets']) {
          const repo = new SimRepo();
          ((repo.root.roles as JsonObject)[r] as JsonObject).threshold = bad;
          await t.refuses(
            () =>
              new TrustedMetadataSet(envelope(repo.root, repo.rootKeys), NOW, {
                backend: nodeBackend,
              }),
            'METADATA_FORMAT',
            /threshold/,
          );
        }
      }
      // 1.5 can only be written as text
      const repo = new SimRepo();
      const text = new TextDecoder()
        .decode(envelope(repo.root, repo.rootKeys))
        .replace(/"threshold": 1/, '"threshold": 1.5');
      await t.refuses(
        () => new TrustedMetadataSet(te.encode(text), NOW, { backend: nodeBackend }),
        'METADATA_FORMAT',
      );
      // a properly signed root v2 that sets timestamp's threshold to 0, then an unsigned timestamp
      const w = await simWorld(t);
      ((w.repo.root.roles as JsonObject).timestamp as JsonObject).threshold = 0;
      w.repo.publishRoot(w.repo.rootKeys);
      publishEncoded(w.sim);
      w.sim.overrides.set('metadata/timestamp.json', signedWith(w.repo.timestamp, []));
      await t.refuses(w.refresh(), 'METADATA_FORMAT', /threshold/);
      assert.match(readFileSync(join(w.md, 'root.json'), 'utf8'), /"version": 1/);
      // a delegated role and succinct bins with threshold 0
      for (const edit of [
        (d: JsonObject) => {
          ((d.roles as JsonObject[])[0] as JsonObject).threshold = 0;
        },
        (d: JsonObject) => {
          delete d.roles;
          d.succinct_roles = { keyids: [], threshold: 0, bit_length: 2, name_prefix: 'bin' };
        },
      ]) {
        const x = await simWorld(t, (repo) => {
          repo.delegate('targets', 'D');
          edit(repo.targets.delegations as JsonObject);
        });
        await t.refuses(x.refresh(), 'METADATA_FORMAT', /threshold/);
      }
    },
  },
  {
    id: 'ADV-08',
    title: 'malformed JSON never crashes the client: nesting, numbers, UTF-8, truncation, types',
    attack:
      'A server answers timestamp.json with 16 000 nested brackets (a million straight to the parser), huge or fractional numbers, invalid UTF-8, a BOM, a truncated file, duplicate keys; and every field of every role replaced by a value of another type (re-signed)',
    source: 'go-tuf CVE-2026-23991 (malformed metadata crashed the client)',
    expect: 'METADATA_FORMAT',
    timeout: 60_000,
    async run(t) {
      const w = await simWorld(t);
      const good = w.repo.timestampBytes();
      const goodText = new TextDecoder().decode(good);
      const bad: Array<[string, Uint8Array]> = [
        // (within the 16 KiB timestamp limit, far deeper than the 128 levels allowed)
        ['nested arrays', te.encode('['.repeat(16_000))],
        ['nested objects', te.encode('{"a":'.repeat(3_000))],
        [
          'a huge integer',
          te.encode(goodText.replace(/"version": 1/, '"version": 123456789012345678901234567890')),
        ],
        ['an exponent', te.encode(goodText.replace(/"version": 1/, '"version": 1e400'))],
        ['a fraction', te.encode(goodText.replace(/"version": 1/, '"version": 1.0'))],
        ['a negative zero', te.encode(goodText.replace(/"version": 1/, '"version": -0.0'))],
        [
          'invalid UTF-8',
          Uint8Array.from([...good.subarray(0, 20), 0xff, 0xfe, ...good.subarray(20)]),
        ],
        [
          'overlong UTF-8',
          Uint8Array.from([...good.subarray(0, 20), 0xc0, 0xaf, ...good.subarray(20)]),
        ],
        [
          'a UTF-8 surrogate',
          Uint8Array.from([...good.subarray(0, 20), 0xed, 0xa0, 0x80, ...good.subarray(20)]),
        ],
        [
          'a lone surrogate escape',
          te.encode(goodText.replace('"timestamp"', '"timestamp\\ud800"')),
        ],
        ['a byte order mark', Uint8Array.from([0xef, 0xbb, 0xbf, ...good])],
        ['an empty file', new Uint8Array(0)],
        [
          'a duplicate key',
          te.encode(goodText.replace(/"version": 1,/, '"version": 1, "version": 2,')),
        ],
        ['trailing garbage', te.encode(`${goodText}]`)],
        ['NaN', te.encode(goodText.replace(/"version": 1/, '"version": NaN'))],
        ['a JSON string', te.encode('"timestamp"')],
        ['null', te.encode('null')],
        ['an array', te.encode('[]')],
      ];
      for (let cut = 1; cut < good.length; cut += Math.ceil(good.length / 15)) {
        bad.push([`truncated at ${cut}`, good.subarray(0, cut)]);
      }
      for (const [what, bytes] of bad) {
        w.sim.overrides.set('metadata/timestamp.json', bytes);
        const e = await t.refuses(w.refresh(), 'METADATA_FORMAT');
        assert.ok(e instanceof TufaError, what);
      }
      // a million levels straight into the parser
      for (const deep of ['['.repeat(1_000_000), '{"a":'.repeat(1_000_000)]) {
        await t.refuses(() => Metadata.fromBytes(te.encode(deep), 'root'), 'METADATA_FORMAT');
      }
      // the CLI: 16 000 nested brackets end in a refusal, not in the crash handler
      const h = await httpWorld(t);
      h.server.set('metadata/timestamp.json', {
        kind: 'body',
        body: te.encode('['.repeat(16_000)),
      });
      const r = await h.tuf('refresh');
      assert.equal(r.status, 1, show(r));
      assert.match(r.stderr, /^tufa tuf: .*nesting deeper/, show(r));

      // every field of every role, replaced by values of other types and re-signed with the
      // right key: accepted, or refused with a typed error; never a crash
      const repo = new SimRepo();
      repo.withHashes = false;
      repo.delegate('targets', 'D', { paths: ['d/*'] });
      repo.addTarget('d/x', te.encode('x'), 'D');
      repo.addTarget('t', te.encode('t'));
      repo.refreshMeta();
      let tried = 0;
      let refused = 0;
      const attempt = (fn: () => unknown, what: string) => {
        tried++;
        try {
          fn();
        } catch (e) {
          assert.ok(e instanceof TufaError, `${what}: ${(e as Error)?.stack ?? e}`);
          refused++;
        }
      };
      const docs: Array<[string, JsonObject, (bytes: Uint8Array) => void, TestKey[]]> = [
        [
          'root',
          repo.root,
          (b) => new TrustedMetadataSet(b, NOW, { backend: nodeBackend }),
          repo.rootKeys,
        ],
        [
          'timestamp',
          repo.timestamp,
          (b) =>
            new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend }).updateTimestamp(
              b,
            ),
          repo.timestampKeys,
        ],
        [
          'snapshot',
          repo.snapshot,
          (b) => {
            const s = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
            s.updateTimestamp(repo.timestampBytes());
            s.updateSnapshot(b, true);
          },
          repo.snapshotKeys,
        ],
        [
          'targets',
          repo.targets,
          (b) => {
            const s = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
            s.updateTimestamp(repo.timestampBytes());
            s.updateSnapshot(repo.snapshotBytes());
            const top = s.updateTargets(b);
            s.updateDelegatedTargets(repo.targetsBytes('D'), 'D', top);
          },
          repo.targetsKeys,
        ],
      ];
      for (const [name, signed, load, keys] of docs) {
        for (const path of pathsOf(signed)) {
          for (const value of WRONG_VALUES) {
            const doc = replaced(signed, path, value);
            const what = `${name} ${JSON.stringify(path)} = ${JSON.stringify(value)}`;
            // re-signed when it can be (an object), else sent as is
            const bytes =
              doc !== null && typeof doc === 'object' && !Array.isArray(doc)
                ? envelope(doc, keys)
                : te.encode(JSON.stringify({ signatures: [], signed: doc }));
            attempt(() => load(bytes), what);
          }
        }
      }
      assert.ok(tried > 500 && refused > 0, `${tried} tried, ${refused} refused`);
      process.stderr.write(
        `      (ADV-08: ${tried} re-signed documents with a field of another type, ${refused} refused)\n`,
      );
    },
  },
  {
    id: 'ADV-09',
    title: 'delegations are searched in listed order, pre-order, and stop at terminating',
    attack:
      "targets delegates to zeta then alpha, alpha to beta; zeta and beta both list app with different hashes (a client sorting names or visiting alpha→beta first takes beta's); a terminating role hides a later one",
    source: 'go-tuf CVE-2024-47534 (delegations traced out of order)',
    expect: 'LENGTH_OR_HASH_MISMATCH',
    async run(t) {
      const fromZeta = te.encode('app as zeta signs it');
      const fromBeta = te.encode('app as beta signs it');
      const w = await simWorld(t, (repo, add) => {
        repo.delegate('targets', 'zeta', { paths: ['*'] });
        repo.delegate('targets', 'alpha', { paths: ['*'] });
        repo.delegate('alpha', 'beta', { paths: ['*'] });
        repo.delegate('targets', '10', { paths: ['n'] });
        repo.delegate('targets', '9', { paths: ['n'] });
        repo.delegate('targets', 'stop', { paths: ['hidden'], terminating: true });
        repo.delegate('targets', 'after', { paths: ['hidden'] });
        add('app', fromZeta, 'zeta');
        add('app', fromBeta, 'beta');
        add('n', te.encode('from 10'), '10');
        add('n', te.encode('from nine'), '9');
        add('hidden', te.encode('after the terminating role'), 'after');
      });
      const u = await w.refresh();
      w.sim.take();
      const info = await u.getTargetInfo('app');
      assert.equal(info?.hashes.sha256, sha256Hex(fromZeta));
      assert.deepEqual(w.sim.take(), ['metadata/1.zeta.json'], 'zeta first, nothing else');
      assert.equal((await u.getTargetInfo('n'))?.hashes.sha256, sha256Hex(te.encode('from 10')));
      assert.equal(await u.getTargetInfo('hidden'), undefined, 'stopped at the terminating role');
      assert.ok(!w.sim.take().includes('metadata/1.after.json'));
      const slash = `targets/${sha256Hex(fromZeta)}.app`;
      w.sim.overrides.set(slash, fromBeta);
      await t.refuses(
        u.downloadTarget(info as NonNullable<typeof info>),
        'LENGTH_OR_HASH_MISMATCH',
      );
    },
  },
  {
    id: 'ADV-10',
    title: 'role names and target paths with traversal stay inside their folders',
    attack:
      'Delegated roles named ../x, /abs, a/../../b, .., ., with a NUL, %2e%2e, ..\\x; a target named ../../escape.txt downloaded by the CLI',
    source: 'python-tuf CVE-2021-41131, go-tuf CVE-2026-24686 (path traversal through role names)',
    expect:
      'safe: every file is written inside the metadata or target folder under its percent-encoded name',
    async run(t) {
      const names = [
        '../x',
        '/abs',
        'a/../../b',
        '..',
        '.',
        'nul\u0000byte',
        '%2e%2e',
        '..\\x',
        'a/b',
      ];
      const w = await simWorld(t, (repo, add) => {
        names.forEach((n, i) => {
          repo.delegate('targets', n, { paths: [`t${i}`] });
          add(`t${i}`, te.encode(`target ${i}`), n);
        });
      });
      const u = await w.refresh();
      w.sim.take();
      for (let i = 0; i < names.length; i++) assert.ok(await u.getTargetInfo(`t${i}`), names[i]);
      const requested = w.sim.take();
      assert.deepEqual(
        requested,
        names.map((n) => `metadata/1.${encodeName(n)}.json`),
      );
      for (const r of requested) {
        const file = r.slice('metadata/'.length);
        assert.ok(
          !file.includes('/') && !file.includes('\u0000') && file !== '.' && file !== '..',
          r,
        );
      }
      assert.deepEqual(
        readdirSync(w.md).sort(),
        [
          ...names.map((n) => `${encodeName(n)}.json`),
          'root.json',
          'snapshot.json',
          'targets.json',
          'timestamp.json',
        ].sort(),
      );
      assert.deepEqual(readdirSync(w.dir).sort(), ['metadata']);
      for (const escaped of [
        join(w.dir, 'x.json'),
        join(dirname(w.dir), 'b.json'),
        '/abs.json',
        join(dirname(w.md), '..x.json'),
      ]) {
        assert.ok(!existsSync(escaped), `${escaped} written outside the metadata folder`);
      }

      // the CLI downloading a target named ../../escape.txt
      const content = te.encode('escaped?');
      const h = await httpWorld(t, (_r, add) => add('../../escape.txt', content));
      h.sim.files.set(`${sha256Hex(content)}.escape.txt`, content); // where ../../ leads on the server
      const r = await h.download(['../../escape.txt']);
      assert.equal(r.status, 0, show(r));
      assert.deepEqual(readdirSync(h.td), ['..%2F..%2Fescape.txt']);
      assert.ok(!existsSync(join(h.td, '..', '..', 'escape.txt')));
      assert.ok(!existsSync(join(h.dir, 'escape.txt')));
    },
  },
  {
    id: 'ADV-11',
    title: 'diamond: a role verified through one delegator is re-verified through another',
    attack:
      'A and B both delegate to D, A with key kA and B with key kB; D is signed by kA only; after D was verified for a path through A, a path reached through B must not reuse it',
    source:
      'python-tuf / go-tuf delegation-graph handling (a role trusted through the wrong delegator)',
    expect: 'THRESHOLD_NOT_MET',
    async run(t) {
      const [kA, kB] = [new TestKey(), new TestKey()];
      const setup = (repo: SimRepo, add: (p: string, c: Uint8Array, r?: string) => void) => {
        repo.delegate('targets', 'A', { paths: ['x/*'] });
        repo.delegate('targets', 'B', { paths: ['y/*'] });
        repo.delegate('A', 'D', { paths: ['x/*'], keys: [kA] });
        repo.delegate('B', 'D', { paths: ['y/*'], keys: [kB] });
        role(repo, 'D').keys = [kA];
        add('x/1', te.encode('x1'), 'D');
        add('y/1', te.encode('y1'), 'D');
      };
      const w = await simWorld(t, setup);
      const u = await w.refresh();
      assert.ok(await u.getTargetInfo('x/1'), "through A: signed by A's key for D");
      await t.refuses(u.getTargetInfo('y/1'), 'THRESHOLD_NOT_MET');
      // the other order, and a fresh client whose cache already holds D
      const u2 = w.updater();
      await u2.refresh();
      await t.refuses(u2.getTargetInfo('y/1'), 'THRESHOLD_NOT_MET');
      const fresh = await simWorld(t, setup);
      const u3 = await fresh.refresh();
      await t.refuses(u3.getTargetInfo('y/1'), 'THRESHOLD_NOT_MET');
    },
  },
  {
    id: 'ADV-12',
    title: 'path_hash_prefixes match the hex SHA-256 of the UTF-8 path, nothing else',
    attack:
      "A role is delegated a hash prefix that matches the path's digest only in another encoding: base64 of the digest, SHA-256 of the Latin-1 bytes, or of the percent-encoded path",
    source: 'TUF 4.5 path_hash_prefixes; python-tuf and go-tuf hashed-bin handling',
    expect: 'UNSIGNED_IMAGE',
    async run(t) {
      const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();
      // a path whose base64 digest starts with two hex characters its hex digest does not
      let b64Path = '';
      let b64Prefix = '';
      for (let i = 0; b64Path === ''; i++) {
        const p = `registry.example/app${i}:1.0`;
        const b64 = digest(p).toString('base64').slice(0, 2);
        if (/^[0-9a-f]{2}$/.test(b64) && !digest(p).toString('hex').startsWith(b64)) {
          b64Path = p;
          b64Prefix = b64;
        }
      }
      const utf8Path = 'registry.example/caf\u00e9:1.0';
      const latin1Prefix = digest(Buffer.from(utf8Path, 'latin1')).toString('hex').slice(0, 4);
      const utf8Prefix = digest(Buffer.from(utf8Path, 'utf8')).toString('hex').slice(0, 4);
      assert.notEqual(latin1Prefix, utf8Prefix);
      const spacePath = 'registry.example/a b:1.0';
      const encodedPrefix = digest(encodeURIComponent(spacePath)).toString('hex').slice(0, 4);
      assert.ok(!digest(spacePath).toString('hex').startsWith(encodedPrefix));
      const m = manifestBytes('hashed');
      const w = await simWorld(t, (repo, add) => {
        repo.delegate('targets', 'b64', { path_hash_prefixes: [b64Prefix] });
        repo.delegate('targets', 'latin1', { path_hash_prefixes: [latin1Prefix] });
        repo.delegate('targets', 'encoded', { path_hash_prefixes: [encodedPrefix] });
        add(b64Path, m, 'b64');
        add(utf8Path, m, 'latin1');
        add(spacePath, m, 'encoded');
      });
      await t.refuses(verifyInLayout(t, w, b64Path, m), 'UNSIGNED_IMAGE');
      const u = await w.refresh();
      assert.equal(await u.getTargetInfo(utf8Path), undefined, 'Latin-1 prefix');
      assert.equal(await u.getTargetInfo(spacePath), undefined, 'percent-encoded path prefix');
      // control: the UTF-8 prefix (any case) does delegate the UTF-8 path
      const control = await simWorld(t, (repo, add) => {
        repo.delegate('targets', 'utf8', { path_hash_prefixes: [utf8Prefix.toUpperCase()] });
        add(utf8Path, m, 'utf8');
      });
      assert.ok(await (await control.refresh()).getTargetInfo(utf8Path));
    },
  },
  {
    id: 'ADV-13',
    title: 'an unparseable expires is an error, never "no expiry"',
    attack:
      'A role carries expires "never", "", 2030-02-30T00:00:00Z, a date without a zone, a malformed fraction or offset, a six-digit year, or a number',
    source: 'go-tuf / python-tuf expiry parsing (an unparsed expiry taken as never expiring)',
    expect: 'METADATA_FORMAT',
    async run(t) {
      const bad: JsonValue[] = [
        'never',
        '',
        '2030-02-30T00:00:00Z',
        '2030-13-01T00:00:00Z',
        '2030-01-01T24:00:00Z',
        '2030-01-01T00:00:00',
        '2030-01-01 00:00:00Z',
        '2030-01-01T00:00:00.Z',
        '2030-01-01T00:00:00.1234567890Z',
        '2030-01-01T00:00:00+24:00',
        '2030-01-01T00:00:00+00:60',
        '2030-01-01T00:00:00z',
        '2030-01-01T00:00:00+0000',
        '+275760-09-13T00:00:00Z',
        '9999999-01-01T00:00:00Z',
        '2030-1-1T0:0:0Z',
        4102444800,
        null,
      ];
      for (const value of bad) {
        const w = await simWorld(t, (repo) => {
          repo.timestamp.expires = value;
        });
        await t.refuses(w.refresh(), 'METADATA_FORMAT', /expires/);
      }
      // control: the other RFC 3339 forms name an instant exactly and are read as that instant
      // (sigstore's first roots write 2021-12-18T13:28:12.99008-06:00)
      for (const [value, utc] of [
        ['2099-01-01T00:00:00.5Z', '2099-01-01T00:00:00.500Z'],
        ['2098-12-31T18:00:00.99008-06:00', '2099-01-01T00:00:00.990Z'],
        ['2099-01-01T05:30:00+05:30', '2099-01-01T00:00:00.000Z'],
      ] as const) {
        const w = await simWorld(t, (repo) => {
          repo.timestamp.expires = value;
        });
        const u = await w.refresh();
        assert.equal(new Date(u.trusted.timestamp?.signed.expiresAt ?? 0).toISOString(), utc);
      }
      // an initial root with an unparseable expiry is refused before it is trusted
      const repo = new SimRepo();
      repo.root.expires = 'never';
      const dir = t.tmp();
      await t.refuses(initMetadataDir(dir, envelope(repo.root, repo.rootKeys)), 'METADATA_FORMAT');
      assert.ok(!existsSync(join(dir, 'root.json')));
    },
  },
  {
    id: 'ADV-14',
    title: 'empty or unusable hashes are refused, never taken as "nothing to check"',
    attack:
      'A target with "hashes": {}, a snapshot or timestamp entry with "hashes": {}, a hash value "", or only an algorithm the client cannot compute',
    source: 'TUF 4.4–4.5 (hashes); python-tuf / go-tuf empty-hashes handling',
    expect: 'METADATA_FORMAT | LENGTH_OR_HASH_MISMATCH',
    async run(t) {
      const targetEdits: Array<(repo: SimRepo) => void> = [
        (r) => ((r.targets.targets as JsonObject).x = { length: 1, hashes: {} }),
        (r) => ((r.targets.targets as JsonObject).x = { length: 1, hashes: { sha256: '' } }),
        (r) => ((r.targets.targets as JsonObject).x = { hashes: { sha256: 'ab' } }),
      ];
      for (const edit of targetEdits) {
        const w = await simWorld(t, edit);
        await t.refuses(w.refresh(), 'METADATA_FORMAT', /hash|length/);
      }
      // snapshot and timestamp entries: edited after the simulator computed them
      for (const which of ['snapshot', 'timestamp'] as const) {
        const w = await simWorld(t);
        w.repo.refreshMeta();
        if (which === 'snapshot') {
          ((w.repo.snapshot.meta as JsonObject)['targets.json'] as JsonObject).hashes = {};
          w.repo.timestamp.meta = { 'snapshot.json': { version: 1 } };
        } else {
          ((w.repo.timestamp.meta as JsonObject)['snapshot.json'] as JsonObject).hashes = {};
        }
        w.sim.files.set('metadata/1.snapshot.json', w.repo.snapshotBytes());
        w.sim.files.set('metadata/timestamp.json', w.repo.timestampBytes());
        await t.refuses(w.refresh(), 'METADATA_FORMAT', /hash/);
      }
      // only an algorithm the client cannot compute: the download is refused
      const content = te.encode('content');
      const w = await simWorld(t, (repo) => {
        (repo.targets.targets as JsonObject).x = {
          length: content.length,
          hashes: { md5: createHash('md5').update(content).digest('hex') },
        };
      });
      w.sim.files.set(`targets/${createHash('md5').update(content).digest('hex')}.x`, content);
      const u = await w.refresh();
      const info = await u.getTargetInfo('x');
      assert.ok(info);
      await t.refuses(u.downloadTarget(info), 'LENGTH_OR_HASH_MISMATCH', /not supported/);
      // every listed hash is checked: a right sha256 with a wrong sha512
      const w2 = await simWorld(t, (repo) => {
        (repo.targets.targets as JsonObject).x = {
          length: content.length,
          hashes: { sha256: sha256Hex(content), sha512: '00'.repeat(64) },
        };
      });
      w2.sim.files.set(`targets/${sha256Hex(content)}.x`, content);
      const u2 = await w2.refresh();
      await t.refuses(
        u2.downloadTarget((await u2.getTargetInfo('x')) as NonNullable<typeof info>),
        'LENGTH_OR_HASH_MISMATCH',
        /sha512/,
      );
    },
  },
  {
    id: 'ADV-15',
    title: 'glob syntax in delegation patterns is literal: !x, {a,b}, extglobs, ** widen nothing',
    attack:
      'A role is delegated "!registry.example/team-a/*", "registry.example/{team-a,team-b}/*", "registry.example/+(team-b)/*", "registry.example/@(x|team-b)/*", "registry.example/**" and lists an image a glob library would give it',
    source: 'TUF 4.5 PATHPATTERN (fnmatch per segment); tuf-js / minimatch-based clients',
    expect: 'UNSIGNED_IMAGE',
    async run(t) {
      const rows: Array<[string, string]> = [
        ['!registry.example/team-a/*', 'registry.example/team-b/neg:1.0'],
        ['registry.example/{team-a,team-b}/*', 'registry.example/team-b/brace:1.0'],
        ['registry.example/+(team-b)/*', 'registry.example/team-b/plus:1.0'],
        ['registry.example/@(x|team-b)/*', 'registry.example/team-b/at:1.0'],
        ['registry.example/!(team-a)/*', 'registry.example/team-b/not:1.0'],
        ['registry.example/**', 'registry.example/team-b/deep/star:1.0'],
        ['registry.example/*', 'registry.example/team-b/star:1.0'],
      ];
      const m = manifestBytes('glob');
      const w = await simWorld(t, (repo, add) => {
        rows.forEach(([pattern, path], i) => {
          repo.delegate('targets', `g${i}`, { paths: [pattern] });
          add(path, m, `g${i}`);
        });
        // control: the literal characters match themselves
        repo.delegate('targets', 'literal', { paths: ['{a,b}/*'] });
        add('{a,b}/x', m, 'literal');
      });
      for (const [, path] of rows) await t.refuses(verifyInLayout(t, w, path, m), 'UNSIGNED_IMAGE');
      const u = await w.refresh();
      assert.ok(await u.getTargetInfo('{a,b}/x'));
      assert.equal(await u.getTargetInfo('a/x'), undefined);
    },
  },
  {
    id: 'ADV-16',
    title: 'parser differentials: signatures cover the bytes as parsed, duplicates are refused',
    attack:
      'A signed timestamp gets a field added after signing, or a duplicate "version" key that another JSON parser would read differently, or a number spelled 1.0 / 1e0',
    source: 'JSON interoperability of signed documents (duplicate keys, non-canonical numbers)',
    expect: 'THRESHOLD_NOT_MET | METADATA_FORMAT',
    async run(t) {
      const repo = new SimRepo();
      const text = new TextDecoder().decode(repo.timestampBytes());
      const set = () => new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      await t.refuses(
        () => set().updateTimestamp(te.encode(text.replace('"_type"', '"x_added": 1, "_type"'))),
        'THRESHOLD_NOT_MET',
      );
      for (const variant of [
        text.replace(/"version": 1,/, '"version": 1, "version": 999,'),
        text.replace(/"version": 1,/, '"version": 999, "version": 1,'),
        text.replace(/"version": 1,/, '"version": 1.0,'),
        text.replace(/"version": 1,/, '"version": 1e0,'),
        text.replace('"signatures"', '"signatures": [], "signatures"'),
      ]) {
        assert.notEqual(variant, text);
        await t.refuses(() => set().updateTimestamp(te.encode(variant)), 'METADATA_FORMAT');
      }
    },
  },
];

describe('security: past advisories in TUF clients', () => {
  defineCases(cases);
});
