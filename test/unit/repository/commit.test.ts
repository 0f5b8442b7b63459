/**
 * All-or-nothing workspace commits (src/repository/commit.ts): a journal left by a killed
 * process is completed, temp files of a commit that never reached its journal are removed, and
 * a journal naming anything but workspace files is refused.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MisuseError } from '../../../src/core/index.js';
import { COMMIT_JOURNAL, commitFiles, recoverCommit } from '../../../src/repository/commit.js';

const te = new TextEncoder();

describe('repository commit (all-or-nothing file changes)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tufa-commit-test-'));
    mkdirSync(join(dir, 'metadata'));
    mkdirSync(join(dir, 'targets'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const read = (p: string) => readFileSync(join(dir, p), 'utf8');

  it('stores every file, leaves no journal or temp file', async () => {
    writeFileSync(join(dir, 'metadata', 'targets.json'), 'old');
    await commitFiles(dir, [
      { path: 'targets/abc', bytes: te.encode('content') },
      { path: 'metadata/targets.json', bytes: te.encode('new') },
    ]);
    assert.equal(read('targets/abc'), 'content');
    assert.equal(read('metadata/targets.json'), 'new');
    assert.deepEqual(readdirSync(join(dir, 'metadata')), ['targets.json']);
    assert.equal(existsSync(join(dir, COMMIT_JOURNAL)), false);
  });

  it('a journal left by a killed commit is completed; stray temp files are removed', async () => {
    writeFileSync(join(dir, 'metadata', 'targets.json'), 'v1');
    // the state after a kill: team.json renamed into place, targets.json's temp still waiting
    writeFileSync(join(dir, 'metadata', 'team.json'), 'team v1');
    writeFileSync(join(dir, 'metadata', '.targets.json.0123456789ab.tmp'), 'v2');
    writeFileSync(join(dir, 'metadata', '.snapshot.json.ba9876543210.tmp'), 'never journaled');
    writeFileSync(
      join(dir, COMMIT_JOURNAL),
      JSON.stringify({
        steps: [
          { tmp: 'metadata/.team.json.aaaaaaaaaaaa.tmp', to: 'metadata/team.json' },
          { tmp: 'metadata/.targets.json.0123456789ab.tmp', to: 'metadata/targets.json' },
        ],
      }),
    );
    assert.equal(await recoverCommit(dir), true);
    assert.equal(read('metadata/targets.json'), 'v2');
    assert.equal(read('metadata/team.json'), 'team v1');
    assert.deepEqual(readdirSync(join(dir, 'metadata')).sort(), ['targets.json', 'team.json']);
    assert.equal(existsSync(join(dir, COMMIT_JOURNAL)), false);
    // no journal: temp files of commits that never reached one go (the journal's own too),
    // nothing else of the workspace folder
    writeFileSync(join(dir, 'metadata', '.root.json.0123456789ab.tmp'), 'x');
    writeFileSync(join(dir, `.${COMMIT_JOURNAL}.0123456789ab.tmp`), 'x');
    writeFileSync(join(dir, '.mine.0123456789ab.tmp'), 'not ours');
    assert.equal(await recoverCommit(dir), false);
    assert.deepEqual(readdirSync(join(dir, 'metadata')).sort(), ['targets.json', 'team.json']);
    assert.deepEqual(readdirSync(dir).sort(), ['.mine.0123456789ab.tmp', 'metadata', 'targets']);
  });

  it('a journal naming a file outside metadata/ and targets/ is refused, nothing renamed', async () => {
    for (const step of [
      { tmp: 'metadata/.x.json.0123456789ab.tmp', to: '../x.json' },
      { tmp: 'metadata/.x.json.0123456789ab.tmp', to: 'metadata/../../x.json' },
      { tmp: '.tufa.lock', to: 'metadata/root.json' },
      { tmp: 'targets/.root.json.0123456789ab.tmp', to: 'metadata/root.json' },
    ]) {
      writeFileSync(join(dir, COMMIT_JOURNAL), JSON.stringify({ steps: [step] }));
      await assert.rejects(recoverCommit(dir), MisuseError, JSON.stringify(step));
    }
  });

  it('create-only files: an existing one refuses the commit and undoes its creations', async () => {
    writeFileSync(join(dir, 'metadata', 'root.json'), 'theirs');
    await assert.rejects(
      commitFiles(dir, [
        { path: 'metadata/targets.json', bytes: te.encode('mine'), create: true },
        { path: 'metadata/root.json', bytes: te.encode('mine'), create: true },
      ]),
      /exists already/,
    );
    assert.equal(read('metadata/root.json'), 'theirs');
    assert.deepEqual(readdirSync(join(dir, 'metadata')), ['root.json']);
    assert.equal(existsSync(join(dir, COMMIT_JOURNAL)), false);
  });
});
