/** Re-exported for callers of buildRepository that lay out target files. */
export { consistentTargetName } from '../core/index.js';
export {
  type BuildOptions,
  buildRepository,
  type RoleSigning,
  signEnvelope,
  type TargetInput,
} from './build.js';
export { type KeyProtection, keyFileWarnings, keyProtection } from './key-file.js';
export {
  type GeneratedKey,
  generateKey,
  KEY_TYPES,
  type KeyType,
  PBKDF2_ITERATIONS,
  parsePublicKeyFile,
  publicKeyJson,
  reencryptKey,
} from './keygen.js';
export {
  type PublishResult,
  type PublishTree,
  publishTree,
  publishWorkspace,
  writeTree,
} from './publish.js';
export {
  ExternalCommandSigner,
  KeyObjectSigner,
  publicKeyOf,
  type Signer,
  signerEnvironment,
} from './signer.js';
export {
  type RepositoryStatus,
  type RoleStatus,
  repositoryStatus,
  type ThresholdStatus,
} from './status.js';
export { parseTargetLines } from './target-lines.js';
export {
  type BatchTarget,
  DEFAULT_EXPIRY_DAYS,
  type DelegationSpec,
  type Envelope,
  hashesOf,
  type InitOptions,
  roleFileName,
  sameJson,
  type TargetEntry,
  type TopRole,
  Workspace,
} from './workspace.js';
