export {
  digestOfTarget,
  lookupTag,
  NotaryClient,
  type NotaryClientOptions,
  type NotaryCollection,
  type NotaryTrust,
  ROOT_KEY_ID,
  type SignedTag,
  type SkippedRole,
  signedTags,
} from './client.js';
export {
  canonicalKeyId,
  certificates,
  NotaryKeyRing,
  notaryKeyId,
  rootCertificateProblem,
} from './keys.js';
export {
  DELEGATION_NAME,
  type NotaryDocument,
  type NotaryKey,
  type NotaryRoot,
  type NotarySnapshot,
  type NotaryTarget,
  type NotaryTargets,
  type NotaryTimestamp,
  parseNotary,
} from './model.js';
