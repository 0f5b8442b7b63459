/**
 * OCI image layouts (`oci:DIR[:ref]`) and archives (`oci-archive:FILE[:ref]`, a tar of a
 * layout, read and written with tar-stream).
 *
 * Writing is atomic: everything goes into a temp folder beside the destination, every blob is
 * renamed into `blobs/sha256/` only after its digest and size matched, and the folder (or the
 * tar) takes its final name only when the whole image is there. A failed pull leaves nothing;
 * a path that appeared at the destination meanwhile is never replaced (see {@link LayoutWriter.commit}).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, constants as fsConstants } from 'node:fs';
import {
  chmod,
  copyFile,
  type FileHandle,
  link,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, posix as posixPath, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { OciError } from './errors.js';
import {
  type Descriptor,
  digestOf,
  isDigest,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPES,
} from './manifest.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
/** The image's full name, as containerd, nerdctl and BuildKit annotate it in index.json. */
export const IMAGE_NAME = 'io.containerd.image.name';
const LAYOUT = `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`;

function blobPath(root: string, digest: string): string {
  if (!isDigest(digest)) throw new OciError('MANIFEST_INVALID', `not a sha256 digest: ${digest}`);
  return join(root, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** Builds a layout in a temp folder; `commit` gives it its final place. */
export class LayoutWriter {
  private readonly manifests: Descriptor[] = [];

  private constructor(
    readonly tempDir: string,
    private readonly destination: { kind: 'dir' | 'archive'; path: string },
  ) {}

  /** create starts a layout for `oci:` (kind dir) or `oci-archive:` (kind archive) output. */
  static async create(kind: 'dir' | 'archive', path: string): Promise<LayoutWriter> {
    // lstat: a symlink (even a dangling one) is something that exists
    if (
      await lstat(path).then(
        () => true,
        () => false,
      )
    ) {
      throw refuseExisting(path);
    }
    await mkdir(dirname(path), { recursive: true });
    const tempDir = await mkdtemp(join(dirname(path), `.${basename(path)}.tufa-`));
    await mkdir(join(tempDir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(tempDir, 'oci-layout'), LAYOUT);
    return new LayoutWriter(tempDir, { kind, path });
  }

  /** hasBlob tells whether a verified blob is already in the layout. */
  async hasBlob(digest: string): Promise<boolean> {
    return stat(blobPath(this.tempDir, digest)).then(
      () => true,
      () => false,
    );
  }

  /** putBlob stores bytes that were verified by the caller (or are checked here against `desc`). */
  async putBlob(desc: Descriptor, bytes: Uint8Array): Promise<void> {
    if (bytes.length !== desc.size || digestOf(bytes) !== desc.digest) {
      throw new OciError(
        'DIGEST_MISMATCH',
        `blob ${desc.digest}: bytes do not match the descriptor`,
      );
    }
    const tmp = `${blobPath(this.tempDir, desc.digest)}.partial`;
    await writeFile(tmp, bytes);
    await rename(tmp, blobPath(this.tempDir, desc.digest));
  }

  /**
   * streamBlob lets `fill` write a blob chunk by chunk; `fill` must throw unless the content
   * verified (as RegistryClient.copyBlob does). Only then is the blob given its name.
   */
  async streamBlob(
    desc: Descriptor,
    fill: (write: (chunk: Uint8Array) => Promise<void>) => Promise<void>,
  ): Promise<void> {
    const final = blobPath(this.tempDir, desc.digest);
    const tmp = `${final}.partial`;
    const fh = await open(tmp, 'w');
    // Network chunks are small (16–64 KiB): gather them into 4 MiB writes.
    let pending: Uint8Array[] = [];
    let size = 0;
    const flush = async () => {
      if (size === 0) return;
      const buf = pending.length === 1 ? (pending[0] as Uint8Array) : Buffer.concat(pending, size);
      pending = [];
      size = 0;
      await fh.write(buf);
    };
    try {
      await fill(async (chunk) => {
        pending.push(chunk);
        size += chunk.length;
        if (size >= 4 * 1024 * 1024) await flush();
      });
      await flush();
    } catch (e) {
      await fh.close();
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, final);
  }

  /**
   * addManifest lists a manifest in index.json (its blob must be stored), with a ref name and
   * the image's full name ({@link IMAGE_NAME}) when given.
   */
  addManifest(desc: Descriptor, refName?: string, imageName?: string): void {
    const annotations: Record<string, string> = {
      ...(imageName === undefined ? {} : { [IMAGE_NAME]: imageName }),
      ...(refName === undefined ? {} : { [REF_NAME]: refName }),
    };
    this.manifests.push({
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      ...(Object.keys(annotations).length === 0 ? {} : { annotations }),
    });
  }

  /**
   * commit writes index.json and moves the layout (or its tar) to the destination, which must
   * still not exist: something that appeared there during the pull is never replaced
   * (`BAD_REFERENCE`). An archive is hard-linked to its name (`link` fails on any existing
   * path, a dangling symlink included), then the temp name is removed. A folder's name is
   * claimed with an exclusive `mkdir` (no `recursive`), and the finished layout is renamed onto
   * that empty folder: the only thing `rename` can replace there is the empty folder this
   * commit just made, and readers see the whole layout at once.
   */
  async commit(): Promise<void> {
    const index = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: this.manifests };
    await writeFile(join(this.tempDir, 'index.json'), `${JSON.stringify(index)}\n`);
    const dest = this.destination.path;
    const claim = async (create: () => Promise<void>) => {
      try {
        await create();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw refuseExisting(dest);
        throw e;
      }
    };
    try {
      if (this.destination.kind === 'dir') {
        // the name claimed with the umask's mode (0755 under 022, as skopeo writes); the
        // layout, private (0700) while unverified bytes were in it, gets that mode as it lands
        await claim(() => mkdir(dest, { mode: 0o777 }));
        const landed = async () => {
          await chmod(this.tempDir, (await stat(dest)).mode & 0o777);
          await rename(this.tempDir, dest);
        };
        await landed().catch(async (e: unknown) => {
          await rmdir(dest).catch(() => undefined);
          throw e;
        });
        return;
      }
      const tmpTar = `${this.tempDir}.tar`;
      await writeTar(this.tempDir, tmpTar);
      await claim(() =>
        link(tmpTar, dest).catch((e: NodeJS.ErrnoException) => {
          // a file system without hard links: an exclusive copy (not atomic for readers)
          if (e.code !== 'EPERM' && e.code !== 'ENOTSUP' && e.code !== 'EOPNOTSUPP') throw e;
          return copyFile(tmpTar, dest, fsConstants.COPYFILE_EXCL);
        }),
      );
      await rm(tmpTar, { force: true });
      await rm(this.tempDir, { recursive: true, force: true });
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** abort removes everything written so far. */
  async abort(): Promise<void> {
    await rm(this.tempDir, { recursive: true, force: true });
    await rm(`${this.tempDir}.tar`, { force: true });
  }
}

function refuseExisting(path: string): OciError {
  return new OciError('BAD_REFERENCE', `${path} already exists: refusing to overwrite it`);
}

async function listFiles(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(root, p)));
    else if (e.isFile()) out.push(relative(root, p));
  }
  return out.sort();
}

/** writeTar packs a folder into a tar file (regular files only, sorted, fixed mtime). */
async function writeTar(dir: string, file: string): Promise<void> {
  // loaded when a tar is written, not by every importer of the registry client
  const { default: tar } = await import('tar-stream');
  const pack = tar.pack();
  const out = createWriteStream(file, { flags: 'wx' });
  const done = pipeline(pack, out);
  for (const rel of await listFiles(dir)) {
    const size = (await stat(join(dir, rel))).size;
    const entry = pack.entry({ name: rel, size, mode: 0o644, mtime: new Date(0) });
    await pipeline(createReadStream(join(dir, rel)), entry);
  }
  pack.finalize();
  await done;
}

/** An image read from a layout: the manifest bytes and ways to read blobs. */
export interface LayoutImage {
  readonly manifest: Uint8Array;
  readonly descriptor: Descriptor;
  /**
   * readBlob reads a manifest-sized blob (at most {@link MAX_MANIFEST_BYTES}) whose descriptor
   * gives `size`, and checks its size and digest.
   */
  readBlob(digest: string, size: number): Promise<Uint8Array>;
  /**
   * copyBlob streams a blob of any size to `sink`, counting and hashing; it rejects unless the
   * bytes match `desc` (the sink must then discard what it got).
   */
  copyBlob(desc: Descriptor, sink: (chunk: Uint8Array) => Promise<void> | void): Promise<void>;
}

// O_NOFOLLOW: a symlink in the last component fails to open (ELOOP) instead of being followed.
// O_NONBLOCK: opening a FIFO does not wait for a writer (it is then refused as not regular);
// it changes nothing for regular files.
const OPEN_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
const CHUNK = 1024 * 1024;

/**
 * openRegular opens a file of a layout for reading: never through a symlink, only a regular
 * file, and with its size from the open descriptor, so nothing is read before the caller
 * compared it (a symlink to /dev/zero or a sparse file costs nothing).
 */
async function openRegular(path: string, what: string): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, OPEN_FLAGS);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK') {
      throw new OciError('LAYOUT_INVALID', `${what} is a symbolic link: refused`, { cause });
    }
    throw new OciError('NOT_FOUND', `${what} is missing or unreadable`, { cause });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new OciError('LAYOUT_INVALID', `${what} is not a regular file: refused`);
    }
    return { fh, size: st.size };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** readExactly reads `size` bytes from the start of `fh`; a shorter file is SIZE_MISMATCH. */
async function readExactly(fh: FileHandle, size: number, what: string): Promise<Uint8Array> {
  const buf = Buffer.alloc(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await fh.read(buf, got, size - got, got);
    if (bytesRead === 0) {
      throw new OciError('SIZE_MISMATCH', `${what}: ${got} bytes, expected ${size}`);
    }
    got += bytesRead;
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, size);
}

/**
 * assertRealDir refuses a layout folder (`blobs`, `blobs/sha256`) that is a symlink or not a
 * folder: it would lead the reads out of the layout.
 */
async function assertRealDir(path: string, what: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (cause) {
    throw new OciError('NOT_FOUND', `${what} is missing`, { cause });
  }
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new OciError(
      'LAYOUT_INVALID',
      `${what} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}: refused`,
    );
  }
}

/**
 * readLayout finds an image in a layout folder by ref name (the only one if no name is given)
 * and reads its manifest, checking it against the index's digest and size. Files are opened
 * without following symlinks, must be regular files, and their size is compared with what
 * is expected before a byte is read (index.json: at most {@link MAX_MANIFEST_BYTES}).
 */
export async function readLayout(dir: string, refName?: string): Promise<LayoutImage> {
  const indexFile = join(dir, 'index.json');
  const { fh, size } = await openRegular(indexFile, `${dir}: index.json`).catch((e: unknown) => {
    if (e instanceof OciError && e.code === 'NOT_FOUND') {
      throw new OciError('NOT_FOUND', `${dir}: not an OCI image layout (index.json unreadable)`, {
        cause: e,
      });
    }
    throw e;
  });
  let index: { manifests?: Descriptor[] };
  try {
    if (size > MAX_MANIFEST_BYTES) {
      throw new OciError(
        'TOO_LARGE',
        `${dir}: index.json has ${size} bytes, more than ${MAX_MANIFEST_BYTES}`,
      );
    }
    const text = Buffer.from(await readExactly(fh, size, `${dir}: index.json`)).toString('utf8');
    try {
      index = JSON.parse(text);
    } catch (cause) {
      throw new OciError('NOT_FOUND', `${dir}: not an OCI image layout (index.json unreadable)`, {
        cause,
      });
    }
  } finally {
    await fh.close();
  }
  const list = index?.manifests ?? [];
  const matches =
    refName === undefined ? list : list.filter((m) => m.annotations?.[REF_NAME] === refName);
  if (matches.length !== 1) {
    throw new OciError(
      'NOT_FOUND',
      `${dir}: ${matches.length === 0 ? 'no image' : 'several images'}${refName === undefined ? '' : ` named ${refName}`}`,
    );
  }
  const descriptor = matches[0] as Descriptor;
  await assertRealDir(join(dir, 'blobs'), `${dir}: blobs`);
  await assertRealDir(join(dir, 'blobs', 'sha256'), `${dir}: blobs/sha256`);

  /** openBlob opens a blob and compares its size with the descriptor's before any read. */
  const openBlob = async (digest: string, expected: number) => {
    const what = `${dir}: blob ${digest}`;
    const path = blobPath(dir, digest);
    if (!Number.isSafeInteger(expected) || expected < 0) {
      throw new OciError('MANIFEST_INVALID', `${what}: descriptor size ${expected} is invalid`);
    }
    const opened = await openRegular(path, what);
    if (opened.size !== expected) {
      await opened.fh.close();
      throw new OciError(
        'SIZE_MISMATCH',
        `${what}: the file has ${opened.size} bytes, its descriptor gives ${expected}`,
      );
    }
    return { ...opened, what };
  };
  const readBlob = async (digest: string, size: number): Promise<Uint8Array> => {
    if (size > MAX_MANIFEST_BYTES) {
      throw new OciError(
        'TOO_LARGE',
        `${dir}: blob ${digest}: ${size} bytes, more than ${MAX_MANIFEST_BYTES}`,
      );
    }
    const { fh, what } = await openBlob(digest, size);
    try {
      const bytes = await readExactly(fh, size, what);
      if (digestOf(bytes) !== digest) {
        throw new OciError('DIGEST_MISMATCH', `${what}: the bytes do not match the digest`);
      }
      return bytes;
    } finally {
      await fh.close();
    }
  };
  const copyBlob = async (
    desc: Descriptor,
    sink: (chunk: Uint8Array) => Promise<void> | void,
  ): Promise<void> => {
    const { fh, what } = await openBlob(desc.digest, desc.size);
    try {
      const hash = createHash('sha256');
      let done = 0;
      while (done < desc.size) {
        const buf = Buffer.alloc(Math.min(CHUNK, desc.size - done));
        const { bytesRead } = await fh.read(buf, 0, buf.length, done);
        if (bytesRead === 0) {
          throw new OciError('SIZE_MISMATCH', `${what}: ${done} bytes, expected ${desc.size}`);
        }
        const chunk = buf.subarray(0, bytesRead);
        done += bytesRead;
        hash.update(chunk);
        await sink(chunk);
      }
      if (`sha256:${hash.digest('hex')}` !== desc.digest) {
        throw new OciError('DIGEST_MISMATCH', `${what}: the bytes do not match the digest`);
      }
    } finally {
      await fh.close();
    }
  };
  const manifest = await readBlob(descriptor.digest, descriptor.size).catch((e: unknown) => {
    if (e instanceof OciError && e.code === 'DIGEST_MISMATCH') {
      throw new OciError(
        'DIGEST_MISMATCH',
        `${dir}: manifest ${descriptor.digest} does not match its bytes`,
      );
    }
    throw e;
  });
  return { manifest, descriptor, readBlob, copyBlob };
}

/** The archive entries read into memory-sized files: more than this is refused. */
const SMALL_ENTRIES = new Set(['index.json', 'oci-layout']);
/** At most this many entries in an archive (an image has a few per layer). */
export const MAX_ARCHIVE_ENTRIES = 10_000;
/** The default cap on the bytes extractArchive writes (the blobs the index references). */
export const MAX_ARCHIVE_BYTES = 64 * 1024 ** 3;
/** pax and GNU long-name headers above this are refused (as tar-stream does). */
const MAX_LONG_HEADER = 1024 * 1024;
const BLOCK = 512;

/** An entry of a tar archive: where its data is in the file. */
interface TarEntry {
  readonly name: string;
  /** '0' regular file, '1' hard link, '2' symlink, '5' folder, … (the typeflag). */
  readonly type: string;
  readonly offset: number;
  readonly size: number;
}

/** Reads a number field of a tar header: octal text, or base-256 (high bit set). */
function tarNumber(b: Buffer, at: number, len: number): number {
  if ((b[at] as number) & 0x80) {
    let n = (b[at] as number) & 0x7f;
    for (let i = at + 1; i < at + len; i++) n = n * 256 + (b[i] as number);
    return n;
  }
  const text = b
    .toString('latin1', at, at + len)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (!/^[0-7]*$/.test(text)) return Number.NaN;
  return text === '' ? 0 : Number.parseInt(text, 8);
}

/** tarText reads a NUL-terminated text field. */
function tarText(b: Buffer, at: number, len: number): string {
  const end = b.indexOf(0, at);
  return b.toString('utf8', at, end < 0 || end > at + len ? at + len : end);
}

/** paxRecords reads `len key=value\n` records. */
function paxRecords(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    const space = body.indexOf(0x20, i);
    const len = Number(body.toString('latin1', i, space));
    if (space < 0 || !Number.isSafeInteger(len) || len <= 0 || i + len > body.length) {
      throw new Error('invalid pax header');
    }
    const rec = body.toString('utf8', space + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

/** Entry types that carry `size` bytes of data: regular files (and contiguous files). */
const DATA_TYPES = new Set(['0', '7']);
/** Entry types without data that an archive may hold: folders, links, devices, FIFOs. */
const HEADER_ONLY_TYPES = new Set(['1', '2', '3', '4', '5', '6']);
/** pax keys whose values decide what an entry is; an empty value is refused for these. */
const PAX_NAMING = ['path', 'linkpath', 'size'];

/**
 * tarEntries lists the entries of a tar file by reading its headers only (data is never read
 * here: skipping an entry costs nothing), and stops at the end-of-archive marker (a zero block)
 * or at the end of the file.
 *
 * It reads a strict subset on purpose: whatever two tar readers (this one, Go's archive/tar in
 * skopeo and containerd, GNU tar) could read differently is refused, so the image verified here
 * is the image any other tool loads from the same file. Refused: global pax headers (`g`);
 * pax records with an empty path, linkpath or size, or a size that is not plain decimal; an
 * entry named both by a pax path and a GNU long name; GNU sparse entries and sparse pax keys;
 * headers that are neither POSIX ustar (`ustar\0` `00`) nor GNU (`ustar ` ` \0`), or that carry
 * star's trailer; links, devices and FIFOs with a non-zero size; any name given twice.
 */
async function tarEntries(fh: FileHandle, fileSize: number, file: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const header = Buffer.alloc(BLOCK);
  const seen = new Set<string>();
  let offset = 0;
  let pax: Map<string, string> | undefined;
  let longName: string | undefined;
  let headers = 0;
  const refuse = (why: string): never => {
    throw new OciError('LAYOUT_INVALID', `${file}: ${why} (tar header at byte ${offset})`);
  };
  while (offset + BLOCK <= fileSize) {
    if (++headers > 3 * MAX_ARCHIVE_ENTRIES) {
      throw new OciError('TOO_LARGE', `${file}: more than ${3 * MAX_ARCHIVE_ENTRIES} tar headers`);
    }
    await readExactlyAt(fh, header, offset);
    if (header.every((b) => b === 0)) break; // end of archive: what follows is never read
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number);
    if (sum !== tarNumber(header, 148, 8)) throw new Error(`invalid tar header at ${offset}`);
    const magic = header.toString('latin1', 257, 265);
    const posix = magic === 'ustar\x0000';
    if (!posix && magic !== 'ustar  \0') refuse('neither a POSIX ustar nor a GNU tar header');
    if (header.toString('latin1', 508, 512) === 'tar\0') refuse('a star header');
    const type = header[156] === 0 ? '0' : String.fromCharCode(header[156] as number);
    let size = tarNumber(header, 124, 12);
    const data = offset + BLOCK;
    if (type === 'x' || type === 'L' || type === 'K') {
      if (!(size >= 0) || size > MAX_LONG_HEADER || data + size > fileSize) {
        throw new Error(`invalid tar long header at ${offset}`);
      }
      if ((type === 'x' && pax !== undefined) || (type === 'L' && longName !== undefined)) {
        refuse('two extended headers for one entry');
      }
      const body = Buffer.alloc(size);
      await readExactlyAt(fh, body, data);
      if (type === 'x') pax = paxRecords(body);
      else if (type === 'L') longName = tarText(body, 0, body.length);
      offset = data + Math.ceil(size / BLOCK) * BLOCK;
      continue;
    }
    if (type === 'g') refuse('a global pax header (readers disagree on what it applies to)');
    if (!DATA_TYPES.has(type) && !HEADER_ONLY_TYPES.has(type)) {
      refuse(`an entry of type ${JSON.stringify(type)} (GNU sparse or unknown)`);
    }
    for (const key of pax?.keys() ?? []) {
      if (key.startsWith('GNU.sparse')) refuse('a sparse pax entry');
    }
    for (const key of PAX_NAMING) {
      if (pax?.get(key) === '') refuse(`an empty pax ${key}`);
    }
    if (pax?.has('path') && longName !== undefined) refuse('both a pax path and a GNU long name');
    let name = tarText(header, 0, 100);
    if (posix) {
      const prefix = tarText(header, 345, 155);
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    name = pax?.get('path') ?? longName ?? name;
    const paxSize = pax?.get('size');
    if (paxSize !== undefined) {
      if (!/^[0-9]{1,15}$/.test(paxSize)) refuse('a pax size that is not a plain number');
      size = Number(paxSize);
    }
    pax = undefined;
    longName = undefined;
    if (!Number.isSafeInteger(size) || size < 0 || data + size > fileSize) {
      throw new Error(`invalid tar entry size at ${offset}`);
    }
    // readers differ on whether a link or a device has data: one without is the same to all
    if (HEADER_ONLY_TYPES.has(type) && size !== 0) refuse(`a type ${type} entry with data`);
    const key = posixNormalize(name);
    if (seen.has(key)) refuse(`${JSON.stringify(name)} given twice`);
    seen.add(key);
    if (entries.length >= MAX_ARCHIVE_ENTRIES) {
      throw new OciError('TOO_LARGE', `${file}: more than ${MAX_ARCHIVE_ENTRIES} entries`);
    }
    entries.push({ name, type, offset: data, size });
    offset = data + Math.ceil(size / BLOCK) * BLOCK;
  }
  return entries;
}

/** posixNormalize is an entry name as a file system would resolve it (`./a//b/` → `a/b`). */
function posixNormalize(name: string): string {
  return posixPath.normalize(`/${name}`).replace(/^\/+|\/+$/g, '');
}

/** readExactlyAt fills `buf` from `fh` at `position`; a shorter file is an error. */
async function readExactlyAt(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) throw new Error('unexpected end of the archive');
    got += bytesRead;
  }
}

/** The descriptors a manifest or index names (config, layers, manifests, subject, blobs). */
function childDescriptors(json: unknown): Descriptor[] {
  const o = json as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null) return [];
  const out: unknown[] = [o.config, o.subject];
  for (const key of ['layers', 'manifests', 'blobs']) {
    if (Array.isArray(o[key])) out.push(...(o[key] as unknown[]));
  }
  return out.filter(
    (d): d is Descriptor =>
      typeof d === 'object' &&
      d !== null &&
      typeof (d as Descriptor).digest === 'string' &&
      isDigest((d as Descriptor).digest) &&
      Number.isSafeInteger((d as Descriptor).size) &&
      (d as Descriptor).size >= 0,
  );
}

/**
 * extractArchive unpacks an OCI archive into a new temp folder and returns the folder; the
 * caller removes it. The archive is read by offset, never as a stream, so what it does not
 * need costs nothing: it lists the headers (at most {@link MAX_ARCHIVE_ENTRIES} entries,
 * stopping at the end-of-archive marker), then writes only `oci-layout`, `index.json` (each
 * at most {@link MAX_MANIFEST_BYTES}) and the `blobs/sha256/<hex>` the index references,
 * directly or through the manifests and indexes it names. A referenced blob entry must have
 * the size its descriptor gives (SIZE_MISMATCH before a byte is read) and hash to its name
 * (DIGEST_MISMATCH); all blobs together at most `maxBytes`. Other entries are never written.
 * What a layout reader opens (index.json, oci-layout, blobs/…) must be a regular file or folder
 * given once: a symlink, hard link or device entry there is refused (LAYOUT_INVALID), as is a
 * name given twice; links elsewhere (Docker's legacy `<id>/layer.tar` links) are skipped.
 */
export async function extractArchive(
  file: string,
  into: string,
  options: { maxBytes?: number } = {},
): Promise<string> {
  const dir = await mkdtemp(join(into, 'tufa-archive-'));
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, OPEN_FLAGS & ~fsConstants.O_NOFOLLOW);
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new OciError(
        'LAYOUT_INVALID',
        `${file}: not a regular file (an archive is read by offset)`,
      );
    }
    await extractEntries(
      file,
      fh,
      await tarEntries(fh, st.size, file),
      dir,
      options.maxBytes ?? MAX_ARCHIVE_BYTES,
    );
  } catch (cause) {
    await rm(dir, { recursive: true, force: true });
    if (cause instanceof OciError) throw cause;
    throw new OciError('NOT_FOUND', `${file}: not a readable OCI archive`, { cause });
  } finally {
    await fh?.close();
  }
  return dir;
}

/** extractEntries writes what a layout reader needs into `dir` (see {@link extractArchive}). */
async function extractEntries(
  file: string,
  fh: FileHandle,
  entries: readonly TarEntry[],
  dir: string,
  maxBytes: number,
): Promise<void> {
  const byName = new Map<string, TarEntry>();
  for (const entry of entries) {
    // The name as the file system would see it (`./a`, `x/../a` and `a/` are all `a`).
    const name = relative(dir, join(dir, entry.name));
    const refuse = (why: string) =>
      new OciError('LAYOUT_INVALID', `${file}: entry ${JSON.stringify(entry.name)} ${why}`);
    const read = SMALL_ENTRIES.has(name) || name === 'blobs' || name.startsWith('blobs/');
    const outside =
      name === '' || entry.name.startsWith('/') || name === '..' || name.startsWith('../');
    if (outside || !read) continue;
    if (entry.type === '5') {
      if (SMALL_ENTRIES.has(name)) throw refuse('is a folder');
      continue;
    }
    if (entry.type !== '0' && entry.type !== '7') {
      const kind = { '1': 'hard link', '2': 'symlink' }[entry.type] ?? `type ${entry.type}`;
      throw refuse(`is a ${kind} entry: only regular files are accepted`);
    }
    if (byName.has(name)) throw refuse('is given twice');
    byName.set(name, entry);
  }
  /** copy writes an entry's bytes to `dir`, hashing them; returns the hex SHA-256. */
  const copy = async (name: string, entry: TarEntry): Promise<string> => {
    const target = join(dir, name);
    await mkdir(dirname(target), { recursive: true });
    const out = await open(target, 'wx');
    const hash = createHash('sha256');
    try {
      for (let done = 0; done < entry.size; ) {
        const buf = Buffer.alloc(Math.min(CHUNK, entry.size - done));
        await readExactlyAt(fh, buf, entry.offset + done);
        hash.update(buf);
        await out.write(buf);
        done += buf.length;
      }
    } finally {
      await out.close();
    }
    return hash.digest('hex');
  };
  const small = async (name: string): Promise<Buffer | undefined> => {
    const entry = byName.get(name);
    if (entry === undefined) return undefined;
    if (entry.size > MAX_MANIFEST_BYTES) {
      throw new OciError(
        'TOO_LARGE',
        `${file}: ${name} has ${entry.size} bytes, more than ${MAX_MANIFEST_BYTES}`,
      );
    }
    await copy(name, entry);
    return readFile(join(dir, name));
  };
  await small('oci-layout');
  const index = await small('index.json');
  // The blobs the index references, walked breadth-first through manifests and indexes.
  const queue: Descriptor[] = [];
  const parse = (bytes: Buffer) => {
    try {
      queue.push(...childDescriptors(JSON.parse(bytes.toString('utf8'))));
    } catch {
      // not JSON: nothing referenced (readLayout says what is wrong)
    }
  };
  if (index !== undefined) parse(index);
  const done = new Set<string>();
  let written = 0;
  for (let d = queue.shift(); d !== undefined; d = queue.shift()) {
    if (done.has(d.digest)) continue;
    const name = `blobs/sha256/${d.digest.slice('sha256:'.length)}`;
    const entry = byName.get(name);
    if (entry === undefined) continue; // missing: readLayout reports it if it is needed
    done.add(d.digest);
    if (entry.size !== d.size) {
      throw new OciError(
        'SIZE_MISMATCH',
        `${file}: ${name} has ${entry.size} bytes, its descriptor gives ${d.size}`,
      );
    }
    written += entry.size;
    if (written > maxBytes) {
      throw new OciError('TOO_LARGE', `${file}: the image's blobs exceed ${maxBytes} bytes`);
    }
    if ((await copy(name, entry)) !== d.digest.slice('sha256:'.length)) {
      throw new OciError('DIGEST_MISMATCH', `${file}: ${name} does not hash to its name`);
    }
    // manifests and indexes name more blobs (a config or a layer names none)
    if (entry.size <= MAX_MANIFEST_BYTES && /manifest|index/.test(d.mediaType ?? 'index')) {
      parse(await readFile(join(dir, name)));
    }
  }
}
