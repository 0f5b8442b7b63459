/**
 * The shared credential rule (src/transport/origin.ts) and URL redaction (src/transport/redact.ts),
 * as tables: which hop keeps which header, which 401 may be answered, which token realm may get
 * credentials, and what a message shows of a URL.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  headersForHop,
  isLoopbackHost,
  mayAnswerChallenge,
  realmProblem,
} from '../../../src/transport/origin.js';
import { redact, redactJson, redactText } from '../../../src/transport/redact.js';

describe('transport/origin: credentials stay with their origin', () => {
  // what may cross to another origin: user agent, content negotiation, range, cache validators
  const harmless = {
    'User-Agent': 'tufa',
    accept: '*/*',
    'Accept-Encoding': 'gzip',
    range: 'bytes=1-',
    'if-none-match': '"e"',
    'If-Modified-Since': 'Wed, 02 Dec 2026 06:00:00 GMT',
  };
  const headers = {
    Authorization: 'Basic eA==',
    cookie: 'a=1',
    'Proxy-Authorization': 'Basic eQ==',
    // any other header a caller sets may be a credential too
    'X-API-Key': 'k',
    'Private-Token': 'gitlab',
    'X-JFrog-Art-Api': 'jfrog',
    'X-Registry-Auth': 'e30=',
    ...harmless,
  };

  it('keeps every header on the first origin, only the harmless ones elsewhere', () => {
    assert.deepEqual(
      headersForHop('https://reg.example', 'https://reg.example/v2/x', headers),
      headers,
    );
    for (const other of [
      'https://blobs.example/x',
      'http://reg.example/x',
      'https://reg.example:444/x',
      'https://sub.reg.example/x',
    ]) {
      assert.deepEqual(headersForHop('https://reg.example', other, headers), harmless, other);
    }
  });

  it('answers a 401 only from the origin the request was sent to', () => {
    assert.ok(mayAnswerChallenge('https://reg.example', 'https://reg.example/v2/a/blobs/x'));
    assert.ok(mayAnswerChallenge('http://127.0.0.1:5000', new URL('http://127.0.0.1:5000/v2/')));
    assert.ok(!mayAnswerChallenge('https://reg.example', 'https://blobs.example/x'));
    assert.ok(!mayAnswerChallenge('http://127.0.0.1:5000', 'http://127.0.0.1:5001/v2/'));
  });

  it('sends credentials to a realm over https anywhere, over http only on loopback or the challenger', () => {
    const cases: Array<[string, string, boolean]> = [
      ['https://auth.docker.io/token', 'https://registry-1.docker.io/v2/', true],
      ['http://auth.example/token', 'https://reg.example/v2/', false],
      ['http://reg.example/token', 'https://reg.example/v2/', false],
      ['http://reg.example:5000/token', 'http://reg.example:5000/v2/', true],
      ['http://reg.example:5001/token', 'http://reg.example:5000/v2/', false],
      ['http://127.0.0.1:9/token', 'https://reg.example/v2/', true],
      ['http://localhost/token', 'https://reg.example/v2/', true],
      ['http://[::1]:8/token', 'https://reg.example/v2/', true],
      ['ftp://auth.example/token', 'https://reg.example/v2/', false],
      ['file:///etc/passwd', 'https://reg.example/v2/', false],
    ];
    for (const [realm, challenger, ok] of cases)
      assert.equal(
        realmProblem(new URL(realm), challenger) === undefined,
        ok,
        `${realm} from ${challenger}`,
      );
    assert.ok(isLoopbackHost('127.1.2.3:80'));
    assert.ok(!isLoopbackHost('127.0.0.1.example'));
  });
});

describe('transport/redact: no user info or query token in a message', () => {
  it('redact drops user info, query and fragment', () => {
    assert.equal(
      redact('https://bot:s3cr3t@tuf.example/metadata/'),
      'https://tuf.example/metadata/',
    );
    assert.equal(
      redact('https://s3.example/blob?X-Amz-Signature=abc#f'),
      'https://s3.example/blob?…',
    );
    assert.equal(redact('not a url'), '<invalid URL>');
  });

  it('redactText redacts every URL inside a text and leaves the rest alone', () => {
    const text =
      'x:1.0: not signed (no such target in https://bot:s3cr3t@tuf.example/m/); ' +
      '"http://u@127.0.0.1:8/a?token=t0k3n&b=2" then docker://reg.example/app@sha256:ab, oci:/tmp/x:y';
    const out = redactText(text);
    assert.equal(
      out,
      'x:1.0: not signed (no such target in https://tuf.example/m/); ' +
        // a query runs to white space: its closing quote goes with it
        '"http://127.0.0.1:8/a?… then docker://reg.example/app@sha256:ab, oci:/tmp/x:y',
    );
    for (const plain of [
      'no url here: a@b c?d',
      'the policy allows: ops@example.com',
      'a.'.repeat(9),
    ])
      assert.equal(redactText(plain), plain);
  });

  it('redactJson redacts every string of a JSON document, keys too, and keeps it JSON', () => {
    const value = {
      'https://bot:KEY@h.example/': ['https://h.example/x?token="VALUE"', 1, null, true],
      message: 'refused: https://bot:p"PASS@h.example/x: HTTP 401',
    };
    const out = redactJson(value);
    assert.deepEqual(JSON.parse(out), {
      'https://h.example/': ['https://h.example/x?…', 1, null, true],
      message: 'refused: https://h.example/x: HTTP 401',
    });
    assert.equal(redactJson(undefined), 'null');
  });

  // Each parses as a URL with a secret (node:http would send the user info as Basic auth).
  const parsedWithSecret: Array<[string, string]> = [
    [
      'a raw @ in the password (the parser takes the last @)',
      'https://bot:p@SECRET@host.example/x',
    ],
    ["a ' in the password", "https://bot:p'SECRET@host.example/x"],
    ['a space in the password', 'https://bot:p SECRET@host.example/x'],
    ['a " in the password', 'https://bot:p"SECRET@host.example/x'],
    ['a backtick in the password', 'https://bot:p`SECRET@host.example/x'],
    ['one slash after the scheme', 'https:/bot:SECRET@host.example/x'],
    ['no slash after the scheme', 'https:bot:SECRET@host.example/x'],
    ['backslashes after the scheme', 'https:\\\\bot:SECRET@host.example/x'],
    ['an upper case scheme after a digit', '1HTTPS://bot:SECRET@host.example/x'],
    ['a query after a backslash (a path separator)', 'https://host.example/p\\?token=SECRET'],
    ['a " in the query', 'https://host.example/?token=a"SECRET'],
    ['a fragment', 'https://host.example/x#SECRET'],
    ['another scheme', 'docker://bot:SECRET@host.example/x'],
    ['a URL in the path of another', 'https://proxy.example/https://bot:SECRET@host.example/x'],
  ];
  for (const [what, url] of parsedWithSecret) {
    it(`redactText hides the secret of a URL with ${what}`, () => {
      const u = new URL(url.replace(/^1/, ''));
      assert.ok(`${u.password}${u.search}${u.hash}${u.pathname}`.includes('SECRET'));
      assert.ok(!redact(url.replace(/^1/, '')).includes('SECRET') || u.pathname.includes('SECRET'));
      for (const text of [url, `refused: ${url}: unknown transport`, `("${url}")`]) {
        const out = redactText(text);
        assert.ok(!out.includes('SECRET'), out);
        assert.match(out, /host\.example/, out);
      }
    });
  }

  it('redactText takes linear time, whatever the text (no backtracking)', () => {
    for (const text of [
      'a.'.repeat(40_000),
      'https:'.repeat(15_000),
      'https://a'.repeat(9_000),
      'http://@'.repeat(10_000),
      'x://'.repeat(20_000),
      `${'a'.repeat(80_000)}:`,
      'https://h/?'.repeat(8_000),
    ]) {
      const t = performance.now();
      redactText(text);
      const ms = performance.now() - t;
      // the quadratic regex it replaces took seconds on the first of these
      assert.ok(ms < 1_000, `${text.slice(0, 12)}…: ${ms.toFixed(0)} ms`);
    }
  });

  // Random secrets in random URL shapes in random text: the secret never survives.
  const MARK = 'SeCrEt';
  const chars = (set: string, min: number, max: number) =>
    fc.string({ unit: fc.constantFrom(...set), minLength: min, maxLength: max });
  const word = chars('abcxyz019.-_:;,()[]<>"\'`=@ ', 0, 12);
  const userinfo = fc
    .tuple(
      chars('abcz09._-', 0, 6),
      chars('abcXYZ0189\'"` @:;!$&()*+,=%~-._[]', 0, 10),
      fc.boolean(),
    )
    .map(([user, pass, asUser]) =>
      asUser ? `${MARK}${pass.replace(/[:@]/g, '')}@` : `${user}:${pass}${MARK}${pass}@`,
    );
  const query = chars('abcXYZ019=&%:;"\'`<>()@/?#\\', 0, 10).map(
    (q) => `${q.startsWith('#') ? '' : '?'}${q}${MARK}${q}`,
  );
  const url = fc
    .record({
      scheme: fc.constantFrom('http', 'https', 'HTTPS', 'ws', 'wss', 'ftp', 'docker', 'git+ssh'),
      slashes: fc.constantFrom('//', '/', '', '\\\\', '\\/', '///'),
      userinfo: fc.option(userinfo),
      host: fc.constantFrom('host.example', '127.0.0.1:8080', '[::1]', 'h'),
      path: fc.constantFrom('', '/', '/a/b', '/a\\b', '/x:y', '/a@b'),
      query: fc.option(query),
    })
    .filter((u) => u.userinfo !== null || u.query !== null)
    .map((u) => {
      const special = !['docker', 'git+ssh'].includes(u.scheme);
      const slashes = special ? u.slashes : '//';
      const path = special ? u.path : u.path.replace('\\', '/');
      return `${u.scheme}:${slashes}${u.userinfo ?? ''}${u.host}${path}${u.query ?? ''}`;
    })
    .filter((s) => {
      try {
        const u = new URL(s);
        return `${u.username}${u.password}${u.search}${u.hash}`.includes(MARK);
      } catch {
        return false;
      }
    });

  it('property: no secret of a URL the parser accepts survives redactText, wherever it is', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(word, fc.constantFrom(' ', '(', '"', "'", '`', '<', '=', ': '), url), {
          minLength: 1,
          maxLength: 3,
        }),
        word,
        (parts, tail) => {
          const text = `${parts.map(([w, sep, u]) => `${w}${sep}${u}`).join(' ')} ${tail}`;
          const out = redactText(text);
          assert.ok(!out.includes(MARK), `${text}\n→ ${out}`);
          // and once it is JSON-escaped (a message quoting a server's JSON, say)
          const quoted = redactText(JSON.stringify(text));
          assert.ok(!quoted.includes(MARK), `${JSON.stringify(text)}\n→ ${quoted}`);
          // JSON output: each string redacted on its own, the document stays JSON
          const doc = { [text]: [text, { text }], n: 1 };
          const json = redactJson(doc, 2);
          assert.ok(!json.includes(MARK), json);
          assert.equal((JSON.parse(json) as { n: number }).n, 1);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('property: a text without a colon is kept as is', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        const text = s.replace(/:/g, '');
        assert.equal(redactText(text), text);
      }),
    );
  });
});
