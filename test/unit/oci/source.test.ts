/**
 * ManifestSource: image arguments opened as a reference and a source (openImage), and the layout
 * and archive sources (one unpacking per source, removed by close).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OciError } from '../../../src/oci/errors.js';
import { LayoutWriter } from '../../../src/oci/layout.js';
import { type Descriptor, digestOf, MEDIA_TYPES } from '../../../src/oci/manifest.js';
import { LayoutSource, openImage, RegistrySource } from '../../../src/oci/source.js';

const te = new TextEncoder();
const blob = (mediaType: string, bytes: Uint8Array): { desc: Descriptor; bytes: Uint8Array } => ({
  desc: { mediaType, digest: digestOf(bytes), size: bytes.length },
  bytes,
});
const NAME = 'registry.example/app:1.0';
const noRegistry = () => assert.fail('no registry client is made for a local image');

describe('ManifestSource', () => {
  let tmp: string;
  let archive: string;
  const config = blob(MEDIA_TYPES.ociConfig, te.encode('{}'));
  const layer = blob('application/vnd.oci.image.layer.v1.tar', te.encode('layer bytes'));
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

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tufa-source-'));
    archive = join(tmp, 'image.tar');
    const w = await LayoutWriter.create('archive', archive);
    for (const b of [config, layer, manifest]) await w.putBlob(b.desc, b.bytes);
    w.addManifest(manifest.desc, NAME);
    await w.commit();
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('openImage: docker:// and bare references are registry sources; no file is named', () => {
    let made = 0;
    const client = () => {
      made++;
      return {} as never;
    };
    for (const input of [`docker://${NAME}`, NAME]) {
      const { reference, source } = openImage(input, client);
      assert.ok(source instanceof RegistrySource);
      assert.equal(reference.toString(), NAME);
      assert.equal(source.name, 'registry.example/app');
    }
    assert.equal(made, 2);
  });

  it('openImage: local transports need the full name; unknown transports are refused', () => {
    const { reference, source } = openImage(`oci-archive:${archive}:${NAME}`, noRegistry);
    assert.ok(source instanceof LayoutSource);
    assert.equal(reference.toString(), NAME);
    assert.equal(source.name, `oci-archive:${archive}:${NAME}`);
    for (const [input, why] of [
      [`oci:${tmp}`, /full name/],
      ['ftp://x/y', /unknown transport/],
      [`oci:${tmp}:Not A Reference`, /invalid image reference/],
    ] as const) {
      assert.throws(
        () => openImage(input, noRegistry),
        (e: unknown) => e instanceof OciError && e.code === 'BAD_REFERENCE' && why.test(e.message),
        input,
      );
    }
  });

  it('an archive source unpacks once for all its reads, and close removes what it unpacked', async () => {
    const into = mkdtempSync(join(tmp, 'tmp-'));
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = into;
    try {
      const { source } = openImage(`oci-archive:${archive}:${NAME}`, noRegistry);
      assert.deepEqual((await source.named?.())?.digest, manifest.desc.digest);
      const m = await source.manifest(manifest.desc.digest, manifest.desc.size);
      assert.deepEqual(m.bytes, manifest.bytes);
      assert.equal(m.mediaType, MEDIA_TYPES.ociManifest);
      const got: Uint8Array[] = [];
      await source.copyBlob(layer.desc, (c) => {
        got.push(c);
      });
      assert.deepEqual(Buffer.concat(got), Buffer.from(layer.bytes));
      assert.equal(readdirSync(into).length, 1, 'one unpacking for every read');
      await source.close();
      assert.deepEqual(readdirSync(into), [], 'close removes the unpacked archive');
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it('errors of an archive source name the archive given, not the folder it was unpacked into', async () => {
    const { source } = openImage(`oci-archive:${archive}:${NAME}`, noRegistry);
    try {
      const missing = { ...layer.desc, digest: `sha256:${'0'.repeat(64)}` };
      await assert.rejects(
        source.copyBlob(missing, () => undefined),
        (e: unknown) => {
          assert.ok(e instanceof OciError && e.code === 'NOT_FOUND', String(e));
          assert.ok(e.message.includes(archive), e.message);
          assert.ok(!e.message.includes('tufa-archive-'), e.message);
          return true;
        },
      );
    } finally {
      await source.close();
    }
  });

  it('a layout source checks what it reads: a blob with other bytes is refused', async () => {
    const { source } = openImage(`oci-archive:${archive}:${NAME}`, noRegistry);
    try {
      const wrong = { ...layer.desc, digest: config.desc.digest };
      await assert.rejects(
        source.copyBlob(wrong, () => undefined),
        (e: unknown) => e instanceof OciError,
      );
    } finally {
      await source.close();
    }
  });
});
