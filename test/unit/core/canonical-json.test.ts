/**
 * canonicalize / canonicalString: the OLPC canonical JSON vector table (checked against
 * securesystemslib's encode_canonical, see test/vectors/canonical-json/SOURCE.md), refusals of
 * values JSON cannot hold, and property tests against parseJson and an independent code-point sort.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  canonicalize,
  canonicalString,
  compareCodePoints,
  sortKeys,
} from '../../../src/core/canonical-json.js';
import { FormatError } from '../../../src/core/errors.js';
import { type JsonValue, parseJson } from '../../../src/core/json.js';

interface Vector {
  name: string;
  source: string;
  value: JsonValue;
  expected: string;
  expected_hex?: string;
  tufjs_expected?: string;
  note?: string;
}

// dist/test/unit/core/ -> repository root
const VECTORS_URL = new URL(
  '../../../../test/vectors/canonical-json/vectors.json',
  import.meta.url,
);
const vectorsText = readFileSync(VECTORS_URL, 'utf8');
// JSON.parse, not parseJson, so the table does not depend on the parser under test.
const vectors = (JSON.parse(vectorsText) as { vectors: Vector[] }).vectors;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** utf16Canonical is canonical JSON with keys in JS default (UTF-16 code unit) order, as tuf-js. */
function utf16Canonical(v: JsonValue): string {
  if (Array.isArray(v)) return `[${v.map(utf16Canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${quote(k)}:${utf16Canonical(v[k] as JsonValue)}`).join(',')}}`;
  }
  if (typeof v === 'string') return quote(v);
  return String(v);
}
function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** codePointOrder is an independent oracle: compares arrays of code points. */
function codePointOrder(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0) as number);
  const y = Array.from(b, (c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  }
  return x.length - y.length;
}

/** outsideStrings returns the characters of a JSON text that are not inside a string literal. */
function outsideStrings(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else {
      out += c;
    }
  }
  assert.equal(inString, false, 'unterminated string');
  return out;
}

// -- arbitraries ---------------------------------------------------------------------------------

/** hasC0 says whether a string holds a C0 control character (U+0000–U+001F). */
function hasC0(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x20) return true;
  return false;
}

const textArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.string({ unit: 'binary-ascii', maxLength: 8 }),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
  fc.constantFrom('"', '\\', '\\"', '\n', '\u2028', '\u0000', '\u007f', '\uffff', '\u{10000}'),
);
const keyArb = fc.oneof(
  textArb,
  fc.constantFrom('', 'a', 'A', 'b', '__proto__', 'constructor', 'toString', '\uffff', '\u{10000}'),
);

type Arbs = {
  json: JsonValue;
  leaf: JsonValue;
  arr: JsonValue[];
  obj: Record<string, JsonValue>;
};
/** makeJsonArb builds JSON-like values whose strings and keys come from `text` and `key`. */
function makeJsonArb(
  text: fc.Arbitrary<string>,
  key: fc.Arbitrary<string>,
): fc.Arbitrary<JsonValue> {
  return fc.letrec<Arbs>((tie) => ({
    json: fc.oneof({ depthSize: 'small' }, tie('leaf'), tie('arr'), tie('obj')),
    leaf: fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer({ min: -1000, max: 1000 }),
      fc.maxSafeInteger(),
      text,
    ),
    arr: fc.array(tie('json'), { maxLength: 5 }),
    obj: fc.dictionary(key, tie('json'), { maxKeys: 6, noNullPrototype: true }),
  })).json;
}
/** Any JSON-like value, C0 control characters included. */
const jsonArb = makeJsonArb(textArb, keyArb);
/**
 * JSON-like values without C0 control characters: canonical JSON writes those raw, which strict
 * JSON (RFC 8259 §7) forbids, so only these values survive parseJson(canonicalString(v)).
 */
const parseableJsonArb = makeJsonArb(
  textArb.filter((s) => !hasC0(s)),
  keyArb.filter((s) => !hasC0(s)),
);
/** collectStrings lists every string and key in a value. */
function collectStrings(v: JsonValue, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) collectStrings(x, out);
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      collectStrings(x, out);
    }
  }
  return out;
}

/** The same value with every object's keys inserted in reverse order. */
function reverseKeys(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, JsonValue> = {};
  for (const k of Object.keys(v).reverse()) {
    Object.defineProperty(out, k, {
      value: reverseKeys(v[k] as JsonValue),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

describe('canonical JSON', () => {
  describe('vector table (test/vectors/canonical-json)', () => {
    it('has the vectors', () => {
      assert.ok(vectors.length >= 60, `only ${vectors.length} vectors`);
    });

    it('is self-consistent: expected_hex is the UTF-8 of expected', () => {
      for (const v of vectors) {
        if (v.expected_hex === undefined) continue;
        assert.equal(Buffer.from(v.expected, 'utf8').toString('hex'), v.expected_hex, v.name);
      }
    });

    it('reads the same with parseJson as with JSON.parse', () => {
      assert.deepEqual(parseJson(vectorsText), JSON.parse(vectorsText));
    });

    for (const v of vectors) {
      it(`${v.name}`, () => {
        assert.equal(canonicalString(v.value), v.expected);
        const bytes = canonicalize(v.value);
        assert.ok(bytes instanceof Uint8Array);
        assert.equal(hex(bytes), v.expected_hex ?? Buffer.from(v.expected, 'utf8').toString('hex'));
        if (hasC0(v.expected)) {
          // Raw control characters make canonical JSON invalid strict JSON: parseJson refuses it.
          assert.throws(() => parseJson(bytes), FormatError);
        } else {
          // Otherwise the expected output is itself strict JSON for the same value.
          assert.deepEqual(parseJson(bytes), v.value);
        }
      });
    }

    it('the tuf-js column is UTF-16 code-unit order, and tufa differs from it there', () => {
      const differing = vectors.filter((v) => v.tufjs_expected !== undefined);
      assert.ok(differing.length >= 3);
      for (const v of vectors) {
        const utf16 = utf16Canonical(v.value);
        if (v.tufjs_expected === undefined) {
          assert.equal(utf16, v.expected, `${v.name}: UTF-16 order agrees here`);
        } else {
          assert.equal(utf16, v.tufjs_expected, v.name);
          assert.notEqual(canonicalString(v.value), v.tufjs_expected, v.name);
        }
      }
    });
  });

  describe('values outside the vector file', () => {
    it('writes -0 as 0', () => {
      assert.equal(canonicalString(-0), '0');
      assert.equal(canonicalString([-0, { a: -0 }]), '[0,{"a":0}]');
    });

    it('accepts null-prototype objects', () => {
      const o = Object.create(null) as Record<string, JsonValue>;
      o.b = 1;
      o.a = [];
      assert.equal(canonicalString(o), '{"a":[],"b":1}');
    });

    it('keeps an own __proto__ key and ignores symbol keys', () => {
      const o = JSON.parse('{"__proto__":{"x":1},"a":2}') as Record<string | symbol, unknown>;
      o[Symbol('s')] = 3;
      assert.equal(canonicalString(o), '{"__proto__":{"x":1},"a":2}');
    });

    it('1e3 as a number is 1000: JS cannot tell them apart, so it is written as 1000', () => {
      // The text "1e3" is refused by parseJson (see json.test.ts); the number value is an integer.
      assert.equal(canonicalString(1e3), '1000');
      assert.equal(canonicalString({ n: 1.5e3 }), '{"n":1500}');
    });
  });

  describe('refusals', () => {
    class Thing {
      a = 1;
    }
    const cases: [string, () => unknown, typeof TypeError | typeof RangeError, RegExp][] = [
      ['1.5', () => 1.5, RangeError, /\$ must be a safe integer, got 1\.5/],
      ['-0.5', () => -0.5, RangeError, /safe integer/],
      ['1e-3', () => 1e-3, RangeError, /safe integer/],
      ['1e21', () => 1e21, RangeError, /safe integer/],
      ['NaN', () => Number.NaN, RangeError, /got NaN/],
      ['Infinity', () => Number.POSITIVE_INFINITY, RangeError, /got Infinity/],
      ['-Infinity', () => Number.NEGATIVE_INFINITY, RangeError, /got -Infinity/],
      ['2**53', () => 2 ** 53, RangeError, /got 9007199254740992/],
      ['-(2**53)', () => -(2 ** 53), RangeError, /got -9007199254740992/],
      ['a float nested in an object', () => ({ a: { b: [0, 2.5] } }), RangeError, /\$\.a\.b\[1\]/],
      ['NaN in an array', () => [Number.NaN], RangeError, /\$\[0\]/],
      ['undefined', () => undefined, TypeError, /type undefined/],
      ['undefined as a property value', () => ({ a: undefined }), TypeError, /\$\.a has type/],
      ['undefined in an array', () => [1, undefined], TypeError, /\$\[1\]/],
      ['a hole in a sparse array', () => new Array(2), TypeError, /\$\[0\]/],
      ['a function', () => () => 1, TypeError, /type function/],
      ['a function as a value', () => ({ f() {} }), TypeError, /\$\.f has type function/],
      ['a symbol', () => Symbol('s'), TypeError, /type symbol/],
      ['a BigInt', () => 1n, TypeError, /type bigint/],
      ['a BigInt as a value', () => ({ n: 10n }), TypeError, /type bigint/],
      ['a Date', () => new Date(0), TypeError, /plain object, got Date/],
      ['a Map', () => new Map([['a', 1]]), TypeError, /plain object, got Map/],
      ['a Set', () => new Set([1]), TypeError, /plain object, got Set/],
      ['a RegExp', () => /x/, TypeError, /plain object/],
      ['a Uint8Array', () => new Uint8Array(1), TypeError, /plain object/],
      ['a boxed string', () => new String('x'), TypeError, /plain object/],
      ['a boxed number', () => new Number(1), TypeError, /plain object/],
      ['a class instance', () => new Thing(), TypeError, /plain object, got Thing/],
      ['an Error', () => new Error('x'), TypeError, /plain object/],
      ['a Date nested in an array', () => [{ d: new Date(0) }], TypeError, /\$\[0\]\.d/],
    ];
    for (const [name, make, cls, message] of cases) {
      it(`${name} → ${cls.name}`, () => {
        const value = make();
        for (const fn of [canonicalString, canonicalize]) {
          assert.throws(
            () => fn(value),
            (e: unknown) => {
              assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
              assert.equal((e as Error).constructor, cls, `exactly ${cls.name}`);
              assert.match((e as Error).message, message);
              return true;
            },
          );
        }
      });
    }
  });

  describe('key order', () => {
    it('compareCodePoints agrees in sign with a code-point oracle', () => {
      const s = fc.oneof(
        fc.string({ unit: 'binary', maxLength: 4 }),
        fc.string({
          unit: fc.constantFrom('a', '\ud7ff', '\ue000', '\uffff', '\u{10000}', '\u{10ffff}'),
          maxLength: 4,
        }),
      );
      fc.assert(
        fc.property(s, s, (a, b) => {
          assert.equal(Math.sign(compareCodePoints(a, b)), Math.sign(codePointOrder(a, b)));
        }),
        { numRuns: 2000 },
      );
    });

    it('sortKeys sorts by code point', () => {
      fc.assert(
        fc.property(
          fc.array(fc.string({ unit: 'binary', maxLength: 4 }), { maxLength: 12 }),
          (keys) => {
            const expected = [...keys].sort(codePointOrder);
            assert.deepEqual(sortKeys([...keys]), expected);
          },
        ),
        { numRuns: 1000 },
      );
    });
  });

  describe('properties', () => {
    it('parseJson(canonicalString(v)) deep-equals v (strings without C0 controls)', () => {
      fc.assert(
        fc.property(parseableJsonArb, (v) => {
          assert.deepStrictEqual(parseJson(canonicalString(v)), v);
          assert.deepStrictEqual(parseJson(canonicalize(v)), v);
        }),
        { numRuns: 1000 },
      );
    });

    it('is idempotent through parseJson (strings without C0 controls)', () => {
      fc.assert(
        fc.property(parseableJsonArb, (v) => {
          const once = canonicalString(v);
          assert.equal(canonicalString(parseJson(once)), once);
        }),
        { numRuns: 1000 },
      );
    });

    it('with a C0 control in a string, the output is refused by parseJson (FormatError only)', () => {
      fc.assert(
        fc.property(jsonArb, (v) => {
          const text = canonicalString(v);
          if (collectStrings(v).some(hasC0)) {
            assert.throws(() => parseJson(text), FormatError);
          } else {
            assert.deepStrictEqual(parseJson(text), v);
          }
        }),
        { numRuns: 1000 },
      );
    });

    it('canonicalize is the UTF-8 of canonicalString', () => {
      fc.assert(
        fc.property(jsonArb, (v) => {
          assert.equal(
            hex(canonicalize(v)),
            Buffer.from(canonicalString(v), 'utf8').toString('hex'),
          );
        }),
      );
    });

    it('does not depend on key insertion order', () => {
      fc.assert(
        fc.property(jsonArb, (v) => {
          assert.equal(canonicalString(reverseKeys(v)), canonicalString(v));
        }),
        { numRuns: 500 },
      );
    });

    it('has no whitespace outside strings', () => {
      fc.assert(
        fc.property(jsonArb, (v) => {
          assert.doesNotMatch(outsideStrings(canonicalString(v)), /\s/);
        }),
        { numRuns: 1000 },
      );
    });

    it('escapes nothing but " and \\', () => {
      fc.assert(
        fc.property(textArb, (s) => {
          const out = canonicalString(s);
          assert.equal(out, quote(s));
          // Dropping the backslash before each " and \ gives back the raw string.
          assert.equal(out.slice(1, -1).replace(/\\(["\\])/g, '$1'), s);
        }),
        { numRuns: 1000 },
      );
    });
  });
});

describe('canonicalString on cyclic values', () => {
  it('refuses a value that contains itself with a TypeError, not a stack overflow', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    assert.throws(() => canonicalString(a), /nested deeper than 512 levels/);
    const arr: unknown[] = [];
    arr.push(arr);
    assert.throws(() => canonicalString(arr), TypeError);
  });
});
