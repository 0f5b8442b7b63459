/**
 * A tiny image builder: one gzip layer from in-memory files, a config and an OCI manifest,
 * written into an OCI layout. For demos and tests that must run without a registry or Docker.
 */
import { gzipSync } from 'node:zlib';
import { LayoutWriter } from './layout.js';
import { type Descriptor, digestOf, MEDIA_TYPES, type Platform } from './manifest.js';

/** A file of the layer. */
export interface ImageFile {
  readonly path: string;
  readonly content: Uint8Array;
  readonly mode?: number;
}

async function tarOf(files: readonly ImageFile[]): Promise<Uint8Array> {
  // loaded when an image is built, not by every importer of the registry client
  const { default: tar } = await import('tar-stream');
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const f of files) {
    pack.entry(
      { name: f.path.replace(/^\/+/, ''), mode: f.mode ?? 0o644, mtime: new Date(0) },
      Buffer.from(f.content),
    );
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** The blobs of a built image, before they are stored anywhere. */
export interface BuiltImage {
  readonly manifest: Uint8Array;
  readonly manifestDescriptor: Descriptor;
  readonly blobs: ReadonlyArray<{ descriptor: Descriptor; bytes: Uint8Array }>;
}

/** buildImage makes config, layer and manifest for `files`. */
export async function buildImage(
  files: readonly ImageFile[],
  platform: Platform = { os: 'linux', architecture: 'amd64' },
): Promise<BuiltImage> {
  const layerTar = await tarOf(files);
  const layer = new Uint8Array(gzipSync(layerTar, { level: 9 }));
  const config = new TextEncoder().encode(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [digestOf(layerTar)] },
      history: [{ created_by: 'tufa buildImage' }],
    }),
  );
  const configDesc: Descriptor = {
    mediaType: MEDIA_TYPES.ociConfig,
    digest: digestOf(config),
    size: config.length,
  };
  const layerDesc: Descriptor = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: digestOf(layer),
    size: layer.length,
  };
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: configDesc,
      layers: [layerDesc],
    }),
  );
  return {
    manifest,
    manifestDescriptor: {
      mediaType: MEDIA_TYPES.ociManifest,
      digest: digestOf(manifest),
      size: manifest.length,
    },
    blobs: [
      { descriptor: configDesc, bytes: config },
      { descriptor: layerDesc, bytes: layer },
    ],
  };
}

/** writeLayoutImages writes built images into a new OCI layout, each under its ref name. */
export async function writeLayoutImages(
  dir: string,
  images: ReadonlyArray<{ refName: string; image: BuiltImage }>,
): Promise<void> {
  const w = await LayoutWriter.create('dir', dir);
  try {
    for (const { refName, image } of images) {
      for (const b of image.blobs)
        if (!(await w.hasBlob(b.descriptor.digest))) await w.putBlob(b.descriptor, b.bytes);
      await w.putBlob(image.manifestDescriptor, image.manifest);
      w.addManifest(image.manifestDescriptor, refName);
    }
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}
