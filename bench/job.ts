/** The job a benchmark client child gets (argv[2], JSON) and the report it prints. */
export interface ClientJob {
  /** true: start from the trusted root only; false: the metadata folder is up to date. */
  cold: boolean;
  metadataDir: string;
  /** Trusted root (cold runs). */
  rootFile: string;
  /** Metadata URL prefix, ending with `/`. */
  metadataUrl: string;
  /** Target URL prefix (tuf-js wants one; nothing is downloaded). */
  targetUrl: string;
  targetDir: string;
  lookupPath: string;
}

export interface ClientReport {
  client: 'tufa' | 'tuf-js';
  found: boolean;
  length: number;
  /** ms from process start until the client's modules were loaded. */
  loadedMs: number;
  initMs: number;
  refreshMs: number;
  lookupMs: number;
  /** ms from process start to the end of the work. */
  endMs: number;
  maxRssKiB: number;
  /** Requests made (tufa only; -1 when unknown). */
  requests: number;
}
