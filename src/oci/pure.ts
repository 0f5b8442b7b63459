/**
 * The pure part of `tufa/oci` (entry `tufa/oci`): references, image locations, manifests and
 * digests. No TUF, no transport, no HTTP stack: a registry or an admission controller can parse
 * and check references and manifests without loading a client. The registry client, credentials,
 * OCI layouts and image building are `tufa/oci/registry` (index.ts).
 */
export { OciError, type OciErrorCode } from './errors.js';
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
export { formatLocation, type ImageLocation, parseLocation } from './transport.js';
