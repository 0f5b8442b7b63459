/**
 * What a new user meets first, through the real binary: `--version`, help that exits 0 and
 * describes every command, and a package (the files `npm pack` would ship) that runs
 * `tufa demo` on its own and carries the LICENSE and the docs the README points to.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT, TUFA_BIN } from '../support/paths.js';

function tufa(args: string[], bin = TUFA_BIN) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
}

/** commandsOf returns the subcommand lines of a help text ("name [options] <arg>  text"). */
function commandsOf(help: string): Array<{ name: string; described: boolean }> {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  const out: Array<{ name: string; described: boolean }> = [];
  for (const line of section.split('\n')) {
    const m = /^ {2}(\S+)(.*)$/.exec(line);
    if (m === null) continue; // a continuation line of a wrapped description
    const rest = (m[2] ?? '').replace(/^(\s+(\[options\]|<[^>]+>|\[[^\]]+\]))*/, '');
    out.push({ name: m[1] as string, described: /^\s{2,}\S/.test(rest) });
  }
  return out;
}

describe('CLI basics (tufa, as a new user runs it)', () => {
  const version = (
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

  it('--version and -V print the package version, exit 0', () => {
    for (const flag of ['--version', '-V']) {
      const r = tufa([flag]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), version);
    }
  });

  it('tufa tuf --help and each of its commands --help exit 0 with a description', () => {
    for (const args of [
      ['tuf', '--help'],
      ...['init', 'refresh', 'download'].map((c) => ['tuf', c, '--help']),
    ]) {
      const r = tufa(args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      const [usage, blank, description] = r.stdout.split('\n');
      assert.match(usage ?? '', /^Usage: tuf/);
      assert.equal(blank, '');
      assert.ok((description ?? '').length > 10, `${args.join(' ')} has a description`);
    }
    // a usage error is still exit 1 in the conformance protocol
    assert.equal(tufa(['tuf']).status, 1);
    assert.equal(tufa(['tuf', 'bogus']).status, 1);
  });

  it('every command and subcommand has a description in its help', () => {
    const top = tufa(['--help']);
    assert.equal(top.status, 0);
    const missing: string[] = [];
    const groups = commandsOf(top.stdout);
    assert.ok(groups.length >= 8, top.stdout);
    for (const { name, described } of groups) {
      if (!described) missing.push(name);
      if (name === 'help' || name === 'tuf') continue;
      const sub = tufa([name, '--help']);
      assert.equal(sub.status, 0, `${name} --help: ${sub.stderr}`);
      for (const c of commandsOf(sub.stdout)) if (!c.described) missing.push(`${name} ${c.name}`);
    }
    assert.deepEqual(missing, [], 'commands without a description');
  });

  describe('the package', () => {
    let packed: string[];
    let dir: string;
    before(() => {
      const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 0, r.stderr);
      const [info] = JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>;
      packed = (info?.files ?? []).map((f) => f.path);
      dir = mkdtempSync(join(tmpdir(), 'tufa-pack-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('ships LICENSE (Apache-2.0) and every doc the README points to', () => {
      assert.ok(packed.includes('LICENSE'));
      assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/);
      const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
      const docs = [...new Set(readme.match(/docs\/[a-z0-9-]+\.md/g) ?? [])];
      assert.ok(docs.length >= 5);
      for (const d of docs) assert.ok(packed.includes(d), `${d} is not in the package`);
    });

    it('runs tufa demo from exactly the packed files', () => {
      const app = join(dir, 'package');
      for (const f of packed) {
        mkdirSync(dirname(join(app, f)), { recursive: true });
        cpSync(join(ROOT, f), join(app, f));
      }
      symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
      const r = tufa(['demo', '--dir', join(dir, 'demo')], join(app, 'bin', 'tufa'));
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^9 of 9 attacks refused\.$/m);
    });
  });
});
