/**
 * attack-b: the layout writer's modes. While unverified bytes are in it the layout is 0700
 * (others cannot traverse to them); a failed blob leaves no `.partial`; commit gives the umask's
 * mode; an archive's temp tar exists only after verification.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LayoutWriter } from '../../src/oci/index.js';
import { digestOf } from '../../src/oci/manifest.js';

describe('attack-b: layout modes (umask on commit)', () => {
  it('held? unverified bytes are never readable by others, and a refused blob leaves nothing', async () => {
    const base = mkdtempSync(join(tmpdir(), 'tufa-attack-b-layout-'));
    const old = process.umask(0o022);
    try {
      const w = await LayoutWriter.create('dir', join(base, 'out'));
      const temp = w.tempDir;
      assert.equal(statSync(temp).mode & 0o777, 0o700);
      const bytes = new TextEncoder().encode('hello');
      const desc = { mediaType: 'x', digest: digestOf(bytes), size: 5 };
      await assert.rejects(
        w.streamBlob(desc, async (write) => {
          await write(new TextEncoder().encode('evil!'));
          // mid-blob: the temp layout is private
          assert.equal(statSync(temp).mode & 0o077, 0);
          throw new Error('digest mismatch');
        }),
      );
      assert.deepEqual(readdirSync(join(temp, 'blobs', 'sha256')), []);
      await w.streamBlob(desc, async (write) => write(bytes));
      await w.commit();
      assert.equal(statSync(join(base, 'out')).mode & 0o777, 0o755);
      assert.deepEqual(
        readdirSync(base).filter((n) => n !== 'out'),
        [],
        'no temp folder left behind',
      );
    } finally {
      process.umask(old);
      rmSync(base, { recursive: true, force: true });
    }
  });
});
