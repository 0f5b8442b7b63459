/** Writes repository files to a directory, each atomically (temp file + rename). */
import { resolve, sep } from 'node:path';
import { writeFileAtomic } from '../internal/index.js';

/** writeTree writes every file (relative path → bytes) under `dir`, refusing paths that escape it. */
export async function writeTree(
  dir: string,
  files: ReadonlyMap<string, Uint8Array>,
): Promise<void> {
  const base = resolve(dir);
  for (const [rel, data] of files) {
    const target = resolve(base, rel);
    if (!target.startsWith(base + sep))
      throw new RangeError(`refusing to write outside ${dir}: ${rel}`);
    await writeFileAtomic(target, data);
  }
}
