/**
 * Scale: 10,000 targets over 64 succinct hashed bins, added through the library in one process,
 * every bin signed, published, and read back over HTTP on 127.0.0.1 by tufa's Updater and by the
 * tuf-js Updater. Correctness is asserted, not speed; the whole run is bounded by mocha's timeout.
 *
 * Every target is listed with its real length and hashes; the content of one target in a hundred
 * (the three chosen ones included) is stored in the workspace and published, the rest are listed
 * only (as for artifacts served from elsewhere). The targets are added in changes of 500
 * ({@link Workspace.update}: one lock, each touched file written once), as a bulk import would;
 * this keeps the run to ~200 published target files and a few thousand file writes instead of
 * ~20k fsync'd ones, without changing what the metadata looks like.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Updater as TufJsUpdater } from 'tuf-js';
import { HttpFetcher, initMetadataDir, Updater } from '../../src/client/index.js';
import {
  hashesOf,
  KeyObjectSigner,
  publishWorkspace,
  repositoryStatus,
  Workspace,
} from '../../src/repository/index.js';
import { StaticServer } from '../support/static-server.js';

const TOTAL = 10_000;
const BITS = 6;
const BINS = 2 ** BITS;
/** Targets added per workspace change ({@link Workspace.update}). */
const CHANGE = 500;
const te = new TextEncoder();

function signer(): KeyObjectSigner {
  return new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);
}

function sha256(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

const pathOf = (i: number) => `releases/${i % 97}/artifact-${i}.tar.gz`;
const contentOf = (i: number) => te.encode(`artifact number ${i}\n${'x'.repeat(i % 300)}`);
/** The bin of a path: its top BITS bits of sha256, as `bins-<2 hex digits>`. */
const binOf = (path: string) =>
  `bins-${(Number.parseInt(sha256(path).slice(0, 2), 16) >> (8 - BITS)).toString(16).padStart(2, '0')}`;

describe('repository at scale: 10,000 targets in 64 succinct bins', function () {
  this.timeout(120_000);
  let tmp: string;
  let server: StaticServer | undefined;
  let ws: Workspace;
  let site: string;
  const chosen = [7, 4242, 9999];

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tufa-scale-test-'));
    const k = {
      root: signer(),
      targets: signer(),
      snapshot: signer(),
      timestamp: signer(),
      bins: signer(),
    };
    ws = await Workspace.init(join(tmp, 'ws'), {
      keys: {
        root: [k.root.publicKey],
        targets: [k.targets.publicKey],
        snapshot: [k.snapshot.publicKey],
        timestamp: [k.timestamp.publicKey],
      },
      now: Date.now(),
    });
    const bins = await ws.delegate({ name: 'bins', keys: [k.bins.publicKey], succinctBits: BITS });
    assert.equal(bins.length, BINS);

    // a bulk import runs as a few changes (each one lock and one write per file it touched)
    for (let start = 0; start < TOTAL; start += CHANGE) {
      await ws.update(async () => {
        for (let i = start; i < Math.min(start + CHANGE, TOTAL); i++) {
          const path = pathOf(i);
          const content = contentOf(i);
          const role =
            i % 100 === 0 || chosen.includes(i)
              ? await ws.addTargetFile(path, content)
              : await ws.addTarget(path, { length: content.length, hashes: hashesOf(content) });
          if (role !== binOf(path)) assert.fail(`${path} went to ${role}, expected ${binOf(path)}`);
        }
      });
    }

    for (const bin of bins) assert.equal(await ws.sign(bin, k.bins), true, bin);
    await ws.sign('targets', k.targets);
    await ws.sign('root', k.root);
    await ws.refreshSnapshotMeta();
    await ws.sign('snapshot', k.snapshot);
    await ws.refreshTimestampMeta();
    await ws.sign('timestamp', k.timestamp);

    site = join(tmp, 'site');
    const published = await publishWorkspace(ws, site);
    assert.equal(published.targets, TOTAL);
    server = await StaticServer.start(site);
  });

  after(async () => {
    await server?.close();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  it('every target is listed once, in the bin its path hash names; every bin is used', async () => {
    const seen = new Set<string>();
    for (let b = 0; b < BINS; b++) {
      const bin = `bins-${b.toString(16).padStart(2, '0')}`;
      const targets = Object.keys((await ws.read(bin)).signed.targets as object);
      assert.ok(targets.length > 0, `${bin} is not empty`);
      for (const p of targets) {
        assert.equal(binOf(p), bin, p);
        assert.ok(!seen.has(p), `${p} listed twice`);
        seen.add(p);
      }
    }
    assert.equal(seen.size, TOTAL);
    assert.deepEqual((await ws.read('targets')).signed.targets, {});
  });

  it('status is ready: 4 top-level roles and 64 bins, each signed', async () => {
    const s = await repositoryStatus(ws);
    assert.equal(s.ready, true, s.problems.slice(0, 5).join('\n'));
    assert.equal(s.roles.length, 4 + BINS);
    for (const r of s.roles) assert.equal(r.thresholds[0]?.missing, 0, r.role);
  });

  it('the published tree has every bin in the snapshot and the stored target contents', () => {
    const snapshotName = readdirSync(site).find((n) => /^\d+\.snapshot\.json$/.test(n));
    assert.ok(snapshotName !== undefined);
    const meta = JSON.parse(readFileSync(join(site, snapshotName), 'utf8')).signed.meta;
    assert.equal(Object.keys(meta).length, 1 + BINS);
    for (let b = 0; b < BINS; b++) {
      const bin = `bins-${b.toString(16).padStart(2, '0')}`;
      assert.equal(meta[`${bin}.json`]?.version, 1, bin);
      readFileSync(join(site, `1.${bin}.json`));
    }
  });

  it('tufa’s Updater finds and downloads the three chosen targets', async () => {
    const md = join(tmp, 'tufa-md');
    const td = join(tmp, 'tufa-td');
    mkdirSync(md);
    mkdirSync(td);
    await initMetadataDir(md, readFileSync(join(site, '1.root.json')));
    const fetcher = new HttpFetcher({
      connectTimeout: 2000,
      readGapTimeout: 5000,
      totalTimeout: 20_000,
      retries: 0,
    });
    const s = server as StaticServer;
    const updater = new Updater({
      metadataDir: md,
      metadataBaseUrl: s.url(''),
      targetDir: td,
      targetBaseUrl: s.url('targets/'),
      fetcher,
    });
    try {
      await updater.refresh();
      for (const i of chosen) {
        const info = await updater.getTargetInfo(pathOf(i));
        assert.ok(info !== undefined, pathOf(i));
        const file = await updater.downloadTarget(info);
        assert.ok(Buffer.from(readFileSync(file)).equals(Buffer.from(contentOf(i))), pathOf(i));
        // only the bin of the path was fetched, not all 64
        assert.ok(updater.requests.includes(`1.${binOf(pathOf(i))}.json`));
      }
      const bins = new Set(updater.requests.filter((r) => r.includes('.bins-')));
      assert.ok(bins.size <= chosen.length, `fetched ${bins.size} bins`);
      assert.equal(await updater.getTargetInfo('releases/0/not-there.tar.gz'), undefined);
      // a listed target whose content lives elsewhere: found, but not on this server
      const listedOnly = await updater.getTargetInfo(pathOf(1));
      assert.equal(listedOnly?.length, contentOf(1).length);
      await assert.rejects(updater.downloadTarget(listedOnly as NonNullable<typeof listedOnly>));
    } finally {
      await fetcher.close();
    }
  });

  it('the tuf-js Updater finds and downloads the three chosen targets', async () => {
    const md = join(tmp, 'tufjs-md');
    const td = join(tmp, 'tufjs-td');
    mkdirSync(md);
    mkdirSync(td);
    writeFileSync(join(md, 'root.json'), readFileSync(join(site, '1.root.json')));
    const s = server as StaticServer;
    const updater = new TufJsUpdater({
      metadataDir: md,
      metadataBaseUrl: s.url(''),
      targetDir: td,
      targetBaseUrl: s.url('targets/'),
      config: { fetchTimeout: 10_000, fetchRetry: 0 },
    });
    await updater.refresh();
    for (const i of chosen) {
      const info = await updater.getTargetInfo(pathOf(i));
      assert.ok(info !== undefined, pathOf(i));
      assert.equal(info.hashes.sha256, sha256(contentOf(i)));
      const file = await updater.downloadTarget(info);
      assert.ok(Buffer.from(readFileSync(file)).equals(Buffer.from(contentOf(i))), pathOf(i));
    }
    assert.equal(await updater.getTargetInfo('releases/0/not-there.tar.gz'), undefined);
  });
});
