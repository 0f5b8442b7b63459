/** Exit codes and how each error maps to one. */
import { CommanderError } from 'commander';
import { DownloadHttpError, TufaError } from '../core/index.js';
import { OciError } from '../oci/index.js';

/**
 * 0 verified / done, 1 verification refused, 2 usage or configuration (a missing or refused
 * login included), 3 network or registry unavailable.
 */
export const EXIT = { ok: 0, refused: 1, usage: 2, unavailable: 3 } as const;

/** errorCode is the stable code of an error for output (`--json`, one-line refusals). */
export function errorCode(e: unknown): string {
  if (e instanceof TufaError || e instanceof OciError) return e.code;
  if (e instanceof CommanderError) return 'USAGE';
  if (e instanceof TypeError || e instanceof RangeError) return 'USAGE';
  return 'ERROR';
}

/** exitCodeFor maps an error to the CLI's exit code. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) return EXIT.usage;
  if (e instanceof TufaError) {
    if (e.code === 'MISUSE' || e.code === 'CACHE' || e.code === 'CACHE_LOCKED') return EXIT.usage;
    // a login that is missing or refused is configuration, not an outage: retrying cannot help
    if (e instanceof DownloadHttpError && (e.statusCode === 401 || e.statusCode === 403))
      return EXIT.usage;
    if (e.code === 'DOWNLOAD' || e.code === 'HTTP_STATUS' || e.code === 'SLOW_RETRIEVAL')
      return EXIT.unavailable;
    return EXIT.refused;
  }
  if (e instanceof OciError) {
    if (e.code === 'REGISTRY_UNAVAILABLE') return EXIT.unavailable;
    // a login that is missing or refused is configuration, not an outage: retrying cannot help
    if (e.code === 'BAD_REFERENCE' || e.code === 'UNAUTHORIZED') return EXIT.usage;
    return EXIT.refused;
  }
  if (e instanceof TypeError || e instanceof RangeError) return EXIT.usage;
  return EXIT.refused;
}
