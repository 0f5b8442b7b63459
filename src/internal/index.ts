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
export { type LockOptions, readIfExists, withLock, writeFileAtomic } from './fs-atomic.js';
export {
  CREDENTIAL_HEADERS,
  headersForHop,
  isLoopbackHost,
  mayAnswerChallenge,
  originOf,
  realmProblem,
} from './origin.js';
export { redact, redactText } from './redact.js';
