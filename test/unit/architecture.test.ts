/**
 * The module boundaries of STYLE.md (plus src/internal: I/O helpers shared by the I/O modules),
 * enforced: which src/ module may import which, that
 * cross-module imports go through index.ts, that src/core does no I/O and reads no clock, and
 * that only src/cli touches argv, the environment, stdout and the exit status.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
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
  'proxy',
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
  // client reads TUF repositories stored in registries (RegistryFetcher) through oci's client
  client: ['core', 'crypto', 'internal', 'transport', 'oci'],
  repository: ['core', 'crypto', 'internal'],
  oci: ['internal', 'transport'],
  // verify also joins notary: trust policies may name a Notary server (DCT)
  verify: ['core', 'crypto', 'internal', 'transport', 'client', 'oci', 'notary'],
  notary: ['core', 'crypto', 'internal', 'client', 'oci', 'transport'],
  admission: ['core', 'crypto', 'internal', 'transport', 'client', 'oci', 'verify', 'notary'],
  proxy: ['core', 'crypto', 'internal', 'transport', 'client', 'oci', 'verify', 'notary'],
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
    'proxy',
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
        const inner = relative(join(SRC, to), target).replace(/\.js$/, '');
        // oci has two faces: pure.ts (entry tufa/oci) and index.ts (tufa/oci/registry)
        const isIndex = inner === 'index' || (to === 'oci' && inner === 'pure');
        const notaryReference =
          from === 'notary' && to === 'oci' && target.endsWith('reference.js');
        // a backend implements the core's crypto interface, with the core's encoding helpers
        const backendParts =
          from === 'crypto' &&
          /^(crypto[\\/](backend|ed25519-point)|encoding)\.js$/.test(
            relative(join(SRC, 'core'), target),
          );
        const pureRedact = from === 'oci' && to === 'transport' && inner === 'redact';
        // the Notary dialect's parser reads fields with the core's (unexported) field reader
        const dialectFields =
          from === 'notary' && to === 'core' && inner.replace(/\\/g, '/') === 'metadata/fields';
        assert.ok(
          isIndex || notaryReference || backendParts || pureRedact || dialectFields,
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

  /** Relative imports of a file, resolved to .ts paths, and its bare (package) imports. */
  function edges(file: string): { local: string[]; bare: string[] } {
    const local: string[] = [];
    const bare: string[] = [];
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) local.push(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
      else bare.push(spec);
    }
    return { local, bare };
  }

  /** Every src file `start` loads, itself included. */
  function closure(start: string): Set<string> {
    const seen = new Set<string>();
    const todo = [start];
    while (todo.length > 0) {
      const f = todo.pop() as string;
      if (seen.has(f)) continue;
      seen.add(f);
      todo.push(...edges(f).local);
    }
    return seen;
  }

  it('the pure part of oci (entry tufa/oci) loads neither TUF nor the transport nor an HTTP stack', () => {
    const pure = closure(join(SRC, 'oci', 'pure.ts'));
    assert.ok(
      pure.has(join(SRC, 'oci', 'reference.ts')) && pure.has(join(SRC, 'oci', 'manifest.ts')),
    );
    const redact = join(SRC, 'transport', 'redact.ts');
    for (const f of pure) {
      const rel = relative(ROOT, f);
      assert.ok(moduleOf(f) === 'oci' || f === redact, `tufa/oci loads ${rel}`);
      assert.ok(
        !/^src[\\/]oci[\\/](registry|credentials|layout|build)\.ts$/.test(rel),
        `tufa/oci loads ${rel}`,
      );
      for (const b of edges(f).bare) {
        assert.ok(
          !/^(node:)?(http|https|http2|net|tls|child_process|fs|fs\/promises)$|^undici|^tar-stream/.test(
            b,
          ),
          `${rel} (in tufa/oci) imports ${b}`,
        );
      }
    }
    // the one transport file it takes is a leaf: pure text, no imports
    assert.deepEqual(edges(redact), { local: [], bare: [] });
  });

  it('only src/transport issues HTTP requests (others may only serve)', () => {
    const http = /^(node:)?(http|https|http2)$/;
    // what a server needs; request, get, Agent, ClientRequest… are the transport's
    const serving = new Set([
      'createServer',
      'Server',
      'IncomingMessage',
      'ServerResponse',
      'STATUS_CODES',
    ]);
    const stmt = /(?:^|\n)\s*import\s+(type\s+)?([^'"]*?)\s+from\s+['"]([^'"]+)['"]/g;
    let servers = 0;
    for (const file of files) {
      if (moduleOf(file) === 'transport') continue;
      const rel = relative(ROOT, file);
      const text = code(readFileSync(file, 'utf8'));
      assert.ok(
        !/(?:[=(,:;!?&|]|\breturn|\bawait|globalThis\.)\s*fetch\(/.test(text),
        `${rel} calls the global fetch`,
      );
      assert.ok(!/\b(net|tls)\.connect\(|\bconnect\(\s*\{/.test(text), `${rel} opens sockets`);
      for (const m of text.matchAll(stmt)) {
        const spec = m[3] as string;
        assert.ok(!/^undici/.test(spec), `${rel} imports ${spec}`);
        if (!http.test(spec) || m[1] !== undefined) continue;
        const clause = (m[2] as string).trim();
        assert.ok(clause.startsWith('{'), `${rel}: import only named server APIs from ${spec}`);
        for (const part of clause.replace(/[{}]/g, '').split(',')) {
          const name = part
            .trim()
            .replace(/^type\s+/, '')
            .split(/\s+as\s+/)[0] as string;
          if (name === '' || part.trim().startsWith('type ')) continue;
          assert.ok(
            serving.has(name),
            `${rel} imports ${name} from ${spec}: requests go through src/transport`,
          );
          servers++;
        }
      }
    }
    assert.ok(servers >= 1, 'the admission server is seen');
  });

  /** The source file of each package.json entry point. */
  function entries(): Map<string, string> {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, { default: string }>;
    };
    const out = new Map<string, string>();
    for (const [name, e] of Object.entries(pkg.exports)) {
      out.set(name, join(ROOT, e.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts')));
    }
    return out;
  }

  const INTERNAL_NAMES = [
    'withLock',
    'writeFileAtomic',
    'readIfExists',
    'removeStaleTempFiles',
    'childEnvironment',
    'NEVER_CHILD_ENV',
    'describe',
    'sortKeys',
    'sha256Hex',
    'Fields',
    'asObject',
    'withRest',
  ];

  it('no entry point re-exports internals', async () => {
    const list = entries();
    assert.ok(list.size >= 10);
    for (const [name, file] of list) {
      // statically: nothing re-exported from src/internal, on any path of re-exports
      const reexports = (f: string): string[] =>
        [
          ...readFileSync(f, 'utf8').matchAll(/(?:^|\n)\s*export\s[^'"]*?from\s+['"]([^'"]+)['"]/g),
        ].map((m) => resolve(dirname(f), m[1] as string).replace(/\.js$/, '.ts'));
      const seen = new Set<string>();
      const todo = [file];
      while (todo.length > 0) {
        const f = todo.pop() as string;
        if (seen.has(f)) continue;
        seen.add(f);
        assert.notEqual(moduleOf(f), 'internal', `${name} re-exports ${relative(ROOT, f)}`);
        todo.push(...reexports(f));
      }
      // and at run time: the compiled entry has none of the internal names
      const mod = (await import(
        pathToFileURL(join(ROOT, 'dist', relative(ROOT, file).replace(/\.ts$/, '.js'))).href
      )) as Record<string, unknown>;
      for (const n of INTERNAL_NAMES) assert.ok(!(n in mod), `${name} exports ${n}`);
    }
  });
});
