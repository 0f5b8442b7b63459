/**
 * The metadata cache: exactly the bytes received, one file per role, written atomically.
 * Files: `root.json`, `timestamp.json`, `snapshot.json`, `targets.json`, and `<role>.json` for
 * each delegated role with the name percent-encoded, so `../x` or `a/b` stay inside the folder
 * (python-tuf CVE-2021-41131).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeName } from '../core/index.js';
import {
  readIfExists,
  removeStaleTempFiles,
  withLock,
  writeFileAtomic,
} from '../internal/index.js';

/** The folder holding trusted metadata. */
export class MetadataCache {
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
   * removeLeftovers deletes temp files a killed writer left behind (never trusted, but never
   * cleaned either): only temp files of atomic writes, older than a minute. Other processes'
   * lock files (`.tufa.lock.<pid>.<hex>.tmp`, made while they wait) are never touched.
   */
  removeLeftovers(): Promise<void> {
    return removeStaleTempFiles(this.dir);
  }

  /**
   * read returns a role's cached bytes (undefined when not cached). Only a regular file is read,
   * not through a symlink, never blocking (a FIFO is refused), and at most `maxLength` bytes.
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

  /** lock runs `fn` holding the folder's lock, so two processes never interleave writes. */
  lock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(join(this.dir, '.tufa.lock'), fn);
  }
}
