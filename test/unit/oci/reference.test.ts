/**
 * Reference.parse: table-driven good and bad image references, Docker normalization, strict
 * mode, and the accessors (name, tagged, pinned, toString, original).
 *
 * Cases come from (and are adapted to this parser's documented rules):
 *  - distribution/reference `reference_test.go` (TestReferenceParse) and `normalize_test.go`
 *    (TestValidateReferenceName, TestValidateRemoteName, TestParseRepositoryInfo,
 *    TestParseReferenceWithTagAndDigest, TestNormalizedSplitHostname);
 *  - google/go-containerregistry `pkg/name/digest_test.go`, `repository_test.go`, `tag_test.go`
 *    (good strict/weak names, bad names, TestAllDefaults, TestRepositoryBadDefaulting);
 *  - our own cases (limits: tag 128, name 255, input 4096; sha256 only; lowercase hex only).
 * Where this parser deliberately differs from distribution (sha512 digests, an uppercase first
 * component read as a host), the case says so.
 */
import assert from 'node:assert/strict';
import { OciError } from '../../../src/oci/errors.js';
import { Reference } from '../../../src/oci/reference.js';

const FF = `sha256:${'f'.repeat(64)}`;
// go-containerregistry's validDigest
const DEADBEEF = `sha256:${'deadb33f'.repeat(8)}`;
// distribution normalize_test.go TestParseReferenceWithTagAndDigest
const BUSYBOX = 'sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa';
const HEX64 = '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a';

/** A good reference: the input, and what it normalizes to. */
interface Good {
  readonly input: string;
  readonly full: string;
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
  readonly src: string;
}

const good = (
  src: string,
  input: string,
  registry: string,
  repository: string,
  tag?: string,
  digest?: string,
): Good => ({
  src,
  input,
  registry,
  repository,
  ...(tag === undefined ? {} : { tag }),
  ...(digest === undefined ? {} : { digest }),
  full: `${registry}/${repository}${tag === undefined ? '' : `:${tag}`}${digest === undefined ? '' : `@${digest}`}`,
});

const D = 'distribution reference_test';
const N = 'distribution normalize_test';
const G = 'go-containerregistry pkg/name';
const O = 'own';

const GOOD: readonly Good[] = [
  // distribution reference_test.go TestReferenceParse, normalized as ParseNormalizedNamed does
  good(D, 'test_com', 'docker.io', 'library/test_com', 'latest'),
  good(D, 'test.com:tag', 'docker.io', 'library/test.com', 'tag'),
  good(D, 'test.com:5000', 'docker.io', 'library/test.com', '5000'),
  good(D, 'test.com/repo:tag', 'test.com', 'repo', 'tag'),
  good(D, 'test:5000/repo', 'test:5000', 'repo', 'latest'),
  good(D, 'test:5000/repo:tag', 'test:5000', 'repo', 'tag'),
  good(D, `test:5000/repo@${FF}`, 'test:5000', 'repo', undefined, FF),
  good(D, `test:5000/repo:tag@${FF}`, 'test:5000', 'repo', 'tag', FF),
  good(D, 'lowercase:Uppercase', 'docker.io', 'library/lowercase', 'Uppercase'),
  good(D, 'sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com', 'bar/baz/quux', 'latest'),
  good(
    D,
    'sub-dom1.foo.com/bar/baz/quux:some-long-tag',
    'sub-dom1.foo.com',
    'bar/baz/quux',
    'some-long-tag',
  ),
  good(
    D,
    'b.gcr.io/test.example.com/my-app:test.example.com',
    'b.gcr.io',
    'test.example.com/my-app',
    'test.example.com',
  ),
  good(D, 'xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com', 'myimage', 'xn--n3h.com'),
  good(D, 'foo_bar.com:8080', 'docker.io', 'library/foo_bar.com', '8080'),
  good(D, 'foo/foo_bar.com:8080', 'docker.io', 'foo/foo_bar.com', '8080'),
  good(D, '192.168.1.1', 'docker.io', 'library/192.168.1.1', 'latest'),
  good(D, '192.168.1.1:tag', 'docker.io', 'library/192.168.1.1', 'tag'),
  good(D, '192.168.1.1:5000', 'docker.io', 'library/192.168.1.1', '5000'),
  good(D, '192.168.1.1/repo', '192.168.1.1', 'repo', 'latest'),
  good(D, '192.168.1.1:5000/repo', '192.168.1.1:5000', 'repo', 'latest'),
  good(D, '192.168.1.1:5000/repo:5050', '192.168.1.1:5000', 'repo', '5050'),
  good(D, '[2001:db8::1]/repo', '[2001:db8::1]', 'repo', 'latest'),
  good(D, '[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]', 'repo', 'tag'),
  good(D, '[2001:db8::1]:5000/repo', '[2001:db8::1]:5000', 'repo', 'latest'),
  good(D, '[2001:db8::1]:5000/repo:tag', '[2001:db8::1]:5000', 'repo', 'tag'),
  good(D, `[2001:db8::1]:5000/repo@${FF}`, '[2001:db8::1]:5000', 'repo', undefined, FF),
  good(D, `[2001:db8::1]:5000/repo:tag@${FF}`, '[2001:db8::1]:5000', 'repo', 'tag', FF),
  good(D, '[2001:db8::]:5000/repo', '[2001:db8::]:5000', 'repo', 'latest'),
  good(D, '[::1]:5000/repo', '[::1]:5000', 'repo', 'latest'),
  // distribution normalize_test.go
  good(N, 'docker/docker', 'docker.io', 'docker/docker', 'latest'),
  good(N, 'library/debian', 'docker.io', 'library/debian', 'latest'),
  good(N, 'debian', 'docker.io', 'library/debian', 'latest'),
  good(N, 'docker.io/docker/docker', 'docker.io', 'docker/docker', 'latest'),
  good(N, 'docker.io/library/debian', 'docker.io', 'library/debian', 'latest'),
  good(N, 'docker.io/debian', 'docker.io', 'library/debian', 'latest'),
  good(N, 'index.docker.io/docker/docker', 'docker.io', 'docker/docker', 'latest'),
  good(N, 'index.docker.io/library/debian', 'docker.io', 'library/debian', 'latest'),
  good(N, 'index.docker.io/debian', 'docker.io', 'library/debian', 'latest'),
  good(N, '127.0.0.1:5000/docker/docker', '127.0.0.1:5000', 'docker/docker', 'latest'),
  good(N, '127.0.0.1:5000/library/debian', '127.0.0.1:5000', 'library/debian', 'latest'),
  good(N, '127.0.0.1:5000/debian', '127.0.0.1:5000', 'debian', 'latest'),
  good(N, '192.168.0.1', 'docker.io', 'library/192.168.0.1', 'latest'),
  good(N, '192.168.0.1:80', 'docker.io', 'library/192.168.0.1', '80'),
  good(N, '192.168.0.1:8/debian', '192.168.0.1:8', 'debian', 'latest'),
  good(N, '192.168.0.2:25000/debian', '192.168.0.2:25000', 'debian', 'latest'),
  good(
    N,
    'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    'docker.io',
    'library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    'latest',
  ),
  good(N, '[fc00::1]:5000/docker', '[fc00::1]:5000', 'docker', 'latest'),
  good(N, '[fc00::1]:5000/docker/docker', '[fc00::1]:5000', 'docker/docker', 'latest'),
  good(
    N,
    '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
    '[fc00:1:2:3:4:5:6:7]:5000',
    'library/debian',
    'latest',
  ),
  good(N, `docker.io/${HEX64}`, 'docker.io', `library/${HEX64}`, 'latest'),
  good(N, 'docker-rules/docker', 'docker.io', 'docker-rules/docker', 'latest'),
  good(N, 'docker---rules/docker', 'docker.io', 'docker---rules/docker', 'latest'),
  good(N, 'doc/docker', 'docker.io', 'doc/docker', 'latest'),
  good(N, 'd/docker', 'docker.io', 'd/docker', 'latest'),
  good(N, 'jess/t', 'docker.io', 'jess/t', 'latest'),
  good(N, 'dock__er/docker', 'docker.io', 'dock__er/docker', 'latest'),
  good(N, 'fooo/bar', 'docker.io', 'fooo/bar', 'latest'),
  good(N, 'other/library', 'docker.io', 'other/library', 'latest'),
  good(N, 'library/foo/bar', 'docker.io', 'library/foo/bar', 'latest'),
  good(N, 'store/foo/bar', 'docker.io', 'store/foo/bar', 'latest'),
  good(N, 'ubuntu-12.04-base', 'docker.io', 'library/ubuntu-12.04-base', 'latest'),
  good(N, 'example.com:8000/private/moonbase', 'example.com:8000', 'private/moonbase', 'latest'),
  good(N, 'test-com:8080/foo', 'test-com:8080', 'foo', 'latest'),
  good(N, 'xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo', 'latest'),
  // R2B-09: the default ports name the same registry (a policy rule for registry.example/…
  // must govern registry.example:443/…)
  good(O, 'registry.example:443/app', 'registry.example', 'app', 'latest'),
  good(O, 'registry.example:80/app:1', 'registry.example', 'app', '1'),
  good(O, 'REGISTRY.example:443/app', 'registry.example', 'app', 'latest'),
  good(O, 'index.docker.io:443/acme/app', 'docker.io', 'acme/app', 'latest'),
  good(O, 'localhost:80/app', 'localhost', 'app', 'latest'),
  good(O, 'registry.example:4430/app', 'registry.example:4430', 'app', 'latest'),
  good(N, `busybox:latest@${BUSYBOX}`, 'docker.io', 'library/busybox', 'latest', BUSYBOX),
  good(N, `redis@${BUSYBOX}`, 'docker.io', 'library/redis', undefined, BUSYBOX),
  // go-containerregistry pkg/name (digest_test.go, repository_test.go, tag_test.go)
  good(
    G,
    `gcr.io/g-convoy/hello-world@${DEADBEEF}`,
    'gcr.io',
    'g-convoy/hello-world',
    undefined,
    DEADBEEF,
  ),
  good(
    G,
    `gcr.io/google.com/project-id/hello-world@${DEADBEEF}`,
    'gcr.io',
    'google.com/project-id/hello-world',
    undefined,
    DEADBEEF,
  ),
  good(
    G,
    `us.gcr.io/project-id/sub-repo@${DEADBEEF}`,
    'us.gcr.io',
    'project-id/sub-repo',
    undefined,
    DEADBEEF,
  ),
  good(G, `example.text/foo/bar:latest@${DEADBEEF}`, 'example.text', 'foo/bar', 'latest', DEADBEEF),
  good(
    G,
    `example.text:8443/foo/bar:latest@${DEADBEEF}`,
    'example.text:8443',
    'foo/bar',
    'latest',
    DEADBEEF,
  ),
  good(
    G,
    `example.text/foo/bar:v1.0.0-alpine@${DEADBEEF}`,
    'example.text',
    'foo/bar',
    'v1.0.0-alpine',
    DEADBEEF,
  ),
  good(
    G,
    `namespace/pathcomponent/image@${DEADBEEF}`,
    'docker.io',
    'namespace/pathcomponent/image',
    undefined,
    DEADBEEF,
  ),
  good(G, `nginx:latest@${DEADBEEF}`, 'docker.io', 'library/nginx', 'latest', DEADBEEF),
  good(G, 'gcr.io/project-id/with-nums:v2', 'gcr.io', 'project-id/with-nums', 'v2'),
  good(
    G,
    'us.gcr.io/project-id/image:with.period.in.tag',
    'us.gcr.io',
    'project-id/image',
    'with.period.in.tag',
  ),
  good(
    G,
    'gcr.io/project-id/image:w1th-alpha_num3ric.PLUScaps',
    'gcr.io',
    'project-id/image',
    'w1th-alpha_num3ric.PLUScaps',
  ),
  good(G, 'domain.with.port:9001/image:latest', 'domain.with.port:9001', 'image', 'latest'),
  good(G, 'www.example.test:12345/repo/path', 'www.example.test:12345', 'repo/path', 'latest'),
  good(G, 'gcr.io/project-id/implicit-latest', 'gcr.io', 'project-id/implicit-latest', 'latest'),
  good(G, 'mirror.gcr.io/ubuntu', 'mirror.gcr.io', 'ubuntu', 'latest'),
  good(G, 'example.com/a', 'example.com', 'a', 'latest'),
  good(G, 'example.com/a/b', 'example.com', 'a/b', 'latest'),
  good(G, 'localhost/testimage', 'localhost', 'testimage', 'latest'),
  good(G, 'a', 'docker.io', 'library/a', 'latest'),
  good(G, '0', 'docker.io', 'library/0', 'latest'),
  // TestAllDefaults (go-containerregistry writes index.docker.io; we write docker.io)
  good(G, 'ubuntu', 'docker.io', 'library/ubuntu', 'latest'),
  // own: aliases of Docker Hub, localhost, limits
  good(O, 'alpine', 'docker.io', 'library/alpine', 'latest'),
  good(O, 'alpine:3.20', 'docker.io', 'library/alpine', '3.20'),
  good(O, 'registry-1.docker.io/library/alpine:3', 'docker.io', 'library/alpine', '3'),
  good(O, 'index.docker.io/alpine', 'docker.io', 'library/alpine', 'latest'),
  good(O, 'localhost:5000/app:1.0', 'localhost:5000', 'app', '1.0'),
  good(O, 'localhost', 'docker.io', 'library/localhost', 'latest'),
  good(O, 'registry.example/app:1.0', 'registry.example', 'app', '1.0'),
  good(O, 'registry.example/team/app:_underscore', 'registry.example', 'team/app', '_underscore'),
  good(O, `registry.example/app:${'t'.repeat(128)}`, 'registry.example', 'app', 't'.repeat(128)),
  // a name of exactly 255 characters: 'example.com/' (12) + 121 × 'a/' + 'a' (243)
  good(O, `example.com/${'a/'.repeat(121)}a:tag`, 'example.com', `${'a/'.repeat(121)}a`, 'tag'),
];

/** A bad reference: refused in weak and strict mode alike. */
const BAD: ReadonlyArray<{ input: string; src: string; note?: string }> = [
  // distribution reference_test.go
  { src: D, input: '' },
  { src: D, input: ':justtag' },
  { src: D, input: `@${FF}` },
  { src: D, input: 'repo@sha256:ffffffffffffffffffffffffffffffffff' },
  { src: D, input: `validname@invaliddigest:${'f'.repeat(64)}` },
  { src: D, input: 'Uppercase:tag' },
  { src: D, input: 'test:5000/Uppercase/lowercase:tag' },
  { src: D, input: `${'a/'.repeat(128)}a:tag` },
  // accepted by distribution's Parse (domain "a"), but normalized it is docker.io/… > 255
  { src: D, input: `${'a/'.repeat(127)}a:tag-puts-this-over-max` },
  { src: D, input: 'aa/asdf$$^/aa' },
  { src: D, input: '[2001:db8::1]' },
  { src: D, input: '[2001:db8::1]:5000' },
  { src: D, input: '[2001:db8::1]:tag' },
  { src: D, input: '[fe80::1%eth0]:5000/repo' },
  { src: D, input: '[fe80::1%@invalidzone]:5000/repo' },
  {
    src: D,
    input: `xn--7o8h.com/myimage:xn--7o8h.com@sha512:${'f'.repeat(128)}`,
    note: 'distribution accepts sha512; this parser takes sha256 only',
  },
  // distribution normalize_test.go (invalid names)
  { src: N, input: 'https://github.com/docker/docker' },
  { src: N, input: 'docker/Docker' },
  { src: N, input: '-docker' },
  { src: N, input: '-docker/docker' },
  { src: N, input: '-docker.io/docker/docker' },
  { src: N, input: 'docker///docker' },
  { src: N, input: 'docker.io/docker/Docker' },
  { src: N, input: 'docker.io/docker///docker' },
  { src: N, input: '[fc00::1]' },
  { src: N, input: '[fc00::1]:5000' },
  { src: N, input: 'fc00::1:5000/debian' },
  { src: N, input: '[fe80::1%eth0]:5000/debian' },
  { src: N, input: 'docker-/docker' },
  { src: N, input: '-docker-/docker' },
  { src: N, input: '____/____' },
  { src: N, input: '_docker/_docker' },
  { src: N, input: 'dock..er/docker' },
  { src: N, input: 'dock_.er/docker' },
  { src: N, input: 'dock-.er/docker' },
  { src: N, input: 'docker/' },
  {
    src: N,
    input: `${'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_'.repeat(4)}x/docker`,
  },
  {
    src: N,
    input: 'Docker/docker',
    note: 'distribution reads an uppercase first component as a host; here only ".", ":" or localhost mark a host',
  },
  // go-containerregistry pkg/name (bad names)
  { src: G, input: 'white space' },
  { src: G, input: 'b@char/image' },
  { src: G, input: 'gcr.io/project-id/unknown-alg@unknown:abc123' },
  { src: G, input: 'gcr.io/project-id/wrong-length@sha256:d34db33fd34db33f' },
  { src: G, input: 'gcr.io/project-id/missing-digest@' },
  { src: G, input: "gcr.io/project-id/bad_chars:c@n'tuse" },
  { src: G, input: 'gcr.io/project-id/wrong-length:white space' },
  {
    src: G,
    input:
      'gcr.io/project-id/too-many-chars:thisisthetagthatneverendsitgoesonandonmyfriendsomepeoplestartedtaggingitnotknowingwhatitwasandtheyllcontinuetaggingitforeverjustbecausethisisthetagthatneverends',
  },
  // own
  { src: O, input: `registry.example/app:${'t'.repeat(129)}` },
  { src: O, input: 'registry.example/app:.hidden' },
  { src: O, input: 'registry.example/app:-dash' },
  { src: O, input: 'registry.example/app:' },
  { src: O, input: 'registry.example/app@' },
  { src: O, input: `registry.example/app@sha256:${'F'.repeat(64)}` },
  { src: O, input: `registry.example/app@SHA256:${'f'.repeat(64)}` },
  { src: O, input: `registry.example/app@sha256:${'f'.repeat(63)}` },
  { src: O, input: `registry.example/app@sha256:${'f'.repeat(65)}` },
  { src: O, input: `registry.example/app@sha256:${'g'.repeat(64)}` },
  { src: O, input: `registry.example/app@${FF}@${FF}` },
  { src: O, input: `registry.example/app:1.0@${FF}:2.0` },
  { src: O, input: 'registry.example//app' },
  { src: O, input: '/app' },
  { src: O, input: 'registry.example/' },
  { src: O, input: 'registry.example/App' },
  { src: O, input: 'registry.example/app/' },
  { src: O, input: ' alpine' },
  { src: O, input: 'alpine ' },
  { src: O, input: 'alpine\n' },
  { src: O, input: 'alpine:1.0\t' },
  { src: O, input: 'reg_istry.example/app' },
  { src: O, input: '-registry.example/app' },
  { src: O, input: 'registry-.example/app' },
  { src: O, input: 'registry.example./app' },
  { src: O, input: 'registry.example:port/app' },
  { src: O, input: 'registry.example:123456/app' },
  { src: O, input: 'user@registry.example/app' },
  { src: O, input: 'docker://alpine' },
  { src: O, input: 'registry.example/app:1.0/x' },
  { src: O, input: 'registry.example/ünïcode' },
  { src: O, input: `example.com/${'a/'.repeat(122)}a:tag` },
  { src: O, input: 'a'.repeat(4097) },
];

/** Accepted in weak mode, refused in strict mode (each default is forbidden there). */
const STRICT_REFUSALS: ReadonlyArray<{ input: string; why: RegExp; src: string }> = [
  // go-containerregistry goodWeakValidation* names are refused by StrictValidation
  { src: G, input: `namespace/pathcomponent/image@${DEADBEEF}`, why: /registry is missing/ },
  { src: G, input: `library/ubuntu@${DEADBEEF}`, why: /registry is missing/ },
  { src: G, input: `nginx:latest@${DEADBEEF}`, why: /registry is missing/ },
  { src: G, input: `library/nginx:latest@${DEADBEEF}`, why: /registry is missing/ },
  { src: G, input: 'namespace/pathcomponent/image', why: /registry is missing/ },
  { src: G, input: 'library/ubuntu', why: /registry is missing/ },
  { src: G, input: 'ubuntu', why: /registry is missing/ },
  { src: G, input: 'gcr.io/project-id/implicit-latest', why: /tag or digest is required/ },
  { src: G, input: 'www.example.test:12345/repo/path', why: /tag or digest is required/ },
  { src: G, input: 'localhost/testimage', why: /tag or digest is required/ },
  // TestRepositoryBadDefaulting
  { src: G, input: 'index.docker.io/foo:1', why: /library\// },
  // own
  { src: O, input: 'alpine:3', why: /registry is missing/ },
  { src: O, input: 'docker.io/alpine:3', why: /library\// },
  { src: O, input: 'registry-1.docker.io/alpine:3', why: /library\// },
  { src: O, input: 'docker.io/library/alpine', why: /tag or digest is required/ },
  { src: O, input: 'registry.example/app', why: /tag or digest is required/ },
];

/** Refused in neither mode: strict parses them to the same result as weak mode. */
const STRICT_GOOD: readonly string[] = [
  // go-containerregistry goodStrictValidation* names (with a tag or digest)
  `gcr.io/g-convoy/hello-world@${DEADBEEF}`,
  `gcr.io/google.com/project-id/hello-world@${DEADBEEF}`,
  `us.gcr.io/project-id/sub-repo@${DEADBEEF}`,
  `example.text/foo/bar@${DEADBEEF}`,
  `example.text/foo/bar:latest@${DEADBEEF}`,
  `example.text:8443/foo/bar:latest@${DEADBEEF}`,
  `example.text/foo/bar:v1.0.0-alpine@${DEADBEEF}`,
  'gcr.io/g-convoy/hello-world:latest',
  'gcr.io/google.com/g-convoy/hello-world:latest',
  'gcr.io/project-id/with-nums:v2',
  'us.gcr.io/project-id/image:with.period.in.tag',
  'gcr.io/project-id/image:w1th-alpha_num3ric.PLUScaps',
  'domain.with.port:9001/image:latest',
  // own
  'docker.io/library/alpine:3',
  'localhost:5000/app:1.0',
  '[::1]:5000/app:1.0',
  'registry.example/app:1.0',
];

/**
 * refused asserts that parsing throws an OciError BAD_REFERENCE naming the input: all of it, or
 * its first 200 characters and its length.
 */
function refused(input: string, strict: boolean, why?: RegExp): OciError {
  let caught: unknown;
  try {
    const r = Reference.parse(input, { strict });
    assert.fail(`${JSON.stringify(input)} (strict ${strict}) was accepted as ${r.toString()}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    caught = e;
  }
  assert.ok(caught instanceof OciError, `expected an OciError, got ${String(caught)}`);
  assert.equal(caught.code, 'BAD_REFERENCE');
  assert.equal(caught.name, 'OciError');
  const named =
    input.length <= 200
      ? JSON.stringify(input)
      : JSON.stringify(`${input.slice(0, 200)}… (${input.length} characters)`);
  assert.ok(
    caught.message.includes(named),
    `the message does not name the input: ${caught.message}`,
  );
  if (why !== undefined) assert.match(caught.message, why);
  return caught;
}

const show = (s: string): string =>
  s.length > 70 ? `${JSON.stringify(s.slice(0, 60))}… (${s.length} chars)` : JSON.stringify(s);

describe('Reference.parse', () => {
  describe('good references (weak mode): normalized parts', () => {
    for (const c of GOOD) {
      it(`${show(c.input)} → ${show(c.full)} [${c.src}]`, () => {
        const r = Reference.parse(c.input);
        assert.equal(r.original, c.input);
        assert.equal(r.registry, c.registry);
        assert.equal(r.repository, c.repository);
        assert.equal(r.tag, c.tag);
        assert.equal(r.digest, c.digest);
        assert.equal(r.name, `${c.registry}/${c.repository}`);
        assert.equal(r.toString(), c.full);
        assert.equal(String(r), c.full);
      });
    }
  });

  describe('bad references: OciError BAD_REFERENCE naming the input, weak and strict', () => {
    for (const c of BAD) {
      it(`${show(c.input)} [${c.src}]${c.note ? ` (${c.note})` : ''}`, () => {
        refused(c.input, false);
        refused(c.input, true);
      });
    }

    it('the error quotes at most 200 characters, redacted: no echo, no user info or query', () => {
      const long = refused('a.'.repeat(30_000), false, /empty or too long/);
      assert.ok(long.message.length < 300, `${long.message.length} characters`);
      for (const input of [
        "https://bot:p'SECRET@reg.example/app:1",
        'https:/bot:SECRET@reg.example/app:1',
        `https://bot:${'S'.repeat(300)}SECRET@reg.example/app:1`,
      ]) {
        assert.throws(
          () => Reference.parse(input),
          (e: unknown) =>
            e instanceof OciError && e.code === 'BAD_REFERENCE' && !/SECRET|SS/.test(e.message),
          input.slice(0, 60),
        );
      }
    });
  });

  describe('strict mode', () => {
    for (const c of STRICT_REFUSALS) {
      it(`refuses ${show(c.input)} (${c.why.source}) but weak mode accepts it [${c.src}]`, () => {
        assert.doesNotThrow(() => Reference.parse(c.input));
        refused(c.input, true, c.why);
      });
    }
    for (const input of STRICT_GOOD) {
      it(`accepts ${show(input)} as weak mode does`, () => {
        const strict = Reference.parse(input, { strict: true });
        const weak = Reference.parse(input);
        assert.equal(strict.toString(), weak.toString());
        assert.equal(strict.toString(), input);
      });
    }

    it('index.docker.io is renamed docker.io in strict mode too (an alias, not a default)', () => {
      const r = Reference.parse('index.docker.io/library/ubuntu:22.04', { strict: true });
      assert.equal(r.toString(), 'docker.io/library/ubuntu:22.04');
      assert.equal(r.original, 'index.docker.io/library/ubuntu:22.04');
    });

    it('the normalized form of every good reference parses in strict mode to itself', () => {
      for (const c of GOOD) {
        const full = Reference.parse(c.input).toString();
        assert.equal(Reference.parse(full, { strict: true }).toString(), full, c.input);
        assert.equal(Reference.parse(full).toString(), full, c.input);
      }
    });
  });

  describe('accessors', () => {
    it('tagged is registry/repository:tag (the TUF target path), without the digest', () => {
      assert.equal(Reference.parse('alpine').tagged, 'docker.io/library/alpine:latest');
      assert.equal(
        Reference.parse(`registry.example:5000/team/app:1.0@${FF}`).tagged,
        'registry.example:5000/team/app:1.0',
      );
      assert.equal(Reference.parse(`registry.example/app@${FF}`).tagged, undefined);
    });

    it('pinned() is registry/repository@digest, with this digest or the one given', () => {
      assert.equal(
        Reference.parse(`registry.example/app:1.0@${FF}`).pinned(),
        `registry.example/app@${FF}`,
      );
      assert.equal(
        Reference.parse('nginx:1.27').pinned(BUSYBOX),
        `docker.io/library/nginx@${BUSYBOX}`,
      );
      assert.equal(
        Reference.parse(`registry.example/app@${FF}`).pinned(DEADBEEF),
        `registry.example/app@${DEADBEEF}`,
      );
    });

    it('pinned() without any digest is an OciError BAD_REFERENCE naming the original', () => {
      assert.throws(
        () => Reference.parse('registry.example/app:1.0').pinned(),
        (e: unknown) =>
          e instanceof OciError &&
          e.code === 'BAD_REFERENCE' &&
          e.message.includes('registry.example/app:1.0'),
      );
    });

    it('original keeps the input as given; toString is the normalized full form', () => {
      const r = Reference.parse('index.docker.io/debian');
      assert.equal(r.original, 'index.docker.io/debian');
      assert.equal(r.toString(), 'docker.io/library/debian:latest');
      assert.equal(r.name, 'docker.io/library/debian');
    });
  });
});
