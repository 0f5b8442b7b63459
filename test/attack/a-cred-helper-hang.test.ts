/**
 * attack-a: a credential helper that hangs (waiting on a keyring/pinentry it started) must not
 * hang tufa past the helper timeout.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerConfigCredentials } from '../../src/oci/index.js';

describe('attack-a: credential helper timeouts', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'attack-a-helper-'));
    mkdirSync(join(dir, 'bin'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const run = async (script: string) => {
    writeFileSync(join(dir, 'bin', 'docker-credential-slow'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ credsStore: 'slow' }));
    const c = new DockerConfigCredentials(join(dir, 'config.json'), 500, {
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
    });
    const t0 = Date.now();
    const r = await Promise.race([
      c.get('notary.example.com').then(() => 'resolved', () => 'rejected'),
      new Promise((ok) => setTimeout(() => ok('still waiting after 8 s'), 8000)),
    ]);
    return { r, ms: Date.now() - t0 };
  };

  it('held: a helper that sleeps is killed at the timeout', async () => {
    const { r } = await run('exec sleep 20');
    assert.equal(r, 'rejected');
  });

  it('BROKEN? a helper ignoring SIGTERM hangs tufa past the helper timeout', async () => {
    const { r } = await run("trap '' TERM; sleep 20; sleep 20");
    assert.equal(r, 'rejected', `after the 500 ms helper timeout: ${r}`);
  });

  it('BROKEN? a helper whose child (agent, pinentry) keeps stdout open hangs tufa past the helper timeout', async () => {
    const { r } = await run('sleep 20 &\nsleep 20');
    assert.equal(r, 'rejected', `after the 500 ms helper timeout: ${r}`);
  });
});
