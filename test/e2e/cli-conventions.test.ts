/**
 * CLI conventions through the real binary (issue 16): usage errors exit 2 naming the flag and
 * the file (never a raw ENOENT/EEXIST), `--json` prints JSON on failure too, refusals go to
 * stderr, policy check/explain, `--ca` must hold a certificate, references as written, and the
 * private-key rules (ssh-like permissions, encrypted key without passphrase, --replace).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TUFA_BIN } from '../support/paths.js';
import { StaticServer } from '../support/static-server.js';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('CLI conventions (exit codes, streams, flags; through the real binary)', function () {
  this.timeout(60_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;

  function tufa(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Run {
    const r = spawnSync(process.execPath, [TUFA_BIN, ...args], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...env, ...extraEnv },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** tufaAsync runs the binary without blocking this process (a server here must answer it). */
  function tufaAsync(args: string[]): Promise<Run> {
    return new Promise((resolve, reject) => {
      const c = spawn(process.execPath, [TUFA_BIN, ...args], { cwd: dir, env });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d) => {
        stdout += d;
      });
      c.stderr.on('data', (d) => {
        stderr += d;
      });
      const t = setTimeout(() => c.kill(), 30_000);
      c.on('error', reject);
      c.on('close', (status) => {
        clearTimeout(t);
        resolve({ status, stdout, stderr });
      });
    });
  }

  const show = (r: Run) => `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

  /** usage asserts exit 2 with a message naming each of `names`, and no raw system error. */
  function usage(r: Run, ...names: string[]): void {
    assert.equal(r.status, 2, show(r));
    for (const n of names) assert.ok(r.stderr.includes(n), `stderr names ${n}\n${show(r)}`);
    assert.doesNotMatch(r.stderr, /ENOENT|EEXIST|EISDIR|EACCES|Invalid URL|\n\s+at /, show(r));
    assert.equal(r.stdout, '', 'nothing on stdout');
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tufa-cli-conv-'));
    env = { ...process.env, XDG_CACHE_HOME: join(dir, 'xdg'), NO_COLOR: '1' };
    delete env.TUFA_KEY_PASSPHRASE;
    delete env.TUFA_POLICY;
    const k = tufa(['key', 'generate', '--type', 'ed25519', '--out', 'k']);
    assert.equal(k.status, 0, show(k));
    writeFileSync(join(dir, 'empty-policy.json'), '{"rules":[]}');
    writeFileSync(join(dir, 'not-a-cert.pem'), 'hello\n');
    const init = tufa([
      'repo',
      '--repo',
      'ws',
      'init',
      ...['root', 'targets', 'snapshot', 'timestamp'].flatMap((r) => [`--${r}-key`, 'k.pub.json']),
    ]);
    assert.equal(init.status, 0, show(init));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('exit 2, naming the flag and the file', () => {
    it('repo sign --key missing.key', () => {
      usage(
        tufa(['repo', '--repo', 'ws', 'sign', '--role', 'root', '--key', 'missing.key']),
        '--key',
        'missing.key',
      );
    });
    it('verify --ca missing.pem, and a --ca with no PEM certificate', () => {
      const base = ['verify', '--policy', 'empty-policy.json', 'localhost:5000/a:1'];
      usage(tufa([...base, '--ca', 'missing.pem']), '--ca', 'missing.pem');
      usage(
        tufa([...base, '--ca', 'not-a-cert.pem']),
        '--ca',
        'not-a-cert.pem',
        'no PEM certificate',
      );
    });
    it('verify --cache-dir <a file>, and a missing --policy', () => {
      usage(
        tufa(['verify', '--policy', 'empty-policy.json', '--cache-dir', 'k', 'localhost:5000/a:1']),
        '--cache-dir',
        'k',
      );
      usage(
        tufa(['verify', '--policy', 'nope.json', 'localhost:5000/a:1']),
        '--policy',
        'nope.json',
      );
    });
    it('key generate --out <existing>', () => {
      usage(
        tufa(['key', 'generate', '--type', 'ed25519', '--out', 'k']),
        '--out',
        'k',
        'already exists',
      );
    });
    it('repo add-target missing.bin, and --custom with bad JSON', () => {
      usage(tufa(['repo', '--repo', 'ws', 'add-target', 'missing.bin']), 'missing.bin');
      usage(
        tufa(['repo', '--repo', 'ws', 'add-target', 'k.pub.json', '--custom', '{bad']),
        '--custom',
      );
    });
    it('a private PEM given as --root-key', () => {
      const r = tufa([
        'repo',
        '--repo',
        'ws2',
        'init',
        '--root-key',
        'k',
        ...['targets', 'snapshot', 'timestamp'].flatMap((x) => [`--${x}-key`, 'k.pub.json']),
      ]);
      usage(r, '--root-key', 'k', 'private key');
    });
    it('conflicting flags: --signer-command with --key', () => {
      const r = tufa([
        'repo',
        '--repo',
        'ws',
        'sign',
        '--role',
        'root',
        '--key',
        'k',
        '--signer-command',
        'cat',
        '--public-key',
        'k.pub.json',
      ]);
      usage(r, '--key', '--signer-command');
    });
    it('a policy with an unknown field, with its JSON path', () => {
      writeFileSync(
        join(dir, 'typo.json'),
        JSON.stringify({
          rules: [
            {
              match: 'localhost:5000/**',
              notary: { server: 'https://n.example', rootkeys: ['x'], tofu: true },
            },
          ],
        }),
      );
      usage(
        tufa(['verify', '--policy', 'typo.json', 'localhost:5000/a:1']),
        'typo.json',
        'rules[0].notary.rootkeys',
        'unknown field',
      );
    });
  });

  describe('streams and --json', () => {
    it('a refusal goes to stderr; stdout stays empty', () => {
      const r = tufa(['verify', '--policy', 'empty-policy.json', 'localhost:5000/a:1']);
      assert.equal(r.status, 1, show(r));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^✘ localhost:5000\/a:1: refused \(NO_POLICY\)/m);
    });
    it('--json prints JSON on a usage error and on a pull refusal', () => {
      const bad = tufa(['verify', '--json', '--policy', 'nope.json', 'localhost:5000/a:1']);
      assert.equal(bad.status, 2, show(bad));
      assert.equal((JSON.parse(bad.stdout) as { error: { code: string } }).error.code, 'USAGE');
      const unknown = tufa(['verify', '--json', '--no-such-flag', 'localhost:5000/a:1']);
      assert.equal(unknown.status, 2, show(unknown));
      assert.equal((JSON.parse(unknown.stdout) as { error: { code: string } }).error.code, 'USAGE');
      const pull = tufa([
        'pull',
        '--json',
        '--policy',
        'empty-policy.json',
        'localhost:5000/a:1',
        '--output',
        `oci:${join(dir, 'out')}`,
      ]);
      assert.equal(pull.status, 1, show(pull));
      const j = JSON.parse(pull.stdout) as { verified: boolean; error: { code: string } };
      assert.equal(j.verified, false);
      assert.equal(j.error.code, 'NO_POLICY');
    });
  });

  describe('tufa policy check and explain', () => {
    it('check reports every problem with its JSON path (exit 2); a good policy exits 0', () => {
      writeFileSync(
        join(dir, 'bad.json'),
        JSON.stringify({
          rules: [
            { match: 'Localhost:5000/**', tuf: { metadataUrl: 'ftp://x/', root: 'r.json' } },
            {
              match: 'localhost:5000/b/**',
              tuf: { metadataUrl: 'http://x/', root: 'r.json', extra: 1 },
            },
          ],
          comment: 'x',
        }),
      );
      const r = tufa(['policy', 'check', 'bad.json']);
      assert.equal(r.status, 2, show(r));
      for (const p of [
        'comment',
        'rules[0].match',
        'rules[0].tuf.metadataUrl',
        'rules[1].tuf.extra',
      ])
        assert.ok(r.stderr.includes(`bad.json: ${p}: `), `${p}\n${show(r)}`);
      const j = tufa(['policy', 'check', '--json', 'bad.json']);
      assert.equal((JSON.parse(j.stdout) as { problems: unknown[] }).problems.length, 4);
      const ok = tufa(['policy', 'check', 'empty-policy.json']);
      assert.equal(ok.status, 0, show(ok));
      assert.match(ok.stdout, /valid, 0 rules/);
    });

    it('explain names the governing rule and why; no rule is a denial (exit 1)', () => {
      writeFileSync(
        join(dir, 'two.json'),
        JSON.stringify({
          rules: [
            { match: 'ghcr.io/**', tuf: { metadataUrl: 'https://a.example/m/', root: 'r.json' } },
            {
              match: 'ghcr.io/acme/*',
              tuf: { metadataUrl: 'https://b.example/m/', root: 'r.json' },
            },
          ],
        }),
      );
      const r = tufa(['policy', 'explain', '--policy', 'two.json', 'ghcr.io/acme/app:1.0']);
      assert.equal(r.status, 0, show(r));
      assert.match(
        r.stdout,
        /ghcr\.io\/acme\/app is governed by rules\[1\] \(ghcr\.io\/acme\/\*\): tuf https:\/\/b\.example\/m\//,
      );
      assert.match(r.stdout, /most specific of 2 matching rules/);
      const none = tufa(['policy', 'explain', '--policy', 'two.json', 'quay.io/x/y:1']);
      assert.equal(none.status, 1, show(none));
      assert.match(none.stderr, /NO_POLICY/);
    });
  });

  it('messages write the reference as given: registry/repo:9.9, not registry/repo@9.9', async () => {
    const server = await StaticServer.start(new Map());
    try {
      const host = new URL(server.url()).host;
      const r = await tufaAsync(['repo', '--repo', 'ws', 'add-image', `${host}/repo:9.9`]);
      assert.notEqual(r.status, 0, show(r));
      assert.ok(r.stderr.includes(`${host}/repo:9.9`), show(r));
      assert.doesNotMatch(r.stderr, /repo@9\.9/);
    } finally {
      await server.close();
    }
  });

  describe('private keys and targets', () => {
    it('a key file group or others may read is refused, unless --insecure-key-permissions', () => {
      // the repository's own key, opened up
      chmodSync(join(dir, 'k'), 0o644);
      const sign = ['repo', '--repo', 'ws', 'sign', '--role', 'root', '--key', 'k'];
      usage(tufa(sign), '--key', 'k', 'too open', '0644');
      const r = tufa([...sign, '--insecure-key-permissions']);
      chmodSync(join(dir, 'k'), 0o600);
      assert.equal(r.status, 0, show(r));
    });

    it('an encrypted key without TUFA_KEY_PASSPHRASE says that', () => {
      const g = tufa(['key', 'generate', '--type', 'ed25519', '--out', 'enc'], {
        TUFA_KEY_PASSPHRASE: 'pw',
      });
      assert.equal(g.status, 0, show(g));
      usage(
        tufa(['repo', '--repo', 'ws', 'sign', '--role', 'root', '--key', 'enc']),
        '--key',
        'enc',
        'TUFA_KEY_PASSPHRASE',
      );
    });

    it('add-target over a listed path with other bytes needs --replace', () => {
      writeFileSync(join(dir, 'a.txt'), 'one\n');
      assert.equal(tufa(['repo', '--repo', 'ws', 'add-target', 'a.txt']).status, 0);
      // the same bytes again: fine
      assert.equal(tufa(['repo', '--repo', 'ws', 'add-target', 'a.txt']).status, 0);
      writeFileSync(join(dir, 'a.txt'), 'two\n');
      usage(tufa(['repo', '--repo', 'ws', 'add-target', 'a.txt']), 'a.txt', '--replace');
      const r = tufa(['repo', '--repo', 'ws', 'add-target', 'a.txt', '--replace']);
      assert.equal(r.status, 0, show(r));
      const targets = JSON.parse(
        readFileSync(join(dir, 'ws', 'metadata', 'targets.json'), 'utf8'),
      ) as {
        signed: { targets: Record<string, { length: number }> };
      };
      assert.equal(targets.signed.targets['a.txt']?.length, 4);
    });
  });
});
