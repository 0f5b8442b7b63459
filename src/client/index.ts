export { type LockOptions, readIfExists, withLock, writeFileAtomic } from '../internal/index.js';
export { MetadataCache } from './cache.js';
export {
  DEFAULT_CONFIG,
  DEFAULT_FETCHER_CONFIG,
  type FetcherConfig,
  type UpdaterConfig,
} from './config.js';
export { DefaultFetcher, type Fetcher, FileFetcher, HttpFetcher } from './fetcher.js';
export { initMetadataDir, type RequestLog, Updater, type UpdaterOptions } from './updater.js';
