/**
 * Signing at scale (issue 17): N targets into B hashed bins (`path_hash_prefixes`), from `init`
 * to `publish`, then K more targets added to that repository and re-published (only the touched
 * bins, snapshot and timestamp may change). Side by side with the same repository built with
 * @tufjs/models (objects, signatures, files; no checks of its own beyond the library's).
 *
 *     node dist/bench/signing.js [--targets=100000] [--bins=256] [--add=1000] [--out=DIR]
 *
 * Prints one JSON report on stdout (phases in ms, peak RSS); progress on stderr. Runs on its own
 * or from `run.ts`. B must be a power of 16 (16, 256, 4096): each bin gets one hex prefix.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  Metadata as TufJsMetadata,
  MetaFile as TufJsMetaFile,
  Signature as TufJsSignature,
  TargetFile as TufJsTargetFile,
  type Targets as TufJsTargets,
} from '@tufjs/models';
import type { Key } from '../src/core/index.js';
import {
  type BatchTarget,
  KeyObjectSigner,
  publishWorkspace,
  type Signer,
  Workspace,
} from '../src/repository/index.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const v = argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`--${name}: expected a positive integer`);
  return n;
};
const TOTAL = opt('targets', 100_000);
const BINS = opt('bins', 256);
const ADD = opt('add', 1_000);
const DIGITS = Math.log(BINS) / Math.log(16);
if (!Number.isInteger(DIGITS)) throw new RangeError('--bins: expected a power of 16');
const DAY = 86_400_000;

const log = (m: string) => process.stderr.write(`[signing] ${m}\n`);
const sha256 = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');
const pathOf = (i: number) => `releases/${i % 97}/artifact-${i}.tar.gz`;
const entryOf = (i: number) => ({
  length: 1000 + (i % 5000),
  hashes: { sha256: sha256(`artifact ${i}`) },
});
const binName = (b: number) => `bin-${b.toString(16).padStart(DIGITS, '0')}`;

/** timed runs `fn` and records its wall time (ms) under `name`. */
async function timed<T>(
  phases: Record<string, number>,
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  const t = performance.now();
  const r = await fn();
  phases[name] = Math.round(performance.now() - t);
  log(`${name}: ${phases[name]} ms`);
  return r;
}

/** treeState maps every file of a folder to its sha256, to count what a publish changed. */
async function treeState(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const n of (await readdir(dir, { recursive: true })) as string[]) {
    const p = join(dir, n);
    if ((await stat(p)).isFile()) out.set(relative(dir, p), sha256(await readFile(p)));
  }
  return out;
}
const changed = (a: Map<string, string>, b: Map<string, string>) =>
  [...b]
    .filter(([k, v]) => a.get(k) !== v)
    .map(([k]) => k)
    .sort();

/** signChanged signs every role of the workspace that has no signature, one change per key. */
async function signChanged(ws: Workspace, keys: Record<string, Signer>): Promise<string[]> {
  const unsigned: string[] = [];
  for (const { name } of await ws.targetsRoles()) {
    if ((await ws.read(name)).signatures.length === 0) unsigned.push(name);
  }
  const bins = unsigned.filter((r) => r !== 'targets');
  if (bins.length > 0) await ws.signRoles(bins, keys.bins as Signer);
  if (unsigned.includes('targets')) await ws.sign('targets', keys.targets as Signer);
  if ((await ws.read('root')).signatures.length === 0) await ws.sign('root', keys.root as Signer);
  if (await ws.refreshSnapshotMeta()) await ws.sign('snapshot', keys.snapshot as Signer);
  await ws.refreshTimestampMeta(true);
  await ws.sign('timestamp', keys.timestamp as Signer);
  return unsigned;
}

async function tufa(dir: string) {
  const phases: Record<string, number> = {};
  const k = {
    root: new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey),
    targets: new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey),
    snapshot: new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey),
    timestamp: new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey),
    bins: new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey),
  };
  const wsDir = join(dir, 'ws');
  const site = join(dir, 'site');
  const start = performance.now();
  const ws = await timed(phases, 'init+delegate', async () => {
    const w = await Workspace.init(wsDir, {
      keys: {
        root: [k.root.publicKey],
        targets: [k.targets.publicKey],
        snapshot: [k.snapshot.publicKey],
        timestamp: [k.timestamp.publicKey],
      },
      now: Date.now(),
    });
    await w.update(async () => {
      for (let b = 0; b < BINS; b++) {
        const prefix = b.toString(16).padStart(DIGITS, '0');
        await w.delegate({
          name: binName(b),
          keys: [k.bins.publicKey],
          pathHashPrefixes: [prefix],
        });
      }
    });
    return w;
  });
  const items: BatchTarget[] = Array.from({ length: TOTAL }, (_, i) => ({
    path: pathOf(i),
    entry: entryOf(i),
  }));
  await timed(phases, 'add-targets', () => ws.addTargets(items));
  await timed(phases, 'sign', () => signChanged(ws, k));
  await timed(phases, 'publish', () => publishWorkspace(ws, site));
  const total = Math.round(performance.now() - start);
  log(`tufa init→publish: ${total} ms`);

  const before = await treeState(site);
  const t2 = performance.now();
  const more: BatchTarget[] = Array.from({ length: ADD }, (_, i) => ({
    path: pathOf(TOTAL + i),
    entry: entryOf(TOTAL + i),
  }));
  const incr: Record<string, number> = {};
  const roles = await timed(incr, 'add-targets', () => ws.addTargets(more));
  const signed = await timed(incr, 'sign', () => signChanged(ws, k));
  await timed(incr, 'publish', () => publishWorkspace(ws, site));
  const addTotal = Math.round(performance.now() - t2);
  const files = changed(before, await treeState(site));
  // only the touched bins (new versions), snapshot and timestamp may be new files
  const expected = roles.size + 2;
  return {
    total,
    phases,
    addTotal,
    addPhases: incr,
    touchedBins: roles.size,
    signed: signed.length,
    changedFiles: files.length,
    expectedChangedFiles: expected,
  };
}

/** The same repository with @tufjs/models: objects, ed25519 signatures, consistent-snapshot files. */
async function tufjs(dir: string) {
  const phases: Record<string, number> = {};
  const gen = () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pub = new KeyObjectSigner(privateKey).publicKey as Key;
    return { privateKey, keyid: pub.keyid, json: pub.toJSON() };
  };
  const keys = { root: gen(), targets: gen(), snapshot: gen(), timestamp: gen(), bins: gen() };
  const signer = (key: { privateKey: KeyObject; keyid: string }) => (data: Buffer) =>
    new TufJsSignature({ keyID: key.keyid, sig: sign(null, data, key.privateKey).toString('hex') });
  const expires = (days: number) =>
    new Date(Date.now() + days * DAY).toISOString().replace(/\.\d+Z$/, 'Z');
  const site = join(dir, 'site');
  await mkdir(join(site), { recursive: true });
  const write = async (name: string, md: TufJsMetadata<never>) => {
    const bytes = Buffer.from(JSON.stringify(md.toJSON()));
    await writeFile(join(site, name), bytes);
    return bytes;
  };
  const start = performance.now();
  const bins = new Map<number, TufJsMetadata<TufJsTargets>>();
  const targetsMd = await timed(phases, 'init+delegate', async () => {
    const roles = Array.from({ length: BINS }, (_, b) => ({
      name: binName(b),
      keyids: [keys.bins.keyid],
      threshold: 1,
      terminating: false,
      path_hash_prefixes: [b.toString(16).padStart(DIGITS, '0')],
    }));
    for (let b = 0; b < BINS; b++) {
      bins.set(
        b,
        TufJsMetadata.fromJSON('targets' as never, {
          signatures: [],
          signed: {
            _type: 'targets',
            spec_version: '1.0.31',
            version: 1,
            expires: expires(90),
            targets: {},
          },
        }) as unknown as TufJsMetadata<TufJsTargets>,
      );
    }
    return TufJsMetadata.fromJSON('targets' as never, {
      signatures: [],
      signed: {
        _type: 'targets',
        spec_version: '1.0.31',
        version: 1,
        expires: expires(90),
        targets: {},
        delegations: { keys: { [keys.bins.keyid]: keys.bins.json }, roles },
      },
    }) as unknown as TufJsMetadata<TufJsTargets>;
  });
  const binOf = (path: string) => Number.parseInt(sha256(path).slice(0, DIGITS), 16);
  const addAll = (from: number, n: number) => {
    const touched = new Set<number>();
    for (let i = from; i < from + n; i++) {
      const path = pathOf(i);
      const b = binOf(path);
      (bins.get(b) as TufJsMetadata<TufJsTargets>).signed.addTarget(
        new TufJsTargetFile({ path, ...entryOf(i) }),
      );
      touched.add(b);
    }
    return touched;
  };
  await timed(phases, 'add-targets', async () => addAll(0, TOTAL));
  const meta: Record<string, TufJsMetaFile> = {};
  const publishBins = async (which: Iterable<number>, bump: boolean) => {
    for (const b of which) {
      const md = bins.get(b) as TufJsMetadata<TufJsTargets>;
      if (bump) (md.signed as unknown as { version: number }).version += 1;
      md.sign(signer(keys.bins), false);
      const bytes = await write(`${md.signed.version}.${binName(b)}.json`, md as never);
      meta[`${binName(b)}.json`] = new TufJsMetaFile({
        version: md.signed.version,
        length: bytes.length,
        hashes: { sha256: sha256(bytes) },
      });
    }
  };
  let snapshotVersion = 0;
  const publishTop = async () => {
    snapshotVersion += 1;
    const snap = TufJsMetadata.fromJSON('snapshot' as never, {
      signatures: [],
      signed: {
        _type: 'snapshot',
        spec_version: '1.0.31',
        version: snapshotVersion,
        expires: expires(7),
        meta: Object.fromEntries(Object.entries(meta).map(([n, m]) => [n, m.toJSON()])),
      },
    }) as TufJsMetadata<never>;
    (snap as TufJsMetadata<never>).sign(signer(keys.snapshot), false);
    const sb = await write(`${snapshotVersion}.snapshot.json`, snap);
    const ts = TufJsMetadata.fromJSON('timestamp' as never, {
      signatures: [],
      signed: {
        _type: 'timestamp',
        spec_version: '1.0.31',
        version: snapshotVersion,
        expires: expires(1),
        meta: {
          'snapshot.json': {
            version: snapshotVersion,
            length: sb.length,
            hashes: { sha256: sha256(sb) },
          },
        },
      },
    }) as TufJsMetadata<never>;
    ts.sign(signer(keys.timestamp), false);
    await write('timestamp.json', ts);
  };
  await timed(phases, 'sign+publish', async () => {
    await publishBins(bins.keys(), false);
    targetsMd.sign(signer(keys.targets), false);
    const tb = await write('1.targets.json', targetsMd as never);
    meta['targets.json'] = new TufJsMetaFile({
      version: 1,
      length: tb.length,
      hashes: { sha256: sha256(tb) },
    });
    const root = TufJsMetadata.fromJSON('root' as never, {
      signatures: [],
      signed: {
        _type: 'root',
        spec_version: '1.0.31',
        version: 1,
        expires: expires(365),
        consistent_snapshot: true,
        keys: Object.fromEntries(
          [keys.root, keys.targets, keys.snapshot, keys.timestamp].map((k) => [k.keyid, k.json]),
        ),
        roles: Object.fromEntries(
          (['root', 'targets', 'snapshot', 'timestamp'] as const).map((r) => [
            r,
            { keyids: [keys[r].keyid], threshold: 1 },
          ]),
        ),
      },
    }) as TufJsMetadata<never>;
    root.sign(signer(keys.root), false);
    await write('1.root.json', root);
    await publishTop();
  });
  const total = Math.round(performance.now() - start);
  log(`@tufjs/models init→publish: ${total} ms`);
  const t2 = performance.now();
  const incr: Record<string, number> = {};
  const touched = await timed(incr, 'add-targets', async () => addAll(TOTAL, ADD));
  await timed(incr, 'sign+publish', async () => {
    await publishBins(touched, true);
    await publishTop();
  });
  return {
    total,
    phases,
    addTotal: Math.round(performance.now() - t2),
    addPhases: incr,
    touchedBins: touched.size,
  };
}

async function main(): Promise<void> {
  const outArg = argv.find((a) => a.startsWith('--out='))?.slice(6);
  const dir = outArg ?? (await mkdtemp(join(tmpdir(), 'tufa-bench-signing-')));
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  try {
    log(`${TOTAL} targets into ${BINS} hashed bins, then ${ADD} more`);
    const a = await tufa(join(dir, 'tufa'));
    const rssTufa = Math.round(process.resourceUsage().maxRSS / 1024);
    const b = await tufjs(join(dir, 'tufjs'));
    const report = {
      targets: TOTAL,
      bins: BINS,
      add: ADD,
      tufa: a,
      tufjs: b,
      ratio: { build: +(a.total / b.total).toFixed(2), add: +(a.addTotal / b.addTotal).toFixed(2) },
      maxRssMiB: { afterTufa: rssTufa, end: Math.round(process.resourceUsage().maxRSS / 1024) },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (a.changedFiles !== a.expectedChangedFiles) {
      log(`re-publish changed ${a.changedFiles} files, expected ${a.expectedChangedFiles}`);
      process.exitCode = 1;
    }
  } finally {
    if (outArg === undefined) await rm(dir, { recursive: true, force: true });
  }
}

await main();
