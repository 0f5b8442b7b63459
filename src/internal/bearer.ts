/**
 * The Docker registry token flow, shared by the OCI client and the Notary client:
 * `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` → a token from the realm, asked
 * anonymously, with basic credentials, or with an OAuth2 refresh token (an identity token).
 */
import type { Dispatcher } from 'undici';
import { basicHeader, realmProblem, redact } from '../transport/index.js';

export { basicHeader, type Challenge, parseChallenge } from '../transport/index.js';

/** Credentials for a token service or a basic-auth server. */
export interface BasicCredentials {
  readonly username?: string;
  readonly password?: string;
  readonly identityToken?: string;
}

/** A token and when to stop using it. */
export interface Token {
  header: string;
  expiresAt: number;
}

/** The token service failed; `unavailable` tells a network failure from a refusal. */
export class TokenError extends Error {
  constructor(
    message: string,
    readonly unavailable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TokenError';
  }
}

/**
 * requestToken asks a token service for a bearer token.
 * @param params - the challenge's params (`realm`, `service`, `scope`)
 * @param scope - the scope to ask for when the challenge names none
 * @param challenger - the URL whose 401 carried the challenge: the caller answers only its own
 *   origin's challenges, and a plain-HTTP realm is refused unless loopback or that origin
 *   ({@link realmProblem})
 */
export async function requestToken(
  params: Record<string, string>,
  scope: string | undefined,
  creds: BasicCredentials | undefined,
  options: {
    dispatcher?: Dispatcher;
    challenger: string;
    userAgent?: string;
    /** Deadline of the whole exchange (default 60 s): a dripping token service is cut off. */
    signal?: AbortSignal;
  },
): Promise<Token> {
  const signal = options.signal ?? AbortSignal.timeout(60_000);
  if (!params.realm) throw new TokenError('the bearer challenge names no realm', false);
  let realm: URL;
  try {
    realm = new URL(params.realm);
  } catch {
    throw new TokenError('the bearer challenge names a realm that is not a URL', false);
  }
  const problem = realmProblem(realm, options.challenger);
  if (problem !== undefined) throw new TokenError(`${problem}: ${redact(params.realm)}`, false);
  const wanted = params.scope ?? scope;
  // loaded on first use: undici costs ~90 ms to load, which TUF-only processes never pay
  const { request } = await import('undici');
  const headers: Record<string, string> = { 'user-agent': options.userAgent ?? 'tufa' };
  let res: Dispatcher.ResponseData;
  try {
    if (creds?.identityToken) {
      // OAuth2 refresh-token grant, as Docker does with an identity token
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        client_id: 'tufa',
      });
      if (params.service) form.set('service', params.service);
      if (wanted) form.set('scope', wanted);
      res = await request(realm, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        signal,
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      });
    } else {
      if (params.service) realm.searchParams.set('service', params.service);
      if (wanted) realm.searchParams.set('scope', wanted);
      if (creds?.username !== undefined) headers.authorization = basicHeader(creds);
      res = await request(realm, {
        method: 'GET',
        headers,
        signal,
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      });
    }
  } catch (cause) {
    throw new TokenError(
      `token service ${redact(realm.toString())}: ${(cause as Error).message}`,
      true,
      { cause },
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const c of res.body) {
      total += (c as Buffer).length;
      if (total > 1024 * 1024) {
        res.body.on('error', () => undefined);
        res.body.destroy();
        throw new TokenError(
          `token service ${redact(realm.toString())}: response too large`,
          false,
        );
      }
      chunks.push(c as Buffer);
    }
  } catch (e) {
    if (e instanceof TokenError) throw e;
    throw new TokenError(
      `token service ${redact(realm.toString())}: ${(e as Error).message}`,
      true,
      { cause: e },
    );
  }
  if (res.statusCode !== 200) {
    throw new TokenError(
      `token service ${redact(realm.toString())}: HTTP ${res.statusCode}`,
      res.statusCode >= 500,
    );
  }
  let body: { token?: string; access_token?: string; expires_in?: number };
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new TokenError(`token service ${redact(realm.toString())}: not JSON`, false);
  }
  const token = body.token ?? body.access_token;
  if (!token) throw new TokenError(`token service ${redact(realm.toString())}: no token`, false);
  // Tokens live expires_in seconds (60 by default); renew 10 s early.
  const life =
    Math.max(0, (typeof body.expires_in === 'number' ? body.expires_in : 60) - 10) * 1000;
  return { header: `Bearer ${token}`, expiresAt: Date.now() + life };
}
