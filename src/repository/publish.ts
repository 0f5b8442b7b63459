/** Writes repository files to a directory, each atomically (temp file + rename). */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';

/**
 * writeFileAtomic writes `data` to `path` through a temp file in the same folder and a rename,
 * so a reader never sees a partial file; the temp file is removed if anything fails.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

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
    await writeFileAtomic(join(target), data);
  }
}
