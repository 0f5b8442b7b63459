/**
 * The signed envelope (TUF 4.2): `{"signatures": [...], "signed": {...}}`.
 *
 * Signatures are checked over the canonical JSON of the `signed` object *as parsed*, never over a
 * re-serialized model, so a field we do not model can never slip past a signature.
 */
import { canonicalize } from '../canonical-json.js';
import { FormatError } from '../errors.js';
import { type JsonObject, type JsonValue, parseJsonWithSpan } from '../json.js';

const encoder = new TextEncoder();

import type { RoleType } from './base.js';
import { describe, Fields, withRest } from './fields.js';
import { Root } from './root.js';
import { Snapshot } from './snapshot.js';
import { Targets } from './targets.js';
import { Timestamp } from './timestamp.js';

/** One signature of the envelope. */
export interface Signature {
  readonly keyid: string;
  /** The signature as written (hex in TUF). */
  readonly sig: string;
  readonly unrecognized?: JsonObject | undefined;
}

/** The model type of each role. */
export interface SignedTypes {
  root: Root;
  timestamp: Timestamp;
  snapshot: Snapshot;
  targets: Targets;
}

const PARSERS: { [K in RoleType]: (json: JsonValue, where: string) => SignedTypes[K] } = {
  root: Root.fromJSON,
  timestamp: Timestamp.fromJSON,
  snapshot: Snapshot.fromJSON,
  targets: Targets.fromJSON,
};

/** A parsed, not yet verified, metadata document. */
export class Metadata<T extends SignedTypes[RoleType] = SignedTypes[RoleType]> {
  private canonical?: Uint8Array;

  constructor(
    readonly signed: T,
    /** key ID → signature; a key ID appears at most once. */
    readonly signatures: ReadonlyMap<string, Signature>,
    /** The `signed` object exactly as parsed. */
    readonly signedJson: JsonObject,
    readonly unrecognized?: JsonObject,
  ) {}

  /**
   * fromBytes parses metadata bytes of the expected role type.
   * @param bytes - the document as received
   * @param type - the role type it must be (`_type`)
   * @param source - names the document in errors, e.g. `2.snapshot.json`
   * @throws {@link FormatError} when the bytes are not valid metadata of that type
   */
  static fromBytes<K extends RoleType>(
    bytes: Uint8Array | string,
    type: K,
    source: string = `${type}.json`,
  ): Metadata<SignedTypes[K]> {
    const { value, text, span } = parseJsonWithSpan(bytes, 'signed', { source });
    const md = Metadata.fromJSON(value, type, source);
    if (span?.canonical) {
      // The `signed` text is already its canonical JSON (compact, sorted, no other escapes):
      // those very bytes are what the signatures cover, so skip re-encoding them.
      md.canonical =
        typeof bytes !== 'string' && text.length === bytes.length
          ? bytes.slice(span.start, span.end) // ASCII: text offsets are byte offsets
          : encoder.encode(text.slice(span.start, span.end));
    }
    return md;
  }

  /** fromJSON is {@link fromBytes} for an already parsed document. */
  static fromJSON<K extends RoleType>(
    json: JsonValue,
    type: K,
    source: string = `${type}.json`,
  ): Metadata<SignedTypes[K]> {
    const f = Fields.of(json, source);
    const signedJson = f.object('signed');
    const sigs = f.raw('signatures');
    if (!Array.isArray(sigs))
      throw new FormatError(`${source}.signatures: expected an array, got ${describe(sigs)}`);
    const signatures = new Map<string, Signature>();
    for (const [i, s] of sigs.entries()) {
      const sf = Fields.of(s, `${source}.signatures[${i}]`);
      const keyid = sf.string('keyid');
      const sig = sf.string('sig');
      // TUF 4.2: a key ID appears at most once among the signatures (go-tuf GHSA-3633-5h82-39pq)
      if (signatures.has(keyid)) {
        throw new FormatError(`${source}.signatures: key ID ${keyid} signs more than once`);
      }
      signatures.set(keyid, { keyid, sig, unrecognized: sf.rest() });
    }
    const signed = PARSERS[type](signedJson, `${source}.signed`) as SignedTypes[K];
    return new Metadata(signed, signatures, signedJson, f.rest());
  }

  /** signedBytes is the canonical JSON of `signed` as parsed: what every signature covers. */
  get signedBytes(): Uint8Array {
    this.canonical ??= canonicalize(this.signedJson);
    return this.canonical;
  }

  /** toJSON writes the envelope from the model (used when signing; verification never uses it). */
  toJSON(): JsonObject {
    const signatures = [...this.signatures.values()].map((s) =>
      withRest({ keyid: s.keyid, sig: s.sig }, s.unrecognized),
    );
    return withRest({ signatures, signed: this.signed.toJSON() }, this.unrecognized);
  }
}
