/** Errors of the OCI client. It knows nothing of TUF, so it has its own small hierarchy. */

export type OciErrorCode =
  | 'BAD_REFERENCE'
  | 'LAYOUT_INVALID'
  | 'MANIFEST_INVALID'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'TOO_LARGE'
  | 'NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'REGISTRY_UNAVAILABLE';

/** An OCI client error with a stable code. */
export class OciError extends Error {
  readonly code: OciErrorCode;

  constructor(code: OciErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
