/** Atomic file writes and a cross-process lock, for the metadata cache and target folder. */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
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

const queues = new Map<string, Promise<void>>();

/**
 * withLock runs `fn` while holding `lockPath` (created exclusively, holding our pid). A lock
 * whose holder process is gone (e.g. killed) or that is older than `staleMs` is broken. Callers
 * in the same process queue in order in memory instead of polling the file.
 */
export async function withLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const previous = queues.get(lockPath) ?? Promise.resolve();
  let release = () => {};
  const mine = new Promise<void>((r) => {
    release = r;
  });
  const tail = previous.then(() => mine);
  queues.set(lockPath, tail);
  await previous;
  try {
    return await withFileLock(lockPath, fn, options);
  } finally {
    release();
    if (queues.get(lockPath) === tail) queues.delete(lockPath);
  }
}

async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: LockOptions,
): Promise<T> {
  const waitMs = options.waitMs ?? 60_000;
  const staleMs = options.staleMs ?? 600_000;
  await mkdir(dirname(lockPath), { recursive: true });
  const deadline = performance.now() + waitMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    // The lock appears with the holder's pid already in it (write a temp file, then link it
    // into place): a kill can never leave a lock without a pid to check.
    const tmp = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, String(process.pid), { mode: 0o644 });
      await link(tmp, lockPath).catch(async (e: NodeJS.ErrnoException) => {
        // a file system without hard links: create the lock exclusively, then write the pid
        if (e.code !== 'EPERM' && e.code !== 'ENOTSUP' && e.code !== 'ENOSYS') throw e;
        const fh = await open(lockPath, 'wx', 0o644);
        await fh.writeFile(String(process.pid));
        await fh.close();
      });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new CacheError(`cannot create lock ${lockPath}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    const text = await readIfExists(lockPath).then((b) => (b ? new TextDecoder().decode(b) : ''));
    const holder = Number(text || Number.NaN);
    const age = await stat(lockPath).then(
      (st) => Date.now() - st.mtimeMs,
      () => 0,
    );
    // an empty lock (left by an older version killed mid-write) is abandoned after a moment
    const emptyAndOld = text === '' && age > 5_000;
    if (
      (Number.isSafeInteger(holder) && holder > 0 && !alive(holder)) ||
      emptyAndOld ||
      age > staleMs
    ) {
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
