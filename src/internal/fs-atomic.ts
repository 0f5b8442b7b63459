/** Atomic file writes and a cross-process lock, for the metadata cache and target folder. */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CacheError } from '../core/index.js';

/**
 * writeFileAtomic writes through a temp file in the same folder, flushed to disk, then renamed
 * over `path`: readers see the old file or the new one, never a part. The temp name does not end
 * in `.json`, so a crash leaves nothing that looks like metadata; the temp file is removed when
 * the write fails.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** readIfExists returns a file's bytes, or undefined when it does not exist. */
export async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CacheError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Options of {@link withLock}. */
export interface LockOptions {
  /** How long to wait for another holder, ms (default 60 s). */
  waitMs?: number;
  /** A lock older than this is taken as abandoned, ms (default 10 min). */
  staleMs?: number;
}

/**
 * withLock runs `fn` while holding `lockPath` (created exclusively, holding our pid). A lock
 * whose holder process is gone (e.g. killed) or that is older than `staleMs` is broken.
 */
export async function withLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const waitMs = options.waitMs ?? 60_000;
  const staleMs = options.staleMs ?? 600_000;
  await mkdir(dirname(lockPath), { recursive: true });
  const deadline = performance.now() + waitMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      const fh = await open(lockPath, 'wx', 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new CacheError(`cannot create lock ${lockPath}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    const holder = Number(
      (await readIfExists(lockPath).then((b) => (b ? new TextDecoder().decode(b) : ''))) ||
        Number.NaN,
    );
    const age = await stat(lockPath).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if ((Number.isSafeInteger(holder) && holder > 0 && !alive(holder)) || age > staleMs) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (performance.now() > deadline) {
      throw new CacheError(`${lockPath} is held by process ${holder}; gave up after ${waitMs} ms`, {
        code: 'CACHE_LOCKED',
      });
    }
    await new Promise((r) => setTimeout(r, delay));
  }
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}
