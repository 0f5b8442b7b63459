#!/usr/bin/env node
// Runs the compiled test suite (dist/test) with mocha and the summary reporter.
// Usage: node test/support/run-tests.js [glob...]   (default: every *.test.js)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureTools } from './ensure-tools.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
if (!existsSync(join(root, 'dist', 'test'))) {
  process.stderr.write('dist/test is missing: run `npm run build` first\n');
  process.exit(2);
}
if (process.env.TUFA_SKIP_INSTALL !== '1') ensureTools();
const require = createRequire(import.meta.url);
const mochaBin = join(dirname(require.resolve('mocha/package.json')), 'bin', 'mocha.js');
const specs = process.argv.slice(2);
const args = [
  mochaBin,
  '--reporter',
  join(root, 'test', 'support', 'summary-reporter.cjs'),
  '--timeout',
  '20000',
  '--recursive',
  ...(specs.length > 0 ? specs : ['dist/test/**/*.test.js']),
];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
