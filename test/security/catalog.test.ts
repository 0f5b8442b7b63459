/**
 * docs/security.md lists every case of the battery: each id with its exact test title, and no
 * id that the tests do not have. The rows are read from the test sources (test/security/*.ts).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/paths.js';
import { expectedCodes } from './harness.js';

/** One row as written in a test source. */
interface CaseRow {
  readonly file: string;
  readonly id: string;
  readonly title: string;
  readonly expect: string;
}

const STRING = String.raw`(?:'((?:\\.|[^'\\])*)'|"((?:\\.|[^"\\])*)")`;
const FIELD = (name: string) => String.raw`${name}:\s*${STRING}`;

function unquote(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

/** caseRows reads the rows of every security test source. */
function caseRows(): CaseRow[] {
  const dir = join(ROOT, 'test', 'security');
  const rows: CaseRow[] = [];
  const re = new RegExp(
    String.raw`${FIELD('id')},\s*${FIELD('title')},[\s\S]*?${FIELD('expect')},`,
    'g',
  );
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.test.ts'))) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(re)) {
      rows.push({
        file,
        id: unquote(m[1] ?? m[2] ?? ''),
        title: unquote(m[3] ?? m[4] ?? ''),
        expect: unquote(m[5] ?? m[6] ?? ''),
      });
    }
  }
  return rows;
}

describe('security: the catalog in docs/security.md', () => {
  const rows = caseRows();
  const doc = readFileSync(join(ROOT, 'docs', 'security.md'), 'utf8');

  it('CAT-01 every case of the battery is listed with its test name and expected refusal', () => {
    assert.ok(rows.length >= 40, `only ${rows.length} cases found in test/security`);
    const ids = rows.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, 'case ids are unique');
    const missing = rows.filter((r) => !doc.includes(`${r.id} ${r.title}`));
    assert.deepEqual(
      missing.map((r) => `${r.id} ${r.title}`),
      [],
      'cases whose "<id> <title>" test name docs/security.md does not give',
    );
    for (const r of rows) {
      for (const code of expectedCodes(r.expect)) {
        const line = doc.split('\n').find((l) => l.includes(`${r.id} ${r.title}`)) ?? '';
        assert.ok(
          line.includes(code),
          `${r.id}: its row in docs/security.md does not name ${code}`,
        );
      }
    }
  });

  it('CAT-02 docs/security.md names no case the battery does not have', () => {
    const known = new Set(rows.map((r) => r.id));
    const named = [...doc.matchAll(/\b((?:TUF|ADV|OCI|NOT|CRASH|PROP|R2|R2B|R3)-\d{2})\b/g)].map(
      (m) => m[1],
    );
    assert.deepEqual(
      [...new Set(named)].filter((id) => !known.has(id as string)),
      [],
    );
  });
});
