/**
 * Attack on the webhook's redaction sink: `redactText` is quadratic on text like `a.a.a.…`
 * (every `\b` starts a scheme scan `[a-z][a-z0-9+.-]*` to the end). A pod naming such an
 * image (no length limit; Reference.parse echoes the whole input in its error) makes the
 * denial reason's redaction block the event loop: the review deadline timer cannot fire and
 * every review of the process waits (a webhook with failurePolicy Ignore then admits anything).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdmissionController } from '../../src/admission/index.js';
import { redactText } from '../../src/transport/redact.js';
import { TrustPolicy } from '../../src/verify/policy.js';
import { ImageVerifier } from '../../src/verify/verify-image.js';

describe('attack: redaction cost (issue 12 item 5 sinks)', function () {
  this.timeout(120_000);

  it('redactText of 80 kB of "a." is linear-time (under 500 ms)', () => {
    const t = performance.now();
    redactText('a.'.repeat(40_000));
    const ms = performance.now() - t;
    assert.ok(ms < 500, `redactText took ${ms.toFixed(0)} ms`);
  });

  it('a review naming a 60 kB image "a.a.a…" is answered within its 2 s deadline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atk-redos-'));
    const v = new ImageVerifier({
      policy: TrustPolicy.fromJSON({ rules: [] }, dir),
      cacheDir: join(dir, 'cache'),
    });
    const c = new AdmissionController({ verifier: v, deadlineMs: 2_000 });
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u1',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        operation: 'CREATE',
        namespace: 'default',
        name: 'p',
        object: { spec: { containers: [{ name: 'c', image: 'a.'.repeat(30_000) }] } },
      },
    };
    const t = performance.now();
    const out = await c.review(review, 'validate');
    const ms = performance.now() - t;
    await v.close();
    assert.equal(out.allowed, false);
    assert.ok(ms < 3_000, `the review took ${ms.toFixed(0)} ms (deadline 2000 ms)`);
  });
});
