/**
 * Attacks on the Notary root pin, the root cache and --root-ca chains.
 * Run: npx tsc -p tsconfig.json && npx mocha --timeout 60000 dist/test/attack/notary-root.test.js
 * Each `it` asserts the SECURE outcome: a failing test is a successful attack. Tests named
 * "(legit)" assert behaviour that is expected to be accepted.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fetcher } from '../../src/client/index.js';
import { lookupTag, NotaryClient, type NotaryTrust } from '../../src/notary/index.js';
import { NotaryFixtureFetcher } from '../support/notary-fixtures.js';
import {
  ecdsaKey,
  type ForgeKey,
  forgeClock,
  forgeCollection,
  forgedCrawl,
  forgeRoot,
  Openssl,
  type RootRoles,
  x509Key,
} from '../support/notary-forge.js';

const SERVER = 'https://notary.test';
const GUN = 'registry.test/forged/app';
const NEW = 'the current manifest';
const EVIL = 'the attacker manifest';
const digestOf = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const tmp = () => mkdtempSync(join(tmpdir(), 'tufa-attack-'));

function mk(fetcher: Fetcher, trust: NotaryTrust, cacheDir: string, now: () => number, gun = GUN) {
  return new NotaryClient({
    server: SERVER,
    gun,
    trust,
    cacheDir,
    fetcher,
    now,
    onWarning: () => {},
  });
}
async function outcome<T>(p: Promise<T>): Promise<T | Error> {
  return p.then(
    (v) => v,
    (e: unknown) => e as Error,
  );
}
function others(): Omit<RootRoles, 'root'> {
  return { targets: [ecdsaKey()], snapshot: [ecdsaKey()], timestamp: [ecdsaKey()] };
}

/** raw openssl: a cert for `key` with a free-form subject and extension section */
class RawCa {
  private n = 0;
  constructor(readonly dir = tmp()) {}
  cert(o: {
    subj: string;
    ext: string;
    issuer?: { certFile: string; keyFile: string };
    key?: KeyObject;
    days?: number;
    serial?: number;
  }): { pem: string; certFile: string; keyFile: string; privateKey: KeyObject } {
    const i = this.n++;
    const privateKey = o.key ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const keyFile = join(this.dir, `k${i}.pem`);
    const certFile = join(this.dir, `c${i}.pem`);
    const extFile = join(this.dir, `e${i}.cnf`);
    const csr = join(this.dir, `r${i}.csr`);
    writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    writeFileSync(extFile, `[v3]\n${o.ext}\n`);
    const run = (a: string[]) => execFileSync('openssl', a, { cwd: this.dir, timeout: 30_000, stdio: 'pipe' });
    run(['req', '-new', '-key', keyFile, '-subj', o.subj, '-out', csr]);
    const signer = o.issuer
      ? ['-CA', o.issuer.certFile, '-CAkey', o.issuer.keyFile, '-set_serial', String(o.serial ?? 1000 + i)]
      : ['-signkey', keyFile];
    run(['x509', '-req', '-in', csr, ...signer, '-days', String(o.days ?? 365), '-sha256', '-extfile', extFile, '-extensions', 'v3', '-out', certFile]);
    if (!o.issuer && o.serial !== undefined) {
      /* self-signed: serial is random already */
    }
    return { pem: readFileSync(certFile, 'utf8'), certFile, keyFile, privateKey };
  }
}
const LEAF = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature';
const CA = (pl?: number) =>
  `basicConstraints=critical,CA:TRUE${pl === undefined ? '' : `,pathlen:${pl}`}\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash`;
const esc = (gun: string) => gun.replace(/\//g, '\\/');

/** serve a one-root collection whose root key is the given chain */
async function tryRoot(chainPem: string, leafKey: KeyObject, trust: NotaryTrust, gun = GUN) {
  const keys: RootRoles = { root: [x509Key(chainPem, leafKey)], ...others() };
  const c = forgeCollection({ roots: [forgeRoot(1, keys)], keys, tags: { latest: EVIL } });
  const f = new NotaryFixtureFetcher(forgedCrawl(SERVER, gun, c));
  return outcome(mk(f, trust, tmp(), forgeClock(), gun).refresh());
}

describe('attack: Notary root pin, cache and CA chains', function () {
  this.timeout(120_000);

  it('D1. a pinned CA with pathlen:0 does not admit an attacker intermediate', async () => {
    const o = new RawCa();
    const ca = o.cert({ subj: '/CN=Pinned CA', ext: CA(0) });
    const inter = o.cert({ subj: '/CN=Attacker intermediate', ext: CA(), issuer: ca });
    const leaf = o.cert({ subj: `/CN=${esc(GUN)}`, ext: LEAF, issuer: inter });
    const r = await tryRoot(leaf.pem + inter.pem, leaf.privateKey, { rootCa: ca.pem });
    assert.ok(r instanceof Error, 'accepted a leaf under an intermediate the CA pathlen forbids');
  });

  it('D2. an intermediate with CA:FALSE (a leaf of the pinned CA) cannot issue roots', async () => {
    const o = new RawCa();
    const ca = o.cert({ subj: '/CN=Pinned CA', ext: CA() });
    const inter = o.cert({ subj: '/CN=leaf as issuer', ext: LEAF, issuer: ca });
    const leaf = o.cert({ subj: `/CN=${esc(GUN)}`, ext: LEAF, issuer: inter });
    const r = await tryRoot(leaf.pem + inter.pem, leaf.privateKey, { rootCa: ca.pem });
    assert.ok(r instanceof Error, 'accepted a chain through a non-CA');
  });

  it('D3. an intermediate with keyUsage lacking keyCertSign (but CA:TRUE) cannot issue', async () => {
    const o = new RawCa();
    const ca = o.cert({ subj: '/CN=Pinned CA', ext: CA() });
    const inter = o.cert({
      subj: '/CN=no keyCertSign',
      ext: 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,cRLSign',
      issuer: ca,
    });
    const leaf = o.cert({ subj: `/CN=${esc(GUN)}`, ext: LEAF, issuer: inter });
    const r = await tryRoot(leaf.pem + inter.pem, leaf.privateKey, { rootCa: ca.pem });
    assert.ok(r instanceof Error, 'accepted a chain through an issuer without keyCertSign');
  });

  it('D4. a pinned CA whose nameConstraints exclude the leaf subject does not admit it', async () => {
    const o = new RawCa();
    const ca = o.cert({
      subj: '/O=Org/CN=Pinned CA',
      ext: `${CA()}\nnameConstraints=critical,permitted;dirName:dn_ok\n[dn_ok]\nO=Org\nOU=TeamA`,
    });
    // team B's intermediate (legitimately issued, constrained to OU=TeamB)
    const inter = o.cert({
      subj: '/O=Org/OU=TeamA/CN=team intermediate',
      ext: `${CA()}\nnameConstraints=critical,permitted;dirName:dn_b\n[dn_b]\nO=Org\nOU=TeamA\nCN=only-this`,
      issuer: ca,
    });
    const leaf = o.cert({ subj: `/CN=${esc(GUN)}`, ext: LEAF, issuer: inter });
    // control: openssl itself refuses the chain
    let opensslOk = true;
    try {
      execFileSync('openssl', ['verify', '-CAfile', ca.certFile, '-untrusted', inter.certFile, leaf.certFile], { stdio: 'pipe' });
    } catch {
      opensslOk = false;
    }
    const r = await tryRoot(leaf.pem + inter.pem, leaf.privateKey, { rootCa: ca.pem });
    assert.ok(r instanceof Error || opensslOk, `tufa accepted a chain openssl refuses (name constraints)`);
  });

  it('D5. a CA-issued leaf with CN="*" is not a root for every GUN', async () => {
    const o = new RawCa();
    const ca = o.cert({ subj: '/CN=Pinned CA', ext: CA() });
    const leaf = o.cert({ subj: '/CN=*', ext: LEAF, issuer: ca });
    const r = await tryRoot(leaf.pem, leaf.privateKey, { rootCa: ca.pem });
    assert.ok(r instanceof Error, 'a leaf with CN=* verified as the root of any GUN (notary: CN must equal the GUN)');
  });

  it('D6. an expired leaf under a pinned CA is refused', async () => {
    const o = new RawCa();
    const ca = o.cert({ subj: '/CN=Pinned CA', ext: CA() });
    const leaf = o.cert({ subj: `/CN=${esc(GUN)}`, ext: LEAF, issuer: ca, days: 1 });
    const keys: RootRoles = { root: [x509Key(leaf.pem, leaf.privateKey)], ...others() };
    const c = forgeCollection({ roots: [forgeRoot(1, keys)], keys, tags: { latest: EVIL } });
    const f = new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, c));
    const r = await outcome(mk(f, { rootCa: ca.pem }, tmp(), forgeClock(3 * 86_400_000)).refresh());
    assert.ok(r instanceof Error, 'accepted an expired leaf');
  });

  it('D7. two certificates of one key under two key IDs do not meet a root threshold of 2', async () => {
    const o = new RawCa();
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const c1 = o.cert({ subj: `/CN=${esc(GUN)}`, ext: LEAF, key: k });
    const c2 = o.cert({ subj: `/CN=${esc(GUN)}`, ext: `${LEAF}\nsubjectKeyIdentifier=hash`, key: k });
    const k1 = x509Key(c1.pem, k);
    const k2 = x509Key(c2.pem, k);
    assert.notEqual(k1.id, k2.id);
    const keys: RootRoles = { root: [k1, k2], ...others() };
    // threshold 2 in the root role
    const raw = JSON.parse(new TextDecoder().decode(forgeRoot(1, keys))) as { signed: { roles: { root: { threshold: number } } } };
    raw.signed.roles.root.threshold = 2;
    const { signEnvelope } = await import('../support/notary-forge.js');
    const root = signEnvelope(raw.signed, [k1, k2]);
    const c = forgeCollection({ roots: [root], keys, tags: { latest: EVIL } });
    const f = new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, c));
    const r = await outcome(mk(f, { tofu: true }, tmp(), forgeClock()).refresh());
    assert.ok(r instanceof Error, 'one key counted twice');
  });

  it('D8. (legit) a root signed by the pinned key adding attacker keys is a rotation', async () => {
    const o = new Openssl(tmp());
    const g = o.cert({ cn: GUN, days: 3650 });
    const genuine = x509Key(g.pem, g.privateKey);
    const a = o.cert({ cn: GUN, days: 3650 });
    const att = x509Key(a.pem, a.privateKey);
    const k1: RootRoles = { root: [genuine], ...others() };
    const k2: RootRoles = { root: [att], ...others() };
    const r2 = forgeRoot(2, k2, [genuine, att]);
    const c = forgeCollection({ roots: [forgeRoot(1, k1), r2], keys: k2, tags: { latest: EVIL } });
    const f = new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, c));
    const r = await outcome(mk(f, { rootKeyIds: [genuine.id] }, tmp(), forgeClock()).refresh());
    assert.ok(!(r instanceof Error), `rotation refused: ${(r as Error).message}`);
    // but 2.root.json signed by the attacker alone is not
    const r2bad = forgeRoot(2, k2, [att]);
    const c2 = forgeCollection({ roots: [forgeRoot(1, k1), r2bad], keys: k2, tags: { latest: EVIL } });
    const f2 = new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, c2));
    const bad = await outcome(mk(f2, { rootKeyIds: [genuine.id] }, tmp(), forgeClock()).refresh());
    assert.ok(bad instanceof Error, 'a rotation not signed by the pinned key was accepted');
  });

  it('D9. a forged certificate carrying the pinned public key (canonical-ID pin) does not let another key sign', async () => {
    const o = new RawCa();
    const genuineKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const g = o.cert({ subj: `/CN=${esc(GUN)}`, ext: LEAF, key: genuineKey.privateKey });
    const genuine = x509Key(g.pem, g.privateKey);
    // the canonical (bare key) ID of the genuine key
    const { canonicalKeyId } = await import('../../src/notary/keys.js');
    const canon = canonicalKeyId({ keyid: genuine.id, keytype: 'ecdsa-x509', public: genuine.public }) as string;
    // the attacker: a cert over the genuine public key issued by its own CA, and its own cert
    const evilCa = o.cert({ subj: '/CN=evil', ext: CA() });
    const a = o.cert({ subj: `/CN=${esc(GUN)}`, ext: LEAF });
    const att = x509Key(a.pem, a.privateKey);
    // fake cert: need a CSR with the genuine key -> we only have the public key; openssl
    // x509 -force_pubkey lets the issuer put any public key in the certificate
    const pub = join(o.dir, 'gpub.pem');
    writeFileSync(pub, genuineKey.publicKey.export({ format: 'pem', type: 'spki' }) as string);
    const fakeFile = join(o.dir, 'fake.pem');
    const ext = join(o.dir, 'fake.cnf');
    writeFileSync(ext, `[v3]\n${LEAF}\n`);
    execFileSync('openssl', ['x509', '-new', '-subj', `/CN=${esc(GUN)}`, '-force_pubkey', pub, '-CA', evilCa.certFile, '-CAkey', evilCa.keyFile, '-days', '30', '-extfile', ext, '-extensions', 'v3', '-out', fakeFile], { stdio: 'pipe' });
    const fake = x509Key(readFileSync(fakeFile, 'utf8'), a.privateKey /* never used to sign */);
    const keys: RootRoles = { root: [fake, att], ...others() };
    const root = forgeRoot(1, keys, [att]);
    const c = forgeCollection({ roots: [root], keys, tags: { latest: EVIL } });
    const f = new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, c));
    const r = await outcome(mk(f, { rootKeyIds: [canon] }, tmp(), forgeClock()).refresh());
    assert.ok(r instanceof Error, 'an attacker root verified under a canonical-ID pin');
  });

  it('D10. a concurrent refresh holding an old root must not downgrade the cached root (then the rotated-out key forks)', async () => {
    const o = new Openssl(tmp());
    const oldC = o.cert({ cn: GUN, days: 3650 });
    const oldK = x509Key(oldC.pem, oldC.privateKey); // compromised, rotated out at v2
    const newC = o.cert({ cn: GUN, days: 3650 });
    const newK = x509Key(newC.pem, newC.privateKey);
    const rest = others();
    const k1: RootRoles = { root: [oldK], ...rest };
    const k2: RootRoles = { root: [newK], ...rest };
    const r1 = forgeRoot(1, k1);
    const r2 = forgeRoot(2, k2, [oldK, newK]);
    const pin = { rootKeyIds: [oldK.id] };
    const now = forgeClock();
    const cacheDir = tmp();
    const at1 = forgedCrawl(SERVER, GUN, forgeCollection({ roots: [r1], keys: k1, tags: { latest: NEW } }));
    const at2 = forgedCrawl(SERVER, GUN, forgeCollection({ roots: [r1, r2], keys: k2, tags: { latest: NEW }, versions: { timestamp: 2, snapshot: 2, targets: 2 } }));
    await mk(new NotaryFixtureFetcher(at1), pin, cacheDir, now).refresh();
    // A: a slow replay of v1 (stalled on root.json after reading the cache)
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let stalled!: () => void;
    const atGate = new Promise<void>((r) => {
      stalled = r;
    });
    const inner = new NotaryFixtureFetcher(at1);
    const slow = {
      async fetch(url: string, max: number, h?: Record<string, string>) {
        if (url.endsWith('/root.json')) {
          stalled();
          await gate;
        }
        return inner.fetch(url, max, h);
      },
    } as Fetcher;
    const a = outcome(mk(slow, pin, cacheDir, now).refresh());
    await atGate;
    // B: the genuine rotation to v2
    await mk(new NotaryFixtureFetcher(at2), pin, cacheDir, now).refresh();
    release();
    await a;
    // the attacker with the rotated-out key forks: its own v2 signed by the old key only
    const evilKeys: RootRoles = { root: [oldK], ...others() };
    const evil2 = forgeRoot(2, evilKeys, [oldK]);
    const forked = forgedCrawl(
      SERVER,
      GUN,
      forgeCollection({ roots: [r1, evil2], keys: evilKeys, tags: { latest: EVIL }, versions: { timestamp: 3, snapshot: 3, targets: 3 } }),
    );
    const r = await outcome(mk(new NotaryFixtureFetcher(forked), pin, cacheDir, now).refresh());
    const got = r instanceof Error ? r.message : lookupTag(r, 'latest')?.digest;
    assert.notEqual(got, digestOf(EVIL), 'root v2 was trusted, yet a fork signed by the rotated-out v1 key was accepted');
  });

  it('D11. N.root.json signed only by the previous (pinned) key, listing attacker keys it is not signed by, is refused', async () => {
    const o = new Openssl(tmp());
    const g = o.cert({ cn: GUN, days: 3650 });
    const genuine = x509Key(g.pem, g.privateKey);
    const a = o.cert({ cn: GUN, days: 3650 });
    const att = x509Key(a.pem, a.privateKey);
    const k1: RootRoles = { root: [genuine], ...others() };
    const k2: RootRoles = { root: [att], ...others() };
    // a v2 the genuine key signed for some other reason? here: signatures mixed from two docs
    const r2 = forgeRoot(2, k2, [genuine]);
    const r3 = forgeRoot(3, k2, [att]);
    const c = forgeCollection({ roots: [forgeRoot(1, k1), r2, r3], keys: k2, tags: { latest: EVIL } });
    const f = new NotaryFixtureFetcher(forgedCrawl(SERVER, GUN, c));
    const r = await outcome(mk(f, { rootKeyIds: [genuine.id] }, tmp(), forgeClock()).refresh());
    assert.ok(r instanceof Error, 'a chain with a root not signed by its own keys was accepted');
  });
});

export type { ForgeKey };
