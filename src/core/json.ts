/**
 * A strict JSON parser for signed metadata.
 *
 * `JSON.parse` is too lenient for data whose signature is checked over a re-encoding of what was
 * parsed: it turns `1.5` and `9007199254740993` into numbers that re-encode differently, lets a
 * later duplicate key silently replace an earlier one, and accepts lone UTF-16 surrogates that no
 * UTF-8 encoder can reproduce. This parser refuses all of these, so that what we verify and what we
 * use are one and the same value:
 *
 * - numbers are integers only (`-?(0|[1-9][0-9]*)`) within `Number.MAX_SAFE_INTEGER`;
 * - an object may not repeat a key;
 * - strings must be valid Unicode (no lone surrogates, raw or escaped);
 * - bytes must be valid UTF-8, without a byte order mark;
 * - nesting is limited (default 128 levels), so hostile input cannot exhaust the stack.
 *
 * Every refusal is a {@link FormatError} naming the offset and what was expected.
 */
import { compareCodePoints } from './canonical-json.js';
import { FormatError } from './errors.js';

/** A JSON value as produced by {@link parseJson}. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A JSON object as produced by {@link parseJson}. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Options of {@link parseJson}. */
export interface ParseJsonOptions {
  /** Maximum nesting of arrays and objects (default 128). */
  maxDepth?: number;
  /** Names the document in error messages (e.g. `timestamp.json`). */
  source?: string;
}

/** Where a top-level member's value lies in the text, and whether it is already canonical. */
export interface MemberSpan {
  /** UTF-16 offsets into the decoded text. */
  readonly start: number;
  readonly end: number;
  /**
   * True when the text of the value is exactly its canonical JSON: no whitespace, keys in code
   * point order, no escapes but `\"` and `\\`, no `-0`.
   */
  readonly canonical: boolean;
}

/** A parse that also located one top-level member. */
export interface ParsedWithSpan {
  readonly value: JsonValue;
  readonly text: string;
  readonly span: MemberSpan | undefined;
}

// ignoreBOM keeps a leading U+FEFF in the text, so bytes and strings follow one rule: refused.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * parseJson parses UTF-8 bytes or a string as strict JSON.
 * @param input - the document
 * @returns the parsed value
 * @throws {@link FormatError} when the document is not strict JSON; {@link RangeError} for a bad
 *   `maxDepth`
 */
export function parseJson(input: Uint8Array | string, options: ParseJsonOptions = {}): JsonValue {
  return parseJsonWithSpan(input, undefined, options).value;
}

/**
 * parseJsonWithSpan is {@link parseJson} that also reports where the value of the top-level
 * member `member` lies and whether its text is canonical already, so a caller can use those
 * bytes instead of re-encoding them.
 */
export function parseJsonWithSpan(
  input: Uint8Array | string,
  member: string | undefined,
  options: ParseJsonOptions = {},
): ParsedWithSpan {
  const maxDepth = options.maxDepth ?? 128;
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 0) {
    throw new RangeError(`maxDepth: expected a non-negative integer, got ${maxDepth}`);
  }
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = decoder.decode(input);
    } catch (cause) {
      throw new FormatError(`${options.source ?? 'JSON'}: not valid UTF-8`, { cause });
    }
  }
  const parser = new Parser(text, maxDepth, options.source ?? 'JSON', member);
  const value = parser.parseDocument();
  return { value, text, span: parser.span };
}

class Parser {
  private i = 0;
  /** Count of non-canonical constructs seen so far (whitespace, escapes, key order, -0). */
  private marks = 0;
  span: MemberSpan | undefined;

  constructor(
    private readonly s: string,
    private readonly maxDepth: number,
    private readonly source: string,
    private readonly member?: string,
  ) {}

  parseDocument(): JsonValue {
    this.skipWs();
    const v = this.parseValue(0);
    this.skipWs();
    if (this.i !== this.s.length) this.fail('end of document');
    return v;
  }

  private fail(expected: string): never {
    const got = this.i < this.s.length ? JSON.stringify(this.s[this.i]) : 'end of input';
    throw new FormatError(
      `${this.source}: invalid JSON at offset ${this.i}: expected ${expected}, got ${got}`,
    );
  }

  private skipWs(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    if (i !== this.i) this.marks++;
    this.i = i;
  }

  private parseValue(depth: number): JsonValue {
    const c = this.s.charCodeAt(this.i);
    switch (c) {
      case 0x7b: // {
        return this.parseObject(depth + 1);
      case 0x5b: // [
        return this.parseArray(depth + 1);
      case 0x22: // "
        return this.parseString();
      case 0x74: // t
        return this.literal('true', true);
      case 0x66: // f
        return this.literal('false', false);
      case 0x6e: // n
        return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
        return this.fail('a JSON value');
    }
  }

  private literal<T>(word: string, value: T): T {
    if (this.s.startsWith(word, this.i)) {
      this.i += word.length;
      return value;
    }
    return this.fail(word);
  }

  private parseNumber(): number {
    const s = this.s;
    const start = this.i;
    let i = start;
    if (s.charCodeAt(i) === 0x2d) i++;
    const first = s.charCodeAt(i);
    if (first === 0x30) {
      i++;
    } else if (first >= 0x31 && first <= 0x39) {
      while (i < s.length && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
    } else {
      this.i = i;
      this.fail('a digit');
    }
    const next = s.charCodeAt(i);
    if (next === 0x2e || next === 0x65 || next === 0x45) {
      this.i = start;
      throw new FormatError(
        `${this.source}: number at offset ${start} is not an integer (floats are not allowed in metadata)`,
      );
    }
    if (next >= 0x30 && next <= 0x39) {
      this.i = i;
      this.fail('no leading zeros');
    }
    const n = Number(s.slice(start, i));
    if (!Number.isSafeInteger(n)) {
      throw new FormatError(
        `${this.source}: integer at offset ${start} is outside the safe range (±${Number.MAX_SAFE_INTEGER})`,
      );
    }
    this.i = i;
    if (n === 0 && i - start > 1) this.marks++; // "-0" is written "0" canonically
    return n === 0 ? 0 : n; // no -0
  }

  private parseString(): string {
    const s = this.s;
    let i = this.i + 1;
    let out = '';
    let chunk = i;
    for (;;) {
      if (i >= s.length) {
        this.i = i;
        this.fail('closing quote');
      }
      const c = s.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) {
        this.i = i;
        this.fail('an escaped control character');
      }
      if (c === 0x5c) {
        out += s.slice(chunk, i);
        i = this.parseEscape(i, (piece) => {
          out += piece;
        });
        chunk = i;
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const lo = s.charCodeAt(i + 1);
        if (c > 0xdbff || !(lo >= 0xdc00 && lo <= 0xdfff)) {
          this.i = i;
          this.fail('valid Unicode (lone surrogate)');
        }
        i += 2;
        continue;
      }
      i++;
    }
    out += s.slice(chunk, i);
    this.i = i + 1;
    return out;
  }

  /** Parses the escape at `i` (a backslash), emits its text, returns the index after it. */
  private parseEscape(i: number, emit: (piece: string) => void): number {
    const s = this.s;
    const e = s.charCodeAt(i + 1);
    // canonical JSON escapes only `"` and `\`
    if (e !== 0x22 && e !== 0x5c) this.marks++;
    switch (e) {
      case 0x22:
        emit('"');
        return i + 2;
      case 0x5c:
        emit('\\');
        return i + 2;
      case 0x2f:
        emit('/');
        return i + 2;
      case 0x62:
        emit('\b');
        return i + 2;
      case 0x66:
        emit('\f');
        return i + 2;
      case 0x6e:
        emit('\n');
        return i + 2;
      case 0x72:
        emit('\r');
        return i + 2;
      case 0x74:
        emit('\t');
        return i + 2;
      case 0x75: {
        const hi = this.hex4(i + 2);
        if (hi >= 0xdc00 && hi <= 0xdfff) {
          this.i = i;
          this.fail('valid Unicode (lone low surrogate escape)');
        }
        if (hi >= 0xd800 && hi <= 0xdbff) {
          if (s.charCodeAt(i + 6) !== 0x5c || s.charCodeAt(i + 7) !== 0x75) {
            this.i = i;
            this.fail('valid Unicode (lone high surrogate escape)');
          }
          const lo = this.hex4(i + 8);
          if (!(lo >= 0xdc00 && lo <= 0xdfff)) {
            this.i = i;
            this.fail('valid Unicode (lone high surrogate escape)');
          }
          emit(String.fromCharCode(hi, lo));
          return i + 12;
        }
        emit(String.fromCharCode(hi));
        return i + 6;
      }
      default:
        this.i = i + 1;
        return this.fail('a valid escape');
    }
  }

  private hex4(at: number): number {
    const h = this.s.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) {
      this.i = at;
      this.fail('four hex digits');
    }
    return Number.parseInt(h, 16);
  }

  private checkDepth(depth: number): void {
    if (depth > this.maxDepth) {
      throw new FormatError(
        `${this.source}: nesting deeper than ${this.maxDepth} levels at offset ${this.i}`,
      );
    }
  }

  private parseArray(depth: number): JsonValue[] {
    this.checkDepth(depth);
    this.i++;
    const out: JsonValue[] = [];
    this.skipWs();
    if (this.s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return out;
    }
    for (;;) {
      this.skipWs();
      out.push(this.parseValue(depth));
      this.skipWs();
      const c = this.s.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i++;
      } else if (c === 0x5d) {
        this.i++;
        return out;
      } else {
        this.fail('"," or "]"');
      }
    }
  }

  private parseObject(depth: number): JsonObject {
    this.checkDepth(depth);
    this.i++;
    const out: JsonObject = {};
    this.skipWs();
    if (this.s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return out;
    }
    let previous: string | undefined;
    for (;;) {
      this.skipWs();
      if (this.s.charCodeAt(this.i) !== 0x22) this.fail('a string key');
      const keyAt = this.i;
      const key = this.parseString();
      if (Object.hasOwn(out, key)) {
        throw new FormatError(
          `${this.source}: duplicate key ${JSON.stringify(key)} at offset ${keyAt}`,
        );
      }
      // canonical JSON sorts keys by code point
      if (previous !== undefined && compareCodePoints(previous, key) > 0) this.marks++;
      previous = key;
      this.skipWs();
      if (this.s.charCodeAt(this.i) !== 0x3a) this.fail('":"');
      this.i++;
      this.skipWs();
      const spanned = depth === 1 && key === this.member;
      const start = this.i;
      const marks = this.marks;
      const value = this.parseValue(depth);
      if (spanned) this.span = { start, end: this.i, canonical: this.marks === marks };
      if (key === '__proto__') {
        Object.defineProperty(out, key, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else {
        out[key] = value;
      }
      this.skipWs();
      const c = this.s.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i++;
      } else if (c === 0x7d) {
        this.i++;
        return out;
      } else {
        this.fail('"," or "}"');
      }
    }
  }
}
