export { checkManifest, type SignedManifest } from './check-manifest.js';
export { ImageVerificationError } from './errors.js';
export {
  type NotarySource,
  type PolicyRule,
  problemText,
  TrustPolicy,
  type TufSource,
} from './policy.js';
export { type BlobProgress, type PullOptions, type PullResult, pullImage } from './pull.js';
export { ImageVerifier, type VerifiedImage, type VerifierOptions } from './verify-image.js';
