/** Refusals of image verification, in the same code space as the TUF errors. */
import { type ErrorCode, TufaError } from '../core/index.js';

/** An image that may not be deployed: unsigned, another digest, no policy for it. */
export class ImageVerificationError extends TufaError {
  constructor(
    code: Extract<ErrorCode, 'UNSIGNED_IMAGE' | 'DIGEST_MISMATCH' | 'NO_POLICY'>,
    message: string,
  ) {
    super(code, message);
  }
}
