/**
 * A TUF repository stored in a registry, in the layout of docker/attest (`pkg/mirror` writes
 * it, `pkg/tuf/registry.go` reads it):
 *
 * - the metadata image `<registry>/<repo>:<tag>` (tag default `latest`): an OCI image manifest
 *   (config `application/vnd.oci.image.config.v1+json`, no artifactType) with one layer per
 *   file, media type `application/vnd.tuf.metadata+json`, annotation `tuf.io/filename` = the
 *   file name: every `N.root.json`, `[V.]snapshot.json`, `[V.]targets.json`, `timestamp.json`;
 * - each delegated role as its own image in the same repository, tagged with the role name,
 *   holding `[V.]<role>.json`;
 * - targets in a targets repository: a `<name>` without a folder is the image tagged `<name>`
 *   whose layer (`application/vnd.tuf.target`) is annotated `<name>`; `<dir>/<rest>` is in the
 *   index tagged `<dir>`: its manifest annotated `<dir>/<rest>` has the layer annotated with the
 *   base name.
 *
 * Files are bytes here: what they say is verified by the TUF client, never in this module. A
 * manifest is fetched by tag, each layer by its digest (digest and size checked by
 * {@link RegistryClient.copyBlob}); a name given by two entries of one manifest is refused.
 */
import { OciError } from './errors.js';
import {
  type Descriptor,
  digestOf,
  type ImageIndex,
  type ImageManifest,
  MEDIA_TYPES,
  parseManifest,
} from './manifest.js';
import { Reference, TAG } from './reference.js';
import type { RegistryClient, RepositoryRef } from './registry.js';

export const TUF_MEDIA_TYPES = {
  metadata: 'application/vnd.tuf.metadata+json',
  target: 'application/vnd.tuf.target',
} as const;

/** The annotation naming the file a layer (or an index entry) holds. */
export const TUF_FILENAME_ANNOTATION = 'tuf.io/filename';

const TOP_LEVEL = new Set(['root', 'timestamp', 'snapshot', 'targets']);

/** A metadata image: its repository and tag. */
export interface TufImageRef extends RepositoryRef {
  readonly tag: string;
}

/**
 * parseOciUrl reads `oci://registry/repository[:tag]` (a trailing `/` is allowed; the tag
 * defaults to `latest`, as docker/attest's does; never a digest: a publish moves the tag). The
 * first segment is always the registry, a short name (`oci://registry/tuf`) too.
 * @throws {@link OciError} `BAD_REFERENCE`
 */
export function parseOciUrl(url: string): TufImageRef {
  const rest = url.startsWith('oci://') ? url.slice('oci://'.length).replace(/\/$/, '') : '';
  if (rest.indexOf('/') <= 0)
    throw new OciError(
      'BAD_REFERENCE',
      `${JSON.stringify(url)}: expected oci://REGISTRY/REPOSITORY[:TAG]`,
    );
  const ref = Reference.parse(rest, { strict: false, registryFirst: true });
  if (ref.digest !== undefined)
    throw new OciError('BAD_REFERENCE', `${url}: a TUF repository is named by tag, not digest`);
  return { registry: ref.registry, repository: ref.repository, tag: ref.tag ?? 'latest' };
}

/** ociBaseUrl is the metadata base URL of a metadata image: `oci://registry/repository:tag/`. */
export function ociBaseUrl(ref: TufImageRef): string {
  return `oci://${ref.registry}/${ref.repository}:${ref.tag}/`;
}

/**
 * parseOciRepository reads `oci://registry/repository` (a targets repository: no tag).
 * @throws {@link OciError} `BAD_REFERENCE`
 */
export function parseOciRepository(url: string): RepositoryRef {
  const { registry, repository } = parseOciUrl(url);
  // the last segment is the repository's (parseOciUrl wants a `/`): a `:` there is a tag
  if (url.replace(/\/$/, '').split('/').at(-1)?.includes(':'))
    throw new OciError('BAD_REFERENCE', `${url}: a targets repository has no tag`);
  return { registry, repository };
}

/** splitName reads a metadata file name: `7.targets.json` → version 7, role `targets`. */
function splitName(file: string): { version?: number; role: string } {
  const m = /^(?:([1-9][0-9]*)\.)?(.+)\.json$/.exec(file);
  if (m === null)
    throw new OciError('BAD_REFERENCE', `${JSON.stringify(file)}: not a TUF metadata file name`);
  return { ...(m[1] === undefined ? {} : { version: Number(m[1]) }), role: m[2] as string };
}

/**
 * metadataTag is the tag of the image holding a metadata file: the metadata tag for the
 * top-level roles, the role name for a delegated role (docker/attest `parseImgRef`).
 * @throws {@link OciError} `BAD_REFERENCE` for a role name that cannot be a tag
 */
export function metadataTag(file: string, metaTag: string): string {
  const { role } = splitName(file);
  if (TOP_LEVEL.has(role)) return metaTag;
  if (!TAG.test(role) || role === metaTag)
    throw new OciError(
      'BAD_REFERENCE',
      `role ${JSON.stringify(role)} cannot be stored in a registry: its image tag must be 1 to 128 of [A-Za-z0-9_.-] and differ from the metadata tag ${JSON.stringify(metaTag)}`,
    );
  return role;
}

/** targetPlace: the tag of a target file's image or index, and the names to look for. */
export function targetPlace(name: string): { tag: string; entry?: string; layer: string } {
  const slash = name.indexOf('/');
  const tag = slash < 0 ? name : name.slice(0, slash);
  if (!TAG.test(tag))
    throw new OciError(
      'BAD_REFERENCE',
      `target ${JSON.stringify(name)} cannot be stored in a registry: ${JSON.stringify(tag)} is not an image tag (1 to 128 of [A-Za-z0-9_.-])`,
    );
  if (slash < 0) return { tag, layer: name };
  return { tag, entry: name, layer: name.slice(name.lastIndexOf('/') + 1) };
}

/** annotated finds the one descriptor annotated with `name`; two are refused. */
function annotated(
  list: readonly Descriptor[],
  name: string,
  where: string,
): Descriptor | undefined {
  const hits = list.filter((d) => d.annotations?.[TUF_FILENAME_ANNOTATION] === name);
  if (hits.length > 1)
    throw new OciError(
      'MANIFEST_INVALID',
      `${where}: ${hits.length} entries are annotated ${name}`,
    );
  return hits[0];
}

function where(repo: RepositoryRef, ref: string): string {
  return `${repo.registry}/${repo.repository}${ref.startsWith('sha256:') ? '@' : ':'}${ref}`;
}

/** A manifest read by tag, as the reader remembers it. */
interface Seen {
  readonly digest: string;
  readonly size: number;
  readonly manifest: ImageManifest;
}

/** manifestAt fetches and parses a manifest; undefined when the registry has none. */
async function manifestAt(
  client: RegistryClient,
  repo: RepositoryRef,
  reference: string,
  signal: AbortSignal | undefined,
): Promise<{ digest: string; size: number; parsed: ImageManifest | ImageIndex } | undefined> {
  try {
    const m = await client.getManifest(repo, reference, undefined, signal ? { signal } : {});
    return { digest: m.digest, size: m.bytes.length, parsed: parseManifest(m.bytes, m.mediaType) };
  } catch (e) {
    if (e instanceof OciError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
}

/** imageAt fetches the image manifest tagged `tag` (an index there is refused). */
async function imageAt(
  client: RegistryClient,
  repo: RepositoryRef,
  tag: string,
  signal: AbortSignal | undefined,
): Promise<Seen | undefined> {
  const m = await manifestAt(client, repo, tag, signal);
  if (m === undefined) return undefined;
  if (m.parsed.kind !== 'manifest')
    throw new OciError('MANIFEST_INVALID', `${where(repo, tag)}: expected a TUF metadata image`);
  return { digest: m.digest, size: m.size, manifest: m.parsed };
}

/** Tags remembered at most (least recently used go), and the largest manifest remembered. */
const SEEN_TAGS = 256;
const SEEN_MAX_BYTES = 64 * 1024;

/**
 * Reads TUF files from a registry. Each tag's manifest is remembered as last read: the metadata
 * image as read for `timestamp.json` (every refresh reads it anew), so a refresh reads snapshot
 * and targets out of the image its timestamp came from even when a publish moves the tag
 * meanwhile. Only a name carrying a version (`7.snapshot.json`, `3.team.json`), never a root
 * (`N.root.json` ends the root chain when the tag has none), is served from that manifest; any
 * other name, a versioned name not found there, and any failure reading the layer it names read
 * the tag anew, replacing what was remembered: one forged answer cannot outlive the next read.
 */
export class TufRegistryReader {
  private readonly seen = new Map<string, Seen>();

  constructor(private readonly client: RegistryClient) {}

  /**
   * readMetadata returns a metadata file of the repository at `ref`, at most `maxLength` bytes,
   * or undefined when the registry has no such file (no image, or no layer with that name).
   */
  async readMetadata(
    ref: TufImageRef,
    file: string,
    maxLength: number,
    signal?: AbortSignal,
  ): Promise<Uint8Array | undefined> {
    const tag = metadataTag(file, ref.tag);
    const key = `${ref.registry}/${ref.repository}:${tag}`;
    const { version, role } = splitName(file);
    const remembered = version !== undefined && role !== 'root' ? this.seen.get(key) : undefined;
    if (remembered !== undefined) {
      try {
        const layer = annotated(remembered.manifest.layers, file, where(ref, remembered.digest));
        if (layer !== undefined)
          return await this.layer(ref, layer, TUF_MEDIA_TYPES.metadata, maxLength, signal);
      } catch (e) {
        if (signal?.aborted) throw e; // otherwise read the tag again, below
      }
    }
    this.seen.delete(key);
    const fetched = await imageAt(this.client, ref, tag, signal);
    if (fetched === undefined) return undefined;
    this.remember(key, fetched);
    const layer = annotated(fetched.manifest.layers, file, where(ref, fetched.digest));
    return layer && this.layer(ref, layer, TUF_MEDIA_TYPES.metadata, maxLength, signal);
  }

  /**
   * readTarget returns a target file (`<name>` or `<dir>/<rest>`, as the client asks for it),
   * or undefined when the registry has none of that name.
   */
  async readTarget(
    repo: RepositoryRef,
    name: string,
    maxLength: number,
    signal?: AbortSignal,
  ): Promise<Uint8Array | undefined> {
    const place = targetPlace(name);
    const m = await manifestAt(this.client, repo, place.tag, signal);
    if (m === undefined) return undefined;
    let image: ImageManifest | ImageIndex = m.parsed;
    let at = where(repo, m.digest);
    if (place.entry !== undefined) {
      if (image.kind !== 'index')
        throw new OciError('MANIFEST_INVALID', `${at}: expected an index of target images`);
      const entry = annotated(image.manifests, place.entry, at);
      if (entry === undefined) return undefined;
      const child = await manifestAt(this.client, repo, entry.digest, signal);
      if (child === undefined) return undefined;
      image = child.parsed;
      at = where(repo, entry.digest);
    }
    if (image.kind !== 'manifest')
      throw new OciError('MANIFEST_INVALID', `${at}: expected an image`);
    const layer = annotated(image.layers, place.layer, at);
    return layer && this.layer(repo, layer, TUF_MEDIA_TYPES.target, maxLength, signal);
  }

  private remember(key: string, s: Seen): void {
    if (s.size > SEEN_MAX_BYTES) return; // read again when needed: memory stays bounded
    this.seen.set(key, s);
    for (const k of this.seen.keys()) {
      if (this.seen.size <= SEEN_TAGS) break;
      this.seen.delete(k);
    }
  }

  private async layer(
    repo: RepositoryRef,
    desc: Descriptor,
    mediaType: string,
    maxLength: number,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    const at = where(repo, desc.digest);
    if (desc.mediaType !== mediaType)
      throw new OciError(
        'MANIFEST_INVALID',
        `${at}: media type ${JSON.stringify(desc.mediaType)}, expected ${mediaType}`,
      );
    if (desc.size > maxLength)
      throw new OciError(
        'TOO_LARGE',
        `${at}: ${desc.size} bytes, more than the limit of ${maxLength}`,
      );
    const chunks: Uint8Array[] = [];
    await this.client.copyBlob(repo, desc, (c) => void chunks.push(c), 3, signal ? { signal } : {});
    return Buffer.concat(chunks);
  }
}

// ---- writing ---------------------------------------------------------------------------------

const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

type Layer = { readonly name: string; readonly bytes: Uint8Array } | Descriptor;

/** pushImage pushes an image of annotated layers (blobs first, then the manifest, by `ref`). */
async function pushImage(
  client: RegistryClient,
  repo: RepositoryRef,
  ref: string | undefined,
  mediaType: string,
  layers: readonly Layer[],
): Promise<Descriptor> {
  const descs: Descriptor[] = [];
  for (const l of layers) {
    if ('digest' in l) descs.push(l);
    else {
      const d = await client.pushBlob(repo, l.bytes, mediaType);
      descs.push({ ...d, annotations: { [TUF_FILENAME_ANNOTATION]: l.name } });
    }
  }
  // what go-containerregistry's empty image with these layers has
  const config = await client.pushBlob(
    repo,
    encode({
      architecture: '',
      os: '',
      config: {},
      rootfs: { type: 'layers', diff_ids: descs.map((d) => d.digest) },
    }),
    MEDIA_TYPES.ociConfig,
  );
  const bytes = encode({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config,
    layers: descs,
  });
  const digest = await client.pushManifest(
    repo,
    ref ?? digestOf(bytes),
    bytes,
    MEDIA_TYPES.ociManifest,
  );
  return { mediaType: MEDIA_TYPES.ociManifest, digest, size: bytes.length };
}

/** Older versions of a delegated role kept in its image, for clients still on an older snapshot. */
const KEEP_ROLE_VERSIONS = 3;

/**
 * pushTufRepository stores a published tree (file name → bytes, as `publishWorkspace` lays it
 * out: `N.root.json`, `[V.]<role>.json`, `timestamp.json`, `targets/<path>`) in the layout
 * above. Everything is checked before the first request (every name a tag, a targets
 * repository when there are target files). Then, in TUF's order: target images and indexes,
 * delegated role images, and the metadata image last: it holds `timestamp.json`, and its one
 * manifest `PUT` moves the tag, so clients see the new repository all at once or not at all.
 * (docker/attest's mirror example pushes the metadata image first; that order would let a
 * client see a snapshot naming role versions not pushed yet.) A role image keeps the layers of
 * up to {@link KEEP_ROLE_VERSIONS} older versions, as a consistent-snapshot web tree keeps old
 * files, so a client that refreshed before the publish still finds the version it expects.
 * @returns the references pushed, in order
 */
export async function pushTufRepository(
  client: RegistryClient,
  files: ReadonlyMap<string, Uint8Array>,
  metadata: TufImageRef,
  targets?: RepositoryRef,
): Promise<string[]> {
  const top: Array<[string, Uint8Array]> = [];
  const roles = new Map<string, Array<[string, Uint8Array]>>();
  const targetTags = new Map<string, Array<[string, Uint8Array]>>();
  const validTag = new Set(
    [...files].filter(([n]) => n.startsWith('targets/') && TAG.test(n.slice(8))).map(([, b]) => b),
  );
  for (const [name, bytes] of files) {
    if (name.startsWith('targets/')) {
      const rel = name.slice('targets/'.length);
      // a file also written under another hash's name (`<sha512>.x` beside `<sha256>.x`) that
      // cannot be a tag: stored once, under the name that can (clients ask for the first hash)
      if (!rel.includes('/') && !TAG.test(rel) && validTag.has(bytes)) continue;
      const { tag } = targetPlace(rel);
      targetTags.set(tag, [...(targetTags.get(tag) ?? []), [rel, bytes]]);
      continue;
    }
    if (name === 'root.json') continue; // clients read N.root.json (docker/attest has no root.json)
    const tag = metadataTag(name, metadata.tag);
    if (tag === metadata.tag) top.push([name, bytes]);
    else roles.set(tag, [...(roles.get(tag) ?? []), [name, bytes]]);
  }
  if (!top.some(([n]) => n === 'timestamp.json'))
    throw new OciError('BAD_REFERENCE', 'pushTufRepository: the tree has no timestamp.json');
  if (targetTags.size > 0 && targets === undefined)
    throw new OciError(
      'BAD_REFERENCE',
      `the repository has ${[...targetTags.values()].flat().length} target files: name a targets repository for them (--targets-to oci://REGISTRY/REPOSITORY)`,
    );
  if (
    targets !== undefined &&
    targets.registry === metadata.registry &&
    targets.repository === metadata.repository
  )
    throw new OciError(
      'BAD_REFERENCE',
      `${metadata.registry}/${metadata.repository}: the targets repository must be another repository than the metadata image's (their tags would collide)`,
    );
  // one TUF repository per tag: a tag written here holds nothing yet, or an image of the same
  // files (top-level roles at the metadata tag, one role at its tag), never another repository's
  const previous = new Map<string, Seen | undefined>();
  for (const tag of [...roles.keys(), metadata.tag]) {
    const image = await imageAt(client, metadata, tag, undefined);
    const owned = (d: Descriptor) => {
      const m = /^(?:[1-9][0-9]*\.)?(.+)\.json$/.exec(
        d.annotations?.[TUF_FILENAME_ANNOTATION] ?? '',
      );
      const role = m?.[1];
      return (
        d.mediaType === TUF_MEDIA_TYPES.metadata &&
        role !== undefined &&
        (tag === metadata.tag ? TOP_LEVEL.has(role) : role === tag)
      );
    };
    if (image !== undefined && !image.manifest.layers.every(owned))
      throw new OciError(
        'BAD_REFERENCE',
        `${where(metadata, tag)} holds an image that is not ${tag === metadata.tag ? 'a TUF metadata image' : `role ${JSON.stringify(tag)}'s`}: refusing to overwrite it (one TUF repository per registry repository; a delegated role's name must not be another image's tag)`,
      );
    previous.set(tag, image);
  }
  const pushed: string[] = [];
  const name = (repo: RepositoryRef, tag: string) => `${repo.registry}/${repo.repository}:${tag}`;
  if (targets !== undefined) {
    for (const [tag, list] of targetTags) {
      if (list.length === 1 && !(list[0] as [string, Uint8Array])[0].includes('/')) {
        const [rel, bytes] = list[0] as [string, Uint8Array];
        await pushImage(client, targets, tag, TUF_MEDIA_TYPES.target, [{ name: rel, bytes }]);
      } else {
        const manifests: Descriptor[] = [];
        for (const [rel, bytes] of list) {
          const layer = rel.slice(rel.lastIndexOf('/') + 1);
          const d = await pushImage(client, targets, undefined, TUF_MEDIA_TYPES.target, [
            { name: layer, bytes },
          ]);
          manifests.push({ ...d, annotations: { [TUF_FILENAME_ANNOTATION]: rel } });
        }
        const index = encode({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests });
        await client.pushManifest(targets, tag, index, MEDIA_TYPES.ociIndex);
      }
      pushed.push(name(targets, tag));
    }
  }
  for (const [tag, list] of roles) {
    const layers: Layer[] = list.map(([n, bytes]) => ({ name: n, bytes }));
    const newest = Math.max(...list.map(([n]) => splitName(n).version ?? 0));
    const older = ((newest > 0 ? previous.get(tag) : undefined)?.manifest.layers ?? [])
      .filter((d) => {
        const n = d.annotations?.[TUF_FILENAME_ANNOTATION];
        if (n === undefined || d.mediaType !== TUF_MEDIA_TYPES.metadata) return false;
        const s = /^[1-9][0-9]*\./.test(n) ? splitName(n) : undefined;
        return s?.role === tag && (s.version as number) < newest;
      })
      .sort((a, b) => versionOf(b) - versionOf(a))
      .slice(0, KEEP_ROLE_VERSIONS);
    await pushImage(client, metadata, tag, TUF_MEDIA_TYPES.metadata, [
      ...older.reverse(),
      ...layers,
    ]);
    pushed.push(name(metadata, tag));
  }
  // docker/attest's order: roots (ascending), snapshot, targets, timestamp
  const rank = (n: string) =>
    ['root', 'snapshot', 'targets', 'timestamp'].indexOf(splitName(n).role);
  top.sort(
    ([a], [b]) => rank(a) - rank(b) || (splitName(a).version ?? 0) - (splitName(b).version ?? 0),
  );
  const last = await pushImage(
    client,
    metadata,
    metadata.tag,
    TUF_MEDIA_TYPES.metadata,
    top.map(([n, bytes]) => ({ name: n, bytes })),
  );
  // the registry's 201 is a claim: the publish succeeded when the tag names what was pushed
  const now = await manifestAt(client, metadata, metadata.tag, undefined);
  if (now?.digest !== last.digest)
    throw new OciError(
      'DIGEST_MISMATCH',
      `${where(metadata, metadata.tag)}: the registry accepted the metadata image ${last.digest} but the tag names ${now?.digest ?? 'nothing'}`,
    );
  pushed.push(name(metadata, metadata.tag));
  return pushed;
}

function versionOf(d: Descriptor): number {
  return splitName(d.annotations?.[TUF_FILENAME_ANNOTATION] as string).version ?? 0;
}
