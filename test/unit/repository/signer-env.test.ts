/**
 * The environment of an external signer command (R2B-09): a minimal one plus what the operator
 * names, never TUFA_KEY_PASSPHRASE, never the rest of the caller's environment.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import {
  ExternalCommandSigner,
  publicKeyOf,
  signerEnvironment,
} from '../../../src/repository/signer.js';

const CALLER = {
  PATH: '/usr/bin:/bin',
  HOME: '/home/ci',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  TMPDIR: '/tmp',
  TUFA_KEY_PASSPHRASE: 'secret',
  GITHUB_TOKEN: 'ghs_secret',
  AWS_REGION: 'eu-west-1',
  AWS_SESSION_TOKEN: 'aws-secret',
  TUF_TARGETS_KMS_KEY: 'alias/tuf-targets',
  UNSET: undefined,
};

describe('signerEnvironment', () => {
  it('by default: PATH, HOME, LANG, LC_*, TMPDIR…, nothing else', () => {
    assert.deepEqual(signerEnvironment(CALLER), {
      PATH: '/usr/bin:/bin',
      HOME: '/home/ci',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      TMPDIR: '/tmp',
    });
  });

  it('plus the names and prefixes given', () => {
    const env = signerEnvironment(CALLER, ['TUF_TARGETS_KMS_KEY', 'AWS_*', 'NOT_SET']);
    assert.equal(env.TUF_TARGETS_KMS_KEY, 'alias/tuf-targets');
    assert.equal(env.AWS_REGION, 'eu-west-1');
    assert.equal(env.AWS_SESSION_TOKEN, 'aws-secret');
    assert.equal('NOT_SET' in env, false);
    assert.equal('GITHUB_TOKEN' in env, false);
    assert.equal('TUFA_KEY_PASSPHRASE' in env, false);
  });

  it('a name or prefix that would pass TUFA_KEY_PASSPHRASE, or a malformed one, is a RangeError', () => {
    for (const bad of [
      'TUFA_KEY_PASSPHRASE',
      'TUFA_*',
      'TUFA_KEY*',
      '*',
      '',
      'A B',
      'X=1',
      'A*B',
    ]) {
      assert.throws(() => signerEnvironment(CALLER, [bad]), RangeError, bad);
    }
  });
});

describe('ExternalCommandSigner: the environment', () => {
  it('the command gets exactly the environment given, not this process’s', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const key = publicKeyOf(privateKey);
    process.env.TUFA_TEST_SIGNER_LEAK = 'must-not-leak';
    try {
      // the command prints its environment on stderr and fails: the error carries it
      const run = (env?: Record<string, string>) =>
        new ExternalCommandSigner('env >&2; exit 3', key, 10_000, env)
          .sign(new Uint8Array([1]))
          .then(
            () => assert.fail('expected the command to fail'),
            (e: Error) => e.message,
          );
      const none = await run();
      assert.doesNotMatch(none, /must-not-leak/);
      const some = await run({ PATH: '/usr/bin:/bin', ONLY_THIS: 'yes' });
      assert.match(some, /ONLY_THIS=yes/);
      assert.doesNotMatch(some, /must-not-leak/);
    } finally {
      delete process.env.TUFA_TEST_SIGNER_LEAK;
    }
  });
});
