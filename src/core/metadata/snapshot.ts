/** Snapshot metadata (TUF 4.4): the version of targets and of every delegated role. */
import type { JsonObject, JsonValue } from '../json.js';
import { headerToJSON, readHeader, Signed, type SignedHeader } from './base.js';
import { Fields } from './fields.js';
import { MetaFile } from './files.js';

export class Snapshot extends Signed {
  constructor(
    header: SignedHeader,
    /** `"<role>.json"` → its entry. */
    readonly meta: Map<string, MetaFile>,
    unrecognized?: JsonObject,
  ) {
    super(header, unrecognized);
  }

  static fromJSON(json: JsonValue, where = 'snapshot'): Snapshot {
    const f = Fields.of(json, where);
    const header = readHeader(f, 'snapshot');
    const obj = f.object('meta');
    const meta = new Map<string, MetaFile>();
    for (const name of Object.keys(obj)) {
      meta.set(name, MetaFile.fromJSON(obj[name], `${where}.meta.${name}`));
    }
    return new Snapshot(header, meta, f.rest());
  }

  /** roleMeta returns the entry of a targets role (`targets` or a delegated role name). */
  roleMeta(role: string): MetaFile | undefined {
    return this.meta.get(`${role}.json`);
  }

  toJSON(): JsonObject {
    const meta: JsonObject = {};
    for (const [name, m] of this.meta) {
      Object.defineProperty(meta, name, {
        value: m.toJSON(),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return headerToJSON(this, { meta }, this.unrecognized);
  }
}
