/**
 * Where an image's bytes come from: a registry, an OCI image layout or an OCI archive. A
 * {@link ManifestSource} answers "the bytes of digest D"; the caller decides whether D is the
 * right digest (a verifier asks for the signed one and checks the bytes itself). Nothing here
 * knows about signatures.
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { OciError } from './errors.js';
import { extractArchive, IMAGE_NAME, type LayoutImage, readLayout } from './layout.js';
import type { Descriptor } from './manifest.js';
import { Reference } from './reference.js';
import type { FetchedManifest, RegistryClient, RepositoryRef } from './registry.js';
import { formatLocation, type ImageLocation, parseLocation } from './transport.js';

/** Per-request options of a source. */
export interface SourceRequest {
  /** Ends the request (and its connection) when it aborts. */
  signal?: AbortSignal;
}

/** The bytes of one image, asked for by digest. */
export interface ManifestSource {
  /** What the source is, for messages: `registry.example/app`, `oci:DIR:REF`. */
  readonly name: string;
  /**
   * named returns the descriptor the source itself names for the image (a layout's ref name),
   * for a source that names one; a registry is only ever asked by digest and has none.
   */
  named?(options?: SourceRequest): Promise<Descriptor>;
  /**
   * manifest returns manifest `digest`: at most `maxBytes` bytes (a registry reads no more; a
   * layout file must have that size, except the one its ref name names). The bytes are
   * checked against `digest` before they are returned.
   * @throws {@link OciError} `NOT_FOUND`, `DIGEST_MISMATCH`, `SIZE_MISMATCH`, `TOO_LARGE`…
   */
  manifest(digest: string, maxBytes: number, options?: SourceRequest): Promise<FetchedManifest>;
  /**
   * copyBlob streams blob `desc` to `sink`, counting and hashing; it rejects unless the bytes
   * match `desc` (the sink must then discard what it got).
   */
  copyBlob(
    desc: Descriptor,
    sink: (chunk: Uint8Array) => Promise<void> | void,
    options?: SourceRequest,
  ): Promise<void>;
  /** close frees what the source holds (an unpacked archive). */
  close(): Promise<void>;
}

/** RegistrySource reads one repository of a registry, by digest only. */
export class RegistrySource implements ManifestSource {
  readonly name: string;

  constructor(
    private readonly client: Pick<RegistryClient, 'getManifest' | 'copyBlob'>,
    private readonly repo: RepositoryRef,
  ) {
    this.name = `${repo.registry}/${repo.repository}`;
  }

  manifest(digest: string, maxBytes: number, options: SourceRequest = {}) {
    return this.client.getManifest(this.repo, digest, maxBytes, options);
  }

  copyBlob(
    desc: Descriptor,
    sink: (chunk: Uint8Array) => Promise<void> | void,
    options: SourceRequest = {},
  ) {
    return this.client.copyBlob(this.repo, desc, sink, 3, options);
  }

  /** The client is the caller's: closing the source leaves it open. */
  async close(): Promise<void> {}
}

/**
 * LayoutSource reads an image of an OCI image layout folder (by its ref name), or of an OCI
 * archive, unpacked into a temp folder on first use and removed by {@link close}.
 */
export class LayoutSource implements ManifestSource {
  private image: Promise<LayoutImage> | undefined;
  private unpacked: Promise<string> | undefined;

  /**
   * @param location - `oci:DIR[:REF]` or `oci-archive:FILE[:REF]` (REF: the ref name; without
   *   one, the layout's only image)
   */
  constructor(private readonly location: Exclude<ImageLocation, { transport: 'docker' }>) {}

  get name(): string {
    return formatLocation(this.location);
  }

  private open(): Promise<LayoutImage> {
    if (this.image === undefined) {
      const loc = this.location;
      if (loc.transport === 'oci-archive') this.unpacked = extractArchive(loc.path, tmpdir());
      const dir = this.unpacked ?? Promise.resolve(loc.path);
      this.image = dir.then((d) => readLayout(d, loc.refName));
    }
    return this.image;
  }

  /** own runs `f`; its errors name the archive given, never the folder it was unpacked into. */
  private async own<T>(f: (image: LayoutImage) => Promise<T>): Promise<T> {
    try {
      return await f(await this.open());
    } catch (e) {
      const dir = await this.unpacked?.catch(() => undefined);
      if (dir !== undefined && e instanceof Error) {
        e.message = e.message.replaceAll(dir, this.location.path);
      }
      throw e;
    }
  }

  named(): Promise<Descriptor> {
    return this.own(async (image) => image.descriptor);
  }

  manifest(digest: string, maxBytes: number): Promise<FetchedManifest> {
    return this.own(async (image) => {
      const d = image.descriptor;
      // the named manifest was read and checked against the index's digest and size
      if (digest === d.digest) return { bytes: image.manifest, digest, mediaType: d.mediaType };
      return { bytes: await image.readBlob(digest, maxBytes), digest, mediaType: undefined };
    });
  }

  copyBlob(desc: Descriptor, sink: (chunk: Uint8Array) => Promise<void> | void): Promise<void> {
    return this.own((image) => image.copyBlob(desc, sink));
  }

  async close(): Promise<void> {
    const dir = await this.unpacked?.catch(() => undefined);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

/** An image argument opened: the image's reference and where its bytes are. */
export interface OpenedImage {
  readonly reference: Reference;
  readonly source: ManifestSource;
}

/**
 * openImage reads an image argument with a transport like skopeo's (`docker://REF` or a bare
 * reference, `oci:DIR:REF`, `oci-archive:FILE:REF`) into a reference and a source. For the
 * local transports REF is both the image's full name and its ref name in the layout.
 * @param registry - the client for registry images (asked for only when one is named)
 * @throws {@link OciError} `BAD_REFERENCE` for an unknown transport or a bad reference
 */
export function openImage(input: string, registry: () => RegistryClient): OpenedImage {
  const loc = parseLocation(input);
  const reference = imageReference(input);
  return {
    reference,
    source:
      loc.transport === 'docker'
        ? new RegistrySource(registry(), reference)
        : new LayoutSource(loc),
  };
}

/**
 * resolveImage is {@link openImage}, and also takes a local image given without a name
 * (`oci:DIR`, `oci-archive:FILE`) when the layout holds one image annotated with its full name
 * ({@link IMAGE_NAME}, as `tufa pull` writes it). The name only chooses the signed target the
 * manifest is then checked against.
 * @throws {@link OciError} `BAD_REFERENCE` (no name given or annotated), `NOT_FOUND`
 */
export async function resolveImage(
  input: string,
  registry: () => RegistryClient,
): Promise<OpenedImage> {
  const loc = parseLocation(input);
  if (loc.transport === 'docker' || loc.refName !== undefined) return openImage(input, registry);
  const source = new LayoutSource(loc);
  try {
    const named = await source.named().catch((e: unknown) => {
      // no image or several: the name must be given (as without a layout to read)
      if (e instanceof OciError && e.code === 'NOT_FOUND') return undefined;
      throw e;
    });
    const name = named?.annotations?.[IMAGE_NAME];
    if (name === undefined) imageReference(input); // throws: give the image's full name
    return { reference: Reference.parse(name as string), source };
  } catch (e) {
    await source.close();
    throw e;
  }
}

/**
 * imageReference reads the reference an image argument names (see {@link openImage}).
 * @throws {@link OciError} `BAD_REFERENCE`
 */
export function imageReference(input: string): Reference {
  const loc = parseLocation(input);
  if (loc.transport === 'docker') return Reference.parse(loc.reference);
  if (loc.refName === undefined) {
    throw new OciError(
      'BAD_REFERENCE',
      `${loc.transport}:${loc.path}: give the image's full name, e.g. ${loc.transport}:${loc.path}:registry.example/app:1.0`,
    );
  }
  return Reference.parse(loc.refName);
}
