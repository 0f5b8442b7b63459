/**
 * `tufa/core` with `tufa/core/portable` runs where there is no Node: esbuild bundles the two
 * entries (as package.json exports them) for the browser platform, which fails on any `node:`
 * import, and the bundle, run in a bare V8 context (no require, no process, no Buffer), verifies
 * real published metadata: python-tuf's fishy_rolenames (Ed25519, root → timestamp → snapshot
 * → targets → three delegated roles). Docker's real root (P-384 keys, which the portable
 * backend cannot use) is refused by name, and one flipped byte is refused.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createContext, runInContext } from 'node:vm';
import { ROOT } from '../../support/paths.js';

const require = createRequire(import.meta.url);
const esbuild = require('esbuild') as typeof import('esbuild');

const VECTORS = join(ROOT, 'test', 'vectors', 'tuf');
const FISHY = join(VECTORS, 'python-tuf', 'fishy_rolenames');

/** The file of each role of fishy_rolenames, by role name. */
const FISHY_FILES: Record<string, string> = {
  root: '1.root.json',
  timestamp: 'timestamp.json',
  snapshot: '2.snapshot.json',
  targets: '1.targets.json',
  '../a': '1.dotdot-slash-a.json',
  '.': '1.dot.json',
  ö: '1.o-umlaut.json',
};

/** The entry file package.json exports under `name`. */
function entry(name: string): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    exports: Record<string, { default: string }>;
  };
  const e = pkg.exports[name];
  assert.ok(e !== undefined, `package.json exports ${name}`);
  return join(ROOT, e.default);
}

// Runs inside the bundle: files come in as latin1 strings, turned into this realm's Uint8Array
// (the core checks `instanceof Uint8Array`). Returns a verdict, never throws.
const PROGRAM = `
import { findTarget, TrustedMetadataSet } from ${JSON.stringify(entry('./core'))};
import { portableBackend } from ${JSON.stringify(entry('./core/portable'))};
const bytes = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));
globalThis.verdict = (files, now) => {
  try {
    const set = new TrustedMetadataSet(bytes(files.root), now, { backend: portableBackend });
    if (files.timestamp === undefined) return { ok: true, roles: ['root'] };
    set.updateTimestamp(bytes(files.timestamp));
    set.updateSnapshot(bytes(files.snapshot));
    set.updateTargets(bytes(files.targets));
    const roles = ['root', 'timestamp', 'snapshot', 'targets'];
    const found = findTarget(set, 'file.txt', (role) => {
      roles.push(role);
      return bytes(files[role]);
    }, { backend: portableBackend });
    return { ok: true, roles, found: found === undefined ? null : found.target.path };
  } catch (e) {
    return { ok: false, code: e.code, message: String(e.message) };
  }
};
`;

interface Verdict {
  ok: boolean;
  roles?: string[];
  found?: string | null;
  code?: string;
  message?: string;
}

describe('core/portable: bundled for the browser, verifies real metadata', () => {
  let run: (files: Record<string, string>, now: number) => Verdict;
  let inputs: string[] = [];

  before(async function () {
    this.timeout(60_000);
    const result = await esbuild.build({
      stdin: { contents: PROGRAM, resolveDir: ROOT, sourcefile: 'portable-entry.js' },
      bundle: true,
      platform: 'browser',
      format: 'iife',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    inputs = Object.keys(result.metafile.inputs);
    const code = result.outputFiles[0]?.text ?? '';
    // a browser: the JS built-ins plus the encoding API and atob/btoa, nothing of Node. The encoder must
    // return this realm's Uint8Array, as a browser's does.
    const outer = new TextEncoder();
    const context = createContext({
      atob,
      btoa,
      TextDecoder,
      encodeUtf8: (s: string) => outer.encode(s),
    });
    runInContext(
      'globalThis.TextEncoder = class { encode(s) { return Uint8Array.from(encodeUtf8(s)); } };',
      context,
    );
    runInContext(code, context, { filename: 'portable-bundle.js' });
    for (const name of ['require', 'process', 'Buffer', 'module']) {
      assert.equal(runInContext(`typeof ${name}`, context), 'undefined', `${name} in the sandbox`);
    }
    run = (files, now) => {
      context.files = files;
      context.now = now;
      return JSON.parse(runInContext('JSON.stringify(verdict(files, now))', context)) as Verdict;
    };
  });

  it('the bundle reaches no Node built-in, and includes the core and @noble', () => {
    const node = inputs.filter((i) => i.startsWith('node:') || /^(crypto|fs|path|buffer)$/.test(i));
    assert.deepEqual(node, []);
    assert.ok(inputs.some((i) => i.includes('core/trusted-set')));
    assert.ok(inputs.some((i) => i.includes('@noble/ed25519')));
    assert.ok(!inputs.some((i) => i.includes('crypto/node')), 'the node backend is not bundled');
  });

  const fishy = (): Record<string, string> =>
    Object.fromEntries(
      Object.entries(FISHY_FILES).map(([role, file]) => [
        role,
        readFileSync(join(FISHY, file)).toString('latin1'),
      ]),
    );
  const BEFORE_2050 = Date.parse('2025-01-01T00:00:00Z');

  it('python-tuf fishy_rolenames verifies end to end with the portable backend', () => {
    const v = run(fishy(), BEFORE_2050);
    assert.equal(v.ok, true, v.message);
    // every delegation matches "*"; none lists file.txt: the walk verifies all three roles
    assert.deepEqual(v.roles, ['root', 'timestamp', 'snapshot', 'targets', '../a', '.', 'ö']);
    assert.equal(v.found, null);
  });

  it('one flipped byte in a signed field is refused', () => {
    const files = fishy();
    files.targets = (files.targets as string).replace('"version": 1', '"version": 2');
    assert.notEqual(files.targets, fishy().targets, 'the fixture changed');
    const v = run(files, BEFORE_2050);
    assert.equal(v.ok, false);
    assert.equal(v.code, 'THRESHOLD_NOT_MET', v.message); // the snapshot lists no hashes
  });

  it('expired metadata is refused (the clock is the caller’s)', () => {
    const v = run(fishy(), Date.parse('2051-01-01T00:00:00Z'));
    assert.equal(v.ok, false);
    assert.equal(v.code, 'EXPIRED', v.message);
  });

  it("Docker's real root (P-384 keys) is refused, naming the key type the backend lacks", () => {
    const root = readFileSync(join(VECTORS, 'real-tuf', 'docker-tuf', '1.root.json'), 'latin1');
    const v = run({ root }, Date.parse('2024-12-04T00:00:00Z'));
    assert.equal(v.ok, false);
    assert.equal(v.code, 'THRESHOLD_NOT_MET', v.message);
    assert.match(v.message ?? '', /unsupported key algorithm ecdsa-p384-sha384/);
  });
});
