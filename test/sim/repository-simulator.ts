/**
 * An in-process repository behind the Fetcher interface: serves a {@link SimRepo} under
 * consistent-snapshot names, logs every request, and can be told to misbehave. No sockets.
 */

import type { Fetcher } from '../../src/client/fetcher.js';
import { DownloadError, DownloadHttpError } from '../../src/core/errors.js';
import { type SimRepo, sha256Hex } from '../support/tuf-builder.js';

export const METADATA_URL = 'https://sim.test/metadata/';
export const TARGETS_URL = 'https://sim.test/targets/';

export class RepositorySimulator implements Fetcher {
  /** Files served, by path relative to the site (`metadata/…`, `targets/…`). */
  readonly files = new Map<string, Uint8Array>();
  /** Requests made, relative to the base URLs, in order. */
  readonly log: string[] = [];
  /** Per-file overrides: bytes to serve instead, or an HTTP status to answer. */
  readonly overrides = new Map<string, Uint8Array | number>();

  constructor(readonly repo: SimRepo) {
    this.publish();
  }

  /** publish signs the current state and serves it; older versions stay served. */
  publish(): void {
    const r = this.repo;
    r.refreshMeta();
    r.rootHistory.forEach((b, i) => {
      this.files.set(`metadata/${i + 1}.root.json`, b);
    });
    this.files.set(`metadata/${r.targets.version}.targets.json`, r.targetsBytes());
    for (const [name, sim] of r.delegated) {
      this.files.set(
        `metadata/${sim.signed.version}.${encodeURIComponent(name)}.json`,
        r.targetsBytes(name),
      );
    }
    this.files.set(`metadata/${r.snapshot.version}.snapshot.json`, r.snapshotBytes());
    this.files.set('metadata/timestamp.json', r.timestampBytes());
  }

  /** addTargetFile lists a target in `role` and serves its content under its hash name. */
  addTargetFile(path: string, content: Uint8Array, role = 'targets'): void {
    this.repo.addTarget(path, content, role);
    const slash = path.lastIndexOf('/');
    this.files.set(
      `targets/${path.slice(0, slash + 1)}${sha256Hex(content)}.${path.slice(slash + 1)}`,
      content,
    );
  }

  async fetch(url: string, maxLength: number): Promise<Uint8Array> {
    let rel: string;
    if (url.startsWith(METADATA_URL)) rel = `metadata/${url.slice(METADATA_URL.length)}`;
    else if (url.startsWith(TARGETS_URL)) rel = `targets/${url.slice(TARGETS_URL.length)}`;
    else throw new DownloadError(`simulator: unknown URL ${url}`);
    this.log.push(rel);
    const o = this.overrides.get(rel);
    if (typeof o === 'number') throw new DownloadHttpError(`${rel}: HTTP ${o}`, o);
    const bytes = o ?? this.files.get(rel);
    if (bytes === undefined) throw new DownloadHttpError(`${rel}: HTTP 404`, 404);
    if (bytes.length > maxLength) {
      throw new DownloadError(`${rel}: more than the limit of ${maxLength} bytes`, {
        code: 'TOO_LARGE',
      });
    }
    return bytes;
  }

  /** take returns and clears the request log. */
  take(): string[] {
    return this.log.splice(0, this.log.length);
  }
}
