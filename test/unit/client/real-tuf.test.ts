/**
 * The client against real published TUF repositories (test/vectors/tuf/real-tuf/, byte-exact
 * copies; SOURCE.md there says where each comes from and which clock each needs), refreshed
 * from their first root over file:// and every target downloaded, as tuf-js does:
 *
 * - Docker's production TUF repository (tuf-on-ci): root keys ecdsa-sha2-nistp384, delegated
 *   roles doi, rekor, testing, consistent snapshots.
 * - sigstore's root-signing site: 15 root versions, roots 1–3 with RFC 3339 expiries carrying
 *   fractions and offsets, roots 1–4 with hex-point ECDSA keys, a delegated role.
 * - Datadog's roots: RSA-4096 (v1) and ten ecdsa-sha2-nistp384 keys (v2), self-verification.
 *
 * And: a key this client cannot use is named as such in the refusal, not just counted short.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initMetadataDir, Updater } from '../../../src/client/index.js';
import { portableBackend } from '../../../src/core/crypto/portable.js';
import { Metadata, TrustedMetadataSet } from '../../../src/core/index.js';
import { nodeBackend } from '../../../src/crypto/index.js';
import { ROOT } from '../../support/paths.js';

const REAL = join(ROOT, 'test', 'vectors', 'tuf', 'real-tuf');

/** Each repository, the clock it needs, and the roles whose targets are listed. */
const REPOS = [
  {
    name: 'docker-tuf',
    clock: Date.parse('2024-12-04T00:00:00Z'),
    rootVersion: 1,
    roles: ['targets', 'doi', 'rekor', 'testing'],
  },
  {
    name: 'sigstore-root-signing',
    clock: Date.parse('2026-08-22T00:00:00Z'),
    rootVersion: 15,
    roles: ['targets', 'registry.npmjs.org'],
  },
] as const;

function read(...parts: string[]): Uint8Array {
  return new Uint8Array(readFileSync(join(REAL, ...parts)));
}

/** listRole returns the target paths a role's newest file in the folder lists. */
function listRole(dir: string, role: string): string[] {
  const files = readdirSync(dir).filter((f) => f.endsWith(`.${role}.json`) && /^\d+\./.test(f));
  assert.equal(files.length, 1, `one ${role} file in ${dir}`);
  const doc = JSON.parse(readFileSync(join(dir, files[0] as string), 'utf8')) as {
    signed: { targets: Record<string, unknown> };
  };
  return Object.keys(doc.signed.targets);
}

describe('client: real published TUF repositories', () => {
  const tmp: string[] = [];
  after(() => {
    for (const d of tmp) rmSync(d, { recursive: true, force: true });
  });

  for (const repo of REPOS) {
    it(`${repo.name}: refreshes from 1.root.json over file:// and downloads every target`, async () => {
      const dir = join(REAL, repo.name);
      const work = mkdtempSync(join(tmpdir(), 'tufa-real-'));
      tmp.push(work);
      await initMetadataDir(join(work, 'metadata'), read(repo.name, '1.root.json'));
      const updater = new Updater({
        metadataDir: join(work, 'metadata'),
        metadataBaseUrl: `${pathToFileURL(dir).href}/`,
        targetDir: join(work, 'targets'),
        targetBaseUrl: `${pathToFileURL(join(dir, 'targets')).href}/`,
        now: () => repo.clock,
      });
      try {
        await updater.refresh();
        assert.equal(updater.trusted.root.signed.version, repo.rootVersion);
        let downloaded = 0;
        for (const role of repo.roles) {
          for (const path of listRole(dir, role)) {
            const target = await updater.getTargetInfo(path);
            assert.ok(target, `${repo.name}: ${path} (listed by ${role}) is found`);
            const file = await updater.downloadTarget(target);
            assert.equal(statSync(file).size, target.length);
            downloaded++;
          }
        }
        assert.ok(downloaded >= 3, `${repo.name}: ${downloaded} targets`);
      } finally {
        await updater.close();
      }
    });
  }

  it('docker-tuf: nine root keys are ecdsa-sha2-nistp384; the root verifies, and a backend without ECDSA names the keys it cannot use', () => {
    const bytes = read('docker-tuf', '1.root.json');
    const root = Metadata.fromBytes(bytes, 'root').signed;
    const p384 = [...root.keys.values()].filter((k) => k.scheme === 'ecdsa-sha2-nistp384');
    assert.ok(p384.length >= 9, `${p384.length} P-384 keys`);
    new TrustedMetadataSet(bytes, Date.parse('2024-12-04T00:00:00Z'), { backend: nodeBackend });
    // the portable backend has no ECDSA: the refusal says why, not only "signed by 0 of 3"
    assert.throws(
      () => new TrustedMetadataSet(bytes, 0, { backend: portableBackend }),
      (e: Error & { code?: string }) =>
        e.code === 'THRESHOLD_NOT_MET' &&
        /not usable here/.test(e.message) &&
        /unsupported key algorithm ecdsa-p384-sha384/.test(e.message),
    );
  });

  it('datadog: the RSA-4096 root and the P-384 tuf-on-ci root verify against themselves', () => {
    for (const file of ['datadog-v1-5.root.json', 'datadog-v2-1.root.json']) {
      const bytes = read('datadog', file);
      const md = Metadata.fromBytes(bytes, 'root');
      new TrustedMetadataSet(bytes, md.signed.expiresAt - 1000, { backend: nodeBackend });
    }
  });

  it('sigstore roots 1–3: RFC 3339 expiries with fractions and offsets read as the exact instant', () => {
    const root1 = Metadata.fromBytes(read('sigstore-root-signing', '1.root.json'), 'root');
    assert.equal(root1.signed.expires, '2021-12-18T13:28:12.99008-06:00');
    assert.equal(new Date(root1.signed.expiresAt).toISOString(), '2021-12-18T19:28:12.990Z');
  });

  it('an unsupported key type is named in the refusal', () => {
    const doc = JSON.parse(new TextDecoder().decode(read('docker-tuf', '1.root.json')));
    for (const key of Object.values(doc.signed.keys) as Array<{
      keytype: string;
      scheme: string;
    }>) {
      key.keytype = 'ecdsa-sha2-nistp521';
      key.scheme = 'ecdsa-sha2-nistp521';
    }
    const bytes = new TextEncoder().encode(JSON.stringify(doc));
    assert.throws(
      () => new TrustedMetadataSet(bytes, 0, { backend: nodeBackend }),
      (e: Error & { code?: string }) =>
        e.code === 'THRESHOLD_NOT_MET' &&
        /unsupported key type "ecdsa-sha2-nistp521"/.test(e.message),
    );
  });

  it('the copies are byte-exact: every file is listed in a role it came with', () => {
    // guards against an edited vector: each target file's name carries its own sha256
    for (const repo of REPOS) {
      const base = join(REAL, repo.name, 'targets');
      const walk = (d: string): string[] =>
        readdirSync(d, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
        );
      for (const f of walk(base)) {
        const name = relative(base, f).split(sep).pop() as string;
        const hex = name.split('.')[0] as string;
        const digest = Buffer.from(nodeBackend.digest('sha256', new Uint8Array(readFileSync(f))));
        assert.equal(digest.toString('hex'), hex, f);
      }
    }
  });
});
