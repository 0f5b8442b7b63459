/** Byte progress of a pull on a terminal, one line per blob, as skopeo shows it. */
import type { BlobProgress } from '../verify/index.js';

const MIB = 1024 * 1024;
const WIDTH = 30;

/** progressLine renders one blob's line: `blob sha256:0123456789ab [=====>     ] 1.5 / 4.0 MiB`. */
export function progressLine(blob: BlobProgress): string {
  const fraction = blob.size === 0 ? 1 : Math.min(1, blob.done / blob.size);
  const filled = Math.floor(fraction * WIDTH);
  const bar = '='.repeat(filled) + (filled < WIDTH ? '>' : '') + ' '.repeat(WIDTH - filled);
  const mib = (n: number) => (n / MIB).toFixed(1);
  const id = blob.digest.slice(0, 'sha256:'.length + 12);
  return `blob ${id} [${bar.slice(0, WIDTH)}] ${mib(blob.done)} / ${mib(blob.size)} MiB`;
}

/**
 * blobProgress returns an `onProgress` for a terminal: the current blob's line redrawn in place
 * (`\r`) when its text changes, ended with a newline when the blob is complete.
 */
export function blobProgress(
  write: (text: string) => void,
): (done: number, total: number, blob: BlobProgress) => void {
  let last = '';
  return (_done, _total, blob) => {
    const line = progressLine(blob);
    if (line === last) return;
    last = line;
    write(`\r${line}${blob.done >= blob.size ? '\n' : ''}`);
  };
}
