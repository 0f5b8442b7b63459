/**
 * One HTTP transport for everything tufa fetches or pushes: TUF metadata and targets, registry
 * manifests and blobs, Notary trust data and token services. Composed by wrapping, from the
 * outside in:
 *
 *     AuthLayer      answers a server's own 401 with that server's credentials (auth.ts)
 *     RetryLayer     idempotent requests again after a network failure or a 5xx (layers.ts)
 *     RedirectLayer  redirects by hand; only harmless headers cross origins (layers.ts)
 *     NodeTransport  one exchange on node:http/https within every limit (node.ts)
 *
 * Callers map {@link TransportError} codes to their own typed errors.
 */
import { AuthLayer, type AuthOptions } from './auth.js';
import { RedirectLayer, RetryLayer } from './layers.js';
import { NodeTransport, type NodeTransportConfig } from './node.js';
import type { Transport } from './types.js';

export {
  AuthLayer,
  type AuthOptions,
  basicHeader,
  type Challenge,
  type CredentialLookup,
  parseChallenge,
} from './auth.js';
export { TransportError, type TransportErrorCode } from './errors.js';
export { RedirectLayer, RetryLayer } from './layers.js';
export { DEFAULT_NODE_CONFIG, NodeTransport, type NodeTransportConfig } from './node.js';
export {
  CROSS_ORIGIN_HEADERS,
  headersForHop,
  isLoopbackHost,
  mayAnswerChallenge,
  mayHoldCredentials,
  originOf,
  realmProblem,
} from './origin.js';
export { escapeControls, redact, redactJson, redactText } from './redact.js';
export type {
  Credentials,
  Method,
  Transport,
  TransportRequest,
  TransportResponse,
} from './types.js';

/** Options of {@link createTransport}. */
export interface TransportOptions extends Partial<NodeTransportConfig>, AuthOptions {
  /** Redirects followed at most (default 5). */
  readonly maxRedirects?: number;
  /** Retries of an idempotent request after a network failure or a 5xx (default 2). */
  readonly retries?: number;
}

/** createTransport builds the standard stack: auth over retries over redirects over node:http. */
export function createTransport(options: TransportOptions = {}): Transport {
  const base = new NodeTransport(options);
  const below = new RetryLayer(
    new RedirectLayer(base, options.maxRedirects ?? 5),
    options.retries ?? 2,
  );
  return new AuthLayer(below, options);
}
