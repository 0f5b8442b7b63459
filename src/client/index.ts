export {
  DEFAULT_CONFIG,
  DEFAULT_FETCHER_CONFIG,
  type FetcherConfig,
  type UpdaterConfig,
} from './config.js';
export { DefaultFetcher, type Fetcher, FileFetcher } from './fetcher.js';
export { HttpFetcher } from './http-fetcher.js';
export { isOciUrl, RegistryFetcher } from './registry-fetcher.js';
export { FsMetadataStore, MemoryMetadataStore, type MetadataStore } from './store.js';
export { initMetadataDir, type RequestLog, Updater, type UpdaterOptions } from './updater.js';
