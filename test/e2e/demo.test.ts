/** `tufa demo` run as a user would: a subprocess, offline, exit status and output checked. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TUFA_BIN } from '../support/paths.js';

function tufa(args: string[]) {
  return spawnSync(process.execPath, [TUFA_BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('tufa demo (CLI)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tufa-demo-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('verifies the signed repository and refuses every attack, exit 0', () => {
    const r = tufa(['demo', '--dir', dir]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /✔ hello\.txt: 31 bytes/);
    assert.ok(existsSync(join(dir, 'pulled', 'app.tar')));
    assert.match(r.stdout, /→ example\.test\/demo\/app@sha256:[0-9a-f]{64}/);
    for (const code of [
      'LENGTH_OR_HASH_MISMATCH',
      'THRESHOLD_NOT_MET',
      'ROLLBACK',
      'EXPIRED',
      'UNSIGNED_IMAGE',
      'NO_POLICY',
      'DIGEST_MISMATCH',
    ]) {
      assert.match(r.stdout, new RegExp(`refused \\(${code}\\)`));
    }
    assert.match(r.stdout, /pulled 2 blobs \(\d+ bytes\), each digest checked/);
    assert.match(r.stdout, /^9 of 9 attacks refused\.$/m);
    assert.ok(!existsSync(join(dir, 'attacks', 'bad-layer.tar')), 'a failed pull leaves nothing');
    assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY/);
  });

  it('writes a consistent-snapshot tree', () => {
    const repo = join(dir, 'repository');
    for (const f of ['1.root.json', '1.targets.json', '1.snapshot.json', 'timestamp.json']) {
      assert.ok(existsSync(join(repo, f)), f);
    }
    const names = readdirSync(join(repo, 'targets'));
    assert.ok(
      names.some((n) => /^[0-9a-f]{64}\.hello\.txt$/.test(n)),
      names.join(','),
    );
    assert.ok(!readdirSync(repo).some((n) => n.endsWith('.tmp')), 'no temp files left');
  });

  it('prints a verify command that works as printed', () => {
    const r = tufa(['demo', '--dir', join(dir, 'again')]);
    const line = r.stdout.split('\n').find((l) => l.startsWith('Try it yourself: tufa '));
    assert.ok(line, r.stdout);
    const args = line.slice('Try it yourself: tufa '.length).split(' ');
    const v = tufa(args);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /^✔ oci:.* → example\.test\/demo\/app@sha256:[0-9a-f]{64}$/m);
  });

  it('exits 2 on a usage error', () => {
    const r = tufa(['no-such-command']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /unknown command/);
  });
});
