/**
 * Metadata stores: where the client keeps the trusted metadata, exactly the bytes that verified,
 * one entry per role (`root`, `timestamp`, `snapshot`, `targets`, or a delegated role name). The
 * Updater decides what is written and deleted (the cache rules live there, once, for every
 * store); a store only keeps bytes and serialises writers.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CacheError, encodeName } from '../core/index.js';
import {
  readIfExists,
  removeStaleTempFiles,
  withLock,
  writeFileAtomic,
} from '../internal/index.js';

/** Keeps the trusted metadata of one repository. */
export interface MetadataStore {
  /**
   * The folder of a store on disk: the target folder must be apart from it. Undefined for a
   * store that is not a folder.
   */
  readonly dir?: string;
  /**
   * read returns a role's bytes, or undefined when there are none.
   * @throws {@link CacheError} when they are longer than `maxLength`, or cannot be read
   */
  read(role: string, maxLength?: number): Promise<Uint8Array | undefined>;
  /** write replaces a role's bytes as one step: a reader sees the old bytes or the new. */
  write(role: string, bytes: Uint8Array): Promise<void>;
  /** remove deletes a role's bytes (nothing when there are none). */
  remove(role: string): Promise<void>;
  /** lock runs `fn` so that no other writer of this store runs at the same time. */
  lock<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * The store on disk: one file per role, written atomically, under a lock shared by every process.
 * Files: `root.json`, `timestamp.json`, `snapshot.json`, `targets.json`, and `<role>.json` for
 * each delegated role with the name percent-encoded, so `../x` or `a/b` stay inside the folder
 * (python-tuf CVE-2021-41131).
 */
export class FsMetadataStore implements MetadataStore {
  constructor(readonly dir: string) {}

  /**
   * fileOf returns the file of a role (`root`, `timestamp`, …, or a delegated role name). Capital
   * letters are percent-encoded too, so that on a case-insensitive file system (macOS, Windows)
   * `Root` or `A` can never share a file with `root` or `a`.
   */
  fileOf(role: string): string {
    const name = encodeName(role).replace(/%[0-9A-F]{2}|[A-Z]/g, (m) =>
      m.length === 3 ? m : `%${m.charCodeAt(0).toString(16).toUpperCase()}`,
    );
    return join(this.dir, `${name}.json`);
  }

  /**
   * read reads only a regular file, not through a symlink, never blocking (a FIFO is refused),
   * and at most `maxLength` bytes.
   */
  read(role: string, maxLength?: number): Promise<Uint8Array | undefined> {
    return readIfExists(this.fileOf(role), { maxLength, noFollow: true });
  }

  write(role: string, bytes: Uint8Array): Promise<void> {
    return writeFileAtomic(this.fileOf(role), bytes);
  }

  async remove(role: string): Promise<void> {
    await rm(this.fileOf(role), { force: true });
  }

  /**
   * lock runs `fn` holding the folder's lock, so two processes never interleave writes. First it
   * deletes temp files a killed writer left behind (never trusted, but never cleaned either):
   * only temp files of atomic writes, older than a minute. Other processes' lock files
   * (`.tufa.lock.<pid>.<hex>.tmp`, made while they wait) are never touched.
   */
  lock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(join(this.dir, '.tufa.lock'), async () => {
      await removeStaleTempFiles(this.dir);
      return fn();
    });
  }
}

/**
 * A store in memory, for embedders with no disk to spare (or none at all): the same rules as on
 * disk, kept for the life of the object. Bytes are copied in and out, so a caller changing its
 * buffer never changes trusted state.
 */
export class MemoryMetadataStore implements MetadataStore {
  private readonly roles = new Map<string, Uint8Array>();
  private queue: Promise<unknown> = Promise.resolve();

  async read(role: string, maxLength?: number): Promise<Uint8Array | undefined> {
    const bytes = this.roles.get(role);
    if (bytes !== undefined && maxLength !== undefined && bytes.length > maxLength) {
      throw new CacheError(`cannot read ${role}: longer than ${maxLength} bytes`);
    }
    return bytes?.slice();
  }

  async write(role: string, bytes: Uint8Array): Promise<void> {
    this.roles.set(role, bytes.slice());
  }

  async remove(role: string): Promise<void> {
    this.roles.delete(role);
  }

  /** lock runs the callers one after another, in order. */
  lock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
