/**
 * tufa core: pure TUF verification. No file system, no network, no clock: callers pass bytes and
 * a reference time in, and get verified models or typed errors back.
 */
export { canonicalize, canonicalString } from './canonical-json.js';
export type {
  CryptoBackend,
  HashAlgorithm,
  KeyAlgorithm,
  PublicKeyMaterial,
  VerifyingKey,
} from './crypto/backend.js';
export {
  type FoundTarget,
  findTarget,
  MAX_DELEGATIONS,
  type RoleRequest,
  type WalkOptions,
  walkDelegations,
} from './delegation-walk.js';
export { base64ToBytes, bytesEqual, bytesToBase64, bytesToHex, hexToBytes } from './encoding.js';
export {
  BadVersionNumberError,
  CacheError,
  DownloadError,
  DownloadHttpError,
  EqualVersionNumberError,
  type ErrorCode,
  ExpiredMetadataError,
  FormatError,
  LengthOrHashMismatchError,
  MisuseError,
  RepositoryError,
  TufaError,
  UnsignedMetadataError,
} from './errors.js';
export { type JsonObject, type JsonValue, type ParseJsonOptions, parseJson } from './json.js';
export { computeKeyId, Key, KeyRing } from './keys.js';
export * from './metadata/index.js';
export { consistentTargetName, encodeName } from './names.js';
export { type MetadataParser, TrustedMetadataSet, type TrustedSetOptions } from './trusted-set.js';
export {
  hexSignature,
  type KeyResolver,
  type SignatureDecoder,
  type SignedDocument,
  type VerificationResult,
  verificationResult,
  verifyThreshold,
} from './verify.js';
