/** Helpers shared by the I/O modules (client, repository, …); not part of the public API. */

export {
  type BasicCredentials,
  basicHeader,
  type Challenge,
  parseChallenge,
  requestToken,
  type Token,
  TokenError,
} from './bearer.js';
export {
  type LockOptions,
  readIfExists,
  removeStaleTempFiles,
  withLock,
  writeFileAtomic,
} from './fs-atomic.js';
export { redact } from './redact.js';
