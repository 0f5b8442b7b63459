/**
 * All-or-nothing changes of several workspace files. A change is committed in three steps:
 *
 * 1. every new file's content goes to a temp file beside it (`.<name>.<12 hex>.tmp`, flushed);
 *    a failure here (a full disk) removes the temp files and leaves the workspace untouched;
 * 2. a journal (`.tufa.commit`: the list of temp → final renames) is stored atomically;
 * 3. the temp files are renamed over their files, in the order given, and the journal removed.
 *
 * A process killed during step 3 leaves the journal: the next locked operation on the workspace
 * ({@link recoverCommit}) completes the renames, so readers never keep a half-applied change.
 * A journal only names temp files beside files of `metadata/` or `targets/` of the workspace.
 */
import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { MisuseError } from '../core/index.js';
import { readIfExists, removeStaleTempFiles, writeFileAtomic } from '../internal/index.js';

/** The journal of a commit in progress, in the workspace folder. */
export const COMMIT_JOURNAL = '.tufa.commit';

/**
 * The largest journal read back (bytes): about 150 bytes a file, so room for a commit of some
 * 400,000 files (a million targets in 16,384 bins touches far fewer); a larger one is not ours.
 */
const MAX_JOURNAL = 64 * 1024 * 1024;

/** The folders of a workspace a commit writes in. */
const FOLDERS = ['metadata', 'targets'] as const;
/** The bookkeeping files a commit may write at the workspace root (Workspace.record). */
export const RECORDS: readonly string[] = ['notary-imports.json'];

/** One file of a commit. */
export interface CommitFile {
  /** Path relative to the workspace folder, with `/` (e.g. `metadata/targets.json`). */
  readonly path: string;
  readonly bytes: Uint8Array;
  /** Create only: refused (nothing written) when the file exists already. */
  readonly create?: boolean;
}

/** A step of the journal: a temp file (relative path) renamed, or linked when `create`, to `to`. */
interface Step {
  tmp: string;
  to: string;
  create?: boolean;
}

/** checkStep refuses a journal step that would touch anything but a workspace file. */
function checkStep(s: unknown): Step {
  const ok =
    typeof s === 'object' &&
    s !== null &&
    typeof (s as Step).tmp === 'string' &&
    typeof (s as Step).to === 'string';
  const step = s as Step;
  const to = ok ? step.to : '';
  const dir = posix.dirname(to);
  const name = posix.basename(to);
  if (
    !ok ||
    posix.normalize(to) !== to ||
    !((FOLDERS as readonly string[]).includes(dir) || (dir === '.' && RECORDS.includes(name))) ||
    name.startsWith('.') ||
    posix.dirname(step.tmp) !== dir ||
    !new RegExp(`^\\.${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[0-9a-f]{12}\\.tmp$`).test(
      posix.basename(step.tmp),
    )
  ) {
    throw new MisuseError(`${COMMIT_JOURNAL}: not a journal of this workspace`);
  }
  return { tmp: step.tmp, to: step.to, ...(step.create === true ? { create: true } : {}) };
}

/** syncDir flushes a folder's entries (the renames); best effort where folders cannot be opened. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (fh === undefined) return;
  try {
    await fh.sync();
  } catch {
    // not supported on this file system
  } finally {
    await fh.close();
  }
}

/** exists tells whether a path exists (for the caller's ordering). */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false;
      throw e;
    },
  );
}

/**
 * applySteps renames (or, for `create`, links) each temp file into place, in order. A temp file
 * already gone was applied by an earlier run. A refused create (the file exists) undoes the
 * creations of this commit and drops it.
 */
async function applySteps(dir: string, steps: readonly Step[], recovering: boolean): Promise<void> {
  const linked: string[] = [];
  for (const s of steps) {
    const tmp = join(dir, s.tmp);
    const st = await lstat(tmp).catch(() => undefined);
    if (st === undefined) {
      // recovery: this step was done before the kill; a live commit: someone took our temp
      if (recovering) continue;
      throw new MisuseError(`${tmp}: the change's temp file disappeared; nothing more written`);
    }
    // a journal names only regular files we wrote (never a symlink planted in their place)
    if (!st.isFile() || st.nlink > (s.create ? 2 : 1)) {
      throw new MisuseError(`${tmp}: not a temp file of this workspace (refusing to use it)`);
    }
    if (!s.create) {
      await rename(tmp, join(dir, s.to));
      continue;
    }
    try {
      await link(tmp, join(dir, s.to)).catch(async (e: NodeJS.ErrnoException) => {
        // a file system without hard links: the caller's lock keeps others out meanwhile
        if (e.code !== 'EPERM' && e.code !== 'ENOTSUP' && e.code !== 'ENOSYS') throw e;
        if (await exists(join(dir, s.to)))
          throw Object.assign(new Error(e.message), { code: 'EEXIST' });
        await rename(tmp, join(dir, s.to));
      });
      linked.push(join(dir, s.to));
      await rm(tmp, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // killed between link and unlink: the file is our own temp's inode, the step is done
      const there = await lstat(join(dir, s.to)).catch(() => undefined);
      if (there !== undefined && there.ino === st.ino && there.dev === st.dev) {
        linked.push(join(dir, s.to));
        await rm(tmp, { force: true });
        continue;
      }
      // created meanwhile by someone else: undo this commit's creations, leave theirs
      for (const f of linked) await rm(f, { force: true });
      for (const t of steps) await rm(join(dir, t.tmp), { force: true });
      await rm(join(dir, COMMIT_JOURNAL), { force: true });
      throw new MisuseError(`${join(dir, s.to)} exists already: nothing written`);
    }
  }
  for (const f of [...FOLDERS, '.']) await syncDir(join(dir, f));
}

/**
 * commitFiles stores `files` (paths relative to the workspace folder `dir`) as one change: all
 * of them or, when it fails before the journal is stored, none. They are put in place in the
 * order given. The caller holds the workspace lock.
 */
export async function commitFiles(dir: string, files: readonly CommitFile[]): Promise<void> {
  if (files.length === 0) return;
  const steps: Step[] = [];
  try {
    for (const f of files) {
      const tmp = posix.join(
        posix.dirname(f.path),
        `.${posix.basename(f.path)}.${randomBytes(6).toString('hex')}.tmp`,
      );
      const step = checkStep({ tmp, to: f.path, ...(f.create ? { create: true } : {}) });
      await mkdir(join(dir, posix.dirname(f.path)), { recursive: true });
      const fh = await open(join(dir, tmp), 'wx', 0o644);
      steps.push(step);
      try {
        await fh.writeFile(f.bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    await writeFileAtomic(
      join(dir, COMMIT_JOURNAL),
      new TextEncoder().encode(JSON.stringify({ steps })),
    );
  } catch (e) {
    for (const s of steps) await rm(join(dir, s.tmp), { force: true });
    throw e;
  }
  await applySteps(dir, steps, false);
  await rm(join(dir, COMMIT_JOURNAL), { force: true });
}

/**
 * recoverCommit completes a commit a killed process left (its journal), then removes the temp
 * files of commits that never reached their journal. The caller holds the workspace lock.
 * @returns whether a commit was completed
 */
export async function recoverCommit(dir: string): Promise<boolean> {
  const journal = join(dir, COMMIT_JOURNAL);
  // bounded: a planted sparse file of gigabytes must not be read whole
  const bytes = await readIfExists(journal, { maxLength: MAX_JOURNAL, noFollow: true }).catch(
    (e: unknown) => {
      throw new MisuseError(
        `${journal}: not a journal of this workspace (${(e as Error).message})`,
      );
    },
  );
  if (bytes === undefined) {
    await removeTempFiles(dir);
    return false;
  }
  let steps: Step[];
  try {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as { steps?: unknown };
    if (!Array.isArray(json.steps)) throw new Error('no steps');
    steps = json.steps.map(checkStep);
  } catch (e) {
    throw new MisuseError(
      `${journal}: an interrupted change cannot be completed (${(e as Error).message}); inspect and remove it`,
    );
  }
  await applySteps(dir, steps, true);
  await rm(journal, { force: true });
  await removeTempFiles(dir);
  return true;
}

/** removeTempFiles removes the temp files of commits (and journals) a killed process left. */
async function removeTempFiles(dir: string): Promise<void> {
  for (const f of FOLDERS) await removeStaleTempFiles(join(dir, f), 0);
  // the journal's own temp file (writeFileAtomic's name), and nothing else of the folder
  const journalTemp = /^\.\.tufa\.commit\.[0-9a-f]{12}\.tmp$/;
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    if (journalTemp.test(n)) await rm(join(dir, n), { force: true });
  }
}

/** hasJournal tells (without the lock) whether an interrupted commit waits to be completed. */
export async function hasJournal(dir: string): Promise<boolean> {
  return exists(join(dir, COMMIT_JOURNAL));
}
