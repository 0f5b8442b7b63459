/**
 * The delegation search (TUF 5.6.7): order, terminating delegations, cycles, the visit bound,
 * path patterns, hash prefixes and succinct bins.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { findTarget, walkDelegations } from '../../../src/core/delegation-walk.js';
import { SuccinctRoles, TargetPathHash } from '../../../src/core/metadata/delegations.js';
import { isTargetInPathPattern } from '../../../src/core/metadata/pattern.js';
import { TrustedMetadataSet } from '../../../src/core/trusted-set.js';
import { nodeBackend } from '../../../src/crypto/index.js';
import { NOW, SimRepo, TestKey } from '../../support/tuf-builder.js';

const enc = new TextEncoder();

/** search runs findTarget and records which roles were loaded, in order. */
function search(repo: SimRepo, path: string, maxDelegations?: number) {
  repo.refreshMeta();
  const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
  set.updateTimestamp(repo.timestampBytes());
  set.updateSnapshot(repo.snapshotBytes());
  const loaded: string[] = [];
  const found = findTarget(
    set,
    path,
    (role) => {
      loaded.push(role);
      return repo.targetsBytes(role);
    },
    maxDelegations === undefined
      ? { backend: nodeBackend }
      : { maxDelegations, backend: nodeBackend },
  );
  return { found, loaded };
}

describe('delegation walk', () => {
  it('searches pre-order depth first, in the order the JSON lists roles', () => {
    const repo = new SimRepo();
    repo.delegate('targets', 'A');
    repo.delegate('A', 'A1');
    repo.delegate('A', 'A2');
    repo.delegate('targets', 'B');
    repo.delegate('B', 'B1');
    repo.addTarget('f', enc.encode('x'), 'B1');
    const { found, loaded } = search(repo, 'f');
    assert.deepEqual(loaded, ['targets', 'A', 'A1', 'A2', 'B', 'B1']);
    assert.equal(found?.role, 'B1');
  });

  it('keeps the listed order for role names that look like integers', () => {
    const repo = new SimRepo();
    repo.delegate('targets', '10');
    repo.delegate('targets', '2');
    repo.delegate('targets', '1');
    const { loaded } = search(repo, 'nothing');
    assert.deepEqual(loaded, ['targets', '10', '2', '1']);
  });

  it('returns the first match: an earlier role wins over a later one', () => {
    const repo = new SimRepo();
    repo.delegate('targets', 'first');
    repo.delegate('targets', 'second');
    repo.addTarget('f', enc.encode('one'), 'first');
    repo.addTarget('f', enc.encode('two'), 'second');
    const { found, loaded } = search(repo, 'f');
    assert.equal(found?.role, 'first');
    assert.equal(found?.target.length, 3);
    assert.deepEqual(loaded, ['targets', 'first']);
  });

  it('stops at a terminating delegation (go-tuf CVE-2024-47534)', () => {
    const repo = new SimRepo();
    repo.delegate('targets', 'term', { terminating: true, paths: ['f'] });
    repo.delegate('targets', 'later', { paths: ['*'] });
    repo.addTarget('f', enc.encode('evil'), 'later');
    const { found, loaded } = search(repo, 'f');
    assert.equal(found, undefined);
    assert.deepEqual(loaded, ['targets', 'term']);
  });

  it('a terminating delegation deeper down also drops pending siblings of its ancestors', () => {
    const repo = new SimRepo();
    repo.delegate('targets', 'A');
    repo.delegate('A', 'A1', { terminating: true });
    repo.delegate('targets', 'B');
    repo.addTarget('f', enc.encode('evil'), 'B');
    const { found, loaded } = search(repo, 'f');
    assert.equal(found, undefined);
    assert.deepEqual(loaded, ['targets', 'A', 'A1']);
  });

  it('a non-matching terminating delegation does not stop the search', () => {
    const repo = new SimRepo();
    repo.delegate('targets', 'term', { terminating: true, paths: ['other/*'] });
    repo.delegate('targets', 'ok', { paths: ['*'] });
    repo.addTarget('f', enc.encode('good'), 'ok');
    const { found, loaded } = search(repo, 'f');
    assert.equal(found?.role, 'ok');
    assert.deepEqual(loaded, ['targets', 'ok']);
  });

  it('ends cycles and honours the bound on visited roles', () => {
    const repo = new SimRepo();
    const ka = new TestKey();
    const kb = new TestKey();
    repo.delegate('targets', 'a', { keys: [ka] });
    repo.delegate('a', 'b', { keys: [kb] });
    // b delegates back to a (without replacing a's own metadata)
    (repo.delegated.get('b') as { signed: Record<string, unknown> }).signed.delegations = {
      keys: { [ka.keyid]: ka.json },
      roles: [{ name: 'a', keyids: [ka.keyid], threshold: 1, terminating: false, paths: ['*'] }],
    };
    const { found, loaded } = search(repo, 'f');
    assert.equal(found, undefined);
    assert.deepEqual(loaded, ['targets', 'a', 'b', 'a']);
    assert.ok(loaded.length <= 32);
    const bounded = search(repo, 'f', 2);
    assert.deepEqual(bounded.loaded, ['targets', 'a']);
  });

  it('loads a role only when the path is delegated to it', () => {
    const repo = new SimRepo();
    repo.delegate('targets', 'acme', { paths: ['ghcr.io/acme/*'] });
    repo.delegate('targets', 'other', { paths: ['ghcr.io/other/*'] });
    repo.addTarget('ghcr.io/acme/api:1', enc.encode('m'), 'acme');
    const { found, loaded } = search(repo, 'ghcr.io/acme/api:1');
    assert.equal(found?.role, 'acme');
    assert.deepEqual(loaded, ['targets', 'acme']);
    // one more segment: * never crosses "/"
    assert.deepEqual(search(repo, 'ghcr.io/acme/team/api:1').loaded, ['targets']);
  });

  it('matches hex path_hash_prefixes of the SHA-256 of the path', () => {
    const path = 'files/a.tgz';
    const hex = createHash('sha256').update(path).digest('hex');
    const repo = new SimRepo();
    repo.delegate('targets', 'wrong', { path_hash_prefixes: [hex[0] === '0' ? '1' : '0'] });
    repo.delegate('targets', 'bin', { path_hash_prefixes: [hex.slice(0, 2).toUpperCase()] });
    repo.addTarget(path, enc.encode('z'), 'bin');
    const { found, loaded } = search(repo, path);
    assert.equal(found?.role, 'bin');
    assert.deepEqual(loaded, ['targets', 'bin']);
  });

  it('yields requests carrying the verified delegator', () => {
    const repo = new SimRepo();
    repo.delegate('targets', 'A');
    repo.refreshMeta();
    const set = new TrustedMetadataSet(repo.rootBytes(), NOW, { backend: nodeBackend });
    set.updateTimestamp(repo.timestampBytes());
    set.updateSnapshot(repo.snapshotBytes());
    const walk = walkDelegations('x', { backend: nodeBackend });
    const first = walk.next();
    assert.equal(first.done, false);
    assert.deepEqual(first.value, { role: 'targets', parent: 'root', delegator: 'root' });
    const targets = set.updateTargets(repo.targetsBytes());
    const second = walk.next(targets);
    assert.ok(!second.done);
    assert.equal(second.value.role, 'A');
    assert.equal(second.value.parent, 'targets');
    assert.equal(second.value.delegator, targets);
  });
});

describe('path patterns (per-segment fnmatch)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['ghcr.io/acme/api:1.0', 'ghcr.io/acme/*', true],
    ['ghcr.io/acme/x/api:1.0', 'ghcr.io/acme/*', false],
    ['ghcr.io/acme/api:1.0', 'ghcr.io/*/api:1.?', true],
    ['ghcr.io/acme/api:1.10', 'ghcr.io/*/api:1.?', false],
    ['a/b', '*', false],
    ['a', '*', true],
    ['', '*', true],
    ['file.txt', '*.txt', true],
    ['file.txt', 'f*e*.t?t', true],
    ['x', '!x', false],
    ['!x', '!x', true],
    ['a', '{a,b}', false],
    ['{a,b}', '{a,b}', true],
    ['a', '+(a)', false],
    ['a', '@(a|b)', false],
    ['a/b/c', '**', false],
    ['**', '**', true],
    ['b', '[abc]', true],
    ['d', '[abc]', false],
    ['d', '[!abc]', true],
    ['m', '[a-z]', true],
    ['M', '[a-z]', false],
    ['[', '[', true],
    ['a[', 'a[', true],
    [']', '[]]', true],
    ['é', '?', true],
    ['😀', '?', true],
    ['ab', '?', false],
  ];
  for (const [path, pattern, want] of cases) {
    it(`${JSON.stringify(pattern)} ${want ? 'matches' : 'does not match'} ${JSON.stringify(path)}`, () => {
      assert.equal(isTargetInPathPattern(path, pattern), want);
    });
  }
});

describe('succinct hashed bins', () => {
  it('names bins with zero-padded hex and assigns paths by the top bits of SHA-256', () => {
    const sr = new SuccinctRoles([], 1, 8, 'bin');
    assert.equal(sr.suffixLength, 2);
    assert.equal(sr.numberOfBins, 256);
    for (const path of ['a', 'b/c.txt', 'ghcr.io/acme/api:1', 'é']) {
      const d = createHash('sha256').update(path).digest();
      const want = `bin-${d.subarray(0, 1).toString('hex')}`;
      assert.equal(sr.roleForTarget(new TargetPathHash(path, nodeBackend)), want);
    }
  });

  it('handles 1, 14 and 32 bits and recognises only its own bin names', () => {
    const one = new SuccinctRoles([], 1, 1, 'b');
    assert.equal(one.suffixLength, 1);
    assert.ok(one.isDelegatedRole('b-0') && one.isDelegatedRole('b-1'));
    assert.ok(
      !one.isDelegatedRole('b-2') && !one.isDelegatedRole('b-00') && !one.isDelegatedRole('c-0'),
    );
    const fourteen = new SuccinctRoles([], 1, 14, 'bins');
    assert.equal(fourteen.suffixLength, 4);
    assert.ok(fourteen.isDelegatedRole('bins-3fff'));
    assert.ok(!fourteen.isDelegatedRole('bins-4000'));
    assert.ok(!fourteen.isDelegatedRole('bins-3FFF'));
    const all = new SuccinctRoles([], 1, 32, 'x');
    const d = createHash('sha256').update('p').digest();
    assert.equal(
      all.roleForTarget(new TargetPathHash('p', nodeBackend)),
      `x-${d.subarray(0, 4).toString('hex')}`,
    );
  });

  it('finds a target in its bin through a real succinct delegation', () => {
    const repo = new SimRepo();
    const key = new TestKey();
    const sr = new SuccinctRoles([key.keyid], 1, 4, 'bin');
    const path = 'pkg/one.tgz';
    const bin = sr.roleForTarget(new TargetPathHash(path, nodeBackend));
    repo.targets.delegations = {
      keys: { [key.keyid]: key.json },
      succinct_roles: { keyids: [key.keyid], threshold: 1, bit_length: 4, name_prefix: 'bin' },
    };
    repo.delegated.set(bin, {
      keys: [key],
      signed: {
        _type: 'targets',
        spec_version: '1.0.34',
        version: 1,
        expires: '2030-01-01T00:00:00Z',
        targets: {},
      },
    });
    repo.addTarget(path, enc.encode('pkg'), bin);
    const { found, loaded } = search(repo, path);
    assert.equal(found?.role, bin);
    assert.deepEqual(loaded, ['targets', bin]);
  });
});
