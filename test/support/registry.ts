/**
 * A real registry for integration tests: CNCF distribution 2.8 (`docker-registry serve`) in a
 * temp folder on 127.0.0.1, in one of four modes:
 *
 *  - `plain`: HTTP, anonymous;
 *  - `htpasswd`: HTTP, basic auth from a bcrypt htpasswd file (`htpasswd -Bbn`);
 *  - `tls`: HTTPS with a server certificate for 127.0.0.1 signed by a test CA (both made here
 *    with `openssl`); clients get the CA (`ca` option, skopeo `--cert-dir`);
 *  - `token`: HTTP with `auth.token`: a {@link TokenIssuer} on 127.0.0.1 signs ES256 JWTs whose
 *    `kid` is the libtrust fingerprint of its key, and the key's self-signed certificate is the
 *    registry's `rootcertbundle` (distribution looks a `kid` up among the bundle's keys).
 *
 * Images are built with umoci ({@link buildImage}, {@link buildIndex}) and pushed with skopeo
 * ({@link RegistryServer.push}); {@link RegistryServer.storagePath} finds a blob's data file in
 * the registry's storage so a test can corrupt it. Every subprocess runs with a timeout in its
 * own process group; the registry is killed with its group on stop (and on process exit).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  createHash,
  createPrivateKey,
  type KeyObject,
  randomBytes,
  randomUUID,
  sign,
  X509Certificate,
} from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type Credentials,
  type RegistryClientOptions,
  StaticCredentials,
} from '../../src/oci/index.js';

export type RegistryMode = 'plain' | 'htpasswd' | 'tls' | 'token';

/** The programs the registry tests need (Debian: docker-registry, skopeo, umoci, apache2-utils, openssl). */
export const REGISTRY_TOOLS = ['docker-registry', 'skopeo', 'umoci', 'htpasswd', 'openssl'];

function onPath(bin: string): boolean {
  const dirs = (process.env.PATH ?? '').split(':').filter((d) => d.length > 0);
  return dirs.some((d) => existsSync(join(d, bin)));
}

/** missingTools returns the programs of `tools` that are not on PATH. */
export function missingTools(tools: readonly string[] = REGISTRY_TOOLS): string[] {
  return tools.filter((t) => !onPath(t));
}

/** skipReason says why registry tests cannot run here, or undefined when they can. */
export function skipReason(tools: readonly string[] = REGISTRY_TOOLS): string | undefined {
  const missing = missingTools(tools);
  if (missing.length === 0) return undefined;
  return `missing ${missing.join(', ')} (Debian packages docker-registry, skopeo, umoci, apache2-utils, openssl; installed by test/support/ensure-tools.js when run as root)`;
}

// ---------------------------------------------------------------------------------------------
// subprocesses

/** Every live process group started here, killed if the test process exits without cleanup. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function track(pid: number): void {
  liveGroups.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

export interface RunOptions {
  /** Killed (with its process group) after this many ms. Default 60 s. */
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Uint8Array;
}

export interface RunResult {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/**
 * run starts a program asynchronously (in-process servers keep serving meanwhile) in its own
 * process group, and kills the group when `timeoutMs` passes.
 */
export function run(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      cwd: o.cwd,
      env: o.env ?? process.env,
      detached: true,
      stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    let timedOut = false;
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      err += s;
    });
    if (child.pid !== undefined) track(child.pid);
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    }, o.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      if (child.pid !== undefined) {
        // anything the program left in its group goes with it
        killGroup(child.pid, 'SIGKILL');
        liveGroups.delete(child.pid);
      }
      resolve({ status, signal, stdout: Buffer.concat(out), stderr: err, timedOut });
    });
    if (o.input !== undefined) {
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(o.input);
    }
  });
}

/** runOk runs a program and returns its stdout; a non-zero exit throws with its stderr. */
export async function runOk(
  cmd: string,
  args: readonly string[],
  o: RunOptions = {},
): Promise<Buffer> {
  const r = await run(cmd, args, o);
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')}: ${r.timedOut ? 'timed out' : `exit ${r.status ?? r.signal}`}\n${r.stderr}`,
    );
  }
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------
// images

const REF_NAME = 'org.opencontainers.image.ref.name';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** An image (or index) in a local OCI layout. */
export interface BuiltImage {
  /** `oci:DIR:TAG`, for skopeo. */
  readonly ref: string;
  readonly dir: string;
  readonly tag: string;
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
  /** The manifest (or index) bytes. */
  readonly manifest: Buffer;
}

interface LayoutIndex {
  schemaVersion: number;
  manifests: Array<{
    mediaType: string;
    digest: string;
    size: number;
    annotations?: Record<string, string>;
    platform?: { os: string; architecture: string; variant?: string };
  }>;
}

function splitName(name: string): { dir: string; tag: string } {
  const i = name.lastIndexOf(':');
  if (i <= 0 || i === name.length - 1) throw new Error(`expected DIR:TAG, got ${name}`);
  return { dir: name.slice(0, i), tag: name.slice(i + 1) };
}

async function readIndex(dir: string): Promise<LayoutIndex> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as LayoutIndex;
}

async function describeTag(dir: string, tag: string): Promise<BuiltImage> {
  const entry = (await readIndex(dir)).manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  if (entry === undefined) throw new Error(`${dir}: no image tagged ${tag}`);
  const manifest = await readFile(join(dir, 'blobs', 'sha256', entry.digest.slice(7)));
  return {
    ref: `oci:${dir}:${tag}`,
    dir,
    tag,
    digest: entry.digest,
    size: entry.size,
    mediaType: entry.mediaType,
    manifest,
  };
}

/** blobOf reads a blob of a local layout. */
export function blobOf(dir: string, digest: string): Promise<Buffer> {
  return readFile(join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));
}

/**
 * buildImage builds an image with umoci: `name` is `DIR:TAG` (the layout is created if needed),
 * `files` maps paths in the image to contents (one layer holding them all).
 */
export async function buildImage(
  name: string,
  files: Readonly<Record<string, string | Uint8Array>>,
  options: { os?: string; architecture?: string } = {},
): Promise<BuiltImage> {
  const { dir, tag } = splitName(name);
  if (!existsSync(join(dir, 'oci-layout'))) {
    await mkdir(dirname(dir), { recursive: true });
    await runOk('umoci', ['init', '--layout', dir]);
  }
  const image = `${dir}:${tag}`;
  await runOk('umoci', ['new', '--image', image]);
  if (options.os !== undefined || options.architecture !== undefined) {
    await runOk('umoci', [
      'config',
      '--image',
      image,
      ...(options.os === undefined ? [] : ['--os', options.os]),
      ...(options.architecture === undefined ? [] : ['--architecture', options.architecture]),
    ]);
  }
  const staging = await mkdtemp(join(dirname(dir), '.staging-'));
  try {
    for (const [path, content] of Object.entries(files)) {
      const target = join(staging, path.replace(/^\/+/, ''));
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
    }
    const rootless = typeof process.getuid === 'function' && process.getuid() !== 0;
    await runOk('umoci', [
      'insert',
      ...(rootless ? ['--rootless'] : []),
      '--image',
      image,
      staging,
      '/',
    ]);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return describeTag(dir, tag);
}

/**
 * buildIndex writes an OCI image index listing images of the same layout with their platforms,
 * stores it as a blob and names it `TAG` in the layout's index.json (for `skopeo copy --all`).
 */
export async function buildIndex(
  name: string,
  children: ReadonlyArray<{
    image: BuiltImage;
    platform: { os: string; architecture: string; variant?: string };
  }>,
): Promise<BuiltImage> {
  const { dir, tag } = splitName(name);
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map((c) => ({
      mediaType: c.image.mediaType,
      digest: c.image.digest,
      size: c.image.size,
      platform: c.platform,
    })),
  };
  const bytes = Buffer.from(`${JSON.stringify(doc)}\n`);
  const hex = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(dir, 'blobs', 'sha256', hex), bytes);
  const index = await readIndex(dir);
  index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
  index.manifests.push({
    mediaType: OCI_INDEX,
    digest: `sha256:${hex}`,
    size: bytes.length,
    annotations: { [REF_NAME]: tag },
  });
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  return describeTag(dir, tag);
}

/** inspectLocal runs `skopeo inspect` on a local image (`oci:DIR:TAG`, `oci-archive:FILE:TAG`). */
export async function inspectLocal(
  ref: string,
): Promise<{ Digest: string; Architecture?: string; Os?: string; Layers?: string[] }> {
  return JSON.parse((await runOk('skopeo', ['inspect', ref], { timeoutMs: 30_000 })).toString());
}

// ---------------------------------------------------------------------------------------------
// storage corruption

/** How a stored file is damaged. */
export type Corruption =
  /** flip one byte in the middle (same size, another digest) */
  | 'flip'
  /** drop the last bytes (shorter) */
  | 'truncate'
  /** append bytes (longer) */
  | 'extend'
  /** insert a space after the first `{` (still valid JSON, another digest) */
  | 'json-space';

/** corruptFile damages a file in place. */
export async function corruptFile(path: string, how: Corruption): Promise<void> {
  const b = await readFile(path);
  let out: Buffer;
  switch (how) {
    case 'flip': {
      out = Buffer.from(b);
      const i = Math.floor(b.length / 2);
      out[i] = (out[i] as number) ^ 0xff;
      break;
    }
    case 'truncate':
      out = b.subarray(0, Math.max(0, b.length - Math.max(1, Math.floor(b.length / 4))));
      break;
    case 'extend':
      out = Buffer.concat([b, Buffer.from('tampered')]);
      break;
    case 'json-space': {
      const i = b.indexOf('{');
      if (i < 0) throw new Error(`${path}: not JSON`);
      out = Buffer.concat([b.subarray(0, i + 1), Buffer.from(' '), b.subarray(i + 1)]);
      break;
    }
  }
  await writeFile(path, out);
}

// ---------------------------------------------------------------------------------------------
// token issuer

/** One request the token issuer got. */
export interface TokenRequest {
  readonly scopes: readonly string[];
  readonly service: string | null;
  /** The Authorization header came along. */
  readonly hadAuthorization: boolean;
  /** The user name and password of a Basic Authorization header. */
  readonly username?: string;
  readonly password?: string;
  /** The HTTP status answered (200 token, 401 refused). */
  readonly status: number;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * libtrustKeyId is the key ID docker/libtrust gives a public key, which distribution's token
 * verifier matches against a JWT's `kid`: SHA-256 of the PKIX (SPKI DER) encoding, first 240
 * bits, base32 without padding, in groups of four joined by `:`.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const sum = createHash('sha256').update(der).digest().subarray(0, 30);
  return (base32(sum).match(/.{4}/g) ?? []).join(':');
}

function parseBasic(
  header: string | undefined,
): { username: string; password: string } | undefined {
  const m = /^Basic\s+(.+)$/i.exec(header ?? '');
  if (m === null) return undefined;
  const text = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : { username: text.slice(0, i), password: text.slice(i + 1) };
}

/**
 * A token service (the Docker registry token protocol) on 127.0.0.1: `GET /token?service=&scope=`
 * with Basic credentials answers a JWT granting the scopes asked for. Requests without valid
 * credentials get 401. Every request is recorded.
 */
export class TokenIssuer {
  /** Every request, in arrival order. */
  readonly requests: TokenRequest[] = [];
  /** Token lifetime in seconds, as announced in `expires_in`. */
  expiresIn = 300;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private port = 0;

  private constructor(
    private readonly key: KeyObject,
    readonly kid: string,
    readonly issuer: string,
    readonly service: string,
    private readonly account: Credentials,
  ) {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  /** start listens on 127.0.0.1 (free port), signing with `keyPem` (an EC P-256 key). */
  static async start(o: {
    keyPem: string;
    certPem: string;
    issuer: string;
    service: string;
    account: Credentials;
  }): Promise<TokenIssuer> {
    const kid = libtrustKeyId(new X509Certificate(o.certPem).publicKey);
    const t = new TokenIssuer(createPrivateKey(o.keyPem), kid, o.issuer, o.service, o.account);
    await new Promise<void>((ok, fail) => {
      t.server.once('error', fail);
      t.server.listen(0, '127.0.0.1', () => ok());
    });
    t.port = (t.server.address() as AddressInfo).port;
    return t;
  }

  /** The realm URL the registry announces. */
  get realm(): string {
    return `http://127.0.0.1:${this.port}/token`;
  }

  /** requestsFor returns the recorded requests that asked for `scope`. */
  requestsFor(scope: string): TokenRequest[] {
    return this.requests.filter((r) => r.scopes.includes(scope));
  }

  /** mint signs a token for `scopes` (each `type:name:actions`). */
  mint(subject: string, scopes: readonly string[]): string {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.flatMap((s) => {
      const first = s.indexOf(':');
      const last = s.lastIndexOf(':');
      if (first < 0 || last <= first) return [];
      return [
        {
          type: s.slice(0, first),
          name: s.slice(first + 1, last),
          actions: s.slice(last + 1).split(','),
        },
      ];
    });
    const header = { typ: 'JWT', alg: 'ES256', kid: this.kid };
    const claims = {
      iss: this.issuer,
      sub: subject,
      aud: this.service,
      exp: now + this.expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const signature = sign('sha256', Buffer.from(input), {
      key: this.key,
      dsaEncoding: 'ieee-p1363',
    });
    return `${input}.${signature.toString('base64url')}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const basic = parseBasic(req.headers.authorization);
    const ok =
      url.pathname === '/token' &&
      basic !== undefined &&
      basic.username === this.account.username &&
      basic.password === this.account.password;
    const scopes = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter((s) => s.length > 0);
    this.requests.push({
      scopes,
      service: url.searchParams.get('service'),
      hadAuthorization: req.headers.authorization !== undefined,
      ...(basic === undefined ? {} : { username: basic.username, password: basic.password }),
      status: ok ? 200 : 401,
    });
    if (!ok) {
      const body = JSON.stringify({ details: 'invalid credentials' });
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Basic realm="tufa-test-token"',
        'content-length': String(body.length),
      });
      res.end(body);
      return;
    }
    const token = this.mint(basic?.username ?? '', scopes);
    const body = JSON.stringify({
      token,
      access_token: token,
      expires_in: this.expiresIn,
      issued_at: new Date().toISOString(),
    });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    });
    res.end(body);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((ok) => this.server.close(() => ok()));
    for (const s of this.sockets) s.destroy();
    this.server.closeAllConnections();
    await closed;
  }
}

// ---------------------------------------------------------------------------------------------
// the registry

/** The account of the `htpasswd` and `token` modes. */
export const TEST_ACCOUNT: Readonly<Required<Pick<Credentials, 'username' | 'password'>>> = {
  username: 'tufa-tester',
  password: `pw-${randomBytes(9).toString('base64url')}`,
};

/** A plain HTTP response. */
export interface ApiResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** A running distribution registry in a temp folder. */
export class RegistryServer {
  /** `127.0.0.1:PORT`: the registry part of image references. */
  host = '';
  port = 0;
  /** The test CA (tls mode). */
  caPem?: string;
  /** A folder with the CA as `ca.crt`, for skopeo's `--cert-dir` (tls mode). */
  certDir?: string;
  /** The token service (token mode). */
  issuer?: TokenIssuer;
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private logLines: string[] = [];
  private readonly secret = randomBytes(16).toString('hex');

  private constructor(
    readonly mode: RegistryMode,
    /** The temp folder holding config, certificates, storage. */
    readonly dir: string,
  ) {}

  /** start makes the mode's files, starts the registry on a free port and waits until it answers. */
  static async start(mode: RegistryMode): Promise<RegistryServer> {
    const dir = await mkdtemp(join(tmpdir(), `tufa-registry-${mode}-`));
    const reg = new RegistryServer(mode, dir);
    try {
      await reg.setup();
      await reg.launch();
    } catch (e) {
      await reg.close();
      throw e;
    }
    return reg;
  }

  /** The registry's storage root (`storage.filesystem.rootdirectory`). */
  get storageRoot(): string {
    return join(this.dir, 'storage');
  }

  get origin(): string {
    return `${this.mode === 'tls' ? 'https' : 'http'}://${this.host}`;
  }

  /** The credentials of an authenticated mode, or undefined. */
  get account(): typeof TEST_ACCOUNT | undefined {
    return this.mode === 'htpasswd' || this.mode === 'token' ? TEST_ACCOUNT : undefined;
  }

  /** The registry's recent log lines (for assertion messages). */
  logs(): string {
    return this.logLines.join('\n');
  }

  /**
   * clientOptions are the RegistryClient options that reach this registry: credentials for the
   * authenticated modes, HTTPS with the test CA for tls.
   */
  clientOptions(overrides: RegistryClientOptions = {}): RegistryClientOptions {
    const account = this.account;
    return {
      timeoutMs: 15_000,
      ...(account === undefined
        ? {}
        : { credentials: new StaticCredentials(new Map([[this.host, account]])) }),
      ...(this.mode === 'tls' ? { plainHttp: () => false, ca: this.caPem as string } : {}),
      ...overrides,
    };
  }

  /** skopeoFlags are the TLS and credential flags of one side of a skopeo command. */
  skopeoFlags(prefix: '' | 'src-' | 'dest-'): string[] {
    const flags =
      this.mode === 'tls'
        ? [`--${prefix}cert-dir`, this.certDir as string]
        : [`--${prefix}tls-verify=false`];
    const account = this.account;
    if (account !== undefined)
      flags.push(`--${prefix}creds`, `${account.username}:${account.password}`);
    return flags;
  }

  private skopeoEnv(): NodeJS.ProcessEnv {
    // no user or system credentials: only what the flags give
    return {
      ...process.env,
      REGISTRY_AUTH_FILE: join(this.dir, 'skopeo-auth.json'),
      TMPDIR: this.dir,
    };
  }

  /**
   * push copies a local image (`oci:DIR:TAG`) to `dest` (`repo:tag` on this registry) with
   * skopeo and returns the digest of the pushed manifest. `format: 'v2s2'` converts to Docker
   * schema 2; `all` copies an index with every image it lists.
   */
  async push(
    layoutRef: string,
    dest: string,
    o: { format?: 'oci' | 'v2s2'; all?: boolean } = {},
  ): Promise<string> {
    const digestFile = join(this.dir, `digest-${randomUUID()}`);
    await runOk(
      'skopeo',
      [
        '--policy',
        join(this.dir, 'skopeo-policy.json'),
        'copy',
        '--quiet',
        ...(o.all ? ['--all'] : ['--format', o.format ?? 'oci']),
        '--digestfile',
        digestFile,
        ...this.skopeoFlags('dest-'),
        layoutRef,
        `docker://${this.host}/${dest}`,
      ],
      { env: this.skopeoEnv(), timeoutMs: 60_000 },
    );
    const digest = (await readFile(digestFile, 'utf8')).trim();
    await rm(digestFile, { force: true });
    return digest;
  }

  /** inspectRaw returns the manifest bytes skopeo reads for `repo:tag` or `repo@digest`. */
  inspectRaw(ref: string): Promise<Buffer> {
    return runOk(
      'skopeo',
      ['inspect', '--raw', ...this.skopeoFlags(''), `docker://${this.host}/${ref}`],
      { env: this.skopeoEnv(), timeoutMs: 30_000 },
    );
  }

  /**
   * storagePath is the data file of a blob (layer, config or manifest) that `repo` links to, in
   * the registry's filesystem storage (`docker/registry/v2/blobs/sha256/<2>/<hex>/data`).
   */
  storagePath(repo: string, digest: string): string {
    const hex = digest.replace(/^sha256:/, '');
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`not a sha256 digest: ${digest}`);
    const v2 = join(this.storageRoot, 'docker', 'registry', 'v2');
    const links = [
      join(v2, 'repositories', repo, '_layers', 'sha256', hex, 'link'),
      join(v2, 'repositories', repo, '_manifests', 'revisions', 'sha256', hex, 'link'),
    ];
    if (!links.some((l) => existsSync(l))) throw new Error(`${repo} does not link ${digest}`);
    const data = join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    if (!existsSync(data)) throw new Error(`${digest}: no data file in the registry storage`);
    return data;
  }

  /**
   * api sends one request to the registry's API as the test account (Basic, or a token minted
   * by the issuer for `scope`). For test setup; the client under test is never this.
   */
  async api(
    method: string,
    path: string,
    o: { headers?: Record<string, string>; scope?: string } = {},
  ): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const account = this.account;
    if (this.mode === 'htpasswd' && account !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${account.username}:${account.password}`).toString('base64')}`;
    }
    if (this.mode === 'token' && this.issuer !== undefined && o.scope !== undefined) {
      headers.authorization = `Bearer ${this.issuer.mint(TEST_ACCOUNT.username, [o.scope])}`;
    }
    const url = new URL(path, this.origin);
    const send = this.mode === 'tls' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          headers,
          agent: false,
          timeout: 15_000,
          ...(this.mode === 'tls' ? { ca: this.caPem } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** deleteManifest deletes a manifest by digest (storage.delete is enabled); returns the status. */
  async deleteManifest(repo: string, digest: string): Promise<number> {
    const r = await this.api('DELETE', `/v2/${repo}/manifests/${digest}`, {
      scope: `repository:${repo}:delete,*`,
    });
    return r.status;
  }

  /** running tells whether the registry process is up. */
  get running(): boolean {
    return this.child !== undefined;
  }

  /** stop kills the registry's process group and waits for it (storage is kept). */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.pid === undefined) return;
    const pid = child.pid;
    killGroup(pid, 'SIGTERM');
    const gone = await Promise.race([
      this.exited?.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5_000)),
    ]);
    if (!gone) {
      killGroup(pid, 'SIGKILL');
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5_000))]);
    }
    killGroup(pid, 'SIGKILL');
    liveGroups.delete(pid);
    this.child = undefined;
  }

  /** restart starts the registry again on the same port, with the same storage. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** close stops the registry and the token issuer and removes the temp folder. */
  async close(): Promise<void> {
    await this.stop();
    await this.issuer?.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async setup(): Promise<void> {
    await mkdir(this.storageRoot, { recursive: true });
    await writeFile(
      join(this.dir, 'skopeo-policy.json'),
      JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }),
    );
    if (this.mode === 'htpasswd') {
      const line = await runOk('htpasswd', ['-Bbn', TEST_ACCOUNT.username, TEST_ACCOUNT.password], {
        timeoutMs: 30_000,
      });
      await writeFile(join(this.dir, 'htpasswd'), `${line.toString().trim()}\n`);
    }
    if (this.mode === 'tls') {
      const t = join(this.dir, 'tls');
      await mkdir(t);
      const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
      await runOk('openssl', [
        'req',
        '-x509',
        ...ec,
        '-keyout',
        join(t, 'ca.key'),
        '-out',
        join(t, 'ca.crt'),
        '-days',
        '2',
        '-subj',
        '/CN=tufa test CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ]);
      await runOk('openssl', [
        'req',
        ...ec,
        '-keyout',
        join(t, 'server.key'),
        '-out',
        join(t, 'server.csr'),
        '-subj',
        '/CN=127.0.0.1',
      ]);
      await writeFile(
        join(t, 'server.ext'),
        'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n',
      );
      await runOk('openssl', [
        'x509',
        '-req',
        '-in',
        join(t, 'server.csr'),
        '-CA',
        join(t, 'ca.crt'),
        '-CAkey',
        join(t, 'ca.key'),
        '-CAcreateserial',
        '-out',
        join(t, 'server.crt'),
        '-days',
        '2',
        '-extfile',
        join(t, 'server.ext'),
      ]);
      this.caPem = await readFile(join(t, 'ca.crt'), 'utf8');
      this.certDir = join(this.dir, 'certs');
      await mkdir(this.certDir);
      await copyFile(join(t, 'ca.crt'), join(this.certDir, 'ca.crt'));
    }
    if (this.mode === 'token') {
      const t = join(this.dir, 'token');
      await mkdir(t);
      await runOk('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(t, 'signing.key'),
        '-out',
        join(t, 'signing.crt'),
        '-days',
        '2',
        '-subj',
        '/CN=tufa test token issuer',
      ]);
      this.issuer = await TokenIssuer.start({
        keyPem: await readFile(join(t, 'signing.key'), 'utf8'),
        certPem: await readFile(join(t, 'signing.crt'), 'utf8'),
        issuer: 'tufa-test-issuer',
        service: 'tufa-test-registry',
        account: TEST_ACCOUNT,
      });
    }
  }

  private config(port: number): object {
    const auth =
      this.mode === 'htpasswd'
        ? { htpasswd: { realm: 'tufa-test', path: join(this.dir, 'htpasswd') } }
        : this.mode === 'token'
          ? {
              token: {
                realm: this.issuer?.realm,
                service: this.issuer?.service,
                issuer: this.issuer?.issuer,
                rootcertbundle: join(this.dir, 'token', 'signing.crt'),
              },
            }
          : undefined;
    return {
      version: '0.1',
      log: { level: 'info', accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: this.storageRoot },
        delete: { enabled: true },
      },
      http: {
        addr: `127.0.0.1:${port}`,
        secret: this.secret,
        ...(this.mode === 'tls'
          ? {
              tls: {
                certificate: join(this.dir, 'tls', 'server.crt'),
                key: join(this.dir, 'tls', 'server.key'),
              },
            }
          : {}),
      },
      ...(auth === undefined ? {} : { auth }),
    };
  }

  /** launch starts the registry (port 0 the first time, then the port it got) and waits for it. */
  private async launch(): Promise<void> {
    const configFile = join(this.dir, 'config.yml');
    // YAML is a superset of JSON
    await writeFile(configFile, JSON.stringify(this.config(this.port), null, 2));
    // REGISTRY_* variables would override the configuration
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')),
    );
    const child = spawn('docker-registry', ['serve', configFile], {
      cwd: this.dir,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    if (child.pid !== undefined) track(child.pid);
    this.exited = new Promise((r) => child.once('close', () => r()));
    this.exited.then(() => {
      if (this.child === child) this.child = undefined;
    });
    const listening = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`docker-registry did not start in 15 s\n${this.logs()}`)),
        15_000,
      );
      const onLine = (line: string) => {
        this.logLines.push(line);
        if (this.logLines.length > 200) this.logLines.shift();
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      for (const stream of [child.stdout, child.stderr]) {
        let partial = '';
        stream?.setEncoding('utf8').on('data', (s: string) => {
          const lines = (partial + s).split('\n');
          partial = lines.pop() ?? '';
          for (const l of lines) onLine(l);
        });
      }
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`docker-registry exited (${code}) before listening\n${this.logs()}`));
      });
    });
    try {
      this.port = await listening;
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.host = `127.0.0.1:${this.port}`;
    // the listener is up when it logs; one request proves the configuration (TLS, auth) works
    const r = await this.api('GET', '/v2/');
    if (r.status !== 200 && r.status !== 401) {
      throw new Error(`docker-registry answers /v2/ with ${r.status}\n${this.logs()}`);
    }
  }
}
