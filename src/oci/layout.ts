/**
 * OCI image layouts (`oci:DIR[:ref]`) and archives (`oci-archive:FILE[:ref]`, a tar of a
 * layout, read and written with tar-stream).
 *
 * Writing is atomic: everything goes into a temp folder beside the destination, every blob is
 * renamed into `blobs/sha256/` only after its digest and size matched, and the folder (or the
 * tar) takes its final name only when the whole image is there. A failed pull leaves nothing.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import {
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { OciError } from './errors.js';
import { type Descriptor, digestOf, isDigest, MEDIA_TYPES } from './manifest.js';

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

/** An image read from a layout: the manifest bytes and a way to read blobs. */
export interface LayoutImage {
  readonly manifest: Uint8Array;
  readonly descriptor: Descriptor;
  readBlob(digest: string): Promise<Uint8Array>;
}

/**
 * readLayout finds an image in a layout folder by ref name (the only one if no name is given)
 * and reads its manifest, checking it against the index's digest and size.
 */
export async function readLayout(dir: string, refName?: string): Promise<LayoutImage> {
  let index: { manifests?: Descriptor[] };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  } catch (cause) {
    throw new OciError('NOT_FOUND', `${dir}: not an OCI image layout (index.json unreadable)`, {
      cause,
    });
  }
  const list = index.manifests ?? [];
  const matches =
    refName === undefined ? list : list.filter((m) => m.annotations?.[REF_NAME] === refName);
  if (matches.length !== 1) {
    throw new OciError(
      'NOT_FOUND',
      `${dir}: ${matches.length === 0 ? 'no image' : 'several images'}${refName === undefined ? '' : ` named ${refName}`}`,
    );
  }
  const descriptor = matches[0] as Descriptor;
  const readBlob = async (digest: string): Promise<Uint8Array> => {
    try {
      return new Uint8Array(await readFile(blobPath(dir, digest)));
    } catch (cause) {
      throw new OciError('NOT_FOUND', `${dir}: blob ${digest} is missing`, { cause });
    }
  };
  const manifest = await readBlob(descriptor.digest);
  if (manifest.length !== descriptor.size || digestOf(manifest) !== descriptor.digest) {
    throw new OciError(
      'DIGEST_MISMATCH',
      `${dir}: manifest ${descriptor.digest} does not match its bytes`,
    );
  }
  return { manifest, descriptor, readBlob };
}

/**
 * extractArchive unpacks an OCI archive into a new temp folder (regular files only; names that
 * would leave the folder are refused) and returns the folder; the caller removes it.
 */
export async function extractArchive(file: string, into: string): Promise<string> {
  const dir = await mkdtemp(join(into, 'tufa-archive-'));
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const name = header.name.replace(/^\.\//, '');
    const target = join(dir, name);
    if (header.type !== 'file' || name.startsWith('/') || relative(dir, target).startsWith('..')) {
      stream.resume();
      stream.on('end', next);
      return;
    }
    mkdir(dirname(target), { recursive: true })
      .then(() => pipeline(stream, createWriteStream(target)))
      .then(() => next(), next);
  });
  try {
    await pipeline(createReadStream(file), extract);
  } catch (cause) {
    await rm(dir, { recursive: true, force: true });
    throw new OciError('NOT_FOUND', `${file}: not a readable OCI archive`, { cause });
  }
  return dir;
}
