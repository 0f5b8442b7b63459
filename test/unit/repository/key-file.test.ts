/** How key files are protected (src/repository/key-file.ts) and `reencryptKey`. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import {
  generateKey,
  KeyObjectSigner,
  keyFileWarnings,
  keyProtection,
  PBKDF2_ITERATIONS,
  reencryptKey,
} from '../../../src/repository/index.js';

const PASS = 'key-file test passphrase';

describe('repository key files: protection warnings', () => {
  const key = generateKeyPairSync('ed25519').privateKey;
  const plain = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  // node's own export (and earlier tufa versions): PBKDF2-SHA256, OpenSSL's 2,048 iterations
  const weak = key
    .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASS })
    .toString();

  it('reads the protection of a PEM key', () => {
    assert.deepEqual(keyProtection(plain), { encrypted: false });
    assert.deepEqual(keyProtection(weak), { encrypted: true, pbkdf2Iterations: 2048 });
    assert.deepEqual(keyProtection(generateKey('ed25519', PASS).privatePem), {
      encrypted: true,
      pbkdf2Iterations: PBKDF2_ITERATIONS,
    });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASS })
      .toString();
    assert.deepEqual(keyProtection(rsa), { encrypted: true, legacy: true });
    assert.equal(keyProtection('not a key'), undefined);
  });

  it('warns about few iterations, a legacy scheme, or no encryption with a passphrase given', () => {
    assert.match(keyFileWarnings(weak, PASS).join(), /PBKDF2 at 2048 iterations/);
    assert.match(keyFileWarnings(plain, PASS).join(), /not encrypted/);
    assert.deepEqual(keyFileWarnings(plain, undefined), []);
    assert.deepEqual(keyFileWarnings(generateKey('ed25519', PASS).privatePem, PASS), []);
  });

  it('KeyObjectSigner.fromPem loads a weak key and tells onWarning, printing nothing', () => {
    const seen: string[] = [];
    const s = KeyObjectSigner.fromPem(weak, PASS, { onWarning: (w) => seen.push(w) });
    assert.equal(s.keyid, KeyObjectSigner.fromPem(plain).keyid);
    assert.equal(seen.length, 1);
    assert.match(seen[0] as string, /2048 iterations/);
  });

  it('reencryptKey: the same key, PBKDF2 at 600,000 iterations; a wrong passphrase is refused', () => {
    const k = reencryptKey(weak, PASS);
    assert.equal(keyProtection(k.privatePem)?.pbkdf2Iterations, PBKDF2_ITERATIONS);
    assert.equal(KeyObjectSigner.fromPem(k.privatePem, PASS).keyid, k.publicKey.keyid);
    assert.equal(k.publicKey.keyid, KeyObjectSigner.fromPem(plain).keyid);
    assert.equal(keyProtection(reencryptKey(plain, undefined, PASS).privatePem)?.encrypted, true);
    assert.throws(() => reencryptKey(weak, 'wrong'), RangeError);
    assert.throws(() => reencryptKey(plain, undefined), RangeError);
  });
});
