/**
 * parseChallenge: the `WWW-Authenticate` header of a 401 (RFC 7235 challenges as registries send
 * them): quoted values with commas and escaped quotes, unquoted values, scheme in any case,
 * parameter names lowercased, missing parameters.
 */
import assert from 'node:assert/strict';
import { parseChallenge } from '../../../src/transport/auth.js';

const CASES: ReadonlyArray<
  [string, string, { scheme: string; params: Record<string, string> } | undefined]
> = [
  [
    'Docker Hub (a quoted scope with a comma)',
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
    {
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:samalba/my-app:pull,push',
      },
    },
  ],
  [
    'several scopes in one quoted value (space separated)',
    'Bearer realm="https://auth.example/token",scope="repository:a:pull repository:b:pull,push"',
    {
      scheme: 'bearer',
      params: {
        realm: 'https://auth.example/token',
        scope: 'repository:a:pull repository:b:pull,push',
      },
    },
  ],
  [
    'a quoted value holding a comma and an equals sign',
    'Bearer realm="https://auth.example/token?a=1,b=2",service="svc"',
    { scheme: 'bearer', params: { realm: 'https://auth.example/token?a=1,b=2', service: 'svc' } },
  ],
  [
    'escaped quotes and backslashes in a quoted value',
    'Bearer realm="https://auth.example/token",error_description="the \\"scope\\" is a\\\\b"',
    {
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', error_description: 'the "scope" is a\\b' },
    },
  ],
  [
    'lowercase scheme',
    'bearer realm="https://auth.example/token"',
    { scheme: 'bearer', params: { realm: 'https://auth.example/token' } },
  ],
  [
    'uppercase scheme and parameter names',
    'BEARER REALM="https://auth.example/token",Service="svc"',
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'svc' } },
  ],
  [
    'Basic with a realm (distribution htpasswd)',
    'Basic realm="Registry Realm"',
    { scheme: 'basic', params: { realm: 'Registry Realm' } },
  ],
  ['Basic without parameters', 'Basic', { scheme: 'basic', params: {} }],
  ['Bearer without parameters', 'Bearer', { scheme: 'bearer', params: {} }],
  [
    'surrounding whitespace',
    '  Bearer   realm="r"  ',
    { scheme: 'bearer', params: { realm: 'r' } },
  ],
  [
    'unquoted values',
    'Bearer realm=https://auth.example/token,service=svc',
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'svc' } },
  ],
  [
    'spaces around = and ,',
    'Bearer realm = "r" , service = "s"',
    { scheme: 'bearer', params: { realm: 'r', service: 's' } },
  ],
  [
    'an empty quoted value',
    'Bearer realm="r",service=""',
    { scheme: 'bearer', params: { realm: 'r', service: '' } },
  ],
  [
    'an error after a failed token (insufficient_scope)',
    'Bearer realm="r",service="s",scope="repository:x:pull",error="insufficient_scope"',
    {
      scheme: 'bearer',
      params: { realm: 'r', service: 's', scope: 'repository:x:pull', error: 'insufficient_scope' },
    },
  ],
  ['an empty header', '', undefined],
  ['only whitespace', '   ', undefined],
  ['no scheme', '="x"', undefined],
];

describe('parseChallenge', () => {
  for (const [what, header, want] of CASES) {
    it(`${what}: ${JSON.stringify(header)}`, () => {
      assert.deepEqual(parseChallenge(header), want);
    });
  }

  it('a missing realm or service is simply absent (the caller decides)', () => {
    const c = parseChallenge('Bearer scope="repository:x:pull"');
    assert.equal(c?.scheme, 'bearer');
    assert.equal(c?.params.realm, undefined);
    assert.equal(c?.params.service, undefined);
  });

  // RFC 7235 §4.1: a WWW-Authenticate value may hold several challenges, and several header
  // lines are joined with commas (undici hands them over as an array, which the client turns
  // into one comma-joined string). The parameters of the second challenge must not leak into
  // the first: here the Basic realm overwrites the Bearer realm (the token would be requested
  // from "Registry Realm").
  it('a second challenge in the header does not overwrite the parameters of the first', () => {
    const c = parseChallenge(
      'Bearer realm="https://auth.example/token",service="registry.example", Basic realm="Registry Realm"',
    );
    assert.equal(c?.scheme, 'bearer');
    assert.deepEqual(c?.params, {
      realm: 'https://auth.example/token',
      service: 'registry.example',
    });
  });

  // RFC 7235 auth-param names are tokens, which may contain "-" and digits. The parameter regex is
  // not anchored at a parameter boundary, so "x-realm" is read as "realm" and overwrites it.
  it('a parameter named x-realm is not read as realm', () => {
    const c = parseChallenge(
      'Bearer realm="https://auth.example/token",x-realm="https://other.example/"',
    );
    assert.equal(c?.params.realm, 'https://auth.example/token');
  });
});
