/**
 * OCI image layouts (`oci:DIR[:ref]`) and archives (`oci-archive:FILE[:ref]`, a tar of a
 * layout, read and written with tar-stream).
 *
 * Writing is atomic: everything goes into a temp folder beside the destination, every blob is
 * renamed into `blobs/sha256/` only after its digest and size matched, and the folder (or the
 * tar) takes its final name only when the whole image is there. A failed pull leaves nothing.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, constants as fsConstants } from 'node:fs';
import {
  type FileHandle,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { OciError } from './errors.js';
import {
  type Descriptor,
  digestOf,
  isDigest,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPES,
} from './manifest.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
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
    if (
      await stat(path).then(
        () => true,
        () => false,
      )
    ) {
      throw new OciError('BAD_REFERENCE', `${path} already exists: refusing to overwrite it`);
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

  /** addManifest lists a manifest in index.json (its blob must be stored), with a ref name. */
  addManifest(desc: Descriptor, refName?: string): void {
    this.manifests.push({
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      ...(refName === undefined ? {} : { annotations: { [REF_NAME]: refName } }),
    });
  }

  /** commit writes index.json and moves the layout (or its tar) to the destination. */
  async commit(): Promise<void> {
    const index = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: this.manifests };
    await writeFile(join(this.tempDir, 'index.json'), `${JSON.stringify(index)}\n`);
    try {
      if (this.destination.kind === 'dir') {
        await rename(this.tempDir, this.destination.path);
        return;
      }
      const tmpTar = `${this.tempDir}.tar`;
      await writeTar(this.tempDir, tmpTar);
      await rename(tmpTar, this.destination.path);
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

/**
 * extractArchive unpacks an OCI archive into a new temp folder and returns the folder; the
 * caller removes it. Names that would leave the folder are not written. What a layout reader
 * opens (index.json, oci-layout, blobs/…) must be a regular file or folder given once: a
 * symlink, hard link or device entry there is refused (LAYOUT_INVALID), as is a name given
 * twice; links elsewhere (Docker's legacy `<id>/layer.tar` links) are skipped, never made.
 * index.json and oci-layout are capped at {@link MAX_MANIFEST_BYTES}, and a blob whose bytes
 * do not hash to its name is refused (DIGEST_MISMATCH).
 */
export async function extractArchive(file: string, into: string): Promise<string> {
  const dir = await mkdtemp(join(into, 'tufa-archive-'));
  const extract = tar.extract();
  const piping = pipeline(createReadStream(file), extract);
  // Its failures (an unreadable file, a broken tar) also end the loop below, which reports them.
  piping.catch(() => undefined);
  try {
    await extractEntries(file, dir, extract);
    await piping;
  } catch (cause) {
    extract.destroy();
    await rm(dir, { recursive: true, force: true });
    if (cause instanceof OciError) throw cause;
    throw new OciError('NOT_FOUND', `${file}: not a readable OCI archive`, { cause });
  }
  return dir;
}

/** extractEntries writes the entries of an archive into `dir` (see {@link extractArchive}). */
async function extractEntries(file: string, dir: string, extract: tar.Extract): Promise<void> {
  const seen = new Set<string>();
  for await (const entry of extract) {
    const header = entry.header;
    // The name as the file system will see it (`./a`, `x/../a` and `a/` are all `a`).
    const target = join(dir, header.name);
    const name = relative(dir, target);
    const refuse = (why: string) =>
      new OciError('LAYOUT_INVALID', `${file}: entry ${JSON.stringify(header.name)} ${why}`);
    const read = SMALL_ENTRIES.has(name) || name === 'blobs' || name.startsWith('blobs/');
    const outside =
      name === '' || header.name.startsWith('/') || name === '..' || name.startsWith('../');
    if (outside || (!read && header.type !== 'file') || header.type === 'directory') {
      if (header.type === 'directory' && SMALL_ENTRIES.has(name)) throw refuse('is a folder');
      entry.resume();
      continue;
    }
    if (header.type !== 'file') {
      throw refuse(
        `is a ${header.type ?? 'special'} entry${header.linkname ? ` (to ${header.linkname})` : ''}: only regular files are accepted`,
      );
    }
    if (seen.has(name)) throw refuse('is given twice');
    seen.add(name);
    if (SMALL_ENTRIES.has(name) && (header.size ?? 0) > MAX_MANIFEST_BYTES) {
      throw new OciError(
        'TOO_LARGE',
        `${file}: ${name} has ${header.size} bytes, more than ${MAX_MANIFEST_BYTES}`,
      );
    }
    const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name)?.[1];
    const hash = createHash('sha256');
    await mkdir(dirname(target), { recursive: true });
    await pipeline(
      entry,
      async function* (source: AsyncIterable<unknown>) {
        for await (const c of source) {
          hash.update(c as Buffer);
          yield c;
        }
      },
      createWriteStream(target, { flags: 'wx' }),
    );
    if (blob !== undefined && hash.digest('hex') !== blob) {
      throw new OciError('DIGEST_MISMATCH', `${file}: ${name} does not hash to its name`);
    }
  }
}
