/**
 * The transport's errors. It knows nothing of TUF or OCI: each caller maps these codes to its
 * own typed errors (the TUF fetcher to `DownloadError`, the registry client to `OciError`).
 */

export type TransportErrorCode =
  /** The network failed (refused, reset, closed early): worth a retry. */
  | 'NETWORK'
  /** A connect, read-gap or whole-exchange deadline passed (slow retrieval). */
  | 'TIMEOUT'
  /** The body is longer than the request's limit. */
  | 'TOO_LARGE'
  /** A URL, scheme or redirect the transport will not follow. */
  | 'REFUSED'
  /** Credentials were asked for and cannot (or may not) be given. */
  | 'UNAUTHORIZED'
  /** The caller aborted. */
  | 'ABORTED';

export class TransportError extends Error {
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransportError';
  }

  /** Whether the same request may succeed if sent again. */
  get retryable(): boolean {
    return this.code === 'NETWORK';
  }
}
