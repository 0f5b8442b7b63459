/**
 * OCI image layouts and archives: LayoutWriter (temp folder beside the destination, checked
 * blobs, commit as a folder or a tar, abort, refusal to overwrite), readLayout, extractArchive
 * (entries that would leave the folder are not written), and skopeo reading what we commit.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { OciError, type OciErrorCode } from '../../../src/oci/errors.js';
import { extractArchive, LayoutWriter, readLayout } from '../../../src/oci/layout.js';
import { type Descriptor, digestOf, MEDIA_TYPES } from '../../../src/oci/manifest.js';

const te = new TextEncoder();
const REF_NAME = 'org.opencontainers.image.ref.name';

/** tarOf packs entries (name → content, or a symlink) into tar bytes. */
async function tarOf(
  entries: ReadonlyArray<{ name: string; content?: Uint8Array | string; linkname?: string }>,
): Promise<Uint8Array> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((ok, fail) => {
    pack.on('end', ok);
    pack.on('error', fail);
  });
  for (const e of entries) {
    if (e.linkname !== undefined) {
      pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname, mtime: new Date(0) });
    } else {
      pack.entry({ name: e.name, mode: 0o644, mtime: new Date(0) }, Buffer.from(e.content ?? ''));
    }
  }
  pack.finalize();
  await ended;
  return new Uint8Array(Buffer.concat(chunks));
}

/** listTar returns the entry names of a tar file. */
async function listTar(file: string): Promise<string[]> {
  const names: string[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    names.push(header.name);
    stream.on('end', next);
    stream.resume();
  });
  const done = new Promise<void>((ok, fail) => {
    extract.on('finish', ok);
    extract.on('error', fail);
  });
  extract.end(readFileSync(file));
  await done;
  return names;
}

/** walk lists every file and folder under dir (relative, sorted). */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(relative(base, p) + (e.isDirectory() ? '/' : ''));
    if (e.isDirectory()) out.push(...walk(p, base));
  }
  return out.sort();
}

interface Blob {
  readonly desc: Descriptor;
  readonly bytes: Uint8Array;
}

const blob = (mediaType: string, bytes: Uint8Array): Blob => ({
  desc: { mediaType, digest: digestOf(bytes), size: bytes.length },
  bytes,
});

/** A small but real image: a gzip tar layer, a config naming its diff ID, an OCI manifest. */
interface TestImage {
  readonly config: Blob;
  readonly layer: Blob;
  readonly manifest: Blob;
}

async function makeImage(text: string): Promise<TestImage> {
  const layerTar = await tarOf([{ name: 'hello.txt', content: text }]);
  const layer = blob(
    'application/vnd.oci.image.layer.v1.tar+gzip',
    new Uint8Array(gzipSync(layerTar)),
  );
  const config = blob(
    MEDIA_TYPES.ociConfig,
    te.encode(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/true'] },
        rootfs: { type: 'layers', diff_ids: [digestOf(layerTar)] },
      }),
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
  return { config, layer, manifest };
}

async function putImage(w: LayoutWriter, img: TestImage, refName?: string): Promise<void> {
  for (const b of [img.config, img.layer, img.manifest]) {
    if (!(await w.hasBlob(b.desc.digest))) await w.putBlob(b.desc, b.bytes);
  }
  w.addManifest(img.manifest.desc, refName);
}

const hexOf = (b: Blob): string => b.desc.digest.slice('sha256:'.length);

async function rejectsCode(
  p: Promise<unknown>,
  code: OciErrorCode | readonly OciErrorCode[],
  message?: RegExp,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof OciError, `expected an OciError, got ${String(e)}`);
    const codes: readonly OciErrorCode[] = typeof code === 'string' ? [code] : code;
    assert.ok(codes.includes(e.code), `${e.code}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

function hasSkopeo(): boolean {
  return spawnSync('sh', ['-c', 'command -v skopeo'], { stdio: 'ignore' }).status === 0;
}

describe('OCI layouts', () => {
  let tmp: string;
  let img: TestImage;
  let img2: TestImage;
  let n = 0;
  /** A fresh, empty parent folder for one case. */
  const parent = (): string => {
    const p = join(tmp, `case-${++n}`);
    mkdirSync(p);
    return p;
  };

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tufa-layout-'));
    img = await makeImage('hello from image one\n');
    img2 = await makeImage('hello from image two\n');
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  describe('LayoutWriter: dir', () => {
    it('writes into a temp folder beside the destination, then commit renames it into place', async () => {
      const p = parent();
      const out = join(p, 'out');
      const w = await LayoutWriter.create('dir', out);
      assert.equal(relative(p, join(w.tempDir, '..')), '');
      assert.ok(readdirSync(p)[0]?.startsWith('.out.tufa-'), readdirSync(p).join());
      assert.equal(existsSync(out), false, 'nothing at the destination before commit');
      await putImage(w, img, 'registry.example/app:1.0');
      await w.commit();

      assert.deepEqual(readdirSync(p), ['out'], 'no temp folder left');
      assert.deepEqual(
        walk(out),
        [
          'blobs/',
          'blobs/sha256/',
          ...[img.config, img.layer, img.manifest].map((b) => `blobs/sha256/${hexOf(b)}`).sort(),
          'index.json',
          'oci-layout',
        ].sort(),
      );
      assert.deepEqual(JSON.parse(readFileSync(join(out, 'oci-layout'), 'utf8')), {
        imageLayoutVersion: '1.0.0',
      });
      assert.deepEqual(JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')), {
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociIndex,
        manifests: [
          { ...img.manifest.desc, annotations: { [REF_NAME]: 'registry.example/app:1.0' } },
        ],
      });
      for (const b of [img.config, img.layer, img.manifest]) {
        assert.deepEqual(
          new Uint8Array(readFileSync(join(out, 'blobs', 'sha256', hexOf(b)))),
          b.bytes,
        );
      }
    });

    it('reads back: readLayout by ref name gives the manifest, its descriptor and the blobs', async () => {
      const out = join(parent(), 'out');
      const w = await LayoutWriter.create('dir', out);
      await putImage(w, img, 'registry.example/app:1.0');
      await w.commit();
      const image = await readLayout(out, 'registry.example/app:1.0');
      assert.deepEqual(image.manifest, img.manifest.bytes);
      assert.deepEqual(image.descriptor, {
        ...img.manifest.desc,
        annotations: { [REF_NAME]: 'registry.example/app:1.0' },
      });
      assert.deepEqual(
        await image.readBlob(img.layer.desc.digest, img.layer.desc.size),
        img.layer.bytes,
      );
      assert.deepEqual(
        await image.readBlob(img.config.desc.digest, img.config.desc.size),
        img.config.bytes,
      );
      // the only image, without a ref name
      assert.deepEqual((await readLayout(out)).manifest, img.manifest.bytes);
    });

    it('several images: each by its ref name; none named, or several without a name, is NOT_FOUND', async () => {
      const out = join(parent(), 'out');
      const w = await LayoutWriter.create('dir', out);
      await putImage(w, img, '1.0');
      await putImage(w, img2, '2.0');
      await w.commit();
      assert.deepEqual((await readLayout(out, '1.0')).manifest, img.manifest.bytes);
      assert.deepEqual((await readLayout(out, '2.0')).manifest, img2.manifest.bytes);
      await rejectsCode(readLayout(out), 'NOT_FOUND', /several images/);
      await rejectsCode(readLayout(out, '3.0'), 'NOT_FOUND', /no image named 3\.0/);
    });

    it('an image without a ref name is listed without annotations', async () => {
      const out = join(parent(), 'out');
      const w = await LayoutWriter.create('dir', out);
      await putImage(w, img);
      await w.commit();
      const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
      assert.deepEqual(index.manifests, [img.manifest.desc]);
      await rejectsCode(readLayout(out, 'latest'), 'NOT_FOUND');
    });
  });

  describe('LayoutWriter: archive', () => {
    it('commit writes a tar at the destination (sorted entries) and leaves no temp folder', async () => {
      const p = parent();
      const out = join(p, 'out.tar');
      const w = await LayoutWriter.create('archive', out);
      await putImage(w, img, 'registry.example/app:1.0');
      await w.commit();
      assert.deepEqual(readdirSync(p), ['out.tar']);
      assert.ok(statSync(out).isFile());
      assert.deepEqual(await listTar(out), [
        ...[img.config, img.layer, img.manifest].map((b) => `blobs/sha256/${hexOf(b)}`).sort(),
        'index.json',
        'oci-layout',
      ]);
    });

    it('reads back: extractArchive then readLayout', async () => {
      const p = parent();
      const out = join(p, 'out.tar');
      const w = await LayoutWriter.create('archive', out);
      await putImage(w, img, 'registry.example/app:1.0');
      await putImage(w, img2, 'registry.example/app:2.0');
      await w.commit();
      const into = join(p, 'x');
      mkdirSync(into);
      const dir = await extractArchive(out, into);
      assert.equal(relative(into, join(dir, '..')), '');
      const image = await readLayout(dir, 'registry.example/app:2.0');
      assert.deepEqual(image.manifest, img2.manifest.bytes);
      assert.deepEqual(
        await image.readBlob(img2.layer.desc.digest, img2.layer.desc.size),
        img2.layer.bytes,
      );
      rmSync(dir, { recursive: true });
    });
  });

  describe('LayoutWriter: refusals', () => {
    it('putBlob refuses bytes that do not match the descriptor (DIGEST_MISMATCH), and stores nothing', async () => {
      const p = parent();
      const w = await LayoutWriter.create('dir', join(p, 'out'));
      const wrong = te.encode('not the layer');
      await rejectsCode(w.putBlob(img.layer.desc, wrong), 'DIGEST_MISMATCH', /do not match/);
      // the right bytes under a wrong size
      await rejectsCode(
        w.putBlob({ ...img.layer.desc, size: img.layer.desc.size + 1 }, img.layer.bytes),
        'DIGEST_MISMATCH',
      );
      // same length, one byte flipped
      const flipped = new Uint8Array(img.layer.bytes);
      flipped[10] = (flipped[10] as number) ^ 1;
      await rejectsCode(w.putBlob(img.layer.desc, flipped), 'DIGEST_MISMATCH');
      assert.equal(await w.hasBlob(img.layer.desc.digest), false);
      assert.deepEqual(readdirSync(join(w.tempDir, 'blobs', 'sha256')), []);
      await w.abort();
    });

    it('streamBlob stores what fill wrote; a fill that throws leaves no blob and no partial file', async () => {
      const w = await LayoutWriter.create('dir', join(parent(), 'out'));
      await w.streamBlob(img.layer.desc, async (write) => {
        await write(img.layer.bytes.subarray(0, 100));
        await write(img.layer.bytes.subarray(100));
      });
      assert.ok(await w.hasBlob(img.layer.desc.digest));
      await assert.rejects(
        w.streamBlob(img.config.desc, async (write) => {
          await write(img.config.bytes.subarray(0, 5));
          throw new OciError('DIGEST_MISMATCH', 'the source lied');
        }),
        /the source lied/,
      );
      assert.equal(await w.hasBlob(img.config.desc.digest), false);
      assert.deepEqual(readdirSync(join(w.tempDir, 'blobs', 'sha256')), [hexOf(img.layer)]);
      await w.abort();
    });

    it('abort leaves nothing: no destination, no temp folder, no tar', async () => {
      for (const kind of ['dir', 'archive'] as const) {
        const p = parent();
        const w = await LayoutWriter.create(kind, join(p, kind === 'dir' ? 'out' : 'out.tar'));
        await putImage(w, img, '1.0');
        await w.abort();
        assert.deepEqual(readdirSync(p), [], kind);
      }
    });

    it('an existing destination is refused (folder, empty folder, file) and nothing is created', async () => {
      const p = parent();
      mkdirSync(join(p, 'full'));
      writeFileSync(join(p, 'full', 'keep.txt'), 'mine');
      mkdirSync(join(p, 'empty'));
      writeFileSync(join(p, 'out.tar'), 'mine too');
      for (const [kind, name] of [
        ['dir', 'full'],
        ['dir', 'empty'],
        ['archive', 'out.tar'],
        ['dir', 'out.tar'],
        ['archive', 'full'],
      ] as const) {
        await rejectsCode(
          LayoutWriter.create(kind, join(p, name)),
          'BAD_REFERENCE',
          /already exists/,
        );
      }
      assert.deepEqual(readdirSync(p).sort(), ['empty', 'full', 'out.tar']);
      assert.equal(readFileSync(join(p, 'full', 'keep.txt'), 'utf8'), 'mine');
      assert.equal(readFileSync(join(p, 'out.tar'), 'utf8'), 'mine too');
    });

    it('creates the parent folders of a destination that does not exist yet', async () => {
      const p = parent();
      const out = join(p, 'a', 'b', 'out');
      const w = await LayoutWriter.create('dir', out);
      await putImage(w, img, '1.0');
      await w.commit();
      assert.deepEqual(readdirSync(join(p, 'a', 'b')), ['out']);
    });
  });

  describe('readLayout: refusals', () => {
    /** committed writes a layout of img named 1.0 and returns its folder. */
    const committed = async (): Promise<string> => {
      const out = join(parent(), 'out');
      const w = await LayoutWriter.create('dir', out);
      await putImage(w, img, '1.0');
      await w.commit();
      return out;
    };

    it('a folder without index.json is NOT_FOUND', async () => {
      await rejectsCode(readLayout(parent()), 'NOT_FOUND', /not an OCI image layout/);
    });

    it('a manifest blob that does not match its index entry is DIGEST_MISMATCH', async () => {
      const out = await committed();
      writeFileSync(join(out, 'blobs', 'sha256', hexOf(img.manifest)), img2.manifest.bytes);
      await rejectsCode(readLayout(out, '1.0'), 'DIGEST_MISMATCH');
    });

    it('a missing manifest blob is NOT_FOUND', async () => {
      const out = await committed();
      rmSync(join(out, 'blobs', 'sha256', hexOf(img.manifest)));
      await rejectsCode(readLayout(out, '1.0'), 'NOT_FOUND', /is missing/);
    });

    // readBlob reports a path-like digest as a missing blob (NOT_FOUND) rather than an invalid
    // digest; either way the path is never opened.
    it('an index entry whose digest is a path is refused, never read', async () => {
      const out = await committed();
      // a valid manifest at the path the digest points to: reading it would succeed
      writeFileSync(join(out, '..', 'secret'), img.manifest.bytes);
      writeFileSync(
        join(out, 'index.json'),
        JSON.stringify({
          schemaVersion: 2,
          manifests: [
            {
              mediaType: MEDIA_TYPES.ociManifest,
              digest: 'sha256:../../../secret',
              size: img.manifest.desc.size,
            },
          ],
        }),
      );
      await rejectsCode(readLayout(out), ['MANIFEST_INVALID', 'NOT_FOUND']);
    });

    it('readBlob refuses a digest that is a path', async () => {
      const image = await readLayout(await committed(), '1.0');
      await rejectsCode(image.readBlob('sha256:../../index.json', 10), [
        'MANIFEST_INVALID',
        'NOT_FOUND',
      ]);
      await rejectsCode(image.readBlob('sha256:../../oci-layout', 10), [
        'MANIFEST_INVALID',
        'NOT_FOUND',
      ]);
      await rejectsCode(image.readBlob(`sha256:${'0'.repeat(64)}`, 10), 'NOT_FOUND', /is missing/);
    });
  });

  describe('extractArchive', () => {
    it('entries that would leave the folder (../x, a/../../x, /x) and links are not written', async () => {
      const p = parent();
      const into = join(p, 'into');
      mkdirSync(into);
      const file = join(p, 'evil.tar');
      writeFileSync(
        file,
        await tarOf([
          { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
          { name: '../escaped-1.txt', content: 'x' },
          { name: '../../escaped-2.txt', content: 'x' },
          { name: 'blobs/../../escaped-3.txt', content: 'x' },
          { name: 'blobs/../../../escaped-4.txt', content: 'x' },
          { name: '/tmp-escaped-absolute.txt', content: 'x' },
          { name: 'link', linkname: '../..' },
          { name: 'link/escaped-through-link.txt', content: 'x' },
          { name: './index.json', content: '{"schemaVersion":2,"manifests":[]}' },
        ]),
      );
      const dir = await extractArchive(file, into);
      const inside = walk(dir);
      // only what a layout reader opens is written; the link was not made, nor link/…
      assert.deepEqual(inside, ['index.json', 'oci-layout']);
      // nothing outside the extraction folder
      assert.deepEqual(
        walk(p),
        [
          'evil.tar',
          'into/',
          `into/${relative(into, dir)}/`,
          ...inside.map((e) => `into/${relative(into, dir)}/${e}`),
        ].sort(),
      );
      assert.equal(existsSync(join(tmpdir(), 'escaped-4.txt')), false);
      assert.equal(existsSync('/tmp-escaped-absolute.txt'), false);
      rmSync(dir, { recursive: true });
    });

    // R2B-07: what a reader opens must be a regular file; links elsewhere (Docker's legacy
    // <id>/layer.tar links) are skipped, never made
    it('a link at index.json, oci-layout or under blobs/ is LAYOUT_INVALID; a name given twice too; links elsewhere are skipped', async () => {
      const p = parent();
      const into = join(p, 'into');
      mkdirSync(into);
      const layout = { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' };
      const index = { name: 'index.json', content: '{"schemaVersion":2,"manifests":[]}' };
      const bad: Array<Array<{ name: string; content?: string; linkname?: string }>> = [
        [layout, { name: 'index.json', linkname: '/dev/zero' }],
        [index, { name: 'oci-layout', linkname: '/etc/passwd' }],
        [layout, index, { name: 'blobs', linkname: '/' }],
        [layout, index, { name: `blobs/sha256/${'a'.repeat(64)}`, linkname: '/dev/zero' }],
        [layout, index, index],
        [layout, index, { name: 'x/../index.json', content: '{}' }],
        [layout, { name: 'x/../index.json', linkname: '/dev/zero' }],
        [layout, index, { name: './blobs/sha256/../sha256', linkname: '/tmp' }],
      ];
      for (const entries of bad) {
        const file = join(p, 'bad.tar');
        writeFileSync(file, await tarOf(entries));
        await rejectsCode(extractArchive(file, into), 'LAYOUT_INVALID');
        assert.deepEqual(readdirSync(into), [], 'the temp folder is removed');
      }
      const file = join(p, 'docker.tar');
      writeFileSync(
        file,
        await tarOf([layout, index, { name: 'abc/layer.tar', linkname: '../blobs/sha256/x' }]),
      );
      const dir = await extractArchive(file, into);
      assert.deepEqual(walk(dir), ['index.json', 'oci-layout']);
      rmSync(dir, { recursive: true });
    });

    it('a referenced blob entry whose bytes do not hash to its name is DIGEST_MISMATCH; of another size SIZE_MISMATCH; unreferenced blobs are not written', async () => {
      const p = parent();
      const into = join(p, 'into');
      mkdirSync(into);
      const file = join(p, 'bad.tar');
      const digest = `sha256:${'a'.repeat(64)}`;
      const indexOf = (size: number) =>
        JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'x', digest, size }] });
      const blob = { name: `blobs/sha256/${'a'.repeat(64)}`, content: 'x' };
      writeFileSync(file, await tarOf([blob, { name: 'index.json', content: indexOf(1) }]));
      await rejectsCode(extractArchive(file, into), 'DIGEST_MISMATCH');
      assert.deepEqual(readdirSync(into), []);
      writeFileSync(file, await tarOf([blob, { name: 'index.json', content: indexOf(2) }]));
      await rejectsCode(extractArchive(file, into), 'SIZE_MISMATCH');
      writeFileSync(file, await tarOf([blob, { name: 'index.json', content: '{"manifests":[]}' }]));
      const dir = await extractArchive(file, into);
      assert.deepEqual(walk(dir), ['index.json']);
      rmSync(dir, { recursive: true });
    });

    it('a file that is not a tar is NOT_FOUND, and its temp folder is removed', async () => {
      const p = parent();
      const into = join(p, 'into');
      mkdirSync(into);
      const file = join(p, 'not.tar');
      writeFileSync(file, new Uint8Array(2048).fill(0x41));
      await rejectsCode(extractArchive(file, into), 'NOT_FOUND', /not a readable OCI archive/);
      assert.deepEqual(readdirSync(into), []);
      await rejectsCode(extractArchive(join(p, 'missing.tar'), into), 'NOT_FOUND');
      assert.deepEqual(readdirSync(into), []);
    });
  });

  describe('skopeo reads what we commit', () => {
    const refName = 'registry.example/app:1.0';

    for (const kind of ['dir', 'archive'] as const) {
      it(`skopeo inspect ${kind === 'dir' ? 'oci' : 'oci-archive'}:… of a committed layout`, async function () {
        if (!hasSkopeo()) this.skip();
        const out = join(parent(), kind === 'dir' ? 'out' : 'out.tar');
        const w = await LayoutWriter.create(kind, out);
        await putImage(w, img, refName);
        await w.commit();
        const transport = kind === 'dir' ? 'oci' : 'oci-archive';
        const r = spawnSync('skopeo', ['inspect', `${transport}:${out}:${refName}`], {
          encoding: 'utf8',
          timeout: 60_000,
        });
        assert.equal(r.status, 0, `skopeo: ${r.stderr}`);
        const info = JSON.parse(r.stdout) as {
          Digest: string;
          Layers: string[];
          Os: string;
          Architecture: string;
        };
        assert.equal(info.Digest, img.manifest.desc.digest);
        assert.deepEqual(info.Layers, [img.layer.desc.digest]);
        assert.equal(info.Os, 'linux');
        assert.equal(info.Architecture, 'amd64');
      });
    }
  });
});
