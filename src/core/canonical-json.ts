/**
 * OLPC canonical JSON, as TUF and securesystemslib define it.
 *
 * Rules: object keys sorted by Unicode code point; no whitespace; strings are emitted raw except
 * that `"` and `\` are escaped with a backslash (control characters and non-ASCII text are NOT
 * escaped); numbers are integers only; the result is UTF-8.
 *
 * This is the byte string every TUF signature covers. Floats, unsafe integers and values JSON
 * cannot hold are refused with a `TypeError`/`RangeError`: they are a caller's bug, since
 * {@link parseJson} never produces them.
 */
import type { JsonValue } from './json.js';

const encoder = new TextEncoder();
const NEEDS_ESCAPE = /["\\]/;
const ESCAPE_ALL = /["\\]/g;

/**
 * canonicalize encodes a JSON value as canonical JSON bytes.
 * @param value - a value made of null, booleans, safe integers, strings, arrays and plain objects
 * @returns the UTF-8 bytes of the canonical form
 * @throws {@link TypeError} for a value JSON cannot hold; {@link RangeError} for a float or
 *   unsafe integer
 * @example canonicalize({ b: 1, a: 'x"y' }) // bytes of {"a":"x\"y","b":1}
 */
export function canonicalize(value: unknown): Uint8Array {
  return encoder.encode(canonicalString(value));
}

/** canonicalString is {@link canonicalize} before UTF-8 encoding. */
export function canonicalString(value: unknown): string {
  const parts: string[] = [];
  try {
    write(value, parts, 0);
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    const path = `$${e.path.reverse().join('')}`;
    const msg = `canonical JSON: ${path} ${e.reason}`;
    throw e.range ? new RangeError(msg) : new TypeError(msg);
  }
  return parts.join('');
}

/** Deeper than any metadata; a cyclic value hits it instead of overflowing the stack. */
const MAX_DEPTH = 512;

/** A refused value; the path is collected while unwinding, so the hot path builds no strings. */
class Refusal {
  readonly path: string[] = [];
  constructor(
    readonly reason: string,
    readonly range = false,
  ) {}
}

function at(e: unknown, segment: string): unknown {
  if (e instanceof Refusal) e.path.push(segment);
  return e;
}

function write(v: unknown, out: string[], depth: number): void {
  if (depth > MAX_DEPTH) throw new Refusal(`is nested deeper than ${MAX_DEPTH} levels (cyclic?)`);
  switch (typeof v) {
    case 'string':
      out.push(quote(v));
      return;
    case 'number':
      if (!Number.isSafeInteger(v)) throw new Refusal(`must be a safe integer, got ${v}`, true);
      out.push(String(v));
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'object': {
      if (v === null) {
        out.push('null');
        return;
      }
      if (Array.isArray(v)) {
        out.push('[');
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out.push(',');
          try {
            write(v[i], out, depth + 1);
          } catch (e) {
            throw at(e, `[${i}]`);
          }
        }
        out.push(']');
        return;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new Refusal(`must be a plain object, got ${proto?.constructor?.name}`);
      }
      const obj = v as Record<string, unknown>;
      const keys = sortKeys(Object.keys(obj));
      out.push('{');
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        if (i > 0) out.push(',');
        out.push(quote(k), ':');
        try {
          write(obj[k], out, depth + 1);
        } catch (e) {
          throw at(e, `.${k}`);
        }
      }
      out.push('}');
      return;
    }
    default:
      throw new Refusal(`has type ${typeof v}, which JSON cannot hold`);
  }
}

function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? `"${s.replace(ESCAPE_ALL, '\\$&')}"` : `"${s}"`;
}

/**
 * sortKeys sorts strings by Unicode code point, as Python's `sorted` does. The default JS sort
 * compares UTF-16 code units, which differs only when a key holds a character above U+D7FF;
 * only then is the slower comparison used.
 */
export function sortKeys(keys: string[]): string[] {
  keys.sort();
  for (const k of keys) {
    for (let i = 0; i < k.length; i++) {
      if (k.charCodeAt(i) >= 0xd800) return keys.sort(compareCodePoints);
    }
  }
  return keys;
}

/** compareCodePoints orders two strings by Unicode code point. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–DFFF) encode code points above U+FFFF: move them above U+E000–FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Re-export of the JSON value type for callers that only canonicalize. */
export type { JsonValue };
