/** Paths of the repository, found from the compiled test's location. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('repository root not found');
}

/** The repository root (where package.json is). */
export const ROOT = findRoot();
/** The CLI entry point. */
export const TUFA_BIN = join(ROOT, 'bin', 'tufa');
