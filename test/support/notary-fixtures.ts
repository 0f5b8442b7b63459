/**
 * Real notary-server output (shared `fixtures/notary-v1/`, made by notary 0.7.0) served to the
 * Notary client without sockets.
 *
 * - {@link loadCrawl} reads one crawl directory: `index.json` (server, GUN, every request in
 *   order) and `tuf/` (the bodies, by their path below `/_trust/tuf/`).
 * - {@link NotaryFixtureFetcher} is a `Fetcher` that answers
 *   `<server>/v2/<GUN>/_trust/tuf/<rest>` from `tuf/<rest>`: 404 when no layer has the file or
 *   the URL names another server or GUN, `TOO_LARGE` past `maxLength`, every request recorded.
 *   Layers combine stages (the first that has a file wins; {@link NotaryFixtureFetcher.serve}
 *   switches stage between refreshes with one cache), and per-file modifications tamper with the
 *   bytes served, hide a file or replace it.
 * - Tampering helpers change one character or one field of a served document.
 *
 * The fixtures' timestamps expire 14 days after `generated_at`: use {@link FIXTURE_CLOCK}.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { Fetcher } from '../../src/client/index.js';
import { DownloadError, DownloadHttpError } from '../../src/core/index.js';
import { ROOT } from './paths.js';

/** The fixtures: `$TUFA_NOTARY_FIXTURES`, else the copy in `test/vectors/notary-v1`. */
export const NOTARY_FIXTURES =
  process.env.TUFA_NOTARY_FIXTURES ?? join(ROOT, 'test', 'vectors', 'notary-v1');

/** notaryFixturesSkipReason says why the fixture tests cannot run, or undefined when they can. */
export function notaryFixturesSkipReason(): string | undefined {
  return existsSync(join(NOTARY_FIXTURES, 'lab-info.json'))
    ? undefined
    : `no Notary fixtures at ${NOTARY_FIXTURES} (set TUFA_NOTARY_FIXTURES)`;
}

/** fixturePath joins a path below the fixtures folder. */
export function fixturePath(...parts: string[]): string {
  return join(NOTARY_FIXTURES, ...parts);
}

/** The lab's `lab-info.json`. */
export interface LabInfo {
  readonly generated_at: string;
  readonly guns: readonly string[];
  readonly notary_A: { readonly url: string };
  readonly notary_B: { readonly url: string };
}

export function labInfo(): LabInfo {
  return JSON.parse(readFileSync(fixturePath('lab-info.json'), 'utf8')) as LabInfo;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** When the fixtures were made (epoch ms). */
export function generatedAt(): number {
  return Date.parse(labInfo().generated_at);
}

/** A clock at which every fixture is valid: one hour after generation. */
export function fixtureClock(): number {
  return generatedAt() + HOUR;
}

/** The fixtures' timestamps expire 14 days after generation; a clock just past that. */
export function afterTimestampExpiry(): number {
  return generatedAt() + 14 * DAY + HOUR;
}

/** A manifest the lab pushed (`registry/manifests.json`). */
export interface LabManifest {
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
}

export function labManifests(): LabManifest[] {
  return JSON.parse(
    readFileSync(fixturePath('registry', 'manifests.json'), 'utf8'),
  ) as LabManifest[];
}

/** One request of a crawl's `index.json`. */
export interface CrawlRequest {
  readonly note: string;
  readonly method: string;
  readonly url: string;
  readonly path: string;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly length?: number;
  readonly sha256?: string;
  readonly file?: string;
}

/** A crawl directory: what a server served for one GUN at one point of its history. */
export interface Crawl {
  /** The directory, relative to the fixtures folder. */
  readonly name: string;
  readonly server: string;
  readonly gun: string;
  readonly requests: readonly CrawlRequest[];
  /** Bodies by their path below `/_trust/tuf/` (`root.json`, `targets/releases.<sha>.json`). */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

const crawlCache = new Map<string, Crawl>();

/** loadCrawl reads a crawl directory (`notary-A-ecdsa/demo-app/stages/1-init`). */
export function loadCrawl(name: string): Crawl {
  const hit = crawlCache.get(name);
  if (hit !== undefined) return hit;
  const dir = fixturePath(name);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
    server: string;
    gun: string;
    requests: CrawlRequest[];
  };
  const tuf = join(dir, 'tuf');
  const files = new Map<string, Uint8Array>();
  for (const entry of readdirSync(tuf, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    files.set(relative(tuf, full).split(sep).join('/'), new Uint8Array(readFileSync(full)));
  }
  const crawl: Crawl = {
    name,
    server: index.server,
    gun: index.gun,
    requests: index.requests,
    files,
  };
  crawlCache.set(name, crawl);
  return crawl;
}

/** The stages of demo/app on server A, in order. */
export const STAGES = [
  '1-init',
  '2-delegations',
  '3-delegated-targets',
  '4-snapshot-server-managed',
  '5-targets-key-rotated',
  '6-root-key-rotated',
] as const;

export type Stage = (typeof STAGES)[number];

export function stage(s: Stage): Crawl {
  return loadCrawl(`notary-A-ecdsa/demo-app/stages/${s}`);
}

/** The `final` crawls (every consistent and versioned name, `N.root.json` included). */
export const FINALS = {
  app: 'notary-A-ecdsa/demo-app/final',
  multi: 'notary-A-ecdsa/demo-multi/final',
  quirks: 'notary-A-ecdsa/demo-quirks/final',
  serverB: 'notary-B-ed25519-token/demo-app/final',
} as const;

export function final(which: keyof typeof FINALS): Crawl {
  return loadCrawl(FINALS[which]);
}

/** The consistent name a crawl serves for a role: `snapshot.<sha256>.json`. */
export function consistentName(crawl: Crawl, role: string): string {
  const re = new RegExp(`^${role.replace(/\//g, '\\/')}\\.[0-9a-f]{64}\\.json$`);
  const names = [...crawl.files.keys()].filter((n) => re.test(n));
  if (names.length !== 1) {
    throw new Error(`${crawl.name}: ${names.length} consistent files for ${role}`);
  }
  return names[0] as string;
}

/** One request the fetcher answered (or refused). */
export interface FetchRecord {
  readonly url: string;
  /** The path below `/_trust/tuf/`, or undefined for a URL outside the collection. */
  readonly name: string | undefined;
  readonly maxLength: number;
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** 200, 401, 404, or 0 for a refusal past `maxLength`. */
  readonly status: number;
}

/** A change to the bytes served for one name: new bytes, a function of the old, or 404. */
export type Modification = Uint8Array | ((bytes: Uint8Array) => Uint8Array) | 'missing';

/** A bearer challenge the fetcher answers with 401 until the token is sent. */
export interface BearerGate {
  readonly challenge: string;
  readonly token: string;
}

/** A `Fetcher` serving crawl directories, with tampering and a request log. */
export class NotaryFixtureFetcher implements Fetcher {
  /** Every request, in order. */
  readonly requests: FetchRecord[] = [];
  private layers: readonly Crawl[];
  private readonly changes = new Map<string, Modification>();
  private readonly server: string;
  /** The GUN the fetcher serves (URLs naming another GUN get 404). */
  readonly gun: string;
  /** When set, requests without `Authorization: Bearer <token>` get 401 + the challenge. */
  bearer?: BearerGate;

  /**
   * @param layers - crawls to serve from, first match wins; the server and GUN are the first's
   *   unless given
   */
  constructor(layers: Crawl | readonly Crawl[], o: { server?: string; gun?: string } = {}) {
    this.layers = Array.isArray(layers) ? layers : [layers as Crawl];
    const first = this.layers[0];
    if (first === undefined) throw new RangeError('at least one crawl is needed');
    this.server = (o.server ?? first.server).replace(/\/+$/, '');
    this.gun = o.gun ?? first.gun;
  }

  /** The base URL a client of this fetcher uses as `server`. */
  get serverUrl(): string {
    return this.server;
  }

  /** serve switches to other crawls (the next stage); modifications stay. */
  serve(...layers: Crawl[]): this {
    if (layers.length === 0) throw new RangeError('at least one crawl is needed');
    this.layers = layers;
    return this;
  }

  /** modify changes what is served for `name` (a path below `/_trust/tuf/`). */
  modify(name: string, change: Modification): this {
    this.changes.set(name, change);
    return this;
  }

  /** reset drops every modification and the request log. */
  reset(): this {
    this.changes.clear();
    this.requests.length = 0;
    return this;
  }

  /** original returns the bytes the layers hold for `name` (no modification), or undefined. */
  original(name: string): Uint8Array | undefined {
    for (const layer of this.layers) {
      const b = layer.files.get(name);
      if (b !== undefined) return b;
    }
    return undefined;
  }

  /** bytesFor returns what would be served for `name`, or undefined (404). */
  bytesFor(name: string): Uint8Array | undefined {
    const change = this.changes.get(name);
    if (change === 'missing') return undefined;
    if (change instanceof Uint8Array) return change;
    const base = this.original(name);
    if (base === undefined) return undefined;
    return change === undefined ? base : change(base);
  }

  /** names lists the names requested, in order (URLs outside the collection as undefined). */
  names(): Array<string | undefined> {
    return this.requests.map((r) => r.name);
  }

  async fetch(
    url: string,
    maxLength: number,
    headers?: Record<string, string>,
  ): Promise<Uint8Array> {
    if (!Number.isSafeInteger(maxLength) || maxLength < 0) {
      throw new RangeError(`maxLength: expected a non-negative integer, got ${maxLength}`);
    }
    const prefix = `${this.server}/v2/${this.gun}/_trust/tuf/`;
    const name = url.startsWith(prefix) ? url.slice(prefix.length) : undefined;
    const record = (status: number) =>
      this.requests.push({
        url,
        name,
        maxLength,
        headers: headers === undefined ? undefined : { ...headers },
        status,
      });
    if (this.bearer !== undefined && headers?.authorization !== `Bearer ${this.bearer.token}`) {
      record(401);
      throw new DownloadHttpError(`${url}: HTTP 401`, 401, this.bearer.challenge);
    }
    const bytes = name === undefined ? undefined : this.bytesFor(name);
    if (bytes === undefined) {
      record(404);
      throw new DownloadHttpError(`${url}: HTTP 404`, 404);
    }
    if (bytes.length > maxLength) {
      record(0);
      throw new DownloadError(`${url}: more than the limit of ${maxLength} bytes`, {
        code: 'TOO_LARGE',
      });
    }
    record(200);
    return bytes;
  }
}

// ---------------------------------------------------------------------------------------------
// tampering

const utf8 = new TextDecoder();
const encode = (s: string) => new TextEncoder().encode(s);

/** A parsed Notary envelope, loosely typed for editing. */
export interface Envelope {
  signed: Record<string, unknown> & {
    expires: string;
    version: number;
    meta?: Record<string, { hashes: Record<string, string>; length: number }>;
    targets?: Record<string, { hashes: Record<string, string>; length: number }>;
  };
  signatures: Array<{ keyid: string; method: string; sig: string }>;
}

/** editJson parses a document, lets `edit` change it, and serialises it again (compact). */
export function editJson(bytes: Uint8Array, edit: (doc: Envelope) => void): Uint8Array {
  const doc = JSON.parse(utf8.decode(bytes)) as Envelope;
  edit(doc);
  return encode(JSON.stringify(doc));
}

/** replaceText replaces the one occurrence of `from` in the bytes (throws when there is none). */
export function replaceText(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const s = utf8.decode(bytes);
  const at = s.indexOf(from);
  if (at < 0) throw new Error(`replaceText: ${JSON.stringify(from)} not found`);
  return encode(s.slice(0, at) + to + s.slice(at + from.length));
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * flipBase64 changes one character of a base64 string into another base64 character (the
 * value stays base64 of the same length: only the decoded bytes change). `at` counts from the
 * start; characters near the padding are avoided.
 */
export function flipBase64(s: string, at = 5): string {
  const c = s[at];
  if (c === undefined || !B64.includes(c)) throw new Error(`flipBase64: no base64 digit at ${at}`);
  const next = B64[(B64.indexOf(c) + 1) % 64] as string;
  return s.slice(0, at) + next + s.slice(at + 1);
}

/** flipByte returns a copy with the byte at `at` (default: the middle) XORed with 0x01. */
export function flipByte(bytes: Uint8Array, at = Math.floor(bytes.length / 2)): Uint8Array {
  const out = new Uint8Array(bytes);
  out[at] = (out[at] as number) ^ 0x01;
  return out;
}

/** flipSignature changes one character of the `index`-th signature's base64 `sig`. */
export function flipSignature(bytes: Uint8Array, index = 0): Uint8Array {
  return editJson(bytes, (doc) => {
    const sig = doc.signatures[index];
    if (sig === undefined) throw new Error(`flipSignature: no signature ${index}`);
    sig.sig = flipBase64(sig.sig);
  });
}

/** Decoded text of bytes (for assertions on served documents). */
export function text(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}
