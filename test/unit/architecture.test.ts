/**
 * The module boundaries of STYLE.md (plus src/internal: I/O helpers shared by the I/O modules),
 * enforced: which src/ module may import which, that
 * cross-module imports go through index.ts, that src/core does no I/O and reads no clock, and
 * that only src/cli touches argv, the environment, stdout and the exit status.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../support/paths.js';

const SRC = join(ROOT, 'src');
const MODULES = [
  'core',
  'crypto',
  'transport',
  'internal',
  'client',
  'repository',
  'oci',
  'verify',
  'notary',
  'admission',
  'cli',
] as const;
type Module = (typeof MODULES)[number];

/** Row may import column (besides itself). */
const ALLOWED: Record<Module, readonly Module[]> = {
  core: [],
  // the node:crypto backend of the core (entry tufa/core/node)
  crypto: ['core'],
  // the one HTTP transport: knows nothing of TUF, OCI or Notary
  transport: [],
  internal: ['core'],
  client: ['core', 'crypto', 'internal', 'transport'],
  repository: ['core', 'crypto', 'internal'],
  oci: ['internal', 'transport'],
  // verify also joins notary: trust policies may name a Notary server (DCT)
  verify: ['core', 'crypto', 'internal', 'transport', 'client', 'oci', 'notary'],
  notary: ['core', 'crypto', 'internal', 'client', 'oci', 'transport'],
  admission: ['core', 'crypto', 'internal', 'transport', 'client', 'oci', 'verify', 'notary'],
  cli: [
    'core',
    'crypto',
    'internal',
    'transport',
    'client',
    'repository',
    'oci',
    'verify',
    'notary',
    'admission',
  ],
};

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function moduleOf(file: string): Module | undefined {
  const first = relative(SRC, file).split(/[\\/]/)[0];
  return (MODULES as readonly string[]).includes(first ?? '') ? (first as Module) : undefined;
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) out.push((m[1] ?? m[2]) as string);
  return out;
}

/** Source text without comments, so rules are checked on code only. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

const files = walk(SRC);

describe('architecture', () => {
  it('finds the source files', () => {
    assert.ok(files.length > 10);
  });

  for (const file of files) {
    const from = moduleOf(file);
    if (from === undefined) continue;
    const rel = relative(ROOT, file);
    it(`${rel}: imports only what ${from}/ may`, () => {
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(file), spec);
        const to = moduleOf(target);
        assert.ok(to !== undefined, `${rel} imports ${spec}, outside the modules`);
        if (to === from) continue;
        assert.ok(ALLOWED[from].includes(to), `${rel}: ${from}/ may not import ${to}/ (${spec})`);
        const isIndex = relative(join(SRC, to), target).replace(/\.js$/, '') === 'index';
        const notaryReference =
          from === 'notary' && to === 'oci' && target.endsWith('reference.js');
        // a backend implements the core's crypto interface, with the core's encoding helpers
        const backendParts =
          from === 'crypto' &&
          /^(crypto[\\/](backend|ed25519-point)|encoding)\.js$/.test(
            relative(join(SRC, 'core'), target),
          );
        assert.ok(
          isIndex || notaryReference || backendParts,
          `${rel}: import ${to}/ through its index.ts, not ${spec}`,
        );
      }
    });
  }

  it('nothing imports cli/', () => {
    for (const file of files) {
      if (moduleOf(file) === 'cli') continue;
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        if (spec.startsWith('.'))
          assert.notEqual(moduleOf(resolve(dirname(file), spec)), 'cli', file);
      }
    }
  });

  it('src/core does no I/O and reads no clock, and loads nothing from node: (the backend is injected)', () => {
    const forbidden = [
      /['"]node:[a-z_/]+['"]/,
      /\brequire\(/,
      /\bBuffer\b/,
      /['"](crypto|buffer|fs|net|http|https|undici|child_process)['"]/,
      /\bprocess\./,
      /\bconsole\./,
      /\bDate\.now\b/,
      /new Date\(\s*\)/,
      /\bperformance\.now\b/,
      /\bfetch\(/,
      /\bsetTimeout\b|\bsetInterval\b/,
    ];
    let checked = 0;
    for (const file of files.filter((f) => moduleOf(f) === 'core')) {
      const text = code(readFileSync(file, 'utf8'));
      checked++;
      for (const re of forbidden)
        assert.ok(!re.test(text), `${relative(ROOT, file)} matches ${re}`);
    }
    assert.ok(checked > 5);
  });

  it('only src/cli touches argv, the environment, stdout and the exit status', () => {
    const re = /\bprocess\.(argv|env|exit|exitCode|stdout|stderr|stdin)\b/;
    for (const file of files) {
      if (moduleOf(file) === 'cli') continue;
      assert.ok(!re.test(code(readFileSync(file, 'utf8'))), `${relative(ROOT, file)} uses ${re}`);
    }
  });
});
