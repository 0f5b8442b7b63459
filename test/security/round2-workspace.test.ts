/**
 * Security round 2, the signing workspace and its keys: how private keys are encrypted (R2-06),
 * refused `repo` commands that must leave the workspace byte-identical (R2-13), a slow signer
 * racing a concurrent edit (R2B-03) and root edits that would orphan a partly signed root
 * (R2B-08). The commands run as `node bin/tufa …` subprocesses against a workspace made with the
 * library.
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import {
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Key } from '../../src/core/index.js';
import {
  generateKey,
  KeyObjectSigner,
  publicKeyJson,
  type Signer,
  type TopRole,
  Workspace,
} from '../../src/repository/index.js';
import { ROOT } from '../support/paths.js';
import {
  type CaseContext,
  type CliResult,
  defineCases,
  type SecurityCase,
  show,
  sleep,
  startTufa,
  tufa,
} from './harness.js';

const PASSPHRASE = 'round2 workspace passphrase 5e1d';
/** Fault injection for CLI runs (a full disk, a kill midway): see the file. */
const FAULT_PRELOAD = pathToFileURL(join(ROOT, 'test', 'security', 'fault-preload.mjs')).href;
const TOP: readonly TopRole[] = ['root', 'targets', 'snapshot', 'timestamp'];

/** env is the CLI's environment: no passphrase unless given. */
function env(passphrase?: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  delete e.TUFA_KEY_PASSPHRASE;
  if (passphrase !== undefined) e.TUFA_KEY_PASSPHRASE = passphrase;
  return e;
}

// ---------------------------------------------------------------------------------------------
// DER, just enough to read the encryption parameters of a PKCS#8 EncryptedPrivateKeyInfo

interface Tlv {
  tag: number;
  body: Buffer;
}

function tlvs(b: Buffer): Tlv[] {
  const out: Tlv[] = [];
  let i = 0;
  while (i < b.length) {
    const tag = b[i++] as number;
    let len = b[i++] as number;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + (b[i++] as number);
    }
    out.push({ tag, body: b.subarray(i, i + len) });
    i += len;
  }
  return out;
}

function oid(body: Buffer): string {
  const parts = [Math.floor((body[0] as number) / 40), (body[0] as number) % 40];
  let v = 0;
  for (const byte of body.subarray(1)) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

const PBES2 = '1.2.840.113549.1.5.13';
const PBKDF2 = '1.2.840.113549.1.5.12';
const HMAC_SHA256 = '1.2.840.113549.2.9';
const AES256_CBC = '2.16.840.1.101.3.4.1.42';

/** pbes2Params reads scheme, KDF, iterations, PRF and cipher of an encrypted PKCS#8 PEM. */
function pbes2Params(pem: string): {
  scheme: string;
  kdf: string;
  iterations: number;
  prf: string;
  cipher: string;
} {
  const m = /-----BEGIN ENCRYPTED PRIVATE KEY-----([\s\S]+?)-----END/.exec(pem);
  assert.ok(m, 'an ENCRYPTED PRIVATE KEY PEM');
  const [info] = tlvs(Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64'));
  const [alg] = tlvs((info as Tlv).body);
  const [schemeOid, params] = tlvs((alg as Tlv).body) as [Tlv, Tlv];
  const [kdfAlg, encAlg] = tlvs(params.body) as [Tlv, Tlv];
  const [kdfOid, kdfParams] = tlvs(kdfAlg.body) as [Tlv, Tlv];
  const fields = tlvs(kdfParams.body);
  const iterations = Number.parseInt((fields[1] as Tlv).body.toString('hex'), 16);
  const prfAlg = fields.find((f, i) => i >= 2 && f.tag === 0x30);
  const prf = prfAlg ? oid((tlvs(prfAlg.body)[0] as Tlv).body) : '1.2.840.113549.2.7 (default)';
  return {
    scheme: oid(schemeOid.body),
    kdf: oid(kdfOid.body),
    iterations,
    prf,
    cipher: oid((tlvs(encAlg.body)[0] as Tlv).body),
  };
}

// ---------------------------------------------------------------------------------------------
// a workspace with key files

interface Repo {
  dir: string;
  ws: string;
  /** Private key files (PEM, unencrypted) and their public key files (`<file>.pub.json`). */
  keyFile: Record<string, string>;
  signer: Record<string, KeyObjectSigner>;
}

function newKey(dir: string, name: string, repo: Pick<Repo, 'keyFile' | 'signer'>): Key {
  const k = generateKey('ed25519');
  const file = join(dir, name);
  writeFileSync(file, k.privatePem, { mode: 0o600 });
  writeFileSync(`${file}.pub.json`, publicKeyJson(k.publicKey));
  repo.keyFile[name] = file;
  repo.signer[name] = KeyObjectSigner.fromPem(k.privatePem);
  return k.publicKey;
}

/**
 * makeRepo makes a workspace: one key per top-level role (named after it), `extra` more keys
 * for a role with its threshold, every role signed to its threshold, targets a.txt and b.txt.
 */
async function makeRepo(
  t: CaseContext,
  extra: Partial<Record<TopRole, { keys: string[]; threshold: number }>> = {},
): Promise<Repo> {
  const dir = t.tmp();
  const repo: Repo = { dir, ws: join(dir, 'ws'), keyFile: {}, signer: {} };
  const keys = {} as Record<TopRole, Key[]>;
  const thresholds: Partial<Record<TopRole, number>> = {};
  for (const role of TOP) {
    keys[role] = [newKey(dir, role, repo)];
    for (const name of extra[role]?.keys ?? []) keys[role].push(newKey(dir, name, repo));
    if (extra[role]) thresholds[role] = extra[role].threshold;
  }
  const ws = await Workspace.init(repo.ws, { keys, thresholds, now: Date.now() });
  await ws.addTargetFile('a.txt', new TextEncoder().encode('a\n'));
  await ws.addTargetFile('b.txt', new TextEncoder().encode('b\n'));
  await ws.refreshSnapshotMeta();
  await ws.refreshTimestampMeta();
  for (const role of TOP) {
    for (const name of [role, ...(extra[role]?.keys ?? [])]) {
      await ws.sign(role, repo.signer[name] as KeyObjectSigner);
    }
  }
  return repo;
}

/** gated wraps a signer so that it signs only once `release` is called (a slow signer). */
function gated(inner: KeyObjectSigner): Signer & { release(): void } {
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  return {
    keyid: inner.keyid,
    publicKey: inner.publicKey,
    async sign(data: Uint8Array) {
      await gate;
      return inner.sign(data);
    },
    release: () => release(),
  };
}

/** tree hashes every file under a folder (relative path → sha256). */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** refusedCode returns the code a failed CLI run printed (`tufa: CODE: …`). */
function refusedCode(r: CliResult, what: string): string {
  assert.notEqual(r.status, 0, `${what}: expected a refusal\n${show(r)}`);
  const code = /^tufa: ([A-Z_]+):/m.exec(r.stderr)?.[1];
  assert.ok(code, `${what}: no error code printed\n${show(r)}`);
  return code;
}

function targetsOf(ws: string, role = 'targets'): { version: number; targets: string[] } {
  const env = JSON.parse(readFileSync(join(ws, 'metadata', `${role}.json`), 'utf8')) as {
    signed: { version: number; targets: Record<string, unknown> };
  };
  return { version: env.signed.version, targets: Object.keys(env.signed.targets).sort() };
}

const cases: SecurityCase[] = [
  {
    id: 'R2-06',
    title: 'new private keys are encrypted with a strong KDF; keys of earlier versions still load',
    attack:
      'An attacker who copies an encrypted private key file guesses its passphrase offline; PBKDF2-SHA256 with 2,048 iterations (OpenSSL’s default) makes each guess cheap',
    source:
      'Security round 2 (issue 12 item 6); OWASP password storage (PBKDF2-HMAC-SHA256 ≥ 600,000)',
    expect: 'USAGE',
    timeout: 60_000,
    async run(t) {
      const dir = t.tmp();
      // a key generated by the CLI: PBES2, PBKDF2-HMAC-SHA256 ≥ 600,000 iterations, AES-256-CBC
      const file = join(dir, 'new.key');
      const gen = await tufa(['key', 'generate', '--type', 'ed25519', '--out', file], {
        env: env(PASSPHRASE),
      });
      assert.equal(gen.status, 0, show(gen));
      const pem = readFileSync(file, 'utf8');
      const p = pbes2Params(pem);
      assert.equal(p.scheme, PBES2);
      assert.equal(p.kdf, PBKDF2);
      assert.ok(p.iterations >= 600_000, `PBKDF2 iterations ${p.iterations} < 600,000`);
      assert.equal(p.prf, HMAC_SHA256);
      assert.equal(p.cipher, AES256_CBC);
      // every key type, from the library
      for (const type of ['ecdsa-p256', 'ed25519'] as const) {
        const k = generateKey(type, PASSPHRASE);
        assert.ok(pbes2Params(k.privatePem).iterations >= 600_000, type);
        assert.equal(KeyObjectSigner.fromPem(k.privatePem, PASSPHRASE).keyid, k.publicKey.keyid);
      }
      // a key in the format of earlier versions (node's export: PBKDF2-SHA256, 2,048 iterations)
      const oldKey = generateKeyPairSync('ed25519').privateKey;
      const oldPem = oldKey
        .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASSPHRASE })
        .toString();
      assert.equal(pbes2Params(oldPem).iterations, 2048, 'the old format, as a test vector');
      const oldFile = join(dir, 'old.key');
      writeFileSync(oldFile, oldPem, { mode: 0o600 });
      const oldSigner = KeyObjectSigner.fromPem(oldPem, PASSPHRASE);
      writeFileSync(`${oldFile}.pub.json`, publicKeyJson(oldSigner.publicKey));
      // both sign a workspace through the CLI
      const newPub = JSON.parse(readFileSync(`${file}.pub.json`, 'utf8')) as { keyid: string };
      const ws = join(dir, 'ws');
      const init = await tufa(
        [
          'repo',
          '--repo',
          ws,
          'init',
          ...['--root-key', `${file}.pub.json`, '--targets-key', `${oldFile}.pub.json`],
          ...['--snapshot-key', `${file}.pub.json`, '--timestamp-key', `${file}.pub.json`],
        ],
        { env: env() },
      );
      assert.equal(init.status, 0, show(init));
      const signs: Record<string, CliResult> = {};
      for (const [role, key] of [
        ['root', file],
        ['targets', oldFile],
      ] as const) {
        const r = await tufa(['repo', '--repo', ws, 'sign', '--role', role, '--key', key], {
          env: env(PASSPHRASE),
        });
        assert.equal(r.status, 0, show(r));
        signs[role] = r;
      }
      // the weak key loads, but never silently: the operator is told, and how to fix it
      assert.doesNotMatch(signs.root?.stderr ?? '', /warning/);
      assert.match(signs.targets?.stderr ?? '', /warning: .*old\.key: .*PBKDF2 at 2048 iterations/);
      assert.match(signs.targets?.stderr ?? '', /tufa key reencrypt --in /);
      // `tufa key reencrypt` rewrites it: PBKDF2 ≥ 600,000, 0600, the same key
      const noPass = await tufa(['key', 'reencrypt', '--in', oldFile], { env: env() });
      t.refusedBy(refusedCode(noPass, 'key reencrypt without a passphrase'));
      assert.equal(readFileSync(oldFile, 'utf8'), oldPem, 'a refused reencrypt writes nothing');
      const re = await tufa(['key', 'reencrypt', '--in', oldFile], { env: env(PASSPHRASE) });
      assert.equal(re.status, 0, show(re));
      assert.ok(pbes2Params(readFileSync(oldFile, 'utf8')).iterations >= 600_000);
      assert.equal(statSync(oldFile).mode & 0o777, 0o600);
      assert.equal(
        KeyObjectSigner.fromPem(readFileSync(oldFile), PASSPHRASE).keyid,
        oldSigner.keyid,
      );
      // a key file left unencrypted while a passphrase is set is named too
      const plain = join(dir, 'plain.key');
      writeFileSync(
        plain,
        createPrivateKey({ key: pem, passphrase: PASSPHRASE })
          .export({ type: 'pkcs8', format: 'pem' })
          .toString(),
        { mode: 0o600 },
      );
      const sp = await tufa(['repo', '--repo', ws, 'snapshot', '--key', plain], {
        env: env(PASSPHRASE),
      });
      assert.equal(sp.status, 0, show(sp));
      assert.match(sp.stderr, /warning: .*plain\.key: the key file is not encrypted/);
      const quiet = await tufa(['repo', '--repo', ws, 'timestamp', '--key', plain], { env: env() });
      assert.equal(quiet.status, 0, show(quiet));
      assert.doesNotMatch(
        quiet.stderr,
        /warning/,
        'no passphrase set: an unencrypted key is meant',
      );
      const root = JSON.parse(readFileSync(join(ws, 'metadata', 'root.json'), 'utf8')) as {
        signatures: Array<{ keyid: string }>;
      };
      assert.deepEqual(
        root.signatures.map((s) => s.keyid),
        [newPub.keyid],
      );
      // a wrong passphrase is refused, saying nothing about the key
      const before = tree(ws);
      const wrong = await tufa(
        ['repo', '--repo', ws, 'sign', '--role', 'snapshot', '--key', file],
        {
          env: env('not the passphrase'),
        },
      );
      t.refusedBy(refusedCode(wrong, 'wrong passphrase'));
      assert.doesNotMatch(wrong.stderr, /PRIVATE KEY|passphrase 5e1d/);
      assert.deepEqual(tree(ws), before);
    },
  },
  {
    id: 'R2-13',
    title: 'a refused repo command leaves the workspace byte-identical',
    attack:
      'A scheduled `repo timestamp` (or snapshot, sign, add-target) is run with the wrong key, a wrong passphrase, a failing signer or a bad path: it exits with an error but leaves a new unsigned version behind, which the next run or publish builds on',
    source: 'Security round 2 (issue 12 item 13)',
    expect: 'MISUSE | USAGE',
    timeout: 90_000,
    async run(t) {
      const repo = await makeRepo(t);
      const ws = repo.ws;
      const k = repo.keyFile;
      const file = join(repo.dir, 'c.txt');
      writeFileSync(file, 'c\n');
      const encrypted = join(repo.dir, 'encrypted.key');
      const enc = generateKey('ed25519', PASSPHRASE);
      writeFileSync(encrypted, enc.privatePem, { mode: 0o600 });
      const refused: Array<{ args: string[]; passphrase?: string; code?: string }> = [
        { args: ['timestamp', '--key', k.targets as string], code: 'MISUSE' },
        { args: ['timestamp', '--key', k.root as string], code: 'MISUSE' },
        { args: ['snapshot', '--force', '--key', k.timestamp as string], code: 'MISUSE' },
        { args: ['sign', '--role', 'timestamp', '--key', k.snapshot as string], code: 'MISUSE' },
        { args: ['timestamp', '--key', encrypted], passphrase: 'wrong', code: 'USAGE' },
        {
          args: [
            'timestamp',
            '--signer-command',
            'exit 3',
            '--public-key',
            `${k.timestamp}.pub.json`,
          ],
        },
        { args: ['add-target', file, '--path', ''], code: 'MISUSE' },
        { args: ['add-target', file, '--role', 'no-such-role'], code: 'MISUSE' },
        { args: ['remove-target', 'c.txt'], code: 'MISUSE' },
        {
          args: ['rotate-root', '--remove-key', `root=${repo.signer.root?.keyid}`],
          code: 'MISUSE',
        },
        { args: ['renew', '--role', 'no-such-role'], code: 'MISUSE' },
      ];
      for (const c of refused) {
        const before = tree(ws);
        const r = await tufa(['repo', '--repo', ws, ...c.args], { env: env(c.passphrase) });
        const code = refusedCode(r, c.args.join(' '));
        if (c.code !== undefined) {
          assert.equal(code, c.code, show(r));
          t.refusedBy(code);
        }
        assert.deepEqual(tree(ws), before, `repo ${c.args.join(' ')} changed the workspace`);
      }
      // control: the same commands with the right key do write
      const ok = await tufa(['repo', '--repo', ws, 'timestamp', '--key', k.timestamp as string], {
        env: env(),
      });
      assert.equal(ok.status, 0, show(ok));

      // A change is all or nothing across its files. A full disk while the new role file or
      // the edited role is written: nothing at all changes (no targets v+1 delegating to a role
      // without a file, no content blob of an unlisted target).
      const faulty = (fault: Record<string, string>) => ({
        env: { ...env(), NODE_OPTIONS: `--import=${FAULT_PRELOAD}`, ...fault },
      });
      const delegateTeam = [
        ...['repo', '--repo', ws, 'delegate', '--to', 'team'],
        ...['--key', `${k.targets}.pub.json`, '--paths', 'team/*'],
      ];
      for (const [args, name] of [
        [delegateTeam, 'team\\.json'],
        [['repo', '--repo', ws, 'add-target', file], 'targets\\.json'],
      ] as const) {
        const before = tree(ws);
        const r = await tufa(
          args,
          faulty({ TUFA_FAULT_ENOSPC: `/\\.${name}\\.[0-9a-f]{12}\\.tmp$` }),
        );
        assert.notEqual(r.status, 0, show(r));
        assert.match(r.stderr, /ENOSPC/);
        assert.deepEqual(
          tree(ws),
          before,
          `${args[3]} failing on a full disk changed the workspace`,
        );
      }
      // Killed (SIGKILL) midway through storing a delegation: the new role file is in place,
      // targets.json not yet. The journal left behind makes the next command complete it.
      const killed = await tufa(
        delegateTeam,
        faulty({ TUFA_FAULT_KILL_AFTER_RENAME: '/metadata/team\\.json$' }),
      );
      assert.equal(killed.signal, 'SIGKILL', show(killed));
      assert.ok(existsSync(join(ws, '.tufa.commit')), 'a journal of the interrupted change');
      assert.equal(targetsOf(ws).version, 1, 'killed before targets.json was replaced');
      const st = await tufa(['repo', '--repo', ws, 'status', '--json'], { env: env() });
      assert.equal(st.status, 0, show(st));
      assert.equal(existsSync(join(ws, '.tufa.commit')), false, 'the change was completed');
      const targets = JSON.parse(readFileSync(join(ws, 'metadata', 'targets.json'), 'utf8')) as {
        signed: { version: number; delegations: { roles: Array<{ name: string }> } };
      };
      assert.equal(targets.signed.version, 2);
      assert.deepEqual(
        targets.signed.delegations.roles.map((r) => r.name),
        ['team'],
      );
      assert.ok(existsSync(join(ws, 'metadata', 'team.json')));
      assert.deepEqual(
        Object.keys(tree(ws)).filter((f) => f.endsWith('.tmp')),
        [],
        'no temp file left',
      );
    },
  },
  {
    id: 'R2B-03',
    title: 'a slow signer cannot undo an edit made while it was signing',
    attack:
      'While `repo sign` waits for an external signer, a release engineer removes a revoked target; the sign then writes back the role as it read it, and the revoked target is published again',
    source: 'Security round 2b (issue 13 item 3)',
    expect: 'MISUSE',
    timeout: 60_000,
    async run(t) {
      // targets needs two signatures: `targets` signed v1, `targets2` signs through a slow signer
      const repo = await makeRepo(t, { targets: { keys: ['targets2'], threshold: 2 } });
      const ws = repo.ws;
      // a new targets version (v2) signed by one key of two
      const w = await Workspace.open(ws, Date.now());
      await w.addTargetFile('revoked.txt', new TextEncoder().encode('revoked\n'));
      await w.sign('targets', repo.signer.targets as KeyObjectSigner);
      assert.deepEqual(targetsOf(ws), { version: 2, targets: ['a.txt', 'b.txt', 'revoked.txt'] });
      // the signer takes the bytes, says it started, and waits for `go` before it signs
      const started = join(repo.dir, 'started');
      const go = join(repo.dir, 'go');
      const script = join(repo.dir, 'slow-signer.mjs');
      writeFileSync(
        script,
        `import { createPrivateKey, sign } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
writeFileSync(${JSON.stringify(started)}, '');
for (let i = 0; i < 400 && !existsSync(${JSON.stringify(go)}); i++) await new Promise((r) => setTimeout(r, 50));
const key = createPrivateKey(readFileSync(${JSON.stringify(repo.keyFile.targets2)}));
process.stdout.write(sign(null, Buffer.concat(chunks), key).toString('hex'));
`,
      );
      const signing = startTufa(
        [
          ...['repo', '--repo', ws, 'sign', '--role', 'targets'],
          ...['--signer-command', `'${process.execPath}' '${script}'`],
          ...['--public-key', `${repo.keyFile.targets2}.pub.json`],
        ],
        { env: env(), timeoutMs: 40_000 },
      );
      t.defer(() => signing.kill());
      for (let i = 0; i < 300 && !existsSync(started); i++) await sleep(50);
      assert.ok(existsSync(started), 'the signer started');
      // meanwhile: the revoked target is removed (a new version, v3)
      const rm = await tufa(['repo', '--repo', ws, 'remove-target', 'revoked.txt'], { env: env() });
      assert.equal(rm.status, 0, show(rm));
      assert.deepEqual(targetsOf(ws), { version: 3, targets: ['a.txt', 'b.txt'] });
      const afterRemove = tree(ws);
      writeFileSync(go, '');
      const signed = await signing.done;
      // the sign is refused: what it signed is no longer the role
      t.refusedBy(refusedCode(signed, 'sign of a role changed meanwhile'));
      assert.match(signed.stderr, /changed/);
      assert.deepEqual(targetsOf(ws), { version: 3, targets: ['a.txt', 'b.txt'] });
      assert.deepEqual(tree(ws), afterRemove);
      // the library refuses the same way
      const slow = gated(repo.signer.targets2 as KeyObjectSigner);
      const pending = (await Workspace.open(ws, Date.now())).sign('targets', slow);
      await sleep(50);
      await (await Workspace.open(ws, Date.now())).removeTarget('b.txt');
      slow.release();
      await t.refuses(pending, 'MISUSE', /changed/);
      assert.deepEqual(targetsOf(ws), { version: 3, targets: ['a.txt'] });
      // two signers at once: the signature the other one added meanwhile is kept
      const slow2 = gated(repo.signer.targets2 as KeyObjectSigner);
      const both = (await Workspace.open(ws, Date.now())).sign('targets', slow2);
      await sleep(50);
      const w3 = await Workspace.open(ws, Date.now());
      assert.equal(await w3.sign('targets', repo.signer.targets as KeyObjectSigner), true);
      slow2.release();
      assert.equal(await both, true);
      assert.deepEqual(
        (await w3.read('targets')).signatures.map((s) => s.keyid).sort(),
        [repo.signer.targets?.keyid, repo.signer.targets2?.keyid].sort(),
      );
      // and a role is never replaced by a lower version of itself
      const v3 = await w3.read('targets');
      await t.refuses(
        w3.write('targets', { signatures: [], signed: { ...v3.signed, version: 2 } }),
        'MISUSE',
        /lower version/,
      );
      assert.equal(targetsOf(ws).version, 3);

      // two operators run `repo init` on one folder at once: one is refused, and the root that
      // stays is the one whose init succeeded (init takes the lock, creates files exclusively)
      const initArgs = (dir: string, key: string) => [
        ...['repo', '--repo', dir, 'init'],
        ...TOP.flatMap((role) => [`--${role}-key`, `${repo.keyFile[key]}.pub.json`]),
      ];
      for (let i = 0; i < 3; i++) {
        const dir = join(repo.dir, `init-${i}`);
        const runs = await Promise.all(
          ['root', 'targets'].map((key) => tufa(initArgs(dir, key), { env: env() })),
        );
        const won = runs.findIndex((r) => r.status === 0);
        const lost = runs[1 - won] as CliResult;
        assert.ok(won >= 0, runs.map(show).join('\n'));
        t.refusedBy(refusedCode(lost, 'the second init'));
        assert.match(lost.stderr, /already holds a repository/);
        const root = JSON.parse(readFileSync(join(dir, 'metadata', 'root.json'), 'utf8')) as {
          signed: { keys: Record<string, unknown> };
        };
        const winner = repo.signer[won === 0 ? 'root' : 'targets'] as KeyObjectSigner;
        assert.deepEqual(Object.keys(root.signed.keys), [winner.keyid]);
      }

      // one holder of the workspace lock at a time: two worker threads of one process (no shared
      // in-memory queue), and two handles on one folder, one through a symlink
      const url = new URL('../../src/repository/index.js', import.meta.url).href;
      const sab = new SharedArrayBuffer(8);
      const code = `const { workerData, parentPort } = require('node:worker_threads');
import(${JSON.stringify(url)}).then(async ({ Workspace }) => {
  const c = new Int32Array(workerData.sab);
  const w = await Workspace.open(workerData.ws, Date.now());
  await w.update(async () => {
    const n = Atomics.add(c, 0, 1) + 1;
    if (n > Atomics.load(c, 1)) Atomics.store(c, 1, n);
    await new Promise((r) => setTimeout(r, 400));
    Atomics.sub(c, 0, 1);
  });
  parentPort.postMessage('done');
}).catch((e) => parentPort.postMessage(String(e)));`;
      const thread = () =>
        new Promise<string>((ok, fail) => {
          const wk = new Worker(code, { eval: true, workerData: { sab, ws } });
          wk.once('message', (m: string) => {
            void wk.terminate();
            ok(m);
          });
          wk.once('error', fail);
        });
      assert.deepEqual(await Promise.all([thread(), thread()]), ['done', 'done']);
      assert.equal(Atomics.load(new Int32Array(sab), 1), 1, 'two threads were inside update()');
      const link = join(repo.dir, 'ws-link');
      symlinkSync(ws, link);
      let inside = 0;
      let most = 0;
      const body = async () => {
        most = Math.max(most, ++inside);
        await sleep(300);
        inside--;
      };
      const [a, b] = [await Workspace.open(ws, Date.now()), await Workspace.open(link, Date.now())];
      await Promise.all([a.update(body), b.update(body)]);
      assert.equal(most, 1, 'the workspace and its symlink were inside update() at once');
    },
  },
  {
    id: 'R2B-08',
    title: 'a root edit cannot start from a partly signed root, and status walks the root chain',
    attack:
      'A root rotation (or renew --role root) is started while root version N is still under its threshold: N.root.json can never be signed, status says "ready to publish" and publish refuses for ever',
    source: 'Security round 2b (issue 13 item 8); TUF 5.3.4 (every root version is verified)',
    expect: 'MISUSE',
    timeout: 60_000,
    async run(t) {
      // root: threshold 2 of root, root2
      const repo = await makeRepo(t, { root: { keys: ['root2'], threshold: 2 } });
      const ws = repo.ws;
      const run = (...args: string[]) => tufa(['repo', '--repo', ws, ...args], { env: env() });
      // root v2 (a new key for timestamp), signed by one root key of two
      const extra = newKey(repo.dir, 'timestamp2', repo);
      void extra;
      const rot = await run(
        'rotate-root',
        '--add-key',
        `timestamp=${repo.keyFile.timestamp2}.pub.json`,
      );
      assert.equal(rot.status, 0, show(rot));
      const sign1 = await run('sign', '--role', 'root', '--key', repo.keyFile.root as string);
      assert.equal(sign1.status, 0, show(sign1));
      // a further root edit is refused, and writes nothing
      for (const args of [
        ['rotate-root', '--threshold', 'timestamp=2'],
        ['renew', '--role', 'root'],
      ]) {
        const before = tree(ws);
        const r = await run(...args);
        const code = refusedCode(r, args.join(' '));
        assert.equal(code, 'MISUSE', show(r));
        t.refusedBy(code);
        assert.match(r.stderr, /root v2/);
        assert.deepEqual(tree(ws), before, `repo ${args.join(' ')} changed the workspace`);
      }
      // a workspace already orphaned by an earlier version: v2 partly signed, v3 fully signed
      const w = await Workspace.open(ws, Date.now());
      const v2 = await w.read('root');
      await w.write('root', {
        signatures: [],
        signed: { ...v2.signed, version: 3 },
      });
      for (const name of ['root', 'root2'])
        await w.sign('root', repo.signer[name] as KeyObjectSigner);
      assert.deepEqual(await w.rootVersions(), [1, 2, 3]);
      for (const role of ['snapshot', 'timestamp'] as const) {
        const r = await run(role, '--key', repo.keyFile[role] as string);
        assert.equal(r.status, 0, show(r));
      }
      const st = await run('status', '--json');
      assert.equal(st.status, 0, show(st));
      const status = JSON.parse(st.stdout) as { ready: boolean; problems: string[] };
      assert.equal(status.ready, false, `status of an orphaned root chain: ${st.stdout}`);
      assert.ok(
        status.problems.some((p) => /2\.root\.json/.test(p)),
        `status names 2.root.json: ${status.problems.join('; ')}`,
      );
      const text = await run('status');
      assert.doesNotMatch(text.stdout, /ready to publish/);

      // a delegated role whose name differs only in case from a role (Team and team would be
      // one file on a case-insensitive file system): refused at delegate, nothing written
      const key = `${repo.keyFile.targets}.pub.json`;
      const team = await run('delegate', '--to', 'Team', '--key', key, '--paths', 'x/*');
      assert.equal(team.status, 0, show(team));
      for (const name of ['team', 'TEAM']) {
        const before = tree(ws);
        const r = await run('delegate', '--to', name, '--key', key, '--paths', 'y/*');
        const code = refusedCode(r, `delegate --to ${name}`);
        assert.equal(code, 'MISUSE', show(r));
        t.refusedBy(code);
        assert.match(r.stderr, /differ only in case/);
        assert.deepEqual(tree(ws), before, `delegate --to ${name} changed the workspace`);
      }
    },
  },
];

describe('security round 2: the signing workspace and its keys', () => {
  defineCases(cases);
});
