/**
 * The fast path of Metadata.fromBytes: when the `signed` text is already canonical, its bytes are
 * used as they are. It must give exactly canonicalize(signed as parsed) whenever it is taken,
 * and must not be taken when the text differs from the canonical form.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalize, canonicalString } from '../../../src/core/canonical-json.js';
import { type JsonValue, parseJsonWithSpan } from '../../../src/core/json.js';

const enc = new TextEncoder();

function span(doc: string) {
  return parseJsonWithSpan(enc.encode(doc), 'signed');
}

describe('canonical span detection', () => {
  it('takes the span of a canonical signed object, and its bytes equal the canonical form', () => {
    fc.assert(
      fc.property(
        fc
          .jsonValue()
          .filter((v) => !JSON.stringify(v).includes('.') && !/e[+-]?\d/i.test(JSON.stringify(v))),
        (v) => {
          let canonical: string;
          try {
            canonical = canonicalString(v);
          } catch {
            return; // floats, -0 and the like are not canonical JSON at all
          }
          // raw control characters are not JSON
          if ([...canonical].some((ch) => (ch.codePointAt(0) as number) < 0x20)) return;
          const doc = `{"signatures":[],"signed":${canonical}}`;
          const r = span(doc);
          assert.ok(r.span?.canonical, doc);
          assert.equal(r.text.slice(r.span.start, r.span.end), canonical);
          const obj = (r.value as { signed: JsonValue }).signed;
          assert.deepEqual(enc.encode(r.text.slice(r.span.start, r.span.end)), canonicalize(obj));
        },
      ),
      { numRuns: 500 },
    );
  });

  const notCanonical: Array<[string, string]> = [
    ['whitespace', '{"a": 1}'],
    ['a newline', '{"a":1\n}'],
    ['unsorted keys', '{"b":1,"a":2}'],
    ['an escaped slash', '{"a":"x\\/y"}'],
    ['a \\n escape', '{"a":"x\\ny"}'],
    ['a \\u escape', '{"a":"\\u0041"}'],
    ['-0', '{"a":-0}'],
    ['keys sorted by UTF-16 but not by code point', '{"\u{10000}":1,"\uffff":2}'],
  ];
  for (const [what, signed] of notCanonical) {
    it(`does not take the span with ${what}`, () => {
      const r = span(`{"signatures":[],"signed":${signed}}`);
      assert.equal(r.span?.canonical, false);
    });
  }

  it('takes it with escaped quotes and backslashes, non-ASCII, and code point key order', () => {
    for (const signed of ['{"a":"q\\"b\\\\s"}', '{"é":"中😀"}', '{"\uffff":1,"\u{10000}":2}']) {
      const r = span(`{"signatures":[],"signed":${signed}}`);
      assert.equal(r.span?.canonical, true, signed);
      assert.deepEqual(
        enc.encode(r.text.slice(r.span?.start, r.span?.end)),
        canonicalize((r.value as { signed: JsonValue }).signed),
      );
    }
  });
});
