/**
 * The webhook's bounds on one process: the verification limiter (never more than `max` at
 * once, a waiter whose review ended leaves the queue unrun), denial messages cut to 4 KiB, and
 * images longer than any reference denied unverified.
 */
import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import {
  AdmissionController,
  MAX_MESSAGE_BYTES,
  truncate,
} from '../../../src/admission/webhook.js';
import { Limiter } from '../../../src/internal/index.js';
import type { ImageVerifier } from '../../../src/verify/index.js';

/** The verifiers here are stand-ins: the registry is never asked. */
const NO_REGISTRY = {
  getManifest: () => assert.fail('the registry was asked'),
  copyBlob: () => assert.fail('the registry was asked'),
};
const tick = () => new Promise((r) => setImmediate(r));

describe('admission limits', () => {
  it('runs at most max tasks at once, also when a finishing task hands over to a waiter', async () => {
    const limiter = new Limiter(3);
    const signal = new AbortController().signal;
    setMaxListeners(0, signal); // 40 waiters on one signal, as in one review
    let running = 0;
    let peak = 0;
    const task = async () => {
      running++;
      peak = Math.max(peak, running);
      await tick();
      running--;
    };
    // new callers arrive while finishing tasks hand their slots over
    const all: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      all.push(limiter.run(signal, task));
      if (i % 5 === 0) await tick();
    }
    await Promise.all(all);
    assert.equal(peak, 3);
  });

  it('a waiter whose signal aborts leaves the queue without running', async () => {
    const limiter = new Limiter(1);
    let release: () => void = () => undefined;
    const first = limiter.run(
      new AbortController().signal,
      () =>
        new Promise<void>((r) => {
          release = r;
        }),
    );
    const ac = new AbortController();
    let ran = false;
    const waiting = limiter.run(ac.signal, async () => {
      ran = true;
    });
    ac.abort(new Error('deadline'));
    await assert.rejects(waiting, /deadline/);
    release();
    await first;
    // the slot is free again
    await limiter.run(new AbortController().signal, async () => undefined);
    assert.equal(ran, false);
  });

  it('cuts a denial message to 4 KiB of UTF-8, saying so', () => {
    assert.equal(truncate('short'), 'short');
    const long = `${'ä'.repeat(3000)}${'x'.repeat(3000)}`;
    const cut = truncate(long);
    assert.ok(Buffer.byteLength(cut) <= MAX_MESSAGE_BYTES, `${Buffer.byteLength(cut)} bytes`);
    assert.match(cut, /\(9000 bytes, cut\)$/);
    assert.ok(!cut.includes('\uFFFD'));
  });

  it('denies an image longer than 4,096 characters before any work, without echoing it', async () => {
    let asked = 0;
    const verifier = {
      verify: async () => {
        asked++;
        throw new Error('not reached');
      },
    } as unknown as ImageVerifier;
    const c = new AdmissionController({ verifier, registry: NO_REGISTRY, deadlineMs: 2_000 });
    const image = `reg.example/${'a.'.repeat(2_100)}a:1`;
    const out = await c.review(
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u1',
          kind: { kind: 'Pod' },
          operation: 'CREATE',
          object: { spec: { containers: [{ image: 'ok.example/app:1' }, { image }] } },
        },
      },
      'validate',
    );
    assert.equal(out.allowed, false);
    assert.equal(asked, 0);
    const message = JSON.stringify(out.body);
    assert.match(
      message,
      /BAD_REFERENCE: \/spec\/containers\/1\/image: the image is 4215 characters/,
    );
    assert.ok(!message.includes('a.a.a.a.'), message);
  });

  it('bounds images with fresh trust data too (4 × the verifications), without the slow queue', async () => {
    let running = 0;
    let peak = 0;
    const verifier = {
      hasFreshTrust: () => true,
      verify: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        return { digest: `sha256:${'a'.repeat(64)}`, reference: { tag: '1' } };
      },
    } as unknown as ImageVerifier;
    const c = new AdmissionController({
      verifier,
      registry: NO_REGISTRY,
      deadlineMs: 5_000,
      maxConcurrent: 2,
    });
    const reviews = Array.from({ length: 4 }, (_, r) =>
      c.review(
        {
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: {
            uid: `u${r}`,
            kind: { kind: 'Pod' },
            operation: 'CREATE',
            object: {
              spec: {
                containers: Array.from({ length: 16 }, (_, i) => ({
                  image: `ok.example/app${r}x${i}:1`,
                })),
              },
            },
          },
        },
        'validate',
      ),
    );
    for (const out of await Promise.all(reviews)) assert.equal(out.allowed, true);
    assert.ok(peak <= 8, `${peak} fresh verifications at once (limit 8)`);
    assert.ok(peak >= 2, 'they do run side by side');
  });
});
