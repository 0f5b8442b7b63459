/**
 * The delegation search of TUF 5.6.7 as a generator, so the same logic serves any I/O: it yields
 * the role it needs next, and the caller resumes it with that role's verified metadata.
 *
 * Rules (as python-tuf's `_preorder_depth_first_walk`):
 * - pre-order depth-first, children in the order the delegating role lists them (an array, so
 *   role names that look like integers keep their place);
 * - a (role, delegator) pair is visited once, so cycles end;
 * - at most `maxDelegations` roles are visited (default 32);
 * - a terminating delegation that matches ends the search below it: no sibling or earlier
 *   pending role is searched after it;
 * - a role is only asked for when the path is delegated to it (path pattern, hash prefix or
 *   succinct bin).
 */
import type { CryptoBackend } from './crypto/backend.js';
import { TargetPathHash } from './metadata/delegations.js';
import type { Metadata } from './metadata/envelope.js';
import type { TargetFile } from './metadata/files.js';
import type { Targets } from './metadata/targets.js';
import type { TrustedMetadataSet } from './trusted-set.js';

/** Default bound of roles visited in one search. */
export const MAX_DELEGATIONS = 32;

/** A role the walk needs: load `role`, verified against `delegator`. */
export interface RoleRequest {
  readonly role: string;
  /** Name of the delegating role (`root` for `targets`). */
  readonly parent: string;
  /** The delegating role's verified metadata, or `root` for the top-level targets. */
  readonly delegator: Metadata<Targets> | 'root';
}

/** Where a target was found. */
export interface FoundTarget {
  readonly target: TargetFile;
  /** The role that lists it. */
  readonly role: string;
}

/** Options of the walk. */
export interface WalkOptions {
  maxDelegations?: number;
  /** Crypto backend, for the path hashes of hash-bin delegations. */
  backend: CryptoBackend;
}

/**
 * walkDelegations searches the delegation tree for `targetPath`.
 * @returns a generator yielding {@link RoleRequest}s; resume it with the requested role's
 *   verified metadata; it returns the target found, or undefined
 */
export function* walkDelegations(
  targetPath: string,
  options: WalkOptions,
): Generator<RoleRequest, FoundTarget | undefined, Metadata<Targets>> {
  const hash = new TargetPathHash(targetPath, options.backend);
  let budget = options.maxDelegations ?? MAX_DELEGATIONS;
  const stack: RoleRequest[] = [{ role: 'targets', parent: 'root', delegator: 'root' }];
  const visited = new Set<string>();
  while (budget > 0 && stack.length > 0) {
    const req = stack.pop() as RoleRequest;
    const key = `${req.parent}\u0000${req.role}`;
    // TUF 5.6.7.1: a role visited before is skipped (cycles)
    if (visited.has(key)) continue;
    const md = yield req;
    const target = md.signed.targets.get(targetPath);
    if (target !== undefined) return { target, role: req.role };
    visited.add(key);
    budget--;
    const delegations = md.signed.delegations;
    if (delegations === undefined) continue;
    // TUF 5.6.7.2: search the delegations in order of appearance
    const children: RoleRequest[] = [];
    for (const child of delegations.rolesForTarget(hash)) {
      children.push({ role: child.name, parent: req.role, delegator: md });
      // TUF 5.6.7.2.1: a terminating delegation ends the search after its subtree
      if (child.terminating) {
        stack.length = 0;
        break;
      }
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as RoleRequest);
  }
  return undefined;
}

/**
 * findTarget runs the walk against a trusted set whose snapshot is loaded, loading each role it
 * needs with `load(role)` (bytes, e.g. from a cache or a repository) unless it was verified
 * against the same delegator already.
 * @returns the target and the role that lists it, or undefined when no role on the walk does
 * @throws whatever {@link TrustedMetadataSet.updateDelegatedTargets} throws for a role that
 *   fails verification (`THRESHOLD_NOT_MET`, `LENGTH_OR_HASH_MISMATCH`, `BAD_VERSION`,
 *   `EXPIRED`, `METADATA_FORMAT`, …), and whatever `load` throws
 */
export function findTarget(
  set: TrustedMetadataSet,
  targetPath: string,
  load: (role: string) => Uint8Array,
  options: WalkOptions,
): FoundTarget | undefined {
  const walk = walkDelegations(targetPath, options);
  let step = walk.next();
  while (!step.done) {
    const { role, delegator } = step.value;
    let md: Metadata<Targets> | undefined;
    if (delegator === 'root') md = set.targets ?? set.updateTargets(load(role));
    else
      md =
        set.verifiedChild(delegator, role) ??
        set.updateDelegatedTargets(load(role), role, delegator);
    step = walk.next(md);
  }
  return step.value;
}
