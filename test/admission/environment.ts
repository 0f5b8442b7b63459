/**
 * The world the admission webhook is tested and load-tested in, all on 127.0.0.1:
 *
 *  - a real registry (CNCF distribution, {@link RegistryServer} `plain`) holding four signed
 *    images (`demo/app:1.0`, `demo/sidecar:1.0`, `demo/init:1.0`, `demo/debug:1.0`, each built
 *    with umoci, with its own digest) and unsigned tags (`demo/unsigned:1.0`, `demo/app:2.0`);
 *  - a TUF repository signing those manifests as targets `registry/repo:tag` (length and hashes
 *    of the bytes the registry serves), published with `buildRepository` and served over HTTP;
 *  - a "black hole" registry: a TCP listener that accepts connections and never answers, whose
 *    `demo/app:1.0` is signed too, to show that a review is denied at its deadline;
 *  - a trust policy file with the trusted root beside it;
 *  - TLS material made with openssl: a CA and a server certificate for 127.0.0.1 / localhost.
 *
 * Saved AdmissionReviews (`test/admission/reviews/`) name images `REGISTRY/demo/…`;
 * {@link AdmissionWorld.reviewText} puts the live registry's host:port in their place.
 */

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTrustFile } from '../../src/cli/images.js';
import { RegistryClient } from '../../src/oci/index.js';
import { buildRepository, KeyObjectSigner } from '../../src/repository/index.js';
import { ImageVerifier, TrustPolicy } from '../../src/verify/index.js';
import { ROOT } from '../support/paths.js';
import { buildImage, RegistryServer, runOk } from '../support/registry.js';
import { StaticServer } from '../support/static-server.js';

/** The saved AdmissionReviews. */
export const REVIEWS_DIR = join(ROOT, 'test', 'admission', 'reviews');

/** The signed images, each `REGISTRY/demo/<name>:1.0`. */
export type SignedName = 'app' | 'sidecar' | 'init' | 'debug';
export const SIGNED: readonly SignedName[] = ['app', 'sidecar', 'init', 'debug'];

/** TLS files for the webhook (PEM). */
export interface TlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * makeTls writes a CA and a server certificate for IP 127.0.0.1 and DNS localhost (EC P-256,
 * two days) into `dir`, with openssl, as docs/kubernetes.md tells an operator to.
 */
export async function makeTls(dir: string): Promise<TlsFiles> {
  mkdirSync(dir, { recursive: true });
  const f = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const o = { timeoutMs: 30_000 };
  await runOk(
    'openssl',
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.crt'),
      '-days',
      '2',
      '-subj',
      '/CN=tufa admission test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    o,
  );
  await runOk(
    'openssl',
    ['req', ...ec, '-keyout', f('tls.key'), '-out', f('tls.csr'), '-subj', '/CN=127.0.0.1'],
    o,
  );
  writeFileSync(
    f('tls.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  await runOk(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      f('tls.csr'),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f('tls.crt'),
      '-days',
      '2',
      '-extfile',
      f('tls.ext'),
    ],
    o,
  );
  return {
    caFile: f('ca.crt'),
    certFile: f('tls.crt'),
    keyFile: f('tls.key'),
    ca: readFileSync(f('ca.crt'), 'utf8'),
    cert: readFileSync(f('tls.crt'), 'utf8'),
    key: readFileSync(f('tls.key'), 'utf8'),
  };
}

/** A TCP listener on 127.0.0.1 that accepts connections and never says a word. */
export class BlackHole {
  private readonly sockets = new Set<Socket>();
  host = '';

  private constructor(private readonly server: Server) {
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(): Promise<BlackHole> {
    const b = new BlackHole(createServer());
    await new Promise<void>((ok, fail) => {
      b.server.once('error', fail);
      b.server.listen(0, '127.0.0.1', () => ok());
    });
    b.host = `127.0.0.1:${(b.server.address() as AddressInfo).port}`;
    return b;
  }

  /** How many connections are open now. */
  get open(): number {
    return this.sockets.size;
  }

  /** drop cuts every open connection (clients waiting on it fail at once) and keeps listening. */
  drop(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((ok) => this.server.close(() => ok()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/** One HTTP exchange. */
export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** ms from sending to the end of the response. */
  readonly ms: number;
}

/**
 * An HTTPS client for the webhook: keep-alive connections, the test CA as the only trusted
 * root, and a timeout on every request.
 */
export class ReviewClient {
  private readonly agent: Agent;

  constructor(
    readonly baseUrl: string,
    ca: string | undefined,
    private readonly o: { maxSockets?: number; timeoutMs?: number } = {},
  ) {
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: o.maxSockets ?? 16,
      ...(ca === undefined ? {} : { ca }),
    });
  }

  request(method: string, path: string, body?: string | Buffer): Promise<HttpResult> {
    const started = performance.now();
    const timeoutMs = this.o.timeoutMs ?? 15_000;
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.baseUrl),
        {
          method,
          agent: this.agent,
          headers:
            body === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
              ms: performance.now() - started,
            }),
          );
        },
      );
      req.setTimeout(timeoutMs, () =>
        req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  /** post sends a review: a string or Buffer as is, anything else as JSON. */
  post(path: string, body: unknown): Promise<HttpResult> {
    return this.request(
      'POST',
      path,
      typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    );
  }

  get(path: string): Promise<HttpResult> {
    return this.request('GET', path);
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The registry, TUF repository, policy and TLS material of the admission tests. */
export class AdmissionWorld {
  /** Signed manifest digest of each signed image. */
  readonly digests = {} as Record<SignedName, string>;
  reg!: RegistryServer;
  tuf!: StaticServer;
  blackHole!: BlackHole;
  policyFile = '';
  policy!: TrustPolicy;
  tls!: TlsFiles;

  private constructor(
    /** The temp folder holding everything (removed by close). */
    readonly tmp: string,
  ) {}

  /** start builds the whole world (about 20 s: umoci, skopeo, the registry). */
  static async start(): Promise<AdmissionWorld> {
    const w = new AdmissionWorld(mkdtempSync(join(tmpdir(), 'tufa-admission-')));
    try {
      await w.setup();
    } catch (e) {
      await w.close();
      throw e;
    }
    return w;
  }

  private async setup(): Promise<void> {
    const layout = join(this.tmp, 'build', 'layout');
    const built = new Map<SignedName, string>();
    for (const name of SIGNED) {
      const img = await buildImage(`${layout}:${name}`, {
        [`/etc/${name}.conf`]: `${name} ${randomBytes(8).toString('hex')}\n`,
      });
      built.set(name, img.ref);
    }
    this.reg = await RegistryServer.start('plain');
    this.blackHole = await BlackHole.start();
    const manifests = new Map<SignedName, Buffer>();
    for (const name of SIGNED) {
      const ref = built.get(name) as string;
      const pushed = await this.reg.push(ref, `demo/${name}:1.0`);
      const bytes = await this.reg.inspectRaw(`demo/${name}:1.0`);
      manifests.set(name, bytes);
      this.digests[name] = pushed;
    }
    // in the registry, never signed
    await this.reg.push(built.get('app') as string, 'demo/unsigned:1.0');
    await this.reg.push(built.get('app') as string, 'demo/app:2.0');

    const signer = () => new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);
    const files = await buildRepository({
      root: { signers: [signer()] },
      targets: { signers: [signer()] },
      snapshot: { signers: [signer()] },
      timestamp: { signers: [signer()] },
      files: [
        ...SIGNED.map((name) => ({
          path: `${this.reg.host}/demo/${name}:1.0`,
          content: manifests.get(name) as Buffer,
        })),
        { path: `${this.blackHole.host}/demo/app:1.0`, content: manifests.get('app') as Buffer },
      ],
      // the verifier reads the real clock
      now: Date.now(),
    });
    this.tuf = await StaticServer.start(files);

    const policyDir = join(this.tmp, 'policy');
    mkdirSync(policyDir);
    writeFileSync(join(policyDir, 'root.json'), files.get('1.root.json') as Uint8Array);
    this.policyFile = join(policyDir, 'tufa-policy.json');
    writeFileSync(
      this.policyFile,
      `${JSON.stringify(
        {
          rules: [this.reg.host, this.blackHole.host].map((host) => ({
            match: `${host}/demo/**`,
            tuf: { metadataUrl: this.tuf.url(), root: 'root.json' },
          })),
        },
        null,
        2,
      )}\n`,
    );
    this.policy = await TrustPolicy.load(this.policyFile);
    this.tls = await makeTls(join(this.tmp, 'tls'));
  }

  /** image is `REGISTRY/demo/<repoTag>` on the live registry. */
  image(repoTag: string): string {
    return `${this.reg.host}/demo/${repoTag}`;
  }

  /** pinned is the reference the webhook pins a signed image to. */
  pinned(name: SignedName): string {
    return `${this.image(`${name}:1.0`)}@${this.digests[name]}`;
  }

  /** verifier makes an ImageVerifier for the world's policy, with its own cache folder. */
  verifier(o: { refreshIntervalMs?: number } = {}): ImageVerifier {
    return new ImageVerifier({
      policy: this.policy,
      files: readTrustFile,
      cacheDir: mkdtempSync(join(this.tmp, 'cache-')),
      refreshIntervalMs: o.refreshIntervalMs ?? 60_000,
    });
  }

  /** registry makes a client of the world's registry. */
  registry(o: { timeoutMs?: number } = {}): RegistryClient {
    return new RegistryClient(this.reg.clientOptions({ timeoutMs: o.timeoutMs ?? 15_000 }));
  }

  /** reviewText reads a saved review with the live registry in place of `REGISTRY/`. */
  reviewText(file: string): string {
    return readFileSync(join(REVIEWS_DIR, file), 'utf8').replace(
      /\bREGISTRY\//g,
      `${this.reg.host}/`,
    );
  }

  /** review parses a saved review (a fresh copy each time). */
  review<T = AdmissionReviewDoc>(file: string): T {
    return JSON.parse(this.reviewText(file)) as T;
  }

  async close(): Promise<void> {
    await this.tuf?.close();
    await this.blackHole?.close();
    await this.reg?.close();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** The parts of an AdmissionReview request the tests read and change. */
export interface AdmissionReviewDoc {
  apiVersion: string;
  kind: string;
  request: {
    uid: string;
    kind: { group: string; version: string; kind: string };
    operation: string;
    namespace?: string;
    name?: string;
    object: unknown;
    oldObject?: unknown;
    [k: string]: unknown;
  } | null;
}
