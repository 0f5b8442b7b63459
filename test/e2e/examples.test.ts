/**
 * The examples in examples/ are real code: each runs as a new Node process from the package
 * root (so `import 'tufa/…'` resolves to this package's own entry points, built in dist/), and
 * what it prints is checked. One `example(…)` per file; a file in examples/ without one fails.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/paths.js';

const tested: string[] = [];

/** Examples that need a real registry run in that registry's integration test. */
const RUN_ELSEWHERE: Record<string, string> = {
  'registry-proxy.mjs': 'test/integration/registry-proxy.test.ts',
};

/** example runs `examples/<file>` and hands what it printed to `check`. */
function example(file: string, what: string, check: (stdout: string) => void): void {
  tested.push(file);
  it(`${file}: ${what}`, () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'examples', file)], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stderr);
    check(r.stdout);
  });
}

describe('examples', () => {
  example(
    'memory-store.mjs',
    'the in-memory store and a fetcher over a Map refresh, fetch a verified target and refuse a tampered one',
    (out) => {
      assert.equal(
        out,
        'app/config.json: 16 bytes verified: {"replicas": 3}\n\n' +
          'tampered copy refused: LENGTH_OR_HASH_MISMATCH\n',
      );
    },
  );

  it('every file in examples/ is run above or by the test named for it', () => {
    for (const [file, test] of Object.entries(RUN_ELSEWHERE)) {
      const source = readFileSync(join(ROOT, test), 'utf8');
      assert.ok(source.includes(`'${file}'`), `${test} does not run examples/${file}`);
    }
    assert.deepEqual(
      readdirSync(join(ROOT, 'examples')).sort(),
      [...tested, ...Object.keys(RUN_ELSEWHERE)].sort(),
    );
  });
});
