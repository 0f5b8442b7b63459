/** A role's signing keys and threshold, as root and delegations list them (TUF 4.3, 4.5). */
import type { JsonObject } from '../json.js';
import { Fields, withRest } from './fields.js';

/** Who may sign a role: key IDs and how many of them must. */
export interface RoleKeys {
  readonly keyids: readonly string[];
  readonly threshold: number;
}

/** A top-level role entry of root: `{keyids, threshold}`. */
export class Role implements RoleKeys {
  constructor(
    readonly keyids: readonly string[],
    readonly threshold: number,
    readonly unrecognized?: JsonObject,
  ) {}

  /** fromJSON reads a role; key IDs must be unique and the threshold at least 1. */
  static fromJSON(json: unknown, where: string): Role {
    const f = Fields.of(json as JsonObject, where);
    const keyids = f.stringArray('keyids', true);
    // TUF 4.3: threshold ≥ 1 (go-tuf CVE-2026-23992: threshold 0 verified anything)
    const threshold = f.int('threshold', 1);
    return new Role(keyids, threshold, f.rest());
  }

  toJSON(): JsonObject {
    return withRest({ keyids: [...this.keyids], threshold: this.threshold }, this.unrecognized);
  }
}
