/**
 * A deterministic TUF repository generator for the benchmarks.
 *
 * It writes signed metadata straight to a folder, signing the canonical JSON with node:crypto
 * (the library's `Workspace` fsyncs every edit and is far too slow for a million targets). The
 * same parameters always give the same bytes: keys come from fixed seeds, Ed25519 signatures are
 * deterministic, versions and expiry dates are fixed, and target entries are derived from their
 * index.
 *
 * Layouts:
 *  - `flat`: N targets in the top-level targets.json;
 *  - `hashed`: N targets spread over `bins` delegated roles with `path_hash_prefixes`;
 *  - `succinct`: N targets spread over 2^k succinct hashed bins (TAP 15).
 *
 * Metadata is written with consistent snapshots (`<version>.<role>.json`, `timestamp.json`). The
 * snapshot lists every targets role with version, length and sha256; the timestamp lists the
 * snapshot the same way. Each repository is cached under `bench/out/repos/<key>/` and only
 * regenerated when the parameters (or {@link GENERATOR_VERSION}) change.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalString } from '../src/core/canonical-json.js';
import type { JsonObject } from '../src/core/json.js';

/** Bump when the output format changes, so cached repositories are rebuilt. */
export const GENERATOR_VERSION = 3;

/** Far in the future, so cached repositories do not expire. */
const EXPIRES = '2099-12-31T00:00:00Z';
const SPEC_VERSION = '1.0.31';

export type RepoLayout = 'flat' | 'hashed' | 'succinct';

export interface RepoParams {
  layout: RepoLayout;
  /** Number of targets. */
  targets: number;
  /** Number of bins (hashed: 1–256, one hex-prefix each of 2 digits when 256; succinct: a power of 2). */
  bins?: number;
}

/** An explicit target for small repositories (e.g. the signed image manifest of the pull benchmark). */
export interface ExplicitTarget {
  path: string;
  length: number;
  sha256: string;
}

/** A generated repository on disk. */
export interface GeneratedRepo {
  readonly params: RepoParams;
  /** The folder the server should serve (metadata files only). */
  readonly metadataDir: string;
  /** The trusted root file (version 1) a client starts from. */
  readonly rootFile: string;
  /** A target path the repository lists (the one the benchmark looks up). */
  readonly lookupPath: string;
  /** Its signed length, to check the client found the right entry. */
  readonly lookupLength: number;
  /** Total bytes of metadata a cold client fetches (root excluded): timestamp, snapshot, targets, one bin. */
  readonly coldBytes: number;
  /** Metadata files served. */
  readonly files: number;
  /** Seconds the generation took (0 when it came from the cache). */
  readonly generatedIn: number;
}

/** A deterministic Ed25519 key from a seed string. */
export class SeededKey {
  readonly privateKey: KeyObject;
  readonly json: JsonObject;
  readonly keyid: string;

  constructor(seed: string) {
    const raw = createHash('sha256').update(`tufa-bench-key/${seed}`).digest();
    const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), raw]);
    this.privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    const pub = createPublicKey(this.privateKey)
      .export({ format: 'der', type: 'spki' })
      .subarray(12)
      .toString('hex');
    this.json = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: pub } };
    this.keyid = sha256Hex(canonicalString(this.json));
  }

  /** envelope signs `signed` and returns the document: compact JSON, `signed` in canonical form. */
  envelope(signed: JsonObject): Buffer {
    const body = canonicalString(signed);
    const sig = sign(null, Buffer.from(body), this.privateKey).toString('hex');
    // Canonical JSON of these ASCII documents is valid JSON, so the signed part is written as it is signed.
    return Buffer.from(
      `{"signatures":[{"keyid":"${this.keyid}","sig":"${sig}"}],"signed":${body}}`,
    );
  }
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The path of target `i`: spread over a few folder levels, as packages or images would be. */
export function targetPath(i: number): string {
  const id = String(i).padStart(7, '0');
  return `pkg/${id.slice(0, 3)}/${id.slice(3, 5)}/app-${id}.tar.gz`;
}

function targetEntry(i: number): JsonObject {
  return {
    length: 1024 + ((i * 7919) % 1_000_000),
    hashes: { sha256: sha256Hex(`tufa-bench-content/${i}`) },
  };
}

/** repoKey names a parameter set (the cache folder name). */
export function repoKey(p: RepoParams): string {
  const bins = p.layout === 'flat' ? '' : `-${p.bins}bins`;
  return `${p.layout}-${p.targets}${bins}-g${GENERATOR_VERSION}`;
}

interface Keys {
  root: SeededKey;
  timestamp: SeededKey;
  snapshot: SeededKey;
  targets: SeededKey;
  bins: SeededKey;
}

function keys(): Keys {
  return {
    root: new SeededKey('root'),
    timestamp: new SeededKey('timestamp'),
    snapshot: new SeededKey('snapshot'),
    targets: new SeededKey('targets'),
    bins: new SeededKey('bins'),
  };
}

function signedTargets(targets: JsonObject, delegations?: JsonObject): JsonObject {
  const s: JsonObject = {
    _type: 'targets',
    spec_version: SPEC_VERSION,
    version: 1,
    expires: EXPIRES,
    targets,
  };
  if (delegations !== undefined) s.delegations = delegations;
  return s;
}

function metaEntry(bytes: Uint8Array): JsonObject {
  return { version: 1, length: bytes.length, hashes: { sha256: sha256Hex(bytes) } };
}

/** hashedBinPrefixes returns the hex prefixes of bin `b` of `bins` (bins a power of 16 or 2 up to 256). */
function hashedBinPrefixes(b: number, bins: number): string[] {
  // 256 prefixes of 2 hex digits, split evenly.
  const per = 256 / bins;
  const out: string[] = [];
  for (let p = b * per; p < (b + 1) * per; p++) out.push(p.toString(16).padStart(2, '0'));
  return out;
}

/**
 * writeRepository generates a repository into `dir` (which must not exist yet): `metadata/` and
 * `root.json`. With `explicit`, those targets are listed in the top-level targets instead.
 */
export async function writeRepository(
  dir: string,
  p: RepoParams,
  explicit?: readonly ExplicitTarget[],
): Promise<{ lookupPath: string; lookupLength: number; coldBytes: number; files: number }> {
  const k = keys();
  const meta = join(dir, 'metadata');
  await mkdir(meta, { recursive: true });
  const snapshotMeta: JsonObject = {};
  const files: Array<[string, Uint8Array]> = [];
  let lookupIndex = Math.floor(p.targets / 2);
  let lookupPath = targetPath(lookupIndex);
  let binBytes: Uint8Array | undefined;
  let lookupBin = '';

  if (explicit !== undefined) {
    const t: JsonObject = {};
    for (const e of explicit) t[e.path] = { length: e.length, hashes: { sha256: e.sha256 } };
    const bytes = k.targets.envelope(signedTargets(t));
    files.push(['1.targets.json', bytes]);
    snapshotMeta['targets.json'] = metaEntry(bytes);
    lookupPath = explicit[0]?.path ?? '';
    lookupIndex = -1;
  } else if (p.layout === 'flat') {
    const t: JsonObject = {};
    for (let i = 0; i < p.targets; i++) t[targetPath(i)] = targetEntry(i);
    const bytes = k.targets.envelope(signedTargets(t));
    files.push(['1.targets.json', bytes]);
    snapshotMeta['targets.json'] = metaEntry(bytes);
  } else {
    const bins = p.bins ?? 256;
    const binTargets: JsonObject[] = Array.from({ length: bins }, () => ({}));
    let names: string[];
    let delegations: JsonObject;
    const delegationKeys: JsonObject = { [k.bins.keyid]: k.bins.json };
    let binOf: (path: string) => number;
    if (p.layout === 'hashed') {
      if (bins < 1 || bins > 256 || 256 % bins !== 0)
        throw new Error(`hashed: bins must divide 256, got ${bins}`);
      const width = (bins - 1).toString(16).length;
      names = Array.from(
        { length: bins },
        (_, b) => `bins-${b.toString(16).padStart(Math.max(width, 2), '0')}`,
      );
      const per = 256 / bins;
      binOf = (path) => Math.floor(Number.parseInt(sha256Hex(path).slice(0, 2), 16) / per);
      delegations = {
        keys: delegationKeys,
        roles: names.map((name, b) => ({
          name,
          keyids: [k.bins.keyid],
          threshold: 1,
          terminating: false,
          path_hash_prefixes: hashedBinPrefixes(b, bins),
        })),
      };
    } else {
      const bitLength = Math.log2(bins);
      if (!Number.isInteger(bitLength) || bitLength < 1 || bitLength > 32)
        throw new Error(`succinct: bins must be a power of 2, got ${bins}`);
      const suffix = (bins - 1).toString(16).length;
      names = Array.from(
        { length: bins },
        (_, b) => `bins-${b.toString(16).padStart(suffix, '0')}`,
      );
      binOf = (path) =>
        createHash('sha256').update(path).digest().readUInt32BE(0) >>> (32 - bitLength);
      delegations = {
        keys: delegationKeys,
        succinct_roles: {
          keyids: [k.bins.keyid],
          threshold: 1,
          bit_length: bitLength,
          name_prefix: 'bins',
        },
      };
    }
    for (let i = 0; i < p.targets; i++) {
      const path = targetPath(i);
      (binTargets[binOf(path)] as JsonObject)[path] = targetEntry(i);
    }
    lookupBin = names[binOf(lookupPath)] as string;
    const top = k.targets.envelope(signedTargets({}, delegations));
    files.push(['1.targets.json', top]);
    snapshotMeta['targets.json'] = metaEntry(top);
    for (let b = 0; b < bins; b++) {
      const bytes = k.bins.envelope(signedTargets(binTargets[b] as JsonObject));
      const name = names[b] as string;
      files.push([`1.${name}.json`, bytes]);
      snapshotMeta[`${name}.json`] = metaEntry(bytes);
      if (name === lookupBin) binBytes = bytes;
    }
  }

  const snapshot = k.snapshot.envelope({
    _type: 'snapshot',
    spec_version: SPEC_VERSION,
    version: 1,
    expires: EXPIRES,
    meta: snapshotMeta,
  });
  files.push(['1.snapshot.json', snapshot]);
  const timestamp = k.timestamp.envelope({
    _type: 'timestamp',
    spec_version: SPEC_VERSION,
    version: 1,
    expires: EXPIRES,
    meta: { 'snapshot.json': metaEntry(snapshot) },
  });
  files.push(['timestamp.json', timestamp]);
  const roleOf = (key: SeededKey) => ({ keyids: [key.keyid], threshold: 1 });
  const root = k.root.envelope({
    _type: 'root',
    spec_version: SPEC_VERSION,
    version: 1,
    expires: EXPIRES,
    consistent_snapshot: true,
    keys: Object.fromEntries(
      [k.root, k.timestamp, k.snapshot, k.targets].map((key) => [key.keyid, key.json]),
    ),
    roles: {
      root: roleOf(k.root),
      timestamp: roleOf(k.timestamp),
      snapshot: roleOf(k.snapshot),
      targets: roleOf(k.targets),
    },
  });
  files.push(['1.root.json', root]);
  // Write in batches: a million-target repository has 16k files.
  for (let i = 0; i < files.length; i += 256) {
    await Promise.all(
      files.slice(i, i + 256).map(([name, bytes]) => writeFile(join(meta, name), bytes)),
    );
  }
  await writeFile(join(dir, 'root.json'), root);
  const targetsBytes = files.find(([n]) => n === '1.targets.json')?.[1] as Uint8Array;
  const coldBytes =
    timestamp.length + snapshot.length + targetsBytes.length + (binBytes?.length ?? 0);
  const lookupLength =
    lookupIndex >= 0 ? (targetEntry(lookupIndex).length as number) : (explicit?.[0]?.length ?? 0);
  return { lookupPath, lookupLength, coldBytes, files: files.length };
}

/**
 * ensureRepo returns the cached repository for `p`, generating it first when needed (into a
 * temp folder renamed into place, so an interrupted run leaves no half repository).
 */
export async function ensureRepo(outDir: string, p: RepoParams): Promise<GeneratedRepo> {
  const dir = join(outDir, 'repos', repoKey(p));
  const info = join(dir, 'info.json');
  let generatedIn = 0;
  if (!existsSync(info)) {
    const started = performance.now();
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    const r = await writeRepository(tmp, p);
    await writeFile(join(tmp, 'info.json'), `${JSON.stringify({ params: p, ...r }, null, 2)}\n`);
    await rename(tmp, dir);
    generatedIn = (performance.now() - started) / 1000;
  }
  const r = JSON.parse(await readFile(info, 'utf8')) as {
    lookupPath: string;
    lookupLength: number;
    coldBytes: number;
    files: number;
  };
  return {
    params: p,
    metadataDir: join(dir, 'metadata'),
    rootFile: join(dir, 'root.json'),
    lookupPath: r.lookupPath,
    lookupLength: r.lookupLength,
    coldBytes: r.coldBytes,
    files: r.files,
    generatedIn,
  };
}
