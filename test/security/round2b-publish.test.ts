/**
 * Security round 2b, the signing side: `repo publish` writing through target paths with `..`,
 * targets listed outside a role's delegation, and updates shadowed by an earlier role on the
 * delegation walk (the client stops at the first role that lists a path).
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { JsonObject } from '../../src/core/json.js';
import {
  hashesOf,
  KeyObjectSigner,
  publishWorkspace,
  repositoryStatus,
  type Signer,
  type TopRole,
  Workspace,
} from '../../src/repository/index.js';
import { defineCases, type SecurityCase } from './harness.js';

const te = new TextEncoder();

type Keys = Record<TopRole, KeyObjectSigner>;

function signer(): KeyObjectSigner {
  return new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);
}

function newKeys(): Keys {
  return { root: signer(), targets: signer(), snapshot: signer(), timestamp: signer() };
}

async function init(dir: string, k: Keys, consistentSnapshot: boolean): Promise<Workspace> {
  return Workspace.init(dir, {
    keys: {
      root: [k.root.publicKey],
      targets: [k.targets.publicKey],
      snapshot: [k.snapshot.publicKey],
      timestamp: [k.timestamp.publicKey],
    },
    consistentSnapshot,
    now: Date.now(),
  });
}

/** release signs every role that needs it (delegated ones with `delegated`), then snapshot and timestamp. */
async function release(ws: Workspace, k: Keys, delegated: Signer): Promise<void> {
  for (const { name } of await ws.targetsRoles())
    await ws.sign(name, name === 'targets' ? k.targets : delegated);
  await ws.sign('root', k.root);
  await ws.refreshSnapshotMeta();
  await ws.sign('snapshot', k.snapshot);
  await ws.refreshTimestampMeta();
  await ws.sign('timestamp', k.timestamp);
}

/**
 * teamWrites is a delegated team editing its own role file by hand (the workspace API is not the
 * only writer of role files): it lists `entries` with content stored by hash, then signs.
 */
async function teamWrites(
  ws: Workspace,
  role: string,
  key: Signer,
  entries: Array<[path: string, content: Uint8Array]>,
  change?: (signed: JsonObject) => void,
): Promise<void> {
  const env = await ws.read(role);
  const targets = env.signed.targets as JsonObject;
  for (const [path, content] of entries) {
    const hashes = hashesOf(content);
    mkdirSync(ws.contentDir, { recursive: true });
    writeFileSync(join(ws.contentDir, hashes.sha256 as string), content);
    Object.defineProperty(targets, path, {
      value: { length: content.length, hashes },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  change?.(env.signed);
  env.signed.version = (env.signed.version as number) + 1;
  env.signatures = [];
  writeFileSync(ws.fileOf(role), `${JSON.stringify(env, null, 2)}\n`);
  await ws.sign(role, key);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** siteState maps every file under a site (symbolic links as such) to its sha256. */
function siteState(site: string, pre = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(join(site, pre), { withFileTypes: true })) {
    const rel = pre + e.name;
    if (e.isDirectory()) Object.assign(out, siteState(site, `${rel}/`));
    else out[rel] = e.isSymbolicLink() ? 'symlink' : sha256(readFileSync(join(site, rel)));
  }
  return out;
}

const cases: SecurityCase[] = [
  {
    id: 'R2B-01',
    title:
      'publish never writes through a target path with a dot-dot segment, and a role lists only paths delegated to it',
    attack:
      "Without consistent snapshots, a delegated team lists `../1.root.json` (or `team-a/../../targets.json`) in its own signed role file, so that `repo publish` copies its bytes over the site's trust anchor; `add-target --role team-a` lists a path team-a is not delegated; two targets `d` and `d/e` make publish fail half-way",
    source: 'security review round 2b, item 1 (reproduced with `tufa repo publish`)',
    expect: 'MISUSE',
    async run(t) {
      const dir = t.tmp();
      const site = join(dir, 'site');
      const k = newKeys();
      const team = signer();
      const ws = await init(join(dir, 'ws'), k, false);
      await ws.delegate({ name: 'team-a', keys: [team.publicKey], paths: ['team-a/*'] });
      await ws.addTargetFile('team-a/app.txt', te.encode('app v1\n'));
      await release(ws, k, team);
      await publishWorkspace(ws, site);
      const anchor = readFileSync(join(site, '1.root.json'));
      const targetsJson = readFileSync(join(site, 'targets.json'));

      const evil = te.encode('{"signed":{"_type":"root"},"signatures":[]}\n');
      // added through the workspace: refused, nothing listed
      for (const path of [
        '../1.root.json',
        'team-a/../../targets.json',
        'team-a/./app.txt',
        'team-a//app.txt',
        '/etc/passwd',
        'team-a/',
        'team-a/..%2f..%2f1.root.json',
        'team-a\\..\\..\\1.root.json',
      ]) {
        await t.refuses(ws.addTargetFile(path, evil, 'team-a'), 'MISUSE', /target path/);
        await t.refuses(ws.addTargetFile(path, evil), 'MISUSE', /target path/);
      }
      // a path outside team-a's delegation: clients never look for it in team-a
      await t.refuses(ws.addTargetFile('other/x.txt', evil, 'team-a'), 'MISUSE', /team-a/);
      await t.refuses(ws.addTargetFile('team-a/app.txt', evil, 'snapshot'), 'MISUSE');
      assert.deepEqual(Object.keys((await ws.read('team-a')).signed.targets as object), [
        'team-a/app.txt',
      ]);

      // the team writes its own signed file: publish refuses it and writes nothing
      for (const path of ['../1.root.json', 'team-a/../../targets.json']) {
        const before = await ws.bytes('team-a');
        await teamWrites(ws, 'team-a', team, [[path, evil]]);
        await release(ws, k, team);
        const s = await repositoryStatus(ws);
        assert.equal(s.ready, false, `status flags ${path}`);
        assert.ok(
          s.problems.some((p) => p.includes(JSON.stringify(path))),
          s.problems.join('\n'),
        );
        await t.refuses(publishWorkspace(ws, site), 'MISUSE', /target path/);
        assert.equal(sha256(readFileSync(join(site, '1.root.json'))), sha256(anchor));
        assert.equal(sha256(readFileSync(join(site, 'targets.json'))), sha256(targetsJson));
        writeFileSync(ws.fileOf('team-a'), before); // the admin reverts the team's file
      }

      // a path listed outside the role's delegation, written by the team: flagged, refused
      await teamWrites(ws, 'team-a', team, [['elsewhere.txt', evil]]);
      await release(ws, k, team);
      await t.refuses(publishWorkspace(ws, site), 'MISUSE', /elsewhere\.txt/);

      // `d` and `d/e` cannot both be files: flagged by status, refused before anything is written
      const ws2 = await init(join(dir, 'ws2'), k, false);
      const site2 = join(dir, 'site2');
      await ws2.addTargetFile('d', te.encode('d\n'));
      await release(ws2, k, team);
      await publishWorkspace(ws2, site2);
      const stamp = readFileSync(join(site2, 'timestamp.json'));
      const listed = readFileSync(join(site2, 'targets.json'));
      await ws2.addTargetFile('d/e', te.encode('d/e\n'));
      await ws2.addTargetFile('D', te.encode('D\n'));
      await release(ws2, k, team);
      await t.refuses(publishWorkspace(ws2, site2), 'MISUSE', /also the folder of "d\/e"/);
      await t.refuses(publishWorkspace(ws2, site2), 'MISUSE', /"D" and "d" are one file/);
      // the site still holds `targets/d` from the last publish: publish's own check of the
      // files it writes refuses to need it as a folder
      await ws2.removeTarget('D');
      await ws2.removeTarget('d');
      await release(ws2, k, team);
      assert.equal((await repositoryStatus(ws2)).ready, true);
      await t.refuses(publishWorkspace(ws2, site2), 'MISUSE', /already a file, not a folder/);
      assert.equal(sha256(readFileSync(join(site2, 'timestamp.json'))), sha256(stamp));
      assert.equal(sha256(readFileSync(join(site2, 'targets.json'))), sha256(listed));
      assert.equal(existsSync(join(site2, 'targets', 'D')), false, 'nothing written');

      // a publish that would fail on the file system is refused before the first write (it
      // used to rewrite targets.json in place, then fail: every client broken)
      writeFileSync(ws.fileOf('team-a'), readFileSync(join(site, 'team-a.json'))); // reverted
      const state = siteState(site);
      await teamWrites(ws, 'team-a', team, [
        ['team-a/new.txt', te.encode('new\n')],
        [`team-a/${'x'.repeat(300)}`, te.encode('long\n')],
      ]);
      await release(ws, k, team);
      assert.equal((await repositoryStatus(ws)).ready, false, 'status flags a 300-byte name');
      await t.refuses(publishWorkspace(ws, site), 'MISUSE', /longer than 255 bytes/);
      assert.deepEqual(siteState(site), state, 'a refused publish writes nothing');
      writeFileSync(ws.fileOf('team-a'), readFileSync(join(site, 'team-a.json'))); // reverted
      // 240 bytes is a file name, but not with writeFileAtomic's temp suffix: publish knows
      await ws.addTargetFile(`team-a/${'y'.repeat(240)}`, te.encode('long\n'));
      await release(ws, k, team);
      await t.refuses(publishWorkspace(ws, site), 'MISUSE', /longer than 237 bytes/);
      assert.deepEqual(siteState(site), state, 'a refused publish writes nothing');
      await ws.removeTarget(`team-a/${'y'.repeat(240)}`);
      // the previous publish left a folder where a file goes now (it used to fail with EISDIR
      // after targets.json was rewritten), a symbolic link in the site: refused, nothing written
      const ws3 = await init(join(dir, 'ws3'), k, false);
      const site3 = join(dir, 'site3');
      await ws3.addTargetFile('d/e', te.encode('de\n'));
      await release(ws3, k, team);
      await publishWorkspace(ws3, site3);
      const state3 = siteState(site3);
      await ws3.removeTarget('d/e');
      await ws3.addTargetFile('d', te.encode('d\n'));
      await release(ws3, k, team);
      assert.equal((await repositoryStatus(ws3)).ready, true);
      await t.refuses(publishWorkspace(ws3, site3), 'MISUSE', /already a folder, not a file/);
      assert.deepEqual(siteState(site3), state3, 'a refused publish writes nothing');
      await ws3.removeTarget('d');
      await ws3.addTargetFile('l/x', te.encode('x\n'));
      await release(ws3, k, team);
      mkdirSync(join(dir, 'elsewhere'));
      symlinkSync(join(dir, 'elsewhere'), join(site3, 'targets', 'l'));
      await t.refuses(publishWorkspace(ws3, site3), 'MISUSE', /symbolic link/);
      assert.deepEqual(readdirSync(join(dir, 'elsewhere')), [], 'nothing written through a link');
      // the order of the writes (TUF): targets, delegated roles, targets, snapshot, root, timestamp
      const ws4 = await init(join(dir, 'ws4'), k, true);
      await ws4.delegate({ name: 'team-a', keys: [team.publicKey], paths: ['team-a/*'] });
      await ws4.addTargetFile('team-a/app.txt', te.encode('app\n'));
      await ws4.addTargetFile('top.txt', te.encode('top\n'));
      await release(ws4, k, team);
      const written = (await publishWorkspace(ws4, join(dir, 'site4'))).files;
      const at = (re: RegExp) => written.findIndex((f) => re.test(f));
      const lastTarget = written.findLastIndex((f) => f.startsWith('targets/'));
      assert.ok(lastTarget < at(/^\d+\.team-a\.json$/), written.join(' '));
      assert.ok(at(/^\d+\.team-a\.json$/) < at(/^\d+\.targets\.json$/), written.join(' '));
      assert.ok(at(/^\d+\.targets\.json$/) < at(/^\d+\.snapshot\.json$/), written.join(' '));
      assert.ok(at(/^\d+\.snapshot\.json$/) < at(/^1\.root\.json$/), written.join(' '));
      assert.equal(written.at(-1), 'timestamp.json');

      // names that are one file on macOS/Windows (full case folding, trailing dots and spaces)
      for (const [a, b] of [
        ['σ', 'ς'],
        ['s', 'ſ'],
        ['μ', 'µ'],
        ['x.', 'x'],
        ['x ', 'x'],
      ]) {
        const w = await init(t.tmp(), k, false);
        await w.addTargetFile(`p/${a}`, te.encode('A\n'));
        await w.addTargetFile(`p/${b}`, te.encode('B\n'));
        await release(w, k, team);
        assert.equal((await repositoryStatus(w)).ready, false, `status flags ${a}/${b}`);
        await t.refuses(publishWorkspace(w, join(t.tmp(), 'site')), 'MISUSE', /one file/);
      }
      // names Windows cannot hold, paths clients cannot fetch as listed
      for (const path of ['team-a/a:b', 'team-a/CON', 'team-a/nul.txt', 'team-a/com1.tar.gz'])
        await t.refuses(ws.addTargetFile(path, evil), 'MISUSE', /target path/);
      for (const path of [
        'team-a/x%41',
        'team-a/q?x',
        'team-a/f#x',
        'constructor',
        '__proto__',
        'toString',
        'team-a/...',
      ]) {
        await t.refuses(ws.addTargetFile(path, evil), 'MISUSE', /target path/);
        const e = { length: 1, hashes: hashesOf(te.encode('x')) };
        await t.refuses(ws.addTarget(path, e), 'MISUSE', /target path/);
      }
      // an image reference is listed, not published as a file: `:` stays allowed there
      const img = { length: 3, hashes: hashesOf(te.encode('img')) };
      assert.equal(await ws2.addTarget('localhost:5000/app:v1', img), 'targets');
      // written by a team: status flags them, publish refuses (both layouts)
      for (const consistent of [false, true]) {
        const w = await init(t.tmp(), k, consistent);
        await w.delegate({ name: 'team-a', keys: [team.publicKey], paths: ['team-a/*'] });
        await release(w, k, team);
        for (const path of [
          'team-a/x%41',
          'team-a/q?x',
          'team-a/f#x',
          'team-a/a:b',
          'team-a/AUX',
        ]) {
          const saved = await w.bytes('team-a');
          await teamWrites(w, 'team-a', team, [[path, evil]]);
          await release(w, k, team);
          const s = await repositoryStatus(w);
          assert.equal(s.ready, false, `status flags ${path}`);
          assert.ok(
            s.problems.some((p) => p.includes(JSON.stringify(path))),
            s.problems.join('\n'),
          );
          await t.refuses(publishWorkspace(w, join(t.tmp(), 'site')), 'MISUSE', /target path/);
          writeFileSync(w.fileOf('team-a'), saved);
        }
      }
    },
  },
  {
    id: 'R2B-04',
    title:
      'an update an earlier role on the delegation walk shadows is refused, flagged and not published',
    attack:
      'Tags listed in `targets` before delegations existed (e.g. by `notary import`) shadow the new releases `add-target`/`add-image` put into the delegated role: clients stop at `targets` and keep the old, vulnerable bytes, while the tool reports success; `remove-target` cannot see the stale entry',
    source: 'security review round 2b, item 4; TUF 5.6.7 (pre-order depth-first delegation search)',
    expect: 'MISUSE',
    async run(t) {
      const dir = t.tmp();
      const k = newKeys();
      const team = signer();
      const ws = await init(join(dir, 'ws'), k, true);
      const tag = 'registry.example/app:v1';
      const entry = (s: string) => {
        const b = te.encode(s);
        return { length: b.length, hashes: hashesOf(b) };
      };
      // imported before any delegation existed
      assert.equal(await ws.addTarget(tag, entry('old')), 'targets');
      await ws.delegate({ name: 'team', keys: [team.publicKey], paths: ['registry.example/*'] });
      await ws.delegate({
        name: 'team-b',
        keys: [team.publicKey],
        paths: ['registry.example/app:*'],
      });
      // the new release goes where the delegation points: refused, naming targets
      await t.refuses(ws.addTarget(tag, entry('new')), 'MISUSE', /\btargets\b/);
      await t.refuses(ws.addTarget(tag, entry('new'), 'team'), 'MISUSE', /\btargets\b/);
      // removal from a role the walk reaches after one that lists the path: refused
      await assert.rejects(ws.removeTarget(tag, 'team'));
      // siblings: team comes before team-b on the walk
      assert.equal(await ws.addTarget('registry.example/app:v2', entry('v2')), 'team');
      await t.refuses(
        ws.addTarget('registry.example/app:v2', entry('v2b'), 'team-b'),
        'MISUSE',
        /listed by team(?!-)/,
      );
      // remove-target sees the entry clients get: the one in targets
      assert.equal(await ws.removeTarget(tag), 'targets');
      assert.equal(await ws.addTarget(tag, entry('new')), 'team');

      // a shadowed entry written by hand: status flags it, publish refuses it
      await teamWrites(ws, 'team-b', team, [['registry.example/app:v2', te.encode('v2c')]]);
      await t.refuses(
        ws.removeTarget('registry.example/app:v2', 'team-b'),
        'MISUSE',
        /listed by team(?!-)/,
      );
      await release(ws, k, team);
      const s = await repositoryStatus(ws);
      assert.equal(s.ready, false);
      assert.ok(
        s.problems.some((p) => /team-b/.test(p) && /shadowed by team(?!-)/.test(p)),
        s.problems.join('\n'),
      );
      await t.refuses(publishWorkspace(ws, join(dir, 'site')), 'MISUSE', /shadowed/);
      assert.equal(existsSync(join(dir, 'site')), false);

      // a delegated role whose file is another metadata file (`2.root.json` is root v2's):
      // refused when delegating, when reading its file, flagged when a team delegates to it
      for (const name of ['2.root', '1.ROOT', '07.Root'])
        await t.refuses(
          ws.delegate({ name, keys: [team.publicKey], paths: ['x/*'] }),
          'MISUSE',
          /metadata file/,
        );
      await t.refuses(ws.read('2.root'), 'MISUSE', /root version/);
      // path hash prefixes in upper case: tuf-js compares them with lower-case digests
      await t.refuses(
        ws.delegate({ name: 'bins', keys: [team.publicKey], pathHashPrefixes: ['0A'] }),
        'MISUSE',
        /lower case/,
      );
      const ws2 = await init(join(dir, 'ws2'), k, true);
      await ws2.delegate({ name: 'team-a', keys: [team.publicKey], paths: ['team-a/*'] });
      await release(ws2, k, team);
      const keys = { [team.publicKey.keyid]: team.publicKey.toJSON() };
      const sub = (name: string, more: JsonObject) => ({
        name,
        keyids: [team.publicKey.keyid],
        threshold: 1,
        terminating: false,
        ...more,
      });
      // the team's own sub-role file for `bins`, as the admin receives it
      const empty = JSON.parse(new TextDecoder().decode(await ws2.bytes('team-a')));
      empty.signed.targets = {};
      empty.signatures = [];
      writeFileSync(ws2.fileOf('bins'), JSON.stringify(empty));
      await teamWrites(ws2, 'team-a', team, [], (s) => {
        s.delegations = {
          keys,
          roles: [
            sub('2.root', { paths: ['team-a/sub*'] }),
            sub('bins', { path_hash_prefixes: ['AB'] }),
          ],
        };
      });
      await release(ws2, k, team);
      const s2 = await repositoryStatus(ws2);
      assert.equal(s2.ready, false);
      assert.ok(
        s2.problems.some((p) => p.includes('"2.root"') && /metadata file/.test(p)),
        s2.problems.join('\n'),
      );
      assert.ok(
        s2.problems.some((p) => p.includes('"AB"') && /lower case/.test(p)),
        s2.problems.join('\n'),
      );
      await t.refuses(publishWorkspace(ws2, join(dir, 'site2')), 'MISUSE', /metadata file/);
    },
  },
];

describe('security: round 2b, publishing and the delegation walk on the signing side', () => {
  defineCases(cases);
});
