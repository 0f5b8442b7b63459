/**
 * Pull after verify: the manifest was verified against the signed target; every blob it names
 * is then fetched by digest and checked (size and SHA-256) as it streams, and the image is
 * written as an OCI layout or archive that appears only when complete.
 */
import { MisuseError } from '../core/index.js';
import {
  type Descriptor,
  digestOf,
  type ImageManifest,
  LayoutWriter,
  type ManifestSource,
  OciError,
  type Platform,
  parseLocation,
  parseManifest,
  type Reference,
  selectPlatform,
} from '../oci/index.js';
import { ImageVerificationError } from './errors.js';
import type { ImageVerifier, VerifiedImage } from './verify-image.js';

export interface PullOptions {
  /** Which manifest of an index to pull (default linux/amd64). */
  platform?: Platform;
  /**
   * Called as bytes arrive: done and total of the blobs to fetch, and the blob the bytes are of
   * (its bytes so far and its size; a blob already at hand counts whole at once).
   */
  onProgress?: (done: number, total: number, blob: BlobProgress) => void;
}

/** Where one blob's copy stands. */
export interface BlobProgress {
  readonly digest: string;
  readonly done: number;
  readonly size: number;
}

export interface PullResult {
  readonly verified: VerifiedImage;
  /** The image manifest written (the platform's, for an index). */
  readonly manifestDigest: string;
  readonly blobs: number;
  readonly bytes: number;
  readonly output: string;
}

/** counted wraps a chunk writer so that `count` sees each chunk's size after it is written. */
function counted(
  write: (chunk: Uint8Array) => Promise<void>,
  count: (bytes: number) => void,
): (chunk: Uint8Array) => Promise<void> {
  return async (chunk) => {
    await write(chunk);
    count(chunk.length);
  };
}

/**
 * pullImage verifies `reference`, then copies it from `source` to `output` (`oci:DIR[:tag]` or
 * `oci-archive:FILE[:tag]`): the verified manifest, for an index the platform's manifest (by
 * the digest the signed index lists), and every blob, each checked as it streams.
 */
export async function pullImage(
  verifier: ImageVerifier,
  reference: Reference,
  source: ManifestSource,
  output: string,
  options: PullOptions = {},
): Promise<PullResult> {
  const out = parseLocation(output);
  if (out.transport === 'docker')
    throw new MisuseError(`--output: expected oci:DIR or oci-archive:FILE, got ${output}`);
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const verified = await verifier.verify(reference, source, { platform });
  const writer = await LayoutWriter.create(out.transport === 'oci' ? 'dir' : 'archive', out.path);
  try {
    let manifestDesc: Descriptor = {
      mediaType: verified.parsed.mediaType,
      digest: verified.digest,
      size: verified.length,
    };
    await writer.putBlob(manifestDesc, verified.manifest);
    let manifest = verified.parsed;
    if (manifest.kind === 'index') {
      const entry = selectPlatform(manifest, platform);
      if (entry === undefined) {
        throw new ImageVerificationError(
          'UNSIGNED_IMAGE',
          `${verified.targetPath}: no ${platform.os}/${platform.architecture} manifest in the signed index`,
        );
      }
      manifestDesc = { mediaType: entry.mediaType, digest: entry.digest, size: entry.size };
      const child = await platformManifest(source, entry);
      await writer.putBlob(manifestDesc, child.bytes);
      manifest = child.manifest;
    }
    const image = manifest as ImageManifest;
    const blobs = [image.config, ...image.layers];
    const total = blobs.reduce((n, b) => n + b.size, 0);
    let done = 0;
    for (const desc of blobs) {
      let blobDone = 0;
      const count = (n: number) => {
        blobDone += n;
        done += n;
        options.onProgress?.(done, total, { digest: desc.digest, done: blobDone, size: desc.size });
      };
      if (!(await writer.hasBlob(desc.digest))) {
        await writer.streamBlob(desc, (write) => source.copyBlob(desc, counted(write, count)));
      }
      // a blob at hand (or an empty one) counts whole
      if (blobDone < desc.size || desc.size === 0) count(desc.size - blobDone);
    }
    // the full name too, so `verify oci-archive:FILE` (no name) finds which signed target it is
    const r = verified.reference;
    writer.addManifest(manifestDesc, out.refName ?? r.tag, r.tagged ?? r.pinned(verified.digest));
    await writer.commit();
    return {
      verified,
      manifestDigest: manifestDesc.digest,
      blobs: blobs.length,
      bytes: total,
      output,
    };
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

/**
 * platformManifest fetches the manifest a verified index lists: verified by the digest and
 * size the index gives.
 */
async function platformManifest(
  source: ManifestSource,
  entry: Descriptor,
): Promise<{ manifest: ImageManifest; bytes: Uint8Array }> {
  const { bytes } = await source.manifest(entry.digest, entry.size);
  if (bytes.length !== entry.size || digestOf(bytes) !== entry.digest) {
    throw new OciError(
      'DIGEST_MISMATCH',
      `${entry.digest}: the platform manifest does not match the signed index`,
    );
  }
  const manifest = parseManifest(bytes, entry.mediaType);
  if (manifest.kind !== 'manifest')
    throw new OciError('MANIFEST_INVALID', `${entry.digest}: nested index`);
  return { manifest, bytes };
}
