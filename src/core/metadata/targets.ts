/** Targets metadata (TUF 4.5): target files and delegations, for `targets` and delegated roles. */
import type { JsonObject, JsonValue } from '../json.js';
import { headerToJSON, readHeader, Signed, type SignedHeader } from './base.js';
import { Delegations } from './delegations.js';
import { Fields } from './fields.js';
import { TargetFile } from './files.js';

export class Targets extends Signed {
  constructor(
    header: SignedHeader,
    readonly targets: Map<string, TargetFile>,
    readonly delegations?: Delegations,
    unrecognized?: JsonObject,
  ) {
    super(header, unrecognized);
  }

  static fromJSON(json: JsonValue, where = 'targets'): Targets {
    const f = Fields.of(json, where);
    const header = readHeader(f, 'targets');
    const obj = f.object('targets');
    const targets = new Map<string, TargetFile>();
    for (const path of Object.keys(obj)) {
      const v = obj[path];
      // the common shape, checked as strictly, without building error paths; anything else
      // takes the full reader, which names what is wrong
      const t =
        TargetFile.fromPlain(path, v) ??
        TargetFile.fromJSON(path, v, `${where}.targets[${JSON.stringify(path)}]`);
      targets.set(path, t);
    }
    const d = f.optionalObject('delegations');
    const delegations =
      d === undefined ? undefined : Delegations.fromJSON(d, `${where}.delegations`);
    return new Targets(header, targets, delegations, f.rest());
  }

  toJSON(): JsonObject {
    const targets: JsonObject = {};
    for (const [path, t] of this.targets) {
      Object.defineProperty(targets, path, {
        value: t.toJSON(),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    const body: JsonObject = { targets };
    if (this.delegations !== undefined) body.delegations = this.delegations.toJSON();
    return headerToJSON(this, body, this.unrecognized);
  }
}
