/**
 * checkManifest: manifest bytes against the signed target, with no I/O (issue 14 item 3). The
 * bytes pass only with the signed length, every signed hash and the signed digest, and as a
 * manifest or index whose media type agrees with what was served.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { LengthOrHashMismatchError } from '../../../src/core/errors.js';
import { OciError } from '../../../src/oci/errors.js';
import { MEDIA_TYPES } from '../../../src/oci/manifest.js';
import { Reference } from '../../../src/oci/reference.js';
import { checkManifest, type SignedManifest } from '../../../src/verify/check-manifest.js';
import { ImageVerificationError } from '../../../src/verify/errors.js';

const te = new TextEncoder();
const hash = (alg: string, b: Uint8Array, enc: 'hex' | 'base64' = 'hex') =>
  createHash(alg).update(b).digest(enc);

const MANIFEST = te.encode(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: `sha256:${'1'.repeat(64)}`, size: 2 },
    layers: [],
  }),
);
const INDEX = te.encode(
  JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] }),
);
const OTHER = te.encode('{"schemaVersion":2,"other":true}');

/** signed is the target signing `bytes` (hex hashes, as TUF writes them). */
function signed(bytes: Uint8Array, over: Partial<SignedManifest> = {}): SignedManifest {
  return {
    digest: `sha256:${hash('sha256', bytes)}`,
    length: bytes.length,
    hashes: { sha256: hash('sha256', bytes), sha512: hash('sha512', bytes) },
    encoding: 'hex',
    path: 'registry.example/app:1.0',
    signedBy: 'https://tuf.example/metadata/',
    ...over,
  };
}

const REF = Reference.parse('registry.example/app:1.0');

/** refused asserts checkManifest throws `cls` with `code`, its message matching `message`. */
function refused(
  f: () => unknown,
  cls: new (...a: never[]) => Error,
  code: string,
  message?: RegExp,
): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.equal((e as { code?: string }).code, code);
    if (message) assert.match((e as Error).message, message);
    return true;
  });
}

describe('checkManifest (manifest bytes against the signed target)', () => {
  it('the signed bytes pass and are returned parsed (manifest and index)', () => {
    const m = checkManifest(signed(MANIFEST), MANIFEST, REF, MEDIA_TYPES.ociManifest);
    assert.equal(m.kind, 'manifest');
    assert.equal(checkManifest(signed(INDEX), INDEX, REF).kind, 'index');
  });

  it('a reference naming the signed digest passes', () => {
    const t = signed(MANIFEST);
    const pinned = Reference.parse(`registry.example/app:1.0@${t.digest}`);
    assert.equal(checkManifest(t, MANIFEST, pinned).kind, 'manifest');
  });

  it('Notary targets: base64 hashes', () => {
    const t = signed(MANIFEST, {
      hashes: { sha256: hash('sha256', MANIFEST, 'base64') },
      encoding: 'base64',
    });
    assert.equal(checkManifest(t, MANIFEST, REF).kind, 'manifest');
    // the same hashes read as hex are not the bytes'
    refused(
      () => checkManifest({ ...t, encoding: 'hex' }, MANIFEST, REF),
      LengthOrHashMismatchError,
      'LENGTH_OR_HASH_MISMATCH',
    );
  });

  it('wrong length: refused, naming the target and both lengths', () => {
    refused(
      () => checkManifest(signed(MANIFEST, { length: MANIFEST.length - 1 }), MANIFEST, REF),
      LengthOrHashMismatchError,
      'LENGTH_OR_HASH_MISMATCH',
      new RegExp(`^registry\\.example/app:1\\.0: length ${MANIFEST.length} does not match`),
    );
  });

  it('extra bytes after the signed manifest: refused (length)', () => {
    const longer = new Uint8Array([...MANIFEST, 0x0a]);
    refused(
      () => checkManifest(signed(MANIFEST), longer, REF),
      LengthOrHashMismatchError,
      'LENGTH_OR_HASH_MISMATCH',
      /length/,
    );
  });

  it('other bytes of the signed length: refused (sha256)', () => {
    const t = signed(MANIFEST);
    const swapped = new Uint8Array(MANIFEST);
    swapped[swapped.length - 2] = 0x20; // `]` → space: same length, other bytes
    refused(
      () => checkManifest(t, swapped, REF),
      LengthOrHashMismatchError,
      'LENGTH_OR_HASH_MISMATCH',
      /sha256/,
    );
  });

  it('a wrong second hash is refused even when sha256 matches', () => {
    const t = signed(MANIFEST);
    const bad = signed(MANIFEST, { hashes: { ...t.hashes, sha512: hash('sha512', OTHER) } });
    refused(
      () => checkManifest(bad, MANIFEST, REF),
      LengthOrHashMismatchError,
      'LENGTH_OR_HASH_MISMATCH',
      /sha512/,
    );
  });

  it('an unknown hash algorithm listed: refused, not skipped', () => {
    const t = signed(MANIFEST);
    refused(
      () =>
        checkManifest(
          signed(MANIFEST, { hashes: { ...t.hashes, 'sha3-256': '00' } }),
          MANIFEST,
          REF,
        ),
      LengthOrHashMismatchError,
      'LENGTH_OR_HASH_MISMATCH',
      /sha3-256.*not supported/,
    );
  });

  it('a target without sha256: UNSIGNED_IMAGE (nothing to fetch the manifest by)', () => {
    const t = signed(MANIFEST);
    refused(
      () =>
        checkManifest(
          signed(MANIFEST, { hashes: { sha512: t.hashes.sha512 as string } }),
          MANIFEST,
          REF,
        ),
      ImageVerificationError,
      'UNSIGNED_IMAGE',
      /no sha256/,
    );
  });

  it('a digest that is not the one the hashes sign: DIGEST_MISMATCH', () => {
    const t = signed(MANIFEST, { digest: `sha256:${hash('sha256', OTHER)}` });
    refused(
      () => checkManifest(t, MANIFEST, REF),
      ImageVerificationError,
      'DIGEST_MISMATCH',
      /the signed digest is/,
    );
  });

  it('a reference naming another digest: DIGEST_MISMATCH, as the reference was written', () => {
    const other = `sha256:${hash('sha256', OTHER)}`;
    const ref = Reference.parse(`registry.example/app:1.0@${other}`);
    refused(
      () => checkManifest(signed(MANIFEST), MANIFEST, ref),
      ImageVerificationError,
      'DIGEST_MISMATCH',
      new RegExp(
        `^registry\\.example/app:1\\.0@${other}: the reference's digest .* is not the signed`,
      ),
    );
  });

  it('media type sanity: an index served as an image manifest, a both-kinds document', () => {
    const bare = te.encode(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    assert.equal(checkManifest(signed(bare), bare, REF, MEDIA_TYPES.ociIndex).kind, 'index');
    refused(
      () => checkManifest(signed(bare), bare, REF, MEDIA_TYPES.ociManifest),
      OciError,
      'MANIFEST_INVALID',
      /an index with media type/,
    );
    const both = te.encode(
      JSON.stringify({ schemaVersion: 2, manifests: [], config: {}, layers: [] }),
    );
    refused(
      () => checkManifest(signed(both), both, REF),
      OciError,
      'MANIFEST_INVALID',
      /ambiguous/,
    );
    const notJson = te.encode('not json');
    refused(() => checkManifest(signed(notJson), notJson, REF), OciError, 'MANIFEST_INVALID');
  });
});
