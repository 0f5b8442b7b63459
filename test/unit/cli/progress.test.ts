/** The pull progress renderer, fed byte counts: one line per blob, redrawn in place, as skopeo shows. */
import assert from 'node:assert/strict';
import { blobProgress, progressLine } from '../../../src/cli/progress.js';

const MIB = 1024 * 1024;
const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('pull progress (renderer)', () => {
  it('a line shows the blob, a bar and the bytes so far of its size', () => {
    assert.equal(
      progressLine({ digest: DIGEST, done: 0, size: 400 * MIB }),
      `blob sha256:abababababab [>${' '.repeat(29)}] 0.0 / 400.0 MiB`,
    );
    assert.equal(
      progressLine({ digest: DIGEST, done: 100 * MIB, size: 400 * MIB }),
      `blob sha256:abababababab [${'='.repeat(7)}>${' '.repeat(22)}] 100.0 / 400.0 MiB`,
    );
    assert.equal(
      progressLine({ digest: DIGEST, done: 400 * MIB, size: 400 * MIB }),
      `blob sha256:abababababab [${'='.repeat(30)}] 400.0 / 400.0 MiB`,
    );
    // an empty blob is complete
    assert.match(progressLine({ digest: DIGEST, done: 0, size: 0 }), /\[={30}\] 0\.0 \/ 0\.0 MiB$/);
  });

  it('redraws a blob in place as bytes arrive, skips unchanged text, ends each blob with a newline', () => {
    const written: string[] = [];
    const onProgress = blobProgress((t) => written.push(t));
    const other = `sha256:${'cd'.repeat(32)}`;
    const size = 4 * MIB;
    let total = 0;
    for (const done of [MIB, MIB, 2 * MIB, 4 * MIB]) {
      total = done;
      onProgress(total, 5 * MIB, { digest: DIGEST, done, size });
    }
    onProgress(5 * MIB, 5 * MIB, { digest: other, done: MIB, size: MIB });
    assert.equal(written.length, 4, 'the repeated count drew nothing');
    assert.ok(written.every((w) => w.startsWith('\r')));
    assert.match(written[0] as string, /1\.0 \/ 4\.0 MiB$/);
    assert.match(written[1] as string, /2\.0 \/ 4\.0 MiB$/);
    assert.match(written[2] as string, /abababababab \[={30}\] 4\.0 \/ 4\.0 MiB\n$/);
    assert.match(written[3] as string, /cdcdcdcdcdcd .* 1\.0 \/ 1\.0 MiB\n$/);
  });
});
