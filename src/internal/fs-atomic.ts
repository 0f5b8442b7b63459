/** Atomic file writes and a cross-process lock, for the metadata cache and target folder. */
import { randomBytes } from 'node:crypto';
import {
  link,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
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
  // (the name matches ATOMIC_TEMP below; keep the two together)
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

/** The temp file of {@link writeFileAtomic}: `.<name>.<12 hex>.tmp`. */
const ATOMIC_TEMP = /^\..+\.[0-9a-f]{12}\.tmp$/;

/**
 * removeStaleTempFiles deletes, in `dir`, the temp files of {@link writeFileAtomic} that a killed
 * writer left behind (never read, never cleaned otherwise): only names of exactly that pattern,
 * and only when older than `olderThanMs`, so no live writer's file and no lock file (whose temp
 * names differ) is ever touched.
 */
export async function removeStaleTempFiles(dir: string, olderThanMs = 60_000): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) {
    if (!ATOMIC_TEMP.test(n)) continue;
    const file = join(dir, n);
    const st = await stat(file).catch(() => undefined);
    if (st?.isFile() && Date.now() - st.mtimeMs > olderThanMs) await rm(file, { force: true });
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

/**
 * Who holds a lock, as the lock file records it (one JSON object). The pid alone is not enough:
 * a pid is reused (after a kill, after a reboot, PID 1 in every container), and means nothing in
 * another pid namespace or on another machine.
 */
interface LockOwner {
  readonly pid: number;
  /** Start time, clock ticks after boot (`/proc/<pid>/stat` field 22): a reused pid differs. */
  readonly start?: string;
  /** `/proc/sys/kernel/random/boot_id`: pids of another boot are not this boot's. */
  readonly boot?: string;
  /** The pid namespace (`/proc/self/ns/pid`): a pid is checked only inside its own. */
  readonly pidns?: string;
  /** The host name (the portable fallback where /proc is missing). */
  readonly host?: string;
}

/** startTimeOf reads a process's start time from /proc (undefined without /proc or process). */
async function startTimeOf(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return start !== undefined && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

let selfOwner: Promise<LockOwner> | undefined;

/** ownerOfSelf is this process's {@link LockOwner} (read once). */
function ownerOfSelf(): Promise<LockOwner> {
  selfOwner ??= (async () => {
    const [start, boot, pidns] = await Promise.all([
      startTimeOf(process.pid),
      readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
        (b) => b.trim() || undefined,
        () => undefined,
      ),
      readlink('/proc/self/ns/pid').catch(() => undefined),
    ]);
    return { pid: process.pid, start, boot, pidns, host: hostname() };
  })();
  return selfOwner;
}

/** parseOwner reads a lock file's text: our JSON, or the bare pid earlier versions wrote. */
function parseOwner(text: string): LockOwner | undefined {
  if (/^[1-9]\d{0,9}$/.test(text)) return { pid: Number(text) };
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    if (typeof o === 'object' && o !== null && Number.isSafeInteger(o.pid) && (o.pid as number) > 0)
      return {
        pid: o.pid as number,
        start: str(o.start),
        boot: str(o.boot),
        pidns: str(o.pidns),
        host: str(o.host) ?? '',
      };
  } catch {
    // not ours: judged by age
  }
  return undefined;
}

/**
 * holderAlive tells whether the process a lock names still runs: true or false when its pid can
 * be checked from here, undefined when it cannot (another machine, container or pid namespace).
 */
async function holderAlive(h: LockOwner, me: LockOwner): Promise<boolean | undefined> {
  // a lock of an earlier version (the pid alone) is checked in our pid namespace, as it was
  if (h.host !== undefined) {
    if (h.host !== me.host) return undefined;
    // the same host after a reboot: every process of the old boot is gone
    if (h.boot !== me.boot)
      return h.boot !== undefined && me.boot !== undefined ? false : undefined;
    if (h.pidns !== me.pidns) return undefined;
  }
  // Our own pid: this process waits for the lock, it does not hold it (callers in one process
  // queue in memory, see withLock); so the holder was an earlier process with our pid (PID 1 of
  // a restarted container, a reused pid).
  if (h.pid === me.pid) return false;
  if (!alive(h.pid)) return false;
  if (h.start === undefined) return true;
  // the pid runs, but is it the same process? (a reused pid starts at another time)
  const start = await startTimeOf(h.pid);
  return start === undefined || start === h.start;
}

/** Options of {@link withLock}. */
export interface LockOptions {
  /** How long to wait for another holder, ms (default 60 s). */
  waitMs?: number;
  /** A lock not touched for this long is taken as abandoned, ms (default 10 min). */
  staleMs?: number;
}

/** How often a holder touches its lock (ms), and after how long without it the lock is dead. */
const HEARTBEAT_MS = 1_000;
const SILENT_MS = 15_000;

// One queue per lock file for the whole process (also across copies of this module), so a lock
// naming our own pid is never one we hold.
const QUEUES = Symbol.for('tufa.lockQueues');
const registry = globalThis as unknown as Record<symbol, Map<string, Promise<void>> | undefined>;
registry[QUEUES] ??= new Map<string, Promise<void>>();
const queues = registry[QUEUES];

/**
 * withLock runs `fn` while holding `lockPath`: the lock file appears (exclusively, by `link()`)
 * with its holder's identity in it: pid, process start time, boot id, pid namespace, host (see
 * {@link LockOwner}). A waiter breaks the lock at once when that process is gone (a kill, a
 * reboot, a pid now used by another process or by the waiter itself); when the holder cannot be
 * checked from here (another pid namespace or machine), when it stopped touching the lock (the
 * holder does so every second) for 15 s. Any lock untouched for `staleMs` is broken. Callers in
 * the same process queue in order in memory instead of polling the file.
 */
export async function withLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const key = resolve(lockPath);
  const previous = queues.get(key) ?? Promise.resolve();
  let release = () => {};
  const mine = new Promise<void>((r) => {
    release = r;
  });
  const tail = previous.then(() => mine);
  queues.set(key, tail);
  await previous;
  try {
    return await withFileLock(lockPath, fn, options);
  } finally {
    release();
    if (queues.get(key) === tail) queues.delete(key);
  }
}

async function readText(path: string): Promise<string | undefined> {
  const b = await readIfExists(path);
  return b === undefined ? undefined : new TextDecoder().decode(b);
}

/** createLock makes `lockPath` appear with `text` in it, or throws (EEXIST when held). */
async function createLock(lockPath: string, text: string): Promise<void> {
  // The lock appears with its owner already in it (a temp file linked into place): a kill can
  // never leave a lock without an owner to check.
  const tmp = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o644, flag: 'wx' });
    await link(tmp, lockPath).catch(async (e: NodeJS.ErrnoException) => {
      // a file system without hard links: create the lock exclusively, then write the owner
      if (e.code !== 'EPERM' && e.code !== 'ENOTSUP' && e.code !== 'ENOSYS') throw e;
      const fh = await open(lockPath, 'wx', 0o644);
      try {
        await fh.writeFile(text);
      } finally {
        await fh.close();
      }
    });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: LockOptions,
): Promise<T> {
  const waitMs = options.waitMs ?? 60_000;
  const staleMs = options.staleMs ?? 600_000;
  const me = await ownerOfSelf();
  const text = JSON.stringify(me);
  const deadline = performance.now() + waitMs;
  // what we saw of the lock, and since when (a holder we cannot check must keep touching it)
  let seen = { text: '', mtimeMs: -1, since: 0 };
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      await mkdir(dirname(lockPath), { recursive: true });
      await createLock(lockPath, text);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: our temp file or the folder vanished under us: try again
      if (code !== 'EEXIST' && code !== 'ENOENT') {
        throw new CacheError(`cannot create lock ${lockPath}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    const held = (await readText(lockPath)) ?? '';
    const st = await stat(lockPath).catch(() => undefined);
    const owner = parseOwner(held);
    // (a lock released meanwhile: try again after the pause)
    if (st !== undefined) {
      const age = Date.now() - st.mtimeMs;
      if (held !== seen.text || st.mtimeMs !== seen.mtimeMs) {
        seen = { text: held, mtimeMs: st.mtimeMs, since: performance.now() };
      }
      let dead: boolean;
      if (owner === undefined) {
        // empty or unreadable (a kill mid-write without hard links, or not ours)
        dead = age > 5_000;
      } else {
        const alive = await holderAlive(owner, me);
        // A holder we cannot check is alive while it touches the lock. On this boot its clock
        // is ours; else count how long we have seen the lock unchanged.
        const silent =
          owner.boot !== undefined && owner.boot === me.boot
            ? age > SILENT_MS
            : performance.now() - seen.since > SILENT_MS;
        dead = alive === false || (alive === undefined && silent);
      }
      if (dead || age > staleMs) {
        // break it only if it is still the lock we judged (not one another waiter just took)
        if ((await readText(lockPath)) === held) await unlink(lockPath).catch(() => undefined);
        continue;
      }
    }
    if (performance.now() > deadline) {
      const who = owner === undefined ? 'another process' : `process ${owner.pid}`;
      const where = owner?.host ? ` on ${owner.host}` : '';
      throw new CacheError(`${lockPath} is held by ${who}${where}; gave up after ${waitMs} ms`, {
        code: 'CACHE_LOCKED',
      });
    }
    await new Promise((r) => setTimeout(r, delay));
  }
  // keep the lock fresh while holding it, so a waiter that cannot check our pid sees us alive
  const beat = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  beat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    // remove our own lock only (had it been broken, it may be another process's by now)
    if ((await readText(lockPath).catch(() => undefined)) === text)
      await unlink(lockPath).catch(() => undefined);
  }
}
