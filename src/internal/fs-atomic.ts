/** Atomic file writes and a cross-process lock, for the metadata cache and target folder. */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  type FileHandle,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  unlink,
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
    if (st?.isFile() && (olderThanMs <= 0 || Date.now() - st.mtimeMs > olderThanMs))
      await rm(file, { force: true });
  }
}

/** Open flags that never block (a FIFO) and never follow a symlink in the last component. */
const NO_WAIT = (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0);

/**
 * readIfExists returns a file's bytes, or undefined when it does not exist. Only a regular file
 * is read: a FIFO, device or directory is refused at once (opened without blocking), and so is
 * a symlink with `noFollow`. With `maxLength`, a longer file is refused instead of read.
 */
export async function readIfExists(
  path: string,
  options: { maxLength?: number; noFollow?: boolean } = {},
): Promise<Uint8Array | undefined> {
  const flags =
    constants.O_RDONLY |
    (constants.O_NONBLOCK ?? 0) |
    (options.noFollow ? (constants.O_NOFOLLOW ?? 0) : 0);
  let fh: FileHandle;
  try {
    fh = await open(path, flags);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CacheError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CacheError(`cannot read ${path}: not a regular file`);
    const max = options.maxLength ?? Number.MAX_SAFE_INTEGER;
    if (st.size > max) throw new CacheError(`cannot read ${path}: longer than ${max} bytes`);
    return await readAtMost(fh, max, st.size, path);
  } catch (e) {
    if (e instanceof CacheError) throw e;
    throw new CacheError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    await fh.close();
  }
}

/** readAtMost reads an open file to its end, refusing more than `max` bytes (it may grow). */
async function readAtMost(
  fh: FileHandle,
  max: number,
  sizeHint: number,
  path: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const want = total === 0 ? sizeHint + 1 : 1 << 16;
    const buf = new Uint8Array(Math.min(want, max - total + 1));
    const { bytesRead } = await fh.read(buf, 0, buf.length, null);
    if (bytesRead === 0) break;
    total += bytesRead;
    if (total > max) throw new CacheError(`cannot read ${path}: longer than ${max} bytes`);
    chunks.push(buf.subarray(0, bytesRead));
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
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
  /** Random, one per acquisition: a holder removes only the lock it made. */
  readonly nonce?: string;
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
  // Our own pid: with our start time, another thread (worker) or module copy of this very
  // process holds it: alive while it touches the lock (a terminated worker stops doing so).
  // Otherwise an earlier process had our pid (PID 1 of a restarted container, a reused pid).
  if (h.pid === me.pid) {
    return h.start !== undefined && me.start !== undefined && h.start === me.start
      ? undefined
      : false;
  }
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
/** A lock file longer than this is not ours (ours is one short JSON object). */
const LOCK_MAX_BYTES = 4096;
/** The break guard is held for a few file operations; one older than this was abandoned. */
const GUARD_STALE_MS = 5_000;
/** An mtime further ahead of our clock than this is not our clock's: its age is unknown. */
const CLOCK_SLACK_MS = 1_000;

// One queue per lock file per thread (also across copies of this module), keyed by the real
// path of its folder: callers of one thread wait in memory instead of polling the file. Other
// threads of this process meet at the file (the lock names our pid and start time).
const QUEUES = Symbol.for('tufa.lockQueues');
const registry = globalThis as unknown as Record<symbol, Map<string, Promise<void>> | undefined>;
registry[QUEUES] ??= new Map<string, Promise<void>>();
const queues = registry[QUEUES];

/**
 * withLock runs `fn` while holding `lockPath`: the lock file appears (exclusively, by `link()`)
 * with its holder's identity in it: pid, process start time, boot id, pid namespace, host (see
 * {@link LockOwner}) and a nonce of this acquisition. A waiter breaks the lock at once when that
 * process is gone (a kill, a reboot, a pid now used by another process or, with another start
 * time, by the waiter itself); when the holder cannot be checked from here (another pid
 * namespace or machine, or another thread of this process), when it stopped touching the lock
 * (the holder does so every second) for 15 s. Any lock untouched for `staleMs` is broken. A
 * lock is broken only under the break guard (`<lock>.break`), after judging it again there and
 * checking it is still the same file. A lock name that is not a regular file (a FIFO, a symlink)
 * is never opened blocking nor followed: it is broken; a directory there is refused. Callers in
 * the same thread queue in order in memory instead of polling the file.
 */
export async function withLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const key = await lockKey(lockPath);
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

/** lockKey names a lock file by the real path of its folder (a symlinked folder is one lock). */
async function lockKey(lockPath: string): Promise<string> {
  const dir = dirname(resolve(lockPath));
  try {
    await mkdir(dir, { recursive: true });
    return join(await realpath(dir), basename(lockPath));
  } catch (e) {
    throw new CacheError(`cannot create lock ${lockPath}: ${(e as Error).message}`, { cause: e });
  }
}

/** What is at a lock's name: nothing, something that is not a lock file, or a lock file. */
type LockState =
  | { readonly kind: 'missing' }
  | { readonly kind: 'other'; readonly dev: number; readonly ino: number; readonly dir: boolean }
  | {
      readonly kind: 'file';
      readonly dev: number;
      readonly ino: number;
      readonly mtimeMs: number;
      /** The text, or undefined when longer than {@link LOCK_MAX_BYTES}. */
      readonly text: string | undefined;
    };

/**
 * readLock looks at a lock's name without ever blocking or following it: lstat first, then a
 * regular file is opened non-blocking without following, checked to be the same file, and read
 * up to {@link LOCK_MAX_BYTES}.
 */
async function readLock(lockPath: string): Promise<LockState> {
  const missing = { kind: 'missing' } as const;
  const ls = await lstat(lockPath).catch(() => undefined);
  if (ls === undefined) return missing;
  if (!ls.isFile()) return { kind: 'other', dev: ls.dev, ino: ls.ino, dir: ls.isDirectory() };
  let fh: FileHandle;
  try {
    fh = await open(lockPath, constants.O_RDONLY | NO_WAIT);
  } catch {
    // gone, or replaced by a symlink (ELOOP) or socket since the lstat: look again
    return missing;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.dev !== ls.dev || st.ino !== ls.ino) return missing;
    const buf = new Uint8Array(LOCK_MAX_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      n += bytesRead;
      if (bytesRead === 0 || n === buf.length) break;
    }
    const text = n > LOCK_MAX_BYTES ? undefined : new TextDecoder().decode(buf.subarray(0, n));
    return { kind: 'file', dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, text };
  } catch {
    return missing;
  } finally {
    await fh.close();
  }
}

const sameFile = (a: LockState, b: LockState): boolean =>
  a.kind !== 'missing' && b.kind === a.kind && a.dev === b.dev && a.ino === b.ino;

/**
 * underBreakGuard runs `fn` holding `<lock>.break`, the guard of breaking or removing the lock
 * (so two waiters never both break one dead lock, the second removing the first's new lock).
 * The guard is created exclusively and held for a few file operations; one left by a killed
 * process is broken by age. Returns false, without running `fn`, when the guard is busy.
 */
async function underBreakGuard(lockPath: string, fn: () => Promise<void>): Promise<boolean> {
  const guard = `${lockPath}.break`;
  let ino: number;
  try {
    const fh = await open(
      guard,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_WAIT,
      0o644,
    );
    try {
      ino = (await fh.stat()).ino;
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      const st = await lstat(guard).catch(() => undefined);
      if (st !== undefined && (!st.isFile() || Math.abs(Date.now() - st.mtimeMs) > GUARD_STALE_MS))
        await unlink(guard).catch(() => undefined);
    }
    return false;
  }
  try {
    await fn();
    return true;
  } finally {
    const st = await lstat(guard).catch(() => undefined);
    if (st?.ino === ino) await unlink(guard).catch(() => undefined);
  }
}

/**
 * removeLock removes the lock `judged` under the break guard, if the lock is still that very
 * file and `still` holds for it when read again there. Returns false when the guard was busy.
 */
async function removeLock(
  lockPath: string,
  judged: LockState,
  still: (now: LockState) => Promise<boolean> | boolean,
): Promise<boolean> {
  return underBreakGuard(lockPath, async () => {
    const now = await readLock(lockPath);
    if (!sameFile(judged, now) || !(await still(now))) return;
    if (now.kind === 'other' && now.dir) {
      throw new CacheError(`${lockPath} is a directory, not a lock file: remove it`);
    }
    await unlink(lockPath).catch(() => undefined);
  });
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

/** What a waiter saw of the lock, and since when (performance.now()). */
interface Seen {
  readonly text: string | undefined;
  readonly mtimeMs: number;
  readonly since: number;
}

/**
 * isDead judges a lock file: its holder is gone (checked by pid), or it is silent (not touched
 * for 15 s by a holder we cannot check), or untouched for `staleMs`. An mtime ahead of our clock
 * says nothing: then the time `seen` unchanged counts.
 */
async function isDead(
  st: LockState & { kind: 'file' },
  seen: Seen,
  me: LockOwner,
  staleMs: number,
): Promise<boolean> {
  const unchanged =
    st.text === seen.text && st.mtimeMs === seen.mtimeMs ? performance.now() - seen.since : 0;
  const age = Date.now() - st.mtimeMs;
  const ageKnown = age >= -CLOCK_SLACK_MS;
  if ((ageKnown ? age : unchanged) > staleMs) return true;
  const owner = st.text === undefined ? undefined : parseOwner(st.text);
  // empty, too long or unreadable (a kill mid-write without hard links, or not ours)
  if (owner === undefined) return (ageKnown ? age : unchanged) > 5_000;
  const alive = await holderAlive(owner, me);
  if (alive !== undefined) return !alive;
  // A holder we cannot check is alive while it touches the lock (every HEARTBEAT_MS). On this
  // boot its mtime is on our clock: silent for SILENT_MS by that clock, and seen unchanged by
  // this waiter for longer than a heartbeat (so a wall clock stepped forward by NTP or a VM
  // resume cannot make a holder that still beats look silent). Else count only how long this
  // waiter has seen it unchanged (a monotonic clock).
  const sameClock = owner.boot !== undefined && owner.boot === me.boot && ageKnown;
  if (sameClock) return age > SILENT_MS && unchanged > HEARTBEAT_MS * 1.5;
  return unchanged > SILENT_MS;
}

async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: LockOptions,
): Promise<T> {
  const waitMs = options.waitMs ?? 60_000;
  const staleMs = options.staleMs ?? 600_000;
  const me = await ownerOfSelf();
  const text = JSON.stringify({ ...me, nonce: randomBytes(12).toString('hex') });
  const deadline = performance.now() + waitMs;
  let seen: Seen = { text: '', mtimeMs: -1, since: 0 };
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
    const held = await readLock(lockPath);
    let owner: LockOwner | undefined;
    let broke = false;
    if (held.kind === 'other') {
      // not a lock file (a FIFO, a symlink, a socket): never ours, broken; a directory refused
      broke = await removeLock(lockPath, held, () => true);
    } else if (held.kind === 'file') {
      if (held.text !== seen.text || held.mtimeMs !== seen.mtimeMs) {
        seen = { text: held.text, mtimeMs: held.mtimeMs, since: performance.now() };
      }
      owner = held.text === undefined ? undefined : parseOwner(held.text);
      if (await isDead(held, seen, me, staleMs)) {
        // judged again under the guard: still the same file, still dead
        const judged = seen;
        broke = await removeLock(lockPath, held, (now) =>
          now.kind === 'file' ? isDead(now, judged, me, staleMs) : false,
        );
      }
    }
    // after a break, try again at once; a lock released meanwhile, after the pause
    if (broke && performance.now() <= deadline) continue;
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
  // (lutimes: a lock replaced by a symlink never has its target touched)
  const beat = setInterval(() => {
    const now = new Date();
    lutimes(lockPath, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  beat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    await releaseLock(lockPath, text);
  }
}

/** releaseLock removes our own lock only (had it been broken, it may be another's by now). */
async function releaseLock(lockPath: string, text: string): Promise<void> {
  const ours = (st: LockState) => st.kind === 'file' && st.text === text;
  const until = performance.now() + 2 * GUARD_STALE_MS;
  while (performance.now() < until) {
    const st = await readLock(lockPath);
    if (!ours(st)) return;
    if (await removeLock(lockPath, st, ours)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  // the guard stayed busy: the nonce in `text` still makes the lock ours alone
  if (ours(await readLock(lockPath))) await unlink(lockPath).catch(() => undefined);
}
