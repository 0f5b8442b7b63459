/**
 * Errors, grouped by who is to blame.
 *
 * - {@link RepositoryError}: the repository (or whoever sits between it and us) served metadata or
 *   a target that fails a check. The client may try another source, but never trusts the data.
 * - {@link DownloadError}: the transfer failed (network, HTTP status, size limit, slow server).
 * - {@link MisuseError}: the caller used the API wrongly (a state machine step out of order, an
 *   unsupported option). Wrong argument types raise the built-in `TypeError` / `RangeError`.
 *
 * Every error carries a stable `code`, so the CLI can map codes to exit statuses and tools can
 * match on them without parsing messages.
 */

/** Stable codes of every tufa error. Never renamed once released. */
export type ErrorCode =
  // repository at fault
  | 'METADATA_FORMAT'
  | 'WRONG_TYPE'
  | 'UNSUPPORTED_SPEC_VERSION'
  | 'THRESHOLD_NOT_MET'
  | 'BAD_VERSION'
  | 'ROLLBACK'
  | 'EQUAL_VERSION'
  | 'EXPIRED'
  | 'LENGTH_OR_HASH_MISMATCH'
  | 'UNKNOWN_ROLE'
  | 'TARGET_NOT_FOUND'
  | 'DELEGATION'
  // image verification
  | 'UNSIGNED_IMAGE'
  | 'DIGEST_MISMATCH'
  | 'NO_POLICY'
  | 'REGISTRY'
  // download failed
  | 'DOWNLOAD'
  | 'HTTP_STATUS'
  | 'TOO_LARGE'
  | 'SLOW_RETRIEVAL'
  // local state
  | 'CACHE_LOCKED'
  | 'CACHE'
  // caller misuse
  | 'MISUSE';

const BRAND = Symbol.for('tufa.error');

/** Base of every tufa error: a stable `code`, an optional `cause`, `name` = the class name. */
export class TufaError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** Recognises tufa errors across two loaded copies of the package. */
  static override [Symbol.hasInstance](v: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of instanceof
    if (this !== TufaError) return Function.prototype[Symbol.hasInstance].call(this, v);
    return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** The repository served something that fails verification. */
export class RepositoryError extends TufaError {}

/** Metadata that cannot be parsed or has a field of the wrong type or value. */
export class FormatError extends RepositoryError {
  constructor(message: string, options?: { cause?: unknown; code?: ErrorCode }) {
    super(options?.code ?? 'METADATA_FORMAT', message, options);
  }
}

/** Fewer valid signatures from distinct keys than the role's threshold. */
export class UnsignedMetadataError extends RepositoryError {
  constructor(message: string) {
    super('THRESHOLD_NOT_MET', message);
  }
}

/** A version number that is lower than trusted (rollback) or not the expected one. */
export class BadVersionNumberError extends RepositoryError {
  constructor(message: string, code: 'BAD_VERSION' | 'ROLLBACK' | 'EQUAL_VERSION' = 'BAD_VERSION') {
    super(code, message);
  }
}

/** The new metadata has the same version as the trusted one: nothing to update. */
export class EqualVersionNumberError extends BadVersionNumberError {
  constructor(message: string) {
    super(message, 'EQUAL_VERSION');
  }
}

/** Metadata whose expiry is at or before the reference time. */
export class ExpiredMetadataError extends RepositoryError {
  constructor(message: string) {
    super('EXPIRED', message);
  }
}

/** Bytes whose length or hash differs from what the signed metadata says. */
export class LengthOrHashMismatchError extends RepositoryError {
  constructor(message: string) {
    super('LENGTH_OR_HASH_MISMATCH', message);
  }
}

/** The transfer failed; the data was never seen, so nothing was trusted. */
export class DownloadError extends TufaError {
  constructor(message: string, options?: { cause?: unknown; code?: ErrorCode }) {
    super(options?.code ?? 'DOWNLOAD', message, options);
  }
}

/** The server answered with an HTTP status other than success. */
export class DownloadHttpError extends DownloadError {
  readonly statusCode: number;
  /**
   * The `WWW-Authenticate` challenge of a 401, for callers that can answer it: set only when
   * the origin the request was sent to answered, never for a redirect target's 401.
   */
  readonly challenge: string | undefined;

  constructor(message: string, statusCode: number, challenge?: string) {
    super(message, { code: 'HTTP_STATUS' });
    this.statusCode = statusCode;
    this.challenge = challenge;
  }
}

/** The local cache cannot be used (locked by another process, unreadable, unwritable). */
export class CacheError extends TufaError {
  constructor(message: string, options?: { cause?: unknown; code?: 'CACHE' | 'CACHE_LOCKED' }) {
    super(options?.code ?? 'CACHE', message, options);
  }
}

/** The API was used out of order or with an option it does not support. */
export class MisuseError extends TufaError {
  constructor(message: string) {
    super('MISUSE', message);
  }
}
