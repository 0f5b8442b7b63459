/** Timestamp metadata (TUF 4.6): the current snapshot's version (and optionally length/hashes). */
import { FormatError } from '../errors.js';
import type { JsonObject, JsonValue } from '../json.js';
import { headerToJSON, readHeader, Signed, type SignedHeader } from './base.js';
import { Fields } from './fields.js';
import { MetaFile } from './files.js';

export class Timestamp extends Signed {
  constructor(
    header: SignedHeader,
    readonly snapshotMeta: MetaFile,
    unrecognized?: JsonObject,
  ) {
    super(header, unrecognized);
  }

  static fromJSON(json: JsonValue, where = 'timestamp'): Timestamp {
    const f = Fields.of(json, where);
    const header = readHeader(f, 'timestamp');
    const meta = f.object('meta');
    const names = Object.keys(meta);
    if (names.length !== 1 || names[0] !== 'snapshot.json') {
      throw new FormatError(
        `${where}.meta: expected exactly one entry "snapshot.json", got ${JSON.stringify(names)}`,
      );
    }
    return new Timestamp(
      header,
      MetaFile.fromJSON(meta['snapshot.json'], `${where}.meta.snapshot.json`),
      f.rest(),
    );
  }

  toJSON(): JsonObject {
    return headerToJSON(
      this,
      { meta: { 'snapshot.json': this.snapshotMeta.toJSON() } },
      this.unrecognized,
    );
  }
}
