/**
 * Manifests and indexes: parseManifest (schemaVersion 2 only; index or manifest by shape; the
 * media type from the document or the Content-Type), descriptors, parsePlatform,
 * selectPlatform, digestOf and isDigest.
 */
import assert from 'node:assert/strict';
import { OciError } from '../../../src/oci/errors.js';
import {
  type Descriptor,
  digestOf,
  type ImageIndex,
  type ImageManifest,
  isDigest,
  MANIFEST_ACCEPT,
  MEDIA_TYPES,
  parseManifest,
  parsePlatform,
  selectPlatform,
} from '../../../src/oci/manifest.js';

const te = new TextEncoder();
const bytes = (v: unknown): Uint8Array => te.encode(JSON.stringify(v));

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

const config: Descriptor = { mediaType: MEDIA_TYPES.ociConfig, digest: A, size: 123 };
const layer: Descriptor = { mediaType: LAYER, digest: B, size: 4567 };

const ociManifest = {
  schemaVersion: 2,
  mediaType: MEDIA_TYPES.ociManifest,
  config,
  layers: [layer],
};

const amd64 = {
  mediaType: MEDIA_TYPES.ociManifest,
  digest: A,
  size: 500,
  platform: { os: 'linux', architecture: 'amd64' },
};
const armv7 = {
  mediaType: MEDIA_TYPES.ociManifest,
  digest: B,
  size: 501,
  platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
};
const armv6 = {
  mediaType: MEDIA_TYPES.ociManifest,
  digest: C,
  size: 502,
  platform: { os: 'linux', architecture: 'arm', variant: 'v6' },
};

/** invalid asserts parseManifest throws OciError MANIFEST_INVALID matching `message`. */
function invalid(input: Uint8Array, message: RegExp, contentType?: string): void {
  assert.throws(
    () => parseManifest(input, contentType),
    (e: unknown) => {
      assert.ok(e instanceof OciError, `expected an OciError, got ${String(e)}`);
      assert.equal(e.code, 'MANIFEST_INVALID');
      assert.match(e.message, message);
      return true;
    },
  );
}

describe('parseManifest', () => {
  describe('image manifests', () => {
    it('an OCI manifest with its mediaType: config and layers, kind manifest', () => {
      const m = parseManifest(bytes(ociManifest)) as ImageManifest;
      assert.equal(m.kind, 'manifest');
      assert.equal(m.mediaType, MEDIA_TYPES.ociManifest);
      assert.deepEqual(m.config, config);
      assert.deepEqual(m.layers, [layer]);
    });

    it('a Docker schema 2 manifest with its mediaType', () => {
      const doc = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.dockerManifest,
        config: { ...config, mediaType: MEDIA_TYPES.dockerConfig },
        layers: [{ ...layer, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' }],
      };
      const m = parseManifest(bytes(doc));
      assert.equal(m.kind, 'manifest');
      assert.equal(m.mediaType, MEDIA_TYPES.dockerManifest);
    });

    it('no mediaType and no Content-Type: an OCI manifest by shape', () => {
      const { mediaType: _, ...doc } = ociManifest;
      const m = parseManifest(bytes(doc));
      assert.equal(m.kind, 'manifest');
      assert.equal(m.mediaType, MEDIA_TYPES.ociManifest);
    });

    it('no mediaType: the Content-Type gives it (parameters dropped)', () => {
      const { mediaType: _, ...doc } = ociManifest;
      const m = parseManifest(bytes(doc), `${MEDIA_TYPES.dockerManifest}; charset=utf-8`);
      assert.equal(m.mediaType, MEDIA_TYPES.dockerManifest);
    });

    it("the document's mediaType wins over the Content-Type", () => {
      const m = parseManifest(bytes(ociManifest), 'application/octet-stream');
      assert.equal(m.mediaType, MEDIA_TYPES.ociManifest);
    });

    it('zero layers, annotations and urls are kept', () => {
      const doc = {
        ...ociManifest,
        layers: [{ ...layer, urls: ['https://cdn.example/blob'], annotations: { a: 'b' } }],
        annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
      };
      const m = parseManifest(bytes(doc)) as ImageManifest;
      assert.deepEqual(m.layers[0]?.urls, ['https://cdn.example/blob']);
      assert.deepEqual(m.layers[0]?.annotations, { a: 'b' });
      assert.deepEqual(
        (parseManifest(bytes({ ...ociManifest, layers: [] })) as ImageManifest).layers,
        [],
      );
    });

    it('unknown descriptor fields are dropped from the result', () => {
      const doc = { ...ociManifest, config: { ...config, extra: 'x' } };
      assert.deepEqual((parseManifest(bytes(doc)) as ImageManifest).config, config);
    });
  });

  describe('indexes', () => {
    it('an OCI index: descriptors with platforms (variant kept)', () => {
      const doc = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [amd64, armv7] };
      const i = parseManifest(bytes(doc)) as ImageIndex;
      assert.equal(i.kind, 'index');
      assert.equal(i.mediaType, MEDIA_TYPES.ociIndex);
      assert.deepEqual(i.manifests, [amd64, armv7]);
    });

    it('a Docker manifest list', () => {
      const doc = { schemaVersion: 2, mediaType: MEDIA_TYPES.dockerList, manifests: [amd64] };
      const i = parseManifest(bytes(doc));
      assert.equal(i.kind, 'index');
      assert.equal(i.mediaType, MEDIA_TYPES.dockerList);
    });

    it('no mediaType: an OCI index by shape, or the Content-Type', () => {
      const doc = { schemaVersion: 2, manifests: [amd64] };
      assert.equal(parseManifest(bytes(doc)).mediaType, MEDIA_TYPES.ociIndex);
      assert.equal(
        parseManifest(bytes(doc), MEDIA_TYPES.dockerList).mediaType,
        MEDIA_TYPES.dockerList,
      );
    });

    it('an empty index is an index', () => {
      const i = parseManifest(bytes({ schemaVersion: 2, manifests: [] })) as ImageIndex;
      assert.deepEqual(i.manifests, []);
    });

    it('platform fields other than os, architecture and variant are dropped', () => {
      const doc = {
        schemaVersion: 2,
        manifests: [
          { ...amd64, platform: { ...amd64.platform, 'os.version': '10.0', features: ['x'] } },
        ],
      };
      const i = parseManifest(bytes(doc)) as ImageIndex;
      assert.deepEqual(i.manifests[0]?.platform, { os: 'linux', architecture: 'amd64' });
    });
  });

  describe('refusals: OciError MANIFEST_INVALID', () => {
    const cases: ReadonlyArray<[string, Uint8Array, RegExp, string?]> = [
      ['empty input', new Uint8Array(0), /not valid JSON/],
      ['not JSON', te.encode('{"schemaVersion": 2,'), /not valid JSON/],
      ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /not valid JSON/],
      ['JSON null', te.encode('null'), /schemaVersion 2/],
      ['a JSON array', te.encode('[]'), /schemaVersion 2/],
      ['a JSON string', te.encode('"manifest"'), /schemaVersion 2/],
      [
        'a schema 1 manifest',
        bytes({ schemaVersion: 1, name: 'app', tag: '1.0', fsLayers: [], history: [] }),
        /schema 1 manifests are not supported/,
      ],
      [
        'schemaVersion "2" (a string)',
        bytes({ ...ociManifest, schemaVersion: '2' }),
        /schemaVersion 2/,
      ],
      ['schemaVersion 3', bytes({ ...ociManifest, schemaVersion: 3 }), /schemaVersion 2/],
      [
        'no schemaVersion',
        bytes({ mediaType: MEDIA_TYPES.ociManifest, config, layers: [] }),
        /schemaVersion 2/,
      ],
      ['neither shape', bytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest }), /neither/],
      ['layers not an array', bytes({ ...ociManifest, layers: {} }), /neither/],
      ['manifests not an array', bytes({ schemaVersion: 2, manifests: {} }), /neither/],
      [
        'an index with a manifest mediaType',
        bytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, manifests: [amd64] }),
        /an index with media type "application\/vnd\.oci\.image\.manifest\.v1\+json"/,
      ],
      [
        'a manifest with an index mediaType',
        bytes({ ...ociManifest, mediaType: MEDIA_TYPES.ociIndex }),
        /an image manifest with media type "application\/vnd\.oci\.image\.index\.v1\+json"/,
      ],
      [
        'a manifest of an unknown mediaType',
        bytes({ ...ociManifest, mediaType: 'application/vnd.example.thing+json' }),
        /an image manifest with media type "application\/vnd\.example\.thing\+json"/,
      ],
      [
        'an index shape served as a manifest (Content-Type)',
        bytes({ schemaVersion: 2, manifests: [amd64] }),
        /an index with media type/,
        MEDIA_TYPES.dockerManifest,
      ],
      [
        'a manifest shape served as an index (Content-Type)',
        bytes({ schemaVersion: 2, config, layers: [] }),
        /an image manifest with media type/,
        MEDIA_TYPES.ociIndex,
      ],
      [
        'config not a descriptor',
        bytes({ ...ociManifest, config: null }),
        /config: expected a descriptor|neither/,
      ],
      [
        'config without mediaType',
        bytes({ ...ociManifest, config: { digest: A, size: 1 } }),
        /config\.mediaType/,
      ],
      [
        'a layer digest in uppercase hex',
        bytes({
          ...ociManifest,
          layers: [layer, { ...layer, digest: `sha256:${'A'.repeat(64)}` }],
        }),
        /layers\[1\]\.digest/,
      ],
      [
        'a sha512 layer digest',
        bytes({ ...ociManifest, layers: [{ ...layer, digest: `sha512:${'a'.repeat(128)}` }] }),
        /layers\[0\]\.digest: expected sha256/,
      ],
      [
        'a short digest',
        bytes({ ...ociManifest, config: { ...config, digest: 'sha256:abc' } }),
        /config\.digest/,
      ],
      [
        'a missing digest',
        bytes({ ...ociManifest, config: { mediaType: 'x', size: 1 } }),
        /config\.digest/,
      ],
      [
        'a negative size',
        bytes({ ...ociManifest, config: { ...config, size: -1 } }),
        /config\.size/,
      ],
      [
        'a fractional size',
        bytes({ ...ociManifest, config: { ...config, size: 1.5 } }),
        /config\.size/,
      ],
      [
        'a size as a string',
        bytes({ ...ociManifest, config: { ...config, size: '123' } }),
        /config\.size/,
      ],
      [
        'an unsafe integer size',
        bytes({ ...ociManifest, config: { ...config, size: 2 ** 53 } }),
        /config\.size/,
      ],
      [
        'a layer that is null',
        bytes({ ...ociManifest, layers: [null] }),
        /layers\[0\]: expected a descriptor/,
      ],
      [
        'an index entry without a platform architecture',
        bytes({ schemaVersion: 2, manifests: [amd64, { ...armv7, platform: { os: 'linux' } }] }),
        /manifests\[1\]\.platform: expected os and architecture/,
      ],
      [
        'an index entry with a non-object platform',
        bytes({ schemaVersion: 2, manifests: [{ ...amd64, platform: 'linux/amd64' }] }),
        /manifests\[0\]\.platform/,
      ],
      [
        'an index entry that is a string',
        bytes({ schemaVersion: 2, manifests: ['x'] }),
        /manifests\[0\]/,
      ],
    ];
    for (const [what, input, message, contentType] of cases) {
      it(what, () => invalid(input, message, contentType));
    }

    it('the error of malformed JSON keeps the parse error as its cause', () => {
      try {
        parseManifest(te.encode('{'));
        assert.fail('accepted');
      } catch (e) {
        assert.ok(e instanceof OciError);
        assert.ok((e as Error).cause instanceof SyntaxError);
      }
    });
  });

  // CVE-2021-41190 / GHSA-77vh-xpmg-72qh ("ambiguous OCI manifest parsing"): a document with both
  // `manifests` and `config`/`layers` can be read as an index by one client and as an image
  // manifest by another, so the same signed digest means two different images. The fix in
  // containers/image (PR #1409 "Reject ambiguous manifest formats") and the image-spec advisory
  // is to refuse such documents. parseManifest reads it as an index by shape and accepts it.
  it('a document with both manifests and config/layers is refused (ambiguous, CVE-2021-41190)', () => {
    const ambiguous = { schemaVersion: 2, manifests: [amd64], config, layers: [layer] };
    invalid(bytes(ambiguous), /ambiguous|both|manifests/);
    invalid(bytes({ ...ambiguous, mediaType: MEDIA_TYPES.ociIndex }), /ambiguous|both|manifests/);
  });
});

describe('parsePlatform', () => {
  const good: ReadonlyArray<[string, object]> = [
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['windows/amd64', { os: 'windows', architecture: 'amd64' }],
    ['linux/amd64/', { os: 'linux', architecture: 'amd64' }],
  ];
  for (const [input, want] of good) {
    it(`${input} → ${JSON.stringify(want)}`, () => assert.deepEqual(parsePlatform(input), want));
  }
  for (const input of ['', 'linux', 'linux/', '/amd64', '//', 'linux/arm/v7/extra', 'a/b/c/d']) {
    it(`${JSON.stringify(input)} is refused (OciError BAD_REFERENCE naming it)`, () => {
      assert.throws(
        () => parsePlatform(input),
        (e: unknown) =>
          e instanceof OciError &&
          e.code === 'BAD_REFERENCE' &&
          e.message.includes(JSON.stringify(input)),
      );
    });
  }
});

describe('selectPlatform', () => {
  const noPlatform = { mediaType: MEDIA_TYPES.ociManifest, digest: C, size: 1 };
  const index: ImageIndex = {
    kind: 'index',
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: [noPlatform, armv6, amd64, armv7],
  };

  it('finds the entry of os/architecture', () => {
    assert.equal(selectPlatform(index, { os: 'linux', architecture: 'amd64' }), index.manifests[2]);
  });

  it('with a variant: only that variant', () => {
    assert.equal(
      selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest,
      B,
    );
    assert.equal(
      selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v6' })?.digest,
      C,
    );
    assert.equal(
      selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v5' }),
      undefined,
    );
  });

  it('without a variant: the first entry of os/architecture, whatever its variant', () => {
    assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm' })?.digest, C);
  });

  it('no entry of that platform (entries without a platform never match): undefined', () => {
    assert.equal(selectPlatform(index, { os: 'linux', architecture: 's390x' }), undefined);
    assert.equal(selectPlatform(index, { os: 'windows', architecture: 'amd64' }), undefined);
    assert.equal(
      selectPlatform(
        { kind: 'index', mediaType: MEDIA_TYPES.ociIndex, manifests: [] },
        {
          os: 'linux',
          architecture: 'amd64',
        },
      ),
      undefined,
    );
  });
});

describe('digestOf and isDigest', () => {
  it('digestOf is sha256:<hex> (FIPS 180-2 vectors)', () => {
    assert.equal(
      digestOf(new Uint8Array(0)),
      'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    assert.equal(
      digestOf(te.encode('abc')),
      'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('isDigest takes sha256 and 64 lowercase hex characters, nothing else', () => {
    assert.ok(isDigest(A));
    assert.ok(isDigest(digestOf(te.encode('x'))));
    for (const s of [
      '',
      'sha256:',
      'a'.repeat(64),
      `sha256:${'A'.repeat(64)}`,
      `SHA256:${'a'.repeat(64)}`,
      `sha256:${'a'.repeat(63)}`,
      `sha256:${'a'.repeat(65)}`,
      `sha512:${'a'.repeat(128)}`,
      ` ${A}`,
      `${A}\n`,
    ]) {
      assert.equal(isDigest(s), false, JSON.stringify(s));
    }
  });

  it('MANIFEST_ACCEPT lists the four manifest and index types', () => {
    const types = MANIFEST_ACCEPT.split(',').map((s) => s.trim());
    assert.deepEqual(
      types.sort(),
      [
        MEDIA_TYPES.dockerList,
        MEDIA_TYPES.dockerManifest,
        MEDIA_TYPES.ociIndex,
        MEDIA_TYPES.ociManifest,
      ].sort(),
    );
  });
});
