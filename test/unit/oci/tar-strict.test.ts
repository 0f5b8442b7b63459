/**
 * The archive reader reads a strict subset of tar: anything two readers (tufa's, Go's
 * archive/tar in skopeo and containerd) could read differently is refused, so the image
 * `tufa verify oci-archive:F` vouches for is the one `skopeo copy oci-archive:F` loads. Each
 * case below was a reader differential an attack round found (tufa read one image, skopeo
 * another); a control archive still extracts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OciError } from '../../../src/oci/errors.js';
import { extractArchive, readLayout } from '../../../src/oci/layout.js';
import { entry, header, image, pad, pax } from '../../support/tar-forge.js';

const LAYOUT = () => entry('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));

/** withType returns a header block with another type flag (checksum recomputed). */
function withType(block: Buffer, type: string): Buffer {
  const x = Buffer.from(block);
  x[156] = type.charCodeAt(0);
  x.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += x[i] as number;
  x.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return x;
}

describe('oci-archive: the strict tar reader', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tufa-tar-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  async function read(archive: Buffer): Promise<string> {
    const file = join(tmp, 'a.tar');
    writeFileSync(file, Buffer.concat([archive, Buffer.alloc(1024)]));
    const dir = await extractArchive(file, tmp);
    return (await readLayout(dir, 'latest')).descriptor.digest;
  }

  async function refused(archive: Buffer, why: RegExp): Promise<void> {
    await assert.rejects(read(archive), (e: unknown) => {
      assert.ok(e instanceof OciError, String(e));
      assert.equal(e.code, 'LAYOUT_INVALID', e.message);
      assert.match(e.message, why);
      return true;
    });
  }

  const good = image('good');
  const evil = image('evil');

  it('control: a plain archive extracts and reads its image', async () => {
    assert.equal(
      await read(Buffer.concat([LAYOUT(), good.blobs, entry('index.json', good.index)])),
      good.digest,
    );
  });

  for (const [type, what] of [
    ['2', 'a symlink'],
    ['1', 'a hard link'],
  ] as const) {
    it(`${what} entry with data (Go reads links as header-only, so the data is a hidden entry)`, async () => {
      const hidden = entry('index.json', evil.index);
      await refused(
        Buffer.concat([
          LAYOUT(),
          good.blobs,
          evil.blobs,
          entry('index.json', good.index),
          header('zlink', hidden.length, type),
          hidden,
        ]),
        /entry with data/,
      );
    });
  }

  it('an empty pax size, or a pax size that is not plain decimal', async () => {
    for (const size of ['', '0x10', '1e3', ' 12']) {
      await refused(
        Buffer.concat([LAYOUT(), good.blobs, pax({ size }), entry('index.json', good.index)]),
        /pax size/,
      );
    }
  });

  it('an empty pax path (Go keeps the header name)', async () => {
    await refused(
      Buffer.concat([
        LAYOUT(),
        good.blobs,
        evil.blobs,
        entry('index.json', good.index),
        pax({ path: '' }),
        entry('index.json', evil.index),
      ]),
      /empty pax path/,
    );
  });

  it('a global pax header (readers disagree on what it applies to)', async () => {
    await refused(
      Buffer.concat([
        LAYOUT(),
        good.blobs,
        entry('index.json', good.index),
        withType(pax({ path: 'ignored' }), 'g'),
        entry('index.json', evil.index),
      ]),
      /global pax header/,
    );
  });

  it('a pax path and a GNU long name on one entry', async () => {
    await refused(
      Buffer.concat([
        LAYOUT(),
        good.blobs,
        evil.blobs,
        entry('index.json', good.index),
        pax({ path: 'ignored' }),
        entry('././@LongLink', Buffer.from('index.json\0'), 'L'),
        entry('whatever', evil.index),
      ]),
      /pax path and a GNU long name/,
    );
  });

  it("a star header (its prefix field is shorter than ustar's)", async () => {
    await refused(
      Buffer.concat([
        LAYOUT(),
        good.blobs,
        entry('index.json', good.index),
        header('x', evil.index.length, '0', undefined, (h) => {
          h.write('ustar\0', 257);
          h.write('00', 263);
          h.write('tar\0', 508);
        }),
        pad(evil.index),
      ]),
      /star header/,
    );
  });

  it('a name given twice, however it is spelled', async () => {
    await refused(
      Buffer.concat([
        LAYOUT(),
        good.blobs,
        entry('index.json', good.index),
        entry('./index.json', evil.index),
      ]),
      /given twice/,
    );
  });

  it('a GNU sparse entry', async () => {
    await refused(
      Buffer.concat([LAYOUT(), good.blobs, entry('index.json', good.index), header('s', 0, 'S')]),
      /sparse/,
    );
  });
});
