/**
 * The admission webhook end to end, as the Kubernetes API server talks to it: the real HTTPS
 * server (`startAdmissionServer`) with a certificate for 127.0.0.1 from a test CA (openssl),
 * a real registry (CNCF distribution) holding signed and unsigned images built with umoci and
 * pushed with skopeo, a real TUF repository served over HTTP, and the saved AdmissionReviews
 * of `test/admission/reviews/` POSTed over keep-alive HTTPS. Then `tufa admission serve` as a
 * subprocess, stopped with SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import {
  AdmissionController,
  type RunningServer,
  startAdmissionServer,
} from '../../src/admission/index.js';
import type { ImageVerifier } from '../../src/verify/index.js';
import {
  type AdmissionReviewDoc,
  AdmissionWorld,
  type HttpResult,
  REVIEWS_DIR,
  ReviewClient,
  type SignedName,
} from '../admission/environment.js';
import { TUFA_BIN } from '../support/paths.js';
import { skipReason } from '../support/registry.js';

type Mode = 'validate' | 'mutate';

/** An AdmissionReview answer. */
interface Answer {
  apiVersion: string;
  kind: string;
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; reason?: string; message?: string };
    warnings?: string[];
    patchType?: string;
    patch?: string;
  };
}

interface PatchOp {
  op: string;
  path: string;
  value: string;
}

type Log = Record<string, unknown>;

/** A webhook under test: the real server, its verifier, what it logged, and a client. */
interface Hook {
  readonly server: RunningServer;
  readonly verifier: ImageVerifier;
  readonly client: ReviewClient;
  readonly logs: Log[];
  close(): Promise<void>;
}

/** What the main webhook was sent, to hold its metrics and logs to. */
interface Sent {
  readonly mode: Mode;
  readonly status: number;
  readonly result: 'allowed' | 'denied' | 'error';
  readonly uid?: string;
  readonly kind?: string;
}

/** The workload reviews: the kind, and each image field (JSON Pointer) with its signed image. */
const WORKLOADS: Record<string, { kind: string; images: Record<string, SignedName> }> = {
  'pod.json': {
    kind: 'Pod',
    images: { '/spec/containers/0/image': 'app', '/spec/containers/1/image': 'sidecar' },
  },
  'pod-ephemeral-debug.json': {
    kind: 'Pod',
    images: {
      '/spec/initContainers/0/image': 'init',
      '/spec/containers/0/image': 'app',
      '/spec/containers/1/image': 'sidecar',
      '/spec/ephemeralContainers/0/image': 'debug',
    },
  },
  'deployment.json': {
    kind: 'Deployment',
    images: {
      '/spec/template/spec/initContainers/0/image': 'init',
      '/spec/template/spec/containers/0/image': 'app',
      '/spec/template/spec/containers/1/image': 'sidecar',
    },
  },
  'deployment-update.json': {
    kind: 'Deployment',
    images: {
      '/spec/template/spec/containers/0/image': 'app',
      '/spec/template/spec/containers/1/image': 'sidecar',
    },
  },
  'replicaset.json': {
    kind: 'ReplicaSet',
    images: { '/spec/template/spec/containers/0/image': 'app' },
  },
  'statefulset.json': {
    kind: 'StatefulSet',
    images: {
      '/spec/template/spec/initContainers/0/image': 'init',
      '/spec/template/spec/containers/0/image': 'app',
    },
  },
  'daemonset.json': {
    kind: 'DaemonSet',
    images: { '/spec/template/spec/containers/0/image': 'sidecar' },
  },
  'job.json': { kind: 'Job', images: { '/spec/template/spec/containers/0/image': 'app' } },
  'cronjob.json': {
    kind: 'CronJob',
    images: {
      '/spec/jobTemplate/spec/template/spec/initContainers/0/image': 'init',
      '/spec/jobTemplate/spec/template/spec/containers/0/image': 'app',
    },
  },
  'replicationcontroller.json': {
    kind: 'ReplicationController',
    images: { '/spec/template/spec/containers/0/image': 'app' },
  },
  'podtemplate.json': {
    kind: 'PodTemplate',
    images: { '/template/spec/containers/0/image': 'app' },
  },
};

/** Reviews the API server would never send: answered 400, no AdmissionReview. */
const MALFORMED = [
  'malformed-not-json.txt',
  'malformed-request-null.json',
  'malformed-missing-uid.json',
  'malformed-wrong-kind.json',
  'malformed-wrong-apiversion.json',
];

/** The other saved reviews, each with its own test below. */
const OTHERS = [
  'pod-unsigned.json',
  'pod-delete.json',
  'configmap.json',
  'invalid-container-without-image.json',
];

// ---------------------------------------------------------------------------------------------
// JSON Pointer and JSON Patch (replace only), written here so the webhook's own code is not
// what checks it

function tokens(pointer: string): string[] {
  assert.ok(pointer.startsWith('/'), `JSON Pointer ${pointer}`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function pointerGet(doc: unknown, pointer: string): unknown {
  let cur = doc;
  for (const t of tokens(pointer)) {
    assert.ok(typeof cur === 'object' && cur !== null, `${pointer}: no ${t}`);
    assert.ok(Object.hasOwn(cur, t), `${pointer}: no ${t}`);
    cur = (cur as Record<string, unknown>)[t];
  }
  return cur;
}

/** pointerSet replaces an existing value (JSON Patch `replace` semantics). */
function pointerSet(doc: unknown, pointer: string, value: unknown): void {
  const ts = tokens(pointer);
  const last = ts.pop() as string;
  let parent = doc;
  for (const t of ts) parent = (parent as Record<string, unknown>)[t];
  assert.ok(
    typeof parent === 'object' && parent !== null && Object.hasOwn(parent, last),
    `${pointer}: nothing to replace`,
  );
  (parent as Record<string, unknown>)[last] = value;
}

function applyPatch<T>(doc: T, ops: readonly PatchOp[]): T {
  const out = structuredClone(doc);
  for (const op of ops) {
    assert.equal(op.op, 'replace');
    pointerSet(out, op.path, op.value);
  }
  return out;
}

/** decodePatch reads the JSON Patch of an answer. */
function decodePatch(a: Answer): PatchOp[] {
  assert.equal(a.response.patchType, 'JSONPatch');
  assert.equal(typeof a.response.patch, 'string');
  return JSON.parse(Buffer.from(a.response.patch as string, 'base64').toString('utf8'));
}

/** withUid gives a changed copy of a review its own uid, as the API server would. */
function withUid(r: AdmissionReviewDoc): AdmissionReviewDoc {
  const req = r.request as NonNullable<AdmissionReviewDoc['request']>;
  req.uid = randomUUID();
  return r;
}

function requestOf(r: AdmissionReviewDoc): NonNullable<AdmissionReviewDoc['request']> {
  assert.ok(r.request !== null);
  return r.request;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', () => ok()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

describe('tufa admission webhook over HTTPS against a real registry and TUF repository (integration)', function () {
  this.timeout(30_000);
  let world: AdmissionWorld;
  /** The webhook most tests talk to (deadline 8 s, as in docs/kubernetes.md). */
  let main: Hook;
  const extra: Hook[] = [];
  const sent: Sent[] = [];

  async function startHook(deadlineMs: number, o: { timeoutMs?: number } = {}): Promise<Hook> {
    const verifier = world.verifier();
    const registry = world.registry(o);
    const logs: Log[] = [];
    const server = await startAdmissionServer({
      controller: new AdmissionController({ verifier, registry, deadlineMs }),
      tls: { cert: world.tls.cert, key: world.tls.key },
      host: '127.0.0.1',
      port: 0,
      log: (r) => logs.push(r),
    });
    const client = new ReviewClient(server.url, world.tls.ca, { timeoutMs: 15_000 });
    return {
      server,
      verifier,
      client,
      logs,
      close: async () => {
        client.close();
        await server.close();
        await verifier.close();
        await registry.close();
      },
    };
  }

  /**
   * send POSTs a review and checks what every answer must be: HTTP 200 with an AdmissionReview
   * of the request's apiVersion whose response.uid is the request's uid, or a 400 that is not an
   * AdmissionReview. Reviews sent to `main` are recorded for the metrics and log tests.
   */
  async function send(
    mode: Mode,
    body: unknown,
    hook: Hook = main,
  ): Promise<{ res: HttpResult; answer: Answer }> {
    const res = await hook.client.post(`/${mode}`, body);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const parsed = JSON.parse(res.text) as Answer & { error?: string };
    const req = typeof body === 'object' ? (body as AdmissionReviewDoc | null)?.request : null;
    if (hook === main) {
      sent.push({
        mode,
        status: res.status,
        result: res.status !== 200 ? 'error' : parsed.response.allowed ? 'allowed' : 'denied',
        ...(res.status === 200 && req ? { uid: req.uid, kind: req.kind.kind } : {}),
      });
    }
    if (res.status === 200) {
      const review = body as AdmissionReviewDoc;
      assert.equal(parsed.kind, 'AdmissionReview', res.text);
      assert.equal(parsed.apiVersion, review.apiVersion, 'the request’s apiVersion');
      assert.equal(parsed.response.uid, review.request?.uid, 'response.uid is request.uid');
      assert.equal(typeof parsed.response.allowed, 'boolean');
      if (!parsed.response.allowed) {
        assert.equal(parsed.response.status?.code, 403, res.text);
        assert.equal(parsed.response.patch, undefined, 'no patch with a denial');
      }
    } else {
      assert.equal(parsed.response, undefined, `an error is not an AdmissionReview: ${res.text}`);
      assert.equal(typeof parsed.error, 'string', res.text);
    }
    return { res, answer: parsed };
  }

  async function allowed(mode: Mode, body: unknown, hook: Hook = main): Promise<Answer> {
    const { res, answer } = await send(mode, body, hook);
    assert.equal(res.status, 200, res.text);
    assert.equal(answer.response.allowed, true, res.text);
    return answer;
  }

  /** denied expects a denial and returns its message. */
  async function denied(mode: Mode, body: unknown, hook: Hook = main): Promise<string> {
    const { res, answer } = await send(mode, body, hook);
    assert.equal(res.status, 200, res.text);
    assert.equal(answer.response.allowed, false, res.text);
    return answer.response.status?.message ?? '';
  }

  /** refusal is how a denial names an image: `IMAGE: CODE: reason`. */
  const refusal = (image: string, code: string) =>
    new RegExp(`(?:: |; )${image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${code}: `);

  before(async function () {
    this.timeout(180_000);
    const why = skipReason();
    if (why !== undefined) {
      process.stderr.write(`  skipping the admission integration tests: ${why}\n`);
      this.skip();
    }
    world = await AdmissionWorld.start();
    main = await startHook(8_000);
  });

  after(async function () {
    this.timeout(60_000);
    world?.blackHole?.drop();
    for (const h of extra.splice(0)) await h.close();
    await main?.close();
    await world?.close();
  });

  describe('the HTTPS server', () => {
    it('answers GET /healthz and /readyz with 200 over TLS from the test CA', async () => {
      assert.match(main.server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      for (const path of ['/healthz', '/readyz']) {
        const r = await main.client.get(path);
        assert.equal(r.status, 200, `${path}: ${r.text}`);
      }
    });

    it('is not trusted by a client without the CA', async () => {
      const bare = new ReviewClient(main.server.url, undefined, { timeoutMs: 5_000 });
      try {
        await assert.rejects(bare.get('/healthz'), /self[- ]signed|unable to verify|certificate/i);
      } finally {
        bare.close();
      }
    });

    it('answers 404 for another path and 405 for GET /validate', async () => {
      assert.equal((await main.client.post('/admit', world.reviewText('pod.json'))).status, 404);
      assert.equal((await main.client.get('/validate')).status, 405);
      assert.equal((await main.client.get('/mutate')).status, 405);
    });
  });

  it('every saved review is covered by a test', () => {
    const covered = [...Object.keys(WORKLOADS), ...MALFORMED, ...OTHERS].sort();
    assert.deepEqual(readdirSync(REVIEWS_DIR).sort(), covered);
  });

  describe('workload kinds: every image field is checked (saved reviews)', () => {
    for (const [file, w] of Object.entries(WORKLOADS)) {
      const fields = Object.entries(w.images);
      const distinct = [...new Set(Object.values(w.images))];

      it(`${file}: the saved review is a ${w.kind} with its images where the test expects`, () => {
        const r = world.review(file);
        assert.equal(r.apiVersion, 'admission.k8s.io/v1');
        assert.equal(requestOf(r).kind.kind, w.kind);
        for (const [path, name] of fields)
          assert.equal(pointerGet(requestOf(r).object, path), world.image(`${name}:1.0`), path);
      });

      it(`${file}: validate allows it and warns once per unpinned image`, async () => {
        const a = await allowed('validate', world.review(file));
        assert.equal(a.response.patch, undefined, 'validate never patches');
        const warnings = a.response.warnings ?? [];
        assert.equal(warnings.length, distinct.length, warnings.join('\n'));
        for (const name of distinct) {
          assert.ok(
            warnings.some(
              (x) => x.includes(world.image(`${name}:1.0`)) && x.includes(world.pinned(name)),
            ),
            `a warning for ${name}: ${warnings.join('\n')}`,
          );
        }
      });

      it(`${file}: mutate pins each of its ${fields.length} images at its JSON pointer; a second pass patches nothing`, async () => {
        const review = world.review(file);
        const a = await allowed('mutate', review);
        const ops = decodePatch(a);
        assert.deepEqual(
          [...ops].sort((x, y) => x.path.localeCompare(y.path)),
          fields
            .map(([path, name]) => ({ op: 'replace', path, value: world.pinned(name) }))
            .sort((x, y) => x.path.localeCompare(y.path)),
        );
        for (const op of ops) {
          assert.match(op.value, /^127\.0\.0\.1:\d+\/demo\/[a-z]+:1\.0@sha256:[0-9a-f]{64}$/);
        }

        const again = withUid(structuredClone(review));
        const req = requestOf(again);
        req.object = applyPatch(req.object, ops);
        const second = await allowed('mutate', again);
        assert.equal(second.response.patch, undefined, 'pinned images need no patch');
        assert.equal(second.response.patchType, undefined);
        const validated = await allowed('validate', withUid(structuredClone(again)));
        assert.equal(validated.response.warnings, undefined, 'no warning for pinned images');
      });

      it(`${file}: an unsigned image in any one of its ${fields.length} image fields is denied`, async () => {
        const unsigned = world.image('unsigned:1.0');
        for (const [path, name] of fields) {
          const r = withUid(world.review(file));
          pointerSet(requestOf(r).object, path, unsigned);
          for (const mode of ['validate', 'mutate'] as const) {
            const message = await denied(mode, structuredClone(r));
            assert.match(message, refusal(unsigned, 'UNSIGNED_IMAGE'), `${path}: ${message}`);
            assert.match(message, /not signed/, message);
            // the signed images left are not what is refused
            for (const other of distinct.filter((d) => d !== name))
              assert.doesNotMatch(message, refusal(world.image(`${other}:1.0`), '[A-Z_]+'));
          }
        }
      });
    }

    it('an unsigned image only in initContainers is denied', async () => {
      const r = withUid(world.review('pod-ephemeral-debug.json'));
      const unsigned = world.image('init:unsigned');
      pointerSet(requestOf(r).object, '/spec/initContainers/0/image', unsigned);
      const message = await denied('validate', r);
      assert.match(message, refusal(unsigned, 'UNSIGNED_IMAGE'), message);
    });

    it('an unsigned image only in ephemeralContainers (kubectl debug) is denied', async () => {
      const r = withUid(world.review('pod-ephemeral-debug.json'));
      assert.equal(requestOf(r).operation, 'UPDATE');
      assert.equal(requestOf(r).subResource, 'ephemeralcontainers');
      const unsigned = world.image('debug:unsigned');
      pointerSet(requestOf(r).object, '/spec/ephemeralContainers/0/image', unsigned);
      for (const mode of ['validate', 'mutate'] as const) {
        const message = await denied(mode, structuredClone(r));
        assert.match(message, refusal(unsigned, 'UNSIGNED_IMAGE'), message);
      }
    });

    it('the same image in two containers is verified for both fields and patched at both', async () => {
      const r = withUid(world.review('pod.json'));
      pointerSet(requestOf(r).object, '/spec/containers/1/image', world.image('app:1.0'));
      const ops = decodePatch(await allowed('mutate', r));
      assert.deepEqual(ops, [
        { op: 'replace', path: '/spec/containers/0/image', value: world.pinned('app') },
        { op: 'replace', path: '/spec/containers/1/image', value: world.pinned('app') },
      ]);
    });

    it('admission.k8s.io/v1beta1 is answered in v1beta1', async () => {
      const r = withUid(world.review('deployment.json'));
      r.apiVersion = 'admission.k8s.io/v1beta1';
      const a = await allowed('mutate', r);
      assert.equal(a.apiVersion, 'admission.k8s.io/v1beta1');
    });
  });

  describe('denials name each refused image and why', () => {
    it('pod-unsigned.json: denied, naming the unsigned image with UNSIGNED_IMAGE (validate and mutate)', async () => {
      const unsigned = world.image('unsigned:1.0');
      for (const mode of ['validate', 'mutate'] as const) {
        const message = await denied(mode, world.review('pod-unsigned.json'));
        assert.match(message, /^tufa: image not verified: /);
        assert.match(message, refusal(unsigned, 'UNSIGNED_IMAGE'), message);
        assert.doesNotMatch(message, refusal(world.image('app:1.0'), '[A-Z_]+'), message);
      }
    });

    it('an unsigned tag of a signed repository is denied (demo/app:2.0)', async () => {
      const r = withUid(world.review('pod.json'));
      const image = world.image('app:2.0');
      pointerSet(requestOf(r).object, '/spec/containers/0/image', image);
      assert.match(await denied('validate', r), refusal(image, 'UNSIGNED_IMAGE'));
    });

    it('an image no policy rule covers is denied with NO_POLICY', async () => {
      const r = withUid(world.review('pod.json'));
      const image = `${world.reg.host}/other/app:1.0`;
      pointerSet(requestOf(r).object, '/spec/containers/1/image', image);
      assert.match(await denied('mutate', r), refusal(image, 'NO_POLICY'));
    });

    it('a pinned image whose digest is not the signed one is denied with DIGEST_MISMATCH', async () => {
      const r = withUid(world.review('deployment.json'));
      // the sidecar's digest under the app's tag
      const image = `${world.image('app:1.0')}@${world.digests.sidecar}`;
      pointerSet(requestOf(r).object, '/spec/template/spec/containers/0/image', image);
      assert.match(await denied('mutate', r), refusal(image, 'DIGEST_MISMATCH'));
    });

    it('an image reference that does not parse is denied with BAD_REFERENCE', async () => {
      const r = withUid(world.review('job.json'));
      const image = `${world.reg.host}/demo/App:1.0`;
      pointerSet(requestOf(r).object, '/spec/template/spec/containers/0/image', image);
      assert.match(await denied('validate', r), refusal(image, 'BAD_REFERENCE'));
    });

    it('an image naming a local layout (oci:…) is never read from disk: BAD_REFERENCE', async () => {
      const r = withUid(world.review('pod.json'));
      const image = `oci:${world.tmp}/build/layout:app`;
      pointerSet(requestOf(r).object, '/spec/containers/0/image', image);
      assert.match(await denied('validate', r), refusal(image, 'BAD_REFERENCE'));
    });

    it('several refused images are each named once, with their own reasons', async () => {
      const r = withUid(world.review('pod-ephemeral-debug.json'));
      const unsigned = world.image('unsigned:1.0');
      const stranger = `${world.reg.host}/other/tool:1.0`;
      const o = requestOf(r).object;
      pointerSet(o, '/spec/initContainers/0/image', unsigned);
      pointerSet(o, '/spec/containers/1/image', unsigned);
      pointerSet(o, '/spec/ephemeralContainers/0/image', stranger);
      const message = await denied('validate', r);
      assert.match(message, refusal(unsigned, 'UNSIGNED_IMAGE'));
      assert.match(message, refusal(stranger, 'NO_POLICY'));
      assert.equal(message.split(`${unsigned}: UNSIGNED_IMAGE`).length, 2, `once: ${message}`);
      assert.doesNotMatch(message, refusal(world.image('app:1.0'), '[A-Z_]+'));
    });
  });

  describe('references and operations', () => {
    it('UPDATE: the new object is what is checked, not the old one', async () => {
      const r = withUid(world.review('deployment-update.json'));
      const req = requestOf(r);
      assert.equal(req.operation, 'UPDATE');
      // old: demo/app:0.9 (never signed) → new: signed images: allowed (the workload tests)
      // old: signed → new: unsigned: denied
      req.oldObject = structuredClone(req.object);
      const unsigned = world.image('unsigned:1.0');
      pointerSet(req.object, '/spec/template/spec/containers/1/image', unsigned);
      assert.match(await denied('validate', r), refusal(unsigned, 'UNSIGNED_IMAGE'));
    });

    it('a digest-only reference (registry/repo@sha256:…) no signed target lists is denied', async () => {
      // the digest is verified as the target registry/repo@sha256:… (repo add-image lists it);
      // this world signs tags only, so the digest alone is not signed
      const r = withUid(world.review('pod.json'));
      const image = `${world.image('app')}@${world.digests.app}`;
      pointerSet(requestOf(r).object, '/spec/containers/0/image', image);
      const message = await denied('validate', r);
      assert.match(message, refusal(image, 'UNSIGNED_IMAGE'));
      assert.match(message, /not signed \(no such target/);
    });
  });

  describe('operations and kinds without images', () => {
    it('pod-delete.json: DELETE is allowed (object null) though the old Pod runs an unsigned image', async () => {
      const r = world.review('pod-delete.json');
      assert.equal(requestOf(r).object, null);
      assert.ok(requestOf(r).oldObject !== null);
      for (const mode of ['validate', 'mutate'] as const) {
        const a = await allowed(mode, structuredClone(r));
        assert.equal(a.response.patch, undefined);
        assert.equal(a.response.warnings, undefined);
      }
      const record = main.logs.findLast((l) => l.uid === requestOf(r).uid);
      assert.deepEqual(record?.images, [], 'nothing was verified');
    });

    it('CONNECT (kubectl exec) is allowed', async () => {
      const r = withUid(world.review('pod-delete.json'));
      const req = requestOf(r);
      req.operation = 'CONNECT';
      req.kind = { group: '', version: 'v1', kind: 'PodExecOptions' };
      req.subResource = 'exec';
      req.object = { kind: 'PodExecOptions', apiVersion: 'v1', stdin: true, command: ['sh'] };
      req.oldObject = null;
      await allowed('validate', r);
    });

    it('configmap.json: a kind without pods is allowed untouched, even naming an unsigned image', async () => {
      for (const mode of ['validate', 'mutate'] as const) {
        const a = await allowed(mode, world.review('configmap.json'));
        assert.equal(a.response.patch, undefined);
        assert.equal(a.response.warnings, undefined);
      }
    });
  });

  describe('malformed reviews', () => {
    for (const file of MALFORMED) {
      it(`${file}: HTTP 400 with an error, in both modes`, async () => {
        for (const mode of ['validate', 'mutate'] as const) {
          const { res, answer } = await send(mode, world.reviewText(file));
          assert.equal(res.status, 400, res.text);
          assert.ok(((answer as { error?: string }).error ?? '').length > 0);
        }
      });
    }

    it('an empty body and a JSON array: HTTP 400', async () => {
      for (const body of ['', '[]', 'null']) {
        const { res } = await send('validate', body);
        assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      }
    });

    it('invalid-container-without-image.json: a well-formed review of a bad object is denied, naming the field', async () => {
      const message = await denied('mutate', world.review('invalid-container-without-image.json'));
      assert.match(message, /cannot read the images of this Deployment/);
      assert.match(message, /\/spec\/template\/spec\/containers\/1: a container without an image/);
    });

    it('containers that are not a list: denied', async () => {
      const r = withUid(world.review('pod.json'));
      pointerSet(requestOf(r).object, '/spec/containers', { app: world.image('unsigned:1.0') });
      assert.match(await denied('validate', r), /\/spec\/containers: expected an array/);
    });

    // The API server must get an answer (413), not a reset connection.
    it('a review larger than the 4 MiB limit gets HTTP 413', async () => {
      const r = withUid(world.review('configmap.json'));
      (requestOf(r).object as { data: Record<string, string> }).data.big = 'x'.repeat(5 << 20);
      // the server counts it as an error before answering, whatever reaches the client
      sent.push({ mode: 'validate', status: 413, result: 'error' });
      const res = await main.client.post('/validate', r);
      assert.equal(res.status, 413, res.text);
    });
  });

  it('answers 48 concurrent reviews, each for its own uid', async () => {
    const files = ['pod.json', 'pod-unsigned.json', 'deployment.json', 'cronjob.json'];
    const jobs = Array.from({ length: 48 }, (_, i) => {
      const file = files[i % files.length] as string;
      const mode: Mode = i % 3 === 0 ? 'mutate' : 'validate';
      return { file, mode, review: withUid(world.review(file)) };
    });
    const answers = await Promise.all(jobs.map((j) => send(j.mode, j.review)));
    answers.forEach(({ answer }, i) => {
      const j = jobs[i] as (typeof jobs)[number];
      assert.equal(answer.response.uid, requestOf(j.review).uid);
      assert.equal(answer.response.allowed, j.file !== 'pod-unsigned.json', j.file);
    });
  });

  // Lookups of roles already verified in memory take no lock: concurrent reviews must not queue
  // on the metadata folder's file lock (which once made signed images hit the deadline).
  it('a burst of 256 reviews of signed images, 64 at a time, is all allowed', async function () {
    this.timeout(60_000);
    const hook = await startHook(2_000);
    extra.push(hook);
    const files = ['pod.json', 'deployment.json', 'pod-ephemeral-debug.json', 'cronjob.json'];
    for (const file of files) await allowed('validate', world.review(file), hook); // warm
    let next = 0;
    const outcomes: string[] = [];
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < 256) {
          const file = files[next++ % files.length] as string;
          const { answer } = await send('validate', withUid(world.review(file)), hook);
          outcomes.push(
            answer.response.allowed ? 'allowed' : (answer.response.status?.message ?? ''),
          );
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const refused = outcomes.filter((x) => x !== 'allowed');
    assert.deepEqual(
      refused.slice(0, 3),
      [],
      `${refused.length} of 256 signed reviews denied in ${seconds.toFixed(1)} s`,
    );
    assert.ok(seconds < 5, `256 warm reviews took ${seconds.toFixed(1)} s`);
  });

  describe('failing closed', () => {
    it('registry down: an image whose manifest was never fetched is denied at once; one verified before is still allowed', async function () {
      this.timeout(60_000);
      // a webhook that has verified nothing yet, with a deadline well above what a refusal takes
      const cold = await startHook(3_000);
      extra.push(cold);
      await world.reg.stop();
      try {
        const started = performance.now();
        const message = await denied('validate', world.review('pod.json'), cold);
        const ms = performance.now() - started;
        assert.ok(ms < 3_000, `denied in ${Math.round(ms)} ms`);
        assert.match(message, refusal(world.image('app:1.0'), 'REGISTRY_UNAVAILABLE'), message);
        assert.match(message, refusal(world.image('sidecar:1.0'), 'REGISTRY_UNAVAILABLE'));
        // Manifests are cached by their signed digest: the signed length and hashes are checked
        // again, and the TUF metadata is fresh, so the warm webhook does not need the registry.
        await allowed('validate', withUid(world.review('pod.json')));
      } finally {
        await world.reg.restart();
      }
      await allowed('validate', withUid(world.review('pod.json')), cold);
    });

    it('TUF repository down: a webhook without fresh trust data denies; once it is back, it allows', async function () {
      this.timeout(60_000);
      const cold = await startHook(3_000);
      extra.push(cold);
      world.tuf.set('timestamp.json', { kind: 'status', status: 503 });
      try {
        const message = await denied('mutate', world.review('deployment.json'), cold);
        for (const name of ['init', 'app', 'sidecar'] as const)
          assert.match(message, refusal(world.image(`${name}:1.0`), '[A-Z_]+'), message);
        assert.match(message, /503/, message);
      } finally {
        world.tuf.clear();
      }
      // the failed refresh was not kept: the next review refreshes again
      await allowed('mutate', withUid(world.review('deployment.json')), cold);
    });

    it('a registry that never answers: denied when the deadline (500 ms) passes, not later', async function () {
      this.timeout(30_000);
      const quick = await startHook(500, { timeoutMs: 10_000 });
      extra.push(quick);
      const r = withUid(world.review('pod.json'));
      const image = `${world.blackHole.host}/demo/app:1.0`;
      pointerSet(requestOf(r).object, '/spec/containers/0/image', image);
      const started = performance.now();
      const message = await denied('validate', r, quick);
      const ms = performance.now() - started;
      assert.match(message, /did not finish within 500 ms \(denied\)/, message);
      // well before the registry client's own 10 s timeout
      assert.ok(ms >= 450 && ms < 3_000, `answered after ${Math.round(ms)} ms`);
      assert.ok(world.blackHole.open > 0, 'the manifest request did reach the silent registry');
      assert.equal((await quick.client.get('/healthz')).status, 200);
      const record = quick.logs.findLast((l) => l.uid === requestOf(r).uid);
      assert.equal(record?.result, 'denied');
      world.blackHole.drop();
    });

    // On the deadline, the denial and the log record name the image (the registry) that was slow.
    it('a deadline denial names the image it was still waiting for, in the message and the log', async function () {
      this.timeout(30_000);
      const quick = await startHook(500, { timeoutMs: 10_000 });
      extra.push(quick);
      const r = withUid(world.review('pod.json'));
      const image = `${world.blackHole.host}/demo/app:1.0`;
      pointerSet(requestOf(r).object, '/spec/containers/0/image', image);
      try {
        const message = await denied('validate', r, quick);
        assert.match(message, /did not finish within 500 ms/);
        assert.ok(message.includes(image), `the slow image is named: ${message}`);
        const record = quick.logs.findLast((l) => l.uid === requestOf(r).uid);
        assert.ok(JSON.stringify(record?.images).includes(image), JSON.stringify(record));
      } finally {
        world.blackHole.drop();
      }
    });
  });

  describe('metrics and logs', () => {
    it('/metrics counts every review by mode and result, with a latency histogram', async () => {
      const res = await main.client.get('/metrics');
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^text\/plain/);
      const m = parseMetrics(res.text);
      const count = (mode: Mode, result: string) =>
        sent.filter((s) => s.mode === mode && s.result === result).length;
      for (const mode of ['validate', 'mutate'] as const) {
        for (const result of ['allowed', 'denied', 'error']) {
          const n = count(mode, result);
          const key = `tufa_admission_reviews_total{mode="${mode}",result="${result}"}`;
          if (n === 0) assert.equal(m.get(key), undefined, key);
          else assert.equal(m.get(key), n, `${key}\n${res.text}`);
        }
        // every answered review is timed (a 413 is refused before it is read)
        const timed = sent.filter((s) => s.mode === mode && s.status !== 413).length;
        const h = 'tufa_admission_review_duration_seconds';
        assert.equal(m.get(`${h}_count{mode="${mode}"}`), timed, `${h}_count ${mode}`);
        assert.equal(m.get(`${h}_bucket{mode="${mode}",le="+Inf"}`), timed);
        const sum = m.get(`${h}_sum{mode="${mode}"}`) as number;
        assert.ok(sum > 0 && sum < timed * 10, `${h}_sum ${sum}`);
        let previous = 0;
        for (const le of ['0.001', '0.005', '0.01', '0.05', '0.1', '1', '10']) {
          const v = m.get(`${h}_bucket{mode="${mode}",le="${le}"}`);
          assert.ok(v !== undefined && v >= previous && v <= timed, `le=${le}: ${v}`);
          previous = v;
        }
      }
      assert.ok((m.get('tufa_admission_images_total{result="verified"}') ?? 0) > 0);
      assert.ok((m.get('tufa_admission_images_total{result="refused"}') ?? 0) > 0);
    });

    it('logs one structured record per review, with uid, kind and result', () => {
      const records = main.logs.filter((l) => l.msg === 'review');
      // every record serializes to one JSON line
      for (const r of records) assert.doesNotMatch(JSON.stringify(r), /\n/);
      const key = (x: { mode?: unknown; result?: unknown; uid?: unknown; kind?: unknown }) =>
        `${x.mode} ${x.result} ${x.uid ?? '-'} ${x.kind ?? '-'}`;
      assert.deepEqual(
        records.map(key).sort(),
        sent
          .filter((s) => s.status !== 413)
          .map(key)
          .sort(),
      );
      for (const r of records) {
        assert.ok(['info', 'warn'].includes(String(r.level)));
        assert.equal(typeof r.ms, 'number');
        if (r.result === 'error') assert.equal(typeof r.error, 'string');
        if (r.result === 'denied' && Array.isArray(r.images) && r.images.length > 0) {
          const refused = (r.images as Array<{ code?: string }>).filter((i) => i.code);
          assert.ok(refused.length > 0, JSON.stringify(r));
        }
      }
    });
  });

  describe('tufa admission serve (CLI subprocess)', () => {
    it('allows a signed Pod, denies an unsigned one, logs JSON lines and stops on SIGTERM', async function () {
      this.timeout(60_000);
      const port = await freePort();
      const dir = mkdtempSync(join(world.tmp, 'cli-'));
      const child = spawn(
        process.execPath,
        [
          TUFA_BIN,
          'admission',
          'serve',
          '--policy',
          world.policyFile,
          '--tls-cert',
          world.tls.certFile,
          '--tls-key',
          world.tls.keyFile,
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--cache-dir',
          join(dir, 'cache'),
          '--deadline',
          '8',
          '--refresh-interval',
          '30',
        ],
        {
          env: {
            ...process.env,
            DOCKER_CONFIG: join(dir, 'docker'),
            XDG_CACHE_HOME: join(dir, 'xdg'),
            NO_COLOR: '1',
          },
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => {
        stdout += s;
      });
      child.stderr.setEncoding('utf8').on('data', (s: string) => {
        stderr += s;
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) =>
        child.once('exit', (code, signal) => ok({ code, signal })),
      );
      let done = false;
      void exited.then(() => {
        done = true;
      });
      const client = new ReviewClient(`https://127.0.0.1:${port}`, world.tls.ca, {
        timeoutMs: 15_000,
      });
      const records = () =>
        stdout
          .split('\n')
          .slice(0, -1) // complete lines only
          .map((l) => JSON.parse(l) as Log);
      try {
        const until = Date.now() + 20_000;
        while (!records().some((r) => r.msg === 'listening')) {
          assert.ok(!done, `tufa admission serve exited\n${stdout}\n${stderr}`);
          assert.ok(Date.now() < until, `not listening after 20 s\n${stdout}\n${stderr}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(records()[0]?.url, `https://127.0.0.1:${port}`);
        assert.equal((await client.get('/readyz')).status, 200);

        const ok = world.review('pod.json');
        const okRes = await client.post('/validate', ok);
        assert.equal(okRes.status, 200, okRes.text);
        const okAnswer = JSON.parse(okRes.text) as Answer;
        assert.equal(okAnswer.response.uid, requestOf(ok).uid);
        assert.equal(okAnswer.response.allowed, true, okRes.text);

        const bad = world.review('pod-unsigned.json');
        const badRes = await client.post('/mutate', bad);
        assert.equal(badRes.status, 200, badRes.text);
        const badAnswer = JSON.parse(badRes.text) as Answer;
        assert.equal(badAnswer.response.uid, requestOf(bad).uid);
        assert.equal(badAnswer.response.allowed, false);
        assert.match(
          badAnswer.response.status?.message ?? '',
          refusal(world.image('unsigned:1.0'), 'UNSIGNED_IMAGE'),
        );

        client.close();
        process.kill(child.pid as number, 'SIGTERM');
        const timer = setTimeout(() => {
          if (!done) process.kill(-(child.pid as number), 'SIGKILL');
        }, 10_000);
        const { code, signal } = await exited;
        clearTimeout(timer);
        assert.equal(signal, null, `stopped by SIGTERM handling, not killed\n${stderr}`);
        assert.equal(code, 0, stderr);

        const logged = records();
        const reviews = logged.filter((r) => r.msg === 'review');
        assert.deepEqual(
          reviews.map((r) => [r.uid, r.kind, r.mode, r.result]),
          [
            [requestOf(ok).uid, 'Pod', 'validate', 'allowed'],
            [requestOf(bad).uid, 'Pod', 'mutate', 'denied'],
          ],
        );
        for (const r of logged) assert.equal(typeof r.time, 'string');
        assert.equal(logged.at(-1)?.msg, 'shutting down');
      } finally {
        client.close();
        if (!done) {
          try {
            process.kill(-(child.pid as number), 'SIGKILL');
          } catch {
            // gone
          }
          await exited;
        }
      }
    });
  });
});
