/**
 * What a workspace lacks before it can be published: signatures, fresh meta, unexpired roles, a
 * root chain that verifies, and target entries clients would get (publishable paths, not
 * shadowed on the delegation walk).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Metadata, type Root, verificationResult } from '../core/index.js';
import { nodeBackend } from '../crypto/index.js';
import { entryProblems, TargetWalker } from './target-walk.js';
import {
  DEFAULT_EXPIRY_DAYS,
  roleFileName,
  roleNameProblem,
  sameJson,
  type TopRole,
  Workspace,
} from './workspace.js';

/** A quarter of the role's usual lifetime, at most a week. */
function soonMs(role: string): number {
  const days =
    DEFAULT_EXPIRY_DAYS[Workspace.typeOf(role) === 'targets' ? 'targets' : (role as TopRole)];
  return Math.min((days * DAY) / 4, 7 * DAY);
}

/** One threshold a role must meet (root after a rotation has two). */
export interface ThresholdStatus {
  what: string;
  threshold: number;
  /** Key IDs whose signature counts. */
  signed: string[];
  /** Key IDs that could still sign. */
  unsigned: string[];
  /** Signatures still needed. */
  missing: number;
}

export interface RoleStatus {
  role: string;
  version: number;
  expires: string;
  expired: boolean;
  /** Expires within a quarter of its usual lifetime (at most a week ahead). */
  expiresSoon: boolean;
  thresholds: ThresholdStatus[];
  problems: string[];
}

export interface RepositoryStatus {
  roles: RoleStatus[];
  /** Whether the repository can be published as it is. */
  ready: boolean;
  problems: string[];
}

const DAY = 86_400_000;

/** repositoryStatus checks every role of the workspace. */
export async function repositoryStatus(ws: Workspace): Promise<RepositoryStatus> {
  const targetsRoles = (await ws.targetsRoles()).map((r) => r.name);
  const names = ['root', ...targetsRoles, 'snapshot', 'timestamp'];
  // role files may come from others (a delegated team signs its own): every entry is checked
  const delegationIssues = await delegationProblems(ws, targetsRoles);
  const isFile = async (e: { hashes: Readonly<Record<string, string>> }) => {
    const h = e.hashes.sha256;
    if (h === undefined || !/^[0-9a-f]{64}$/.test(h)) return false;
    return stat(join(ws.contentDir, h)).then(
      () => true,
      () => false,
    );
  };
  const entries = await entryProblems(
    new TargetWalker((r) => ws.bytes(r), roleFileName),
    targetsRoles,
    (await ws.read('root')).signed.consistent_snapshot === true,
    isFile,
  ).catch((e: unknown) => {
    // e.g. the walk reached a role whose name is refused: flagged below, not a crash
    if (delegationIssues.length === 0) throw e;
    return new Map<string, string[]>();
  });
  const roles: RoleStatus[] = [];
  const verified = await ws.verifications(names);
  for (const role of names) {
    const env = await ws.read(role);
    const header = env.signed;
    const expiresAt = Date.parse(String(header.expires));
    const thresholds = (verified.get(role) ?? []).map((v) => ({
      what: v.what,
      threshold: v.threshold,
      signed: [...v.signed],
      unsigned: [...v.unsigned],
      missing: Math.max(0, v.threshold - v.signed.length),
    }));
    const problems: string[] = [];
    for (const t of thresholds) {
      if (t.missing > 0)
        problems.push(
          `${t.what}: needs ${t.missing} more signature(s) (${t.signed.length}/${t.threshold})`,
        );
    }
    problems.push(...(entries.get(role) ?? []));
    const expired = expiresAt <= ws.time;
    if (expired) problems.push(`${role}: expired at ${header.expires}`);
    roles.push({
      role,
      version: header.version as number,
      expires: String(header.expires),
      expired,
      expiresSoon: !expired && expiresAt - ws.time < soonMs(role),
      thresholds,
      problems,
    });
  }
  const problems = [
    ...(await rootChainProblems(ws)),
    ...delegationIssues,
    ...roles.flatMap((r) => r.problems),
  ];
  if (!sameJson((await ws.read('snapshot')).signed.meta, await ws.snapshotMeta())) {
    problems.push('snapshot: does not list the current targets roles: run `tufa repo snapshot`');
  }
  if (!sameJson((await ws.read('timestamp')).signed.meta, await ws.timestampMeta())) {
    problems.push('timestamp: does not point at the current snapshot: run `tufa repo timestamp`');
  }
  return { roles, ready: problems.length === 0, problems };
}

/**
 * delegationProblems checks the delegations every targets role makes (a team may write its own):
 * a delegated role name whose file would be another metadata file ({@link roleNameProblem}),
 * and path hash prefixes not in lower case (clients compare them with lower-case hex digests).
 */
async function delegationProblems(ws: Workspace, targetsRoles: string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const name of targetsRoles) {
    const d = Metadata.fromBytes(await ws.bytes(name), 'targets', roleFileName(name)).signed
      .delegations;
    for (const r of d?.roles ?? []) {
      const why = roleNameProblem(r.name);
      if (why !== undefined)
        problems.push(`${name}: delegates to ${JSON.stringify(r.name)}: ${why}: rename it`);
      const upper = (r.pathHashPrefixes ?? []).find((p) => p !== p.toLowerCase());
      if (upper !== undefined)
        problems.push(
          `${name}: delegates to ${r.name} by the path hash prefix ${JSON.stringify(upper)}: write it in lower case (some clients compare case-sensitively)`,
        );
    }
  }
  return problems;
}

/**
 * rootChainProblems checks the stored root versions (`N.root.json`) a client walks before the
 * current one (TUF 5.3.4): each is signed by a threshold of its own root keys and of the
 * previous version's, and no version is missing. The current root is checked with the roles.
 */
async function rootChainProblems(ws: Workspace): Promise<string[]> {
  const problems: string[] = [];
  const current = (await ws.roleHeader('root')).version;
  const versions = await ws.rootVersions();
  const newest = versions.at(-1);
  if (newest !== current) {
    problems.push(
      `root: root.json is v${current} but the newest N.root.json kept is ${newest === undefined ? 'none' : `v${newest}`}`,
    );
  }
  const kept = await ws.rootBytes(current);
  if (kept !== undefined && !Buffer.from(kept).equals(Buffer.from(await ws.bytes('root')))) {
    problems.push(`root: root.json and ${current}.root.json differ`);
  }
  let previous: Root | undefined;
  for (const v of versions) {
    if (previous !== undefined && v !== previous.version + 1) {
      problems.push(`root: ${previous.version + 1}.root.json is missing from the chain`);
    }
    const name = `${v}.root.json`;
    const md = Metadata.fromBytes((await ws.rootBytes(v)) as Uint8Array, 'root', name);
    if (md.signed.version !== v) problems.push(`root: ${name} holds version ${md.signed.version}`);
    if (v < current) {
      for (const [what, root] of [
        [`v${v}`, md.signed],
        ...(previous === undefined ? [] : [[`v${previous.version}`, previous] as const]),
      ] as const) {
        const r = verificationResult(md, root.role('root'), root.keyRing(nodeBackend));
        if (r.signed.length < r.threshold) {
          problems.push(
            `root: ${name} has ${r.signed.length}/${r.threshold} signatures of root ${what}'s keys; clients cannot get past it`,
          );
        }
      }
    }
    previous = md.signed;
  }
  return problems;
}
