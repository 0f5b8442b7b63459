/**
 * Registry credentials from a Docker config file: `auths` (base64 `auth`, `identitytoken`,
 * username/password), `credsStore` and `credHelpers` (a fake `docker-credential-testhelper`
 * script put first on PATH), Docker Hub's historical key, exact host matching, and
 * StaticCredentials.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  type Credentials,
  DockerConfigCredentials,
  StaticCredentials,
} from '../../../src/oci/credentials.js';
import { OciError } from '../../../src/oci/errors.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** The fake helper: answers by server URL on stdin, logs each server URL it was asked for. */
function helperScript(log: string): string {
  return `#!/bin/sh
[ "$1" = "get" ] || { echo "unexpected action $1" >&2; exit 9; }
server=$(cat)
printf '%s\\n' "$server" >> '${log}'
case "$server" in
  registry.example)
    printf '{"ServerURL":"registry.example","Username":"helper-user","Secret":"helper-secret"}' ;;
  token.example)
    printf '{"ServerURL":"token.example","Username":"<token>","Secret":"refresh-token-123"}' ;;
  https://index.docker.io/v1/)
    printf '{"ServerURL":"https://index.docker.io/v1/","Username":"hub-user","Secret":"hub-secret"}' ;;
  broken.example)
    echo 'the keychain is locked'; exit 3 ;;
  garbage.example)
    echo 'this is not JSON' ;;
  *)
    echo 'credentials not found in native keychain'; exit 1 ;;
esac
`;
}

async function rejectsUnauthorized(p: Promise<unknown>, message: RegExp): Promise<OciError> {
  let caught: unknown;
  await p.then(
    (v) => assert.fail(`resolved with ${JSON.stringify(v)}`),
    (e: unknown) => {
      caught = e;
    },
  );
  assert.ok(caught instanceof OciError, `expected an OciError, got ${String(caught)}`);
  assert.equal(caught.code, 'UNAUTHORIZED');
  assert.match(caught.message, message);
  return caught;
}

describe('DockerConfigCredentials', () => {
  let tmp: string;
  let log: string;
  let savedPath: string | undefined;

  /** config writes a config.json and returns a provider reading it. */
  const config = (doc: unknown, name = 'config.json'): DockerConfigCredentials => {
    const file = join(tmp, name);
    writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return new DockerConfigCredentials(file, 10_000, process.env);
  };
  const asked = (): string[] => {
    try {
      return readFileSync(log, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tufa-creds-'));
    log = join(tmp, 'helper.log');
    // the helper folder goes first on PATH for this suite only
    const helper = join(tmp, 'docker-credential-testhelper');
    writeFileSync(helper, helperScript(log));
    chmodSync(helper, 0o755);
    savedPath = process.env.PATH;
    process.env.PATH = `${tmp}${delimiter}${savedPath ?? ''}`;
  });

  after(() => {
    if (savedPath === undefined) delete process.env.PATH;
    else process.env.PATH = savedPath;
    rmSync(tmp, { recursive: true, force: true });
  });

  beforeEach(() => rmSync(log, { force: true }));

  describe('auths', () => {
    it('a base64 auth is user:password (split at the first colon)', async () => {
      const c = config({ auths: { 'registry.example': { auth: b64('alice:pa:ss:word') } } });
      assert.deepEqual(await c.get('registry.example'), {
        username: 'alice',
        password: 'pa:ss:word',
      });
    });

    it('an identitytoken is an identity token (and wins over auth)', async () => {
      const c = config({
        auths: { 'registry.example': { auth: b64('alice:pw'), identitytoken: 'refresh-abc' } },
      });
      assert.deepEqual(await c.get('registry.example'), { identityToken: 'refresh-abc' });
    });

    it('username and password fields', async () => {
      const c = config({ auths: { 'registry.example': { username: 'bob', password: 'pw' } } });
      assert.deepEqual(await c.get('registry.example'), { username: 'bob', password: 'pw' });
      const d = config({ auths: { 'registry.example': { username: 'bob' } } }, 'c2.json');
      assert.deepEqual(await d.get('registry.example'), { username: 'bob', password: '' });
    });

    it('keys with a scheme and a path match by host', async () => {
      const c = config({ auths: { 'https://registry.example/v2/': { auth: b64('a:b') } } });
      assert.deepEqual(await c.get('registry.example'), { username: 'a', password: 'b' });
    });

    it('a port is part of the host: registry.example:5000 is another registry', async () => {
      const c = config({
        auths: {
          'registry.example:5000': { auth: b64('five:thousand') },
          'other.example': { auth: b64('o:o') },
        },
      });
      assert.deepEqual(await c.get('registry.example:5000'), {
        username: 'five',
        password: 'thousand',
      });
      assert.equal(await c.get('registry.example'), undefined);
      assert.equal(await c.get('registry.example:5001'), undefined);
    });

    it('hosts match whatever their case', async () => {
      const c = config({ auths: { 'Registry.Example': { auth: b64('a:b') } } });
      assert.deepEqual(await c.get('registry.example'), { username: 'a', password: 'b' });
    });

    it('an empty entry (as docker login writes with a credsStore) gives nothing', async () => {
      const c = config({ auths: { 'registry.example': {} } });
      assert.equal(await c.get('registry.example'), undefined);
    });

    it('an auth that is not user:password is refused, without the secret in the message', async () => {
      const c = config({ auths: { 'registry.example': { auth: b64('no-colon-secret') } } });
      const e = await rejectsUnauthorized(c.get('registry.example'), /not user:password/);
      assert.ok(!e.message.includes('no-colon-secret'));
      assert.ok(!e.message.includes(b64('no-colon-secret')));
    });
  });

  describe('exact host matching', () => {
    const provider = () => config({ auths: { 'registry.example': { auth: b64('alice:secret') } } });

    for (const other of [
      'registry.example.evil',
      'evil.com/registry.example',
      'evil.com',
      'sub.registry.example',
      'registry.exampl',
      'xregistry.example',
      'registry.example:443',
      'docker.io',
    ]) {
      it(`credentials for registry.example are not given to ${other}`, async () => {
        assert.equal(await provider().get(other), undefined);
      });
    }

    it('a key with a path (https://evil.com/registry.example) is evil.com, not registry.example', async () => {
      const c = config({
        auths: {
          'registry.example': { auth: b64('alice:secret') },
          'https://evil.com/registry.example': { auth: b64('evil:evil') },
        },
      });
      assert.deepEqual(await c.get('registry.example'), { username: 'alice', password: 'secret' });
      assert.deepEqual(await c.get('evil.com'), { username: 'evil', password: 'evil' });
    });

    it('credentials stored for registry.example.evil are not given to registry.example', async () => {
      const c = config({
        auths: {
          'registry.example.evil': { auth: b64('x:y') },
          'evil.com/registry.example': { auth: b64('x:y') },
        },
      });
      assert.equal(await c.get('registry.example'), undefined);
    });

    it('a credHelper for registry.example is not asked for registry.example.evil', async () => {
      const c = config({ credHelpers: { 'registry.example': 'testhelper' } });
      assert.equal(await c.get('registry.example.evil'), undefined);
      assert.deepEqual(asked(), []);
    });
  });

  describe('Docker Hub', () => {
    for (const registry of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      it(`the historical key https://index.docker.io/v1/ serves ${registry}`, async () => {
        const c = config({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } });
        assert.deepEqual(await c.get(registry), { username: 'hub', password: 'pw' });
      });
    }

    it('Docker Hub credentials are not given to another registry', async () => {
      const c = config({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } });
      assert.equal(await c.get('registry.example'), undefined);
      assert.equal(await c.get('docker.io.evil'), undefined);
    });

    it('a credsStore is asked with https://index.docker.io/v1/ for Docker Hub', async () => {
      const c = config({ credsStore: 'testhelper' });
      assert.deepEqual(await c.get('docker.io'), { username: 'hub-user', password: 'hub-secret' });
      assert.deepEqual(asked(), ['https://index.docker.io/v1/']);
    });
  });

  describe('credential helpers (docker-credential-testhelper on PATH)', () => {
    it('credHelpers: runs `get` with the server on stdin and reads Username/Secret', async () => {
      const c = config({ credHelpers: { 'registry.example': 'testhelper' } });
      assert.deepEqual(await c.get('registry.example'), {
        username: 'helper-user',
        password: 'helper-secret',
      });
      assert.deepEqual(asked(), ['registry.example']);
    });

    it('a <token> user is an identity token', async () => {
      const c = config({ credHelpers: { 'token.example': 'testhelper' } });
      const got: Credentials | undefined = await c.get('token.example');
      assert.deepEqual(got, { identityToken: 'refresh-token-123' });
    });

    it('credentials not found: undefined (anonymous access may still work)', async () => {
      const c = config({ credHelpers: { 'unknown.example': 'testhelper' } });
      assert.equal(await c.get('unknown.example'), undefined);
      assert.deepEqual(asked(), ['unknown.example']);
    });

    it('credHelpers win over auths for the same registry', async () => {
      const c = config({
        auths: { 'registry.example': { auth: b64('file:pw') } },
        credHelpers: { 'registry.example': 'testhelper' },
      });
      assert.deepEqual(await c.get('registry.example'), {
        username: 'helper-user',
        password: 'helper-secret',
      });
    });

    it('credsStore serves registries without an auths entry; auths entries still serve theirs', async () => {
      const c = config({
        auths: { 'file.example': { auth: b64('file:pw') } },
        credsStore: 'testhelper',
      });
      assert.deepEqual(await c.get('file.example'), { username: 'file', password: 'pw' });
      assert.deepEqual(await c.get('registry.example'), {
        username: 'helper-user',
        password: 'helper-secret',
      });
      assert.equal(await c.get('nothing.example'), undefined);
      assert.deepEqual(asked(), ['registry.example', 'nothing.example']);
    });

    it('a helper that fails otherwise is an UNAUTHORIZED error naming it (not its output)', async () => {
      const c = config({ credHelpers: { 'broken.example': 'testhelper' } });
      const e = await rejectsUnauthorized(
        c.get('broken.example'),
        /docker-credential-testhelper exited with 3/,
      );
      assert.ok(!e.message.includes('keychain'));
    });

    it('a helper that prints no JSON is an UNAUTHORIZED error', async () => {
      const c = config({ credHelpers: { 'garbage.example': 'testhelper' } });
      await rejectsUnauthorized(c.get('garbage.example'), /printed no JSON/);
    });

    it('a helper that is not installed is an UNAUTHORIZED error', async () => {
      const c = config({ credHelpers: { 'registry.example': 'tufa-test-no-such-helper' } });
      await rejectsUnauthorized(
        c.get('registry.example'),
        /docker-credential-tufa-test-no-such-helper/,
      );
    });

    for (const name of ['../testhelper', 'test helper', 'a/b', '$(id)', '']) {
      it(`a helper name ${JSON.stringify(name)} is refused without running anything`, async () => {
        const c = config({ credHelpers: { 'registry.example': name } });
        await rejectsUnauthorized(c.get('registry.example'), /not valid/);
        assert.deepEqual(asked(), []);
      });
    }
  });

  describe('the config file', () => {
    it('a missing file: no credentials', async () => {
      const c = new DockerConfigCredentials(join(tmp, 'does-not-exist.json'));
      assert.equal(await c.get('registry.example'), undefined);
    });

    it('invalid JSON: UNAUTHORIZED naming the file', async () => {
      const c = config('{"auths": ', 'broken.json');
      await rejectsUnauthorized(c.get('registry.example'), /broken\.json: not valid JSON/);
    });

    it('an empty object: no credentials', async () => {
      assert.equal(await config({}, 'empty.json').get('registry.example'), undefined);
    });

    it('the file is read once (later changes are not seen by the same provider)', async () => {
      const c = config({ auths: { 'registry.example': { auth: b64('one:1') } } }, 'once.json');
      assert.deepEqual(await c.get('registry.example'), { username: 'one', password: '1' });
      writeFileSync(join(tmp, 'once.json'), JSON.stringify({ auths: {} }));
      assert.deepEqual(await c.get('registry.example'), { username: 'one', password: '1' });
    });
  });
});

describe('StaticCredentials', () => {
  it('gives the credentials of exactly that registry', async () => {
    const s = new StaticCredentials(
      new Map<string, Credentials>([['registry.example', { username: 'u', password: 'p' }]]),
    );
    assert.deepEqual(await s.get('registry.example'), { username: 'u', password: 'p' });
    assert.equal(await s.get('registry.example.evil'), undefined);
    assert.equal(await s.get('evil.com/registry.example'), undefined);
    assert.equal(await s.get('docker.io'), undefined);
  });
});
