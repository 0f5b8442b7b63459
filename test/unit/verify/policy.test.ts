/**
 * The trust policy: pattern matching (`*` within a segment, `**` one or more segments), the most
 * specific rule (most literal characters, then fewest wildcards, then the first listed), no match
 * means deny, path resolution, and invalid policies refused with a MisuseError naming the rule.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MisuseError } from '../../../src/core/errors.js';
import { Reference } from '../../../src/oci/reference.js';
import { TrustPolicy } from '../../../src/verify/policy.js';

const BASE = resolve('/policy-base');

const tufRule = (match: string, n = 0) => ({
  match,
  tuf: { metadataUrl: `https://tuf${n}.example/metadata/`, root: `root-${n}.json` },
});

/** policyOf makes a policy of TUF rules, one per pattern. */
const policyOf = (...patterns: string[]): TrustPolicy =>
  TrustPolicy.fromJSON({ rules: patterns.map((p, i) => tufRule(p, i)) }, BASE);

/** matchOf returns the pattern of the rule that governs `name`, or undefined. */
const matchOf = (p: TrustPolicy, name: string): string | undefined => p.match(name)?.match;

/** misuse asserts `fn` throws a MisuseError whose message matches every pattern. */
function misuse(fn: () => unknown, ...messages: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MisuseError, `expected a MisuseError, got ${String(e)}`);
    assert.equal(e.code, 'MISUSE');
    for (const m of messages) assert.match(e.message, m);
    return true;
  });
}

describe('TrustPolicy', () => {
  describe('matching one pattern', () => {
    // [pattern, names it matches, names it does not match]
    const TABLE: ReadonlyArray<[string, string[], string[]]> = [
      [
        'registry.example/app',
        ['registry.example/app'],
        [
          'registry.example/app2',
          'registry.example/ap',
          'registry.example/app/sub',
          'registry.example/team/app',
          'registryXexample/app',
          'other.example/registry.example/app',
          'registry.example:5000/app',
        ],
      ],
      [
        'registry.example/*',
        ['registry.example/app', 'registry.example/a', 'registry.example/app-2.x_y'],
        [
          'registry.example/team/app',
          'registry.example',
          'registry.example.evil/app',
          'other/registry.example/app',
        ],
      ],
      [
        'registry.example/app-*',
        ['registry.example/app-web', 'registry.example/app-'],
        ['registry.example/app', 'registry.example/app-web/sub', 'registry.example/xapp-web'],
      ],
      [
        'registry.example/*/app',
        ['registry.example/team/app', 'registry.example/t/app'],
        ['registry.example/app', 'registry.example/a/b/app', 'registry.example/team/app2'],
      ],
      [
        '*.example/app',
        ['registry.example/app', 'a.b.example/app'],
        ['registry.example/team/app', 'example/app', 'registry.example.evil/app'],
      ],
      [
        'registry.example:*/app',
        ['registry.example:5000/app', 'registry.example:8443/app'],
        // :443 and :80 are the default ports: registry.example:443/app is registry.example/app
        [
          'registry.example/app',
          'registry.example.evil:5000/app',
          'registry.example:443/app',
          'registry.example:80/app',
        ],
      ],
      [
        'registry.example/**',
        ['registry.example/app', 'registry.example/team/app', 'registry.example/a/b/c/d'],
        [
          'registry.example',
          'registry.example.evil/app',
          'registry.example:5000/app',
          'evil.example/registry.example/app',
        ],
      ],
      [
        'registry.example/**/app',
        ['registry.example/team/app', 'registry.example/a/b/app'],
        ['registry.example/app', 'registry.example/team/app/x', 'registry.example/team/web'],
      ],
      ['**', ['docker.io/library/alpine', 'registry.example/app', 'localhost:5000/a/b/c'], []],
      [
        '**/app',
        ['registry.example/app', 'registry.example/team/app'],
        ['registry.example/web', 'app', 'registry.example/app/x'],
      ],
      [
        'docker.io/library/*',
        ['docker.io/library/alpine'],
        ['docker.io/acme/alpine', 'docker.io/library/a/b'],
      ],
      ['[::1]:5000/**', ['[::1]:5000/app', '[::1]:5000/a/b'], ['[::2]:5000/app', '::1:5000/app']],
    ];
    for (const [pattern, yes, no] of TABLE) {
      it(`${pattern}`, () => {
        const p = policyOf(pattern);
        for (const name of yes)
          assert.equal(matchOf(p, name), pattern, `${pattern} should match ${name}`);
        for (const name of no)
          assert.equal(matchOf(p, name), undefined, `${pattern} should not match ${name}`);
      });
    }
  });

  describe('the most specific rule wins', () => {
    const p = policyOf(
      '**',
      'registry.example/**',
      'registry.example/team/*',
      'registry.example/team/app',
      'registry.example/*',
    );
    const TABLE: ReadonlyArray<[string, string]> = [
      ['registry.example/team/app', 'registry.example/team/app'],
      ['registry.example/team/web', 'registry.example/team/*'],
      ['registry.example/team/a/b', 'registry.example/**'],
      ['registry.example/other/x', 'registry.example/**'],
      ['docker.io/library/alpine', '**'],
      ['registry.example.evil/app', '**'],
    ];
    for (const [name, want] of TABLE) {
      it(`${name} → ${want}`, () => assert.equal(matchOf(p, name), want));
    }

    it('whatever the order of the rules', () => {
      const reversed = policyOf(
        'registry.example/*',
        'registry.example/team/app',
        'registry.example/team/*',
        'registry.example/**',
        '**',
      );
      for (const [name, want] of TABLE) assert.equal(matchOf(reversed, name), want, name);
    });

    it('equal literal characters: the fewest wildcards wins, in either order', () => {
      // both have the 15 literal characters "registry.ex/app"; one wildcard against two
      const one = 'registry.ex*/app';
      const two = 'reg*istry.ex*/app';
      assert.equal(matchOf(policyOf(one, two), 'registry.example/app'), one);
      assert.equal(matchOf(policyOf(two, one), 'registry.example/app'), one);
    });

    it('* beats ** whatever the order; a real tie: the first listed wins', () => {
      // "registry.example/*" and "registry.example/**": 17 literal characters; `**` counts two
      const name = 'registry.example/app';
      for (const [a, b] of [
        ['registry.example/*', 'registry.example/**'],
        ['registry.example/**', 'registry.example/*'],
      ] as const) {
        assert.equal(matchOf(policyOf(a, b), name), 'registry.example/*');
      }
      assert.equal(matchOf(policyOf('**/app', '*/app'), name), '*/app');
      // same literal characters and stars: the first listed
      assert.equal(
        matchOf(policyOf('registry.example/a*', 'registry.example/*p'), name),
        'registry.example/a*',
      );
      assert.equal(
        matchOf(policyOf('registry.example/*p', 'registry.example/a*'), name),
        'registry.example/*p',
      );
      // the same pattern twice: the first rule (by index)
      const twice = policyOf('registry.example/**', 'registry.example/**');
      assert.equal(twice.match(name)?.index, 0);
    });

    it('more literal characters win over fewer wildcards', () => {
      // "registry.*/app" has 13 literal characters, "*.example/app" 12
      assert.equal(
        matchOf(policyOf('*.example/app', 'registry.*/app'), 'registry.example/app'),
        'registry.*/app',
      );
    });
  });

  describe('no match is deny', () => {
    it('no rule matches: undefined', () => {
      const p = policyOf('registry.example/**', 'docker.io/library/*');
      assert.equal(p.match('other.example/app'), undefined);
      assert.equal(p.match('docker.io/acme/app'), undefined);
      assert.equal(p.match(''), undefined);
    });

    it('an empty rule list matches nothing', () => {
      assert.equal(
        TrustPolicy.fromJSON({ rules: [] }, BASE).match('registry.example/app'),
        undefined,
      );
    });
  });

  describe('sources', () => {
    it('a TUF rule: metadataUrl as given, root resolved against the base folder', () => {
      const p = TrustPolicy.fromJSON({ rules: [tufRule('registry.example/**', 7)] }, BASE);
      const rule = p.match('registry.example/app');
      assert.deepEqual(rule, {
        match: 'registry.example/**',
        index: 0,
        source: {
          kind: 'tuf',
          metadataUrl: 'https://tuf7.example/metadata/',
          root: join(BASE, 'root-7.json'),
        },
      });
    });

    it('a TUF repository in a registry: oci://REGISTRY/REPO[:TAG], normalized with its tag; a digest or no repository refused', () => {
      const url = (metadataUrl: string) => {
        const p = TrustPolicy.fromJSON(
          { rules: [{ match: '**', tuf: { metadataUrl, root: 'r' } }] },
          BASE,
        );
        const s = p.rules[0]?.source;
        return s?.kind === 'tuf' ? s.metadataUrl : undefined;
      };
      assert.equal(url('oci://ghcr.io/acme/tuf:v2'), 'oci://ghcr.io/acme/tuf:v2/');
      assert.equal(url('oci://GHCR.io:443/acme/tuf'), 'oci://ghcr.io/acme/tuf:latest/');
      assert.equal(
        url('oci://127.0.0.1:5000/tuf/meta:latest/'),
        'oci://127.0.0.1:5000/tuf/meta:latest/',
      );
      for (const bad of [
        `oci://ghcr.io/acme/tuf@sha256:${'a'.repeat(64)}`,
        'oci://ghcr.io',
        'oci://ghcr.io/Acme/tuf',
      ]) {
        assert.throws(
          () => url(bad),
          (e: Error) => e instanceof MisuseError && /rules\[0\]\.tuf\.metadataUrl/.test(e.message),
          bad,
        );
      }
    });

    it('an absolute root stays as it is', () => {
      const root = resolve('/elsewhere/root.json');
      const p = TrustPolicy.fromJSON(
        { rules: [{ match: '**', tuf: { metadataUrl: 'http://127.0.0.1:8080/', root } }] },
        BASE,
      );
      assert.equal(p.rules[0]?.source.kind === 'tuf' && p.rules[0].source.root, root);
    });

    it('Notary rules: rootKeys, rootCa (resolved), or tofu', () => {
      const p = TrustPolicy.fromJSON(
        {
          rules: [
            {
              match: 'a.example/**',
              notary: { server: 'https://notary.example', rootKeys: ['k1', 'k2'] },
            },
            {
              match: 'b.example/**',
              notary: { server: 'https://notary.example', rootCa: 'ca.pem' },
            },
            { match: 'c.example/**', notary: { server: 'http://notary.example', tofu: true } },
          ],
        },
        BASE,
      );
      assert.deepEqual(p.match('a.example/app')?.source, {
        kind: 'notary',
        server: 'https://notary.example',
        rootKeys: ['k1', 'k2'],
        tofu: false,
      });
      assert.deepEqual(p.match('b.example/app')?.source, {
        kind: 'notary',
        server: 'https://notary.example',
        rootKeys: [],
        rootCa: join(BASE, 'ca.pem'),
        tofu: false,
      });
      assert.deepEqual(p.match('c.example/app')?.source, {
        kind: 'notary',
        server: 'http://notary.example',
        rootKeys: [],
        tofu: true,
      });
    });
  });

  describe('load', () => {
    let tmp: string;
    before(() => {
      tmp = mkdtempSync(join(tmpdir(), 'tufa-policy-'));
    });
    after(() => rmSync(tmp, { recursive: true, force: true }));

    it('reads a file; relative paths resolve against the policy file folder', async () => {
      const file = join(tmp, 'policy.json');
      writeFileSync(file, JSON.stringify({ rules: [tufRule('registry.example/**', 1)] }));
      const p = await TrustPolicy.load(file);
      const s = p.match('registry.example/app')?.source;
      assert.equal(s?.kind === 'tuf' && s.root, join(tmp, 'root-1.json'));
    });

    it('through a symlink: relative paths resolve next to the real file (R2B-09)', async () => {
      const real = join(tmp, 'real');
      const link = join(tmp, 'link');
      mkdirSync(real);
      mkdirSync(link);
      writeFileSync(join(real, 'policy.json'), JSON.stringify({ rules: [tufRule('**', 2)] }));
      symlinkSync(join(real, 'policy.json'), join(link, 'policy.json'));
      const s = (await TrustPolicy.load(join(link, 'policy.json'))).match('a.x/b')?.source;
      assert.equal(s?.kind === 'tuf' && s.root, join(realpathSync(real), 'root-2.json'));
    });

    it('a missing file is a MisuseError naming it', async () => {
      const file = join(tmp, 'missing.json');
      await assert.rejects(TrustPolicy.load(file), (e: unknown) => {
        assert.ok(e instanceof MisuseError);
        assert.ok(e.message.includes(file), e.message);
        return true;
      });
    });

    it('invalid JSON is a MisuseError naming the file', async () => {
      const file = join(tmp, 'broken.json');
      writeFileSync(file, '{"rules": [');
      await assert.rejects(TrustPolicy.load(file), (e: unknown) => {
        assert.ok(e instanceof MisuseError);
        assert.match(e.message, /broken\.json: not valid JSON/);
        return true;
      });
    });

    it('an invalid rule in a file: the MisuseError names the file and the rule', async () => {
      const file = join(tmp, 'bad-rule.json');
      writeFileSync(file, JSON.stringify({ rules: [tufRule('a.x/**'), { match: 'b.x/**' }] }));
      await assert.rejects(TrustPolicy.load(file), (e: unknown) => {
        assert.ok(e instanceof MisuseError);
        assert.ok(e.message.includes(file), e.message);
        assert.match(e.message, /rules\[1\]/);
        return true;
      });
    });
  });

  describe('invalid policies: MisuseError naming the rule', () => {
    const ok = tufRule('ok.example/**');
    const url = 'https://tuf.example/metadata/';
    const CASES: ReadonlyArray<[string, unknown, RegExp[]]> = [
      ['not an object', 'rules', [/rules: expected an array/]],
      ['null', null, [/rules: expected an array/]],
      ['no rules', {}, [/rules: expected an array/]],
      ['rules not an array', { rules: { match: '**' } }, [/rules: expected an array/]],
      ['a rule that is not an object', { rules: [ok, 'x'] }, [/rules\[1\]/]],
      ['a rule that is null', { rules: [ok, null] }, [/rules\[1\]/]],
      [
        'no match',
        { rules: [ok, { tuf: { metadataUrl: url, root: 'r' } }] },
        [/rules\[1\]\.match: expected a pattern/],
      ],
      [
        'an empty match',
        { rules: [{ match: '', tuf: { metadataUrl: url, root: 'r' } }] },
        [/rules\[0\]\.match/],
      ],
      [
        'a match that is not a string',
        { rules: [{ match: 5, tuf: { metadataUrl: url, root: 'r' } }] },
        [/rules\[0\]\.match/],
      ],
      [
        'neither tuf nor notary',
        { rules: [ok, { match: 'a.x/**' }] },
        [/rules\[1\]: expected exactly one of "tuf" and "notary"/],
      ],
      [
        'both tuf and notary',
        {
          rules: [
            {
              match: 'a.x/**',
              tuf: { metadataUrl: url, root: 'r' },
              notary: { server: 'https://n', tofu: true },
            },
          ],
        },
        [/rules\[0\]: expected exactly one/],
      ],
      [
        'tuf without metadataUrl',
        { rules: [{ match: 'a.x/**', tuf: { root: 'r' } }] },
        [/rules\[0\]\.tuf\.metadataUrl/],
      ],
      [
        'a metadataUrl without the final /',
        {
          rules: [
            { match: 'a.x/**', tuf: { metadataUrl: 'https://tuf.example/metadata', root: 'r' } },
          ],
        },
        [/rules\[0\]\.tuf\.metadataUrl: expected an http\(s\)/],
      ],
      [
        'a metadataUrl of another scheme',
        {
          rules: [
            { match: 'a.x/**', tuf: { metadataUrl: 'ftp://tuf.example/metadata/', root: 'r' } },
          ],
        },
        [/rules\[0\]\.tuf\.metadataUrl/],
      ],
      [
        'a metadataUrl that is not a string',
        { rules: [{ match: 'a.x/**', tuf: { metadataUrl: 42, root: 'r' } }] },
        [/rules\[0\]\.tuf\.metadataUrl/],
      ],
      [
        'tuf without root',
        { rules: [ok, { match: 'a.x/**', tuf: { metadataUrl: url } }] },
        [/rules\[1\]\.tuf\.root: expected the trusted root file/],
      ],
      [
        'notary without server',
        { rules: [{ match: 'a.x/**', notary: { tofu: true } }] },
        [/rules\[0\]\.notary\.server/],
      ],
      [
        'notary with a server that is not a URL',
        { rules: [{ match: 'a.x/**', notary: { server: 'notary.example', tofu: true } }] },
        [/rules\[0\]\.notary\.server: expected an http\(s\) URL/],
      ],
      [
        'notary with no trust anchor (no rootKeys, no rootCa, no tofu)',
        { rules: [{ match: 'a.x/**', notary: { server: 'https://notary.example' } }] },
        [/rules\[0\]\.notary: expected rootKeys or rootCa/],
      ],
      [
        'notary with empty rootKeys',
        {
          rules: [{ match: 'a.x/**', notary: { server: 'https://notary.example', rootKeys: [] } }],
        },
        [/rules\[0\]\.notary: expected rootKeys or rootCa/],
      ],
      [
        'notary with rootKeys that are not strings',
        {
          rules: [
            { match: 'a.x/**', notary: { server: 'https://notary.example', rootKeys: [1, null] } },
          ],
        },
        [/rules\[0\]\.notary\.rootKeys: expected an array of key IDs/],
      ],
      [
        'notary with tofu "true" (a string, not true)',
        {
          rules: [{ match: 'a.x/**', notary: { server: 'https://notary.example', tofu: 'true' } }],
        },
        [/rules\[0\]\.notary/],
      ],
    ];
    for (const [what, json, messages] of CASES) {
      it(what, () => misuse(() => TrustPolicy.fromJSON(json, BASE), ...messages));
    }

    const BAD_PATTERNS = [
      'registry.example/app name',
      'registry.example/app?',
      'registry.example/***',
      'registry.example/app+',
      'registry.example/(app|web)',
      'registry.example/app$',
      'registry.example/äpp',
      'registry.example/app\n',
    ];
    for (const pattern of BAD_PATTERNS) {
      it(`a pattern a name cannot have: ${JSON.stringify(pattern)} (the message names it)`, () => {
        misuse(
          () => TrustPolicy.fromJSON({ rules: [ok, tufRule(pattern)] }, BASE),
          new RegExp(JSON.stringify(pattern).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
        );
      });
    }

    it('a wildcard host with a default port (*:443 would match every port) is refused', () => {
      for (const pattern of ['*:443/**', '*.example:80/app', 'reg*:443/*']) {
        misuse(() => TrustPolicy.fromJSON({ rules: [ok, tufRule(pattern)] }, BASE), /default port/);
      }
      // a wildcard host with another port keeps it
      assert.equal(matchOf(policyOf('*:5000/**', '**'), 'registry.example:5000/app'), '*:5000/**');
    });

    // The structural errors say "<file>: rules[i]…"; the pattern check runs later, in the
    // TrustPolicy constructor, and says only "policy: pattern …": neither the rule nor the file.
    it('an invalid pattern is refused naming the rule (rules[1]) and the policy source', () => {
      misuse(
        () =>
          TrustPolicy.fromJSON(
            { rules: [ok, tufRule('registry.example/app?')] },
            BASE,
            'my-policy.json',
          ),
        /my-policy\.json/,
        /rules\[1\]/,
      );
    });

    // A rootCa that is not a file name (null, 5, {}) must be refused at load time, not dropped
    // silently, which would leave a Notary rule with no trust anchor at all.
    it('a notary rule whose rootCa is not a string (null) is refused, not accepted without a trust anchor', () => {
      for (const rootCa of [null, 5, {}, false]) {
        misuse(
          () =>
            TrustPolicy.fromJSON(
              {
                rules: [{ match: 'a.x/**', notary: { server: 'https://notary.example', rootCa } }],
              },
              BASE,
            ),
          /rules\[0\]\.notary/,
        );
      }
    });
  });

  // Registry host names are case-insensitive: REGISTRY.EXAMPLE is the same registry as
  // registry.example. Were the host's case kept, the rule for registry.example would not govern
  // REGISTRY.EXAMPLE/app, and a broader rule (another trust source) would decide: the image could
  // be verified against a weaker trust source by spelling the host in capitals.
  it('the rule for registry.example governs REGISTRY.EXAMPLE/app (host names are case-insensitive)', () => {
    const p = policyOf('**', 'registry.example/**');
    assert.equal(
      matchOf(p, Reference.parse('registry.example/app:1.0').name),
      'registry.example/**',
    );
    for (const input of ['REGISTRY.EXAMPLE/app:1.0', 'Registry.Example/app:1.0']) {
      assert.equal(matchOf(p, Reference.parse(input).name), 'registry.example/**', input);
    }
  });

  // R2B-09: footguns that used to load silently
  describe('footguns refused or flagged at load', () => {
    for (const pattern of [
      'Registry.example/**',
      'registry.example/App',
      'registry.example/a/*B',
    ]) {
      it(`upper case: ${pattern} (would never match) is refused naming the rule`, () => {
        misuse(
          () => TrustPolicy.fromJSON({ rules: [tufRule('**'), tufRule(pattern)] }, BASE, 'p.json'),
          /p\.json: rules\[1\]\.match/,
          /upper-case/,
        );
      });
    }

    for (const pattern of [
      'ghcr.io/acme**',
      'ghcr.io/**acme',
      'ghcr.io/a**b/c',
      '**.io/x',
      'a.x/**-x',
    ]) {
      it(`\`**\` inside a segment: ${pattern} is refused`, () => {
        misuse(
          () => TrustPolicy.fromJSON({ rules: [tufRule(pattern)] }, BASE, 'p.json'),
          /p\.json: rules\[0\]\.match/,
          /must be a whole path segment/,
        );
      });
    }

    it('a default port in a pattern is the same registry: registry.example:443/** governs registry.example/app', () => {
      const p = policyOf('**', 'registry.example:443/**', 'registry.example:80/team/*');
      assert.equal(matchOf(p, 'registry.example/app'), 'registry.example:443/**');
      assert.equal(matchOf(p, 'registry.example:443/app'), 'registry.example:443/**');
      assert.equal(matchOf(p, 'registry.example/team/x'), 'registry.example:80/team/*');
      assert.equal(matchOf(p, 'registry.example:8443/app'), '**');
    });

    it('overlapping rules of different trust sources: one warning per pair, naming both rules', () => {
      const p = TrustPolicy.fromJSON(
        {
          rules: [
            tufRule('ghcr.io/acme/**', 0),
            tufRule('ghcr.io/*/app', 1),
            tufRule('ghcr.io/acme/web', 0),
            tufRule('ghcr.io/acme-*/x', 1),
            tufRule('docker.io/**', 2),
          ],
        },
        BASE,
        'p.json',
      );
      assert.equal(p.warnings.length, 1, p.warnings.join('\n'));
      assert.match(p.warnings[0] as string, /^p\.json: rules\[0\] .*rules\[1\] .*overlap/);
    });

    it('a warning names the sources without credentials in their URLs', () => {
      const p = TrustPolicy.fromJSON(
        {
          rules: [
            { match: 'a.x/**', tuf: { metadataUrl: 'https://u:s3cret@tuf.example/m/', root: 'r' } },
            { match: 'a.x/b', notary: { server: 'https://u:s3cret@notary.example', tofu: true } },
          ],
        },
        BASE,
      );
      assert.equal(p.warnings.length, 1);
      assert.doesNotMatch(p.warnings[0] as string, /s3cret/);
      assert.match(
        p.warnings[0] as string,
        /tuf https:\/\/tuf\.example\/m\/.*notary https:\/\/notary\.example/,
      );
    });

    // [a, b, overlap?]
    const PAIRS: ReadonlyArray<[string, string, boolean]> = [
      ['**', 'a.x/b', true],
      ['a.x/**', 'b.x/**', false],
      ['a.x/**', 'a.x/b/c', true],
      ['a.x/**/c', 'a.x/c', false],
      ['a.x/**/c', 'a.x/*/*/c', true],
      ['a.x/x-*', 'a.x/*-y', true],
      ['a.x/x-*', 'a.x/y-*', false],
      ['*.example/app', 'registry.example/*', true],
      ['*.example/app', 'registry.test/*', false],
      ['registry.example:443/**', 'registry.example/app', true],
      ['a.x/*/b', 'a.x/**/c', false],
    ];
    for (const [a, b, overlap] of PAIRS) {
      it(`${a} and ${b}: ${overlap ? 'a warning' : 'no warning'}`, () => {
        const p = TrustPolicy.fromJSON({ rules: [tufRule(a, 0), tufRule(b, 1)] }, BASE);
        assert.equal(p.warnings.length, overlap ? 1 : 0, p.warnings.join('\n'));
        const same = TrustPolicy.fromJSON({ rules: [tufRule(a, 0), tufRule(b, 0)] }, BASE);
        assert.deepEqual(same.warnings, [], 'the same trust source: no warning');
      });
    }
  });
});
