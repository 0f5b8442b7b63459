/**
 * The transport's vocabulary: one request, one response, one interface that every layer
 * implements and wraps (as go-containerregistry's `http.RoundTripper`s wrap each other).
 */

/** HTTP methods the transport sends. */
export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One request. */
export interface TransportRequest {
  readonly method?: Method;
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /**
   * The most body bytes accepted from a successful (2xx) answer: an announced
   * `Content-Length` above it is refused unread, a longer body is cut off as it streams
   * (`TOO_LARGE`). Answers of other statuses are read up to 64 KiB at most.
   */
  readonly maxLength: number;
  /**
   * When the whole exchange (redirects, retries and the body) must be over, in
   * `performance.now()` milliseconds. Default: now plus the transport's total timeout.
   */
  readonly deadline?: number;
  /** Aborts the exchange (and a body being read). */
  readonly signal?: AbortSignal;
  /**
   * The access a bearer token is asked for when the server's challenge names none, e.g.
   * `repository:team/app:pull`.
   */
  readonly scope?: string;
}

/** One response. Its body must be read or discarded. */
export interface TransportResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  /** The URL that answered (after redirects). */
  readonly url: string;
  /** The body, as it streams, within the request's limits. */
  readonly body: AsyncIterable<Uint8Array>;
  /** bytes reads the whole body (within the limits). */
  bytes(): Promise<Uint8Array>;
  /** discard drops the body and frees the connection. */
  discard(): Promise<void>;
}

/** Sends requests. Every layer is one, and wraps another. */
export interface Transport {
  send(request: TransportRequest): Promise<TransportResponse>;
  /** close frees connections (idempotent). */
  close(): Promise<void>;
}

/** Credentials for one server. */
export interface Credentials {
  readonly username?: string;
  readonly password?: string;
  /** An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the token service. */
  readonly identityToken?: string;
}
