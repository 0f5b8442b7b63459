/**
 * `tufa demo`: the whole story offline. Signs a TUF repository with the TEST-ONLY keys of
 * keys-example/, verifies it as a client would, then serves it tampered in five ways and shows
 * each one refused.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkLengthAndHashes,
  consistentTargetName,
  findTarget,
  nodeBackend,
  TrustedMetadataSet,
  TufaError,
} from '../../core/index.js';
import { buildRepository, KeyObjectSigner, writeTree } from '../../repository/index.js';
import type { Output } from '../output.js';

const KEYS_DIR = fileURLToPath(new URL('../../../../keys-example/', import.meta.url));
const IMAGE = 'example.test/demo/app:1.0';

type Files = Map<string, Uint8Array>;

async function loadTestKey(role: string): Promise<KeyObjectSigner> {
  return KeyObjectSigner.fromPem(
    await readFile(join(KEYS_DIR, `${role}.test-only.key.pem`), 'utf8'),
  );
}

function demoManifest(): Uint8Array {
  const digest = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: digest('config'),
      size: 6,
    },
    layers: [
      {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: digest('layer'),
        size: 5,
      },
    ],
  };
  return new TextEncoder().encode(JSON.stringify(manifest));
}

/** What a client finds for one target after verifying the whole chain. */
interface Verified {
  path: string;
  length: number;
  sha256: string;
}

/**
 * verifyRepository runs the client workflow over a file map: trusted root → timestamp →
 * snapshot → targets → the target's bytes, as a TUF client does over HTTP.
 */
function verifyRepository(
  files: Files,
  trustedRoot: Uint8Array,
  now: number,
  targetPath: string,
): Verified {
  const get = (name: string): Uint8Array => {
    const b = files.get(name);
    if (b === undefined) throw new Error(`${name} is missing from the repository`);
    return b;
  };
  const trusted = new TrustedMetadataSet(trustedRoot, now);
  for (let v = trusted.root.signed.version + 1; files.has(`${v}.root.json`); v++)
    trusted.updateRoot(get(`${v}.root.json`));
  const ts = trusted.updateTimestamp(get('timestamp.json'));
  trusted.updateSnapshot(get(`${ts.signed.snapshotMeta.version}.snapshot.json`));
  const found = findTarget(trusted, targetPath, (role) => {
    const meta = trusted.snapshot?.signed.roleMeta(role);
    return get(`${meta?.version}.${role}.json`);
  });
  if (found === undefined) throw new Error(`${targetPath} is not a signed target`);
  const sha256 = found.target.hashes.sha256 as string;
  const bytes = get(`targets/${consistentTargetName(targetPath, sha256)}`);
  // TUF 5.7.3: the target's length and every listed hash
  checkLengthAndHashes(bytes, found.target, targetPath, nodeBackend);
  return { path: targetPath, length: bytes.length, sha256 };
}

/** runDemo prints the demo and returns true when every check came out as it should. */
export async function runDemo(
  out: Output,
  options: { dir?: string; now?: number },
): Promise<boolean> {
  const now = options.now ?? Date.now();
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'tufa-demo-')));
  const repoDir = join(dir, 'repository');
  const [root, targets, snapshot, timestamp] = (await Promise.all(
    ['root', 'targets', 'snapshot', 'timestamp'].map(loadTestKey),
  )) as [KeyObjectSigner, KeyObjectSigner, KeyObjectSigner, KeyObjectSigner];
  const signing = {
    root: { signers: [root] },
    targets: { signers: [targets] },
    snapshot: { signers: [snapshot] },
    timestamp: { signers: [timestamp] },
  };
  const content = [
    { path: 'hello.txt', content: new TextEncoder().encode('hello from a signed repository\n') },
    {
      path: IMAGE,
      content: demoManifest(),
      custom: { oci: { mediaType: 'application/vnd.oci.image.manifest.v1+json' } },
    },
  ];
  const files = await buildRepository({ ...signing, files: content, now });
  await writeTree(repoDir, files);

  out.line('tufa demo: a signed TUF repository, verified, then attacked (offline)');
  out.line('');
  out.line(`Repository written to ${repoDir}`);
  out.line(
    '  signed with keys-example/*.test-only.key.pem: public TEST-ONLY keys, never for real use',
  );
  out.line(
    `  files: ${[...files.keys()].filter((f) => !f.startsWith('targets/')).join(', ')}, ${content.length} targets`,
  );
  out.line('');

  // The client reads back what was written, trusting only 1.root.json.
  const onDisk: Files = new Map();
  for (const name of files.keys())
    onDisk.set(name, new Uint8Array(await readFile(join(repoDir, name))));
  const trustedRoot = onDisk.get('1.root.json') as Uint8Array;
  let ok = true;
  out.line('Client (trusted root: 1.root.json):');
  for (const { path } of content) {
    try {
      const v = verifyRepository(onDisk, trustedRoot, now, path);
      const pinned =
        path === IMAGE
          ? `  → pinned ${IMAGE.slice(0, IMAGE.lastIndexOf(':'))}@sha256:${v.sha256}`
          : '';
      out.line(
        `  ✔ ${v.path}: ${v.length} bytes, sha256 ${v.sha256.slice(0, 16)}… verified${pinned}`,
      );
    } catch (e) {
      ok = false;
      out.line(`  ✘ ${path}: ${(e as Error).message}`);
    }
  }
  out.line('');

  const attacker = new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);
  const v2 = await buildRepository({ ...signing, files: content, now, versions: { timestamp: 2 } });
  const attacks: Array<[string, () => Promise<void> | void]> = [
    [
      'arbitrary software: target bytes replaced',
      () => {
        const f = new Map(onDisk);
        const name = `targets/${consistentTargetName(
          'hello.txt',
          createHash('sha256')
            .update(content[0]?.content ?? '')
            .digest('hex'),
        )}`;
        f.set(name, new TextEncoder().encode('hello from an attacker!!!!!!!!\n'));
        verifyRepository(f, trustedRoot, now, 'hello.txt');
      },
    ],
    [
      'metadata tampering: targets.json edited to list other bytes',
      () => {
        const f = new Map(onDisk);
        const text = new TextDecoder()
          .decode(f.get('1.targets.json'))
          .replace(/"length": \d+/, '"length": 7');
        f.set('1.targets.json', new TextEncoder().encode(text));
        verifyRepository(f, trustedRoot, now, 'hello.txt');
      },
    ],
    [
      'forged timestamp signed by a key root does not trust',
      async () => {
        const forged = await buildRepository({
          ...signing,
          timestamp: { signers: [attacker] },
          files: content,
          now,
          versions: { timestamp: 9 },
        });
        const f = new Map(onDisk);
        f.set('timestamp.json', forged.get('timestamp.json') as Uint8Array);
        verifyRepository(f, trustedRoot, now, 'hello.txt');
      },
    ],
    [
      'rollback: timestamp v1 served after the client saw v2',
      () => {
        // the client holds v2; the mirror serves v1
        const set = new TrustedMetadataSet(trustedRoot, now);
        set.updateTimestamp(v2.get('timestamp.json') as Uint8Array);
        set.updateTimestamp(onDisk.get('timestamp.json') as Uint8Array);
      },
    ],
    [
      'freeze: the same metadata replayed after it expired',
      () => {
        verifyRepository(onDisk, trustedRoot, now + 2 * 86_400_000, 'hello.txt');
      },
    ],
  ];
  out.line('Attacks (each must be refused):');
  let refused = 0;
  for (const [what, attack] of attacks) {
    try {
      await attack();
      ok = false;
      out.line(`  ✘ ${what}: ACCEPTED`);
    } catch (e) {
      if (e instanceof TufaError) {
        refused++;
        out.line(`  ✔ ${what}`);
        out.line(`      refused (${e.code}): ${e.message}`);
      } else {
        ok = false;
        out.line(`  ✘ ${what}: failed for another reason: ${(e as Error).message}`);
      }
    }
  }
  out.line('');
  out.line(`${refused} of ${attacks.length} attacks refused.${ok ? '' : ' SOMETHING WENT WRONG.'}`);
  return ok;
}
