/**
 * Interoperability with tuf-js (the JavaScript TUF reference client) over real HTTP on loopback:
 * a repository signed with `@tufjs/models` is accepted by tufa's Updater, and a repository
 * published by tufa's `buildRepository` is accepted by the `tuf-js` Updater.
 *
 * tuf-js and @tufjs/models are CommonJS; Node's ESM loader finds their named exports (the
 * `Object.defineProperty(exports, …)` re-exports tsc emits), so static imports work under mocha.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Key,
  Metadata,
  MetaFile,
  Root,
  Signature,
  Snapshot,
  TargetFile,
  Targets,
  Timestamp,
} from '@tufjs/models';
import { Updater as TufJsUpdater } from 'tuf-js';
import { HttpFetcher, initMetadataDir, Updater } from '../../src/client/index.js';
import { canonicalize, canonicalString, type JsonObject } from '../../src/core/index.js';
import {
  buildRepository,
  consistentTargetName,
  KeyObjectSigner,
} from '../../src/repository/index.js';
import { StaticServer } from '../support/static-server.js';

const DAY = 86_400_000;
const te = new TextEncoder();

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function sha512(b: Uint8Array): string {
  return createHash('sha512').update(b).digest('hex');
}

/** tufExpires writes a TUF expiry (no milliseconds) `days` from now. */
function tufExpires(days: number): string {
  return `${new Date(Date.now() + days * DAY).toISOString().slice(0, 19)}Z`;
}

/** An Ed25519 key in @tufjs/models form, with the signing callback `Metadata.sign` wants. */
class ModelsKey {
  readonly key: Key;
  private readonly privateKey: KeyObject;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    this.privateKey = privateKey;
    const hex = publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('hex');
    const json = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: hex } };
    const keyID = sha256(canonicalize(json));
    this.key = new Key({ keyID, keyType: 'ed25519', scheme: 'ed25519', keyVal: { public: hex } });
  }

  /** signer is the callback of `Metadata.sign`: it gets the canonical bytes @tufjs produced. */
  readonly signer = (data: Buffer): Signature =>
    new Signature({
      keyID: this.key.keyID,
      sig: sign(null, data, this.privateKey).toString('hex'),
    });
}

type AnyMetadata = Metadata<Root> | Metadata<Timestamp> | Metadata<Snapshot> | Metadata<Targets>;

function bytesOf(md: AnyMetadata): Uint8Array {
  return te.encode(JSON.stringify(md.toJSON(), null, 2));
}

function metaFileOf(version: number, bytes: Uint8Array): MetaFile {
  return new MetaFile({ version, length: bytes.length, hashes: { sha256: sha256(bytes) } });
}

interface ModelsTarget {
  path: string;
  content: Uint8Array;
  custom?: JsonObject;
}

/**
 * buildWithModels signs a consistent-snapshot repository with @tufjs/models alone (tufa's code
 * only computes key IDs) and returns its files by relative path.
 */
function buildWithModels(
  files: readonly ModelsTarget[],
  tamperTargets?: (doc: { signed: { targets: Record<string, { length: number }> } }) => void,
  keys = {
    root: new ModelsKey(),
    targets: new ModelsKey(),
    snapshot: new ModelsKey(),
    timestamp: new ModelsKey(),
  },
): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const specVersion = '1.0.31';

  const root = new Root({ version: 1, specVersion, expires: tufExpires(365) });
  for (const role of ['root', 'targets', 'snapshot', 'timestamp'] as const) {
    root.addKey(keys[role].key, role);
  }
  assert.equal(root.consistentSnapshot, true);
  const rootMd = new Metadata(root);
  rootMd.sign(keys.root.signer);
  out.set('1.root.json', bytesOf(rootMd));

  const targets = new Targets({ version: 1, specVersion, expires: tufExpires(90) });
  for (const f of files) {
    const hashes = { sha256: sha256(f.content), sha512: sha512(f.content) };
    targets.addTarget(
      new TargetFile({
        path: f.path,
        length: f.content.length,
        hashes,
        ...(f.custom === undefined ? {} : { unrecognizedFields: { custom: f.custom } }),
      }),
    );
    out.set(`targets/${consistentTargetName(f.path, hashes.sha256)}`, f.content);
  }
  const targetsMd = new Metadata(targets);
  targetsMd.sign(keys.targets.signer);
  let targetsBytes = bytesOf(targetsMd);
  if (tamperTargets !== undefined) {
    // change the signed part after signing; snapshot and timestamp stay honest about the result
    const doc = JSON.parse(new TextDecoder().decode(targetsBytes));
    tamperTargets(doc);
    targetsBytes = te.encode(JSON.stringify(doc, null, 2));
  }
  out.set('1.targets.json', targetsBytes);

  const snapshot = new Snapshot({
    version: 1,
    specVersion,
    expires: tufExpires(7),
    meta: { 'targets.json': metaFileOf(1, targetsBytes) },
  });
  const snapshotMd = new Metadata(snapshot);
  snapshotMd.sign(keys.snapshot.signer);
  const snapshotBytes = bytesOf(snapshotMd);
  out.set('1.snapshot.json', snapshotBytes);

  const timestamp = new Timestamp({
    version: 1,
    specVersion,
    expires: tufExpires(1),
    snapshotMeta: metaFileOf(1, snapshotBytes),
  });
  const timestampMd = new Metadata(timestamp);
  timestampMd.sign(keys.timestamp.signer);
  out.set('timestamp.json', bytesOf(timestampMd));
  return out;
}

function signer(): KeyObjectSigner {
  return new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);
}

function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), `${what}: bytes differ`);
}

/** Targets whose metadata exercises canonical JSON: escapes, non-ASCII, nested custom data. */
const FILES: ModelsTarget[] = [
  { path: 'hello.txt', content: te.encode('hello from @tufjs/models\n') },
  { path: 'dir/app.bin', content: new Uint8Array(randomBytes(4096)) },
  {
    path: 'données/café ☕.txt',
    content: te.encode('non-ASCII path\n'),
    custom: {
      note: 'quote " backslash \\ tab \t newline \n',
      n: [1, -2, 0],
      nested: { z: 1, a: true },
    },
  },
];

describe('interop: a repository signed with @tufjs/models, read by tufa', function () {
  this.timeout(20_000);
  let server: StaticServer;
  let tmp: string;
  let repo: Map<string, Uint8Array>;

  before(async () => {
    repo = buildWithModels(FILES);
    server = await StaticServer.start(repo);
    tmp = mkdtempSync(join(tmpdir(), 'tufa-interop-models-'));
  });

  after(async () => {
    await server?.close();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  it('tufa refreshes, finds and downloads every target (canonical signatures verify)', async () => {
    const md = join(tmp, 'tufa-md');
    const td = join(tmp, 'tufa-td');
    mkdirSync(md);
    mkdirSync(td);
    await initMetadataDir(md, repo.get('1.root.json') as Uint8Array);
    const fetcher = new HttpFetcher({ readGapTimeout: 2000, totalTimeout: 5000, retries: 0 });
    const updater = new Updater({
      metadataDir: md,
      metadataBaseUrl: server.url(''),
      targetDir: td,
      targetBaseUrl: server.url('targets/'),
      fetcher,
    });
    try {
      await updater.refresh();
      for (const f of FILES) {
        const info = await updater.getTargetInfo(f.path);
        assert.ok(info !== undefined, f.path);
        assert.equal(info.length, f.content.length);
        assert.equal(info.hashes.sha256, sha256(f.content));
        assert.equal(await updater.findCachedTarget(info), undefined);
        const file = await updater.downloadTarget(info);
        assertBytes(readFileSync(file), f.content, f.path);
        assert.equal(await updater.findCachedTarget(info), file);
      }
      const withCustom = await updater.getTargetInfo('données/café ☕.txt');
      assert.deepEqual(withCustom?.custom, FILES[2]?.custom);
      assert.equal(await updater.getTargetInfo('not-listed.txt'), undefined);
    } finally {
      await fetcher.close();
    }
  });

  it('tufa refuses the @tufjs-signed repository when one signed value changes', async () => {
    const md = join(tmp, 'tufa-md-tampered');
    mkdirSync(md);
    const tampered = buildWithModels(FILES, (doc) => {
      const t = doc.signed.targets['hello.txt'];
      if (t !== undefined) t.length += 1;
    });
    await initMetadataDir(md, tampered.get('1.root.json') as Uint8Array);
    const fake = await StaticServer.start(tampered);
    const fetcher = new HttpFetcher({ readGapTimeout: 2000, totalTimeout: 5000, retries: 0 });
    try {
      const updater = new Updater({ metadataDir: md, metadataBaseUrl: fake.url(''), fetcher });
      await assert.rejects(updater.refresh(), { code: 'THRESHOLD_NOT_MET' });
    } finally {
      await fetcher.close();
      await fake.close();
    }
  });

  it('the repository is valid for tuf-js itself (sanity check of the fixture)', async () => {
    const md = join(tmp, 'tufjs-md');
    const td = join(tmp, 'tufjs-td');
    mkdirSync(md);
    mkdirSync(td);
    writeFileSync(join(md, 'root.json'), repo.get('1.root.json') as Uint8Array);
    const updater = new TufJsUpdater({
      metadataDir: md,
      metadataBaseUrl: server.url(''),
      targetDir: td,
      targetBaseUrl: server.url('targets/'),
      config: { fetchTimeout: 5000, fetchRetry: 0 },
    });
    await updater.refresh();
    const info = await updater.getTargetInfo('hello.txt');
    assert.ok(info !== undefined);
    assertBytes(
      readFileSync(await updater.downloadTarget(info)),
      FILES[0]?.content as Uint8Array,
      'hello.txt',
    );
  });
});

describe('interop: a repository published by tufa, read by tuf-js', function () {
  this.timeout(20_000);
  let server: StaticServer;
  let tmp: string;
  let repo: Map<string, Uint8Array>;
  const files = [
    { path: 'hello.txt', content: te.encode('hello from tufa\n') },
    { path: 'dir/app.bin', content: new Uint8Array(randomBytes(10_000)) },
    {
      path: 'données/café ☕.txt',
      content: te.encode('non-ASCII path\n'),
      custom: { a: 'x"y\\z' },
    },
  ];

  before(async () => {
    repo = await buildRepository({
      root: { signers: [signer()] },
      targets: { signers: [signer(), signer()], threshold: 2 },
      snapshot: { signers: [signer()] },
      timestamp: { signers: [signer()] },
      files,
      // tuf-js reads the real clock
      now: Date.now(),
    });
    server = await StaticServer.start(repo);
    tmp = mkdtempSync(join(tmpdir(), 'tufa-interop-tufjs-'));
  });

  after(async () => {
    await server?.close();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  it('tuf-js refreshes, finds and downloads every target; the bytes are equal', async () => {
    const md = join(tmp, 'md');
    const td = join(tmp, 'td');
    mkdirSync(md);
    mkdirSync(td);
    writeFileSync(join(md, 'root.json'), repo.get('1.root.json') as Uint8Array);
    const updater = new TufJsUpdater({
      metadataDir: md,
      metadataBaseUrl: server.url(''),
      targetDir: td,
      targetBaseUrl: server.url('targets/'),
      config: { fetchTimeout: 5000, fetchRetry: 0 },
    });
    await updater.refresh();
    assert.deepEqual(server.take(), [
      '2.root.json',
      'timestamp.json',
      '1.snapshot.json',
      '1.targets.json',
    ]);
    for (const f of files) {
      const info = await updater.getTargetInfo(f.path);
      assert.ok(info !== undefined, f.path);
      assert.equal(info.length, f.content.length);
      assert.equal(info.hashes.sha256, sha256(f.content));
      assert.equal(info.hashes.sha512, sha512(f.content));
      assert.equal(await updater.findCachedTarget(info), undefined);
      const file = await updater.downloadTarget(info);
      assertBytes(readFileSync(file), f.content, f.path);
      assert.equal(await updater.findCachedTarget(info), file);
    }
    assert.deepEqual((await updater.getTargetInfo('données/café ☕.txt'))?.custom, { a: 'x"y\\z' });
    assert.equal(await updater.getTargetInfo('not-listed.txt'), undefined);
    // tuf-js cached exactly tufa's bytes
    assertBytes(
      readFileSync(join(md, 'timestamp.json')),
      repo.get('timestamp.json') as Uint8Array,
      'timestamp.json',
    );
  });

  it('tuf-js refuses a tufa target served tampered', async () => {
    const md = join(tmp, 'md-tampered');
    const td = join(tmp, 'td-tampered');
    mkdirSync(md);
    mkdirSync(td);
    writeFileSync(join(md, 'root.json'), repo.get('1.root.json') as Uint8Array);
    const f = files[0] as (typeof files)[number];
    const served = `targets/${consistentTargetName(f.path, sha256(f.content))}`;
    server.set(served, { kind: 'body', body: te.encode('hello from evil\n') });
    try {
      const updater = new TufJsUpdater({
        metadataDir: md,
        metadataBaseUrl: server.url(''),
        targetDir: td,
        targetBaseUrl: server.url('targets/'),
        config: { fetchTimeout: 5000, fetchRetry: 0 },
      });
      await updater.refresh();
      const info = await updater.getTargetInfo(f.path);
      assert.ok(info !== undefined);
      await assert.rejects(updater.downloadTarget(info));
    } finally {
      server.clear();
    }
  });
});

describe('interop: canonical JSON key order (@tufjs/canonical-json vs securesystemslib)', () => {
  // @tufjs/canonical-json sorts keys with Array.prototype.sort (UTF-16 code units);
  // securesystemslib (python-tuf) and tufa sort by code point. The two agree unless keys mix
  // characters above U+FFFF with characters in U+E000–U+FFFF, e.g. target paths "ﬁ" and "😀".
  it('documents the only divergence: tufa follows securesystemslib (code point order)', () => {
    const paths = ['\u{FB01}le.txt', '\u{1F600}.txt'];
    const targets = new Targets({ version: 1, specVersion: '1.0.31', expires: tufExpires(1) });
    for (const p of paths) {
      targets.addTarget(new TargetFile({ path: p, length: 1, hashes: { sha256: '00' } }));
    }
    const k = new ModelsKey();
    let signedBytes: Buffer | undefined;
    new Metadata(targets).sign((data) => {
      signedBytes = data;
      return k.signer(data);
    });
    const tufjsOrder = Object.keys(targets.toJSON().targets as object).sort();
    assert.deepEqual(tufjsOrder, ['\u{1F600}.txt', '\u{FB01}le.txt'], 'UTF-16 order');
    const tufa = canonicalString(targets.toJSON());
    assert.ok(tufa.indexOf('\u{FB01}le.txt') < tufa.indexOf('\u{1F600}.txt'), 'code point order');
    assert.notEqual(signedBytes?.toString('utf8'), tufa);
    // Metadata listing such paths, signed by tuf-js tooling, does not verify in python-tuf or tufa.
  });
});
