/**
 * The JSON Schemas of metadata-schemas/ as test oracles: every real fixture under
 * test/vectors/tuf/ validates (envelope, then the schema of its `_type`), and hand-made invalid
 * documents do not. Each hand-made case is also fed to the parser, which must refuse it too, so
 * the schemas and the parser cannot drift apart on these rules unnoticed.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { FormatError } from '../../src/core/errors.js';
import type { JsonObject } from '../../src/core/json.js';
import type { RoleType } from '../../src/core/metadata/base.js';
import { Metadata } from '../../src/core/metadata/envelope.js';
import { ROOT } from '../support/paths.js';

const SCHEMAS = join(ROOT, 'metadata-schemas');
const VECTORS = join(ROOT, 'test', 'vectors', 'tuf');
const ROLES: readonly RoleType[] = ['root', 'timestamp', 'snapshot', 'targets'];

/** Metadata fixtures: every .json file except target payloads (under a `targets/` folder). */
function listFixtures(dir: string = VECTORS): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'targets') out.push(...listFixtures(path));
    } else if (entry.name.endsWith('.json')) {
      out.push(path);
    }
  }
  return out.sort();
}

/** Fixtures kept because they are real but known-bad: they sit in an `invalid/` folder. */
function isInvalidFixture(path: string): boolean {
  return relative(VECTORS, path).split(sep).includes('invalid');
}

function loadJson(path: string): JsonObject {
  return JSON.parse(readFileSync(path, 'utf8')) as JsonObject;
}

// Strict mode, except strictRequired: "exactly one of paths / path_hash_prefixes" is written as
// oneOf: [{required: [paths]}, {required: [path_hash_prefixes]}], which that ajv-only lint flags.
const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
const validators = new Map<string, ValidateFunction>();
for (const name of ['envelope', ...ROLES]) {
  validators.set(name, ajv.compile(loadJson(join(SCHEMAS, `${name}.schema.json`))));
}

function validator(name: string): ValidateFunction {
  const v = validators.get(name);
  if (v === undefined) throw new Error(`no schema ${name}`);
  return v;
}

/** Errors of validating `doc` against `name`, as text ('' when valid). */
function schemaErrors(name: string, doc: unknown): string {
  const v = validator(name);
  return v(doc) ? '' : ajv.errorsText(v.errors);
}

function roleOf(doc: JsonObject): RoleType {
  const type = (doc.signed as JsonObject | undefined)?._type;
  assert.ok(
    typeof type === 'string' && (ROLES as readonly string[]).includes(type),
    `unknown _type ${String(type)}`,
  );
  return type as RoleType;
}

/** A deep copy of a fixture, to mutate. */
function fixture(rel: string): JsonObject {
  return structuredClone(loadJson(join(VECTORS, rel)));
}

function signedOf(doc: JsonObject): JsonObject {
  return doc.signed as JsonObject;
}

/** Asserts the schema of `type` refuses `doc.signed` and the parser refuses `doc`. */
function assertBothRefuse(doc: JsonObject, type: RoleType, expect: RegExp): void {
  const errors = schemaErrors(type, signedOf(doc));
  assert.notEqual(errors, '', `the ${type} schema accepted an invalid document`);
  assert.match(errors, expect);
  assert.throws(() => Metadata.fromJSON(doc, type), FormatError);
}

describe('metadata-schemas', () => {
  it('compile in ajv strict mode, draft 2020-12', () => {
    for (const name of validators.keys()) {
      const schema = loadJson(join(SCHEMAS, `${name}.schema.json`));
      assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    }
  });

  describe('every real fixture validates', () => {
    const files = listFixtures();
    it('finds the fixtures', () => {
      assert.ok(files.length >= 20, `only ${files.length} fixtures found`);
    });
    for (const file of files) {
      const name = relative(VECTORS, file);
      if (isInvalidFixture(file)) continue;
      it(name, () => {
        const doc = loadJson(file);
        assert.equal(schemaErrors('envelope', doc), '');
        assert.equal(schemaErrors(roleOf(doc), doc.signed), '');
      });
    }
  });

  it('a real fixture kept as invalid (spec_version 0.0.0) fails its role schema', () => {
    const doc = fixture('python-tuf/invalid/broken-root.json');
    assert.equal(schemaErrors('envelope', doc), '');
    assert.match(schemaErrors('root', doc.signed), /spec_version/);
  });

  describe('hand-made invalid documents fail', () => {
    it('threshold 0', () => {
      const doc = fixture('sigstore/staging/2.root.json');
      const roles = signedOf(doc).roles as Record<string, JsonObject>;
      (roles.timestamp as JsonObject).threshold = 0;
      assertBothRefuse(doc, 'root', /threshold/);
    });

    it('threshold 0 in a delegated role', () => {
      const doc = fixture('sigstore/staging/2.targets.json');
      const delegations = signedOf(doc).delegations as JsonObject;
      ((delegations.roles as JsonObject[])[0] as JsonObject).threshold = 0;
      assertBothRefuse(doc, 'targets', /threshold/);
    });

    it('empty hashes (metadata file and target file)', () => {
      const ts = fixture('sigstore/staging/timestamp.json');
      const meta = signedOf(ts).meta as Record<string, JsonObject>;
      (meta['snapshot.json'] as JsonObject).hashes = {};
      assertBothRefuse(ts, 'timestamp', /hashes/);

      const tg = fixture('sigstore/staging/2.registry.npmjs.org.json');
      const targets = signedOf(tg).targets as Record<string, JsonObject>;
      (targets['registry.npmjs.org/keys.json'] as JsonObject).hashes = {};
      assertBothRefuse(tg, 'targets', /hashes/);
    });

    for (const expires of [
      '2030-08-15T14:30:45.0123456789Z',
      '2030-01-01T00:00:00+0000',
      '2030-01-01T00:00:00',
      '2030-01-01 00:00:00Z',
      '2030-1-1T00:00:00Z',
    ]) {
      it(`bad expires ${expires}`, () => {
        const doc = fixture('python-tuf/fishy_rolenames/2.snapshot.json');
        signedOf(doc).expires = expires;
        assertBothRefuse(doc, 'snapshot', /expires|pattern/);
      });
    }

    it('expires as a number (pre-1.0 python-tuf wrote epoch seconds)', () => {
      const doc = fixture('python-tuf/fishy_rolenames/2.snapshot.json');
      signedOf(doc).expires = 1893456000;
      assertBothRefuse(doc, 'snapshot', /expires/);
    });

    it('wrong _type: each role document against every other role schema', () => {
      const docs: Record<RoleType, string> = {
        root: 'sigstore/staging/2.root.json',
        timestamp: 'sigstore/staging/timestamp.json',
        snapshot: 'sigstore/staging/2.snapshot.json',
        targets: 'sigstore/staging/2.targets.json',
      };
      for (const actual of ROLES) {
        for (const expected of ROLES) {
          if (actual === expected) continue;
          const doc = fixture(docs[actual]);
          assert.match(schemaErrors(expected, doc.signed), /_type|constant/);
          assert.throws(() => Metadata.fromJSON(doc, expected), FormatError);
        }
      }
    });

    it('capitalised _type (pre-1.0 python-tuf wrote "Root")', () => {
      const doc = fixture('python-tuf/root_sequence/2.root.json');
      signedOf(doc)._type = 'Root';
      assertBothRefuse(doc, 'root', /_type|constant/);
    });

    it('spec_version of another major version', () => {
      const doc = fixture('python-tuf/root_sequence/2.root.json');
      signedOf(doc).spec_version = '2.0.0';
      assertBothRefuse(doc, 'root', /spec_version/);
    });

    it('version 0 and a fractional version', () => {
      for (const version of [0, 1.5]) {
        const doc = fixture('sigstore/staging/2.snapshot.json');
        signedOf(doc).version = version;
        assertBothRefuse(doc, 'snapshot', /version/);
      }
    });

    it('root roles: a missing role and an extra role', () => {
      const missing = fixture('sigstore/prod/8.root.json');
      delete (signedOf(missing).roles as Record<string, JsonObject>).snapshot;
      assertBothRefuse(missing, 'root', /snapshot|required/);

      const extra = fixture('sigstore/prod/8.root.json');
      const roles = signedOf(extra).roles as Record<string, JsonObject>;
      roles.mirrors = structuredClone(roles.timestamp as JsonObject);
      assertBothRefuse(extra, 'root', /property name/);
    });

    it('repeated key IDs in a role', () => {
      const doc = fixture('sigstore/prod/8.root.json');
      const role = (signedOf(doc).roles as Record<string, JsonObject>).root as JsonObject;
      const keyids = role.keyids as string[];
      role.keyids = [...keyids, keyids[0] as string];
      assertBothRefuse(doc, 'root', /duplicate|unique|NOT have duplicate/i);
    });

    it('timestamp meta listing anything but snapshot.json', () => {
      const doc = fixture('sigstore/staging/timestamp.json');
      const meta = signedOf(doc).meta as Record<string, JsonObject>;
      meta['targets.json'] = { version: 1 };
      assertBothRefuse(doc, 'timestamp', /property name/);
    });

    it('metadata length 0, target length -1', () => {
      const sn = fixture('sigstore/staging/2.snapshot.json');
      const meta = signedOf(sn).meta as Record<string, JsonObject>;
      (meta['targets.json'] as JsonObject).length = 0;
      assertBothRefuse(sn, 'snapshot', /length/);

      const tg = fixture('sigstore/staging/2.targets.json');
      const targets = signedOf(tg).targets as Record<string, JsonObject>;
      (targets['rekor.pub'] as JsonObject).length = -1;
      assertBothRefuse(tg, 'targets', /length/);
    });

    it('a delegated role with both paths and path_hash_prefixes, or neither', () => {
      const both = fixture('sigstore/staging/2.targets.json');
      const role = ((signedOf(both).delegations as JsonObject).roles as JsonObject[])[0];
      (role as JsonObject).path_hash_prefixes = ['ab'];
      assertBothRefuse(both, 'targets', /oneOf|match exactly one/);

      const neither = fixture('sigstore/staging/2.targets.json');
      const role2 = ((signedOf(neither).delegations as JsonObject).roles as JsonObject[])[0];
      delete (role2 as JsonObject).paths;
      assertBothRefuse(neither, 'targets', /oneOf|match exactly one/);
    });

    it('delegations with both roles and succinct_roles, and bit_length 0 or 33', () => {
      const succinct = { keyids: [], threshold: 1, bit_length: 8, name_prefix: 'bin' };
      const both = fixture('sigstore/staging/2.targets.json');
      (signedOf(both).delegations as JsonObject).succinct_roles = succinct;
      assertBothRefuse(both, 'targets', /oneOf|match exactly one/);

      for (const bitLength of [0, 33]) {
        const doc = fixture('sigstore/staging/2.targets.json');
        const delegations = signedOf(doc).delegations as JsonObject;
        delete delegations.roles;
        delegations.succinct_roles = { ...succinct, bit_length: bitLength };
        assertBothRefuse(doc, 'targets', /bit_length/);
      }
    });
  });

  describe('hand-made valid documents pass', () => {
    it('unknown fields at every level are allowed', () => {
      const doc = fixture('sigstore/staging/2.targets.json');
      doc['x-envelope'] = true;
      const signed = signedOf(doc);
      signed['x-signed'] = { nested: [1, 2] };
      const delegations = signed.delegations as JsonObject;
      delegations['x-delegations'] = 'kept';
      ((delegations.roles as JsonObject[])[0] as JsonObject)['x-role'] = 1;
      const targets = signed.targets as Record<string, JsonObject>;
      (targets['rekor.pub'] as JsonObject)['x-target'] = null;
      (doc.signatures as JsonObject[]).push({ keyid: 'ab', sig: '', 'x-sig': 1 });
      assert.equal(schemaErrors('envelope', doc), '');
      assert.equal(schemaErrors('targets', doc.signed), '');
      assert.doesNotThrow(() => Metadata.fromJSON(doc, 'targets'));
    });

    it('succinct_roles at the bounds of bit_length', () => {
      for (const bitLength of [1, 32]) {
        const doc = fixture('sigstore/staging/2.targets.json');
        const delegations = signedOf(doc).delegations as JsonObject;
        delete delegations.roles;
        delegations.succinct_roles = {
          keyids: ['314ae73abd3012fc73bfcc3783e31d03852716597642b891d6a33155c4baf600'],
          threshold: 1,
          bit_length: bitLength,
          name_prefix: 'bin',
        };
        assert.equal(schemaErrors('targets', doc.signed), '');
        assert.doesNotThrow(() => Metadata.fromJSON(doc, 'targets'));
      }
    });
  });
});
