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
import { redactText } from '../transport/index.js';
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
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * normalizeRegistry gives a registry host its one spelling, so that policies and credentials
 * match exactly: host names are case-insensitive, the default ports (`:443` for HTTPS, `:80`
 * for HTTP) name the same registry as no port, and Docker Hub's API hosts are `docker.io`.
 * Without this, `registry.example:443/app` would escape a policy rule for `registry.example/…`.
 */
export function normalizeRegistry(host: string): string {
  const h = host.toLowerCase().replace(/:(?:443|80)$/, '');
  return h === 'index.docker.io' || h === 'registry-1.docker.io' ? DEFAULT_REGISTRY : h;
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
   * @throws {@link OciError} `BAD_REFERENCE` naming what is wrong
   */
  static parse(input: string, options: { strict?: boolean } = {}): Reference {
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
    if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
      registry = first;
      parts.shift();
      if (!HOST.test(registry)) bad(`${quote(registry)} is not a valid registry host`);
    } else {
      if (options.strict) bad('the registry is missing (strict: no docker.io default)');
      registry = DEFAULT_REGISTRY;
    }
    registry = registry.toLowerCase();
    const port = /:(\d+)$/.exec(registry)?.[1];
    if (port !== undefined && Number(port) > 65535) bad(`port ${port} is out of range`);
    if (registry.startsWith('[') && !/^\[[0-9a-f:.]*:[0-9a-f:.]*\](?::\d+)?$/.test(registry)) {
      bad(`${quote(registry)} is not a valid IPv6 address`);
    }
    registry = normalizeRegistry(registry);
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
