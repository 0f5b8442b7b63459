/**
 * The README's library example is real code: this test takes the first code block under
 * "## Library" as written, runs it as a module inside the package (so `import 'tufa'` resolves
 * to this package's own entry point) and checks what it prints.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/paths.js';

describe('README library example', () => {
  it('runs as written and verifies a target of Docker’s published TUF repository', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.split(/^## Library$/m)[1] ?? '';
    const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(code, 'a ```ts block under ## Library');
    const file = join(ROOT, 'dist', 'readme-example.mjs');
    writeFileSync(file, code);
    try {
      const r = spawnSync(process.execPath, [file], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'doi/policy-full.rego: 7972 bytes, signed by doi');
    } finally {
      rmSync(file, { force: true });
    }
  });
});
