/** Helpers shared by the I/O modules (client, repository, …); not part of the public API. */

export { childEnvironment, killGroup, NEVER_CHILD_ENV } from './child-env.js';
export {
  type LockOptions,
  readIfExists,
  removeStaleTempFiles,
  withLock,
  writeFileAtomic,
} from './fs-atomic.js';
export { Limiter } from './limiter.js';
export { Metrics } from './metrics.js';
