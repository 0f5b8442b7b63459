/**
 * Property tests (fast-check): canonical JSON round trips; the metadata parser only ever throws
 * typed errors, whatever the bytes or the JSON values in any field; every single-byte mutation
 * of signed metadata is refused, or changes nothing that is signed (asserted exactly); a
 * threshold is met exactly when enough distinct keys signed, however the keys are aliased.
 * Seeds are fixed, so a failure replays; `FC_SEED` overrides.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalize, canonicalString } from '../../src/core/canonical-json.js';
import { TufaError } from '../../src/core/errors.js';
import { type JsonObject, type JsonValue, parseJson } from '../../src/core/json.js';
import type { RoleType } from '../../src/core/metadata/base.js';
import { Metadata } from '../../src/core/metadata/envelope.js';
import { TrustedMetadataSet } from '../../src/core/trusted-set.js';
import { nodeBackend } from '../../src/crypto/index.js';
import { envelope, NOW, SimRepo, TestKey } from '../support/tuf-builder.js';
import { defineCases, pathsOf, type SecurityCase } from './harness.js';
import { te } from './worlds.js';

const SEED = process.env.FC_SEED === undefined ? 20_261_122 : Number(process.env.FC_SEED);
const params = (numRuns: number) => ({ seed: SEED, numRuns });

/** A JSON value of the kind metadata holds: safe integers, any Unicode text, nesting. */
const metadataJson: fc.Arbitrary<JsonValue> = fc.letrec<{ v: JsonValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.integer({ min: -1000, max: 1000 }),
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.string({
      unit: fc.constantFrom('"', '\\', '\n', '\u0000', '\u007f', 'é', '😀', '\u2028', 'a', '/'),
      maxLength: 8,
    }),
    fc.array(tie('v'), { maxLength: 5 }),
    fc
      .array(
        fc.tuple(
          fc.oneof(
            fc.string({ unit: 'binary', maxLength: 6 }),
            fc.constantFrom('__proto__', 'constructor', ''),
          ),
          tie('v'),
        ),
        { maxLength: 5 },
      )
      .map((entries) => {
        // own data properties, "__proto__" included, as a JSON parser makes them
        const o: JsonObject = {};
        for (const [k, x] of entries)
          Object.defineProperty(o, k, {
            value: x,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        return o;
      }),
  ),
})).v;

/** codePointSort orders keys as Python's sorted() does (by code point). */
function codePointCompare(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0) as number);
  const y = Array.from(b, (c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++)
    if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

/** referenceCanonical is canonical JSON written independently of src/core/canonical-json.ts. */
function referenceCanonical(v: JsonValue): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'number') return String(v);
  if (typeof v === 'string') return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  if (Array.isArray(v)) return `[${v.map(referenceCanonical).join(',')}]`;
  const keys = Object.keys(v).sort(codePointCompare);
  return `{${keys.map((k) => `${referenceCanonical(k)}:${referenceCanonical(v[k] as JsonValue)}`).join(',')}}`;
}

/** shuffleKeys rebuilds every object with its keys in reverse insertion order. */
function shuffleKeys(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(shuffleKeys);
  if (v === null || typeof v !== 'object') return v;
  const out: JsonObject = {};
  for (const k of Object.keys(v).reverse()) {
    Object.defineProperty(out, k, {
      value: shuffleKeys(v[k] as JsonValue),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** keysInOrder checks every object of a canonical text lists its keys by code point. */
function keysSorted(v: JsonValue): boolean {
  if (Array.isArray(v)) return v.every(keysSorted);
  if (v === null || typeof v !== 'object') return true;
  const keys = Object.keys(v);
  for (let i = 1; i < keys.length; i++)
    if (codePointCompare(keys[i - 1] as string, keys[i] as string) >= 0) return false;
  return keys.every((k) => keysSorted(v[k] as JsonValue));
}

/** typedOrAccepted runs `fn`; anything it throws must be a TufaError. */
function typedOrAccepted(fn: () => unknown): 'accepted' | 'refused' {
  try {
    fn();
    return 'accepted';
  } catch (e) {
    if (!(e instanceof TufaError))
      throw new Error(`untyped throw: ${(e as Error)?.stack ?? String(e)}`);
    return 'refused';
  }
}

/** A repository with keys of every type, a delegation and targets: valid bytes of every role. */
function signedRepository(): {
  repo: SimRepo;
  docs: Array<{
    role: RoleType | 'delegated';
    bytes: Uint8Array;
    load: (b: Uint8Array) => Metadata;
  }>;
} {
  const repo = new SimRepo();
  repo.withHashes = false;
  repo.timestampKeys = [new TestKey('ecdsa')];
  repo.snapshotKeys = [new TestKey('rsa')];
  repo.setRootKeys();
  repo.delegate('targets', 'D', { paths: ['d/*'], keys: [new TestKey('ecdsa')] });
  repo.addTarget('d/app', te.encode('app'), 'D');
  repo.addTarget('top', te.encode('top'));
  (repo.targets as JsonObject).x_custom_field = { note: 'unknown fields are signed too' };
  // sign each role once (ECDSA and RSA-PSS signatures are randomized)
  const rootBytes = envelope(repo.root, repo.rootKeys);
  const targetsBytes = repo.targetsBytes();
  const dBytes = repo.targetsBytes('D');
  repo.snapshot.meta = {
    'targets.json': { version: 1 },
    'D.json': { version: 1 },
  };
  const snapshotBytes = repo.snapshotBytes();
  repo.timestamp.meta = { 'snapshot.json': { version: 1 } };
  const timestampBytes = repo.timestampBytes();
  const set = () => new TrustedMetadataSet(rootBytes, NOW, { backend: nodeBackend });
  return {
    repo,
    docs: [
      {
        role: 'root',
        bytes: rootBytes,
        load: (b) => new TrustedMetadataSet(b, NOW, { backend: nodeBackend }).root,
      },
      { role: 'timestamp', bytes: timestampBytes, load: (b) => set().updateTimestamp(b) },
      {
        role: 'snapshot',
        bytes: snapshotBytes,
        load: (b) => {
          const s = set();
          s.updateTimestamp(timestampBytes);
          // as a cached copy: no hash check, so the signature is what decides
          return s.updateSnapshot(b, true);
        },
      },
      {
        role: 'targets',
        bytes: targetsBytes,
        load: (b) => {
          const s = set();
          s.updateTimestamp(timestampBytes);
          s.updateSnapshot(snapshotBytes);
          return s.updateTargets(b);
        },
      },
      {
        role: 'delegated',
        bytes: dBytes,
        load: (b) => {
          const s = set();
          s.updateTimestamp(timestampBytes);
          s.updateSnapshot(snapshotBytes);
          return s.updateDelegatedTargets(b, 'D', s.updateTargets(targetsBytes));
        },
      },
    ],
  };
}

const cases: SecurityCase[] = [
  {
    id: 'PROP-01',
    title: 'canonical JSON round-trips, is idempotent, key-order free and sorted by code point',
    attack:
      'Two encoders disagreeing on one value (key order, escapes, astral characters, control characters) let a signature over one encoding be checked against another',
    source:
      'OLPC canonical JSON as securesystemslib writes it (an independent encoder as oracle); fast-check, 2000 values',
    expect:
      'safe: parse(canonical(v)) = v, canonical is idempotent and independent of key order, keys by code point',
    timeout: 60_000,
    run() {
      fc.assert(
        fc.property(metadataJson, fc.integer({ min: 0, max: 4 }), (v, indent) => {
          const c = canonicalString(v);
          // an independent encoder: keys by code point, only " and \\ escaped, nothing else
          assert.equal(c, referenceCanonical(v));
          assert.deepStrictEqual(Buffer.from(canonicalize(v)), Buffer.from(c, 'utf8'));
          // canonical JSON writes control characters raw (it is not strict JSON): escape them
          // to read it back; outside strings it has no whitespace, so this touches strings only
          const back = JSON.parse(
            Array.from(c, (ch) =>
              ch.charCodeAt(0) < 0x20 ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : ch,
            ).join(''),
          ) as JsonValue;
          assert.deepStrictEqual(back, v);
          assert.equal(canonicalString(back), c, 'idempotent');
          assert.equal(canonicalString(shuffleKeys(v)), c, 'independent of key order');
          assert.ok(keysSorted(back));
          // the strict parser reads any JSON encoding of v as v
          assert.deepStrictEqual(parseJson(JSON.stringify(v, null, indent)), v);
        }),
        params(2000),
      );
    },
  },
  {
    id: 'PROP-02',
    title: 'the metadata parser throws only typed errors, on random bytes and random field values',
    attack:
      'Random bytes, random text, random JSON documents, and valid role files with one field (any depth) replaced by a random JSON value or given extra keys',
    source: 'go-tuf CVE-2026-23991 (malformed metadata crashed the client); fast-check',
    expect: 'safe: Metadata.fromBytes returns a model or throws a TufaError subclass, nothing else',
    timeout: 90_000,
    run() {
      const roles: RoleType[] = ['root', 'timestamp', 'snapshot', 'targets'];
      const role = fc.constantFrom(...roles);
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), role, (b, r) => {
          typedOrAccepted(() => Metadata.fromBytes(b, r));
        }),
        params(3000),
      );
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 200 }), role, (s, r) => {
          typedOrAccepted(() => Metadata.fromBytes(s, r));
        }),
        params(2000),
      );
      fc.assert(
        fc.property(fc.jsonValue({ maxDepth: 4 }), role, (v, r) => {
          typedOrAccepted(() =>
            Metadata.fromBytes(te.encode(JSON.stringify({ signatures: [], signed: v })), r),
          );
          typedOrAccepted(() => Metadata.fromBytes(te.encode(JSON.stringify(v)), r));
        }),
        params(2000),
      );
      const { docs } = signedRepository();
      const parsed = docs.map((d) => ({
        role: d.role === 'delegated' ? ('targets' as const) : d.role,
        json: JSON.parse(new TextDecoder().decode(d.bytes)) as JsonValue,
      }));
      const withPaths = parsed.map((p) => ({ ...p, paths: pathsOf(p.json) }));
      let accepted = 0;
      fc.assert(
        fc.property(
          fc.nat({ max: withPaths.length - 1 }),
          fc.nat(),
          fc.oneof(fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>, metadataJson),
          fc.boolean(),
          (which, at, value, addKey) => {
            const doc = withPaths[which] as (typeof withPaths)[number];
            const path = doc.paths[at % doc.paths.length] as Array<string | number>;
            const copy = structuredClone(doc.json) as JsonValue;
            let node: JsonValue = copy;
            for (const p of path.slice(0, -1))
              node = (node as Record<string | number, JsonValue>)[p] as JsonValue;
            if (path.length === 0) return;
            const last = path[path.length - 1] as string | number;
            const parent = node as Record<string | number, JsonValue>;
            if (addKey && parent !== null && typeof parent === 'object' && !Array.isArray(parent)) {
              parent[`x-${String(last)}`] = value;
            } else {
              parent[last] = value;
            }
            if (
              typedOrAccepted(() =>
                Metadata.fromBytes(te.encode(JSON.stringify(copy)), doc.role),
              ) === 'accepted'
            )
              accepted++;
          },
        ),
        params(4000),
      );
      assert.ok(accepted > 0, 'some mutations (unknown fields, custom) are accepted by the parser');
    },
  },
  {
    id: 'PROP-03',
    title:
      'a single-byte mutation of signed metadata is refused, or leaves the signed part exactly equal',
    attack:
      'One byte of a valid signed root, timestamp, snapshot, targets or delegated file (ed25519, ECDSA and RSA-PSS signatures) is changed to any other value',
    source: 'TUF 4.2 signatures over canonical JSON of signed; fast-check, 5 × 600 mutations',
    expect:
      'safe: TrustedMetadataSet throws a TufaError, or accepts a document whose signed object and model equal the original exactly',
    timeout: 120_000,
    run() {
      const { docs } = signedRepository();
      const benign: string[] = [];
      for (const d of docs) {
        const original = d.load(d.bytes);
        const canonical = Buffer.from(canonicalize(original.signedJson));
        const model = original.signed.toJSON();
        let accepted = 0;
        fc.assert(
          fc.property(
            fc.nat({ max: d.bytes.length - 1 }),
            fc.integer({ min: 1, max: 255 }),
            (at, delta) => {
              const mutated = Uint8Array.from(d.bytes);
              mutated[at] = ((mutated[at] as number) + delta) & 0xff;
              let md: Metadata | undefined;
              try {
                md = d.load(mutated);
              } catch (e) {
                assert.ok(
                  e instanceof TufaError,
                  `${d.role} byte ${at}: untyped ${(e as Error)?.stack ?? e}`,
                );
                return;
              }
              accepted++;
              assert.ok(
                Buffer.from(canonicalize(md.signedJson)).equals(canonical),
                `${d.role} byte ${at} (+${delta}): accepted with another signed object`,
              );
              assert.deepStrictEqual(
                md.signed.toJSON(),
                model,
                `${d.role} byte ${at}: another model`,
              );
            },
          ),
          params(600),
        );
        benign.push(`${d.role} ${accepted}`);
      }
      // accepted mutations are whitespace, hex case of a signature, and the like
      process.stderr.write(
        `      (PROP-03: accepted and equal, per role of 600: ${benign.join(', ')})\n`,
      );
    },
  },
  {
    id: 'PROP-04',
    title:
      'a threshold is met exactly when that many distinct keys signed, however keys are aliased',
    attack:
      'Random roles list 1–3 real keys, each under 1–3 key IDs (hex in either case), with thresholds 1–4, and random subsets of the IDs sign',
    source: 'go-tuf GHSA-3633-5h82-39pq (threshold counted over key IDs); fast-check',
    expect:
      'safe: the timestamp verifies iff the distinct keys among the signers reach the threshold',
    timeout: 60_000,
    run() {
      const pool = [new TestKey(), new TestKey(), new TestKey()];
      const repo = new SimRepo();
      const data = canonicalize(repo.timestamp);
      const sigs = pool.map((k) => k.signHex(data));
      fc.assert(
        fc.property(
          fc.array(
            fc.record({ key: fc.nat({ max: 2 }), upper: fc.boolean(), signs: fc.boolean() }),
            {
              minLength: 1,
              maxLength: 6,
            },
          ),
          fc.integer({ min: 1, max: 4 }),
          (entries, threshold) => {
            const keys: JsonObject = {};
            const keyids: string[] = [];
            const signatures: Array<{ keyid: string; sig: string }> = [];
            const distinct = new Set<number>();
            entries.forEach((e, i) => {
              const k = pool[e.key] as TestKey;
              const id = `id-${i}`;
              const json = structuredClone(k.json);
              if (e.upper)
                (json.keyval as JsonObject).public = (
                  (json.keyval as JsonObject).public as string
                ).toUpperCase();
              keys[id] = json;
              keyids.push(id);
              if (e.signs) {
                signatures.push({ keyid: id, sig: sigs[e.key] as string });
                distinct.add(e.key);
              }
            });
            const root = structuredClone(repo.root);
            Object.assign(root.keys as JsonObject, keys);
            (root.roles as JsonObject).timestamp = { keyids, threshold };
            const set = new TrustedMetadataSet(envelope(root, repo.rootKeys), NOW, {
              backend: nodeBackend,
            });
            const bytes = te.encode(JSON.stringify({ signatures, signed: repo.timestamp }));
            const outcome = typedOrAccepted(() => set.updateTimestamp(bytes));
            assert.equal(
              outcome === 'accepted',
              distinct.size >= threshold,
              JSON.stringify({ entries, threshold }),
            );
          },
        ),
        params(600),
      );
    },
  },
];

describe('security: properties (fast-check)', () => {
  defineCases(cases);
});
