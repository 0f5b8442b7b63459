/**
 * Publishing: a workspace becomes a static tree for any web server, laid out for consistent
 * snapshots (`N.root.json`, `V.targets.json`, `V.<role>.json`, `V.snapshot.json`,
 * `timestamp.json`, `targets/<dir>/<hash>.<name>`).
 *
 * Before anything is written, the whole tree is verified the way a client will verify it
 * (root chain, timestamp, snapshot, every targets role against its delegator, every target's
 * bytes), and every file to write is checked against the site as it is (names every file
 * system takes, nothing in the way): a repository a client would refuse, or a publish that
 * would fail half-way on the file system, is refused before the first write. Files are then
 * written atomically in TUF's order: targets, delegated roles, `targets`, snapshot, root,
 * `timestamp.json` last, so that a failure (disk full, a crash) leaves clients on the previous
 * timestamp. Files already in the site with the same bytes are not rewritten; older versions
 * are left in place for clients mid-update.
 *
 * The window that remains: without consistent snapshots, role files, `snapshot.json` and
 * changed target files are overwritten in place, so between the first such write and
 * `timestamp.json` a client updating may find a file newer than the snapshot or timestamp it
 * holds and fail that update (it retries on the next); a publish that fails in that window
 * (an I/O error after the checks) leaves that state until the next publish. With consistent
 * snapshots, every new file has a new name and the previous state stays whole.
 */
import { lstat, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import {
  checkLengthAndHashes,
  consistentTargetName,
  type Metadata,
  MisuseError,
  parseJson,
  type Targets,
  TrustedMetadataSet,
} from '../core/index.js';
import { nodeBackend } from '../crypto/index.js';
import { readIfExists, writeFileAtomic } from '../internal/index.js';
import { repositoryStatus } from './status.js';
import { checkTargetPath, fileNameProblem, foldPath, MAX_NAME_BYTES } from './target-walk.js';
import { type Envelope, roleFileName, type Workspace } from './workspace.js';

/** writeTree writes every file (relative path → bytes) under `dir`, refusing paths that escape it. */
export async function writeTree(
  dir: string,
  files: ReadonlyMap<string, Uint8Array>,
): Promise<void> {
  const base = resolve(dir);
  for (const [rel, data] of files) {
    const target = resolve(base, rel);
    if (!target.startsWith(base + sep))
      throw new RangeError(`refusing to write outside ${dir}: ${rel}`);
    await writeFileAtomic(target, data);
  }
}

/** What a publish wrote. */
export interface PublishResult {
  files: string[];
  targets: number;
}

/** A repository ready to publish: every file in TUF's write order, `timestamp.json` last. */
export interface PublishTree {
  /** Relative path → bytes: `N.root.json`, `root.json`, `[V.]<role>.json`, `targets/…`. */
  files: Map<string, Uint8Array>;
  targets: number;
}

/**
 * publishWorkspace verifies the workspace as a client would, checks every file it is to write
 * against the site as it is, then writes them in TUF's order (each atomically): target files,
 * delegated roles (deepest first), `targets`, snapshot, root versions, `timestamp.json` last.
 */
export async function publishWorkspace(ws: Workspace, outDir: string): Promise<PublishResult> {
  const { files, targets } = await publishTree(ws);
  // every file checked against the site before the first is written: a refused publish
  // writes nothing
  const unchanged = await checkOutputs(outDir, files);
  // TUF 5.4.1: clients start from timestamp.json: it goes last (the order of `files`)
  await writeTree(outDir, new Map([...files].filter(([rel]) => !unchanged.has(rel))));
  return { files: [...files.keys()], targets };
}

/**
 * publishTree lays the workspace out as published files, in TUF's write order, after verifying
 * them as a client would (a repository a client would refuse is refused here). Where they go
 * (a folder, a registry) is the caller's.
 */
export async function publishTree(ws: Workspace): Promise<PublishTree> {
  const status = await repositoryStatus(ws);
  if (!status.ready) {
    throw new MisuseError(`not ready to publish:\n  ${status.problems.join('\n  ')}`);
  }
  const files = new Map<string, Uint8Array>();
  // two different contents for one path: refused, never the last one silently kept
  const put = (into: Map<string, Uint8Array>, rel: string, data: Uint8Array) => {
    const had = files.get(rel) ?? into.get(rel);
    if (had !== undefined && !Buffer.from(had).equals(Buffer.from(data)))
      throw new MisuseError(`publish: two different files would be written to ${rel}`);
    into.set(rel, data);
  };
  const rootEnv = await ws.read('root');
  const consistent = rootEnv.signed.consistent_snapshot === true;
  const targetFiles = new Map<string, Uint8Array>();
  const roleFiles: Array<[string, Uint8Array]> = [];
  const roles = await ws.targetsRoles();
  let targets = 0;
  for (const { name } of roles) {
    const bytes = await ws.bytes(name);
    const env = parseJson(bytes) as unknown as Envelope;
    roleFiles.push([
      consistent ? `${env.signed.version}.${roleFileName(name)}` : roleFileName(name),
      bytes,
    ]);
    for (const [path, entry] of Object.entries(
      env.signed.targets as Record<string, { hashes: Record<string, string> }>,
    )) {
      targets++;
      // the role file may come from someone else (a delegated team): its paths name files
      checkTargetPath(path, `publish: ${name}: target path`);
      const sha256 = entry.hashes.sha256;
      const content =
        sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256)
          ? undefined
          : await readIfExists(join(ws.contentDir, sha256));
      if (content === undefined) continue; // e.g. an image manifest: the registry serves it
      checkTargetPath(path, `publish: ${name}: target path`, true);
      if (consistent) {
        for (const h of Object.values(entry.hashes))
          put(targetFiles, `targets/${consistentTargetName(path, h)}`, content);
      } else {
        put(targetFiles, `targets/${path}`, content);
      }
    }
  }
  // TUF 5.4 / 5.5 / 5.6 (the client's order, reversed): what a newer file points at is
  // written before it: targets, then the roles listing them (delegators after the roles they
  // delegate to, `targets` last), then snapshot, then root, then timestamp
  for (const [rel, bytes] of targetFiles) put(files, rel, bytes);
  for (const [rel, bytes] of roleFiles.reverse()) put(files, rel, bytes);
  const snapshot = await ws.bytes('snapshot');
  const snapVersion = (parseJson(snapshot) as unknown as Envelope).signed.version;
  put(files, consistent ? `${snapVersion}.snapshot.json` : 'snapshot.json', snapshot);
  const versions = await ws.rootVersions();
  for (const v of versions) {
    put(files, `${v}.root.json`, (await ws.rootBytes(v)) as Uint8Array);
  }
  put(files, 'root.json', await ws.bytes('root'));
  const timestamp = await ws.bytes('timestamp');

  verifyAsClient(files, timestamp, versions, roles, consistent, ws.time);

  put(files, 'timestamp.json', timestamp);
  return { files, targets };
}

/** Bytes a temp file of writeFileAtomic adds to a name: `.<name>.<12 hex>.tmp`. */
const ATOMIC_TEMP_EXTRA = 18;
/** The longest absolute path Linux takes (PATH_MAX, less its NUL), in bytes. */
const MAX_PATH_BYTES = 4095;

/**
 * checkOutputs checks the set of files a publish is about to write, before any is written, and
 * returns those already in the site with the same bytes (not rewritten). Every path is
 * normalized (no empty, `.` or `..` segment); metadata is one plain name at the top, targets
 * resolve inside `targets/`; every segment is a file name on every file system (no `:`, no
 * device name, short enough for the file and its temp file, the whole path within PATH_MAX);
 * no two paths name one file once case/Unicode-folded (unless their bytes are equal); no path
 * is both a file and a folder. In the site, each path must be absent or a regular file and each
 * folder on the way absent or a folder (never a symbolic link: nothing is written through one).
 */
async function checkOutputs(
  outDir: string,
  files: ReadonlyMap<string, Uint8Array>,
): Promise<Set<string>> {
  const base = resolve(outDir);
  const targetsDir = join(base, 'targets');
  const fileAt = new Map<string, [string, Uint8Array]>(); // folded path → path, bytes
  const folders = new Map<string, string>(); // folded folder → the folder as written
  for (const [rel, data] of files) {
    const segments = rel.split('/');
    if (segments.some((x) => x === '' || x === '.' || x === '..'))
      throw new MisuseError(
        `publish: refusing the output path ${JSON.stringify(rel)} (not normalized)`,
      );
    const full = resolve(base, rel);
    const inPlace =
      segments.length === 1
        ? dirname(full) === base && rel.endsWith('.json')
        : segments[0] === 'targets' && full.startsWith(targetsDir + sep);
    if (!inPlace)
      throw new MisuseError(`publish: ${JSON.stringify(rel)} would be written outside its place`);
    segments.forEach((segment, i) => {
      const last = i === segments.length - 1;
      const why = fileNameProblem(segment, MAX_NAME_BYTES - (last ? ATOMIC_TEMP_EXTRA : 0));
      if (why !== undefined)
        throw new MisuseError(`publish: cannot write ${JSON.stringify(rel)}: its segment ${why}`);
    });
    if (Buffer.byteLength(full) + ATOMIC_TEMP_EXTRA > MAX_PATH_BYTES)
      throw new MisuseError(
        `publish: cannot write ${JSON.stringify(rel)}: the path is longer than ${MAX_PATH_BYTES} bytes`,
      );
    const other = fileAt.get(foldPath(rel));
    if (other !== undefined && !Buffer.from(other[1]).equals(Buffer.from(data)))
      throw new MisuseError(
        `publish: ${other[0]} and ${rel} would be one file on some file systems`,
      );
    fileAt.set(foldPath(rel), [rel, data]);
    for (let i = 1; i < segments.length; i++) {
      const folder = segments.slice(0, i).join('/');
      folders.set(foldPath(folder), folder);
    }
  }
  const st = await stat(base).catch(() => undefined);
  if (st !== undefined && !st.isDirectory())
    throw new MisuseError(`publish: ${outDir} is not a folder`);
  for (const [folded, folder] of folders) {
    const file = fileAt.get(folded);
    if (file !== undefined)
      throw new MisuseError(`publish: ${file[0]} would be both a file and a folder (${folder}/…)`);
    const at = await lstat(join(base, folder)).catch(() => undefined);
    if (at !== undefined && !at.isDirectory())
      throw new MisuseError(
        `publish: ${join(outDir, folder)} is already ${at.isFile() ? 'a file' : 'a symbolic link or special file'}, not a folder`,
      );
  }
  const unchanged = new Set<string>();
  for (const [rel, data] of files) {
    const full = join(base, rel);
    const at = await lstat(full).catch(() => undefined);
    if (at === undefined) continue;
    if (!at.isFile())
      throw new MisuseError(
        `publish: ${join(outDir, rel)} is already ${at.isDirectory() ? 'a folder' : 'a symbolic link or special file'}, not a file: remove it first`,
      );
    if (at.size === data.length && Buffer.from(await readFile(full)).equals(Buffer.from(data)))
      unchanged.add(rel);
  }
  return unchanged;
}

/** verifyAsClient runs the client workflow over the files about to be published. */
function verifyAsClient(
  files: Map<string, Uint8Array>,
  timestamp: Uint8Array,
  rootVersions: number[],
  roles: Array<{ name: string; delegator: string }>,
  consistent: boolean,
  now: number,
): void {
  const get = (name: string) => {
    const b = files.get(name);
    if (b === undefined) throw new MisuseError(`publish: ${name} is missing`);
    return b;
  };
  const set = new TrustedMetadataSet(get(`${rootVersions[0]}.root.json`), now, {
    backend: nodeBackend,
  });
  for (const v of rootVersions.slice(1)) set.updateRoot(get(`${v}.root.json`));
  const ts = set.updateTimestamp(timestamp);
  set.updateSnapshot(
    get(consistent ? `${ts.signed.snapshotMeta.version}.snapshot.json` : 'snapshot.json'),
  );
  const verified = new Map<string, Metadata<Targets>>();
  for (const { name, delegator } of roles) {
    const version = set.snapshot?.signed.roleMeta(name)?.version;
    const bytes = get(consistent ? `${version}.${roleFileName(name)}` : roleFileName(name));
    const md =
      delegator === 'root'
        ? set.updateTargets(bytes)
        : set.updateDelegatedTargets(bytes, name, verified.get(delegator) as Metadata<Targets>);
    verified.set(name, md);
    for (const target of md.signed.targets.values()) {
      const h = target.hashes.sha256;
      const content =
        h &&
        files.get(`targets/${consistent ? consistentTargetName(target.path, h) : target.path}`);
      if (content) checkLengthAndHashes(content, target, target.path, nodeBackend);
    }
  }
}
