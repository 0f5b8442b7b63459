/**
 * Which origin may receive credentials: the one rule the registry client, the Notary client and
 * the TUF fetcher share (until they share one transport).
 *
 * - A request's headers go on only to the origin it was made to: a redirect to another origin
 *   keeps just the harmless ones ({@link CROSS_ORIGIN_HEADERS}: user agent, content
 *   negotiation, range, cache validators) and drops the rest — `Authorization`, `Cookie`,
 *   `Proxy-Authorization`, and any header a caller added that we cannot know to be harmless
 *   (`X-API-Key`, GitLab's `Private-Token`, `X-JFrog-Art-Api`, …).
 * - A 401 is answered with an origin's credentials only when that origin sent it: a redirect
 *   target (blob storage, a CDN) cannot name where credentials go (ContainerDrip).
 * - The token realm a server's own challenge names may be another host (Docker Hub's is), but
 *   never plain HTTP, except on a loopback host or on the challenging origin itself (which the
 *   caller already speaks plain HTTP to, by its own choice).
 * - No credentials at all for an origin spoken to over plain HTTP off loopback: its challenge
 *   may come from anyone on the path (who could name an https realm of its own), and a Basic
 *   answer would travel in clear ({@link mayHoldCredentials}). Lookups are by origin (scheme,
 *   host, port); callers keyed by host (Docker config) answer only origins this rule allows.
 * Modelled on go-containerregistry `transport/bearer.go`: Authorization only on requests whose
 * host is the registry; a 401 only ever leads to the realm learned from the registry itself.
 */

/**
 * The request headers (lower case) that may follow a redirect to another origin: an allowlist,
 * since any other header may carry a credential.
 */
export const CROSS_ORIGIN_HEADERS: ReadonlySet<string> = new Set([
  'user-agent',
  'accept',
  'accept-encoding',
  'range',
  'if-none-match',
  'if-modified-since',
]);

/** originOf is the origin (`scheme://host:port`) of a URL. */
export function originOf(url: string | URL): string {
  return (typeof url === 'string' ? new URL(url) : url).origin;
}

/**
 * headersForHop returns the headers to send on one hop of a request first made to `origin`:
 * all of them to that origin, only those of {@link CROSS_ORIGIN_HEADERS} to any other.
 */
export function headersForHop(
  origin: string,
  hop: string | URL,
  headers: Readonly<Record<string, string>>,
): Record<string, string> {
  if (originOf(hop) === origin) return { ...headers };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers))
    if (CROSS_ORIGIN_HEADERS.has(k.toLowerCase())) out[k] = v;
  return out;
}

/**
 * mayAnswerChallenge says whether a 401 that `responder` sent may be answered with the
 * credentials of `origin` (the origin the request was made to): only when they are the same.
 */
export function mayAnswerChallenge(origin: string, responder: string | URL): boolean {
  return originOf(responder) === origin;
}

/** isLoopbackHost: `localhost`, 127.0.0.0/8 or `[::1]`, with or without a port. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .replace(/:\d+$/, '')
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  return h === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::1';
}

/**
 * mayHoldCredentials says whether credentials may be looked up for (and sent to) `origin`:
 * https anywhere, plain http only on a loopback host.
 */
export function mayHoldCredentials(origin: URL): boolean {
  return (
    origin.protocol === 'https:' || (origin.protocol === 'http:' && isLoopbackHost(origin.host))
  );
}

/**
 * realmProblem says why the token realm a challenge from `challenger` names may not receive
 * credentials, or undefined when it may: https anywhere; plain http only on a loopback host or
 * on the challenging origin itself.
 */
export function realmProblem(realm: URL, challenger: string | URL): string | undefined {
  if (realm.protocol === 'https:') return undefined;
  if (realm.protocol !== 'http:') return `refusing a token realm over ${realm.protocol}`;
  if (isLoopbackHost(realm.host) || realm.origin === originOf(challenger)) return undefined;
  return 'refusing a token realm over plain http (only loopback hosts may use it)';
}
