/**
 * Security round 2b (issue 13), the local edges: OCI layouts and archives read from disk
 * (R2B-07), and the trust policy and the signer command's environment (R2B-09).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  createWriteStream,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import {
  type Descriptor,
  DockerConfigCredentials,
  extractArchive,
  type LayoutImage,
  LayoutWriter,
  readLayout,
} from '../../src/oci/index.js';
import { Reference } from '../../src/oci/reference.js';
import { publicKeyOf } from '../../src/repository/signer.js';
import { Workspace } from '../../src/repository/workspace.js';
import { TrustPolicy } from '../../src/verify/policy.js';
import { TUFA_BIN } from '../support/paths.js';
import { defineCases, type SecurityCase, show, tufa } from './harness.js';

const execFileAsync = promisify(execFile);

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

/** A ustar header (checksum filled in). */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const octal = (n: number, len: number) => `${n.toString(8).padStart(len - 1, '0')}\0`;
  h.write(name, 0);
  h.write(octal(0o644, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(0, 12), 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/**
 * writeSparseTar writes a tar of `entries`; an entry with `hole` has that many bytes of data
 * that are a hole in the file (they cost no disk, and read as zeros).
 */
function writeSparseTar(
  file: string,
  entries: Array<{ name: string; body?: Uint8Array; hole?: number }>,
): void {
  const fd = openSync(file, 'w');
  let off = 0;
  for (const e of entries) {
    const size = e.hole ?? e.body?.length ?? 0;
    writeSync(fd, tarHeader(e.name, size), 0, 512, off);
    if (e.body !== undefined) writeSync(fd, e.body, 0, e.body.length, off + 512);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  writeSync(fd, Buffer.alloc(1024), 0, 1024, off);
  closeSync(fd);
}

/** The entries of a small valid OCI archive (the layout of {@link writeLayout}). */
function archiveEntries(t: { tmp(): string }): Array<{ name: string; body: Uint8Array }> {
  const src = t.tmp();
  writeLayout(src);
  const list = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? list(join(dir, e.name)) : [join(dir, e.name)],
    );
  return list(src).map((f) => ({ name: relative(src, f), body: readFileSync(f) }));
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
      'A layout whose signed manifest blob (or a layer, index.json, the blobs folder) is a symlink to /dev/zero or another folder, a FIFO, or a 1.5 GiB sparse file for an 11-byte blob; an oci-archive with symlink and hard link entries, a 1.5 GiB sparse junk entry or unreferenced blob, a 1 GiB tail after the end marker, 30000 empty entries; a file created at the pull output path during the pull',
    source: 'issue 13 item 7 (7.8 GB RSS from a symlink to /dev/zero); attack-local round',
    expect: 'LAYOUT_INVALID | SIZE_MISMATCH | TOO_LARGE | BAD_REFERENCE',
    timeout: 60_000,
    async run(t) {
      const quick = async (what: string, attempt: () => Promise<unknown>, code: string) => {
        // CPU time, not wall time: the bound must hold on a loaded CI machine too
        const started = process.cpuUsage();
        const grown = await rssGrowthMiB(async () => {
          await t.refuses(attempt, code);
        });
        const used = process.cpuUsage(started);
        const ms = (used.user + used.system) / 1000;
        assert.ok(ms < 2000, `${what}: refused after ${Math.round(ms)} ms of CPU`);
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

      // oci-archive read by offset: entries nobody reads are never read or written; a 1 GiB
      // hole after the end-of-archive marker is never read; blobs the index does not reference
      // are not written; too many entries are refused before anything is extracted
      const cheap = async (what: string, file: string, into: string) => {
        const started = performance.now();
        const dir = await extractArchive(file, into);
        const ms = performance.now() - started;
        assert.ok(ms < 2000, `${what}: extraction took ${Math.round(ms)} ms`);
        const du = Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
        assert.ok(du < 1024 * 1024, `${what}: extraction wrote ${du} bytes`);
        assert.equal((await readLayout(dir, 'v1')).descriptor.mediaType, MANIFEST_TYPE);
        execFileSync('rm', ['-r', dir]);
      };
      for (const [what, extra] of [
        ['a 1.5 GiB junk entry', { name: 'junk', hole: 1.5 * GiB }],
        [
          'an unreferenced 1.5 GiB blob',
          { name: `blobs/sha256/${'0'.repeat(64)}`, hole: 1.5 * GiB },
        ],
      ] as const) {
        const d = t.tmp();
        const file = join(d, 'bomb.tar');
        writeSparseTar(file, [...archiveEntries(t), extra]);
        await cheap(what, file, d);
      }
      {
        const d = t.tmp();
        const file = join(d, 'tail.tar');
        writeSparseTar(file, archiveEntries(t));
        truncateSync(file, GiB);
        await cheap('a 1 GiB tail after the end marker', file, d);
      }
      {
        const d = t.tmp();
        const file = join(d, 'many.tar');
        const many = Array.from({ length: 30_000 }, (_, i) => ({ name: `z/${i % 100}/${i}` }));
        writeSparseTar(file, [...archiveEntries(t), ...many]);
        await quick('30000 entries', () => extractArchive(file, d), 'TOO_LARGE');
        assert.deepEqual(readdirSync(d), ['many.tar']);
      }
      // a referenced blob whose entry has another size: refused before a byte of it is read
      {
        const d = t.tmp();
        const entries = archiveEntries(t);
        const layer = entries.find((e) => e.body.toString() === 'hello layer');
        assert.ok(layer);
        const file = join(d, 'big-layer.tar');
        writeSparseTar(file, [
          ...entries.filter((e) => e !== layer),
          { name: layer.name, hole: 1.5 * GiB },
        ]);
        await quick('a referenced blob of 1.5 GiB', () => extractArchive(file, d), 'SIZE_MISMATCH');
      }

      // pull output: a path that appears at the destination during the pull is never replaced
      {
        const d = t.tmp();
        const out = join(d, 'out.tar');
        const w = await LayoutWriter.create('archive', out);
        writeFileSync(out, 'created during the pull');
        await t.refuses(() => w.commit(), 'BAD_REFERENCE', /already exists/);
        assert.equal(readFileSync(out, 'utf8'), 'created during the pull');
        assert.deepEqual(readdirSync(d), ['out.tar'], 'the temp files are removed');
        const outDir = join(d, 'out');
        const w2 = await LayoutWriter.create('dir', outDir);
        mkdirSync(outDir);
        writeFileSync(join(outDir, 'theirs'), 'x');
        await t.refuses(() => w2.commit(), 'BAD_REFERENCE', /already exists/);
        assert.deepEqual(readdirSync(outDir), ['theirs']);
        // a dangling symlink there is something: refused, never written through
        const link = join(d, 'link.tar');
        symlinkSync(join(d, 'victim.tar'), link);
        await t.refuses(() => LayoutWriter.create('archive', link), 'BAD_REFERENCE');
        const w3 = await LayoutWriter.create('archive', join(d, 'late.tar'));
        symlinkSync(join(d, 'victim.tar'), join(d, 'late.tar'));
        await t.refuses(() => w3.commit(), 'BAD_REFERENCE');
        assert.equal(readlinkSync(join(d, 'late.tar')), join(d, 'victim.tar'));
        assert.ok(!existsSync(join(d, 'victim.tar')));
        // and the normal case still works
        const w4 = await LayoutWriter.create('archive', join(d, 'ok.tar'));
        await w4.commit();
        assert.ok(lstatSync(join(d, 'ok.tar')).isFile());
      }
    },
  },
  {
    id: 'R2B-09',
    title: 'trust policy footguns: case, partial **, default ports, symlinked file, signer env',
    attack:
      'A pattern with an upper-case letter or a `**` inside a segment, a reference spelled registry.example:443/… (or :0443, or an IP registry as 10.0.5, 167772165, [0::1]) to escape the rule for registry.example/…, patterns that never match (docker.io/nginx, acme/app, a tag), ghcr.io/** listed before ghcr.io/*, a policy file reached through a symlink with a relative root or read from a pipe, overlapping rules of different trust sources, and a signer command or Docker credential helper reading TUFA_KEY_PASSPHRASE from its environment',
    source: 'issue 13 item 9; attack-local round',
    expect: 'MISUSE | BAD_REFERENCE',
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
        { rules: [tufRule('ghcr.io/**'), tufRule('**/app'), tufRule('a.x/**/b')] },
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

      // other spellings of one registry (new URL() and getaddrinfo read them as the same host)
      // are refused, in references and in patterns: a leading-zero port, IPv4 in other forms
      for (const host of [
        'registry.example:0443',
        'registry.example:00443',
        'registry.example:080',
        '10.0.5:5000',
        '167772165:5000',
        '0xa.0.0.5:5000',
        '010.0.0.5:5000',
        '[::ffff:10.0.0.5]:5000',
      ]) {
        await t.refuses(
          () => Reference.parse(`${host}/app:1`),
          'BAD_REFERENCE',
          /invalid image reference/,
        );
        await t.refuses(
          () =>
            TrustPolicy.fromJSON(
              { rules: [notaryRule('**'), tufRule(`${host}/**`)] },
              '/p',
              'p.json',
            ),
          'MISUSE',
          /p\.json: rules\[1\]\.match: /,
        );
        assert.equal(p.match(`${host}/app`), undefined, `${host}: no rule, not the ** one`);
      }
      // IPv6 is given its canonical form
      const ip = TrustPolicy.fromJSON(
        { rules: [notaryRule('**'), tufRule('10.0.0.5:5000/**'), tufRule('[0::1]:5000/**')] },
        '/p',
      );
      assert.equal(
        ip.match(Reference.parse('10.0.0.5:5000/app:1').name)?.match,
        '10.0.0.5:5000/**',
      );
      for (const input of [
        '[0:0:0:0:0:0:0:1]:5000/app:1',
        '[0::1]:5000/app:1',
        '[::1]:5000/app:1',
      ]) {
        assert.equal(Reference.parse(input).registry, '[::1]:5000', input);
        assert.equal(ip.match(Reference.parse(input).name)?.match, '[0::1]:5000/**', input);
      }

      // a pattern that could never match a name is refused (a broader rule would govern)
      for (const pattern of [
        'docker.io/nginx',
        'index.docker.io/nginx',
        'nginx',
        'acme/app',
        'library/nginx',
        'ghcr.io',
        'docker.io/library/nginx:*',
        'registry.example/app:1.0',
        'registry.example//app',
      ]) {
        await t.refuses(
          () =>
            TrustPolicy.fromJSON({ rules: [notaryRule('**'), tufRule(pattern)] }, '/p', 'p.json'),
          'MISUSE',
          /p\.json: rules\[1\]\.match: .*never matches/,
        );
      }

      // specificity: * is narrower than **, whatever the order
      for (const [broad, narrow] of [
        ['ghcr.io/**', 'ghcr.io/*'],
        ['**/app', '*/app'],
      ] as const) {
        const order = TrustPolicy.fromJSON(
          {
            rules: [
              tufRule(broad, 'https://broad.example/'),
              tufRule(narrow, 'https://narrow.example/'),
            ],
          },
          '/p',
        );
        assert.equal(order.match(Reference.parse('ghcr.io/app:1').name)?.match, narrow);
      }

      // the CLI: registry.example:0443/app is refused, never sent to the ** rule's source
      {
        const dir = t.tmp();
        const policyFile = join(dir, 'policy.json');
        writeFileSync(
          policyFile,
          JSON.stringify({
            rules: [
              tufRule('registry.example/**', 'file:///nonexistent-pinned-tuf/'),
              { match: '**', notary: { server: 'http://127.0.0.1:9', tofu: true } },
            ],
          }),
        );
        const zero = await tufa([
          'verify',
          '--policy',
          policyFile,
          '--cache-dir',
          join(dir, 'c'),
          'registry.example:0443/app:1',
        ]);
        assert.notEqual(zero.status, 0, show(zero));
        assert.doesNotMatch(zero.stdout, /127\.0\.0\.1:9/, show(zero));
        assert.match(zero.stdout + zero.stderr, /leading zero/, show(zero));
        // a policy read from a pipe (--policy <(…), /dev/stdin) loads; relative paths in it
        // resolve against the current folder
        const piped = spawnSync(
          'bash',
          [
            '-c',
            '"$0" "$1" verify --policy <(cat "$2") --cache-dir "$3" registry.example/app:1',
            process.execPath,
            TUFA_BIN,
            policyFile,
            join(dir, 'c'),
          ],
          { encoding: 'utf8', timeout: 30_000 },
        );
        assert.doesNotMatch(piped.stderr, /cannot read it/, piped.stderr);
        assert.match(
          piped.stdout + piped.stderr,
          /nonexistent-pinned-tuf|root\.json/,
          piped.stderr,
        );
        const fifo = join(dir, 'policy.fifo');
        execFileSync('mkfifo', [fifo]);
        const feeding = execFileAsync('sh', ['-c', 'cat "$0" > "$1"', policyFile, fifo]);
        const fromPipe = await TrustPolicy.load(fifo);
        await feeding;
        const src = fromPipe.rules[0]?.source;
        assert.equal(src?.kind === 'tuf' ? src.root : undefined, join(process.cwd(), 'root.json'));
      }

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

      // a Docker credential helper gets the minimal environment too
      {
        const dir = t.tmp();
        const helperDump = join(dir, 'helper-env.txt');
        const helper = join(dir, 'docker-credential-dump');
        writeFileSync(
          helper,
          `#!/bin/sh\nenv > '${helperDump}'\necho '{"Username":"u","Secret":"s"}'\n`,
        );
        chmodSync(helper, 0o755);
        writeFileSync(join(dir, 'config.json'), JSON.stringify({ credsStore: 'dump' }));
        const saved = { ...process.env };
        process.env.PATH = `${dir}:${process.env.PATH}`;
        process.env.TUFA_KEY_PASSPHRASE = 'passphrase-must-not-leak';
        process.env.GITHUB_TOKEN = 'token-must-not-leak';
        process.env.DOCKER_CONFIG = dir;
        try {
          const creds = await new DockerConfigCredentials(
            join(dir, 'config.json'),
            10_000,
            process.env,
          ).get('registry.example');
          assert.deepEqual(creds, { username: 'u', password: 's' });
        } finally {
          for (const k of ['PATH', 'TUFA_KEY_PASSPHRASE', 'GITHUB_TOKEN', 'DOCKER_CONFIG']) {
            if (saved[k] === undefined) delete process.env[k];
            else process.env[k] = saved[k];
          }
        }
        const helperEnv = readFileSync(helperDump, 'utf8');
        assert.doesNotMatch(
          helperEnv,
          /passphrase-must-not-leak|TUFA_KEY_PASSPHRASE|token-must-not-leak/,
        );
        assert.match(helperEnv, /^DOCKER_CONFIG=/m);
        assert.match(helperEnv, /^PATH=/m);
      }
    },
  },
];

describe('security round 2b: OCI layouts and the trust policy', () => {
  defineCases(CASES);
});
