import type { CredentialLookup } from '../transport/index.js';

/** Defaults of the TUF client, in one typed object. Sizes in bytes, times in milliseconds. */
export interface UpdaterConfig {
  /** Root versions fetched in one refresh at most (TUF 5.3.3 "Y"). */
  maxRootRotations: number;
  /** Delegated roles visited in one target search at most (TUF 5.6.7.1). */
  maxDelegations: number;
  /** Read limit for N.root.json (TUF 5.3.3 "W"). */
  rootMaxLength: number;
  /** Read limit for timestamp.json (TUF 5.4.1 "X"). */
  timestampMaxLength: number;
  /** Read limit for snapshot.json when timestamp does not give its length (TUF 5.5.1 "Y"). */
  snapshotMaxLength: number;
  /** Read limit for targets roles when snapshot does not give their length (TUF 5.6.1 "Z"). */
  targetsMaxLength: number;
  /** Whether consistent snapshots decide file names (as root says); false forces plain names. */
  prefixTargetsWithHash: boolean;
}

/** The defaults. */
export const DEFAULT_CONFIG: Readonly<UpdaterConfig> = Object.freeze({
  maxRootRotations: 256,
  maxDelegations: 32,
  rootMaxLength: 512 * 1024,
  timestampMaxLength: 16 * 1024,
  snapshotMaxLength: 16 * 1024 * 1024,
  targetsMaxLength: 16 * 1024 * 1024,
  prefixTargetsWithHash: true,
});

/** Network limits of the HTTP fetcher. */
export interface FetcherConfig {
  /** Time to establish a connection (TCP + TLS). */
  connectTimeout: number;
  /** Longest silence between two chunks of a response (slow retrieval). */
  readGapTimeout: number;
  /** Longest time for one whole request, redirects and body included. */
  totalTimeout: number;
  /** Retries after a 5xx answer or a network error (never after 4xx or a size violation). */
  retries: number;
  /** Redirects followed at most. */
  maxRedirects: number;
  /** User-Agent header. */
  userAgent: string;
  /** Extra CA certificates (PEM) to trust for HTTPS, besides the system's. */
  ca?: string;
  /**
   * Credentials for a server's own 401 challenges (Basic, or Bearer from the realm it names),
   * looked up by its origin; anonymous bearer tokens are asked for without them.
   */
  credentials?: CredentialLookup;
  /** The access a bearer token is asked for when a challenge names none. */
  scope?: string;
}

export const DEFAULT_FETCHER_CONFIG: Readonly<FetcherConfig> = Object.freeze({
  connectTimeout: 10_000,
  readGapTimeout: 15_000,
  totalTimeout: 120_000,
  retries: 2,
  maxRedirects: 5,
  userAgent: 'tufa',
});
