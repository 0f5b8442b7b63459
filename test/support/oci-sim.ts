/**
 * An in-process OCI distribution registry for tests (in the spirit of go-containerregistry's
 * `pkg/registry`): a node:http server on 127.0.0.1 that speaks enough of the distribution API
 * for every RegistryClient behaviour to be tested without Debian's `docker-registry`:
 *
 * - pull: `GET/HEAD /v2/`, manifests by tag or digest, blobs (with `Range`), tag lists;
 * - push: blob uploads (`POST` then `PUT ?digest=`, with or without `PATCH` chunks; mounting
 *   is not supported), manifests by tag or digest;
 * - auth: none, Basic, or Bearer with a token service at a realm on this server or elsewhere;
 * - blob redirects (307) to another origin ({@link OciSim.redirectBlobsTo}), which may itself
 *   ask for credentials with its own challenge;
 * - lying and slow modes: {@link OciSim.intercept} answers any request in the registry's place,
 *   and `dripBytesPerTick` / `tickMs` feed bodies a few bytes at a time.
 *
 * Every request is recorded (method, path, headers) so a test can assert what reached the server.
 * Storage is in memory, per repository, content-addressed by sha256.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How the registry wants to be authenticated. */
export type SimAuth =
  | { readonly kind: 'none' }
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  | {
      readonly kind: 'bearer';
      /** Credentials the token service demands (anonymous tokens when undefined). */
      readonly username?: string;
      readonly password?: string;
      /** The token service's origin (default: this server's, at `/token`). */
      readonly realmOrigin?: string;
      /** Token lifetime in seconds (default 300). */
      readonly expiresIn?: number;
    };

/** A request as the server saw it. */
export interface SimRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface SimOptions {
  readonly auth?: SimAuth;
  /** Feed every body this many bytes per tick (default: all at once). */
  readonly dripBytesPerTick?: number;
  readonly tickMs?: number;
  /** Honour `Range` on blobs (default true). */
  readonly range?: boolean;
}

/** A manifest as stored. */
interface StoredManifest {
  readonly bytes: Uint8Array;
  readonly mediaType: string;
}

/** sha256 returns the OCI digest of bytes. */
export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** An image pushed by {@link OciSim.pushImage}. */
export interface SimImage {
  readonly digest: string;
  readonly bytes: Uint8Array;
  readonly mediaType: string;
  readonly config: { digest: string; size: number };
  readonly layers: ReadonlyArray<{ digest: string; size: number }>;
}

export class OciSim {
  readonly requests: SimRequest[] = [];
  /** Answer a request in the registry's place: return true when handled. */
  intercept?: (req: IncomingMessage, res: ServerResponse, body: Uint8Array) => boolean | undefined;
  /** Redirect blob GETs (307) to this origin's `/_blobs/<repo>/<digest>`. */
  redirectBlobsTo?: OciSim;
  auth: SimAuth;
  private readonly blobs = new Map<string, Map<string, Uint8Array>>();
  private readonly manifests = new Map<string, Map<string, StoredManifest>>();
  private readonly tags = new Map<string, Map<string, string>>();
  private readonly uploads = new Map<string, { repo: string; chunks: Uint8Array[] }>();
  private readonly tokens = new Set<string>();
  private readonly sockets = new Set<Socket>();
  /** Connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  connections = 0;
  /** Where blobs are read from when this server is another's redirect target. */
  private blobSource: OciSim = this;

  private constructor(
    private readonly server: Server,
    private readonly options: SimOptions,
  ) {
    this.auth = options.auth ?? { kind: 'none' };
  }

  /** start listens on 127.0.0.1 on a free port. */
  static async start(options: SimOptions = {}): Promise<OciSim> {
    let sim: OciSim | undefined;
    const server = createServer((req, res) => {
      (sim as OciSim).handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(e));
      });
    });
    sim = new OciSim(server, options);
    server.on('connection', (s) => {
      sim?.sockets.add(s);
      if (sim !== undefined) sim.connections++;
      s.on('close', () => sim?.sockets.delete(s));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    return sim;
  }

  /** A second server serving this one's blobs at `/_blobs/…` (a storage backend's origin). */
  static async blobStoreFor(registry: OciSim, options: SimOptions = {}): Promise<OciSim> {
    const store = await OciSim.start(options);
    store.blobSource = registry;
    registry.redirectBlobsTo = store;
    return store;
  }

  get host(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  get origin(): string {
    return `http://${this.host}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  // ---- content -------------------------------------------------------------------------------

  putBlob(repo: string, bytes: Uint8Array): string {
    const digest = sha256(bytes);
    this.repoMap(this.blobs, repo).set(digest, bytes);
    return digest;
  }

  /** putManifest stores a manifest by digest and, when `tag` is given, tags it. */
  putManifest(repo: string, bytes: Uint8Array, mediaType: string, tag?: string): string {
    const digest = sha256(bytes);
    this.repoMap(this.manifests, repo).set(digest, { bytes, mediaType });
    if (tag !== undefined) this.repoMap(this.tags, repo).set(tag, digest);
    return digest;
  }

  /** tag points a tag at a stored manifest. */
  tag(repo: string, tag: string, digest: string): void {
    this.repoMap(this.tags, repo).set(tag, digest);
  }

  blob(repo: string, digest: string): Uint8Array | undefined {
    return this.blobs.get(repo)?.get(digest);
  }

  manifest(repo: string, reference: string): StoredManifest | undefined {
    const digest = reference.startsWith('sha256:')
      ? reference
      : this.tags.get(repo)?.get(reference);
    return digest === undefined ? undefined : this.manifests.get(repo)?.get(digest);
  }

  /** pushImage stores a single-platform image: config, layers, manifest, tag. */
  pushImage(
    repo: string,
    tag: string | undefined,
    layers: readonly Uint8Array[],
    platform = { os: 'linux', architecture: 'amd64' },
  ): SimImage {
    const configBytes = new TextEncoder().encode(
      JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: layers.map(sha256) } }),
    );
    const config = { digest: this.putBlob(repo, configBytes), size: configBytes.length };
    const ls = layers.map((l) => ({ digest: this.putBlob(repo, l), size: l.length }));
    const bytes = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        config: { mediaType: CONFIG, ...config },
        layers: ls.map((l) => ({ mediaType: LAYER, ...l })),
      }),
    );
    const digest = this.putManifest(repo, bytes, MANIFEST, tag);
    return { digest, bytes, mediaType: MANIFEST, config, layers: ls };
  }

  /** pushIndex stores an image index over images already pushed. */
  pushIndex(
    repo: string,
    tag: string | undefined,
    images: ReadonlyArray<SimImage & { platform: { os: string; architecture: string } }>,
  ): { digest: string; bytes: Uint8Array } {
    const bytes = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: INDEX,
        manifests: images.map((i) => ({
          mediaType: i.mediaType,
          digest: i.digest,
          size: i.bytes.length,
          platform: i.platform,
        })),
      }),
    );
    return { digest: this.putManifest(repo, bytes, INDEX, tag), bytes };
  }

  private repoMap<V>(m: Map<string, Map<string, V>>, repo: string): Map<string, V> {
    let inner = m.get(repo);
    if (inner === undefined) {
      inner = new Map();
      m.set(repo, inner);
    }
    return inner;
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', this.origin);
    this.requests.push({
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      headers: { ...req.headers },
    });
    if (this.intercept?.(req, res, body)) return;
    if (url.pathname === '/token') return this.token(req, res, url);
    if (url.pathname.startsWith('/_blobs/')) return this.storedBlob(req, res, url);
    if (!url.pathname.startsWith('/v2/'))
      return this.error(res, 404, 'NOT_FOUND', 'not an API path');
    if (!this.authorized(req, res, url)) return;
    if (url.pathname === '/v2/')
      return this.send(res, 200, { 'content-type': 'application/json' }, enc('{}'));
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.*)$/.exec(url.pathname);
    if (m === null) return this.error(res, 404, 'NAME_UNKNOWN', 'unknown path');
    const [, repo, kind, rest] = m as unknown as [string, string, string, string];
    const method = req.method ?? 'GET';
    if (kind === 'tags' && rest === 'list') {
      const tags = [...(this.tags.get(repo)?.keys() ?? [])].sort();
      return this.send(
        res,
        200,
        { 'content-type': 'application/json' },
        enc(JSON.stringify({ name: repo, tags })),
      );
    }
    if (kind === 'manifests') {
      if (method === 'PUT') {
        const mediaType = String(req.headers['content-type'] ?? MANIFEST).split(';')[0] as string;
        const digest = sha256(body);
        if (rest.startsWith('sha256:') && rest !== digest)
          return this.error(res, 400, 'DIGEST_INVALID', 'digest mismatch');
        this.putManifest(repo, body, mediaType, rest.startsWith('sha256:') ? undefined : rest);
        return this.send(
          res,
          201,
          { location: `/v2/${repo}/manifests/${digest}`, 'docker-content-digest': digest },
          new Uint8Array(),
        );
      }
      const stored = this.manifest(repo, rest);
      if (stored === undefined) return this.error(res, 404, 'MANIFEST_UNKNOWN', `${repo}:${rest}`);
      const headers = {
        'content-type': stored.mediaType,
        'docker-content-digest': sha256(stored.bytes),
        'content-length': String(stored.bytes.length),
      };
      return this.send(
        res,
        200,
        headers,
        method === 'HEAD' ? new Uint8Array() : stored.bytes,
        method === 'HEAD',
      );
    }
    // blobs
    if (rest === 'uploads/' && method === 'POST') {
      const id = randomUUID();
      this.uploads.set(id, { repo, chunks: [] });
      return this.send(
        res,
        202,
        { location: `/v2/${repo}/blobs/uploads/${id}`, range: '0-0' },
        new Uint8Array(),
      );
    }
    const up = /^uploads\/([0-9a-f-]+)$/.exec(rest);
    if (up !== null) {
      const upload = this.uploads.get(up[1] as string);
      if (upload === undefined || upload.repo !== repo)
        return this.error(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'no such upload');
      if (body.length > 0) upload.chunks.push(body);
      if (method === 'PATCH') {
        const size = upload.chunks.reduce((n, c) => n + c.length, 0);
        return this.send(
          res,
          202,
          { location: `/v2/${repo}/blobs/uploads/${up[1]}`, range: `0-${Math.max(0, size - 1)}` },
          new Uint8Array(),
        );
      }
      if (method === 'PUT') {
        const whole = Buffer.concat(upload.chunks);
        const want = url.searchParams.get('digest');
        if (want !== sha256(whole))
          return this.error(res, 400, 'DIGEST_INVALID', 'digest mismatch');
        this.uploads.delete(up[1] as string);
        this.putBlob(repo, whole);
        return this.send(
          res,
          201,
          { location: `/v2/${repo}/blobs/${want}`, 'docker-content-digest': want },
          new Uint8Array(),
        );
      }
    }
    const blob = this.blob(repo, rest);
    if (blob === undefined) return this.error(res, 404, 'BLOB_UNKNOWN', `${repo}@${rest}`);
    if (method === 'HEAD') {
      return this.send(
        res,
        200,
        { 'content-length': String(blob.length), 'docker-content-digest': rest },
        new Uint8Array(),
        true,
      );
    }
    if (this.redirectBlobsTo !== undefined) {
      return this.send(
        res,
        307,
        { location: `${this.redirectBlobsTo.origin}/_blobs/${repo}/${rest}` },
        new Uint8Array(),
      );
    }
    return this.sendBlob(req, res, blob, rest);
  }

  private sendBlob(req: IncomingMessage, res: ServerResponse, blob: Uint8Array, digest: string) {
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    if (range !== null && this.options.range !== false) {
      const from = Number(range[1]);
      if (from >= blob.length)
        return this.send(res, 416, { 'content-range': `bytes */${blob.length}` }, new Uint8Array());
      return this.send(
        res,
        206,
        {
          'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}`,
          'docker-content-digest': digest,
        },
        blob.subarray(from),
      );
    }
    return this.send(
      res,
      200,
      { 'content-type': 'application/octet-stream', 'docker-content-digest': digest },
      blob,
    );
  }

  /** storedBlob serves `/_blobs/<repo>/<digest>` for the registry this store belongs to. */
  private storedBlob(req: IncomingMessage, res: ServerResponse, url: URL) {
    if (!this.authorized(req, res, url)) return;
    const m = /^\/_blobs\/(.+)\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    const blob = m === null ? undefined : this.blobSource.blob(m[1] as string, m[2] as string);
    if (blob === undefined) return this.error(res, 404, 'BLOB_UNKNOWN', url.pathname);
    return this.sendBlob(req, res, blob, (m as RegExpExecArray)[2] as string);
  }

  /** authorized checks the request's credentials, answering 401 with a challenge if wrong. */
  private authorized(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const a = this.auth;
    const header = String(req.headers.authorization ?? '');
    if (a.kind === 'none') return true;
    if (a.kind === 'basic') {
      if (header === basic(a.username, a.password)) return true;
      this.error(res, 401, 'UNAUTHORIZED', 'authentication required', {
        'www-authenticate': 'Basic realm="sim"',
      });
      return false;
    }
    const token = /^Bearer (.+)$/.exec(header)?.[1];
    if (token !== undefined && this.tokens.has(token)) return true;
    const realm = `${a.realmOrigin ?? this.origin}/token`;
    const repo = /^\/v2\/(.+)\/(manifests|blobs|tags)\//.exec(url.pathname)?.[1];
    const scope = repo === undefined ? '' : `,scope="repository:${repo}:pull"`;
    this.error(res, 401, 'UNAUTHORIZED', 'authentication required', {
      'www-authenticate': `Bearer realm="${realm}",service="${this.host}"${scope}`,
    });
    return false;
  }

  /** token is the token service: it issues tokens this server (or its registry) accepts. */
  private token(req: IncomingMessage, res: ServerResponse, _url: URL) {
    const a = this.auth.kind === 'bearer' ? this.auth : undefined;
    const registry = this.tokenFor ?? this;
    const ra = registry.auth.kind === 'bearer' ? registry.auth : a;
    if (
      ra?.username !== undefined &&
      String(req.headers.authorization ?? '') !== basic(ra.username, ra.password ?? '')
    ) {
      return this.error(res, 401, 'UNAUTHORIZED', 'bad credentials', {
        'www-authenticate': 'Basic realm="token"',
      });
    }
    const token = randomUUID();
    registry.tokens.add(token);
    return this.send(
      res,
      200,
      { 'content-type': 'application/json' },
      enc(JSON.stringify({ token, expires_in: ra?.expiresIn ?? 300 })),
    );
  }

  /** For a server acting as another's token service (its realm): whose tokens it issues. */
  tokenFor?: OciSim;

  private error(
    res: ServerResponse,
    status: number,
    code: string,
    message: string,
    headers: Record<string, string> = {},
  ): void {
    this.send(
      res,
      status,
      { 'content-type': 'application/json', ...headers },
      enc(JSON.stringify({ errors: [{ code, message }] })),
    );
  }

  private send(
    res: ServerResponse,
    status: number,
    headers: Record<string, string>,
    body: Uint8Array,
    head = false,
  ): void {
    const h: Record<string, string> = { ...headers };
    if (!head) h['content-length'] = String(body.length);
    res.writeHead(status, h);
    const step = this.options.dripBytesPerTick;
    if (head || step === undefined || body.length === 0) {
      res.end(head ? undefined : body);
      return;
    }
    let at = 0;
    const tick = () => {
      if (res.destroyed) return;
      res.write(body.subarray(at, at + step));
      at += step;
      if (at >= body.length) res.end();
      else setTimeout(tick, this.options.tickMs ?? 100);
    };
    tick();
  }
}

function enc(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

async function readBody(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of req) {
    total += (c as Buffer).length;
    if (total > 64 * 1024 * 1024) throw new Error('request body over 64 MiB');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
