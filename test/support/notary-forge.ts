/**
 * Notary v1 trust data made and signed here, for attacks the real fixtures cannot stage (an
 * attacker's own root, a compromised timestamp key, an older but validly signed `targets`):
 *
 * - keys: bare ECDSA P-256 keys (`ecdsa`) and X.509 root keys (`ecdsa-x509`, leaf-first PEM
 *   chains made with openssl: self-signed, or issued through CAs with chosen extensions);
 * - documents: Root, Targets (with delegations), Snapshot and Timestamp in Notary's dialect,
 *   signed with raw r‖s ECDSA over the canonical JSON of `signed`, as notary does;
 * - {@link forgedCrawl} lays documents out as a notary-server serves them (`root.json`,
 *   `N.root.json`, `timestamp.json`, `<role>.<sha256>.json`), as a {@link Crawl} that
 *   NotaryFixtureFetcher serves without sockets.
 *
 * Certificates are made now (openssl cannot back-date them): clients of forged data run with a
 * clock near the real time ({@link forgeClock}).
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesToBase64, canonicalize } from '../../src/core/index.js';
import { notaryKeyId } from '../../src/notary/keys.js';
import type { Crawl } from './notary-fixtures.js';

/** Far-future expiry for forged documents. */
export const FORGE_EXPIRES = '2099-01-01T00:00:00Z';

/** A clock for forged data: the real time plus `ms` (certificates are valid from now on). */
export function forgeClock(ms = 3_600_000): () => number {
  const at = Date.now() + ms;
  return () => at;
}

/** A key with its Notary ID, its public entry for `keys` maps, and its private half. */
export interface ForgeKey {
  readonly id: string;
  readonly keytype: string;
  readonly public: string;
  readonly privateKey: KeyObject;
}

function ecPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** ecdsaKey makes a bare ECDSA key (`ecdsa`, public = base64 SPKI DER). */
export function ecdsaKey(): ForgeKey {
  const { publicKey, privateKey } = ecPair();
  const pub = bytesToBase64(new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })));
  return { id: notaryKeyId('ecdsa', pub), keytype: 'ecdsa', public: pub, privateKey };
}

/** x509Key makes an `ecdsa-x509` key from a leaf-first PEM chain and the leaf's private key. */
export function x509Key(pemChain: string, privateKey: KeyObject): ForgeKey {
  const pub = bytesToBase64(new TextEncoder().encode(pemChain));
  return { id: notaryKeyId('ecdsa-x509', pub), keytype: 'ecdsa-x509', public: pub, privateKey };
}

/** Extensions of a certificate made by {@link Openssl.cert}. */
export interface CertOptions {
  /** Subject CN. */
  readonly cn: string;
  /** Validity in days from now (default 365). */
  readonly days?: number;
  /** basicConstraints: `CA:TRUE[, pathlen:N]` or `CA:FALSE` (default: FALSE for leaves). */
  readonly basicConstraints?: string;
  /** keyUsage (default: digitalSignature for leaves, keyCertSign,cRLSign for CAs). */
  readonly keyUsage?: string;
  /** The issuer (self-signed when absent). */
  readonly issuer?: IssuedCert;
  /** More lines for the openssl extension section (e.g. `nameConstraints=critical,…`). */
  readonly extra?: string;
}

/** A certificate and its private key (PEM files in the openssl folder). */
export interface IssuedCert {
  readonly pem: string;
  readonly keyFile: string;
  readonly certFile: string;
  readonly privateKey: KeyObject;
}

/** Certificates made with the openssl command in a temp folder. */
export class Openssl {
  private n = 0;
  constructor(private readonly dir: string) {}

  /** cert makes an EC P-256 certificate with the given subject and extensions. */
  cert(o: CertOptions): IssuedCert {
    const i = this.n++;
    const { privateKey } = ecPair();
    const keyFile = join(this.dir, `k${i}.pem`);
    const certFile = join(this.dir, `c${i}.pem`);
    const extFile = join(this.dir, `e${i}.cnf`);
    writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, {
      mode: 0o600,
    });
    const ca = (o.basicConstraints ?? 'CA:FALSE').startsWith('CA:TRUE');
    const ku = o.keyUsage ?? (ca ? 'critical,keyCertSign,cRLSign' : 'critical,digitalSignature');
    writeFileSync(
      extFile,
      `[v3]\nbasicConstraints=critical,${o.basicConstraints ?? 'CA:FALSE'}\nkeyUsage=${ku}\nsubjectKeyIdentifier=hash\n${o.extra ?? ''}\n`,
    );
    // openssl -subj wants the `/`s of a GUN escaped
    const subj = `/CN=${o.cn.replace(/\//g, '\\/')}`;
    const days = String(o.days ?? 365);
    const csr = join(this.dir, `r${i}.csr`);
    const run = (args: string[]) =>
      execFileSync('openssl', args, { cwd: this.dir, timeout: 30_000 });
    run(['req', '-new', '-key', keyFile, '-subj', subj, '-out', csr]);
    const signer = o.issuer
      ? ['-CA', o.issuer.certFile, '-CAkey', o.issuer.keyFile, '-CAcreateserial']
      : ['-signkey', keyFile];
    run([
      'x509',
      '-req',
      '-in',
      csr,
      ...signer,
      '-days',
      days,
      '-sha256',
      '-extfile',
      extFile,
      '-extensions',
      'v3',
      '-out',
      certFile,
    ]);
    return { pem: readFileSync(certFile, 'utf8'), keyFile, certFile, privateKey };
  }
}

/** signEnvelope signs `signed` with each key (ECDSA raw r‖s over the canonical JSON). */
export function signEnvelope(signed: object, keys: readonly ForgeKey[]): Uint8Array {
  const bytes = canonicalize(signed);
  const signatures = keys.map((k) => ({
    keyid: k.id,
    method: 'ecdsa',
    sig: bytesToBase64(
      new Uint8Array(sign('sha256', bytes, { key: k.privateKey, dsaEncoding: 'ieee-p1363' })),
    ),
  }));
  return new TextEncoder().encode(JSON.stringify({ signed, signatures }));
}

function keyMap(keys: readonly ForgeKey[]): Record<string, object> {
  return Object.fromEntries(
    keys.map((k) => [k.id, { keytype: k.keytype, keyval: { private: null, public: k.public } }]),
  );
}

function role(keys: readonly ForgeKey[], threshold = 1) {
  return { keyids: keys.map((k) => k.id), threshold };
}

/** The keys of each top-level role. */
export interface RootRoles {
  readonly root: readonly ForgeKey[];
  readonly targets: readonly ForgeKey[];
  readonly snapshot: readonly ForgeKey[];
  readonly timestamp: readonly ForgeKey[];
}

/** forgeRoot makes a signed root (signers default to the root role's keys). */
export function forgeRoot(
  version: number,
  roles: RootRoles,
  signers: readonly ForgeKey[] = roles.root,
): Uint8Array {
  const all = new Map<string, ForgeKey>();
  for (const k of [...roles.root, ...roles.targets, ...roles.snapshot, ...roles.timestamp])
    all.set(k.id, k);
  return signEnvelope(
    {
      _type: 'Root',
      consistent_snapshot: false,
      expires: FORGE_EXPIRES,
      keys: keyMap([...all.values()]),
      roles: {
        root: role(roles.root),
        snapshot: role(roles.snapshot),
        targets: role(roles.targets),
        timestamp: role(roles.timestamp),
      },
      version,
    },
    signers,
  );
}

/** A delegation in a forged targets role. */
export interface ForgeDelegation {
  readonly name: string;
  readonly keys: readonly ForgeKey[];
  readonly paths?: readonly string[];
}

/** forgeTargets makes a signed targets role; each tag names the manifest bytes it pins. */
export function forgeTargets(
  version: number,
  tags: Record<string, string>,
  signers: readonly ForgeKey[],
  delegations: readonly ForgeDelegation[] = [],
): Uint8Array {
  const targets = Object.fromEntries(
    Object.entries(tags).map(([tag, content]) => {
      const b = new TextEncoder().encode(content);
      return [
        tag,
        { hashes: { sha256: createHash('sha256').update(b).digest('base64') }, length: b.length },
      ];
    }),
  );
  const signed: Record<string, unknown> = {
    _type: 'Targets',
    delegations: {
      keys: keyMap(delegations.flatMap((d) => d.keys)),
      roles: delegations.map((d) => ({
        keyids: d.keys.map((k) => k.id),
        name: d.name,
        paths: d.paths ?? [''],
        threshold: 1,
      })),
    },
    expires: FORGE_EXPIRES,
    targets,
    version,
  };
  return signEnvelope(signed, signers);
}

function metaOf(bytes: Uint8Array) {
  return {
    hashes: { sha256: createHash('sha256').update(bytes).digest('base64') },
    length: bytes.length,
  };
}

/** forgeSnapshot lists the given role files (root, targets, targets/…). */
export function forgeSnapshot(
  version: number,
  files: Record<string, Uint8Array>,
  signers: readonly ForgeKey[],
): Uint8Array {
  const meta = Object.fromEntries(Object.entries(files).map(([n, b]) => [n, metaOf(b)]));
  return signEnvelope({ _type: 'Snapshot', expires: FORGE_EXPIRES, meta, version }, signers);
}

/** forgeTimestamp lists the snapshot. */
export function forgeTimestamp(
  version: number,
  snapshot: Uint8Array,
  signers: readonly ForgeKey[],
): Uint8Array {
  return signEnvelope(
    { _type: 'Timestamp', expires: FORGE_EXPIRES, meta: { snapshot: metaOf(snapshot) }, version },
    signers,
  );
}

/** What a forged server serves: every root version, the timestamp, snapshot and targets roles. */
export interface ForgedCollection {
  /** Root versions in order; the last is also `root.json`. */
  readonly roots: readonly Uint8Array[];
  readonly timestamp: Uint8Array;
  readonly snapshot: Uint8Array;
  /** `targets`, `targets/releases`, … */
  readonly roles: Record<string, Uint8Array>;
}

const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** forgedCrawl lays a collection out as notary-server serves it. */
export function forgedCrawl(server: string, gun: string, c: ForgedCollection): Crawl {
  const files = new Map<string, Uint8Array>();
  c.roots.forEach((b, i) => {
    files.set(`${i + 1}.root.json`, b);
  });
  const last = c.roots[c.roots.length - 1];
  if (last !== undefined) files.set('root.json', last);
  files.set('timestamp.json', c.timestamp);
  files.set(`snapshot.${sha256Hex(c.snapshot)}.json`, c.snapshot);
  for (const [name, b] of Object.entries(c.roles)) files.set(`${name}.${sha256Hex(b)}.json`, b);
  return { name: `forged ${gun}`, server, gun, requests: [], files };
}

/**
 * forgeRepository makes a complete, consistent collection: the given roots (the last one's
 * role keys sign the rest), a `targets` with `tags`, versions as given.
 */
export function forgeCollection(o: {
  readonly roots: readonly Uint8Array[];
  readonly keys: RootRoles;
  readonly tags?: Record<string, string>;
  readonly versions?: { timestamp?: number; snapshot?: number; targets?: number };
  readonly delegations?: ReadonlyArray<
    ForgeDelegation & { version?: number; tags: Record<string, string> }
  >;
  /** Role files to list instead of the ones made here (older ones, for rollback). */
  readonly replace?: Record<string, Uint8Array>;
}): ForgedCollection {
  const v = o.versions ?? {};
  const roles: Record<string, Uint8Array> = {
    targets: forgeTargets(v.targets ?? 1, o.tags ?? {}, o.keys.targets, o.delegations ?? []),
  };
  for (const d of o.delegations ?? []) roles[d.name] = forgeTargets(d.version ?? 1, d.tags, d.keys);
  Object.assign(roles, o.replace ?? {});
  const root = o.roots[o.roots.length - 1] as Uint8Array;
  const snapshot = forgeSnapshot(v.snapshot ?? 1, { root, ...roles }, o.keys.snapshot);
  const timestamp = forgeTimestamp(v.timestamp ?? 1, snapshot, o.keys.timestamp);
  return { roots: o.roots, timestamp, snapshot, roles };
}
