/**
 * Strict field reading for metadata objects. A {@link Fields} reader takes each known field with
 * its type checked, names the full path in any error, and hands back every field it was not
 * asked for, so models keep unknown fields and serialize back without loss.
 */
import { FormatError } from '../errors.js';
import type { JsonObject, JsonValue } from '../json.js';

/** describe names a JSON value's kind for error messages. */
export function describe(v: JsonValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string')
    return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** isObject tells whether a JSON value is an object (not null, not an array). */
export function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** asObject returns `v` as an object or throws a FormatError naming `where`. */
export function asObject(v: JsonValue | undefined, where: string): JsonObject {
  if (!isObject(v)) throw new FormatError(`${where}: expected an object, got ${describe(v)}`);
  return v;
}

/** Reads the fields of one JSON object, strictly typed, remembering which were read. */
export class Fields {
  private readonly taken = new Set<string>();

  constructor(
    readonly obj: JsonObject,
    readonly where: string,
  ) {}

  static of(v: JsonValue | undefined, where: string): Fields {
    return new Fields(asObject(v, where), where);
  }

  private fail(name: string, expected: string, got: JsonValue | undefined): never {
    throw new FormatError(`${this.where}.${name}: expected ${expected}, got ${describe(got)}`);
  }

  private get(name: string): JsonValue | undefined {
    this.taken.add(name);
    return Object.hasOwn(this.obj, name) ? this.obj[name] : undefined;
  }

  has(name: string): boolean {
    return Object.hasOwn(this.obj, name);
  }

  string(name: string): string {
    const v = this.get(name);
    if (typeof v !== 'string') this.fail(name, 'a string', v);
    return v;
  }

  nonEmptyString(name: string): string {
    const v = this.string(name);
    if (v.length === 0) this.fail(name, 'a non-empty string', v);
    return v;
  }

  int(name: string, min: number): number {
    const v = this.get(name);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      this.fail(name, `an integer ≥ ${min}`, v);
    }
    return v;
  }

  optionalInt(name: string, min: number): number | undefined {
    return this.has(name) ? this.int(name, min) : undefined;
  }

  bool(name: string): boolean {
    const v = this.get(name);
    if (typeof v !== 'boolean') this.fail(name, 'a boolean', v);
    return v;
  }

  optionalBool(name: string): boolean | undefined {
    return this.has(name) ? this.bool(name) : undefined;
  }

  object(name: string): JsonObject {
    const v = this.get(name);
    if (!isObject(v)) this.fail(name, 'an object', v);
    return v;
  }

  optionalObject(name: string): JsonObject | undefined {
    return this.has(name) ? this.object(name) : undefined;
  }

  /** stringArray reads an array of strings; `unique` refuses repeats. */
  stringArray(name: string, unique: boolean): string[] {
    const v = this.get(name);
    if (!Array.isArray(v)) this.fail(name, 'an array of strings', v);
    const seen = new Set<string>();
    for (const [i, item] of v.entries()) {
      if (typeof item !== 'string') {
        throw new FormatError(
          `${this.where}.${name}[${i}]: expected a string, got ${describe(item)}`,
        );
      }
      if (unique && seen.has(item)) {
        throw new FormatError(`${this.where}.${name}: ${JSON.stringify(item)} is listed twice`);
      }
      seen.add(item);
    }
    return v as string[];
  }

  /** raw returns a field as it is (for free-form fields like `custom`). */
  raw(name: string): JsonValue | undefined {
    return this.get(name);
  }

  /** rest returns the fields not read, or undefined when there are none. */
  rest(): JsonObject | undefined {
    let out: JsonObject | undefined;
    for (const k of Object.keys(this.obj)) {
      if (this.taken.has(k)) continue;
      out ??= {};
      Object.defineProperty(out, k, {
        value: this.obj[k],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
}

/** withRest copies unknown fields into a serialized object (known fields win). */
export function withRest(known: JsonObject, rest: JsonObject | undefined): JsonObject {
  if (rest === undefined) return known;
  const out: JsonObject = {};
  for (const k of Object.keys(rest)) {
    Object.defineProperty(out, k, {
      value: rest[k],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  for (const k of Object.keys(known)) {
    Object.defineProperty(out, k, {
      value: known[k],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * parseExpires reads an expiry and returns epoch milliseconds. TUF 4.3 writes
 * `YYYY-MM-DDTHH:MM:SSZ`; signed metadata in the wild also carries the other RFC 3339 forms
 * (sigstore's first roots: `2021-12-18T13:28:12.99008-06:00`; Go's `time.Time`), which name an
 * instant just as exactly, so they are read too. A time without a zone, or anything else, is a
 * FormatError, never "no expiry". tufa itself writes only the strict form ({@link formatExpires}).
 */
export function parseExpires(s: string, where: string): number {
  const m = RFC3339.exec(s);
  if (m === null) {
    throw new FormatError(
      `${where}: expected an expiry like 2030-01-01T00:00:00Z, got ${describe(s)}`,
    );
  }
  const base = utcTime(m.slice(1, 7).map(Number));
  if (base === undefined) {
    throw new FormatError(`${where}: ${JSON.stringify(s)} is not a real date and time`);
  }
  let t = base + Math.floor(Number(`0${m[7] ?? ''}`) * 1000);
  const zone = m[8] as string;
  if (zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const [oh, om] = zone.slice(1).split(':').map(Number) as [number, number];
    if (oh > 23 || om > 59) {
      throw new FormatError(`${where}: bad UTC offset in ${JSON.stringify(s)}`);
    }
    t -= sign * (oh * 60 + om) * 60_000;
  }
  return t;
}

/**
 * utcTime turns [year, month, day, hour, minute, second] (UTC) into epoch milliseconds, or
 * undefined when they are not a real date and time (Feb 30, 24:00, …). Years 0–99 stay years
 * 0–99 (Date.UTC would read them as 19xx).
 */
export function utcTime(parts: readonly number[]): number | undefined {
  const [y, mo, d, h, mi, se] = parts as [number, number, number, number, number, number];
  const back = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  back.setUTCFullYear(y);
  const real =
    back.getUTCFullYear() === y &&
    back.getUTCMonth() === mo - 1 &&
    back.getUTCDate() === d &&
    back.getUTCHours() === h &&
    back.getUTCMinutes() === mi &&
    back.getUTCSeconds() === se;
  return real ? back.getTime() : undefined;
}

/** formatExpires writes epoch milliseconds as a TUF expiry (whole seconds, UTC). */
export function formatExpires(ms: number): string {
  return `${new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}
