/**
 * `tufa repo add-targets` and `tufa repo add-images` through the real binary (issue 17, signing
 * at scale): a batch is one change (each role it touches gets exactly one new version), a bad
 * line of a JSON Lines manifest is refused with its number and nothing is written, and every
 * target of a batch gets the rules of a single add (path checks, the delegation walk, --replace).
 * add-images runs against a real docker-registry on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reference, RegistryClient } from '../../src/oci/index.js';
import { TUFA_BIN } from '../support/paths.js';
import { type BuiltImage, buildImage, RegistryServer, skipReason } from '../support/registry.js';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

const sha256 = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');
const show = (r: Run) => `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

describe('tufa repo add-targets / add-images: batches (through the real binary)', function () {
  this.timeout(120_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;

  function tufa(args: string[]): Run {
    const r = spawnSync(process.execPath, [TUFA_BIN, ...args], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
      env,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }
  const ok = (args: string[]): Run => {
    const r = tufa(args);
    assert.equal(r.status, 0, show(r));
    return r;
  };
  /** refused asserts exit 2 naming each of `names`, nothing on stdout, no stack. */
  const refused = (r: Run, ...names: string[]) => {
    assert.equal(r.status, 2, show(r));
    for (const n of names) assert.ok(r.stderr.includes(n), `stderr names ${n}\n${show(r)}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, show(r));
    assert.equal(r.stdout, '');
  };
  const role = (ws: string, name: string) =>
    JSON.parse(readFileSync(join(dir, ws, 'metadata', `${name}.json`), 'utf8')) as {
      signatures: unknown[];
      signed: {
        version: number;
        targets: Record<string, { length: number; hashes: Record<string, string> }>;
      };
    };
  const version = (ws: string, name: string) => role(ws, name).signed.version;
  const sign = (ws: string, ...roles: string[]) => {
    for (const r of roles) ok(['repo', '--repo', ws, 'sign', '--role', r, '--key', 'k']);
  };
  /** files returns every file of a workspace's metadata and targets folders with its bytes. */
  const files = (ws: string): Map<string, string> => {
    const out = new Map<string, string>();
    for (const sub of ['metadata', 'targets']) {
      const d = join(dir, ws, sub);
      for (const n of readdirSync(d, { recursive: true }) as string[]) {
        try {
          out.set(`${sub}/${n}`, readFileSync(join(d, n), 'latin1'));
        } catch {
          // a folder
        }
      }
    }
    return out;
  };
  const init = (ws: string) => {
    const keys = ['root', 'targets', 'snapshot', 'timestamp'].flatMap((r) => [
      `--${r}-key`,
      'k.pub.json',
    ]);
    ok(['repo', '--repo', ws, 'init', ...keys]);
    mkdirSync(join(dir, ws, 'targets'), { recursive: true });
  };
  const line = (path: string, content: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      path,
      length: Buffer.byteLength(content),
      hashes: { sha256: sha256(content) },
      ...extra,
    });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tufa-repo-batch-'));
    env = { ...process.env, XDG_CACHE_HOME: join(dir, 'xdg'), NO_COLOR: '1' };
    delete env.TUFA_KEY_PASSPHRASE;
    ok(['key', 'generate', '--type', 'ed25519', '--out', 'k']);
    init('ws');
    sign('ws', 'targets');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('files and a folder in one batch: one new version of targets, contents stored', () => {
    mkdirSync(join(dir, 'dist', 'linux'), { recursive: true });
    writeFileSync(join(dir, 'dist', 'app.tar.gz'), 'app\n');
    writeFileSync(join(dir, 'dist', 'linux', 'app'), 'linux app\n');
    writeFileSync(join(dir, 'notes.txt'), 'notes\n');
    const before = version('ws', 'targets');
    const r = ok(['repo', '--repo', 'ws', 'add-targets', 'dist', 'notes.txt', '--prefix', 'v1/']);
    assert.match(r.stdout, /3 targets listed: targets 3/);
    const t = role('ws', 'targets');
    assert.equal(t.signed.version, before + 1, 'exactly one new version for the batch');
    assert.deepEqual(Object.keys(t.signed.targets).sort(), [
      'v1/app.tar.gz',
      'v1/linux/app',
      'v1/notes.txt',
    ]);
    assert.equal(t.signed.targets['v1/linux/app']?.hashes.sha256, sha256('linux app\n'));
    assert.equal(
      readFileSync(join(dir, 'ws', 'targets', sha256('linux app\n')), 'utf8'),
      'linux app\n',
    );
    // a second batch after signing: again exactly one version
    sign('ws', 'targets');
    writeFileSync(join(dir, 'more.txt'), 'more\n');
    writeFileSync(join(dir, 'more2.txt'), 'more2\n');
    ok(['repo', '--repo', 'ws', 'add-targets', 'more.txt', 'more2.txt']);
    assert.equal(version('ws', 'targets'), before + 2);
    sign('ws', 'targets');
  });

  it('a JSON Lines manifest lists targets not on this machine', () => {
    const before = version('ws', 'targets');
    writeFileSync(
      join(dir, 'm.jsonl'),
      `${line('remote/a.bin', 'aaa')}\n\n${line('remote/b.bin', 'bbb', { custom: { build: 7 } })}\n`,
    );
    ok(['repo', '--repo', 'ws', 'add-targets', '--manifest', 'm.jsonl']);
    const t = role('ws', 'targets');
    assert.equal(t.signed.version, before + 1);
    assert.deepEqual(t.signed.targets['remote/b.bin'], {
      length: 3,
      hashes: { sha256: sha256('bbb') },
      custom: { build: 7 },
    });
    sign('ws', 'targets');
  });

  const good = () => line('ok/first.bin', 'first');
  const bad: Array<[string, string, string]> = [
    ['not JSON', 'path: x', 'line 3'],
    ['an array', '[1]', 'JSON object'],
    ['an unknown member', line('u', 'u', { extra: 1 }), '"extra"'],
    ['no hashes', '{"path":"n","length":1}', 'hashes'],
    ['a negative length', `{"path":"n","length":-1,"hashes":{"sha256":"${sha256('')}"}}`, 'length'],
    [
      'a fractional length',
      `{"path":"n","length":1.5,"hashes":{"sha256":"${sha256('')}"}}`,
      'not an integer',
    ],
    [
      'upper-case hex',
      `{"path":"n","length":1,"hashes":{"sha256":"${sha256('').toUpperCase()}"}}`,
      'sha256',
    ],
    ['a short digest', '{"path":"n","length":1,"hashes":{"sha256":"abcd"}}', 'sha256'],
    ['md5', '{"path":"n","length":1,"hashes":{"md5":"d41d8cd98f00b204e9800998ecf8427e"}}', 'md5'],
    ['custom as an array', line('c', 'c', { custom: [1] }), 'custom'],
    ['a .. segment', line('a/../../etc/passwd', 'x'), '".."'],
    ['an absolute path', line('/etc/passwd', 'x'), 'empty segment'],
    ['a NUL', line('a\u0000b', 'x'), 'control character'],
    ['a path given twice', line('ok/first.bin', 'first'), 'also given by'],
  ];
  for (const [what, text, says] of bad) {
    it(`a manifest line with ${what} is refused with its number; nothing is written`, () => {
      writeFileSync(
        join(dir, 'bad.jsonl'),
        `${good()}\n${line('ok/second.bin', 'second')}\n${text}\n`,
      );
      const before = files('ws');
      refused(
        tufa(['repo', '--repo', 'ws', 'add-targets', '--manifest', 'bad.jsonl']),
        'bad.jsonl line 3',
        says,
      );
      assert.deepEqual(files('ws'), before, 'the workspace is byte-identical');
    });
  }

  it('other bytes under a listed path need --replace, for a batch as for add-target', () => {
    writeFileSync(
      join(dir, 'r.jsonl'),
      `${line('new/one', 'one')}\n${line('remote/a.bin', 'changed')}\n`,
    );
    const before = files('ws');
    refused(
      tufa(['repo', '--repo', 'ws', 'add-targets', '--manifest', 'r.jsonl']),
      'r.jsonl line 2',
      'remote/a.bin',
      '--replace',
    );
    assert.deepEqual(files('ws'), before);
    // the same bytes again are no change of meaning: accepted without --replace
    writeFileSync(join(dir, 's.jsonl'), `${line('remote/a.bin', 'aaa')}\n`);
    ok(['repo', '--repo', 'ws', 'add-targets', '--manifest', 's.jsonl']);
    ok(['repo', '--repo', 'ws', 'add-targets', '--manifest', 'r.jsonl', '--replace']);
    assert.equal(
      role('ws', 'targets').signed.targets['remote/a.bin']?.hashes.sha256,
      sha256('changed'),
    );
    sign('ws', 'targets');
  });

  it('a symbolic link in a folder is refused', () => {
    mkdirSync(join(dir, 'linked'));
    writeFileSync(join(dir, 'linked', 'f'), 'f\n');
    spawnSync('ln', ['-s', '/etc/hostname', join(dir, 'linked', 'l')]);
    const before = files('ws');
    refused(
      tufa(['repo', '--repo', 'ws', 'add-targets', 'linked']),
      'linked/l',
      'not a regular file',
    );
    assert.deepEqual(files('ws'), before);
  });

  it('delegation rules apply to each target: path patterns and terminating roles', () => {
    init('wd');
    ok([
      'repo',
      '--repo',
      'wd',
      'delegate',
      '--to',
      'team',
      '--key',
      'k.pub.json',
      '--paths',
      'team/*',
      '--terminating',
    ]);
    ok([
      'repo',
      '--repo',
      'wd',
      'delegate',
      '--to',
      'late',
      '--key',
      'k.pub.json',
      '--paths',
      'team/*',
    ]);
    sign('wd', 'targets', 'team', 'late');
    // a path the role is not delegated
    writeFileSync(join(dir, 'd1.jsonl'), `${line('team/a', 'a')}\n${line('other/x', 'x')}\n`);
    const before = files('wd');
    refused(
      tufa(['repo', '--repo', 'wd', 'add-targets', '--manifest', 'd1.jsonl', '--role', 'team']),
      'line 2',
      'never reach team',
    );
    // a role behind a terminating delegation for the path
    writeFileSync(join(dir, 'd2.jsonl'), `${line('team/b', 'b')}\n`);
    refused(
      tufa(['repo', '--repo', 'wd', 'add-targets', '--manifest', 'd2.jsonl', '--role', 'late']),
      'line 1',
      'never reach late',
    );
    assert.deepEqual(files('wd'), before);
    // without --role: each path goes to the role it is delegated to
    writeFileSync(join(dir, 'd3.jsonl'), `${line('team/a', 'a')}\n${line('top.txt', 't')}\n`);
    const r = ok(['repo', '--repo', 'wd', 'add-targets', '--manifest', 'd3.jsonl']);
    assert.match(r.stdout, /team 1/);
    assert.deepEqual(Object.keys(role('wd', 'team').signed.targets), ['team/a']);
    assert.deepEqual(Object.keys(role('wd', 'targets').signed.targets), ['top.txt']);
    assert.equal(version('wd', 'team'), 2);
    assert.equal(version('wd', 'targets'), 2);
    assert.equal(version('wd', 'late'), 1, 'a role the batch does not touch keeps its version');
  });

  it('hashed bins: a batch gives each bin it touches one new version, and no other', () => {
    init('wb');
    ok([
      'repo',
      '--repo',
      'wb',
      'delegate',
      '--to',
      'bins',
      '--key',
      'k.pub.json',
      '--succinct-bits',
      '3',
    ]);
    const bins = Array.from({ length: 8 }, (_, b) => `bins-${b}`);
    sign('wb', 'targets', ...bins);
    const paths = Array.from({ length: 40 }, (_, i) => `pkg/${i}.tgz`);
    const binOf = (p: string) => `bins-${Number.parseInt(sha256(p).slice(0, 2), 16) >> 5}`;
    // two of the bins get nothing: paths that hash there are left out
    const skip = new Set(['bins-3', 'bins-6']);
    const chosen = paths.filter((p) => !skip.has(binOf(p)));
    writeFileSync(join(dir, 'b.jsonl'), chosen.map((p) => line(p, p)).join('\n'));
    ok(['repo', '--repo', 'wb', 'add-targets', '--manifest', 'b.jsonl']);
    for (const b of bins) {
      const mine = chosen.filter((p) => binOf(p) === b);
      assert.equal(version('wb', b), mine.length > 0 ? 2 : 1, b);
      assert.deepEqual(Object.keys(role('wb', b).signed.targets).sort(), mine.sort(), b);
    }
    assert.equal(version('wb', 'targets'), 1, 'targets lists nothing new');
    // sign --all: one change, signing exactly the bins the batch touched
    const touched = bins.filter((b) => version('wb', b) === 2);
    const untouched = new Map(
      bins
        .filter((b) => version('wb', b) === 1)
        .map((b) => [b, readFileSync(join(dir, 'wb', 'metadata', `${b}.json`), 'utf8')]),
    );
    const signed = ok(['repo', '--repo', 'wb', 'sign', '--all', '--key', 'k']);
    // root, snapshot and timestamp were never signed here: the key may sign them too
    assert.match(
      signed.stdout,
      new RegExp(`^${touched.length + 3} of ${bins.length + 4} roles signed`),
    );
    for (const b of touched) assert.equal(role('wb', b).signatures.length, 1, b);
    for (const [b, text] of untouched)
      assert.equal(
        readFileSync(join(dir, 'wb', 'metadata', `${b}.json`), 'utf8'),
        text,
        `${b} untouched`,
      );
    const again = ok(['repo', '--repo', 'wb', 'sign', '--all', '--key', 'k']);
    assert.match(again.stdout, new RegExp(`^0 of ${bins.length + 4} roles signed`));
    // a path forced into the wrong bin is refused
    const p = chosen[0] as string;
    const wrong = bins.find((b) => b !== binOf(p)) as string;
    writeFileSync(join(dir, 'w.jsonl'), line(`${p}.2`, 'x'));
    const other = bins.find((b) => b !== binOf(`${p}.2`)) as string;
    refused(
      tufa(['repo', '--repo', 'wb', 'add-targets', '--manifest', 'w.jsonl', '--role', other]),
      'never reach',
    );
    assert.ok(wrong);
  });

  describe('add-images against a real docker-registry', () => {
    let reg: RegistryServer | undefined;
    let a: BuiltImage;
    let b: BuiltImage;
    before(async function () {
      const why = skipReason();
      if (why !== undefined) {
        console.log(`    skipped: ${why}`);
        this.skip();
      }
      reg = await RegistryServer.start('plain');
      const layout = join(dir, 'build', 'layout');
      const unique = (what: string) => `${what} ${randomBytes(8).toString('hex')}\n`;
      a = await buildImage(`${layout}:one`, { '/etc/one': unique('one') });
      b = await buildImage(`${layout}:two`, { '/etc/two': unique('two') });
      await reg.push(a.ref, 'demo/app:1.0');
      await reg.push(a.ref, 'demo/app:1.0.1');
      await reg.push(b.ref, 'demo/app:2.0');
    });
    after(async () => reg?.stop());

    it('the tag list is read page by page (Link: rel="next")', async () => {
      const client = new RegistryClient();
      try {
        const repo = Reference.parse(`${reg?.host}/demo/app`);
        assert.deepEqual((await client.listTags(repo, { pageSize: 1 })).sort(), [
          '1.0',
          '1.0.1',
          '2.0',
        ]);
        await assert.rejects(
          client.listTags(repo, { pageSize: 1, maxTags: 2 }),
          /more than 2 tags/,
        );
      } finally {
        await client.close();
      }
    });

    it('--all-tags lists every tag and each digest path, as one new version', () => {
      init('wi');
      sign('wi', 'targets');
      const name = `${reg?.host}/demo/app`;
      const r = ok([
        'repo',
        '--repo',
        'wi',
        'add-images',
        '--all-tags',
        name,
        '--concurrency',
        '2',
      ]);
      assert.match(r.stdout, /3 images listed: targets 3/);
      const t = role('wi', 'targets');
      assert.equal(t.signed.version, 2, 'one version for the batch');
      const d = (x: BuiltImage) => x.digest.replace('sha256:', '');
      assert.deepEqual(
        Object.keys(t.signed.targets).sort(),
        [
          `${name}:1.0`,
          `${name}:1.0.1`,
          `${name}:2.0`,
          `${name}@${a.digest}`,
          `${name}@${b.digest}`,
        ].sort(),
      );
      assert.equal(t.signed.targets[`${name}:2.0`]?.hashes.sha256, d(b));
      assert.equal(t.signed.targets[`${name}:2.0`]?.length, b.manifest.length);
    });

    it('listed tags; a tag the registry does not have refuses the batch', () => {
      init('wl');
      const name = `${reg?.host}/demo/app`;
      const before = files('wl');
      const r = tufa(['repo', '--repo', 'wl', 'add-images', `${name}:1.0`, `${name}:nope`]);
      assert.notEqual(r.status, 0, show(r));
      assert.match(r.stderr, /nope/);
      assert.deepEqual(files('wl'), before);
      ok(['repo', '--repo', 'wl', 'add-images', `${name}:1.0`, `${name}:2.0`]);
      assert.equal(Object.keys(role('wl', 'targets').signed.targets).length, 4);
      refused(tufa(['repo', '--repo', 'wl', 'add-images', `${name}@${a.digest}`]), 'a tag');
    });
  });
});
