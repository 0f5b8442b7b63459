/**
 * The trust policy: which trust source governs which images. A JSON file of rules
 *
 *     { "rules": [
 *       { "match": "ghcr.io/acme/**", "tuf": { "metadataUrl": "https://…/metadata/", "root": "root.json" } },
 *       { "match": "ghcr.io/team/**", "tuf": { "metadataUrl": "oci://ghcr.io/team/tuf:latest", "root": "root.json" } },
 *       { "match": "registry.example/legacy/*", "notary": { "server": "https://notary.example", "rootKeys": ["…"] } } ] }
 *
 * Patterns match the fully qualified repository name (`registry/repository`): `*` matches within
 * one path segment, `**` matches one or more whole segments, everything else is literal. The most
 * specific rule wins (most literal characters; then fewest `*` characters, a `**` counting two;
 * then the first listed).
 * No match means deny. Relative file paths in a rule are relative to the policy file (its real
 * path, symlinks resolved).
 *
 * Patterns are lower case (names are), `**` is a whole segment, and the registry of a pattern
 * is normalized like a reference's (`host:443/…` is `host/…`; `host:0443`, `10.0.5` refused).
 * A pattern that could never match a name is refused: no registry host first (`acme/app`),
 * `docker.io/nginx` (Docker Hub names are `docker.io/library/nginx`), a tag or digest. Two rules of different trust
 * sources that overlap load with a warning ({@link TrustPolicy.warnings}).
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { MisuseError } from '../core/index.js';
import { normalizeRegistry, ociBaseUrl, parseOciUrl } from '../oci/index.js';
import { redact } from '../transport/index.js';

/** A trusted root or CA certificates: the bytes, or the file (absolute path) holding them. */
export type TrustAnchor = Uint8Array | string;

/** anchor reads a rule's root or CA: bytes as given, a non-empty file name resolved. */
function anchor(v: unknown, baseDir: string): TrustAnchor | undefined {
  if (v instanceof Uint8Array) return v.length > 0 ? v : undefined;
  return typeof v === 'string' && v !== '' ? resolve(baseDir, v) : undefined;
}

export interface TufSource {
  readonly kind: 'tuf';
  /**
   * Metadata URL prefix (ends with `/`): http(s), file, or `oci://registry/repository:tag/` for
   * a TUF repository stored in a registry (docker/attest's layout).
   */
  readonly metadataUrl: string;
  /**
   * The trusted root: its bytes, or the file holding it (absolute path), which the verifier
   * reads with the reader it is given (files are the caller's concern).
   */
  readonly root: TrustAnchor;
}

export interface NotarySource {
  readonly kind: 'notary';
  readonly server: string;
  readonly rootKeys: readonly string[];
  /** CA certificates (PEM) the root certificate must chain to: bytes, or a file. */
  readonly rootCa?: TrustAnchor;
  /** CA certificates (PEM) for the notary server's TLS certificate, besides the system's. */
  readonly serverCa?: TrustAnchor;
  readonly tofu: boolean;
}

/** One rule of a {@link TrustPolicy}: the images it matches and where their trust comes from. */
export interface PolicyRule {
  readonly match: string;
  readonly source: TufSource | NotarySource;
  /** Position in the file (ties go to the first). */
  readonly index: number;
}

/**
 * normalizePattern gives a pattern's registry (its first segment) the spelling references get:
 * `registry.example:443/**` is `registry.example/**`. A first segment with a wildcard keeps its
 * host part as written; its port, if literal, follows the same rules.
 * @throws {@link MisuseError} for a registry spelling a reference would refuse (`:0443`, `10.0.5`)
 */
function normalizePattern(pattern: string): string {
  const slash = pattern.indexOf('/');
  if (slash < 0) return pattern;
  const first = pattern.slice(0, slash);
  const rest = pattern.slice(slash);
  try {
    if (!first.includes('*')) return `${normalizeRegistry(first)}${rest}`;
    const port = /:([0-9]+)$/.exec(first);
    if (port === null) return pattern;
    // the port alone, checked on a stand-in host
    const normalized = normalizeRegistry(`registry.invalid:${port[1]}`);
    if (normalized === 'registry.invalid') {
      // `*:443` would become `*`, which also matches `host:5000`: a wider rule than written
      throw new Error(
        `:${port[1]} is the default port, which references drop; a wildcard host with it would match every port (write the host without the port)`,
      );
    }
    return `${first.slice(0, port.index)}${normalized.slice('registry.invalid'.length)}${rest}`;
  } catch (e) {
    throw new MisuseError(`policy: pattern ${JSON.stringify(pattern)}: ${(e as Error).message}`);
  }
}

/** compile checks a pattern as written and returns the expression of its normalized form. */
function compile(pattern: string): RegExp {
  if (!/^[a-z0-9.\-_:/*[\]]+$/i.test(pattern) || pattern.includes('***')) {
    throw new MisuseError(
      `policy: pattern ${JSON.stringify(pattern)} has characters a repository name cannot have`,
    );
  }
  // Names are lower case (references lower-case the registry; repositories cannot have
  // capitals): a rule with a capital would never match, and a broader rule would govern.
  if (/[A-Z]/.test(pattern)) {
    throw new MisuseError(
      `policy: pattern ${JSON.stringify(pattern)} has an upper-case letter: repository names are lower case, so it would never match`,
    );
  }
  const segments = pattern.split('/');
  // `**` inside a segment would match across segments (`ghcr.io/acme**` matches
  // `ghcr.io/acme-evil/app`).
  if (segments.some((seg) => seg.includes('**') && seg !== '**')) {
    throw new MisuseError(
      `policy: pattern ${JSON.stringify(pattern)}: \`**\` must be a whole path segment (write a/** or a/*-x, not a**)`,
    );
  }
  // Patterns that could never match a name (a rule nobody notices is dead: a broader one
  // governs). A name is `registry/repository`: its first segment is a host (with `.` or `:`,
  // or `localhost`), it has no tag or digest, and Docker Hub repositories have two segments.
  const never = (why: string): never => {
    throw new MisuseError(
      `policy: pattern ${JSON.stringify(pattern)} never matches an image name: ${why}`,
    );
  };
  const first = segments[0] as string;
  if (pattern !== '**') {
    if (segments.length < 2 || segments.some((seg) => seg === ''))
      never('write registry/repository (a name has a registry and a repository, no empty segment)');
    if (!(first === '*' || first === '**' || first === 'localhost' || /[.:]/.test(first))) {
      never(
        `${JSON.stringify(first)} is not a registry host (write docker.io/${first}/… for Docker Hub)`,
      );
    }
    if (segments.slice(1).some((seg) => /[:[\]]/.test(seg)))
      never('a pattern matches repository names, which have no tag, digest or `:`');
  }
  const p = normalizePattern(pattern);
  if (p.startsWith('docker.io/') && segments.length === 2 && segments[1] !== '**')
    never(`Docker Hub names have two segments (write docker.io/library/${segments[1]})`);
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '*' && p[i + 1] === '*') {
      re += '[^/]+(?:/[^/]+)*';
      i++;
    } else if (c === '*') {
      re += '[^/]*';
    } else {
      re += c.replace(/[.\\+?^${}()|[\]]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

/**
 * reaches tells whether the product of two patterns' automata, started at state (0, 0), can
 * reach (lengthA, lengthB); `moves` gives the states one step from (i, j).
 */
function reaches(
  lengthA: number,
  lengthB: number,
  moves: (i: number, j: number) => Array<[number, number]>,
): boolean {
  const seen = new Set<number>();
  const stack: Array<[number, number]> = [[0, 0]];
  while (stack.length > 0) {
    const [i, j] = stack.pop() as [number, number];
    const key = i * (lengthB + 1) + j;
    if (seen.has(key)) continue;
    seen.add(key);
    if (i === lengthA && j === lengthB) return true;
    stack.push(...moves(i, j));
  }
  return false;
}

/** globsMeet tells whether two one-segment globs (`*` = any run of characters) share a match. */
function globsMeet(a: string, b: string): boolean {
  return reaches(a.length, b.length, (i, j) => {
    const ca = a[i];
    const cb = b[j];
    const next: Array<[number, number]> = [];
    if (ca === '*') next.push([i + 1, j]);
    if (cb === '*') next.push([i, j + 1]);
    if (ca !== undefined && cb !== undefined) {
      if (ca === '*' && cb !== '*') next.push([i, j + 1]);
      else if (cb === '*' && ca !== '*') next.push([i + 1, j]);
      else if (ca === cb) next.push([i + 1, j + 1]);
    }
    return next;
  });
}

/** patternsMeet tells whether some name matches both patterns (`**` = one or more segments). */
function patternsMeet(p: string, q: string): boolean {
  const a = p.split('/');
  const b = q.split('/');
  return reaches(a.length, b.length, (i, j) => {
    const sa = a[i];
    const sb = b[j];
    if (sa === undefined || sb === undefined) return [];
    // one segment consumed by both; `**` may also stay to consume more
    if (sa !== '**' && sb !== '**' && !globsMeet(sa, sb)) return [];
    const nextA = sa === '**' ? [i, i + 1] : [i + 1];
    const nextB = sb === '**' ? [j, j + 1] : [j + 1];
    return nextA.flatMap((x) => nextB.map((y): [number, number] => [x, y]));
  });
}

function describeSource(s: TufSource | NotarySource): string {
  // URLs in warnings lose any credentials (warnings go to stderr and logs)
  return s.kind === 'tuf' ? `tuf ${redact(s.metadataUrl)}` : `notary ${redact(s.server)}`;
}

/**
 * specificity ranks patterns: more literal characters first, then fewer `*` characters (a `**`
 * counts two, so `ghcr.io/*` beats `ghcr.io/**` and `*\/app` beats `**\/app` whatever their
 * order); equal ranks go to the first listed.
 */
function specificity(pattern: string): [number, number] {
  const stars = pattern.replace(/[^*]/g, '').length;
  return [pattern.length - stars, -stars];
}

/** problemText is one problem of a policy as a line: `file: rules[0].match: …`. */
export function problemText(source: string, p: { path: string; message: string }): string {
  return `${source}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`;
}

/** A parsed trust policy. */
export class TrustPolicy {
  private readonly compiled: Array<{ rule: PolicyRule; re: RegExp; score: [number, number] }>;
  /**
   * Things that load but may not be meant: two rules of different trust sources that both
   * match some names (the most specific rule decides each name). The CLI prints them.
   */
  readonly warnings: readonly string[];

  constructor(
    readonly rules: readonly PolicyRule[],
    source = 'policy',
  ) {
    this.compiled = rules.map((rule) => {
      const re = compile(rule.match);
      return { rule, re, score: specificity(normalizePattern(rule.match)) };
    });
    const warnings: string[] = [];
    for (const [n, r] of rules.entries()) {
      for (const s of rules.slice(n + 1)) {
        if (JSON.stringify(r.source) === JSON.stringify(s.source)) continue;
        if (!patternsMeet(normalizePattern(r.match), normalizePattern(s.match))) continue;
        warnings.push(
          `${source}: rules[${r.index}] (${JSON.stringify(r.match)}, ${describeSource(r.source)}) and rules[${s.index}] (${JSON.stringify(s.match)}, ${describeSource(s.source)}) overlap: names matching both are governed by the more specific one, with its trust source`,
        );
      }
    }
    this.warnings = warnings;
  }

  /**
   * load reads a policy file, as given (`/dev/stdin` and `<(…)` work). Relative paths in it
   * resolve against the folder of the real file when it is a regular file (a symlink to the
   * policy is followed first), else against the current folder.
   * @throws {@link MisuseError} `MISUSE` when the file cannot be read, is not JSON or is not a
   *   valid policy (naming where)
   */
  static async load(file: string): Promise<TrustPolicy> {
    const r = await TrustPolicy.checkFile(file);
    if (r.policy === undefined) {
      throw new MisuseError(r.problems.map((p) => problemText(file, p)).join('\n'));
    }
    return r.policy;
  }

  /** checkFile reads a policy file as {@link load} does and reports every problem in it. */
  static async checkFile(
    file: string,
  ): Promise<{ policy?: TrustPolicy; problems: Array<{ path: string; message: string }> }> {
    let text: string;
    let baseDir: string;
    try {
      text = await readFile(file, 'utf8');
      baseDir = (await stat(file)).isFile() ? dirname(await realpath(file)) : process.cwd();
    } catch (cause) {
      throw new MisuseError(`policy ${file}: cannot read it (${(cause as Error).message})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      return { problems: [{ path: '', message: `not valid JSON (${(cause as Error).message})` }] };
    }
    return TrustPolicy.check(json, baseDir, file);
  }

  /**
   * fromJSON checks a policy document; file names resolve against `baseDir`. A document built
   * in code may give a trusted root or CA certificates as bytes instead of a file.
   * @throws {@link MisuseError} `MISUSE` naming every problem with its JSON path
   */
  static fromJSON(json: unknown, baseDir: string, source = 'policy'): TrustPolicy {
    const r = TrustPolicy.check(json, baseDir, source);
    if (r.policy === undefined) {
      throw new MisuseError(r.problems.map((p) => problemText(source, p)).join('\n'));
    }
    return r.policy;
  }

  /**
   * check reads a policy document and reports every problem (a wrong type, a missing or unknown
   * field, a pattern that never matches) with its JSON path; the policy only when there is none.
   */
  static check(
    json: unknown,
    baseDir: string,
    source = 'policy',
  ): { policy?: TrustPolicy; problems: Array<{ path: string; message: string }> } {
    const problems: Array<{ path: string; message: string }> = [];
    const fail = (path: string, message: string): undefined => {
      problems.push({ path, message });
      return undefined;
    };
    // a field nobody reads is a mistake somebody made (a typo'd "rootkeys" would mean no pin)
    const known = (o: object, where: string, fields: readonly string[]) => {
      for (const k of Object.keys(o)) {
        if (!fields.includes(k))
          fail(where === '' ? k : `${where}.${k}`, `unknown field (expected ${fields.join(', ')})`);
      }
    };
    const isObject = (v: unknown): v is Record<string, unknown> =>
      typeof v === 'object' && v !== null && !Array.isArray(v);
    if (!isObject(json)) return { problems: [{ path: 'rules', message: 'expected an array' }] };
    known(json, '', ['rules']);
    const rules = json.rules;
    if (!Array.isArray(rules))
      return { problems: [...problems, { path: 'rules', message: 'expected an array' }] };
    const parsed = rules.map((o: unknown, index): PolicyRule | undefined => {
      const where = `rules[${index}]`;
      if (!isObject(o)) return fail(where, 'expected an object');
      known(o, where, ['match', 'tuf', 'notary']);
      let match: string | undefined;
      if (typeof o.match !== 'string' || o.match.length === 0) {
        fail(`${where}.match`, 'expected a pattern');
      } else {
        try {
          compile(o.match);
          match = o.match;
        } catch (e) {
          fail(`${where}.match`, (e as Error).message.replace(/^policy: /, ''));
        }
      }
      if ((o.tuf === undefined) === (o.notary === undefined))
        return fail(where, 'expected exactly one of "tuf" and "notary"');
      if (o.tuf !== undefined) {
        const tuf = o.tuf;
        if (!isObject(tuf)) return fail(`${where}.tuf`, 'expected an object');
        known(tuf, `${where}.tuf`, ['metadataUrl', 'root']);
        let metadataUrl: string | undefined;
        if (typeof tuf.metadataUrl === 'string' && tuf.metadataUrl.startsWith('oci://')) {
          // a TUF repository in a registry: oci://REGISTRY/REPOSITORY[:TAG], kept as the
          // metadata base URL `oci://registry/repository:tag/` (normalized, tag explicit)
          try {
            metadataUrl = ociBaseUrl(parseOciUrl(tuf.metadataUrl));
          } catch (e) {
            fail(`${where}.tuf.metadataUrl`, (e as Error).message);
          }
        } else if (
          typeof tuf.metadataUrl === 'string' &&
          /^(https?|file):\/\/.+\/$/.test(tuf.metadataUrl)
        ) {
          metadataUrl = tuf.metadataUrl;
        } else {
          fail(
            `${where}.tuf.metadataUrl`,
            'expected an http(s) or file URL ending with /, or oci://REGISTRY/REPOSITORY[:TAG]',
          );
        }
        const root = anchor(tuf.root, baseDir);
        if (root === undefined) fail(`${where}.tuf.root`, 'expected the trusted root file');
        if (metadataUrl === undefined || root === undefined || match === undefined)
          return undefined;
        return {
          match,
          index,
          source: {
            kind: 'tuf',
            metadataUrl,
            root,
          },
        };
      }
      const n = o.notary;
      if (!isObject(n)) return fail(`${where}.notary`, 'expected an object');
      known(n, `${where}.notary`, ['server', 'rootKeys', 'rootCa', 'serverCa', 'tofu']);
      const before = problems.length;
      if (typeof n.server !== 'string' || !/^https?:\/\//.test(n.server))
        fail(`${where}.notary.server`, 'expected an http(s) URL');
      if (
        n.rootKeys !== undefined &&
        !(Array.isArray(n.rootKeys) && n.rootKeys.every((k) => typeof k === 'string' && k !== ''))
      ) {
        fail(`${where}.notary.rootKeys`, 'expected an array of key IDs');
      }
      const rootCa = anchor(n.rootCa, baseDir);
      const serverCa = anchor(n.serverCa, baseDir);
      if (n.rootCa !== undefined && rootCa === undefined) {
        fail(`${where}.notary.rootCa`, 'expected the CA certificate file');
      }
      if (n.serverCa !== undefined && serverCa === undefined) {
        fail(`${where}.notary.serverCa`, 'expected the server CA certificate file');
      }
      if (n.tofu !== undefined && typeof n.tofu !== 'boolean') {
        fail(`${where}.notary.tofu`, 'expected true or false');
      }
      const rootKeys = Array.isArray(n.rootKeys) ? (n.rootKeys as string[]) : [];
      const tofu = n.tofu === true;
      if (rootKeys.length === 0 && n.rootCa === undefined && !tofu) {
        fail(
          `${where}.notary`,
          'expected rootKeys or rootCa (trust on first use only with "tofu": true)',
        );
      }
      if (problems.length > before || match === undefined) return undefined;
      return {
        match,
        index,
        source: {
          kind: 'notary',
          server: n.server as string,
          rootKeys,
          ...(rootCa === undefined ? {} : { rootCa }),
          ...(serverCa === undefined ? {} : { serverCa }),
          tofu,
        },
      };
    });
    if (problems.length > 0) return { problems };
    return { policy: new TrustPolicy(parsed as PolicyRule[], source), problems };
  }

  /** match returns the most specific rule for a repository name, or undefined (= deny). */
  match(name: string): PolicyRule | undefined {
    return this.matching(name)[0];
  }

  /**
   * matching returns every rule whose pattern matches a repository name, the governing one
   * first: most literal characters, then fewest `*` (a `**` counts two), then the first listed.
   */
  matching(name: string): PolicyRule[] {
    // the caller's name is normally a Reference's (already normalized); normalize anyway
    const slash = name.indexOf('/');
    if (slash > 0) {
      try {
        name = `${normalizeRegistry(name.slice(0, slash))}${name.slice(slash)}`;
      } catch {
        return []; // a registry no reference can name: deny
      }
    }
    return this.compiled
      .filter((c) => c.re.test(name))
      .sort(
        (a, b) => b.score[0] - a.score[0] || b.score[1] - a.score[1] || a.rule.index - b.rule.index,
      )
      .map((c) => c.rule);
  }

  /** specificity of a rule's pattern: [literal characters, -stars] (higher governs). */
  static specificity(rule: PolicyRule): [number, number] {
    return specificity(normalizePattern(rule.match));
  }

  /** describe names a rule's trust source, without credentials. */
  static describe(rule: PolicyRule): string {
    return describeSource(rule.source);
  }
}
