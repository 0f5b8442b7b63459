export { type BuiltImage, buildImage, type ImageFile, writeLayoutImages } from './build.js';
export {
  type CredentialProvider,
  type Credentials,
  DockerConfigCredentials,
  StaticCredentials,
} from './credentials.js';
export { OciError, type OciErrorCode } from './errors.js';
export { extractArchive, type LayoutImage, LayoutWriter, readLayout } from './layout.js';
export {
  type Descriptor,
  digestOf,
  type ImageIndex,
  type ImageManifest,
  isDigest,
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPES,
  type Platform,
  parseManifest,
  parsePlatform,
  selectPlatform,
} from './manifest.js';
export { MAX_REFERENCE_LENGTH, normalizeRegistry, Reference } from './reference.js';
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
  type SourceRequest,
} from './source.js';
export { formatLocation, type ImageLocation, parseLocation } from './transport.js';
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
