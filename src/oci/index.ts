/**
 * `tufa/oci/registry`: the registry client, credentials, OCI image layouts and image building,
 * with everything of the pure part (pure.ts, entry `tufa/oci`) again for one-stop imports.
 */

export { type BuiltImage, buildImage, type ImageFile, writeLayoutImages } from './build.js';
export {
  type CredentialProvider,
  type Credentials,
  DockerConfigCredentials,
  StaticCredentials,
} from './credentials.js';
export { extractArchive, type LayoutImage, LayoutWriter, readLayout } from './layout.js';
export * from './pure.js';
export {
  type FetchedManifest,
  RegistryClient,
  type RegistryClientOptions,
  type RepositoryRef,
} from './registry.js';
export {
  imageReference,
  LayoutSource,
  type ManifestSource,
  type OpenedImage,
  openImage,
  RegistrySource,
  resolveImage,
  type SourceRequest,
} from './source.js';
export {
  metadataTag,
  ociBaseUrl,
  parseOciRepository,
  parseOciUrl,
  pushTufRepository,
  TUF_FILENAME_ANNOTATION,
  TUF_MEDIA_TYPES,
  type TufImageRef,
  TufRegistryReader,
  targetPlace,
} from './tuf-layout.js';
