/**
 * parseJson: strict JSON for signed metadata. Table-driven accept/refuse cases, hostile nesting,
 * `__proto__`, and fuzzing (only FormatError ever escapes; agreement with JSON.parse).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalString } from '../../../src/core/canonical-json.js';
import { FormatError, RepositoryError, TufaError } from '../../../src/core/errors.js';
import { type JsonObject, type JsonValue, parseJson } from '../../../src/core/json.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** refuses asserts parseJson throws a FormatError whose message matches `message`. */
function refuses(input: string | Uint8Array, message: RegExp, options = {}): FormatError {
  let caught: unknown;
  try {
    parseJson(input, options);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, 'parseJson accepted the input');
  assert.ok(caught instanceof FormatError, `expected FormatError, got ${String(caught)}`);
  assert.ok(caught instanceof RepositoryError && caught instanceof TufaError);
  assert.equal(caught.code, 'METADATA_FORMAT');
  assert.match(caught.message, message);
  return caught;
}

/** isWellFormed says whether a string has no lone surrogates (String#isWellFormed is ES2024). */
function isWellFormed(s: string): boolean {
  return !/\p{Surrogate}/u.test(s);
}

/** jsonParse is JSON.parse reading -0 as 0, as parseJson does. */
function jsonParse(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown) => (Object.is(v, -0) ? 0 : v));
}

/** assertJsonValue checks a parse result holds only what canonical JSON can write. */
function assertJsonValue(v: unknown): void {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return;
  if (typeof v === 'number') {
    assert.ok(Number.isSafeInteger(v) && !Object.is(v, -0), `number ${v}`);
    return;
  }
  if (Array.isArray(v)) {
    for (const x of v) assertJsonValue(x);
    return;
  }
  assert.equal(typeof v, 'object');
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  for (const x of Object.values(v as object)) assertJsonValue(x);
}

// -- accepted -------------------------------------------------------------------------------------

const accepted: [string, string, JsonValue][] = [
  ['zero', '0', 0],
  ['minus zero (read as 0)', '-0', 0],
  ['negative', '-42', -42],
  ['MAX_SAFE_INTEGER', '9007199254740991', Number.MAX_SAFE_INTEGER],
  ['MIN_SAFE_INTEGER', '-9007199254740991', Number.MIN_SAFE_INTEGER],
  ['true', 'true', true],
  ['false', 'false', false],
  ['null', 'null', null],
  ['empty string', '""', ''],
  ['JSON whitespace around a value', ' \t\r\n1 \t\r\n', 1],
  ['empty array', '[]', []],
  ['empty object', '{}', {}],
  ['empty containers with whitespace', '[ ]', []],
  ['empty object with whitespace', '{ \n }', {}],
  ['whitespace everywhere', ' { "a" : [ 1 , { } ] , "b" : null } ', { a: [1, {}], b: null }],
  ['nested arrays', '[1,[2,[3,[]]]]', [1, [2, [3, []]]]],
  ['nested objects', '{"a":{"b":{"c":[]}}}', { a: { b: { c: [] } } }],
  ['simple escapes', '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\\/\b\f\n\r\t'],
  ['\\u escapes', '"\\u0041\\u00e9\\u4E2D"', 'Aé中'],
  ['escaped U+0000', '"\\u0000"', '\u0000'],
  ['escaped surrogate pair', '"\\ud83d\\ude00"', '😀'],
  ['escaped surrogate pair, upper case', '"\\uD800\\uDC00"', '\u{10000}'],
  ['raw astral character', '"😀"', '😀'],
  ['raw U+007F', '"\u007f"', '\u007f'],
  ['raw U+2028 and U+2029', '"\u2028\u2029"', '\u2028\u2029'],
  ['raw U+FFFF', '"\uffff"', '\uffff'],
  ['escaped U+FFFF', '"\\uffff"', '\uffff'],
  ['keys that differ only in case', '{"a":1,"A":2}', { a: 1, A: 2 }],
  ['same key in different objects', '{"a":1,"b":{"a":2}}', { a: 1, b: { a: 2 } }],
  ['same key in array elements', '[{"a":1},{"a":2}]', [{ a: 1 }, { a: 2 }]],
  ['empty key', '{"":1}', { '': 1 }],
  [
    'Object.prototype names as keys',
    '{"constructor":1,"toString":2,"hasOwnProperty":3,"valueOf":{}}',
    { constructor: 1, toString: 2, hasOwnProperty: 3, valueOf: {} },
  ],
  [
    'TUF-like document',
    '{"signed":{"_type":"timestamp","version":1,"meta":{"snapshot.json":{"version":1}}},"signatures":[]}',
    {
      signed: { _type: 'timestamp', version: 1, meta: { 'snapshot.json': { version: 1 } } },
      signatures: [],
    },
  ],
];

// -- refused --------------------------------------------------------------------------------------

const at = (n: number): RegExp => new RegExp(`at offset ${n}\\b`);
const refused: [string, string, RegExp][] = [
  // empty / trailing
  ['empty document', '', /offset 0: expected a JSON value, got end of input/],
  ['whitespace only', ' \n ', /offset 3: expected a JSON value, got end of input/],
  ['two values', '1 2', /offset 2: expected end of document/],
  ['two objects', '{}{}', /offset 2: expected end of document/],
  ['trailing garbage', '{}x', /offset 2: expected end of document, got "x"/],
  ['hex number', '0x10', /offset 1: expected end of document/],
  // numbers
  ['float', '1.5', /number at offset 0 is not an integer/],
  ['float 1.0', '1.0', /number at offset 0 is not an integer/],
  ['float 0.0', '[0.0]', /number at offset 1 is not an integer/],
  ['exponent 1e3', '1e3', /number at offset 0 is not an integer/],
  ['exponent 1E3', '1E3', /number at offset 0 is not an integer/],
  ['exponent 1e-3', '1e-3', /number at offset 0 is not an integer/],
  ['negative float', '{"a":-1.25}', /number at offset 5 is not an integer/],
  ['trailing dot', '1.', /number at offset 0 is not an integer/],
  ['leading dot', '.5', /offset 0: expected a JSON value/],
  ['leading plus', '+1', /offset 0: expected a JSON value/],
  ['leading zero', '01', /offset 1: expected no leading zeros/],
  ['negative leading zero', '-01', /offset 2: expected no leading zeros/],
  ['minus alone', '-', /offset 1: expected a digit, got end of input/],
  ['minus letter', '-a', /offset 1: expected a digit/],
  ['minus space digit', '- 1', /offset 1: expected a digit/],
  ['2**53', '9007199254740992', /integer at offset 0 is outside the safe range/],
  ['-(2**53)', '-9007199254740992', /integer at offset 0 is outside the safe range/],
  ['2**53+1 in an array', '[1, 9007199254740993]', /integer at offset 4 is outside the safe range/],
  ['400 digits', '1'.repeat(400), /integer at offset 0 is outside the safe range/],
  ['NaN', 'NaN', /offset 0: expected a JSON value/],
  ['Infinity', 'Infinity', /offset 0: expected a JSON value/],
  ['-Infinity', '-Infinity', /offset 1: expected a digit/],
  // literals
  ['truncated true', 'tru', /offset 0: expected true/],
  ['capitalised True', 'True', /offset 0: expected a JSON value/],
  ['truncated null', 'nul', /offset 0: expected null/],
  ['null with extra letter', 'nulll', /offset 4: expected end of document/],
  ['falsey', 'falsey', /offset 5: expected end of document/],
  ['undefined', 'undefined', /offset 0: expected a JSON value/],
  // strings
  ['unterminated string', '"abc', /offset 4: expected closing quote, got end of input/],
  ['single quotes', "'a'", /offset 0: expected a JSON value/],
  ['raw U+0000 in a string', '"a\u0000"', /offset 2: expected an escaped control character/],
  ['raw newline in a string', '"a\nb"', /offset 2: expected an escaped control character/],
  ['raw tab in a string', '"\t"', /offset 1: expected an escaped control character/],
  ['raw U+001F in a string', '"\u001f"', /offset 1: expected an escaped control character/],
  [
    'raw control character in a key',
    '{"a\rb":1}',
    /offset 3: expected an escaped control character/,
  ],
  ['unknown escape \\x', '"\\x41"', /offset 2: expected a valid escape/],
  ['unknown escape \\a', '"\\a"', /offset 2: expected a valid escape/],
  ['escaped single quote', '"\\\'"', /offset 2: expected a valid escape/],
  ['upper-case \\U', '"\\U0041"', /offset 2: expected a valid escape/],
  ['backslash at end of input', '"\\', /offset 2: expected a valid escape, got end of input/],
  ['short \\u escape', '"\\u12"', /offset 3: expected four hex digits/],
  ['non-hex \\u escape', '"\\u12G4"', /offset 3: expected four hex digits/],
  ['\\u escape with a sign', '"\\u+123"', /offset 3: expected four hex digits/],
  // lone surrogates
  [
    'escaped lone high surrogate',
    '"\\ud800"',
    /offset 1: expected valid Unicode \(lone high surrogate escape\)/,
  ],
  [
    'escaped lone low surrogate',
    '"\\udc00"',
    /offset 1: expected valid Unicode \(lone low surrogate escape\)/,
  ],
  ['escaped reversed pair', '"\\ude00\\ud83d"', /offset 1: expected valid Unicode \(lone low/],
  [
    'escaped high then letter escape',
    '"\\ud800\\u0041"',
    /offset 1: expected valid Unicode \(lone high/,
  ],
  [
    'escaped high then two highs',
    '"\\ud83d\\ud83d"',
    /offset 1: expected valid Unicode \(lone high/,
  ],
  ['escaped high then raw letter', '"\\ud800x"', /offset 1: expected valid Unicode \(lone high/],
  ['escaped high then raw low', '"\\ud83d\ude00"', /offset 1: expected valid Unicode \(lone high/],
  [
    'raw high then escaped low',
    '"\ud83d\\ude00"',
    /offset 1: expected valid Unicode \(lone surrogate\)/,
  ],
  ['escaped high, bad hex in low', '"\\ud800\\uzzzz"', /offset 9: expected four hex digits/],
  ['raw lone high surrogate', '"\ud800"', /offset 1: expected valid Unicode \(lone surrogate\)/],
  ['raw lone low surrogate', '"a\udc00b"', /offset 2: expected valid Unicode \(lone surrogate\)/],
  ['raw reversed pair', '"\ude00\ud83d"', /offset 1: expected valid Unicode \(lone surrogate\)/],
  ['raw high at end of input', '"\ud800', /offset 1: expected valid Unicode \(lone surrogate\)/],
  ['raw lone surrogate in a key', '{"\udfff":1}', /offset 2: expected valid Unicode/],
  // arrays
  ['unterminated array', '[1', /offset 2: expected "," or "\]", got end of input/],
  ['array ending in a comma', '[1,', /offset 3: expected a JSON value, got end of input/],
  ['trailing comma in an array', '[1,]', /offset 3: expected a JSON value, got "\]"/],
  ['leading comma in an array', '[,1]', /offset 1: expected a JSON value, got ","/],
  ['missing comma in an array', '[1 2]', /offset 3: expected "," or "\]"/],
  ['array closed by a brace', '[1}', /offset 2: expected "," or "\]"/],
  // objects
  ['unterminated object', '{"a":1', /offset 6: expected "," or "}", got end of input/],
  ['key without colon', '{"a"}', /offset 4: expected ":"/],
  ['key without value', '{"a":}', /offset 5: expected a JSON value/],
  ['key at end of input', '{"a":', /offset 5: expected a JSON value, got end of input/],
  ['trailing comma in an object', '{"a":1,}', /offset 7: expected a string key, got "}"/],
  ['comma only', '{,}', /offset 1: expected a string key/],
  ['missing comma in an object', '{"a":1 "b":2}', /offset 7: expected "," or "}"/],
  ['bare key', '{a:1}', /offset 1: expected a string key/],
  ['number key', '{1:1}', /offset 1: expected a string key/],
  ['single-quoted key', "{'a':1}", /offset 1: expected a string key/],
  ['equals instead of colon', '{"a"=1}', /offset 4: expected ":"/],
  // duplicates
  ['duplicate key', '{"a":1,"a":2}', /duplicate key "a" at offset 7/],
  ['duplicate key spelled with an escape', '{"a":1,"\\u0061":2}', /duplicate key "a" at offset 7/],
  ['duplicate key in a nested object', '{"x":{"k":1,"k":1}}', /duplicate key "k" at offset 12/],
  [
    'duplicate __proto__',
    '{"__proto__":1,"__proto__":2}',
    /duplicate key "__proto__" at offset 15/,
  ],
  ['duplicate constructor', '{"constructor":1,"constructor":2}', /duplicate key "constructor"/],
  ['duplicate empty key', '{"":1,"":2}', /duplicate key "" at offset 6/],
  // not JSON whitespace / syntax
  ['line comment', '// c\n1', /offset 0: expected a JSON value/],
  ['block comment', '/* c */1', /offset 0: expected a JSON value/],
  ['comment in an array', '[1 /* c */]', /offset 3: expected "," or "\]"/],
  ['no-break space', '\u00a01', /offset 0: expected a JSON value/],
  ['form feed as whitespace', '\f1', /offset 0: expected a JSON value/],
  ['vertical tab as whitespace', '\u000b1', /offset 0: expected a JSON value/],
  ['BOM at the start of a string input', '\ufeff{}', /offset 0: expected a JSON value/],
  ['line separator as whitespace', '\u2028{}', /offset 0: expected a JSON value/],
];

const invalidUtf8: [string, number[]][] = [
  ['byte 0xFF', [0xff]],
  ['lone continuation byte', [0x22, 0x80, 0x22]],
  ['overlong NUL (C0 80)', [0x22, 0xc0, 0x80, 0x22]],
  ['overlong slash (E0 80 AF)', [0x22, 0xe0, 0x80, 0xaf, 0x22]],
  ['UTF-8-encoded surrogate U+D800 (CESU)', [0x22, 0xed, 0xa0, 0x80, 0x22]],
  ['truncated 3-byte sequence', [0x22, 0xe4, 0xb8, 0x22]],
  ['code point above U+10FFFF', [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22]],
  ['byte 0xF5', [0x22, 0xf5, 0x80, 0x80, 0x80, 0x22]],
  ['truncated at end of input', [0x7b, 0x22, 0xc3]],
];

describe('parseJson', () => {
  describe('accepts', () => {
    for (const [name, text, expected] of accepted) {
      it(`${name}: ${JSON.stringify(text)}`, () => {
        const fromString = parseJson(text);
        assert.deepStrictEqual(fromString, expected);
        assert.deepStrictEqual(parseJson(utf8(text)), expected);
        // parseJson is a subset of JSON.parse.
        assert.deepStrictEqual(fromString, jsonParse(text));
        assertJsonValue(fromString);
      });
    }

    it('reads -0 as +0', () => {
      assert.ok(Object.is(parseJson('-0'), 0));
      assert.ok(Object.is((parseJson('[-0]') as number[])[0], 0));
    });

    it('accepts a Buffer', () => {
      assert.deepStrictEqual(parseJson(Buffer.from('{"a":[1]}')), { a: [1] });
    });

    it('accepts multi-byte UTF-8 input', () => {
      assert.deepStrictEqual(
        parseJson(Uint8Array.from([0x22, 0xe4, 0xb8, 0xad, 0xf0, 0x9f, 0x98, 0x80, 0x22])),
        '中😀',
      );
    });

    it('refuses a UTF-8 BOM in byte input, as in string input (one rule for both)', () => {
      refuses(Uint8Array.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), /offset 0: expected a JSON value/);
    });

    it('refuses a maxDepth that is not a non-negative integer', () => {
      for (const maxDepth of [Number.POSITIVE_INFINITY, Number.NaN, -1, 1.5]) {
        assert.throws(() => parseJson('[]', { maxDepth }), RangeError);
      }
    });

    it('accepts exactly maxDepth levels', () => {
      assert.ok(Array.isArray(parseJson(`${'['.repeat(128)}${']'.repeat(128)}`)));
      assert.deepStrictEqual(parseJson('[[1]]', { maxDepth: 2 }), [[1]]);
      assert.equal(parseJson('1', { maxDepth: 0 }), 1);
    });
  });

  describe('refuses with FormatError naming the offset or reason', () => {
    for (const [name, text, message] of refused) {
      it(`${name}: ${JSON.stringify(text)}`, () => {
        refuses(text, message);
        // The same text as UTF-8 bytes gives the same refusal, unless it cannot be UTF-8 at all
        // (lone surrogates).
        if (isWellFormed(text)) refuses(utf8(text), message);
      });
    }

    it('every refusal message names an offset, except invalid UTF-8', () => {
      for (const [, text] of refused) refuses(text, /offset \d+/);
    });

    for (const [name, bytes] of invalidUtf8) {
      it(`invalid UTF-8: ${name}`, () => {
        const e = refuses(Uint8Array.from(bytes), /^JSON: not valid UTF-8$/);
        assert.ok(e.cause instanceof TypeError);
      });
    }

    it('names the source in the message', () => {
      refuses('[1,]', /^timestamp\.json: invalid JSON at offset 3/, { source: 'timestamp.json' });
      refuses(Uint8Array.from([0xff]), /^root\.json: not valid UTF-8/, { source: 'root.json' });
      refuses('{"a":1,"a":1}', /^snapshot\.json: duplicate key/, { source: 'snapshot.json' });
      refuses('1.5', /^targets\.json: number at offset 0/, { source: 'targets.json' });
    });

    it('refuses nesting deeper than the limit', () => {
      refuses(
        `${'['.repeat(129)}${']'.repeat(129)}`,
        /nesting deeper than 128 levels at offset 128/,
      );
      refuses('[[[]]]', /nesting deeper than 2 levels at offset 2/, { maxDepth: 2 });
      refuses('{"a":{"b":{}}}', /nesting deeper than 2 levels at offset 10/, { maxDepth: 2 });
      refuses('[]', /nesting deeper than 0 levels at offset 0/, { maxDepth: 0 });
    });
  });

  describe('hostile nesting', () => {
    it('refuses 2000 levels of arrays with a FormatError, not a stack overflow', () => {
      refuses(`${'['.repeat(2000)}${']'.repeat(2000)}`, at(128));
    });

    it('refuses 2000 levels of objects with a FormatError', () => {
      const text = `${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`;
      refuses(text, /nesting deeper than 128 levels at offset 640/);
    });

    it('refuses 1,000,000 unclosed brackets with a FormatError', () => {
      refuses('['.repeat(1_000_000), /nesting deeper than 128 levels/);
      refuses(utf8('[{"":'.repeat(200_000)), /nesting deeper than 128 levels/);
    });
  });

  describe('__proto__', () => {
    it('keeps {"__proto__": 1} as an own key and leaves the prototype alone', () => {
      const v = parseJson('{"__proto__": 1}') as JsonObject;
      assert.equal(Object.getPrototypeOf(v), Object.prototype);
      assert.ok(Object.hasOwn(v, '__proto__'));
      assert.deepEqual(Object.keys(v), ['__proto__']);
      assert.deepEqual(Object.getOwnPropertyDescriptor(v, '__proto__'), {
        value: 1,
        writable: true,
        enumerable: true,
        configurable: true,
      });
      assert.equal(canonicalString(v), '{"__proto__":1}');
    });

    it('does not pollute prototypes with {"__proto__": {...}}', () => {
      const v = parseJson('{"a":{"__proto__":{"polluted":true}},"__proto__":[]}') as JsonObject;
      const inner = v.a as JsonObject;
      assert.equal(Object.getPrototypeOf(v), Object.prototype);
      assert.equal(Object.getPrototypeOf(inner), Object.prototype);
      assert.equal((inner as Record<string, unknown>).polluted, undefined);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.ok(Array.isArray(Object.getOwnPropertyDescriptor(v, '__proto__')?.value));
      assert.ok(!Array.isArray(v));
      assert.deepStrictEqual(v, JSON.parse('{"a":{"__proto__":{"polluted":true}},"__proto__":[]}'));
    });

    it('keeps __proto__ next to other keys in document order', () => {
      const v = parseJson('{"b":1,"__proto__":2,"a":3}') as JsonObject;
      assert.deepEqual(Object.keys(v), ['b', '__proto__', 'a']);
      assert.equal(canonicalString(v), '{"__proto__":2,"a":3,"b":1}');
    });
  });

  describe('fuzzing', () => {
    /** tryParse returns the parse result or the FormatError; any other throw fails the test. */
    function tryParse(input: string | Uint8Array): { ok: true; value: JsonValue } | { ok: false } {
      try {
        return { ok: true, value: parseJson(input) };
      } catch (e) {
        if (!(e instanceof FormatError)) {
          throw new Error(`non-FormatError for ${JSON.stringify(String(input))}: ${String(e)}`, {
            cause: e,
          });
        }
        assert.equal(e.code, 'METADATA_FORMAT');
        return { ok: false };
      }
    }

    const jsonChars = fc.constantFrom(
      ...'{}[]:,"\\/ \t\n\r0123456789-+.eEtruefalsnul\u0000\u001f\u007f\u00e9\u2028\ud800\udc00😀',
    );
    const randomStrings = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'binary-ascii', maxLength: 40 }),
      fc.string({
        unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
        maxLength: 40,
      }),
      fc.string({ unit: jsonChars, maxLength: 40 }),
      fc.string({
        unit: fc.constantFrom('[', ']', '{', '}', '"a":', ',', '1', '"\\u', 'd83d', 'dc00'),
        maxLength: 60,
      }),
    );

    it('random strings: a value or a FormatError, and accepted text agrees with JSON.parse', () => {
      fc.assert(
        fc.property(randomStrings, (s) => {
          const r = tryParse(s);
          if (r.ok) {
            assertJsonValue(r.value);
            assert.deepStrictEqual(r.value, jsonParse(s));
          }
        }),
        { numRuns: 3000 },
      );
    });

    it('random byte arrays: a value or a FormatError', () => {
      const bytes = fc.oneof(
        fc.uint8Array({ maxLength: 40 }),
        fc.array(jsonChars, { maxLength: 40 }).map((cs) => utf8(cs.join(''))),
      );
      fc.assert(
        fc.property(bytes, (b) => {
          const r = tryParse(b);
          if (r.ok) assertJsonValue(r.value);
        }),
        { numRuns: 3000 },
      );
    });

    it('mutated valid documents: a value or a FormatError', () => {
      const doc = fc.json({ maxDepth: 3 }).map((t) => utf8(t));
      const mutation = fc.record({
        at: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
        kind: fc.constantFrom('replace', 'insert', 'delete', 'truncate'),
      });
      fc.assert(
        fc.property(doc, fc.array(mutation, { minLength: 1, maxLength: 4 }), (b, muts) => {
          let cur = Array.from(b);
          for (const m of muts) {
            const i = cur.length === 0 ? 0 : m.at % cur.length;
            if (m.kind === 'replace' && cur.length > 0) cur[i] = m.byte;
            else if (m.kind === 'insert') cur.splice(i, 0, m.byte);
            else if (m.kind === 'delete') cur.splice(i, 1);
            else cur = cur.slice(0, i);
          }
          const r = tryParse(Uint8Array.from(cur));
          if (r.ok) assertJsonValue(r.value);
        }),
        { numRuns: 2000 },
      );
    });

    type Arbs = { json: unknown; arr: unknown[]; obj: Record<string, unknown> };
    const { json: intJson } = fc.letrec<Arbs>((tie) => ({
      json: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.maxSafeInteger(),
        fc.string({ unit: 'binary', maxLength: 10 }),
        fc.string({ unit: 'binary-ascii', maxLength: 10 }),
        tie('arr'),
        tie('obj'),
      ),
      arr: fc.array(tie('json'), { maxLength: 5 }),
      obj: fc.dictionary(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 6 }),
          fc.constantFrom('__proto__', 'a', 'constructor'),
        ),
        tie('json'),
        { maxKeys: 5, noNullPrototype: true },
      ),
    }));

    it('JSON.stringify of integer-only values: parseJson equals JSON.parse', () => {
      fc.assert(
        fc.property(intJson, fc.constantFrom(undefined, 2, '\t'), (v, space) => {
          const text = JSON.stringify(v, null, space);
          const expected = JSON.parse(text);
          assert.deepStrictEqual(parseJson(text), expected);
          assert.deepStrictEqual(parseJson(utf8(text)), expected);
        }),
        { numRuns: 2000 },
      );
    });
  });
});
