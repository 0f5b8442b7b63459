/**
 * tufa: TUF client, signing tools and verify-before-pull for OCI images.
 *
 * The root entry is what an embedder needs to verify: TUF metadata (the trusted set, or the
 * {@link Updater} over a store and a fetcher) and images (the {@link ImageVerifier} under a
 * {@link TrustPolicy}), with the errors they throw. Each error has a stable `code`
 * ({@link ErrorCode}, {@link OciErrorCode}). The rest has entries of its own: `tufa/core`
 * (pure TUF; `tufa/core/node` and `tufa/core/portable` are its crypto backends),
 * `tufa/client`, `tufa/oci` (references, manifests) and `tufa/oci/registry`, `tufa/verify`,
 * `tufa/repository` (signing), `tufa/notary`, `tufa/admission`, `tufa/proxy`.
 *
 * Names are listed one by one: a name added to a module is not public here until it is added.
 */
export {
  DefaultFetcher,
  type Fetcher,
  FsMetadataStore,
  MemoryMetadataStore,
  type MetadataStore,
  Updater,
  type UpdaterOptions,
} from './client/index.js';
export {
  type CryptoBackend,
  checkLengthAndHashes,
  type ErrorCode,
  findTarget,
  Metadata,
  type TargetFile,
  TrustedMetadataSet,
  TufaError,
} from './core/index.js';
export { nodeBackend } from './crypto/index.js';
export { type ManifestSource, RegistryClient, RegistrySource } from './oci/index.js';
export { OciError, type OciErrorCode, Reference } from './oci/pure.js';
export {
  checkManifest,
  ImageVerificationError,
  ImageVerifier,
  type PolicyRule,
  type SignedManifest,
  TrustPolicy,
  type VerifiedImage,
  type VerifierOptions,
} from './verify/index.js';
