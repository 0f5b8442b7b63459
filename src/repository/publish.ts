/**
 * Publishing: a workspace becomes a static tree for any web server, laid out for consistent
 * snapshots (`N.root.json`, `V.targets.json`, `V.<role>.json`, `V.snapshot.json`,
 * `timestamp.json`, `targets/<dir>/<hash>.<name>`).
 *
 * Before anything is written, the whole tree is verified the way a client will verify it
 * (root chain, timestamp, snapshot, every targets role against its delegator, every target's
 * bytes); a repository a client would refuse is never published. Files are written atomically,
 * older versions are left in place for clients mid-update, and `timestamp.json` is written last
 * so that no client sees a timestamp pointing at files that are not there yet.
 */
import { stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import {
  checkLengthAndHashes,
  consistentTargetName,
  type Metadata,
  MisuseError,
  nodeBackend,
  parseJson,
  type Targets,
  TrustedMetadataSet,
} from '../core/index.js';
import { readIfExists, writeFileAtomic } from '../internal/index.js';
import { repositoryStatus } from './status.js';
import { checkTargetPath, foldPath } from './target-walk.js';
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

/** publishWorkspace verifies the workspace as a client would, then writes the static tree. */
export async function publishWorkspace(ws: Workspace, outDir: string): Promise<PublishResult> {
  const status = await repositoryStatus(ws);
  if (!status.ready) {
    throw new MisuseError(`not ready to publish:\n  ${status.problems.join('\n  ')}`);
  }
  const files = new Map<string, Uint8Array>();
  // two different contents for one path: refused, never the last one silently kept
  const put = (rel: string, data: Uint8Array) => {
    const had = files.get(rel);
    if (had !== undefined && !Buffer.from(had).equals(Buffer.from(data)))
      throw new MisuseError(`publish: two different files would be written to ${rel}`);
    files.set(rel, data);
  };
  const rootEnv = await ws.read('root');
  const consistent = rootEnv.signed.consistent_snapshot === true;
  const versions = await ws.rootVersions();
  for (const v of versions) {
    put(
      `${v}.root.json`,
      (await readIfExists(join(ws.metadataDir, `${v}.root.json`))) as Uint8Array,
    );
  }
  put('root.json', await ws.bytes('root'));
  const roles = await ws.targetsRoles();
  let targets = 0;
  for (const { name } of roles) {
    const bytes = await ws.bytes(name);
    const env = parseJson(bytes) as unknown as Envelope;
    put(consistent ? `${env.signed.version}.${roleFileName(name)}` : roleFileName(name), bytes);
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
      if (consistent) {
        for (const h of Object.values(entry.hashes))
          put(`targets/${consistentTargetName(path, h)}`, content);
      } else {
        put(`targets/${path}`, content);
      }
    }
  }
  const snapshot = await ws.bytes('snapshot');
  const snapVersion = (parseJson(snapshot) as unknown as Envelope).signed.version;
  files.set(consistent ? `${snapVersion}.snapshot.json` : 'snapshot.json', snapshot);
  const timestamp = await ws.bytes('timestamp');

  verifyAsClient(files, timestamp, versions, roles, consistent, ws.time);

  await checkOutputs(outDir, new Map([...files, ['timestamp.json', timestamp]]));
  await writeTree(outDir, files);
  // TUF 5.4.1: clients start from timestamp.json: it goes last
  await writeFileAtomic(join(outDir, 'timestamp.json'), timestamp);
  return { files: [...files.keys(), 'timestamp.json'], targets };
}

/**
 * checkOutputs checks the set of files a publish is about to write, before any is written:
 * every path is normalized (no empty, `.` or `..` segment); metadata is one plain name at the
 * top, targets resolve inside `targets/`; no two paths name one file on a case- or
 * normalization-insensitive file system (unless their bytes are equal); no path is both a file
 * and a folder, here or among the files already in the output folder.
 */
async function checkOutputs(outDir: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
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
  for (const [folded, folder] of folders) {
    const file = fileAt.get(folded);
    if (file !== undefined)
      throw new MisuseError(`publish: ${file[0]} would be both a file and a folder (${folder}/…)`);
    const st = await stat(join(base, folder)).catch(() => undefined);
    if (st !== undefined && !st.isDirectory())
      throw new MisuseError(`publish: ${join(outDir, folder)} is already a file, not a folder`);
  }
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
  const set = new TrustedMetadataSet(get(`${rootVersions[0]}.root.json`), now);
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
