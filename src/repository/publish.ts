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
import { join, resolve, sep } from 'node:path';
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
  const rootEnv = await ws.read('root');
  const consistent = rootEnv.signed.consistent_snapshot === true;
  const versions = await ws.rootVersions();
  for (const v of versions) {
    files.set(
      `${v}.root.json`,
      (await readIfExists(join(ws.metadataDir, `${v}.root.json`))) as Uint8Array,
    );
  }
  files.set('root.json', await ws.bytes('root'));
  const roles = await ws.targetsRoles();
  let targets = 0;
  for (const { name } of roles) {
    const bytes = await ws.bytes(name);
    const env = parseJson(bytes) as unknown as Envelope;
    files.set(
      consistent ? `${env.signed.version}.${roleFileName(name)}` : roleFileName(name),
      bytes,
    );
    for (const [path, entry] of Object.entries(
      env.signed.targets as Record<string, { hashes: Record<string, string> }>,
    )) {
      targets++;
      const sha256 = entry.hashes.sha256;
      const content =
        sha256 === undefined ? undefined : await readIfExists(join(ws.contentDir, sha256));
      if (content === undefined) continue; // e.g. an image manifest: the registry serves it
      if (consistent) {
        for (const h of Object.values(entry.hashes))
          files.set(`targets/${consistentTargetName(path, h)}`, content);
      } else {
        files.set(`targets/${path}`, content);
      }
    }
  }
  const snapshot = await ws.bytes('snapshot');
  const snapVersion = (parseJson(snapshot) as unknown as Envelope).signed.version;
  files.set(consistent ? `${snapVersion}.snapshot.json` : 'snapshot.json', snapshot);
  const timestamp = await ws.bytes('timestamp');

  verifyAsClient(files, timestamp, versions, roles, consistent, ws.time);

  const base = resolve(outDir);
  for (const rel of files.keys()) {
    if (!resolve(base, rel).startsWith(base + sep))
      throw new MisuseError(`target path escapes the output: ${rel}`);
  }
  await writeTree(outDir, files);
  // TUF 5.4.1: clients start from timestamp.json: it goes last
  await writeFileAtomic(join(outDir, 'timestamp.json'), timestamp);
  return { files: [...files.keys(), 'timestamp.json'], targets };
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
