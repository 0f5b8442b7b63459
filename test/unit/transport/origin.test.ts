/**
 * The shared credential rule (src/transport/origin.ts) and URL redaction (src/transport/redact.ts),
 * as tables: which hop keeps which header, which 401 may be answered, which token realm may get
 * credentials, and what a message shows of a URL.
 */
import assert from 'node:assert/strict';
import {
  headersForHop,
  isLoopbackHost,
  mayAnswerChallenge,
  realmProblem,
} from '../../../src/transport/origin.js';
import { redact, redactText } from '../../../src/transport/redact.js';

describe('transport/origin: credentials stay with their origin', () => {
  const headers = {
    Authorization: 'Basic eA==',
    cookie: 'a=1',
    'Proxy-Authorization': 'Basic eQ==',
    accept: '*/*',
    range: 'bytes=1-',
  };

  it('keeps every header on the first origin, drops the credential headers elsewhere', () => {
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
      assert.deepEqual(
        headersForHop('https://reg.example', other, headers),
        { accept: '*/*', range: 'bytes=1-' },
        other,
      );
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
        '"http://127.0.0.1:8/a?…" then docker://reg.example/app@sha256:ab, oci:/tmp/x:y',
    );
    assert.equal(redactText('no url here: a@b c?d'), 'no url here: a@b c?d');
  });
});
