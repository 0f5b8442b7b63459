/**
 * The core against real, signed TUF metadata from public repositories (test/vectors/tuf/, each
 * folder's SOURCE.md says where every file comes from). Nothing here is re-signed or edited: a
 * tampered copy is made in memory, one character at a time.
 *
 * - Every fixture parses and serializes back to the same canonical JSON (unknown fields kept).
 * - python-tuf: a full repository (root → timestamp → snapshot → targets → three delegated roles
 *   with awkward names), a root rotation sequence (RSA-PSS root key), and a delegated role with a
 *   target verified against its delegator's keys.
 * - sigstore: the staging repository end to end (ECDSA P-256: roots 2 → 3 → 4, timestamp,
 *   snapshot, targets, a terminating delegation and its target's bytes), production roots
 *   verified against themselves.
 * - One flipped character in a signature or a signed field fails with the right error class.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import {
  BadVersionNumberError,
  canonicalize,
  checkLengthAndHashes,
  computeKeyId,
  FormatError,
  findTarget,
  LengthOrHashMismatchError,
  Metadata,
  parseJson,
  RepositoryError,
  type RoleType,
  TargetPathHash,
  TrustedMetadataSet,
  UnsignedMetadataError,
  verificationResult,
  verifyThreshold,
} from '../../../src/core/index.js';
import { nodeBackend } from '../../../src/crypto/index.js';
import { ROOT } from '../../support/paths.js';

const VECTORS = join(ROOT, 'test', 'vectors', 'tuf');
const ROLES: readonly string[] = ['root', 'timestamp', 'snapshot', 'targets'];

const FISHY = 'python-tuf/fishy_rolenames';
const ROOT_SEQUENCE = 'python-tuf/root_sequence';
const STAGED = 'python-tuf/staged';
const STAGING = 'sigstore/staging';
const PROD = 'sigstore/prod';

/** Reference times before the fixtures' expiry (TUF 5.1: a fixed time, never the clock). */
const REF_PYTHON_TUF = Date.parse('2025-01-01T00:00:00Z'); // fishy_rolenames expire in 2050
const REF_STAGING = Date.parse('2025-06-01T00:00:00Z'); // staging expires in 2028
const REF_PROD = Date.parse('2023-01-01T00:00:00Z'); // prod root 6 expired 2023-08-28

/** The file of each delegated role of fishy_rolenames (renamed to be safe on any file system). */
const FISHY_ROLE_FILES: Record<string, string> = {
  '../a': '1.dotdot-slash-a.json',
  '.': '1.dot.json',
  ö: '1.o-umlaut.json',
};

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function read(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(join(VECTORS, rel)));
}

/** Metadata fixtures: every .json file except target payloads (under a `targets/` folder). */
function listFixtures(dir: string = VECTORS): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'targets') out.push(...listFixtures(path));
    } else if (entry.name.endsWith('.json')) {
      out.push(relative(VECTORS, path));
    }
  }
  return out.sort();
}

function typeOf(bytes: Uint8Array): RoleType {
  const type = (JSON.parse(decoder.decode(bytes)) as { signed?: { _type?: unknown } }).signed
    ?._type;
  assert.ok(typeof type === 'string' && ROLES.includes(type), `unknown _type ${String(type)}`);
  return type as RoleType;
}

/**
 * flip returns a copy of `bytes` with one character changed: the one `offset` characters after
 * the first `marker`. The character must be a hex digit; it becomes another hex digit, so the
 * document stays well-formed JSON of the same length.
 */
function flip(bytes: Uint8Array, marker: string, offset: number): Uint8Array {
  const text = decoder.decode(bytes);
  const at = text.indexOf(marker);
  assert.ok(at >= 0, `marker ${marker} not found`);
  const i = at + marker.length + offset;
  const c = text[i] as string;
  assert.match(c, /^[0-9a-f]$/, `character ${JSON.stringify(c)} at ${i} is not a hex digit`);
  const out = encoder.encode(text.slice(0, i) + (c === '0' ? '1' : '0') + text.slice(i + 1));
  assert.equal(out.length, bytes.length);
  return out;
}

/** Asserts `fn` throws `cls` with the stable `code`, and returns the error. */
function assertFails(
  fn: () => unknown,
  cls: new (...args: never[]) => RepositoryError,
  code: string,
): RepositoryError {
  let caught: unknown;
  assert.throws(() => {
    try {
      fn();
    } catch (e) {
      caught = e;
      throw e;
    }
  }, cls);
  assert.ok(caught instanceof RepositoryError);
  assert.equal(caught.code, code);
  return caught;
}

function loadStagingTopLevel(rootBytes = read(`${STAGING}/2.root.json`)): TrustedMetadataSet {
  const set = new TrustedMetadataSet(rootBytes, REF_STAGING, { backend: nodeBackend });
  set.updateRoot(read(`${STAGING}/3.root.json`));
  set.updateRoot(read(`${STAGING}/4.root.json`));
  set.updateTimestamp(read(`${STAGING}/timestamp.json`));
  set.updateSnapshot(read(`${STAGING}/2.snapshot.json`));
  set.updateTargets(read(`${STAGING}/2.targets.json`));
  return set;
}

describe('real TUF fixtures', () => {
  describe('parse and round-trip losslessly', () => {
    const files = listFixtures().filter((f) => !f.split(sep).includes('invalid'));
    it('finds the fixtures', () => {
      assert.ok(files.length >= 20, `only ${files.length} fixtures found`);
    });
    for (const file of files) {
      it(file, () => {
        const bytes = read(file);
        const md = Metadata.fromBytes(bytes, typeOf(bytes), file);
        // the model writes back exactly what was signed, unknown fields included
        assert.equal(
          decoder.decode(canonicalize(md.signed.toJSON())),
          decoder.decode(canonicalize(md.signedJson)),
        );
        assert.deepEqual(canonicalize(md.signed.toJSON()), md.signedBytes);
        // and so does the whole envelope
        assert.equal(
          decoder.decode(canonicalize(md.toJSON())),
          decoder.decode(canonicalize(parseJson(bytes))),
        );
      });
    }

    it('keeps unknown fields at every level (sigstore root 10, written by tuf-on-ci)', () => {
      const md = Metadata.fromBytes(read(`${PROD}/10.root.json`), 'root');
      const root = md.signed;
      assert.equal(root.unrecognized?.['x-tuf-on-ci-expiry-period'], 182);
      assert.equal(root.role('timestamp').unrecognized?.['x-tuf-on-ci-signing-period'], 4);
      const key = root.keys.get('6f260089d5923daf20166ca657c543af618346ab971884a99962b01988bbe0c3');
      assert.equal(key?.unrecognized?.['x-tuf-on-ci-keyowner'], '@dlorenc');
      assert.deepEqual(key?.unrecognized?.keyid_hash_algorithms, ['sha256', 'sha512']);
    });

    it('refuses the python-tuf root kept as invalid (spec_version 0.0.0)', () => {
      assertFails(
        () => Metadata.fromBytes(read('python-tuf/invalid/broken-root.json'), 'root'),
        FormatError,
        'UNSUPPORTED_SPEC_VERSION',
      );
    });
  });

  describe('python-tuf', () => {
    it('fishy_rolenames verifies end to end: root → timestamp → snapshot → targets → 3 delegated roles', () => {
      const set = new TrustedMetadataSet(read(`${FISHY}/1.root.json`), REF_PYTHON_TUF, {
        backend: nodeBackend,
      });
      set.updateTimestamp(read(`${FISHY}/timestamp.json`));
      set.updateSnapshot(read(`${FISHY}/2.snapshot.json`));
      set.updateTargets(read(`${FISHY}/1.targets.json`));
      const loaded: string[] = [];
      // Every delegation matches "*" and no role lists a target: the walk visits all three, in
      // order, verifying each against targets, and finds nothing.
      const found = findTarget(
        set,
        'file.txt',
        (role) => {
          loaded.push(role);
          const file = FISHY_ROLE_FILES[role];
          assert.ok(file !== undefined, `unexpected role ${role}`);
          return read(`${FISHY}/${file}`);
        },
        { backend: nodeBackend },
      );
      assert.equal(found, undefined);
      assert.deepEqual(loaded, ['../a', '.', 'ö']);
      for (const role of loaded) assert.equal(set.delegatedTargets(role)?.signed.version, 1);
    });

    it('fishy_rolenames key IDs are not the hash of the keys as listed, and still verify', () => {
      const root = Metadata.fromBytes(read(`${FISHY}/1.root.json`), 'root').signed;
      for (const [keyid, key] of root.keys) {
        assert.notEqual(computeKeyId(key, nodeBackend), keyid);
      }
      assert.doesNotThrow(
        () => new TrustedMetadataSet(read(`${FISHY}/1.root.json`), 0, { backend: nodeBackend }),
      );
    });

    it('root_sequence rotates 2 → 3 → 4 (RSA-PSS root key)', () => {
      const set = new TrustedMetadataSet(read(`${ROOT_SEQUENCE}/2.root.json`), REF_PYTHON_TUF, {
        backend: nodeBackend,
      });
      set.updateRoot(read(`${ROOT_SEQUENCE}/3.root.json`));
      const md = set.updateRoot(read(`${ROOT_SEQUENCE}/4.root.json`));
      assert.equal(md.signed.version, 4);
      assert.equal(set.root.signed.version, 4);
    });

    it('root_sequence refuses a skipped version and a rollback', () => {
      const skip = new TrustedMetadataSet(read(`${ROOT_SEQUENCE}/2.root.json`), REF_PYTHON_TUF, {
        backend: nodeBackend,
      });
      assertFails(
        () => skip.updateRoot(read(`${ROOT_SEQUENCE}/4.root.json`)),
        BadVersionNumberError,
        'BAD_VERSION',
      );
      const back = new TrustedMetadataSet(read(`${ROOT_SEQUENCE}/3.root.json`), REF_PYTHON_TUF, {
        backend: nodeBackend,
      });
      assertFails(
        () => back.updateRoot(read(`${ROOT_SEQUENCE}/2.root.json`)),
        BadVersionNumberError,
        'ROLLBACK',
      );
    });

    it('staged role1 is signed by the key targets delegates to it, and lists file3.txt', () => {
      const root = Metadata.fromBytes(read(`${ROOT_SEQUENCE}/2.root.json`), 'root').signed;
      const targets = Metadata.fromBytes(read(`${STAGED}/targets.json`), 'targets');
      verifyThreshold('targets.json', targets, root.role('targets'), root.keyRing(nodeBackend));
      const delegations = targets.signed.delegations;
      assert.ok(delegations !== undefined);
      const keys = delegations.roleKeys('role1');
      assert.ok(keys !== undefined);
      const role1 = Metadata.fromBytes(read(`${STAGED}/role1.json`), 'targets', 'role1.json');
      const result = verifyThreshold('role1.json', role1, keys, delegations.keyRing(nodeBackend));
      assert.deepEqual(result.signed, [
        'c8022fa1e9b9cb239a6b362bbdffa9649e61ad2cb699d2e4bc4fdf7930a0e64a',
      ]);
      const file3 = role1.signed.targets.get('file3.txt');
      assert.equal(file3?.length, 28);
      assert.equal(
        file3?.hashes.sha256,
        '141f740f53781d1ca54b8a50af22cbf74e44c21a998fa2a8a05aaac2c002886b',
      );
      // The two files come from different python-tuf commits: targets still delegates
      // "/file3.txt" (old leading-slash paths) while role1 lists "file3.txt".
      assert.equal(
        delegations.roles?.[0]?.isDelegatedPath(new TargetPathHash('file3.txt', nodeBackend)),
        false,
      );
    });
  });

  describe('sigstore', () => {
    it('staging verifies end to end: root 2 → 3 → 4, timestamp, snapshot, targets, delegated target', () => {
      const set = loadStagingTopLevel();
      assert.equal(set.root.signed.version, 4);
      assert.equal(set.snapshot?.signed.version, 2);
      const loaded: string[] = [];
      const found = findTarget(
        set,
        'registry.npmjs.org/keys.json',
        (role) => {
          loaded.push(role);
          return read(`${STAGING}/2.${role}.json`);
        },
        { backend: nodeBackend },
      );
      assert.deepEqual(loaded, ['registry.npmjs.org']);
      assert.equal(found?.role, 'registry.npmjs.org');
      assert.equal(found?.target.length, 1017);
      const payload = read(
        `${STAGING}/targets/registry.npmjs.org/7a8ec9678ad824cdccaa7a6dc0961caf8f8df61bc7274189122c123446248426.keys.json`,
      );
      checkLengthAndHashes(payload, found.target, 'keys.json', nodeBackend);
      // a target of the top-level role is found without loading the delegation
      const rekor = findTarget(set, 'rekor.pub', () => assert.fail('no role should be loaded'), {
        backend: nodeBackend,
      });
      assert.equal(rekor?.role, 'targets');
    });

    it('staging refuses a skipped root version and a root rollback', () => {
      const skip = new TrustedMetadataSet(read(`${STAGING}/2.root.json`), REF_STAGING, {
        backend: nodeBackend,
      });
      assertFails(
        () => skip.updateRoot(read(`${STAGING}/4.root.json`)),
        BadVersionNumberError,
        'BAD_VERSION',
      );
      const back = new TrustedMetadataSet(read(`${STAGING}/3.root.json`), REF_STAGING, {
        backend: nodeBackend,
      });
      assertFails(
        () => back.updateRoot(read(`${STAGING}/2.root.json`)),
        BadVersionNumberError,
        'ROLLBACK',
      );
    });

    for (const version of [6, 8, 10]) {
      it(`production root ${version} verifies against itself with the node backend`, () => {
        const bytes = read(`${PROD}/${version}.root.json`);
        const set = new TrustedMetadataSet(bytes, REF_PROD, { backend: nodeBackend });
        assert.equal(set.root.signed.version, version);
        assert.equal(set.root.signed.role('root').threshold, 3);
      });
    }

    it('production root 10: empty signatures and signatures by keys it does not list do not count', () => {
      const md = Metadata.fromBytes(read(`${PROD}/10.root.json`), 'root');
      assert.equal(md.signatures.size, 8);
      const root = md.signed;
      const result = verificationResult(md, root.role('root'), root.keyRing(nodeBackend));
      assert.equal(result.verified, true);
      assert.deepEqual(result.signed, [
        '6f260089d5923daf20166ca657c543af618346ab971884a99962b01988bbe0c3',
        '61643838125b440b40db6942f5cb5a31c0dc04368316eb2aaa58b95904a58222',
        'a687e5bf4fab82b0ee58d46e05c9535145a2c9afb458f43d42b45ca0fdce2a70',
      ]);
    });

    it('production roots 8 and 10 list the same keys under different key IDs', () => {
      const r8 = Metadata.fromBytes(read(`${PROD}/8.root.json`), 'root').signed;
      const r10 = Metadata.fromBytes(read(`${PROD}/10.root.json`), 'root').signed;
      const pems8 = new Set([...r8.keys.values()].map((k) => k.keyval.public));
      assert.equal(r10.keys.size, 6);
      for (const [id, key] of r10.keys) {
        assert.ok(pems8.has(key.keyval.public), `key ${id} of root 10 is not in root 8`);
        assert.ok(!r8.keys.has(id), `key ID ${id} is in both roots`);
      }
    });

    it('production root 8 is not accepted as the successor of root 6 (version 7 is expected)', () => {
      const set = new TrustedMetadataSet(read(`${PROD}/6.root.json`), REF_PROD, {
        backend: nodeBackend,
      });
      assertFails(
        () => set.updateRoot(read(`${PROD}/8.root.json`)),
        BadVersionNumberError,
        'BAD_VERSION',
      );
    });

    it('published root 3 (ECDSA keys written as hex uncompressed points) verifies against itself', () => {
      // sigstore's early roots wrote ecdsa-sha2-nistp256 public keys as hex 04||x||y, the older
      // securesystemslib form, not PEM; tufa reads both. (The published file, from the
      // root-signing site; its expiry carries an offset and a fraction.)
      const bytes = read('real-tuf/sigstore-root-signing/3.root.json');
      const root = Metadata.fromBytes(bytes, 'root').signed;
      for (const key of root.keys.values()) {
        assert.match(key.keyval.public, /^04[0-9a-f]{128}$/);
        assert.equal(key.material()?.algorithm, 'ecdsa-p256-sha256');
      }
      const set = new TrustedMetadataSet(bytes, REF_PROD, { backend: nodeBackend });
      assert.equal(set.root.signed.version, 3);
      const text = decoder.decode(bytes);
      assert.ok(text.includes('"consistent_snapshot": false'));
      const edited = encoder.encode(
        text.replace('"consistent_snapshot": false', '"consistent_snapshot": true'),
      );
      assertFails(
        () => new TrustedMetadataSet(edited, REF_PROD, { backend: nodeBackend }),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
    });
  });

  describe('one flipped character', () => {
    it('in a root signature (ECDSA, Ed25519, RSA-PSS): UnsignedMetadataError', () => {
      const ecdsa = flip(read(`${STAGING}/2.root.json`), '"sig": "', 40);
      assertFails(
        () => new TrustedMetadataSet(ecdsa, REF_STAGING, { backend: nodeBackend }),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
      const ed25519 = flip(read(`${FISHY}/1.root.json`), '"sig": "', 40);
      assertFails(
        () => new TrustedMetadataSet(ed25519, REF_PYTHON_TUF, { backend: nodeBackend }),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
      const set = new TrustedMetadataSet(read(`${ROOT_SEQUENCE}/2.root.json`), REF_PYTHON_TUF, {
        backend: nodeBackend,
      });
      const rsa = flip(read(`${ROOT_SEQUENCE}/3.root.json`), '"sig": "', 100);
      assertFails(() => set.updateRoot(rsa), UnsignedMetadataError, 'THRESHOLD_NOT_MET');
      assert.equal(set.root.signed.version, 2);
    });

    it('in a signed field of a root: UnsignedMetadataError', () => {
      const bytes = flip(read(`${FISHY}/1.root.json`), '"expires": "205', 0);
      assertFails(
        () => new TrustedMetadataSet(bytes, REF_PYTHON_TUF, { backend: nodeBackend }),
        UnsignedMetadataError,
        'THRESHOLD_NOT_MET',
      );
      const next = flip(read(`${STAGING}/3.root.json`), '"expires": "202', 0);
      const set = new TrustedMetadataSet(read(`${STAGING}/2.root.json`), REF_STAGING, {
        backend: nodeBackend,
      });
      assertFails(() => set.updateRoot(next), UnsignedMetadataError, 'THRESHOLD_NOT_MET');
    });

    it('in a timestamp: UnsignedMetadataError', () => {
      const ts = new TrustedMetadataSet(read(`${STAGING}/4.root.json`), REF_STAGING, {
        backend: nodeBackend,
      });
      const bytes = flip(read(`${STAGING}/timestamp.json`), '"sha256": "', 10);
      assertFails(() => ts.updateTimestamp(bytes), UnsignedMetadataError, 'THRESHOLD_NOT_MET');
    });

    it('in a snapshot without hashes in timestamp: UnsignedMetadataError', () => {
      const set = new TrustedMetadataSet(read(`${FISHY}/1.root.json`), REF_PYTHON_TUF, {
        backend: nodeBackend,
      });
      set.updateTimestamp(read(`${FISHY}/timestamp.json`));
      const bytes = flip(read(`${FISHY}/2.snapshot.json`), '"expires": "205', 0);
      assertFails(() => set.updateSnapshot(bytes), UnsignedMetadataError, 'THRESHOLD_NOT_MET');
    });

    it('in a snapshot whose hashes timestamp lists (field or signature): LengthOrHashMismatchError', () => {
      for (const [marker, offset] of [
        ['"expires": "202', 0],
        ['"sig": "', 40],
      ] as const) {
        const set = new TrustedMetadataSet(read(`${STAGING}/4.root.json`), REF_STAGING, {
          backend: nodeBackend,
        });
        set.updateTimestamp(read(`${STAGING}/timestamp.json`));
        const bytes = flip(read(`${STAGING}/2.snapshot.json`), marker, offset);
        assertFails(
          () => set.updateSnapshot(bytes),
          LengthOrHashMismatchError,
          'LENGTH_OR_HASH_MISMATCH',
        );
        // the same bytes from the trusted cache skip the hash check and fail the signature
        assertFails(
          () => set.updateSnapshot(bytes, true),
          UnsignedMetadataError,
          'THRESHOLD_NOT_MET',
        );
      }
    });

    it('in targets and in a delegated role: LengthOrHashMismatchError', () => {
      const top = new TrustedMetadataSet(read(`${STAGING}/4.root.json`), REF_STAGING, {
        backend: nodeBackend,
      });
      top.updateTimestamp(read(`${STAGING}/timestamp.json`));
      top.updateSnapshot(read(`${STAGING}/2.snapshot.json`));
      const targets = flip(read(`${STAGING}/2.targets.json`), '"expires": "202', 0);
      assertFails(
        () => top.updateTargets(targets),
        LengthOrHashMismatchError,
        'LENGTH_OR_HASH_MISMATCH',
      );

      const set = loadStagingTopLevel();
      const delegated = flip(read(`${STAGING}/2.registry.npmjs.org.json`), '"sha256": "', 0);
      assertFails(
        () =>
          findTarget(set, 'registry.npmjs.org/keys.json', () => delegated, {
            backend: nodeBackend,
          }),
        LengthOrHashMismatchError,
        'LENGTH_OR_HASH_MISMATCH',
      );
    });

    it('in a target file: LengthOrHashMismatchError', () => {
      const set = loadStagingTopLevel();
      const found = findTarget(
        set,
        'registry.npmjs.org/keys.json',
        (role) => read(`${STAGING}/2.${role}.json`),
        { backend: nodeBackend },
      );
      assert.ok(found !== undefined);
      const payload = flip(
        read(
          `${STAGING}/targets/registry.npmjs.org/7a8ec9678ad824cdccaa7a6dc0961caf8f8df61bc7274189122c123446248426.keys.json`,
        ),
        '"rawBytes": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE',
        0,
      );
      assertFails(
        () => checkLengthAndHashes(payload, found.target, 'keys.json', nodeBackend),
        LengthOrHashMismatchError,
        'LENGTH_OR_HASH_MISMATCH',
      );
    });
  });
});
