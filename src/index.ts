/**
 * tufa: TUF client, signing tools and verify-before-pull for OCI images.
 * The barrel exports the core, the TUF client and image verification; the other modules have
 * their own entry points (`tufa/repository`, `tufa/oci`, `tufa/notary`, `tufa/admission`).
 */
export * from './client/index.js';
export * from './core/index.js';
export { nodeBackend } from './crypto/index.js';
export { OciError, type OciErrorCode, Reference } from './oci/pure.js';
export * from './verify/index.js';
