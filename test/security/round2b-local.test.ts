/**
 * Security round 2b (issue 13), the local edges: OCI layouts and archives read from disk
 * (R2B-07), and the trust policy and the signer command's environment (R2B-09).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import {
  type Descriptor,
  extractArchive,
  type LayoutImage,
  readLayout,
} from '../../src/oci/index.js';
import { Reference } from '../../src/oci/reference.js';
import { publicKeyOf } from '../../src/repository/signer.js';
import { Workspace } from '../../src/repository/workspace.js';
import { TrustPolicy } from '../../src/verify/policy.js';
import { defineCases, type SecurityCase, show, tufa } from './harness.js';

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const GiB = 1024 * 1024 * 1024;

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A small layout on disk: a manifest naming one layer, listed in index.json as `v1`. */
function writeLayout(dir: string): { manifest: Descriptor; layer: Descriptor } {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (bytes: Uint8Array, mediaType: string): Descriptor => {
    const digest = sha256(bytes);
    writeFileSync(join(blobs, digest.slice(7)), bytes);
    return { mediaType, digest, size: bytes.length };
  };
  const layer = put(Buffer.from('hello layer'), 'application/vnd.oci.image.layer.v1.tar');
  const manifest = put(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, layers: [layer] })),
    MANIFEST_TYPE,
  );
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }],
    }),
  );
  return { manifest, layer };
}

function blobFile(dir: string, d: Descriptor): string {
  return join(dir, 'blobs', 'sha256', d.digest.slice(7));
}

/** readBlobOf reads a blob of a layout image as its descriptor gives it. */
function readBlobOf(image: LayoutImage, d: Descriptor): Promise<Uint8Array> {
  return image.readBlob(d.digest, d.size);
}

/** copyBlobOf streams a blob of a layout image into memory (a sink that keeps the chunks). */
async function copyBlobOf(image: LayoutImage, d: Descriptor): Promise<number> {
  let n = 0;
  await image.copyBlob(d, (c) => {
    n += c.length;
  });
  return n;
}

/** writeArchive packs entries (files, or links with a target) into a tar. */
async function writeArchive(
  file: string,
  entries: Array<{ name: string; body?: Uint8Array; type?: 'symlink' | 'link'; linkname?: string }>,
): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(file));
  for (const e of entries) {
    if (e.type === undefined) pack.entry({ name: e.name }, Buffer.from(e.body ?? ''));
    else pack.entry({ name: e.name, type: e.type, linkname: e.linkname ?? '' });
  }
  pack.finalize();
  await done;
}

/** growth runs `fn` and returns how much the resident set grew meanwhile (MiB). */
async function rssGrowthMiB(fn: () => Promise<void>): Promise<number> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return (peak - before) / (1024 * 1024);
}

function tufRule(match: string, metadataUrl = 'https://tuf.example/metadata/') {
  return { match, tuf: { metadataUrl, root: 'root.json' } };
}

function notaryRule(match: string) {
  return { match, notary: { server: 'https://notary.example', tofu: true } };
}

const CASES: SecurityCase[] = [
  {
    id: 'R2B-07',
    title: 'OCI layouts and archives: no symlinks or special files, sizes checked before reading',
    attack:
      'A layout whose signed manifest blob (or a layer, index.json, the blobs folder) is a symlink to /dev/zero or another folder, a FIFO, or a 1.5 GiB sparse file for an 11-byte blob; an oci-archive with symlink and hard link entries',
    source: 'issue 13 item 7 (7.8 GB RSS from a symlink to /dev/zero)',
    expect: 'LAYOUT_INVALID | SIZE_MISMATCH | TOO_LARGE',
    timeout: 60_000,
    async run(t) {
      const quick = async (what: string, attempt: () => Promise<unknown>, code: string) => {
        const started = performance.now();
        const grown = await rssGrowthMiB(async () => {
          await t.refuses(attempt, code);
        });
        const ms = performance.now() - started;
        assert.ok(ms < 2000, `${what}: refused after ${Math.round(ms)} ms`);
        assert.ok(grown < 64, `${what}: RSS grew by ${Math.round(grown)} MiB`);
      };

      // oci-archive: links are refused, not skipped or followed
      for (const type of ['symlink', 'link'] as const) {
        const d = t.tmp();
        const body = Buffer.from('{}');
        const file = join(d, 'image.tar');
        await writeArchive(file, [
          { name: 'oci-layout', body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
          { name: 'index.json', body: Buffer.from('{"manifests":[]}') },
          { name: `blobs/sha256/${sha256(body).slice(7)}`, type, linkname: '/dev/zero' },
        ]);
        await quick(`archive ${type} entry`, () => extractArchive(file, d), 'LAYOUT_INVALID');
      }

      // the manifest blob is a symlink to /dev/zero: refused before a byte is read
      {
        const d = t.tmp();
        const { manifest } = writeLayout(d);
        const f = blobFile(d, manifest);
        execFileSync('rm', [f]);
        symlinkSync('/dev/zero', f);
        await quick('manifest → /dev/zero', () => readLayout(d, 'v1'), 'LAYOUT_INVALID');
      }
      // a FIFO (opening it for reading would wait for a writer for ever)
      {
        const d = t.tmp();
        const { manifest } = writeLayout(d);
        const f = blobFile(d, manifest);
        execFileSync('rm', [f]);
        execFileSync('mkfifo', [f]);
        await quick('manifest FIFO', () => readLayout(d, 'v1'), 'LAYOUT_INVALID');
      }
      // a 1.5 GiB sparse file for the 11-byte layer, and for the manifest
      {
        const d = t.tmp();
        const { manifest, layer } = writeLayout(d);
        const image = await readLayout(d, 'v1');
        assert.equal(Buffer.from(await readBlobOf(image, layer)).toString(), 'hello layer');
        assert.equal(await copyBlobOf(image, layer), layer.size);
        execFileSync('truncate', ['-s', String(1.5 * GiB), blobFile(d, layer)]);
        await quick('sparse layer (readBlob)', () => readBlobOf(image, layer), 'SIZE_MISMATCH');
        await quick('sparse layer (copyBlob)', () => copyBlobOf(image, layer), 'SIZE_MISMATCH');
        execFileSync('truncate', ['-s', String(1.5 * GiB), blobFile(d, manifest)]);
        await quick('sparse manifest', () => readLayout(d, 'v1'), 'SIZE_MISMATCH');
      }
      // a layer that is a symlink to /dev/zero, read by pull
      {
        const d = t.tmp();
        const { layer } = writeLayout(d);
        const image = await readLayout(d, 'v1');
        execFileSync('rm', [blobFile(d, layer)]);
        symlinkSync('/dev/zero', blobFile(d, layer));
        await quick(
          'layer → /dev/zero (readBlob)',
          () => readBlobOf(image, layer),
          'LAYOUT_INVALID',
        );
        await quick(
          'layer → /dev/zero (copyBlob)',
          () => copyBlobOf(image, layer),
          'LAYOUT_INVALID',
        );
      }
      // index.json: a symlink to /dev/zero, a sparse 1.5 GiB file
      {
        const d = t.tmp();
        writeLayout(d);
        execFileSync('rm', [join(d, 'index.json')]);
        symlinkSync('/dev/zero', join(d, 'index.json'));
        await quick('index.json → /dev/zero', () => readLayout(d, 'v1'), 'LAYOUT_INVALID');
        execFileSync('rm', [join(d, 'index.json')]);
        execFileSync('truncate', ['-s', String(1.5 * GiB), join(d, 'index.json')]);
        await quick('sparse index.json', () => readLayout(d, 'v1'), 'TOO_LARGE');
      }
      // blobs/sha256 is a symlink to another layout's blobs: it leads outside the layout
      {
        const other = t.tmp();
        writeLayout(other);
        const d = t.tmp();
        writeLayout(d);
        execFileSync('rm', ['-r', join(d, 'blobs', 'sha256')]);
        symlinkSync(join(other, 'blobs', 'sha256'), join(d, 'blobs', 'sha256'));
        await quick('blobs/sha256 symlinked', () => readLayout(d, 'v1'), 'LAYOUT_INVALID');
        execFileSync('rm', [join(d, 'blobs', 'sha256')]);
        execFileSync('rm', ['-r', join(d, 'blobs')]);
        symlinkSync(join(other, 'blobs'), join(d, 'blobs'));
        await quick('blobs symlinked', () => readLayout(d, 'v1'), 'LAYOUT_INVALID');
      }
    },
  },
  {
    id: 'R2B-09',
    title: 'trust policy footguns: case, partial **, default ports, symlinked file, signer env',
    attack:
      'A pattern with an upper-case letter or a `**` inside a segment, a reference spelled registry.example:443/… to escape the rule for registry.example/…, a policy file reached through a symlink with a relative root, overlapping rules of different trust sources, and a signer command reading TUFA_KEY_PASSPHRASE from its environment',
    source: 'issue 13 item 9',
    expect: 'MISUSE',
    timeout: 60_000,
    async run(t) {
      // upper case: the rule could never match (names are lower case), a broader one would govern
      for (const pattern of ['ghcr.io/Acme/**', 'GHCR.io/acme/*', 'ghcr.io/acme/App']) {
        await t.refuses(
          () =>
            TrustPolicy.fromJSON({ rules: [notaryRule('**'), tufRule(pattern)] }, '/p', 'p.json'),
          'MISUSE',
          new RegExp(
            `p\\.json: rules\\[1\\]\\.match: .*${pattern.replace(/[.*]/g, '\\$&')}.*upper-case`,
          ),
        );
      }
      // ** inside a segment would match across segments (ghcr.io/acme** matches ghcr.io/acme-evil/x)
      for (const pattern of ['ghcr.io/acme**', 'ghcr.io/**acme', 'ghcr.io/a**b/c', '**.io/acme']) {
        await t.refuses(
          () => TrustPolicy.fromJSON({ rules: [tufRule(pattern)] }, '/p', 'p.json'),
          'MISUSE',
          /p\.json: rules\[0\]\.match: .*`\*\*` must be a whole path segment/,
        );
      }
      // whole-segment ** still loads
      TrustPolicy.fromJSON(
        { rules: [tufRule('ghcr.io/**'), tufRule('**/app'), tufRule('a/**/b')] },
        '/p',
      );

      // default ports: registry.example:443/app and :80 are registry.example/app, for references
      // and for patterns alike
      const p = TrustPolicy.fromJSON(
        { rules: [notaryRule('**'), tufRule('registry.example/**')] },
        '/p',
      );
      for (const input of [
        'registry.example:443/app:1',
        'registry.example:80/app:1',
        'REGISTRY.example:443/app:1',
      ]) {
        const ref = Reference.parse(input);
        assert.equal(ref.registry, 'registry.example', input);
        assert.equal(p.match(ref.name)?.match, 'registry.example/**', input);
        assert.equal(
          p.match(`${input.split('/')[0]?.toLowerCase()}/app`)?.match,
          'registry.example/**',
          input,
        );
      }
      assert.equal(
        Reference.parse('registry.example:5000/app:1').registry,
        'registry.example:5000',
      );
      const q = TrustPolicy.fromJSON(
        { rules: [notaryRule('**'), tufRule('registry.example:443/**')] },
        '/p',
      );
      assert.equal(q.match(Reference.parse('registry.example/app:1').name)?.source.kind, 'tuf');

      // a relative root resolves next to the real policy file, not next to a symlink to it
      const real = t.tmp();
      const elsewhere = t.tmp();
      writeFileSync(join(real, 'policy.json'), JSON.stringify({ rules: [tufRule('**')] }));
      symlinkSync(join(real, 'policy.json'), join(elsewhere, 'policy.json'));
      const viaLink = await TrustPolicy.load(join(elsewhere, 'policy.json'));
      const src = viaLink.rules[0]?.source;
      assert.equal(src?.kind === 'tuf' ? src.root : undefined, join(real, 'root.json'));

      // overlapping rules of different trust sources load with a warning naming both
      const overlap = TrustPolicy.fromJSON(
        {
          rules: [
            tufRule('ghcr.io/acme/**'),
            notaryRule('ghcr.io/*/app'),
            tufRule('ghcr.io/acme/web', 'https://tuf.example/metadata/'),
            tufRule('docker.io/library/*', 'https://other.example/'),
          ],
        },
        '/p',
        'p.json',
      );
      assert.equal(overlap.warnings.length, 1, overlap.warnings.join('\n'));
      assert.match(
        overlap.warnings[0] as string,
        /p\.json: rules\[0\].*ghcr\.io\/acme\/\*\*.*rules\[1\].*ghcr\.io\/\*\/app/,
      );
      // and the CLI prints it on stderr
      const dir = t.tmp();
      const policyFile = join(dir, 'policy.json');
      writeFileSync(
        policyFile,
        JSON.stringify({
          rules: [tufRule('**', 'file:///nonexistent/'), notaryRule('ghcr.io/**')],
        }),
      );
      const r = await tufa([
        'verify',
        '--policy',
        policyFile,
        '--cache-dir',
        join(dir, 'c'),
        'ghcr.io/acme/app:1',
      ]);
      assert.match(r.stderr, /warning: .*rules\[0\].*rules\[1\].*overlap/, show(r));

      // the signer command gets only the environment it needs: never TUFA_KEY_PASSPHRASE or
      // other secrets; variables named with --signer-env are passed
      const ws = t.tmp();
      const { privateKey } = generateKeyPairSync('ed25519');
      const pub = publicKeyOf(privateKey);
      const pubFile = join(ws, 'targets.pub.json');
      writeFileSync(
        pubFile,
        JSON.stringify({ keytype: pub.keytype, scheme: pub.scheme, keyval: pub.keyval }),
      );
      const repoDir = join(ws, 'repo');
      await Workspace.init(repoDir, {
        keys: { root: [pub], targets: [pub], snapshot: [pub], timestamp: [pub] },
        now: Date.now(),
      });
      const dump = join(ws, 'env.txt');
      const env = {
        ...process.env,
        TUFA_KEY_PASSPHRASE: 'passphrase-must-not-leak',
        GITHUB_TOKEN: 'token-must-not-leak',
        TUF_TARGETS_KMS_KEY: 'alias/tuf-targets',
        AWS_REGION: 'eu-west-1',
      };
      const sign = (...extra: string[]) =>
        tufa(
          [
            'repo',
            '--repo',
            repoDir,
            'sign',
            '--role',
            'targets',
            '--signer-command',
            `env > '${dump}'; exit 1`,
            '--public-key',
            pubFile,
            ...extra,
          ],
          { env },
        );
      const first = await sign();
      assert.notEqual(first.status, 0, show(first));
      let seen = readFileSync(dump, 'utf8');
      assert.doesNotMatch(seen, /passphrase-must-not-leak|TUFA_KEY_PASSPHRASE/);
      assert.doesNotMatch(seen, /token-must-not-leak|TUF_TARGETS_KMS_KEY|AWS_REGION/);
      assert.match(seen, /^PATH=/m);
      const second = await sign('--signer-env', 'TUF_TARGETS_KMS_KEY', '--signer-env', 'AWS_*');
      assert.notEqual(second.status, 0, show(second));
      seen = readFileSync(dump, 'utf8');
      assert.match(seen, /^TUF_TARGETS_KMS_KEY=alias\/tuf-targets$/m);
      assert.match(seen, /^AWS_REGION=eu-west-1$/m);
      assert.doesNotMatch(seen, /passphrase-must-not-leak|token-must-not-leak/);
      // naming the passphrase is refused, not obeyed
      const third = await sign('--signer-env', 'TUFA_KEY_PASSPHRASE');
      assert.equal(third.status, 2, show(third));
      assert.match(third.stderr, /TUFA_KEY_PASSPHRASE/);
    },
  },
];

describe('security round 2b: OCI layouts and the trust policy', () => {
  defineCases(CASES);
});
