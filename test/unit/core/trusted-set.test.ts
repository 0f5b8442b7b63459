/**
 * TrustedMetadataSet driven with raw bytes: every check of TUF 5.2–5.6 passing, and failing for
 * the right reason (error class and stable code).
 */
import assert from 'node:assert/strict';
import {
  BadVersionNumberError,
  EqualVersionNumberError,
  ExpiredMetadataError,
  FormatError,
  LengthOrHashMismatchError,
  MisuseError,
  RepositoryError,
  TufaError,
  UnsignedMetadataError,
} from '../../../src/core/errors.js';
import { TrustedMetadataSet } from '../../../src/core/trusted-set.js';
import { nodeBackend } from '../../../src/crypto/index.js';
import { envelope, expiresIn, NOW, SimRepo, TestKey } from '../../support/tuf-builder.js';

/** throwsCode asserts `fn` throws an instance of `cls` with `code`. */
function throwsCode(fn: () => unknown, cls: new (...a: never[]) => Error, code: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(
      e instanceof cls,
      `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`,
    );
    assert.equal((e as TufaError).code, code, (e as Error).message);
    return true;
  });
}

function loadAll(
  repo: SimRepo,
  set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend }),
): TrustedMetadataSet {
  set.updateTimestamp(repo.timestampBytes());
  set.updateSnapshot(repo.snapshotBytes());
  set.updateTargets(repo.targetsBytes());
  return set;
}

describe('TrustedMetadataSet', () => {
  describe('trusted root (TUF 5.2)', () => {
    it('loads a root signed by its own threshold', () => {
      const repo = new SimRepo();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      assert.equal(set.root.signed.version, 1);
    });

    it('refuses a root not signed by its own keys', () => {
      const repo = new SimRepo();
      const bytes = envelope(repo.root, [new TestKey()]);
      throwsCode(
        () => new TrustedMetadataSet(bytes, NOW, { backend: nodeBackend }),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
    });

    it('refuses a root whose threshold the signatures do not reach', () => {
      const repo = new SimRepo();
      repo.rootKeys = [new TestKey(), new TestKey()];
      repo.setRootKeys({ root: 2 });
      const bytes = envelope(repo.root, [repo.rootKeys[0] as TestKey]);
      throwsCode(
        () => new TrustedMetadataSet(bytes, NOW, { backend: nodeBackend }),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
    });

    it('refuses bytes that are not JSON, and a timestamp given as root', () => {
      const repo = new SimRepo();
      throwsCode(
        () =>
          new TrustedMetadataSet(new TextEncoder().encode('{"signed":'), NOW, {
            backend: nodeBackend,
          }),
        FormatError,
        'METADATA_FORMAT',
      );
      throwsCode(
        () => new TrustedMetadataSet(repo.timestampBytes(), NOW, { backend: nodeBackend }),
        FormatError,
        'WRONG_TYPE',
      );
    });

    it('refuses a reference time that is not a number', () => {
      const repo = new SimRepo();
      assert.throws(
        () => new TrustedMetadataSet(repo.rootBytes(), Number.NaN, { backend: nodeBackend }),
        TypeError,
      );
    });
  });

  describe('root update (TUF 5.3)', () => {
    it('accepts N+1 signed by the old and the new root keys', () => {
      const repo = new SimRepo();
      const old = repo.rootKeys;
      repo.rootKeys = [new TestKey('ecdsa')];
      repo.setRootKeys();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      set.updateRoot(repo.publishRoot(old));
      assert.equal(set.root.signed.version, 2);
    });

    it('refuses N+1 signed only by the new keys (5.3.4, old threshold)', () => {
      const repo = new SimRepo();
      const old = repo.rootKeys;
      repo.rootKeys = [new TestKey()];
      repo.setRootKeys();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      throwsCode(
        () => set.updateRoot(repo.publishRoot(old, repo.rootKeys)),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
      assert.equal(set.root.signed.version, 1, 'the trusted root is unchanged');
    });

    it('refuses N+1 signed only by the old keys (5.3.4, new threshold)', () => {
      const repo = new SimRepo();
      const old = repo.rootKeys;
      repo.rootKeys = [new TestKey()];
      repo.setRootKeys();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      throwsCode(
        () => set.updateRoot(repo.publishRoot(old, old)),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
    });

    it('refuses a version other than N+1 (5.3.5)', () => {
      const repo = new SimRepo();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      repo.root.version = 3;
      throwsCode(
        () => set.updateRoot(envelope(repo.root, repo.rootKeys)),
        BadVersionNumberError,
        'BAD_VERSION',
      );
      repo.root.version = 1;
      throwsCode(
        () => set.updateRoot(envelope(repo.root, repo.rootKeys)),
        BadVersionNumberError,
        'ROLLBACK',
      );
    });

    it('accepts an expired intermediate root but not an expired final root (5.3.6, 5.3.10)', () => {
      const repo = new SimRepo();
      repo.root.expires = expiresIn(-1);
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      repo.root.expires = expiresIn(-1);
      set.updateRoot(repo.publishRoot(repo.rootKeys));
      throwsCode(() => set.updateTimestamp(repo.timestampBytes()), ExpiredMetadataError, 'EXPIRED');
      repo.root.expires = expiresIn(30);
      const set2 = new TrustedMetadataSet(repo.rootBytes(1), NOW, { backend: nodeBackend });
      set2.updateRoot(repo.rootBytes(2));
      set2.updateRoot(repo.publishRoot(repo.rootKeys));
      assert.equal(set2.updateTimestamp(repo.timestampBytes()).signed.version, 1);
    });

    it('refuses a root update after timestamp', () => {
      const repo = new SimRepo();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      set.updateTimestamp(repo.timestampBytes());
      assert.throws(() => set.updateRoot(repo.publishRoot(repo.rootKeys)), MisuseError);
    });
  });

  describe('threshold counting', () => {
    it('counts one key listed under two key IDs once (GHSA-3633-5h82-39pq)', () => {
      const repo = new SimRepo();
      const key = repo.rootKeys[0] as TestKey;
      const alias = `${key.keyid.slice(0, 60)}beef`;
      (repo.root.keys as Record<string, unknown>)[alias] = key.json;
      (repo.root.roles as Record<string, unknown>).root = {
        keyids: [key.keyid, alias],
        threshold: 2,
      };
      const bytes = envelope(repo.root, [key, key], [key.keyid, alias]);
      throwsCode(
        () => new TrustedMetadataSet(bytes, NOW, { backend: nodeBackend }),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
    });

    it('refuses two signatures with the same key ID', () => {
      const repo = new SimRepo();
      const key = repo.rootKeys[0] as TestKey;
      const bytes = envelope(repo.root, [key, key]);
      throwsCode(
        () => new TrustedMetadataSet(bytes, NOW, { backend: nodeBackend }),
        FormatError,
        'METADATA_FORMAT',
      );
    });

    it('refuses threshold 0 at parse (go-tuf CVE-2026-23992)', () => {
      const repo = new SimRepo();
      (repo.root.roles as Record<string, Record<string, unknown>>).timestamp = {
        keyids: [],
        threshold: 0,
      };
      throwsCode(
        () =>
          new TrustedMetadataSet(envelope(repo.root, repo.rootKeys), NOW, { backend: nodeBackend }),
        FormatError,
        'METADATA_FORMAT',
      );
    });

    it('accepts 2-of-3 and refuses 1-of-3 when the threshold is 2', () => {
      const repo = new SimRepo();
      repo.timestampKeys = [new TestKey(), new TestKey('ecdsa'), new TestKey()];
      repo.setRootKeys({ timestamp: 2 });
      const [a, b] = repo.timestampKeys as [TestKey, TestKey, TestKey];
      const set = new TrustedMetadataSet(envelope(repo.root, repo.rootKeys), NOW, {
        backend: nodeBackend,
      });
      set.updateTimestamp(envelope(repo.timestamp, [a, b]));
      const set2 = new TrustedMetadataSet(envelope(repo.root, repo.rootKeys), NOW, {
        backend: nodeBackend,
      });
      throwsCode(
        () => set2.updateTimestamp(envelope(repo.timestamp, [a])),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
    });

    it('ignores signatures by keys the role does not list', () => {
      const repo = new SimRepo();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      // signed by the snapshot key, which root lists, but not for timestamp
      throwsCode(
        () => set.updateTimestamp(envelope(repo.timestamp, repo.snapshotKeys)),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
    });

    it('verifies the signed object as parsed, unknown fields included', () => {
      const repo = new SimRepo();
      repo.timestamp.x_vendor = { note: 'kept', n: 1 };
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      const md = set.updateTimestamp(repo.timestampBytes());
      assert.deepEqual(md.signed.unrecognized, { x_vendor: { note: 'kept', n: 1 } });
      // the same field changed after signing breaks the signature
      const text = new TextDecoder().decode(repo.timestampBytes()).replace('"kept"', '"evil"');
      const set2 = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      throwsCode(
        () => set2.updateTimestamp(new TextEncoder().encode(text)),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
    });
  });

  describe('timestamp (TUF 5.4)', () => {
    it('refuses a lower version (rollback) and reports an equal one', () => {
      const repo = new SimRepo();
      repo.timestamp.version = 5;
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      set.updateTimestamp(repo.timestampBytes());
      repo.timestamp.version = 4;
      throwsCode(
        () => set.updateTimestamp(repo.timestampBytes()),
        BadVersionNumberError,
        'ROLLBACK',
      );
      repo.timestamp.version = 5;
      throwsCode(
        () => set.updateTimestamp(repo.timestampBytes()),
        EqualVersionNumberError,
        'EQUAL_VERSION',
      );
      assert.equal(set.timestamp?.signed.version, 5);
    });

    it('refuses a snapshot version lower than the trusted timestamp lists (5.4.3.2)', () => {
      const repo = new SimRepo();
      repo.snapshot.version = 3;
      repo.refreshMeta();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      set.updateTimestamp(repo.timestampBytes());
      repo.snapshot.version = 2;
      repo.refreshMeta();
      repo.bump('timestamp');
      throwsCode(
        () => set.updateTimestamp(repo.timestampBytes()),
        BadVersionNumberError,
        'ROLLBACK',
      );
    });

    it('keeps an expired timestamp as rollback reference but raises (5.4.4)', () => {
      const repo = new SimRepo();
      repo.timestamp.expires = expiresIn(-1);
      repo.timestamp.version = 7;
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      throwsCode(() => set.updateTimestamp(repo.timestampBytes()), ExpiredMetadataError, 'EXPIRED');
      assert.equal(set.timestamp?.signed.version, 7);
      throwsCode(() => set.updateSnapshot(repo.snapshotBytes()), ExpiredMetadataError, 'EXPIRED');
      repo.timestamp.expires = expiresIn(1);
      repo.timestamp.version = 6;
      throwsCode(
        () => set.updateTimestamp(repo.timestampBytes()),
        BadVersionNumberError,
        'ROLLBACK',
      );
    });

    it('treats the expiry instant itself as expired', () => {
      const repo = new SimRepo();
      repo.timestamp.expires = expiresIn(0);
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      throwsCode(() => set.updateTimestamp(repo.timestampBytes()), ExpiredMetadataError, 'EXPIRED');
    });

    it('refuses unparseable expires rather than treating it as never expiring', () => {
      const repo = new SimRepo();
      for (const bad of [
        '2030-02-30T00:00:00Z',
        '2030-01-01 00:00:00',
        '2030-01-01T00:00:00',
        'never',
        '',
      ]) {
        repo.timestamp.expires = bad;
        const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
        throwsCode(
          () => set.updateTimestamp(repo.timestampBytes()),
          FormatError,
          'METADATA_FORMAT',
        );
      }
    });

    it('refuses a timestamp whose meta names something other than snapshot.json', () => {
      const repo = new SimRepo();
      repo.timestamp.meta = { 'targets.json': { version: 1 } };
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      throwsCode(() => set.updateTimestamp(repo.timestampBytes()), FormatError, 'METADATA_FORMAT');
    });

    it('refuses an unsupported spec_version major', () => {
      const repo = new SimRepo();
      repo.timestamp.spec_version = '2.0.0';
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      throwsCode(
        () => set.updateTimestamp(repo.timestampBytes()),
        FormatError,
        'UNSUPPORTED_SPEC_VERSION',
      );
    });
  });

  describe('snapshot (TUF 5.5)', () => {
    it('refuses bytes whose hash or length differ from timestamp meta (5.5.2)', () => {
      const repo = new SimRepo();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      set.updateTimestamp(repo.timestampBytes());
      repo.snapshot.expires = expiresIn(6); // same length, other content
      throwsCode(
        () => set.updateSnapshot(repo.snapshotBytes()),
        LengthOrHashMismatchError,
        'LENGTH_OR_HASH_MISMATCH',
      );
      const padded = new Uint8Array([...repo.snapshotBytes(), 0x20]);
      throwsCode(
        () => set.updateSnapshot(padded),
        LengthOrHashMismatchError,
        'LENGTH_OR_HASH_MISMATCH',
      );
    });

    it('refuses a hash algorithm it cannot compute', () => {
      const repo = new SimRepo();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      const meta = repo.timestamp.meta as Record<string, Record<string, unknown>>;
      (meta['snapshot.json'] as Record<string, unknown>).hashes = {
        md5: 'd41d8cd98f00b204e9800998ecf8427e',
      };
      set.updateTimestamp(repo.timestampBytes());
      throwsCode(
        () => set.updateSnapshot(repo.snapshotBytes()),
        LengthOrHashMismatchError,
        'LENGTH_OR_HASH_MISMATCH',
      );
    });

    it('skips the hash check for a cached (trusted) copy but still checks signatures', () => {
      const repo = new SimRepo();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      set.updateTimestamp(repo.timestampBytes());
      const cached = repo.snapshotBytes();
      repo.snapshot.expires = expiresIn(6);
      assert.equal(set.updateSnapshot(cached, true).signed.version, 1);
      const set2 = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      set2.updateTimestamp(repo.timestampBytes());
      throwsCode(
        () => set2.updateSnapshot(envelope(repo.snapshot, repo.targetsKeys), true),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
    });

    it('refuses a version other than the one timestamp lists (5.5.4)', () => {
      const repo = new SimRepo();
      repo.withHashes = false;
      repo.refreshMeta();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      set.updateTimestamp(repo.timestampBytes());
      repo.snapshot.version = 2;
      throwsCode(
        () => set.updateSnapshot(repo.snapshotBytes()),
        BadVersionNumberError,
        'BAD_VERSION',
      );
    });

    it('refuses a targets version rollback and a removed role (5.5.5, CVE-2022-29173)', () => {
      const repo = new SimRepo();
      repo.withHashes = false;
      repo.delegate('targets', 'team');
      repo.targets.version = 4;
      repo.refreshMeta();
      const start = () => {
        const s = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
        s.updateTimestamp(repo.timestampBytes());
        s.updateSnapshot(repo.snapshotBytes());
        return s;
      };
      const set = start();
      const set2 = start();
      // a newer snapshot lists targets v3: the trusted one is the rollback reference
      repo.targets.version = 3;
      repo.bump('snapshot');
      repo.refreshMeta();
      throwsCode(() => set.updateSnapshot(repo.snapshotBytes()), BadVersionNumberError, 'ROLLBACK');
      // a newer snapshot no longer lists a role the trusted one listed
      repo.targets.version = 4;
      repo.delegated.delete('team');
      repo.refreshMeta();
      throwsCode(() => set2.updateSnapshot(repo.snapshotBytes()), RepositoryError, 'ROLLBACK');
    });

    it('refuses an expired snapshot (5.5.6) and snapshot before timestamp', () => {
      const repo = new SimRepo();
      repo.snapshot.expires = expiresIn(-2);
      repo.refreshMeta();
      const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      assert.throws(() => set.updateSnapshot(repo.snapshotBytes()), MisuseError);
      set.updateTimestamp(repo.timestampBytes());
      throwsCode(() => set.updateSnapshot(repo.snapshotBytes()), ExpiredMetadataError, 'EXPIRED');
      throwsCode(() => set.updateTargets(repo.targetsBytes()), ExpiredMetadataError, 'EXPIRED');
    });

    it('refuses a snapshot update after targets', () => {
      const repo = new SimRepo();
      const set = loadAll(repo);
      assert.throws(() => set.updateSnapshot(repo.snapshotBytes()), MisuseError);
    });
  });

  describe('targets (TUF 5.6)', () => {
    it('loads targets and refuses tampering (5.6.2, 5.6.3)', () => {
      const repo = new SimRepo();
      repo.addTarget('a.txt', new TextEncoder().encode('hello'));
      repo.refreshMeta();
      const set = loadAll(repo);
      assert.ok(set.targets?.signed.targets.has('a.txt'));
      const s2 = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
      s2.updateTimestamp(repo.timestampBytes());
      s2.updateSnapshot(repo.snapshotBytes());
      repo.addTarget('a.txt', new TextEncoder().encode('HELLO'));
      throwsCode(
        () => s2.updateTargets(repo.targetsBytes()),
        LengthOrHashMismatchError,
        'LENGTH_OR_HASH_MISMATCH',
      );
    });

    it('refuses targets signed by the wrong key, a wrong version, and expiry (5.6.3–5.6.5)', () => {
      const repo = new SimRepo();
      repo.withHashes = false;
      repo.refreshMeta();
      const fresh = () => {
        const s = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
        s.updateTimestamp(repo.timestampBytes());
        s.updateSnapshot(repo.snapshotBytes());
        return s;
      };
      throwsCode(
        () => fresh().updateTargets(envelope(repo.targets, repo.snapshotKeys)),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
      repo.targets.version = 2;
      throwsCode(
        () => fresh().updateTargets(repo.targetsBytes()),
        BadVersionNumberError,
        'BAD_VERSION',
      );
      repo.targets.version = 1;
      repo.targets.expires = expiresIn(-1);
      throwsCode(() => fresh().updateTargets(repo.targetsBytes()), ExpiredMetadataError, 'EXPIRED');
    });

    it('refuses a role the snapshot does not list, and one not delegated by its delegator', () => {
      const repo = new SimRepo();
      repo.delegate('targets', 'a', { paths: ['a/*'] });
      repo.refreshMeta();
      const set = loadAll(repo);
      throwsCode(
        () => set.updateDelegatedTargets(repo.targetsBytes('a'), 'b', 'targets'),
        RepositoryError,
        'DELEGATION',
      );
      const unlisted = new SimRepo();
      unlisted.delegate('targets', 'a', { paths: ['a/*'] });
      unlisted.refreshMeta();
      delete (unlisted.snapshot.meta as Record<string, unknown>)['a.json'];
      unlisted.refreshMeta = () => {};
      unlisted.timestamp.meta = { 'snapshot.json': { version: 1 } };
      const set2 = loadAll(unlisted);
      throwsCode(
        () => set2.updateDelegatedTargets(unlisted.targetsBytes('a'), 'a', 'targets'),
        RepositoryError,
        'UNKNOWN_ROLE',
      );
      const delegator = set.targets;
      assert.ok(delegator);
      const md = set.updateDelegatedTargets(repo.targetsBytes('a'), 'a', delegator);
      assert.equal(md.signed.version, 1);
      // "a" does not delegate to "a"
      throwsCode(
        () => set.updateDelegatedTargets(repo.targetsBytes('a'), 'a', md),
        RepositoryError,
        'DELEGATION',
      );
    });

    it('verifies a role reached through two delegators against each (diamond)', () => {
      const repo = new SimRepo();
      const shared = new TestKey();
      const rogue = new TestKey();
      repo.delegate('targets', 'A', { paths: ['*'] });
      repo.delegate('targets', 'B', { paths: ['*'] });
      repo.delegate('A', 'X', { keys: [shared] });
      // B delegates X too, but to another key: X is not signed by it
      const b = repo.delegated.get('B')?.signed as Record<string, Record<string, unknown>>;
      b.delegations = {
        keys: { [rogue.keyid]: rogue.json },
        roles: [
          { name: 'X', keyids: [rogue.keyid], threshold: 1, terminating: false, paths: ['*'] },
        ],
      };
      repo.refreshMeta();
      const set = loadAll(repo);
      const a = set.updateDelegatedTargets(repo.targetsBytes('A'), 'A', set.targets as never);
      const bMd = set.updateDelegatedTargets(repo.targetsBytes('B'), 'B', set.targets as never);
      assert.ok(set.updateDelegatedTargets(repo.targetsBytes('X'), 'X', a));
      assert.equal(set.verifiedChild(bMd, 'X'), undefined, 'not reused across delegators');
      throwsCode(
        () => set.updateDelegatedTargets(repo.targetsBytes('X'), 'X', bMd),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
    });

    it('refuses a delegator that this set did not verify', () => {
      const repo = new SimRepo();
      repo.delegate('targets', 'A');
      repo.refreshMeta();
      const set = loadAll(repo);
      const other = loadAll(repo).targets;
      assert.ok(other);
      assert.throws(
        () => set.updateDelegatedTargets(repo.targetsBytes('A'), 'A', other),
        MisuseError,
      );
    });

    it('refuses delegations that are malformed', () => {
      const cases: Array<[string, (d: Record<string, unknown>) => void]> = [
        [
          'both paths and path_hash_prefixes',
          (d) =>
            ((
              (d.roles as Record<string, unknown>[])[0] as Record<string, unknown>
            ).path_hash_prefixes = ['ab']),
        ],
        [
          'a top-level role name',
          (d) =>
            (((d.roles as Record<string, unknown>[])[0] as Record<string, unknown>).name =
              'snapshot'),
        ],
        [
          'non-hex hash prefix',
          (d) => {
            const r = (d.roles as Record<string, unknown>[])[0] as Record<string, unknown>;
            delete r.paths;
            r.path_hash_prefixes = ['zz'];
          },
        ],
        [
          'roles and succinct_roles',
          (d) =>
            (d.succinct_roles = { keyids: [], threshold: 1, bit_length: 4, name_prefix: 'bin' }),
        ],
        ['a role listed twice', (d) => (d.roles as unknown[]).push((d.roles as unknown[])[0])],
      ];
      for (const [what, mutate] of cases) {
        const repo = new SimRepo();
        repo.delegate('targets', 'a');
        mutate(repo.targets.delegations as Record<string, unknown>);
        repo.refreshMeta();
        const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
        set.updateTimestamp(repo.timestampBytes());
        set.updateSnapshot(repo.snapshotBytes());
        throwsCode(() => set.updateTargets(repo.targetsBytes()), FormatError, 'METADATA_FORMAT');
        assert.equal(set.targets, undefined, what);
      }
    });

    it('refuses an empty hashes object and a negative length in a target', () => {
      for (const bad of [
        { length: 1, hashes: {} },
        { length: -1, hashes: { sha256: 'ab' } },
      ]) {
        const repo = new SimRepo();
        (repo.targets.targets as Record<string, unknown>).x = bad;
        repo.refreshMeta();
        const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
        set.updateTimestamp(repo.timestampBytes());
        set.updateSnapshot(repo.snapshotBytes());
        throwsCode(() => set.updateTargets(repo.targetsBytes()), FormatError, 'METADATA_FORMAT');
      }
    });
  });

  it('errors are TufaErrors with stable codes and class names', () => {
    const e = new UnsignedMetadataError('x');
    assert.ok(e instanceof TufaError);
    assert.ok(e instanceof RepositoryError);
    assert.equal(e.name, 'UnsignedMetadataError');
    assert.equal(e.code, 'THRESHOLD_NOT_MET');
    assert.ok(!(new Error('x') instanceof TufaError));
  });
});
