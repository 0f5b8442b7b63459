/**
 * Verify before pull on local transports only (no registry): images in OCI layouts
 * (`oci:DIR:registry.example/app:1.0`) and archives, whose manifests are signed as TUF targets
 * (`registry.example/app:1.0`) in a repository published with buildRepository and served on
 * 127.0.0.1. ImageVerifier.verify gives the pinned reference or refuses (DIGEST_MISMATCH,
 * UNSIGNED_IMAGE, NO_POLICY); pullImage copies a verified image to `oci:` or `oci-archive:` and
 * leaves nothing behind when a blob is corrupt.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ImageArgs, readTrustFile } from '../../../src/cli/images.js';
import { MisuseError, TufaError } from '../../../src/core/errors.js';
import { OciError } from '../../../src/oci/errors.js';
import { extractArchive, LayoutWriter, readLayout } from '../../../src/oci/layout.js';
import { type Descriptor, digestOf, MEDIA_TYPES } from '../../../src/oci/manifest.js';
import { Reference } from '../../../src/oci/reference.js';
import { LayoutSource, type ManifestSource } from '../../../src/oci/source.js';
import { buildRepository, KeyObjectSigner } from '../../../src/repository/index.js';
import { ImageVerificationError } from '../../../src/verify/errors.js';
import { TrustPolicy } from '../../../src/verify/policy.js';
import { ImageVerifier } from '../../../src/verify/verify-image.js';
import { StaticServer } from '../../support/static-server.js';

const te = new TextEncoder();
const REF_NAME = 'org.opencontainers.image.ref.name';

interface Blob {
  readonly desc: Descriptor;
  readonly bytes: Uint8Array;
}

const blob = (mediaType: string, bytes: Uint8Array, platform?: Descriptor['platform']): Blob => ({
  desc: {
    mediaType,
    digest: digestOf(bytes),
    size: bytes.length,
    ...(platform ? { platform } : {}),
  },
  bytes,
});
const hexOf = (b: Blob | Descriptor): string =>
  ('desc' in b ? b.desc : b).digest.slice('sha256:'.length);

/** An image: config, one layer (random bytes, never unpacked here) and an OCI manifest. */
interface TestImage {
  readonly config: Blob;
  readonly layer: Blob;
  readonly manifest: Blob;
  readonly blobs: readonly Blob[];
}

function makeImage(arch: string, layerSize: number): TestImage {
  const layer = blob(
    'application/vnd.oci.image.layer.v1.tar+gzip',
    new Uint8Array(randomBytes(layerSize)),
  );
  const config = blob(
    MEDIA_TYPES.ociConfig,
    te.encode(
      JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    ),
  );
  const manifest = blob(
    MEDIA_TYPES.ociManifest,
    te.encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: config.desc,
        layers: [layer.desc],
      }),
    ),
  );
  return { config, layer, manifest, blobs: [config, layer, manifest] };
}

/** writeLayoutDir writes an OCI layout by hand: the blobs, and index.json entries with ref names. */
function writeLayoutDir(
  dir: string,
  blobs: readonly Blob[],
  entries: ReadonlyArray<{ desc: Descriptor; ref?: string }>,
): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const b of blobs) writeFileSync(join(dir, 'blobs', 'sha256', hexOf(b)), b.bytes);
  const manifests = entries.map(({ desc, ref }) => ({
    mediaType: desc.mediaType,
    digest: desc.digest,
    size: desc.size,
    ...(ref === undefined ? {} : { annotations: { [REF_NAME]: ref } }),
  }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests }),
  );
}

/** walk lists every file under dir (relative, sorted). */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push(relative(base, p));
  }
  return out.sort();
}

const signer = () => new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);

/** rejectsWith asserts a rejection with `code`, of class `cls` when given. */
async function rejectsWith(
  p: Promise<unknown>,
  code: string,
  cls?: abstract new (...args: never[]) => Error,
  message?: RegExp,
): Promise<Error> {
  let caught: unknown;
  await p.then(
    (v) =>
      assert.fail(
        `resolved: ${JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? '<bytes>' : x))}`,
      ),
    (e: unknown) => {
      caught = e;
    },
  );
  assert.ok(caught instanceof Error, String(caught));
  assert.equal((caught as { code?: string }).code, code, caught.message);
  if (cls)
    assert.ok(caught instanceof cls, `expected ${cls.name}, got ${caught.name}: ${caught.message}`);
  if (message) assert.match(caught.message, message);
  return caught;
}

describe('verify and pull on local transports (TUF repository on 127.0.0.1)', function () {
  this.timeout(30_000);

  let tmp: string;
  let server: StaticServer;
  let policy: TrustPolicy;
  let layout: string;
  let archive: string;
  let n = 0;
  const verifiers: ImageArgs[] = [];
  const closing: ImageVerifier[] = [];

  // app:1.0 is signed; other is a different valid image; multi:1.0 is a signed index
  const app = makeImage('amd64', 3000);
  const other = makeImage('amd64', 2000);
  const amd64 = makeImage('amd64', 1500);
  const arm64 = makeImage('arm64', 1700);
  const index = blob(
    MEDIA_TYPES.ociIndex,
    te.encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociIndex,
        manifests: [
          { ...amd64.manifest.desc, platform: { os: 'linux', architecture: 'amd64' } },
          {
            ...arm64.manifest.desc,
            platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          },
        ],
      }),
    ),
  );
  const APP = 'registry.example/app:1.0';
  const MULTI = 'registry.example/multi:1.0';

  const verifier = (): ImageArgs => {
    const v = new ImageArgs(
      new ImageVerifier({ policy, files: readTrustFile, cacheDir: join(tmp, 'cache') }),
    );
    verifiers.push(v);
    return v;
  };
  /** A fresh, empty folder. */
  const fresh = (): string => {
    const p = join(tmp, `case-${++n}`);
    mkdirSync(p);
    return p;
  };
  /** copyLayout copies the good layout, for a case that tampers with it. */
  const copyLayout = (): string => {
    const dir = join(fresh(), 'layout');
    cpSync(layout, dir, { recursive: true });
    return dir;
  };
  const targetRequests = (): string[] => server.take().filter((p) => p.startsWith('targets/'));

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tufa-local-verify-'));
    const repo = await buildRepository({
      root: { signers: [signer()] },
      targets: { signers: [signer()] },
      snapshot: { signers: [signer()] },
      timestamp: { signers: [signer()] },
      files: [
        { path: APP, content: app.manifest.bytes },
        { path: MULTI, content: index.bytes },
      ],
      // the verifier reads the real clock
      now: Date.now(),
    });
    server = await StaticServer.start(repo);
    writeFileSync(join(tmp, 'root.json'), repo.get('1.root.json') as Uint8Array);
    policy = TrustPolicy.fromJSON(
      {
        rules: [
          { match: 'registry.example/**', tuf: { metadataUrl: server.url(''), root: 'root.json' } },
        ],
      },
      tmp,
    );

    layout = join(tmp, 'layout');
    writeLayoutDir(
      layout,
      [...app.blobs, ...other.blobs, ...amd64.blobs, ...arm64.blobs, index],
      [
        { desc: app.manifest.desc, ref: APP },
        { desc: app.manifest.desc, ref: 'registry.example/unsigned:1.0' },
        { desc: app.manifest.desc, ref: 'elsewhere.example/app:1.0' },
        { desc: app.manifest.desc, ref: `${APP}@${app.manifest.desc.digest}` },
        { desc: app.manifest.desc, ref: `registry.example/app@${app.manifest.desc.digest}` },
        { desc: index.desc, ref: MULTI },
        { desc: other.manifest.desc, ref: 'registry.example/other:1.0' },
      ],
    );

    archive = join(tmp, 'layout.tar');
    const w = await LayoutWriter.create('archive', archive);
    for (const b of app.blobs) await w.putBlob(b.desc, b.bytes);
    w.addManifest(app.manifest.desc, APP);
    await w.commit();
  });

  afterEach(async () => {
    for (const v of verifiers.splice(0)) await v.close();
    for (const v of closing.splice(0)) await v.close();
  });

  after(async () => {
    await server?.close();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  describe('ImageVerifier.verify', () => {
    it('a policy built in code with the trusted root as bytes needs no file reader', async () => {
      const rules = [
        {
          match: 'registry.example/**',
          tuf: { metadataUrl: server.url(''), root: readFileSync(join(tmp, 'root.json')) },
        },
      ];
      const v = new ImageArgs(
        new ImageVerifier({ policy: TrustPolicy.fromJSON({ rules }, tmp) }), // no files, no cacheDir
      );
      verifiers.push(v);
      assert.equal((await v.verify(`oci:${layout}:${APP}`)).digest, app.manifest.desc.digest);
    });

    it('a source answering the signed digest with other bytes is refused, and poisons no later verification', async () => {
      const v = new ImageVerifier({ policy, files: readTrustFile });
      closing.push(v);
      const reference = Reference.parse(APP);
      const lying: ManifestSource = {
        name: 'lying.example/app',
        manifest: async (digest) => ({ bytes: other.manifest.bytes, digest, mediaType: undefined }),
        copyBlob: async () => assert.fail('no blob is read'),
        close: async () => undefined,
      };
      await rejectsWith(v.verify(reference, lying), 'LENGTH_OR_HASH_MISMATCH');
      const honest = new LayoutSource({ transport: 'oci', path: layout, refName: APP });
      assert.equal((await v.verify(reference, honest)).digest, app.manifest.desc.digest);
    });

    it('a rule naming a file, with no file reader: MISUSE, nothing read', async () => {
      const v = new ImageArgs(new ImageVerifier({ policy, cacheDir: join(tmp, 'cache') }));
      verifiers.push(v);
      await rejectsWith(v.verify(`oci:${layout}:${APP}`), 'MISUSE', MisuseError, /reads none/);
    });

    it('a signed image in an oci: layout: the pinned reference, from metadata alone', async () => {
      server.take();
      const v = await verifier().verify(`oci:${layout}:${APP}`);
      assert.equal(v.pinned, `registry.example/app@${app.manifest.desc.digest}`);
      assert.equal(v.digest, app.manifest.desc.digest);
      assert.equal(v.targetPath, APP);
      assert.equal(v.rule, 'registry.example/**');
      assert.equal(v.length, app.manifest.bytes.length);
      assert.deepEqual(v.manifest, app.manifest.bytes);
      assert.equal(v.parsed.kind, 'manifest');
      assert.equal(v.reference.toString(), APP);
      assert.equal(v.platformDigest, undefined);
      assert.deepEqual(targetRequests(), [], 'no target file is downloaded');
    });

    it('the same image in an oci-archive: file', async () => {
      const v = await verifier().verify(`oci-archive:${archive}:${APP}`);
      assert.equal(v.pinned, `registry.example/app@${app.manifest.desc.digest}`);
    });

    it('a reference that also names the signed digest passes', async () => {
      const v = await verifier().verify(`oci:${layout}:${APP}@${app.manifest.desc.digest}`);
      assert.equal(v.pinned, `registry.example/app@${app.manifest.desc.digest}`);
    });

    it('a reference naming another digest than the signed one: DIGEST_MISMATCH', async () => {
      await rejectsWith(
        verifier().verify(`oci:${layout}:${APP}@${other.manifest.desc.digest}`),
        'DIGEST_MISMATCH',
        ImageVerificationError,
        /is not the signed/,
      );
    });

    it('a layout whose ref name points at a different manifest: DIGEST_MISMATCH', async () => {
      const dir = join(fresh(), 'layout');
      writeLayoutDir(dir, other.blobs, [{ desc: other.manifest.desc, ref: APP }]);
      await rejectsWith(
        verifier().verify(`oci:${dir}:${APP}`),
        'DIGEST_MISMATCH',
        ImageVerificationError,
        new RegExp(`names ${other.manifest.desc.digest}`),
      );
    });

    it('a tampered manifest blob (index.json unchanged) is refused', async () => {
      const dir = copyLayout();
      const tampered = new Uint8Array(app.manifest.bytes);
      tampered[tampered.length - 3] = 0x20; // same length, other bytes
      writeFileSync(join(dir, 'blobs', 'sha256', hexOf(app.manifest)), tampered);
      await rejectsWith(verifier().verify(`oci:${dir}:${APP}`), 'DIGEST_MISMATCH', OciError);
    });

    it('a tampered manifest blob with index.json rewritten to match it is refused', async () => {
      const dir = join(fresh(), 'layout');
      const evil = blob(
        MEDIA_TYPES.ociManifest,
        te.encode(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MEDIA_TYPES.ociManifest,
            config: app.config.desc,
            layers: [other.layer.desc],
          }),
        ),
      );
      writeLayoutDir(dir, [app.config, other.layer, evil], [{ desc: evil.desc, ref: APP }]);
      await rejectsWith(
        verifier().verify(`oci:${dir}:${APP}`),
        'DIGEST_MISMATCH',
        ImageVerificationError,
      );
    });

    it('a layout without that ref name is refused (NOT_FOUND)', async () => {
      const dir = join(fresh(), 'layout');
      writeLayoutDir(dir, app.blobs, [{ desc: app.manifest.desc, ref: '1.0' }]);
      await rejectsWith(verifier().verify(`oci:${dir}:${APP}`), 'NOT_FOUND', OciError);
    });

    it('a name the policy covers but that is not signed: UNSIGNED_IMAGE', async () => {
      await rejectsWith(
        verifier().verify(`oci:${layout}:registry.example/unsigned:1.0`),
        'UNSIGNED_IMAGE',
        ImageVerificationError,
        /registry\.example\/unsigned:1\.0: not signed/,
      );
    });

    it('a name no rule matches: NO_POLICY, before any request', async () => {
      server.take();
      await rejectsWith(
        verifier().verify(`oci:${layout}:elsewhere.example/app:1.0`),
        'NO_POLICY',
        ImageVerificationError,
        /elsewhere\.example\/app/,
      );
      assert.deepEqual(server.take(), []);
    });

    it('a reference with a digest but no tag no target lists: UNSIGNED_IMAGE (the target registry/repo@sha256:…)', async () => {
      await rejectsWith(
        verifier().verify(`oci:${layout}:registry.example/app@${app.manifest.desc.digest}`),
        'UNSIGNED_IMAGE',
        ImageVerificationError,
        /^registry\.example\/app@sha256:[0-9a-f]{64}: not signed \(no such target/,
      );
    });

    it('oci:DIR without a ref name: BAD_REFERENCE asking for the full name', async () => {
      await rejectsWith(verifier().verify(`oci:${layout}`), 'BAD_REFERENCE', OciError, /full name/);
      await rejectsWith(
        verifier().verify(`oci:${layout}:Not A Reference`),
        'BAD_REFERENCE',
        OciError,
      );
    });

    it('a signed index: with a platform, the digest of that platform manifest', async () => {
      const v = await verifier().verify(`oci:${layout}:${MULTI}`, {
        platform: { os: 'linux', architecture: 'arm64' },
      });
      assert.equal(v.parsed.kind, 'index');
      assert.equal(v.digest, index.desc.digest);
      assert.equal(v.pinned, `registry.example/multi@${index.desc.digest}`);
      assert.equal(v.platformDigest, arm64.manifest.desc.digest);
    });

    it('a signed index without the requested platform: UNSIGNED_IMAGE', async () => {
      await rejectsWith(
        verifier().verify(`oci:${layout}:${MULTI}`, {
          platform: { os: 'linux', architecture: 's390x' },
        }),
        'UNSIGNED_IMAGE',
        ImageVerificationError,
        /linux\/s390x/,
      );
    });
  });

  describe('pullImage', () => {
    /** assertCopied checks a pulled layout holds exactly `blobs`, and `ref` names `manifest`. */
    async function assertCopied(dir: string, ref: string, manifest: Blob, blobs: readonly Blob[]) {
      assert.deepEqual(walk(join(dir, 'blobs')), blobs.map((b) => join('sha256', hexOf(b))).sort());
      for (const b of blobs) {
        assert.deepEqual(
          new Uint8Array(readFileSync(join(dir, 'blobs', 'sha256', hexOf(b)))),
          b.bytes,
        );
      }
      const image = await readLayout(dir, ref);
      assert.deepEqual(image.manifest, manifest.bytes);
      assert.equal(image.descriptor.digest, manifest.desc.digest);
    }

    it('to oci:OUT: every blob copied, the tag as ref name, nothing else beside it', async () => {
      const parent = fresh();
      const out = join(parent, 'out');
      const progress: Array<[number, number]> = [];
      const r = await verifier().pull(`oci:${layout}:${APP}`, `oci:${out}`, {
        onProgress: (done, total) => progress.push([done, total]),
      });
      assert.equal(r.manifestDigest, app.manifest.desc.digest);
      assert.equal(r.blobs, 2);
      assert.equal(r.bytes, app.config.desc.size + app.layer.desc.size);
      assert.equal(r.output, `oci:${out}`);
      assert.equal(r.verified.pinned, `registry.example/app@${app.manifest.desc.digest}`);
      assert.deepEqual(progress.at(-1), [r.bytes, r.bytes]);
      await assertCopied(out, '1.0', app.manifest, app.blobs);
      assert.deepEqual(readdirSync(parent), ['out']);
    });

    it('to oci:OUT:name: the given ref name', async () => {
      const out = join(fresh(), 'out');
      await verifier().pull(`oci:${layout}:${APP}`, `oci:${out}:${APP}`);
      await assertCopied(out, APP, app.manifest, app.blobs);
    });

    it('to oci-archive:OUT.tar: a tar holding every blob', async () => {
      const parent = fresh();
      const out = join(parent, 'out.tar');
      const r = await verifier().pull(`oci:${layout}:${APP}`, `oci-archive:${out}`);
      assert.equal(r.manifestDigest, app.manifest.desc.digest);
      assert.deepEqual(readdirSync(parent), ['out.tar']);
      const into = join(parent, 'x');
      mkdirSync(into);
      const dir = await extractArchive(out, into);
      await assertCopied(dir, '1.0', app.manifest, app.blobs);
    });

    it('from an oci-archive: input', async () => {
      const out = join(fresh(), 'out');
      await verifier().pull(`oci-archive:${archive}:${APP}`, `oci:${out}`);
      await assertCopied(out, '1.0', app.manifest, app.blobs);
    });

    it('a signed index: the index, the platform manifest and its blobs', async () => {
      const out = join(fresh(), 'out');
      const r = await verifier().pull(`oci:${layout}:${MULTI}`, `oci:${out}`, {
        platform: { os: 'linux', architecture: 'arm64' },
      });
      assert.equal(r.manifestDigest, arm64.manifest.desc.digest);
      assert.equal(r.verified.digest, index.desc.digest);
      await assertCopied(out, '1.0', arm64.manifest, [index, ...arm64.blobs]);
    });

    for (const [kind, name] of [
      ['oci', 'out'],
      ['oci-archive', 'out.tar'],
    ] as const) {
      it(`a corrupted layer blob fails the pull to ${kind}: and leaves nothing at the destination`, async () => {
        const dir = copyLayout();
        const corrupt = new Uint8Array(app.layer.bytes);
        corrupt[100] = (corrupt[100] as number) ^ 0xff;
        writeFileSync(join(dir, 'blobs', 'sha256', hexOf(app.layer)), corrupt);
        const parent = fresh();
        await rejectsWith(
          verifier().pull(`oci:${dir}:${APP}`, `${kind}:${join(parent, name)}`),
          'DIGEST_MISMATCH',
          OciError,
          new RegExp(app.layer.desc.digest),
        );
        assert.deepEqual(readdirSync(parent), [], 'no destination, no temp folder');
      });
    }

    it('a missing config blob fails the pull and leaves nothing', async () => {
      const dir = copyLayout();
      rmSync(join(dir, 'blobs', 'sha256', hexOf(app.config)));
      const parent = fresh();
      await rejectsWith(
        verifier().pull(`oci:${dir}:${APP}`, `oci:${join(parent, 'out')}`),
        'NOT_FOUND',
        OciError,
      );
      assert.deepEqual(readdirSync(parent), []);
    });

    it('an image that does not verify is not written at all', async () => {
      const parent = fresh();
      await rejectsWith(
        verifier().pull(
          `oci:${layout}:registry.example/unsigned:1.0`,
          `oci:${join(parent, 'out')}`,
        ),
        'UNSIGNED_IMAGE',
        ImageVerificationError,
      );
      assert.deepEqual(readdirSync(parent), []);
    });

    it('an existing destination is refused and left as it was', async () => {
      const parent = fresh();
      const out = join(parent, 'out');
      mkdirSync(out);
      writeFileSync(join(out, 'mine.txt'), 'mine');
      await rejectsWith(
        verifier().pull(`oci:${layout}:${APP}`, `oci:${out}`),
        'BAD_REFERENCE',
        OciError,
      );
      assert.deepEqual(readdirSync(parent), ['out']);
      assert.deepEqual(readdirSync(out), ['mine.txt']);
    });

    it('a docker:// output is a MisuseError', async () => {
      await rejectsWith(
        verifier().pull(`oci:${layout}:${APP}`, 'docker://registry.example/app:copy'),
        'MISUSE',
        MisuseError,
      );
    });

    it('refusals are TufaError or OciError, never anything else', async () => {
      for (const input of [
        `oci:${layout}:registry.example/unsigned:1.0`,
        `oci:${layout}:elsewhere.example/app:1.0`,
        `oci:${join(tmp, 'no-such-layout')}:${APP}`,
      ]) {
        await assert.rejects(
          verifier().verify(input),
          (e: unknown) => e instanceof TufaError || e instanceof OciError,
        );
      }
      assert.equal(existsSync(join(tmp, 'no-such-layout')), false);
    });
  });
});
