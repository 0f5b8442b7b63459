/**
 * The TUF client workflow (TUF 5) with I/O: a metadata store, a fetcher, target downloads.
 *
 * Rules of this module:
 * - The reference time is read once per refresh (TUF 5.1) and passed to the core.
 * - Cached metadata is only ever a starting point: every cached file is verified again before
 *   use. A cached timestamp or snapshot is deleted only when it fails verification itself under
 *   the current root's keys, or when the (unexpired) new root rotates the timestamp or snapshot
 *   keys (TUF 5.3.11: then both go); a refresh refused for another reason (an expired root, a
 *   frozen timestamp) deletes nothing, so the rollback reference survives it.
 * - The target folder is apart from the metadata folder (neither inside the other).
 * - Bytes are cached exactly as received, atomically, and only after they verified.
 * - Delegated roles are fetched only when the target search visits them (pre-order DFS).
 * - Target bytes are returned, or written to the target folder, only after their length and
 *   hashes matched.
 * These rules hold for every {@link MetadataStore}: they are decided here, never in a store.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import {
  BadVersionNumberError,
  bytesEqual,
  type CryptoBackend,
  checkLengthAndHashes,
  consistentTargetName,
  DownloadError,
  DownloadHttpError,
  EqualVersionNumberError,
  encodeName,
  FormatError,
  Metadata,
  MisuseError,
  RepositoryError,
  type Root,
  type TargetFile,
  type Targets,
  TrustedMetadataSet,
  UnsignedMetadataError,
  verifyThreshold,
  walkDelegations,
} from '../core/index.js';
import { nodeBackend } from '../crypto/index.js';
import { readIfExists, writeFileAtomic } from '../internal/index.js';
import { DEFAULT_CONFIG, type UpdaterConfig } from './config.js';
import { DefaultFetcher, type Fetcher } from './fetcher.js';
import { FsMetadataStore, type MetadataStore } from './store.js';

/** Options of {@link Updater}. Give `metadataDir` or `store`. */
export interface UpdaterOptions {
  /**
   * Folder of the trusted metadata (a {@link FsMetadataStore}: atomic writes, a lock shared by
   * every process); it holds a trusted `root.json` (see `initMetadataDir`) or `trustedRoot` is
   * given.
   */
  metadataDir?: string;
  /** Where the trusted metadata is kept, e.g. a {@link MemoryMetadataStore}; else `metadataDir`. */
  store?: MetadataStore;
  /**
   * The trusted root's bytes (obtained through a trusted channel): the start of the root chain
   * unless the store holds a newer root (verified then); a newer one replaces the store's root.
   */
  trustedRoot?: Uint8Array;
  /** URL prefix of the metadata (ends with `/`; names are appended as they are). */
  metadataBaseUrl?: string;
  /** Folder for downloaded targets (for `downloadTarget`; `fetchTarget` needs none). */
  targetDir?: string;
  /** URL prefix of the targets (ends with `/`). */
  targetBaseUrl?: string;
  /** How bytes are fetched (default: a {@link DefaultFetcher}, for http(s):// and file://). */
  fetcher?: Fetcher;
  config?: Partial<UpdaterConfig>;
  /** The clock, epoch ms (default `Date.now`); read once per refresh. */
  now?: () => number;
  /** Use the cache alone: no request is made; every cached file must verify. */
  offline?: boolean;
  /**
   * With `offline` only: accept expired metadata. This turns off freeze-attack protection; use it
   * to read an old cache on purpose, never for deciding what to install.
   */
  allowExpiredMetadata?: boolean;
  backend?: CryptoBackend;
}

/** Log of requests made, for tests and diagnostics (file names relative to the base URLs). */
export type RequestLog = string[];

/**
 * A TUF client for one repository. `refresh()` brings the top-level metadata up to date;
 * `getTargetInfo()` searches the delegations; `downloadTarget()` fetches and verifies a target.
 */
export class Updater {
  readonly config: UpdaterConfig;
  readonly store: MetadataStore;
  /** The files requested, in order (metadata and targets; the last 1,000). */
  readonly requests: RequestLog = [];
  private readonly fetcher: Fetcher;
  private readonly ownsFetcher: boolean;
  private readonly backend: CryptoBackend;
  private set?: TrustedMetadataSet;
  /** The check that targetDir is apart from metadataDir (made at the first target access). */

  constructor(private readonly options: UpdaterOptions) {
    if (!options.offline && options.metadataBaseUrl === undefined) {
      throw new MisuseError('metadataBaseUrl is required unless offline');
    }
    if (options.allowExpiredMetadata && !options.offline) {
      throw new MisuseError('allowExpiredMetadata is only allowed together with offline');
    }
    if ((options.store === undefined) === (options.metadataDir === undefined)) {
      throw new MisuseError('give either metadataDir or store');
    }
    this.config = { ...DEFAULT_CONFIG, ...options.config };
    this.store = options.store ?? new FsMetadataStore(options.metadataDir as string);
    this.ownsFetcher = options.fetcher === undefined;
    this.fetcher = options.fetcher ?? new DefaultFetcher();
    this.backend = options.backend ?? nodeBackend;
  }

  private log(name: string): void {
    if (this.requests.length >= 1000) this.requests.shift();
    this.requests.push(name);
  }

  /** close releases the fetcher's connections (when the updater created it). */
  async close(): Promise<void> {
    if (this.ownsFetcher && this.fetcher instanceof DefaultFetcher) await this.fetcher.close();
  }

  /** The trusted metadata of the last refresh. */
  get trusted(): TrustedMetadataSet {
    if (this.set === undefined) throw new MisuseError('call refresh() first');
    return this.set;
  }

  private async fetchMeta(name: string, maxLength: number): Promise<Uint8Array> {
    if (this.options.offline) throw new DownloadError(`offline: ${name} is not in the cache`);
    this.log(name);
    return this.fetcher.fetch(`${this.options.metadataBaseUrl}${name}`, maxLength);
  }

  /**
   * refresh runs TUF 5.1–5.6.6: root chain, timestamp, snapshot, top-level targets.
   * @throws {@link RepositoryError} when metadata fails verification, {@link DownloadError} when
   *   it cannot be fetched; the cache keeps only what verified. The previous trusted metadata
   *   stays in use while a refresh runs, and is dropped when the refresh fails.
   */
  async refresh(): Promise<void> {
    try {
      await this.refreshLocked();
    } catch (e) {
      this.set = undefined;
      throw e;
    }
  }

  private async refreshLocked(): Promise<void> {
    await this.store.lock(async () => {
      // TUF 5.1: fixed update start time
      const now = (this.options.now ?? Date.now)();
      // a second run only after the first dropped fast-forwarded files (see loadTimestamp)
      this.set = (await this.update(now, true)) ?? (await this.update(now, false));
    });
  }

  /** update runs TUF 5.2–5.6.6 once; undefined when it dropped files and must run again. */
  private async update(now: number, mayRetry: boolean): Promise<TrustedMetadataSet | undefined> {
    const cached = await this.store.read('root', this.config.rootMaxLength);
    const given = this.options.trustedRoot;
    if (cached === undefined && given === undefined) {
      throw new MisuseError(
        `${this.store.dir ?? 'the metadata store'} holds no trusted root.json: initialise it with a trusted root, or give the Updater trustedRoot`,
      );
    }
    const setOf = (bytes: Uint8Array) =>
      new TrustedMetadataSet(bytes, now, {
        backend: this.backend,
        allowExpiredMetadata: this.options.allowExpiredMetadata === true,
      });
    // TUF 5.2: the trusted root must verify against itself before any request (both of them).
    // With a trustedRoot and a cached root, the higher version starts the walk: a trustedRoot
    // as new or newer (one shipped after a root key was compromised and removed) replaces the
    // cached root; an older one yields to the cached root, which this store holds only once a
    // chain from a trusted root verified it (TUF 5.3.8). python-tuf's ngclient (PR #2767,
    // "Cache all root metadata versions") always starts from its `bootstrap` root and re-verifies
    // the cached versions after it (root_history/); we keep no root history, so we cannot
    // re-walk, and take the newer of the two instead: a newer trustedRoot always wins, which is
    // the case an embedder ships it for; a cache an attacker can write is out of our model.
    const fromGiven = given === undefined ? undefined : setOf(given);
    const fromCache = cached === undefined ? undefined : setOf(cached);
    const useCache =
      fromCache !== undefined &&
      (fromGiven === undefined || fromCache.root.signed.version > fromGiven.root.signed.version);
    const set = (useCache ? fromCache : fromGiven) as TrustedMetadataSet;
    if (!useCache && (cached === undefined || !bytesEqual(cached, given as Uint8Array)))
      await this.store.write('root', given as Uint8Array);
    const trustedRoot = set.root.signed;
    if (!this.options.offline) await this.updateRootChain(set);
    // TUF 5.3.11 (fast-forward recovery): when the timestamp or snapshot keys rotated, both
    // cached files stop being rollback references; so does, in loadTimestamp/loadSnapshot, a
    // cached copy the current keys do not sign. Only under an unexpired root (an expired one
    // fails the refresh below, and must delete nothing).
    const final = set.root.signed;
    if (
      !final.isExpired(now) &&
      (['timestamp', 'snapshot'] as const).some(
        (r) => rolePinOf(trustedRoot, r) !== rolePinOf(final, r),
      )
    ) {
      await this.dropTimestampAndSnapshot();
    }
    if (!(await this.loadTimestamp(set, mayRetry))) return undefined;
    await this.loadSnapshot(set);
    await this.loadTargets(set, 'targets', 'root');
    return set;
  }

  private async dropTimestampAndSnapshot(): Promise<void> {
    await this.store.remove('timestamp');
    await this.store.remove('snapshot');
  }

  private async updateRootChain(set: TrustedMetadataSet): Promise<void> {
    const start = set.root.signed.version;
    // TUF 5.3.3: at most maxRootRotations new versions
    for (let v = start + 1; v <= start + this.config.maxRootRotations; v++) {
      let bytes: Uint8Array;
      try {
        bytes = await this.fetchMeta(`${v}.root.json`, this.config.rootMaxLength);
      } catch (e) {
        // TUF 5.3.3: no N+1 (404/403): the trusted root is the latest
        if (e instanceof DownloadHttpError && (e.statusCode === 404 || e.statusCode === 403))
          return;
        throw e;
      }
      set.updateRoot(bytes);
      // TUF 5.3.8: persist each accepted root
      await this.store.write('root', bytes);
    }
  }

  /** loadTimestamp returns false when it dropped fast-forwarded files: the refresh starts again. */
  private async loadTimestamp(set: TrustedMetadataSet, mayRetry: boolean): Promise<boolean> {
    const local = await this.store.read('timestamp', this.config.timestampMaxLength);
    if (local !== undefined) {
      try {
        set.updateTimestamp(local);
      } catch (e) {
        if (!(e instanceof RepositoryError)) throw e;
        // An expired local copy still serves as rollback reference (the set keeps it); so does
        // one refused before it was looked at (an expired root). TUF 5.3.11: one the current
        // root's keys do not sign (rotated) is dropped.
        if (set.timestamp === undefined && failsItself(e)) await this.store.remove('timestamp');
        if (this.options.offline) throw e;
      }
    }
    if (this.options.offline) {
      if (set.timestamp === undefined)
        throw new DownloadError('offline: timestamp.json is not in the cache');
      return true;
    }
    // TUF 5.4.1: download timestamp.json, bounded
    const bytes = await this.fetchMeta('timestamp.json', this.config.timestampMaxLength);
    try {
      set.updateTimestamp(bytes);
    } catch (e) {
      // TUF 5.4.3.1: an equal version is not an error: keep the trusted copy, do not rewrite it
      if (e instanceof EqualVersionNumberError) return true;
      // TUF 5.3.11: a rollback against the cached timestamp while the cached snapshot is signed
      // by keys the current root no longer lists: the snapshot keys rotated, but the root that
      // rotated them was expired when first seen (or the refresh stopped before dropping): the
      // fast-forwarded pair goes now, and the refresh runs again once without it
      if (mayRetry && e instanceof BadVersionNumberError && (await this.snapshotRotatedOut(set))) {
        await this.dropTimestampAndSnapshot();
        return false;
      }
      throw e;
    }
    // TUF 5.4.5: persist
    await this.store.write('timestamp', bytes);
    return true;
  }

  /** snapshotRotatedOut tells whether the current root's snapshot keys do not sign the cached one. */
  private async snapshotRotatedOut(set: TrustedMetadataSet): Promise<boolean> {
    const root = set.root.signed;
    try {
      const local = await this.store.read('snapshot', this.config.snapshotMaxLength);
      if (local === undefined) return false;
      const md = Metadata.fromBytes(local, 'snapshot', 'cached snapshot.json');
      verifyThreshold(
        'cached snapshot.json',
        md,
        root.role('snapshot'),
        root.keyRing(this.backend),
      );
      return false;
    } catch (e) {
      return e instanceof UnsignedMetadataError;
    }
  }

  private async loadSnapshot(set: TrustedMetadataSet): Promise<void> {
    const local = await this.store.read('snapshot', this.config.snapshotMaxLength);
    if (local !== undefined) {
      try {
        set.updateSnapshot(local, !this.options.offline);
        return; // the cached snapshot is final: nothing to fetch
      } catch (e) {
        if (!(e instanceof RepositoryError)) throw e;
        // kept when refused for the timestamp's sake (expired, frozen); TUF 5.3.11: dropped
        // when the current root's snapshot keys do not sign it
        if (set.snapshot === undefined && failsItself(e)) await this.store.remove('snapshot');
        if (this.options.offline) throw e;
      }
    }
    if (this.options.offline) throw new DownloadError('offline: snapshot.json is not in the cache');
    const meta = set.timestamp?.signed.snapshotMeta;
    if (meta === undefined) throw new MisuseError('timestamp must be loaded first');
    const name = this.consistent(set) ? `${meta.version}.snapshot.json` : 'snapshot.json';
    // TUF 5.5.1: bounded by the length timestamp gives, else the configured limit
    const bytes = await this.fetchMeta(name, meta.length ?? this.config.snapshotMaxLength);
    set.updateSnapshot(bytes);
    // TUF 5.5.7: persist
    await this.store.write('snapshot', bytes);
  }

  private consistent(set: TrustedMetadataSet): boolean {
    return set.root.signed.consistentSnapshot === true;
  }

  /** loadTargets verifies `role` from the cache, else fetches it (TUF 5.6.1–5.6.6). */
  private async loadTargets(
    set: TrustedMetadataSet,
    role: string,
    delegator: 'root' | Metadata<Targets>,
  ): Promise<Metadata<Targets>> {
    if (delegator !== 'root') {
      const known = set.verifiedChild(delegator, role);
      if (known !== undefined) return known;
    } else if (set.targets !== undefined) {
      return set.targets;
    }
    const local = await this.store.read(role, this.config.targetsMaxLength);
    if (local !== undefined) {
      try {
        return set.updateDelegatedTargets(local, role, delegator);
      } catch (e) {
        if (!(e instanceof RepositoryError) || this.options.offline) throw e;
      }
    }
    if (this.options.offline) throw new DownloadError(`offline: ${role}.json is not in the cache`);
    const meta = set.snapshot?.signed.roleMeta(role);
    if (meta === undefined)
      throw new RepositoryError('UNKNOWN_ROLE', `snapshot.json does not list ${role}.json`);
    const file = `${encodeName(role)}.json`;
    const name = this.consistent(set) ? `${meta.version}.${file}` : file;
    const bytes = await this.fetchMeta(name, meta.length ?? this.config.targetsMaxLength);
    const md = set.updateDelegatedTargets(bytes, role, delegator);
    // TUF 5.6.6: persist
    await this.store.write(role, bytes);
    return md;
  }

  /**
   * getTargetInfo searches the delegations for `targetPath` (TUF 5.6.7), fetching delegated
   * roles only as the search reaches them.
   * @returns the signed target, or undefined when no trusted role lists it
   */
  async getTargetInfo(targetPath: string): Promise<TargetFile | undefined> {
    const set = this.trusted;
    const walk = walkDelegations(targetPath, {
      maxDelegations: this.config.maxDelegations,
      backend: this.backend,
    });
    let step = walk.next();
    while (!step.done) {
      const { role, delegator } = step.value;
      // A role already verified (against this very delegator) needs no I/O and no lock, so
      // many concurrent lookups (an admission webhook) do not queue on the cache folder.
      const known = delegator === 'root' ? set.targets : set.verifiedChild(delegator, role);
      const md = known ?? (await this.store.lock(() => this.loadTargets(set, role, delegator)));
      step = walk.next(md);
    }
    return step.value?.target;
  }

  /** The file a target is stored under in the target folder: one stable name per path. */
  targetFile(target: TargetFile, filePath?: string): string {
    if (filePath !== undefined) return filePath;
    const dir = this.options.targetDir;
    if (dir === undefined) throw new MisuseError('targetDir is required');
    return join(dir, encodeName(target.path));
  }

  /**
   * checkTargetPlace refuses a target file in the metadata folder: a signed target named
   * `timestamp.json` would overwrite the rollback reference, and the cache's temp-file clean-up
   * would delete targets. The target folder (by real path) must neither be the metadata folder,
   * nor lie inside it, nor contain it; a file given by the caller must not lie inside it.
   */
  private async checkTargetPlace(file: string, filePath: string | undefined): Promise<void> {
    const metadataDir = this.store.dir;
    if (metadataDir === undefined) return; // a store that is no folder: no file can hit it
    const md = await realpathOrPlanned(metadataDir);
    const inside = (a: string, b: string) => a === b || a.startsWith(b.endsWith(sep) ? b : b + sep);
    if (filePath !== undefined) {
      const dir = await realpathOrPlanned(dirname(resolve(file)));
      if (inside(dir, md))
        throw new MisuseError(`${file} is in the metadata folder ${metadataDir}`);
      return;
    }
    // checked on every use, not once: the folder may be replaced by a symlink meanwhile
    const td = await realpathOrPlanned(this.options.targetDir as string);
    if (inside(td, md) || inside(md, td))
      throw new MisuseError(
        `targetDir ${this.options.targetDir} must be apart from metadataDir ${metadataDir} (neither inside the other)`,
      );
  }

  /**
   * findCachedTarget returns the local file of a target if it is there and matches the signed
   * length and hashes (no refetch needed), else undefined.
   */
  async findCachedTarget(target: TargetFile, filePath?: string): Promise<string | undefined> {
    const file = this.targetFile(target, filePath);
    await this.checkTargetPlace(file, filePath);
    try {
      // never more than the signed length, never through a symlink: else it is not cached
      const bytes = await readIfExists(file, { maxLength: target.length, noFollow: true });
      if (bytes === undefined) return undefined;
      checkLengthAndHashes(bytes, target, target.path, this.backend);
      return file;
    } catch {
      return undefined;
    }
  }

  /**
   * fetchTarget fetches a target and checks its length and every hash (TUF 5.7.3); nothing is
   * written anywhere.
   * @returns the verified bytes
   * @throws {@link LengthOrHashMismatchError}, {@link DownloadError}
   */
  async fetchTarget(target: TargetFile, targetBaseUrl?: string): Promise<Uint8Array> {
    const base = targetBaseUrl ?? this.options.targetBaseUrl;
    if (base === undefined) throw new MisuseError('targetBaseUrl is required');
    if (this.options.offline) throw new DownloadError(`offline: cannot download ${target.path}`);
    let name = target.path;
    if (this.consistent(this.trusted) && this.config.prefixTargetsWithHash) {
      // TUF 5.7.3: consistent snapshots: <dir>/<hash>.<basename>, with the first listed hash
      name = consistentTargetName(name, Object.values(target.hashes)[0] as string);
    }
    this.log(name);
    const bytes = await this.fetcher.fetch(`${base}${name}`, target.length);
    checkLengthAndHashes(bytes, target, target.path, this.backend);
    return bytes;
  }

  /**
   * downloadTarget is {@link fetchTarget}, then writes the verified bytes (atomically) to
   * `filePath` or the target folder.
   * @returns the file written
   */
  async downloadTarget(
    target: TargetFile,
    filePath?: string,
    targetBaseUrl?: string,
  ): Promise<string> {
    const file = this.targetFile(target, filePath);
    await this.checkTargetPlace(file, filePath);
    const bytes = await this.fetchTarget(target, targetBaseUrl);
    await this.checkTargetPlace(file, filePath); // again: the download took time
    await writeFileAtomic(file, bytes);
    return file;
  }
}

/**
 * realpathOrPlanned is the real path of `p`, or, for a path not made yet, the real path of its
 * nearest existing ancestor joined with the rest.
 */
async function realpathOrPlanned(p: string): Promise<string> {
  const abs = resolve(p);
  try {
    return await realpath(abs);
  } catch (e) {
    const parent = dirname(abs);
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || parent === abs) return abs;
    return join(await realpathOrPlanned(parent), basename(abs));
  }
}

/** rolePinOf is what a root says signs `role`: its threshold and each key ID with its key. */
function rolePinOf(root: Root, role: 'timestamp' | 'snapshot'): string {
  const r = root.roles.get(role);
  const keyids = [...(r?.keyids ?? [])].sort();
  return JSON.stringify([r?.threshold, keyids.map((id) => [id, root.keys.get(id)?.toJSON()])]);
}

/**
 * failsItself tells whether a cached file was refused for what it is: it does not parse, or the
 * current root's keys do not sign it (TUF 5.3.11: they rotated). A refusal for any other reason
 * (an expired root or timestamp, a version another role names) says nothing against the file.
 */
function failsItself(e: RepositoryError): boolean {
  return e instanceof UnsignedMetadataError || e instanceof FormatError;
}

/**
 * initMetadataDir makes `dir` a client metadata folder trusting `rootBytes` (copied as
 * `root.json`). The root must verify against its own keys; no request is made.
 */
export async function initMetadataDir(
  dir: string,
  rootBytes: Uint8Array,
  backend: CryptoBackend = nodeBackend,
): Promise<void> {
  // Parses and self-verifies; expiry does not matter for the initial root (TUF 5.2).
  new TrustedMetadataSet(rootBytes, 0, { backend });
  await writeFileAtomic(join(dir, 'root.json'), rootBytes);
}
