/**
 * The auth layer: answers a server's own `401` challenge with that server's credentials, and
 * nothing else (origin.ts has the rule, after go-containerregistry's `transport/bearer.go`).
 *
 * - Credentials are looked up by the origin a request is made to, and a `401` is answered only
 *   when that same origin sent it; a `401` from a redirect target fails with `UNAUTHORIZED` and
 *   sends nothing anywhere.
 * - Basic: the credentials, to that origin. Bearer: a token from the realm the challenge names
 *   (which may be another host, as Docker Hub's is, but plain http only on loopback or the
 *   challenging origin itself), asked anonymously, with Basic credentials, or with an OAuth2
 *   refresh token; cached per (origin, scope) until 10 s before it expires.
 * - The answered request is sent once more; a second `401` is returned to the caller.
 * Requests to the realm go through the layers below (redirects drop the credentials there too).
 */
import { TransportError } from './errors.js';
import { mayHoldCredentials, realmProblem } from './origin.js';
import { redact } from './redact.js';
import type { Credentials, Transport, TransportRequest, TransportResponse } from './types.js';

/** A parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const SCHEME = new RegExp(`^\\s*(${TOKEN})`);
const PARAM = new RegExp(`^[\\s,]*(${TOKEN})\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^,\\s]*))`);

/**
 * parseChallenge reads the first challenge of a `WWW-Authenticate` header:
 * `Bearer realm="…",service="…",scope="…"`. Parameters end where the next challenge's scheme
 * begins (a token not followed by `=`), so `…, Basic realm="x"` cannot replace the realm.
 */
export function parseChallenge(header: string): Challenge | undefined {
  const m = SCHEME.exec(header);
  if (m === null) return undefined;
  const params: Record<string, string> = {};
  let rest = header.slice(m[0].length);
  for (;;) {
    const p = PARAM.exec(rest);
    if (p === null) break;
    const name = (p[1] as string).toLowerCase();
    // the first occurrence wins
    if (!Object.hasOwn(params, name)) params[name] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
    rest = rest.slice(p[0].length);
  }
  return { scheme: (m[1] as string).toLowerCase(), params };
}

/** basicHeader is an `Authorization: Basic …` value. */
export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')}`;
}

/** Finds the credentials for the server at an origin (`https://host:port`), if any. */
export type CredentialLookup = (origin: URL) => Promise<Credentials | undefined>;

export interface AuthOptions {
  readonly credentials?: CredentialLookup;
  /** Token responses are read up to this many bytes (default 1 MiB). */
  readonly maxTokenBytes?: number;
  /** Deadline of a token request (ms, default 60 s). */
  readonly tokenTimeout?: number;
}

interface Cached {
  readonly header: string;
  readonly expiresAt: number;
}

/** Answers servers' own challenges; see the module comment. */
export class AuthLayer implements Transport {
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly inner: Transport,
    private readonly options: AuthOptions = {},
  ) {}

  close(): Promise<void> {
    return this.inner.close();
  }

  async send(r: TransportRequest): Promise<TransportResponse> {
    const origin = new URL(r.url).origin;
    const key = `${origin}|${r.scope ?? ''}`;
    const cached = this.cache.get(key);
    const first = await this.inner.send(
      cached && cached.expiresAt > Date.now() ? withAuthorization(r, cached.header) : r,
    );
    if (first.status !== 401) return first;
    // A 401 is answered only when the origin asked sent it (not a redirect target).
    if (new URL(first.url).origin !== origin) {
      await first.discard();
      throw new TransportError(
        'UNAUTHORIZED',
        `${redact(first.url)}: HTTP 401 from a redirect target of ${redact(origin)} (credentials are sent only to the origin asked)`,
      );
    }
    const challenge = parseChallenge(first.headers['www-authenticate'] ?? '');
    if (challenge === undefined) return first;
    // the 401's body is dropped whatever the answer (an unread body holds its connection)
    const answer = await this.answer(new URL(r.url), challenge, r).catch(async (e: unknown) => {
      await first.discard();
      throw e;
    });
    if (answer === undefined) return first;
    await first.discard();
    this.cache.set(key, answer);
    return this.inner.send(withAuthorization(r, answer.header));
  }

  /** answer turns a challenge into an Authorization value, or undefined when it cannot. */
  private async answer(url: URL, ch: Challenge, r: TransportRequest): Promise<Cached | undefined> {
    // none for plain http off loopback (see origin.ts), whoever the lookup would name
    const creds = mayHoldCredentials(url) ? await this.options.credentials?.(url) : undefined;
    if (ch.scheme === 'basic') {
      if (creds?.username === undefined) return undefined;
      return { header: basicHeader(creds), expiresAt: Number.POSITIVE_INFINITY };
    }
    if (ch.scheme !== 'bearer') return undefined;
    return this.token(url, ch.params, r.scope, creds, r.signal);
  }

  /** token asks the realm for a bearer token. */
  private async token(
    challenger: URL,
    params: Readonly<Record<string, string>>,
    scope: string | undefined,
    creds: Credentials | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Cached> {
    const realm = realmOf(challenger, params);
    const req = tokenRequest(realm, params, params.scope ?? scope, creds, {
      maxLength: this.options.maxTokenBytes ?? 1024 * 1024,
      deadline: performance.now() + (this.options.tokenTimeout ?? 60_000),
      ...(signal ? { signal } : {}),
    });
    const where = `token service ${redact(realm.href)}`;
    const res = await this.inner.send(req);
    const body = await res.bytes().catch((e: unknown) => {
      throw e instanceof TransportError && e.code === 'TOO_LARGE'
        ? new TransportError('UNAUTHORIZED', `${where}: response too large`)
        : e;
    });
    if (res.status !== 200) {
      if (res.status >= 500) throw new TransportError('NETWORK', `${where}: HTTP ${res.status}`);
      throw new TransportError('UNAUTHORIZED', `${where}: HTTP ${res.status}`);
    }
    return tokenAnswer(body, where);
  }
}

/** realmOf is the realm a bearer challenge names, if it is one credentials may go to. */
function realmOf(challenger: URL, params: Readonly<Record<string, string>>): URL {
  if (!params.realm) {
    throw new TransportError(
      'UNAUTHORIZED',
      `${redact(challenger.href)}: the bearer challenge names no realm`,
    );
  }
  let realm: URL;
  try {
    realm = new URL(params.realm);
  } catch {
    throw new TransportError(
      'UNAUTHORIZED',
      `${redact(challenger.href)}: the bearer realm is not a URL`,
    );
  }
  const problem = realmProblem(realm, challenger);
  if (problem !== undefined) {
    throw new TransportError('UNAUTHORIZED', `${problem}: ${redact(params.realm)}`);
  }
  return realm;
}

/** tokenRequest is the request for a token: a refresh-token grant, or a GET with Basic. */
function tokenRequest(
  realm: URL,
  params: Readonly<Record<string, string>>,
  wanted: string | undefined,
  creds: Credentials | undefined,
  limits: Pick<TransportRequest, 'maxLength' | 'deadline' | 'signal'>,
): TransportRequest {
  let req: TransportRequest;
  if (creds?.identityToken) {
    // OAuth2 refresh-token grant, as Docker does with an identity token
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: creds.identityToken,
      client_id: 'tufa',
    });
    if (params.service) form.set('service', params.service);
    if (wanted) form.set('scope', wanted);
    req = {
      method: 'POST',
      url: realm.href,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new TextEncoder().encode(form.toString()),
      ...limits,
    };
  } else {
    if (params.service) realm.searchParams.set('service', params.service);
    if (wanted) realm.searchParams.set('scope', wanted);
    req = {
      url: realm.href,
      headers: creds?.username === undefined ? {} : { authorization: basicHeader(creds) },
      ...limits,
    };
  }
  return req;
}

/** tokenAnswer reads a token service's 200 answer into an Authorization value. */
function tokenAnswer(body: Uint8Array, where: string): Cached {
  let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new TransportError('UNAUTHORIZED', `${where}: not JSON`);
  }
  const token = parsed.token ?? parsed.access_token;
  if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) {
    throw new TransportError('UNAUTHORIZED', `${where}: no usable token`);
  }
  // Tokens live expires_in seconds (60 by default); renew 10 s early.
  const life = typeof parsed.expires_in === 'number' ? parsed.expires_in : 60;
  return { header: `Bearer ${token}`, expiresAt: Date.now() + Math.max(0, life - 10) * 1000 };
}

function withAuthorization(r: TransportRequest, header: string): TransportRequest {
  return { ...r, headers: { ...r.headers, authorization: header } };
}
