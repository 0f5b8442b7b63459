/**
 * Attacks on redaction (issue 12 item 5) and on the CLI entry points that promise redacted
 * crash reports. `redactText` is the last sink-side barrier ("whatever message it came in"):
 * every URL the WHATWG parser accepts (and Node's http client would send credentials from)
 * must lose its user info and query.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redact, redactText } from '../../src/transport/redact.js';

// dist/test/attack → the package root
const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('attack: redaction and crash reports (issue 12 item 5)', function () {
  this.timeout(30_000);

  it('bin/tufa starts (its crash-report redactor is imported from a module the merge removed)', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'tufa'), '--version'], { encoding: 'utf8' });
    assert.ok(!/ERR_MODULE_NOT_FOUND/.test(r.stderr), r.stderr.split('\n')[0]);
    assert.equal(r.status, 0, r.stderr.split('\n')[0]);
  });

  it('bin/tuf-client starts and its failure on a credentialed metadata URL is redacted', () => {
    const r = spawnSync(
      process.execPath,
      [
        join(ROOT, 'bin', 'tuf-client'),
        '--metadata-dir',
        '/nonexistent-attack-dir',
        '--metadata-url',
        'http://bot:TC-SECRET@127.0.0.1:1/',
        'refresh',
      ],
      { encoding: 'utf8' },
    );
    assert.ok(!/ERR_MODULE_NOT_FOUND/.test(r.stderr), r.stderr.split('\n')[0]);
    assert.ok(!r.stderr.includes('TC-SECRET'));
  });

  it('the module bin/ imports for redaction exists in dist', () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'src', 'internal', 'redact.js')));
  });

  // Each of these parses as a URL with credentials (node:http would send them as Basic auth).
  const parsedWithSecret: [string, string][] = [
    ['password with a raw @ (the parser takes the last @)', 'https://bot:p@SECRET@host.example/x'],
    ["password with a '", "https://bot:p'SECRET@host.example/x"],
    ['password with a space', 'https://bot:p SECRET@host.example/x'],
    ['password with a "', 'https://bot:p"SECRET@host.example/x'],
    ['password with a backtick', 'https://bot:p`SECRET@host.example/x'],
    ['one slash after the scheme', 'https:/bot:SECRET@host.example/x'],
    ['no slash after the scheme', 'https:bot:SECRET@host.example/x'],
    ['backslashes after the scheme', 'https:\\\\bot:SECRET@host.example/x'],
    ['query after a backslash (a path separator)', 'https://host.example/p\\?token=SECRET'],
    ['query token containing a "', 'https://host.example/?token=a"SECRET'],
  ];
  for (const [what, url] of parsedWithSecret) {
    it(`redactText hides the secret of a URL with ${what}`, () => {
      const u = new URL(url);
      assert.ok(u.password.includes('SECRET') || u.search.includes('SECRET'), 'the parser sees a secret');
      assert.ok(!redact(url).includes('SECRET'), 'redact() handles it');
      const out = redactText(`refused: ${url}: unknown transport`);
      assert.ok(!out.includes('SECRET'), out);
    });
  }

  it('CLI sink: tufa verify of a credentialed URL typed as the image prints no secret (text and --json)', () => {
    const policy = join(mkdtempSync(join(tmpdir(), 'atk-policy-')), 'policy.json');
    writeFileSync(policy, '{"rules":[]}');
    for (const img of ["https://bot:p'CLI-SECRET@reg.example/app:1", 'https://bot:p@CLI-SECRET@reg.example/app:1', 'https:/bot:CLI-SECRET@reg.example/app:1']) {
      for (const json of [[], ['--json']]) {
        const r = spawnSync(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `const { main } = await import(${JSON.stringify(join(ROOT, 'dist/src/cli/main.js'))}); process.exitCode = await main(process.argv.slice(1));`,
            'verify',
            ...json,
            '--policy',
            policy,
            img,
          ],
          { encoding: 'utf8' },
        );
        const all = r.stdout + r.stderr;
        assert.ok(!all.includes('CLI-SECRET'), all);
      }
    }
  });
});
