/**
 * A repository workspace on disk: the current metadata of every role, editable, signable by
 * several people in turn, and publishable as a static consistent-snapshot tree.
 *
 * Layout of a workspace folder:
 *
 *     metadata/root.json  metadata/N.root.json (every root version)
 *     metadata/targets.json  metadata/snapshot.json  metadata/timestamp.json
 *     metadata/<role>.json   (delegated roles, names percent-encoded)
 *     targets/<sha256>       (content of targets added from files, by hash)
 *
 * Rules:
 * - A role with signatures is "released". The first edit of a released role bumps its version,
 *   renews its expiry and clears its signatures; later edits before signing change it in place,
 *   so one signing round is one version.
 * - `sign` adds one key's signature and touches no other; signing again with the same key is a
 *   no-op (idempotent). A key that may not sign the role is refused.
 * - Every file written is parsed by the core first: the workspace never holds invalid metadata.
 * - Every change runs under the workspace lock (`.tufa.lock`) as one unit ({@link Workspace.update}):
 *   its writes are held in memory and stored only when it succeeds, so a refused command leaves
 *   the workspace byte-identical. They are stored all or nothing ({@link commitFiles}): a disk
 *   full or a kill midway never leaves a role referring to a file that is not there.
 *   No role is ever replaced by a lower version of itself.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import {
  canonicalize,
  Delegations,
  encodeName,
  formatExpires,
  type JsonObject,
  type JsonValue,
  type Key,
  type KeyRing,
  Metadata,
  MisuseError,
  parseJson,
  type RoleKeys,
  type RoleType,
  type Root,
  SuccinctRoles,
  type TargetFile,
  type Targets,
  type VerificationResult,
  verificationResult,
} from '../core/index.js';
import { nodeBackend } from '../crypto/index.js';
import { readIfExists, withLock } from '../internal/index.js';
import {
  type CommitFile,
  commitFiles,
  exists,
  hasJournal,
  RECORDS,
  recoverCommit,
} from './commit.js';
import type { Signer } from './signer.js';
import {
  defaultRole,
  foldPath,
  type PathWalk,
  placementProblem,
  TargetWalker,
  targetFileProblem,
  targetPathProblem,
} from './target-walk.js';

/** The top-level roles. */
export type TopRole = RoleType;
const TOP: readonly TopRole[] = ['root', 'targets', 'snapshot', 'timestamp'];

/** Default expiry in days per role; delegated roles use `targets`'s. */
export const DEFAULT_EXPIRY_DAYS: Readonly<Record<TopRole, number>> = Object.freeze({
  root: 365,
  targets: 90,
  snapshot: 7,
  timestamp: 1,
});

const DAY = 86_400_000;
const SPEC_VERSION = '1.0.34';

/** A role file: signatures and the signed object. */
export interface Envelope {
  signatures: Array<{ keyid: string; sig: string }>;
  signed: JsonObject;
}

/** Options of {@link Workspace.init}. */
export interface InitOptions {
  keys: Record<TopRole, readonly Key[]>;
  thresholds?: Partial<Record<TopRole, number>>;
  consistentSnapshot?: boolean;
  now: number;
  expiresDays?: Partial<Record<TopRole, number>>;
}

/** How a delegation is written. */
export interface DelegationSpec {
  /** The delegating role (default `targets`). */
  from?: string;
  /** The delegated role name; for succinct bins, the name prefix. */
  name: string;
  keys: readonly Key[];
  threshold?: number;
  terminating?: boolean;
  paths?: readonly string[];
  pathHashPrefixes?: readonly string[];
  /** Succinct hashed bins: 2^bits roles named `<name>-<hex>`. */
  succinctBits?: number;
}

/** A target entry to list. */
export interface TargetEntry {
  length: number;
  hashes: Record<string, string>;
  custom?: JsonValue;
}

/** One target of a batch ({@link Workspace.addTargets}). */
export interface BatchTarget {
  path: string;
  entry: TargetEntry;
  /** The bytes, stored in the workspace and published (`entry` must describe them). */
  content?: Uint8Array;
  /** The role to list it in (default: the role its path is delegated to). */
  role?: string | undefined;
  /** Where it came from, for errors (`targets.jsonl line 3`, a file name). */
  source?: string;
}

/**
 * sameTarget tells whether a listed entry and a new one are the same bytes: same length, and
 * at least one hash algorithm in common, every common one equal (no common one: not the same).
 */
function sameTarget(a: TargetFile, b: TargetEntry): boolean {
  const common = Object.keys(b.hashes).filter((alg) => a.hashes[alg] !== undefined);
  return (
    a.length === b.length &&
    common.length > 0 &&
    common.every((alg) => a.hashes[alg]?.toLowerCase() === b.hashes[alg]?.toLowerCase())
  );
}

function isObj(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** serialize checks an envelope with the core parser and returns the bytes stored for it. */
function serialize(role: string, env: Envelope): Uint8Array {
  Metadata.fromJSON(env as unknown as JsonObject, Workspace.typeOf(role), roleFileName(role));
  return new TextEncoder().encode(`${JSON.stringify(env, null, 2)}\n`);
}

/** metaEntry is a snapshot/timestamp meta entry for stored bytes: version, length, sha256. */
function metaEntry(version: number, bytes: Uint8Array): JsonObject {
  return {
    version,
    length: bytes.length,
    hashes: { sha256: createHash('sha256').update(bytes).digest('hex') },
  };
}

/** sameJson compares two JSON values by their canonical form. */
export function sameJson(a: JsonValue | undefined, b: JsonValue): boolean {
  return a !== undefined && Buffer.from(canonicalize(a)).equals(Buffer.from(canonicalize(b)));
}

/** roleFileName is the file of a role: its name percent-encoded (`a/b` → `a%2Fb.json`). */
export function roleFileName(role: string): string {
  return `${encodeName(role)}.json`;
}

/**
 * roleNameProblem says why a delegated role cannot be named `name`, or undefined when it can:
 * its file (`<name>.json`, here and on a site without consistent snapshots) would be another
 * metadata file, `N.root.json` (a root version) or a top-level role's, also once case-folded
 * (macOS, Windows). The core refuses the top-level names themselves in delegations.
 */
export function roleNameProblem(name: string): string | undefined {
  const folded = foldPath(roleFileName(name));
  if (/^\d+\.root\.json$/.test(folded) || TOP.some((r) => folded === `${r}.json`))
    return `its file ${roleFileName(name)} would be a root version's or a top-level role's metadata file`;
  return undefined;
}

/** hashesOf returns the sha256 and sha512 hex digests of bytes. */
/**
 * imageNameOf gives `registry/repo` for an image tag path `registry/repo:tag` (a `:` after the
 * last `/`, no `@`), or undefined for any other path.
 */
export function imageNameOf(path: string): string | undefined {
  const colon = path.lastIndexOf(':');
  if (path.includes('@') || colon <= path.lastIndexOf('/')) return undefined;
  return path.slice(0, colon);
}

/** hashesOf returns the sha256 and sha512 hex digests of bytes. */
export function hashesOf(data: Uint8Array): Record<string, string> {
  return {
    sha256: createHash('sha256').update(data).digest('hex'),
    sha512: createHash('sha512').update(data).digest('hex'),
  };
}

export class Workspace {
  /** The writes of the change running in this async context (path → bytes), in write order. */
  readonly #change = new AsyncLocalStorage<Map<string, Uint8Array>>();

  private constructor(
    readonly dir: string,
    private readonly now: number,
  ) {}

  /** The lock every change of the workspace holds (the client cache's lock, {@link withLock}). */
  get lockFile(): string {
    return join(this.dir, '.tufa.lock');
  }

  /**
   * update runs `fn` as one change: under the workspace lock, reading its own writes, which are
   * stored, all or nothing ({@link commitFiles}), only when `fn` returns. When `fn` throws
   * nothing is written. Nested calls join the change already running. A change a killed process
   * left half-stored is completed first.
   */
  async update<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#change.getStore() !== undefined) return fn();
    return withLock(this.lockFile, async () => {
      await recoverCommit(this.dir);
      const writes = new Map<string, Uint8Array>();
      const result = await this.#change.run(writes, fn);
      await commitFiles(this.dir, await this.#commitOrder(writes));
      return result;
    });
  }

  /**
   * #commitOrder orders a change's files so that no file is in place before one it refers to:
   * target contents, then new role files, then the delegated roles, targets, snapshot,
   * timestamp, the root versions and root.json last (it marks a repository).
   */
  async #commitOrder(writes: Map<string, Uint8Array>): Promise<CommitFile[]> {
    const rankOf = async (path: string): Promise<number> => {
      if (dirname(path) === this.contentDir) return 0;
      const name = basename(path);
      const top = ['targets.json', 'snapshot.json', 'timestamp.json'].indexOf(name);
      if (top >= 0) return 3 + top;
      if (name === 'root.json') return 7;
      if (/^\d+\.root\.json$/.test(name)) return 6;
      return (await exists(path)) ? 2 : 1;
    };
    const ranked = await Promise.all(
      [...writes].map(async ([path, bytes], i) => ({ path, bytes, i, rank: await rankOf(path) })),
    );
    ranked.sort((a, b) => a.rank - b.rank || a.i - b.i);
    return ranked.map(({ path, bytes }) => ({
      path: relative(this.dir, path).split(sep).join('/'),
      bytes,
    }));
  }

  /** #get reads a workspace file, as the running change sees it. */
  async #get(path: string): Promise<Uint8Array | undefined> {
    return this.#change.getStore()?.get(path) ?? (await readIfExists(path));
  }

  /** #put writes a workspace file into the running change (see {@link update}). */
  #put(path: string, bytes: Uint8Array): void {
    const writes = this.#change.getStore();
    if (writes === undefined) throw new MisuseError('workspace write outside a change');
    writes.delete(path); // keep the order of the last writes
    writes.set(path, bytes);
  }

  /**
   * record reads (`bytes` undefined) or writes, within the running change, a bookkeeping file of
   * the workspace root (one of {@link RECORDS}): not metadata, committed with the change.
   */
  async record(name: string, bytes?: Uint8Array): Promise<Uint8Array | undefined> {
    if (!RECORDS.includes(name)) throw new MisuseError(`${name}: not a workspace record`);
    if (bytes === undefined) return this.#get(join(this.dir, name));
    this.#put(join(this.dir, name), bytes);
    return bytes;
  }

  get metadataDir(): string {
    return join(this.dir, 'metadata');
  }
  get contentDir(): string {
    return join(this.dir, 'targets');
  }

  /**
   * init creates a workspace with version 1 of every top-level role, unsigned: under the
   * workspace lock, each file created exclusively, so of two inits racing on one folder one is
   * refused and no operator's root is silently replaced.
   */
  static async init(dir: string, o: InitOptions): Promise<Workspace> {
    const ws = new Workspace(dir, o.now);
    const taken = (name = 'root.json') =>
      new MisuseError(`${dir} already holds a repository (metadata/${name} exists)`);
    if ((await readIfExists(join(ws.metadataDir, 'root.json'))) !== undefined) throw taken();
    const keys: JsonObject = {};
    const roles: JsonObject = {};
    for (const role of TOP) {
      const list = o.keys[role];
      if (list.length === 0) throw new MisuseError(`role ${role} needs at least one key`);
      for (const k of list) keys[k.keyid] = k.toJSON();
      const threshold = o.thresholds?.[role] ?? 1;
      if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > list.length) {
        throw new MisuseError(
          `role ${role}: threshold ${threshold} must be between 1 and its ${list.length} keys`,
        );
      }
      roles[role] = { keyids: list.map((k) => k.keyid), threshold };
    }
    const header = (role: TopRole) => ({
      _type: role,
      spec_version: SPEC_VERSION,
      version: 1,
      expires: formatExpires(o.now + (o.expiresDays?.[role] ?? DEFAULT_EXPIRY_DAYS[role]) * DAY),
    });
    // Everything is built and checked in memory first; root.json, which marks a repository,
    // is written last, so a failed init leaves no repository behind.
    const targets: Envelope = { signatures: [], signed: { ...header('targets'), targets: {} } };
    const targetsBytes = serialize('targets', targets);
    const snapshot: Envelope = {
      signatures: [],
      signed: { ...header('snapshot'), meta: { 'targets.json': metaEntry(1, targetsBytes) } },
    };
    const snapshotBytes = serialize('snapshot', snapshot);
    const timestamp: Envelope = {
      signatures: [],
      signed: { ...header('timestamp'), meta: { 'snapshot.json': metaEntry(1, snapshotBytes) } },
    };
    const root: Envelope = {
      signatures: [],
      signed: { ...header('root'), consistent_snapshot: o.consistentSnapshot ?? true, keys, roles },
    };
    const rootBytes = serialize('root', root);
    const files: Array<[string, Uint8Array]> = [
      ['targets.json', targetsBytes],
      ['snapshot.json', snapshotBytes],
      ['timestamp.json', serialize('timestamp', timestamp)],
      ['1.root.json', rootBytes],
      ['root.json', rootBytes],
    ];
    await mkdir(ws.metadataDir, { recursive: true });
    await withLock(ws.lockFile, async () => {
      await recoverCommit(dir);
      for (const [name] of files) {
        if (await exists(join(ws.metadataDir, name))) throw taken(name);
      }
      await commitFiles(
        dir,
        files.map(([name, bytes]) => ({ path: `metadata/${name}`, bytes, create: true })),
      );
    });
    return ws;
  }

  /** open opens an existing workspace; `now` is the time edits and checks use (epoch ms). */
  static async open(dir: string, now: number): Promise<Workspace> {
    const ws = new Workspace(dir, now);
    // a change a killed process left half-stored is completed before anything is read
    if (await hasJournal(dir)) await withLock(ws.lockFile, () => recoverCommit(dir));
    if ((await readIfExists(join(ws.metadataDir, 'root.json'))) === undefined) {
      throw new MisuseError(`${dir} is not a tufa repository (no metadata/root.json)`);
    }
    return ws;
  }

  /**
   * fileOf is the workspace file of a role. A delegated role whose file would be another
   * metadata file of the workspace ({@link roleNameProblem}) is refused.
   */
  fileOf(role: string): string {
    if (!(TOP as readonly string[]).includes(role)) {
      const why = roleNameProblem(role);
      if (why !== undefined) throw new MisuseError(`role ${JSON.stringify(role)}: ${why}`);
    }
    return join(this.metadataDir, roleFileName(role));
  }

  /** bytes returns a role file as stored. */
  async bytes(role: string): Promise<Uint8Array> {
    const b = await this.#get(this.fileOf(role));
    if (b === undefined) throw new MisuseError(`role ${role} does not exist in ${this.dir}`);
    return b;
  }

  /** read returns a role's envelope. */
  async read(role: string): Promise<Envelope> {
    const json = parseJson(await this.bytes(role), { source: roleFileName(role) });
    return json as unknown as Envelope;
  }

  /** typeOf is the `_type` of a role. */
  static typeOf(role: string): RoleType {
    return (TOP as readonly string[]).includes(role) ? (role as RoleType) : 'targets';
  }

  /**
   * write validates an envelope with the core parser, then stores it (as a change of its own,
   * or in the change running). For root the versioned copy `N.root.json` is written too.
   * A lower version than the one stored is refused.
   */
  async write(role: string, env: Envelope): Promise<void> {
    if (this.#change.getStore() === undefined) return this.update(() => this.write(role, env));
    const bytes = serialize(role, env);
    const stored = await this.#get(this.fileOf(role));
    const prior =
      stored && (parseJson(stored, { source: roleFileName(role) }) as unknown as Envelope);
    if (prior && (prior.signed.version as number) > (env.signed.version as number)) {
      throw new MisuseError(
        `${role}: refusing to replace version ${prior.signed.version} with the lower version ${env.signed.version}`,
      );
    }
    if (role === 'root') {
      this.#put(join(this.metadataDir, `${env.signed.version}.root.json`), bytes);
    }
    this.#put(this.fileOf(role), bytes);
  }

  /**
   * edit opens a role for change: a released (signed) role gets version + 1, a fresh expiry and
   * no signatures; a role already being edited is changed in place. A root that is signed but
   * short of a threshold is refused: a new version would leave it unsignable for ever.
   */
  async edit(role: string, change: (signed: JsonObject) => void): Promise<Envelope> {
    return this.update(async () => {
      const env = await this.read(role);
      if (env.signatures.length > 0) {
        if (role === 'root') await this.#refuseUnfinishedRoot(env.signed.version as number);
        env.signed.version = (env.signed.version as number) + 1;
        const days =
          DEFAULT_EXPIRY_DAYS[Workspace.typeOf(role) === 'targets' ? 'targets' : (role as TopRole)];
        env.signed.expires = formatExpires(this.now + days * DAY);
        env.signatures = [];
      }
      change(env.signed);
      await this.write(role, env);
      return env;
    });
  }

  /**
   * #refuseUnfinishedRoot refuses to start root version N+1 while version N is short of its own
   * threshold or its predecessor's: clients walk every version (TUF 5.3.4), and N could never
   * be signed once N+1 exists.
   */
  async #refuseUnfinishedRoot(version: number): Promise<void> {
    const short = (await this.verification('root')).filter((v) => v.signed.length < v.threshold);
    if (short.length === 0) return;
    const which = short.map((v) => `${v.what}: ${v.signed.length}/${v.threshold}`).join(', ');
    throw new MisuseError(
      `root v${version} is signed but short of its threshold (${which}): sign it to its threshold before changing root again, or its clients could never get past ${version}.root.json`,
    );
  }

  /** setExpiry sets a role's expiry to `days` from now (an edit). */
  async setExpiry(role: string, days: number): Promise<void> {
    await this.edit(role, (s) => {
      s.expires = formatExpires(this.now + days * DAY);
    });
  }

  /** targetsRoles lists every targets role reachable from `targets`, delegators first. */
  async targetsRoles(): Promise<Array<{ name: string; delegator: string }>> {
    const out: Array<{ name: string; delegator: string }> = [
      { name: 'targets', delegator: 'root' },
    ];
    const seen = new Set(['targets']);
    for (let i = 0; i < out.length; i++) {
      const { name } = out[i] as { name: string };
      const md = Metadata.fromBytes(await this.bytes(name), 'targets', roleFileName(name));
      const d = md.signed.delegations;
      const children = d?.succinctRoles
        ? Array.from(
            { length: d.succinctRoles.numberOfBins },
            (_, b) => d.succinctRoles?.binName(b) as string,
          )
        : (d?.roles ?? []).map((r) => r.name);
      for (const c of children) {
        // a name whose file is another metadata file is never read as a role (status flags it)
        if (seen.has(c) || roleNameProblem(c) !== undefined) continue;
        seen.add(c);
        out.push({ name: c, delegator: name });
      }
    }
    return out;
  }

  /** walkTarget runs the client's delegation walk for a path over the workspace's role files. */
  async walkTarget(path: string): Promise<PathWalk> {
    return new TargetWalker((r) => this.bytes(r), roleFileName).walk(path);
  }

  /**
   * roleForTarget picks the role that should list a path: the deepest role on the first branch
   * of the client's delegation walk for it.
   */
  async roleForTarget(path: string): Promise<string> {
    return defaultRole(await this.walkTarget(path));
  }

  /**
   * addTarget lists a target (in `role`, or the role its path is delegated to). An image tag
   * path moved to another digest takes the old digest's path with it ({@link addTargets}).
   */
  async addTarget(path: string, entry: TargetEntry, role?: string): Promise<string> {
    return [
      ...(await this.addTargets([{ path, entry, role }], { replace: true })).keys(),
    ][0] as string;
  }

  /** addTargetFile stores a file's content and lists it as a target. */
  async addTargetFile(
    path: string,
    content: Uint8Array,
    role?: string,
    custom?: JsonValue,
  ): Promise<string> {
    const entry = { length: content.length, hashes: hashesOf(content), custom };
    const added = await this.addTargets([{ path, entry, content, role }], { replace: true });
    return [...added.keys()][0] as string;
  }

  /**
   * addTargets lists many targets as one change: each role that gains entries is edited once
   * (one new version, one write), whatever the number of targets. Every target gets the rules
   * of a single add, checked on the delegation walk as it stands before the batch: a path
   * clients can fetch (and, with `content`, publish as a file), the role on the client's walk
   * for it (TUF 5.6.7: delegated paths, terminating roles) and no other role listing it there,
   * and, unless `replace`, no listed entry with other bytes. A path may appear once. One refused
   * target refuses the batch: nothing is written, and the error names its `source`. An image tag
   * path `registry/repo:tag` moved to another digest takes the old digest's path
   * `registry/repo@sha256:…` with it unless another tag still has that digest (whichever command
   * moved it: `repo add-image`, `notary import`, …), so a re-released tag leaves no old digest
   * signed.
   * @returns the roles edited, with the number of targets each lists now from this batch
   */
  async addTargets(
    items: Iterable<BatchTarget>,
    o: { replace?: boolean } = {},
  ): Promise<Map<string, number>> {
    return this.update(async () => {
      const walker = new TargetWalker((r) => this.bytes(r), roleFileName);
      const sources = new Map<string, string>(); // path → where it came from
      const byRole = new Map<string, Array<{ path: string; value: JsonObject }>>();
      const moved: Array<[path: string, hex: string]> = []; // image tags leaving a digest
      for (const it of items) {
        const where = it.source === undefined ? '' : `${it.source}: `;
        const first = sources.get(it.path);
        if (first !== undefined)
          throw new MisuseError(
            `${where}target path ${JSON.stringify(it.path)} is also given by ${first}`,
          );
        sources.set(it.path, it.source ?? 'this batch');
        const why = await this.#placementProblem(walker, it, o.replace === true);
        if (typeof why === 'string') throw new MisuseError(`${where}${why}`);
        const list = byRole.get(why.role) ?? [];
        const { length, hashes, custom } = it.entry;
        const was = why.prior?.hashes.sha256;
        if (was !== undefined && was !== hashes.sha256 && imageNameOf(it.path) !== undefined)
          moved.push([it.path, was]);
        list.push({
          path: it.path,
          value: { length, hashes, ...(custom === undefined ? {} : { custom }) },
        });
        byRole.set(why.role, list);
        if (it.content !== undefined)
          this.#put(join(this.contentDir, hashes.sha256 as string), it.content);
      }
      for (const [role, list] of byRole) {
        await this.edit(role, (s) => {
          const t = s.targets as JsonObject;
          for (const { path, value } of list)
            Object.defineProperty(t, path, {
              value,
              enumerable: true,
              writable: true,
              configurable: true,
            });
        });
      }
      for (const [path, hex] of moved) await this.#dropDigestPath(path, hex);
      return new Map([...byRole].map(([r, l]) => [r, l.length]));
    });
  }

  /**
   * #placementProblem checks one target of a batch (see {@link addTargets}) and returns the role
   * to list it in, or why it cannot be listed.
   */
  async #placementProblem(
    walker: TargetWalker,
    it: BatchTarget,
    replace: boolean,
  ): Promise<string | { role: string; prior: TargetFile | undefined }> {
    const p = JSON.stringify(it.path);
    // published as a file (`targets/<path>`) when its content is given
    const bad = it.content === undefined ? targetPathProblem(it.path) : targetFileProblem(it.path);
    if (bad !== undefined) return `target path ${p}: ${bad}`;
    const sha256 = it.entry.hashes.sha256;
    if (it.content !== undefined && (sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256)))
      return `target ${p}: stored content needs its sha256`;
    const walk = await walker.walk(it.path);
    const role = it.role ?? defaultRole(walk);
    const why = placementProblem(walk, it.path, role, 'add');
    if (why !== undefined) return `cannot list ${p} in ${role}: ${why}`;
    const listedBy = walk.listedBy[0];
    const prior =
      listedBy === undefined ? undefined : (await walker.targetsOf(listedBy)).get(it.path);
    if (prior !== undefined && !replace && !sameTarget(prior, it.entry))
      return `${p}: ${listedBy} already lists other bytes under this path (--replace to list these instead)`;
    return { role, prior };
  }

  /**
   * removeTarget unlists a target from `role`, by default from the role clients get it from. It
   * is an error when that role does not list it, or when an earlier role on the client's walk
   * lists it too (clients would keep getting that entry).
   */
  async removeTarget(path: string, role?: string): Promise<string> {
    return this.update(async () => {
      const before = await this.listedEntry(path);
      const r = await this.#removeTarget(path, role);
      // an image tag's digest path goes with it, unless another tag still has that digest
      const after = await this.listedEntry(path);
      const hex = before?.hashes.sha256;
      if (hex !== undefined && after?.hashes.sha256 !== hex) await this.#dropDigestPath(path, hex);
      return r;
    });
  }

  /**
   * addImage lists an image manifest under its tag path `registry/repo:tag` and its digest path
   * `registry/repo@sha256:D` (same length and hashes), so clients find a digest reference with
   * one delegation walk, hashed bins included. The digest path goes to `role` when that role is
   * on its walk, else to the role it is delegated to. The digest the tag had before loses its
   * digest path unless another tag still has it: a re-released tag leaves no vulnerable digest
   * signed.
   */
  async addImage(tagPath: string, entry: TargetEntry, role?: string): Promise<string> {
    const name = imageNameOf(tagPath);
    const hex = entry.hashes.sha256;
    if (name === undefined || hex === undefined || !/^[0-9a-f]{64}$/.test(hex))
      throw new MisuseError(`${tagPath}: not an image tag path with a sha256 (registry/repo:tag)`);
    return this.update(async () => {
      const r = await this.addTarget(tagPath, entry, role); // the old digest's path goes

      const digestPath = `${name}@sha256:${hex}`;
      if ((await this.listedEntry(digestPath))?.hashes.sha256 !== hex) {
        const walk = await this.walkTarget(digestPath);
        const on = role !== undefined && walk.order.some((s) => s.role === role);
        await this.addTarget(digestPath, entry, on ? role : (walk.listedBy[0] ?? undefined));
      }
      return r;
    });
  }

  /** listedEntry is the entry clients get for a path (the first role on the walk listing it). */
  private async listedEntry(path: string): Promise<TargetFile | undefined> {
    const walker = new TargetWalker((r) => this.bytes(r), roleFileName);
    const first = (await walker.walk(path)).listedBy[0];
    return first === undefined ? undefined : (await walker.targetsOf(first)).get(path);
  }

  /**
   * #dropDigestPath unlists `registry/repo@sha256:<hex>` once no tag of that repository (as
   * clients see it) has the digest any more; `tagPath` is a tag that no longer does.
   */
  async #dropDigestPath(tagPath: string, hex: string): Promise<void> {
    const name = imageNameOf(tagPath);
    if (name === undefined) return;
    const digestPath = `${name}@sha256:${hex}`;
    if ((await this.walkTarget(digestPath)).listedBy[0] === undefined) return;
    const walker = new TargetWalker((r) => this.bytes(r), roleFileName);
    for (const { name: role } of await this.targetsRoles()) {
      for (const [path, entry] of await walker.targetsOf(role)) {
        if (imageNameOf(path) !== name || entry.hashes.sha256 !== hex) continue;
        if ((await walker.walk(path)).listedBy[0] === role) return; // another tag still has it
      }
    }
    await this.#removeTarget(digestPath);
  }

  async #removeTarget(path: string, role?: string): Promise<string> {
    const walk = await this.walkTarget(path);
    const r = role ?? walk.listedBy[0];
    if (r === undefined)
      throw new MisuseError(`${path} is not listed by any role clients look in for it`);
    const listed = (await this.read(r)).signed.targets;
    if (!isObj(listed) || !Object.hasOwn(listed, path)) {
      throw new MisuseError(`${path} is not a target of role ${r}`);
    }
    const why = placementProblem(walk, path, r, 'remove');
    if (why !== undefined)
      throw new MisuseError(`cannot remove ${JSON.stringify(path)} from ${r}: ${why}`);
    await this.edit(r, (s) => {
      delete (s.targets as JsonObject)[path];
    });
    return r;
  }

  /** delegate adds a delegation (and creates the delegated roles' metadata, unsigned). */
  async delegate(spec: DelegationSpec): Promise<string[]> {
    const from = spec.from ?? 'targets';
    const threshold = spec.threshold ?? 1;
    if (spec.keys.length === 0) throw new MisuseError('a delegation needs at least one key');
    if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > spec.keys.length) {
      throw new MisuseError(
        `threshold ${threshold} must be between 1 and the ${spec.keys.length} keys`,
      );
    }
    const env = await this.read(from);
    const existing = env.signed.delegations;
    const keys: JsonObject = isObj(existing) && isObj(existing.keys) ? { ...existing.keys } : {};
    for (const k of spec.keys) keys[k.keyid] = k.toJSON();
    const keyids = spec.keys.map((k) => k.keyid);
    let created: string[];
    let delegations: JsonObject;
    if (spec.succinctBits !== undefined) {
      if (isObj(existing))
        throw new MisuseError(
          `${from} already delegates; succinct bins must be its only delegation`,
        );
      const sr = new SuccinctRoles(keyids, threshold, spec.succinctBits, spec.name);
      delegations = { keys, succinct_roles: sr.toJSON() };
      created = Array.from({ length: sr.numberOfBins }, (_, b) => sr.binName(b));
    } else {
      if (isObj(existing) && existing.succinct_roles !== undefined) {
        throw new MisuseError(`${from} delegates to succinct bins; it cannot also list roles`);
      }
      if ((spec.paths === undefined) === (spec.pathHashPrefixes === undefined)) {
        throw new MisuseError('a delegation needs either paths or path hash prefixes');
      }
      const roles = isObj(existing) && Array.isArray(existing.roles) ? [...existing.roles] : [];
      if (roles.some((r) => isObj(r) && r.name === spec.name)) {
        throw new MisuseError(`${from} already delegates to ${spec.name}`);
      }
      const role: JsonObject = {
        name: spec.name,
        keyids,
        threshold,
        terminating: spec.terminating ?? false,
      };
      if (spec.paths !== undefined) role.paths = [...spec.paths];
      else role.path_hash_prefixes = [...(spec.pathHashPrefixes ?? [])];
      roles.push(role);
      delegations = { keys, roles };
      created = [spec.name];
    }
    // validate before anything is written
    Delegations.fromJSON(delegations, `${from}.delegations`);
    const upper = (spec.pathHashPrefixes ?? []).find((p) => p !== p.toLowerCase());
    if (spec.succinctBits === undefined && upper !== undefined)
      throw new MisuseError(
        `path hash prefix ${JSON.stringify(upper)}: write it in lower case (clients compare hex digests case-sensitively)`,
      );
    // role names differing only in case: two files on a case-insensitive file system, and
    // roles a reader easily takes for one another
    const names = new Map(
      [...TOP, ...(await this.targetsRoles()).map((r) => r.name)].map((n) => [n.toLowerCase(), n]),
    );
    for (const name of created) {
      const why = roleNameProblem(name);
      if (why !== undefined)
        throw new MisuseError(`cannot delegate to ${JSON.stringify(name)}: ${why}`);
      const same = names.get(name.toLowerCase());
      if (same !== undefined && same !== name)
        throw new MisuseError(
          `role ${name}: role ${same} exists, names may not differ only in case`,
        );
      if ((await this.#get(this.fileOf(name))) !== undefined)
        throw new MisuseError(`role ${name} already exists`);
    }
    await this.edit(from, (s) => {
      s.delegations = delegations;
    });
    const expires = formatExpires(this.now + DEFAULT_EXPIRY_DAYS.targets * DAY);
    for (const name of created) {
      await this.write(name, {
        signatures: [],
        signed: { _type: 'targets', spec_version: SPEC_VERSION, version: 1, expires, targets: {} },
      });
    }
    return created;
  }

  /** signersOf returns who may sign a role: keys, threshold, and (for root) the previous root's. */
  async signersOf(role: string): Promise<Array<{ what: string; keys: RoleKeys; ring: KeyRing }>> {
    return (await this.#signersOf([role])).get(role) as Array<{
      what: string;
      keys: RoleKeys;
      ring: KeyRing;
    }>;
  }

  /**
   * #signersOf returns who may sign each of `roles` (see {@link signersOf}), reading root, the
   * delegation tree and each delegator once. A role nobody delegates is refused.
   */
  async #signersOf(
    roles: readonly string[],
  ): Promise<Map<string, Array<{ what: string; keys: RoleKeys; ring: KeyRing }>>> {
    const out = new Map<string, Array<{ what: string; keys: RoleKeys; ring: KeyRing }>>();
    const delegated = roles.filter((r) => !(TOP as readonly string[]).includes(r));
    const delegatorOf = new Map(
      delegated.length === 0 ? [] : (await this.targetsRoles()).map((r) => [r.name, r.delegator]),
    );
    const parsed = new Map<string, ReturnType<typeof Metadata.fromBytes>>();
    const md = async (name: string, type: RoleType) => {
      let m = parsed.get(name);
      if (m === undefined) {
        m = Metadata.fromBytes(await this.bytes(name), type);
        parsed.set(name, m);
      }
      return m;
    };
    for (const role of roles) {
      if ((TOP as readonly string[]).includes(role)) {
        const root = (await md('root', 'root')).signed as Root;
        const list = [
          {
            what: role,
            keys: root.role(role as RoleType) as RoleKeys,
            ring: root.keyRing(nodeBackend),
          },
        ];
        if (role === 'root' && root.version > 1) {
          const prev = await this.rootBytes(root.version - 1);
          if (prev !== undefined) {
            const p = Metadata.fromBytes(prev, 'root').signed;
            list.push({
              what: `root (previous, v${p.version})`,
              keys: p.role('root'),
              ring: p.keyRing(nodeBackend),
            });
          }
        }
        out.set(role, list);
        continue;
      }
      const delegator = delegatorOf.get(role);
      const d =
        delegator === undefined
          ? undefined
          : ((await md(delegator, 'targets')).signed as Targets).delegations;
      const keys = d?.roleKeys(role);
      if (d === undefined || keys === undefined)
        throw new MisuseError(`role ${role} is not delegated by any role of this repository`);
      out.set(role, [{ what: role, keys, ring: d.keyRing(nodeBackend) }]);
    }
    return out;
  }

  /** rolesSignableBy lists every role (top-level, then delegated) that key `keyid` may sign. */
  async rolesSignableBy(keyid: string): Promise<string[]> {
    const all = [...TOP, ...(await this.targetsRoles()).slice(1).map((r) => r.name)];
    const who = await this.#signersOf(all);
    return all.filter((r) => who.get(r)?.some((w) => w.keys.keyids.includes(keyid)));
  }

  /**
   * sign adds `signer`'s signature to a role, leaving other signatures alone. Signing again with
   * the same key replaces nothing when the existing signature still verifies. The signer (an
   * external command may take a minute) runs without the lock; the signature is then added
   * under the lock, only if the role is still exactly what was signed.
   * @returns false when the role already carried a valid signature by this key
   */
  async sign(role: string, signer: Signer): Promise<boolean> {
    return (await this.signRoles([role], signer)).get(role) as boolean;
  }

  /**
   * signRoles is {@link sign} for several roles with one key, stored as one change: each role
   * the key may not sign is refused before anything is signed; signatures are made without the
   * lock, then added under it, each only if its role is still exactly what was signed.
   * @returns per role, whether a signature was added (false: it had a valid one by this key)
   */
  async signRoles(list: readonly string[], signer: Signer): Promise<Map<string, boolean>> {
    const roles = [...new Set(list)];
    const keysOf = async () => {
      const who = await this.#signersOf(roles);
      const vks = new Map<string, ReturnType<KeyRing['resolve']>>();
      for (const role of roles) {
        const w = who.get(role) ?? [];
        if (!w.some((x) => x.keys.keyids.includes(signer.keyid)))
          throw new MisuseError(`key ${signer.keyid} may not sign ${role}`);
        vks.set(
          role,
          w.map((x) => x.ring.resolve(signer.keyid)).find((k) => k !== undefined),
        );
      }
      return vks;
    };
    const vks = await keysOf();
    const added = new Map<string, boolean>();
    const made: Array<{ role: string; data: Uint8Array; sig: Uint8Array; version: unknown }> = [];
    for (const role of roles) {
      const env = await this.read(role);
      const data = canonicalize(env.signed);
      const vk = vks.get(role);
      const existing = env.signatures.find((s) => s.keyid === signer.keyid);
      if (existing && vk?.verify(Buffer.from(existing.sig, 'hex'), data)) {
        added.set(role, false);
        continue;
      }
      const sig = await signer.sign(data);
      if (vk === undefined || !vk.verify(sig, data)) {
        throw new MisuseError(
          `the signature made for key ${signer.keyid} does not verify: wrong key or signer?`,
        );
      }
      made.push({ role, data, sig, version: env.signed.version });
      added.set(role, true);
    }
    if (made.length === 0) return added;
    await this.update(async () => {
      // Re-read under the lock: an edit made while the signer ran is never undone, and a
      // signature made meanwhile by another key is kept.
      const now = await keysOf();
      for (const { role, data, sig, version } of made) {
        const current = await this.read(role);
        if (!Buffer.from(canonicalize(current.signed)).equals(Buffer.from(data))) {
          throw new MisuseError(
            `${role} changed while it was being signed (signed v${version}, now v${current.signed.version}): nothing written, sign it again`,
          );
        }
        if (!now.get(role)?.verify(sig, data)) {
          throw new MisuseError(`key ${signer.keyid} may no longer sign ${role}`);
        }
        current.signatures = [
          ...current.signatures.filter((s) => s.keyid !== signer.keyid),
          { keyid: signer.keyid, sig: Buffer.from(sig).toString('hex') },
        ];
        await this.write(role, current);
      }
    });
    return added;
  }

  /** verification tells how far a role's signatures are from its threshold(s). */
  async verification(role: string): Promise<Array<{ what: string } & VerificationResult>> {
    return (await this.verifications([role])).get(role) ?? [];
  }

  /** verifications is {@link verification} for several roles, walking the delegations once. */
  async verifications(
    roles: readonly string[],
  ): Promise<Map<string, Array<{ what: string } & VerificationResult>>> {
    const who = await this.#signersOf(roles);
    const out = new Map<string, Array<{ what: string } & VerificationResult>>();
    for (const role of roles) {
      const md = Metadata.fromBytes(
        await this.bytes(role),
        Workspace.typeOf(role),
        roleFileName(role),
      );
      out.set(
        role,
        (who.get(role) ?? []).map((w) => ({
          what: w.what,
          ...verificationResult(md, w.keys, w.ring),
        })),
      );
    }
    return out;
  }

  /** snapshotMeta computes the meta entries of every targets role from the files as stored. */
  async snapshotMeta(): Promise<JsonObject> {
    const meta: JsonObject = {};
    for (const { name } of await this.targetsRoles()) {
      const bytes = await this.bytes(name);
      const env = parseJson(bytes) as unknown as Envelope;
      meta[`${name}.json`] = metaEntry(env.signed.version as number, bytes);
    }
    return meta;
  }

  /**
   * refreshSnapshotMeta rewrites snapshot's meta from the targets roles. It edits (bumps)
   * snapshot only when the meta changed, or when `force` is set.
   * @returns whether snapshot changed
   */
  async refreshSnapshotMeta(force = false): Promise<boolean> {
    const meta = await this.snapshotMeta();
    const env = await this.read('snapshot');
    if (sameJson(env.signed.meta, meta) && !force) return false;
    await this.edit('snapshot', (s) => {
      s.meta = meta;
    });
    return true;
  }

  /** timestampMeta computes timestamp's meta entry for the snapshot file as stored. */
  async timestampMeta(): Promise<JsonObject> {
    const bytes = await this.bytes('snapshot');
    const env = parseJson(bytes) as unknown as Envelope;
    return { 'snapshot.json': metaEntry(env.signed.version as number, bytes) };
  }

  /** refreshTimestampMeta points timestamp at the current snapshot file; edits when changed or forced. */
  async refreshTimestampMeta(force = false): Promise<boolean> {
    const meta = await this.timestampMeta();
    const ts = await this.read('timestamp');
    if (sameJson(ts.signed.meta, meta) && !force) return false;
    await this.edit('timestamp', (s) => {
      s.meta = meta;
    });
    return true;
  }

  /**
   * rotateRoot starts root version N+1 with changed keys/thresholds. It must then be signed by a
   * threshold of the previous root's keys and a threshold of its own.
   */
  async rotateRoot(change: {
    add?: Array<{ role: TopRole; key: Key }>;
    remove?: Array<{ role: TopRole; keyid: string }>;
    thresholds?: Partial<Record<TopRole, number>>;
    expiresDays?: number;
  }): Promise<number> {
    const current = await this.read('root');
    if (current.signatures.length === 0) {
      throw new MisuseError(
        'root has unsigned changes: sign the current root before rotating again',
      );
    }
    const env = await this.edit('root', (s) => {
      const keys = s.keys as JsonObject;
      const roles = s.roles as Record<string, { keyids: string[]; threshold: number }>;
      for (const { role, key } of change.add ?? []) {
        keys[key.keyid] = key.toJSON();
        const r = roles[role] as { keyids: string[] };
        if (!r.keyids.includes(key.keyid)) r.keyids.push(key.keyid);
      }
      for (const { role, keyid } of change.remove ?? []) {
        const r = roles[role] as { keyids: string[] };
        if (!r.keyids.includes(keyid)) throw new MisuseError(`key ${keyid} is not a ${role} key`);
        r.keyids = r.keyids.filter((k) => k !== keyid);
      }
      for (const [role, t] of Object.entries(change.thresholds ?? {})) {
        (roles[role] as { threshold: number }).threshold = t as number;
      }
      // drop keys no role uses any more
      const used = new Set(Object.values(roles).flatMap((r) => r.keyids));
      for (const id of Object.keys(keys)) if (!used.has(id)) delete keys[id];
      for (const [role, r] of Object.entries(roles)) {
        if (r.keyids.length === 0 || r.threshold < 1 || r.threshold > r.keyids.length) {
          throw new MisuseError(
            `role ${role}: threshold ${r.threshold} with ${r.keyids.length} keys is not satisfiable`,
          );
        }
      }
      if (change.expiresDays !== undefined)
        s.expires = formatExpires(this.now + change.expiresDays * DAY);
    });
    return env.signed.version as number;
  }

  /** rootVersions lists the root versions kept (`N.root.json`), ascending. */
  async rootVersions(): Promise<number[]> {
    const names = await readdir(this.metadataDir);
    for (const path of this.#change.getStore()?.keys() ?? []) {
      if (dirname(path) === this.metadataDir) names.push(basename(path));
    }
    return [
      ...new Set(
        names
          .map((n) => /^(\d+)\.root\.json$/.exec(n)?.[1])
          .filter((v): v is string => v !== undefined)
          .map(Number),
      ),
    ].sort((a, b) => a - b);
  }

  /** rootBytes returns root version `version` as stored (`N.root.json`), if kept. */
  async rootBytes(version: number): Promise<Uint8Array | undefined> {
    return this.#get(join(this.metadataDir, `${version}.root.json`));
  }

  /** roleHeader reads a role's version and expiry. */
  async roleHeader(role: string): Promise<{ version: number; expires: string }> {
    const env = await this.read(role);
    return { version: env.signed.version as number, expires: String(env.signed.expires) };
  }

  /** The time this workspace uses (epoch ms). */
  get time(): number {
    return this.now;
  }
}
