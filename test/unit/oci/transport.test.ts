/**
 * Image locations: parseLocation and formatLocation (`docker://REF`, a bare reference, `oci:DIR[:REF]`,
 * `oci-archive:FILE[:REF]`), as skopeo writes them.
 */
import assert from 'node:assert/strict';
import { OciError } from '../../../src/oci/errors.js';
import { formatLocation, type ImageLocation, parseLocation } from '../../../src/oci/transport.js';

const FF = `sha256:${'f'.repeat(64)}`;

const GOOD: ReadonlyArray<[string, ImageLocation, string]> = [
  ['docker://alpine', { transport: 'docker', reference: 'alpine' }, 'docker://alpine'],
  ['alpine', { transport: 'docker', reference: 'alpine' }, 'docker://alpine'],
  [
    'registry.example:5000/team/app:1.0',
    { transport: 'docker', reference: 'registry.example:5000/team/app:1.0' },
    'docker://registry.example:5000/team/app:1.0',
  ],
  [
    `docker://localhost:5000/app@${FF}`,
    { transport: 'docker', reference: `localhost:5000/app@${FF}` },
    `docker://localhost:5000/app@${FF}`,
  ],
  [
    'oci:/tmp/layout',
    { transport: 'oci', path: '/tmp/layout', refName: undefined },
    'oci:/tmp/layout',
  ],
  ['oci:layout', { transport: 'oci', path: 'layout', refName: undefined }, 'oci:layout'],
  [
    'oci:./rel/dir:1.0',
    { transport: 'oci', path: './rel/dir', refName: '1.0' },
    'oci:./rel/dir:1.0',
  ],
  // the ref name is everything after the first colon: it may hold colons, slashes and a digest
  [
    'oci:/tmp/layout:registry.example/app:1.0',
    { transport: 'oci', path: '/tmp/layout', refName: 'registry.example/app:1.0' },
    'oci:/tmp/layout:registry.example/app:1.0',
  ],
  [
    `oci:/tmp/layout:registry.example:5000/app:1.0@${FF}`,
    { transport: 'oci', path: '/tmp/layout', refName: `registry.example:5000/app:1.0@${FF}` },
    `oci:/tmp/layout:registry.example:5000/app:1.0@${FF}`,
  ],
  // an empty ref name is no ref name
  [
    'oci:/tmp/layout:',
    { transport: 'oci', path: '/tmp/layout', refName: undefined },
    'oci:/tmp/layout',
  ],
  [
    'oci-archive:/tmp/image.tar',
    { transport: 'oci-archive', path: '/tmp/image.tar', refName: undefined },
    'oci-archive:/tmp/image.tar',
  ],
  [
    'oci-archive:/tmp/image.tar:registry.example/app:1.0',
    { transport: 'oci-archive', path: '/tmp/image.tar', refName: 'registry.example/app:1.0' },
    'oci-archive:/tmp/image.tar:registry.example/app:1.0',
  ],
  // `oci-archive:` is not `oci:` with a path starting "archive"
  [
    'oci-archive:x.tar',
    { transport: 'oci-archive', path: 'x.tar', refName: undefined },
    'oci-archive:x.tar',
  ],
  [
    'oci:archive.tar',
    { transport: 'oci', path: 'archive.tar', refName: undefined },
    'oci:archive.tar',
  ],
];

const BAD: ReadonlyArray<[string, RegExp]> = [
  ['oci:', /the oci path is empty/],
  ['oci::registry.example/app:1.0', /the oci path is empty/],
  ['oci-archive:', /the oci-archive path is empty/],
  ['oci-archive::ref', /the oci-archive path is empty/],
  ['http://registry.example/app', /unknown transport/],
  ['https://registry.example/app', /unknown transport/],
  ['containers-storage://app', /unknown transport/],
  ['docker-daemon://app', /unknown transport/],
];

describe('parseLocation and formatLocation', () => {
  for (const [input, want, formatted] of GOOD) {
    it(`${input} → ${JSON.stringify(want)}`, () => {
      assert.deepEqual(parseLocation(input), want);
      assert.equal(formatLocation(parseLocation(input)), formatted);
      // formatting is stable: the formatted form parses to the same location
      assert.deepEqual(parseLocation(formatted), want);
    });
  }

  for (const [input, message] of BAD) {
    it(`${input} is refused: OciError BAD_REFERENCE naming it`, () => {
      assert.throws(
        () => parseLocation(input),
        (e: unknown) => {
          assert.ok(e instanceof OciError, String(e));
          assert.equal(e.code, 'BAD_REFERENCE');
          assert.ok(e.message.includes(input), e.message);
          assert.match(e.message, message);
          return true;
        },
      );
    });
  }

  it('docker:// takes the rest as given (the reference is checked later, by Reference.parse)', () => {
    assert.deepEqual(parseLocation('docker://'), { transport: 'docker', reference: '' });
    assert.deepEqual(parseLocation('docker://Not A Reference'), {
      transport: 'docker',
      reference: 'Not A Reference',
    });
  });

  it('formatLocation writes each transport', () => {
    assert.equal(formatLocation({ transport: 'docker', reference: 'a/b:c' }), 'docker://a/b:c');
    assert.equal(formatLocation({ transport: 'oci', path: '/x', refName: undefined }), 'oci:/x');
    assert.equal(formatLocation({ transport: 'oci', path: '/x', refName: 'r' }), 'oci:/x:r');
    assert.equal(
      formatLocation({ transport: 'oci-archive', path: '/x.tar', refName: 'r:1' }),
      'oci-archive:/x.tar:r:1',
    );
  });
});
