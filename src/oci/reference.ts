/**
 * Image references, as Docker and the distribution project parse them:
 * `[registry[:port]/]repository[:tag][@sha256:<64 hex>]`.
 *
 * Normalization (weak mode, the default): a first path component without `.` or `:` that is
 * not `localhost` is not a registry, so the registry is `docker.io`; single-component
 * repositories on Docker Hub get `library/`; a reference with neither tag nor digest gets
 * `:latest`. Strict mode forbids all three defaults. The registry is lower-cased and loses a
 * default port (`:443`, `:80`): see {@link normalizeRegistry}. Digests are `sha256:` plus 64
 * lowercase hex characters, nothing else. The original string is kept.
 */
// the one file of transport/ the pure part takes: pure text, it imports nothing
import { redactText } from '../transport/redact.js';
import { OciError } from './errors.js';

/** The longest reference parsed, in characters (Kubernetes image names are far shorter). */
export const MAX_REFERENCE_LENGTH = 4096;

/** Characters of a bad reference an error quotes: enough to recognise it, not an echo. */
const QUOTED = 200;

/**
 * quote shows a bad reference in an error: redacted (a URL's user info or query, typed where an
 * image belongs, stays out of messages), then cut to {@link QUOTED} characters. Redacted
 * first: a cut could leave half of a user info, no longer recognisable as one.
 */
function quote(input: string): string {
  const shown = redactText(input);
  return JSON.stringify(
    shown.length <= QUOTED ? shown : `${shown.slice(0, QUOTED)}… (${input.length} characters)`,
  );
}

const DEFAULT_REGISTRY = 'docker.io';
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
/** A tag: 1 to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`. */
export const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * registryProblem gives a registry host (`host[:port]`, lower case) its one spelling, or says
 * why it has none. Two spellings of one registry would let a reference escape the policy rule
 * (or miss the credentials) written for the other, so every spelling that `new URL()` or
 * getaddrinfo would read as the same host is either normalized or refused:
 * - the port is decimal without a leading zero (`:0443` is refused: it is `:443`), 1 to 65535,
 *   and the default ports `:443` and `:80` are dropped;
 * - a host whose last label is numeric is an IPv4 address and must be a dotted quad without
 *   leading zeros (`10.0.5`, `167772165`, `0xa.0.0.5`, `010.0.0.5` are refused);
 * - an IPv6 address gets its canonical form (`[0::1]` is `[::1]`), and an IPv4-mapped one
 *   (`[::ffff:10.0.0.5]`, the IPv4 host by another name) is refused;
 * - Docker Hub's API hosts are `docker.io`.
 */
function registryProblem(host: string): { host: string } | { problem: string } {
  const m = /^(\[[^\]]*\]|[^:[\]]*)(?::([0-9]*))?$/.exec(host);
  if (m === null || !HOST.test(host)) return { problem: 'is not a valid registry host' };
  let name = m[1] as string;
  const port = m[2];
  if (port !== undefined) {
    if (port.length > 1 && port.startsWith('0'))
      return { problem: `port ${port} has a leading zero (write :${Number(port)})` };
    if (Number(port) < 1 || Number(port) > 65535)
      return { problem: `port ${port} is out of range (1 to 65535)` };
  }
  if (name.startsWith('[')) {
    let canonical: string;
    try {
      canonical = new URL(`https://${name}/`).hostname;
    } catch {
      return { problem: 'is not a valid IPv6 address' };
    }
    if (canonical.startsWith('[::ffff:'))
      return { problem: 'is an IPv4-mapped IPv6 address (write the IPv4 address)' };
    name = canonical;
  } else if (/^(?:[0-9]+|0x[0-9a-f]*)$/.test(name.slice(name.lastIndexOf('.') + 1))) {
    const octets = name.split('.');
    if (
      octets.length !== 4 ||
      !octets.every((o) => /^(?:0|[1-9][0-9]{0,2})$/.test(o) && Number(o) <= 255)
    )
      return {
        problem:
          'is not an IPv4 address in dotted-quad form (four decimal numbers 0-255, no leading zeros)',
      };
  }
  const h = port === undefined || port === '443' || port === '80' ? name : `${name}:${port}`;
  return { host: h === 'index.docker.io' || h === 'registry-1.docker.io' ? DEFAULT_REGISTRY : h };
}

/**
 * normalizeRegistry gives a registry host its one spelling, so that policies and credentials
 * match exactly: host names are case-insensitive, the default ports (`:443` for HTTPS, `:80`
 * for HTTP) name the same registry as no port, and Docker Hub's API hosts are `docker.io`.
 * Without this, `registry.example:443/app` would escape a policy rule for `registry.example/…`.
 * Spellings that cannot be normalized safely are refused (see {@link registryProblem}).
 * @throws {@link OciError} `BAD_REFERENCE` naming what is wrong
 */
export function normalizeRegistry(host: string): string {
  const r = registryProblem(host.toLowerCase());
  if ('problem' in r) {
    throw new OciError('BAD_REFERENCE', `registry ${quote(host)} ${r.problem}`);
  }
  return r.host;
}

/** A parsed image reference. */
export class Reference {
  private constructor(
    /** The string as given. */
    readonly original: string,
    readonly registry: string,
    readonly repository: string,
    readonly tag: string | undefined,
    readonly digest: string | undefined,
  ) {}

  /**
   * parse reads a reference.
   * @param strict - forbid the docker.io, `library/` and `:latest` defaults
   * @param registryFirst - the first component is the registry whatever it looks like (`oci://`
   *   URLs, whose syntax names it: `registry/tuf` is not Docker Hub's `registry/tuf`)
   * @throws {@link OciError} `BAD_REFERENCE` naming what is wrong
   */
  static parse(
    input: string,
    options: { strict?: boolean; registryFirst?: boolean } = {},
  ): Reference {
    const bad = (why: string): never => {
      throw new OciError('BAD_REFERENCE', `invalid image reference ${quote(input)}: ${why}`);
    };
    if (input.length === 0 || input.length > MAX_REFERENCE_LENGTH) bad('empty or too long');
    let rest = input;
    let digest: string | undefined;
    const at = rest.indexOf('@');
    if (at >= 0) {
      digest = rest.slice(at + 1);
      rest = rest.slice(0, at);
      if (!DIGEST.test(digest))
        bad('a digest must be sha256: followed by 64 lowercase hex characters');
    }
    let tag: string | undefined;
    const lastSlash = rest.lastIndexOf('/');
    const colon = rest.lastIndexOf(':');
    if (colon > lastSlash) {
      tag = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
      if (!TAG.test(tag)) bad('a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with . or -');
    }
    const parts = rest.split('/');
    let registry: string;
    const first = parts[0] as string;
    const named = first.includes('.') || first.includes(':') || first === 'localhost';
    if (parts.length > 1 && (named || options.registryFirst)) {
      registry = first;
      parts.shift();
    } else {
      if (options.strict) bad('the registry is missing (strict: no docker.io default)');
      registry = DEFAULT_REGISTRY;
    }
    const normalized = registryProblem(registry.toLowerCase());
    if ('problem' in normalized) bad(`${quote(registry)} ${normalized.problem}`);
    registry = (normalized as { host: string }).host;
    if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
      bad(
        'repository path components are lowercase letters and digits, separated by ., _, __ or -',
      );
    }
    if (registry === DEFAULT_REGISTRY && parts.length === 1) {
      if (options.strict) bad('Docker Hub official images need library/ (strict)');
      parts.unshift('library');
    }
    const repository = parts.join('/');
    if (`${registry}/${repository}`.length > 255) bad('the name is longer than 255 characters');
    if (tag === undefined && digest === undefined) {
      if (options.strict) bad('a tag or digest is required (strict: no :latest default)');
      tag = 'latest';
    }
    return new Reference(input, registry, repository, tag, digest);
  }

  /** The fully qualified name: `registry/repository`. */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** The fully qualified reference without digest: `registry/repository:tag` (the TUF target path). */
  get tagged(): string | undefined {
    return this.tag === undefined ? undefined : `${this.name}:${this.tag}`;
  }

  /** pinned is `registry/repository@digest` for a digest (default: this reference's). */
  pinned(digest = this.digest): string {
    if (digest === undefined) throw new OciError('BAD_REFERENCE', `${this.original} has no digest`);
    return `${this.name}@${digest}`;
  }

  /** The normalized full form: `registry/repository[:tag][@digest]`. */
  toString(): string {
    return `${this.name}${this.tag === undefined ? '' : `:${this.tag}`}${this.digest === undefined ? '' : `@${this.digest}`}`;
  }
}
