/**
 * The node backend's Ed25519 key check (no crypto library) agrees with @noble/ed25519's strict
 * decoding and small-order test on the eight small-order encodings, on random bytes and on
 * real points.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { ed25519PointProblem } from '../../../src/core/crypto/ed25519-point.js';

function noble(bytes: Uint8Array): boolean {
  try {
    return !ed.Point.fromBytes(bytes, false).isSmallOrder();
  } catch {
    return false;
  }
}

const SMALL_ORDER = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
];

describe('ed25519PointProblem', () => {
  it('refuses every small-order encoding (libsodium blocklist)', () => {
    for (const hex of SMALL_ORDER) {
      assert.notEqual(ed25519PointProblem(Buffer.from(hex, 'hex')), undefined, hex);
      assert.equal(noble(Buffer.from(hex, 'hex')), false, hex);
    }
  });

  it('refuses y ≥ p and wrong lengths', () => {
    assert.match(ed25519PointProblem(new Uint8Array(32).fill(0xff)) ?? '', /canonical/);
    assert.match(ed25519PointProblem(new Uint8Array(31)) ?? '', /32 bytes/);
  });

  it('agrees with @noble/ed25519 on random bytes and real points', () => {
    for (let i = 0; i < 2000; i++) {
      const b = randomBytes(32);
      assert.equal(ed25519PointProblem(b) === undefined, noble(b), b.toString('hex'));
    }
    for (let i = 1; i <= 100; i++) {
      const b = ed.Point.BASE.multiply(BigInt(i) * 7919n).toBytes();
      assert.equal(ed25519PointProblem(b), undefined, Buffer.from(b).toString('hex'));
    }
  });
});
