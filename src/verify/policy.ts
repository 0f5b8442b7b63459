/**
 * The trust policy: which trust source governs which images. A JSON file of rules
 *
 *     { "rules": [
 *       { "match": "ghcr.io/acme/**", "tuf": { "metadataUrl": "https://…/metadata/", "root": "root.json" } },
 *       { "match": "registry.example/legacy/*", "notary": { "server": "https://notary.example", "rootKeys": ["…"] } } ] }
 *
 * Patterns match the fully qualified repository name (`registry/repository`): `*` matches within
 * one path segment, `**` matches one or more whole segments, everything else is literal. The most
 * specific rule wins (most literal characters; then fewest wildcards; then the first listed).
 * No match means deny. Relative file paths in a rule are relative to the policy file.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { MisuseError } from '../core/index.js';

export interface TufSource {
  readonly kind: 'tuf';
  /** Metadata URL prefix (ends with `/`). */
  readonly metadataUrl: string;
  /** The trusted root file (absolute path). */
  readonly root: string;
}

export interface NotarySource {
  readonly kind: 'notary';
  readonly server: string;
  readonly rootKeys: readonly string[];
  readonly rootCa?: string;
  /** CA file (PEM) for the notary server's TLS certificate, besides the system's. */
  readonly serverCa?: string;
  readonly tofu: boolean;
}

export interface PolicyRule {
  readonly match: string;
  readonly source: TufSource | NotarySource;
  /** Position in the file (ties go to the first). */
  readonly index: number;
}

function compile(pattern: string): RegExp {
  if (!/^[a-z0-9.\-_:/*[\]]+$/i.test(pattern) || pattern.includes('***')) {
    throw new MisuseError(
      `policy: pattern ${JSON.stringify(pattern)} has characters a repository name cannot have`,
    );
  }
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
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

function specificity(pattern: string): [number, number] {
  const wildcards = (pattern.match(/\*+/g) ?? []).length;
  return [pattern.replace(/\*/g, '').length, -wildcards];
}

/** A parsed trust policy. */
export class TrustPolicy {
  private readonly compiled: Array<{ rule: PolicyRule; re: RegExp; score: [number, number] }>;

  constructor(readonly rules: readonly PolicyRule[]) {
    this.compiled = rules.map((rule) => ({
      rule,
      re: compile(rule.match),
      score: specificity(rule.match),
    }));
  }

  /** load reads a policy file. */
  static async load(file: string): Promise<TrustPolicy> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      throw new MisuseError(`policy ${file}: cannot read it (${(cause as Error).message})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new MisuseError(`policy ${file}: not valid JSON (${(cause as Error).message})`);
    }
    return TrustPolicy.fromJSON(json, dirname(resolve(file)), file);
  }

  /** fromJSON checks a policy document; paths resolve against `baseDir`. */
  static fromJSON(json: unknown, baseDir: string, source = 'policy'): TrustPolicy {
    const fail = (where: string, what: string): never => {
      throw new MisuseError(`${source}: ${where}: ${what}`);
    };
    const rules = (json as { rules?: unknown })?.rules;
    if (!Array.isArray(rules)) fail('rules', 'expected an array');
    return new TrustPolicy(
      (rules as unknown[]).map((r, index) => {
        const where = `rules[${index}]`;
        const o = r as Record<string, Record<string, unknown> | string | undefined>;
        if (typeof o?.match !== 'string' || o.match.length === 0)
          fail(`${where}.match`, 'expected a pattern');
        const match = o.match as string;
        try {
          compile(match);
        } catch (e) {
          fail(`${where}.match`, (e as Error).message.replace(/^policy: /, ''));
        }
        const tuf = o.tuf as Record<string, unknown> | undefined;
        const notary = o.notary as Record<string, unknown> | undefined;
        if ((tuf === undefined) === (notary === undefined))
          fail(where, 'expected exactly one of "tuf" and "notary"');
        if (tuf !== undefined) {
          if (
            typeof tuf.metadataUrl !== 'string' ||
            !/^(https?|file):\/\/.+\/$/.test(tuf.metadataUrl)
          ) {
            fail(`${where}.tuf.metadataUrl`, 'expected an http(s) or file URL ending with /');
          }
          if (typeof tuf.root !== 'string')
            fail(`${where}.tuf.root`, 'expected the trusted root file');
          return {
            match,
            index,
            source: {
              kind: 'tuf',
              metadataUrl: tuf.metadataUrl as string,
              root: resolve(baseDir, tuf.root as string),
            },
          };
        }
        const n = notary as Record<string, unknown>;
        if (typeof n.server !== 'string' || !/^https?:\/\//.test(n.server))
          fail(`${where}.notary.server`, 'expected an http(s) URL');
        if (
          n.rootKeys !== undefined &&
          !(Array.isArray(n.rootKeys) && n.rootKeys.every((k) => typeof k === 'string' && k !== ''))
        ) {
          fail(`${where}.notary.rootKeys`, 'expected an array of key IDs');
        }
        if (n.rootCa !== undefined && (typeof n.rootCa !== 'string' || n.rootCa === '')) {
          fail(`${where}.notary.rootCa`, 'expected the CA certificate file');
        }
        if (n.serverCa !== undefined && (typeof n.serverCa !== 'string' || n.serverCa === '')) {
          fail(`${where}.notary.serverCa`, 'expected the server CA certificate file');
        }
        if (n.tofu !== undefined && typeof n.tofu !== 'boolean') {
          fail(`${where}.notary.tofu`, 'expected true or false');
        }
        const rootKeys = (n.rootKeys as string[] | undefined) ?? [];
        const tofu = n.tofu === true;
        if (rootKeys.length === 0 && n.rootCa === undefined && !tofu) {
          fail(
            `${where}.notary`,
            'expected rootKeys or rootCa (trust on first use only with "tofu": true)',
          );
        }
        return {
          match,
          index,
          source: {
            kind: 'notary',
            server: n.server as string,
            rootKeys,
            ...(typeof n.rootCa === 'string' ? { rootCa: resolve(baseDir, n.rootCa) } : {}),
            ...(typeof n.serverCa === 'string' ? { serverCa: resolve(baseDir, n.serverCa) } : {}),
            tofu,
          },
        };
      }),
    );
  }

  /** match returns the most specific rule for a repository name, or undefined (= deny). */
  match(name: string): PolicyRule | undefined {
    let best: { rule: PolicyRule; score: [number, number] } | undefined;
    for (const c of this.compiled) {
      if (!c.re.test(name)) continue;
      if (
        best === undefined ||
        c.score[0] > best.score[0] ||
        (c.score[0] === best.score[0] && c.score[1] > best.score[1])
      ) {
        best = c;
      }
    }
    return best?.rule;
  }
}
