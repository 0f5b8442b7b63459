/**
 * Manifests, indexes and descriptors (OCI image spec 1.1 and Docker schema 2): media types,
 * strict parsing of what we need, and digests we compute ourselves.
 */
import { createHash } from 'node:crypto';
import { OciError } from './errors.js';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** The Accept header for manifests: every kind we can verify (without it registries convert or 404). */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.dockerManifest,
].join(', ');

/** The most manifest bytes read (4 MiB, as registries limit them). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** A content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** An image manifest (OCI or Docker schema 2). */
export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** An index / manifest list. */
export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

/** digestOf returns `sha256:<hex>` of bytes. */
export function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** isDigest tells whether a string is a `sha256:` digest in canonical form. */
export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

function descriptor(v: unknown, where: string): Descriptor {
  const d = v as Record<string, unknown>;
  if (typeof d !== 'object' || d === null)
    throw new OciError('MANIFEST_INVALID', `${where}: expected a descriptor`);
  if (typeof d.mediaType !== 'string')
    throw new OciError('MANIFEST_INVALID', `${where}.mediaType: expected a string`);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) {
    throw new OciError(
      'MANIFEST_INVALID',
      `${where}.digest: expected sha256:<64 hex>, got ${JSON.stringify(d.digest)}`,
    );
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new OciError('MANIFEST_INVALID', `${where}.size: expected a non-negative integer`);
  }
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.platform !== undefined) {
    const p = d.platform as Record<string, unknown>;
    if (typeof p?.os !== 'string' || typeof p.architecture !== 'string') {
      throw new OciError('MANIFEST_INVALID', `${where}.platform: expected os and architecture`);
    }
    out.platform = {
      os: p.os,
      architecture: p.architecture,
      ...(typeof p.variant === 'string' ? { variant: p.variant } : {}),
    };
  }
  if (d.annotations !== undefined) out.annotations = d.annotations as Record<string, string>;
  if (Array.isArray(d.urls)) out.urls = d.urls as string[];
  return out;
}

/**
 * parseManifest reads a manifest or index. The media type comes from the document
 * (`mediaType`), or, for OCI documents that omit it, from the shape and the served Content-Type.
 * @throws {@link OciError} `MANIFEST_INVALID`
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): ImageManifest | ImageIndex {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new OciError('MANIFEST_INVALID', 'manifest: not valid JSON', { cause });
  }
  if (typeof doc !== 'object' || doc === null || doc.schemaVersion !== 2) {
    throw new OciError(
      'MANIFEST_INVALID',
      'manifest: expected schemaVersion 2 (schema 1 manifests are not supported)',
    );
  }
  const mediaType =
    typeof doc.mediaType === 'string' ? doc.mediaType : (contentType?.split(';')[0]?.trim() ?? '');
  // A document that is both an index and an image manifest is ambiguous: another client could
  // read the same signed digest as another image (CVE-2021-41190).
  if (doc.manifests !== undefined && (doc.config !== undefined || doc.layers !== undefined)) {
    throw new OciError(
      'MANIFEST_INVALID',
      'manifest: both "manifests" and "config"/"layers" (ambiguous)',
    );
  }
  if (Array.isArray(doc.manifests)) {
    if (
      mediaType !== MEDIA_TYPES.ociIndex &&
      mediaType !== MEDIA_TYPES.dockerList &&
      mediaType !== ''
    ) {
      throw new OciError(
        'MANIFEST_INVALID',
        `manifest: an index with media type ${JSON.stringify(mediaType)}`,
      );
    }
    return {
      kind: 'index',
      mediaType: mediaType || MEDIA_TYPES.ociIndex,
      manifests: doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`)),
    };
  }
  if (typeof doc.config === 'object' && Array.isArray(doc.layers)) {
    if (
      mediaType !== MEDIA_TYPES.ociManifest &&
      mediaType !== MEDIA_TYPES.dockerManifest &&
      mediaType !== ''
    ) {
      throw new OciError(
        'MANIFEST_INVALID',
        `manifest: an image manifest with media type ${JSON.stringify(mediaType)}`,
      );
    }
    return {
      kind: 'manifest',
      mediaType: mediaType || MEDIA_TYPES.ociManifest,
      config: descriptor(doc.config, 'config'),
      layers: doc.layers.map((l, i) => descriptor(l, `layers[${i}]`)),
    };
  }
  throw new OciError('MANIFEST_INVALID', 'manifest: neither an image manifest nor an index');
}

/** parsePlatform reads `os/arch[/variant]`. */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant, extra] = s.split('/');
  if (!os || !architecture || extra !== undefined) {
    throw new OciError(
      'BAD_REFERENCE',
      `platform: expected os/arch[/variant], got ${JSON.stringify(s)}`,
    );
  }
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** selectPlatform returns the index entry for a platform, or undefined. */
export function selectPlatform(index: ImageIndex, p: Platform): Descriptor | undefined {
  return index.manifests.find(
    (m) =>
      m.platform?.os === p.os &&
      m.platform.architecture === p.architecture &&
      (p.variant === undefined || m.platform.variant === p.variant),
  );
}
