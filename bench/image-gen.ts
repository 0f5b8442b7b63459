/**
 * A large deterministic OCI image for the pull benchmark, written as an OCI layout directly
 * (umoci would gzip half a gigabyte of random data at its default level, which takes longer
 * than the benchmark itself).
 *
 * Each layer is a tar holding one file of pseudo-random bytes (AES-256-CTR keystream with a
 * fixed key, so the image is the same on every machine), wrapped in gzip with stored blocks
 * (level 0: random data does not compress, and a gzip layer is pushed by skopeo as it is, where
 * an uncompressed one would be recompressed). Cached under `bench/out/images/<key>/`.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export interface ImageParams {
  layers: number;
  /** Bytes of random content per layer. */
  layerBytes: number;
}

export interface GeneratedImage {
  /** `oci:DIR:TAG` for skopeo. */
  readonly ref: string;
  readonly dir: string;
  readonly manifestDigest: string;
  readonly manifestSize: number;
  /** Bytes of every blob a pull fetches (config and layers). */
  readonly blobBytes: number;
  readonly generatedIn: number;
}

const TAG = 'bench';

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A ustar header for one regular file. */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, at: number, len: number) => h.write(s, at, len, 'ascii');
  const octal = (n: number, len: number) => n.toString(8).padStart(len - 1, '0');
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(0, 12), 136, 12);
  put('        ', 148, 8);
  put('0', 156, 1);
  put('ustar\u0000', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${octal(sum, 7)}\u0000 `, 148, 8);
  return h;
}

function layerTar(index: number, size: number): Buffer {
  const key = createHash('sha256').update(`tufa-bench-layer/${index}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const data = cipher.update(Buffer.alloc(size));
  const pad = Buffer.alloc((512 - (size % 512)) % 512);
  return Buffer.concat([tarHeader(`data/layer-${index}.bin`, size), data, pad, Buffer.alloc(1024)]);
}

export function imageKey(p: ImageParams): string {
  return `image-${p.layers}x${p.layerBytes}`;
}

/** ensureImage returns the cached image layout, writing it first when needed. */
export async function ensureImage(outDir: string, p: ImageParams): Promise<GeneratedImage> {
  const dir = join(outDir, 'images', imageKey(p));
  const info = join(dir, 'bench-info.json');
  let generatedIn = 0;
  if (!existsSync(info)) {
    const started = performance.now();
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    const blobs = join(tmp, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    const put = async (bytes: Uint8Array) => {
      const hex = sha256(bytes);
      await writeFile(join(blobs, hex), bytes);
      return { digest: `sha256:${hex}`, size: bytes.length };
    };
    const layers: Array<{ mediaType: string; digest: string; size: number }> = [];
    const diffIds: string[] = [];
    for (let i = 0; i < p.layers; i++) {
      const tar = layerTar(i, p.layerBytes);
      diffIds.push(`sha256:${sha256(tar)}`);
      const gz = gzipSync(tar, { level: 0 });
      layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await put(gz)) });
    }
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map((_, i) => ({ created_by: `tufa bench layer ${i}` })),
      }),
    );
    const configDesc = {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      ...(await put(config)),
    };
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: configDesc,
        layers,
      }),
    );
    const m = await put(manifest);
    await writeFile(join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(tmp, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...m,
            annotations: { 'org.opencontainers.image.ref.name': TAG },
          },
        ],
      }),
    );
    const blobBytes = configDesc.size + layers.reduce((n, l) => n + l.size, 0);
    await writeFile(
      join(tmp, 'bench-info.json'),
      JSON.stringify({ manifestDigest: m.digest, manifestSize: m.size, blobBytes }),
    );
    await rename(tmp, dir);
    generatedIn = (performance.now() - started) / 1000;
  }
  const r = JSON.parse(await readFile(info, 'utf8')) as {
    manifestDigest: string;
    manifestSize: number;
    blobBytes: number;
  };
  return { ref: `oci:${dir}:${TAG}`, dir, ...r, generatedIn };
}
