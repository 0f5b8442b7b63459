/**
 * Builds a small, complete TUF repository in memory: root, targets, snapshot and timestamp,
 * signed by the given signers, laid out for consistent snapshots. This is the seed of the
 * repository tooling; the demo and tests use it.
 */
import { createHash } from 'node:crypto';
import {
  canonicalize,
  consistentTargetName,
  formatExpires,
  type JsonObject,
  type JsonValue,
} from '../core/index.js';
import { sha256Hex } from '../crypto/index.js';
import type { Signer } from './signer.js';

/** Signers of each top-level role, with the role's threshold (default: all of them). */
export interface RoleSigning {
  readonly signers: readonly Signer[];
  readonly threshold?: number;
}

/** A target to list, with its content. */
export interface TargetInput {
  readonly path: string;
  readonly content: Uint8Array;
  readonly custom?: JsonValue;
}

/** Options of {@link buildRepository}. */
export interface BuildOptions {
  readonly root: RoleSigning;
  readonly targets: RoleSigning;
  readonly snapshot: RoleSigning;
  readonly timestamp: RoleSigning;
  readonly files: readonly TargetInput[];
  /** The signing time, epoch ms; expiries count from it. */
  readonly now: number;
  /** Expiry in days per role (defaults: root 365, targets 90, snapshot 7, timestamp 1). */
  readonly expiresDays?: Partial<Record<'root' | 'targets' | 'snapshot' | 'timestamp', number>>;
  /** Versions to write (default 1 each), e.g. to publish a later timestamp. */
  readonly versions?: Partial<Record<'root' | 'targets' | 'snapshot' | 'timestamp', number>>;
}

const DAY = 86_400_000;
const SPEC_VERSION = '1.0.34';

/** signEnvelope signs a `signed` object with each signer and returns the document bytes. */
export async function signEnvelope(
  signed: JsonObject,
  signers: readonly Signer[],
): Promise<Uint8Array> {
  const data = canonicalize(signed);
  const signatures = [];
  for (const s of signers) {
    signatures.push({ keyid: s.keyid, sig: Buffer.from(await s.sign(data)).toString('hex') });
  }
  return new TextEncoder().encode(`${JSON.stringify({ signatures, signed }, null, 2)}\n`);
}

/**
 * buildRepository signs a repository and returns its files: `N.root.json`, `V.targets.json`,
 * `V.snapshot.json`, `timestamp.json` and `targets/<dir>/<sha256>.<name>` (relative paths).
 */
export async function buildRepository(o: BuildOptions): Promise<Map<string, Uint8Array>> {
  const exp = (role: 'root' | 'targets' | 'snapshot' | 'timestamp', dflt: number) =>
    formatExpires(o.now + (o.expiresDays?.[role] ?? dflt) * DAY);
  const ver = (role: 'root' | 'targets' | 'snapshot' | 'timestamp') => o.versions?.[role] ?? 1;
  const header = (
    type: string,
    role: 'root' | 'targets' | 'snapshot' | 'timestamp',
    dflt: number,
  ) => ({
    _type: type,
    spec_version: SPEC_VERSION,
    version: ver(role),
    expires: exp(role, dflt),
  });
  const files = new Map<string, Uint8Array>();

  const keys: JsonObject = {};
  const roles: JsonObject = {};
  for (const name of ['root', 'targets', 'snapshot', 'timestamp'] as const) {
    const r = o[name];
    for (const s of r.signers) keys[s.keyid] = s.publicKey.toJSON();
    roles[name] = {
      keyids: r.signers.map((s) => s.keyid),
      threshold: r.threshold ?? r.signers.length,
    };
  }
  const root = { ...header('root', 'root', 365), consistent_snapshot: true, keys, roles };
  files.set(`${ver('root')}.root.json`, await signEnvelope(root, o.root.signers));

  const targetsMap: JsonObject = {};
  for (const f of o.files) {
    const sha256 = sha256Hex(f.content);
    const sha512 = createHash('sha512').update(f.content).digest('hex');
    const entry: JsonObject = { length: f.content.length, hashes: { sha256, sha512 } };
    if (f.custom !== undefined) entry.custom = f.custom;
    targetsMap[f.path] = entry;
    files.set(`targets/${consistentTargetName(f.path, sha256)}`, f.content);
  }
  const targets = { ...header('targets', 'targets', 90), targets: targetsMap };
  const targetsBytes = await signEnvelope(targets, o.targets.signers);
  files.set(`${ver('targets')}.targets.json`, targetsBytes);

  const metaOf = (version: number, bytes: Uint8Array) => ({
    version,
    length: bytes.length,
    hashes: { sha256: sha256Hex(bytes) },
  });
  const snapshot = {
    ...header('snapshot', 'snapshot', 7),
    meta: { 'targets.json': metaOf(ver('targets'), targetsBytes) },
  };
  const snapshotBytes = await signEnvelope(snapshot, o.snapshot.signers);
  files.set(`${ver('snapshot')}.snapshot.json`, snapshotBytes);

  const timestamp = {
    ...header('timestamp', 'timestamp', 1),
    meta: { 'snapshot.json': metaOf(ver('snapshot'), snapshotBytes) },
  };
  files.set('timestamp.json', await signEnvelope(timestamp, o.timestamp.signers));
  return files;
}
