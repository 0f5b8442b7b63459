export { type RoleType, Signed, type SignedHeader, SPEC_MAJOR, TOP_LEVEL_ROLES } from './base.js';
export {
  type DelegatedChild,
  DelegatedRole,
  Delegations,
  SuccinctRoles,
  TargetPathHash,
} from './delegations.js';
export { Metadata, type Signature, type SignedTypes } from './envelope.js';
export { formatExpires, parseExpires } from './fields.js';
export {
  checkLengthAndHashes,
  type HashEncoding,
  MetaFile,
  parseHashes,
  TargetFile,
} from './files.js';
export { isTargetInPathPattern, matchSegment } from './pattern.js';
export { Role, type RoleKeys } from './role.js';
export { Root } from './root.js';
export { Snapshot } from './snapshot.js';
export { Targets } from './targets.js';
export { Timestamp } from './timestamp.js';
