/**
 * The root entry `tufa` is small and documented: at most 30 names, each with TSDoc, and every
 * function and class (errors aside) saying what it throws (`@throws`, with codes). And
 * `import 'tufa'` loads neither tar-stream nor child_process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { ROOT } from '../support/paths.js';

const ENTRY = join(ROOT, 'src', 'index.ts');

interface Exported {
  name: string;
  kind: 'function' | 'class' | 'error' | 'value' | 'type';
  documented: boolean;
  throws: boolean;
}

function exportsOfRoot(): Exported[] {
  const program = ts.createProgram([ENTRY], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(ENTRY);
  assert.ok(file !== undefined);
  const moduleSymbol = checker.getSymbolAtLocation(file);
  assert.ok(moduleSymbol !== undefined);
  const tagsOf = (s: ts.Symbol) => s.getJsDocTags(checker).map((t) => t.name);
  return checker.getExportsOfModule(moduleSymbol).map((alias) => {
    const s = alias.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(alias) : alias;
    // `export { type X }`: a type here, whatever it is where it is declared
    const typeOnly = alias.declarations?.some(
      (d) => ts.isExportSpecifier(d) && (d.isTypeOnly || d.parent.parent.isTypeOnly),
    );
    const documented = s.getDocumentationComment(checker).length > 0;
    let kind: Exported['kind'] = 'type';
    let throws = tagsOf(s).includes('throws');
    if (typeOnly) {
      kind = 'type';
    } else if (s.flags & ts.SymbolFlags.Class) {
      const decl = s.valueDeclaration as ts.ClassDeclaration;
      const heritage = decl.heritageClauses?.map((h) => h.getText()).join(' ') ?? '';
      kind = /Error\b/.test(heritage) || /Error$/.test(s.name) ? 'error' : 'class';
      // a class says what it throws on itself or on its members
      const members = checker.getTypeOfSymbol(s).getProperties();
      const instance = checker.getDeclaredTypeOfSymbol(s).getProperties();
      const ctor = decl.members.find(ts.isConstructorDeclaration);
      throws ||=
        [...members, ...instance].some((m) => tagsOf(m).includes('throws')) ||
        (ctor !== undefined && ts.getJSDocTags(ctor).some((t) => t.tagName.text === 'throws'));
    } else if (s.flags & ts.SymbolFlags.Function) {
      kind = 'function';
    } else if (s.flags & ts.SymbolFlags.Variable) {
      kind = 'value';
    }
    return { name: alias.name, kind, documented, throws };
  });
}

describe('public API: the root entry', () => {
  const names = exportsOfRoot();

  it('exports at most 30 names', () => {
    assert.ok(names.length >= 10, `${names.length} names`);
    assert.ok(names.length <= 30, `${names.length} names: ${names.map((n) => n.name).join(', ')}`);
  });

  it('documents every name', () => {
    const bare = names.filter((n) => !n.documented).map((n) => n.name);
    assert.deepEqual(bare, []);
  });

  it('says what every function and class throws (@throws)', () => {
    const silent = names
      .filter((n) => (n.kind === 'function' || n.kind === 'class') && !n.throws)
      .map((n) => n.name);
    assert.deepEqual(silent, []);
  });

  it("import 'tufa' loads neither tar-stream nor child_process", () => {
    const dir = mkdtempSync(join(tmpdir(), 'tufa-api-'));
    try {
      const hooks = join(dir, 'hooks.mjs');
      writeFileSync(
        hooks,
        'export async function resolve(s, c, next) { const r = await next(s, c); process.stderr.write("LOAD " + r.url + "\\n"); return r; }\n',
      );
      const register = join(dir, 'register.mjs');
      writeFileSync(
        register,
        `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
      );
      const entry = pathToFileURL(join(ROOT, 'dist', 'src', 'index.js')).href;
      const r = spawnSync(
        process.execPath,
        [
          '--import',
          register,
          '--input-type=module',
          '-e',
          `await import(${JSON.stringify(entry)})`,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const loaded = r.stderr.split('\n').filter((l) => l.startsWith('LOAD '));
      assert.ok(
        loaded.some((l) => l.includes('/dist/src/verify/')),
        'the hook sees the imports',
      );
      assert.deepEqual(
        loaded.filter((l) => /tar-stream|node:child_process|undici/.test(l)),
        [],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
