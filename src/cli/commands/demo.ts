/**
 * `tufa demo`: the whole story offline. Builds a small image into an OCI layout, signs it and a
 * file in a TUF repository made with the TEST-ONLY keys of keys-example/, verifies the file and
 * the image as a client would, pulls the image, then shows each attack refused.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  checkLengthAndHashes,
  consistentTargetName,
  findTarget,
  TrustedMetadataSet,
  TufaError,
} from '../../core/index.js';
import { nodeBackend, sha256Hex } from '../../crypto/index.js';
import { type BuiltImage, buildImage, OciError, writeLayoutImages } from '../../oci/index.js';
import { buildRepository, KeyObjectSigner, writeTree } from '../../repository/index.js';
import { ImageVerifier, TrustPolicy } from '../../verify/index.js';
import { ImageArgs, readTrustFile } from '../images.js';
import type { Output } from '../output.js';

const KEYS_DIR = fileURLToPath(new URL('../../../../keys-example/', import.meta.url));
const IMAGE = 'example.test/demo/app:1.0';
const UNSIGNED = 'example.test/demo/app:2.0';
const UNCOVERED = 'other.test/tools/x:1.0';
const DAY = 86_400_000;
const enc = new TextEncoder();

type Files = Map<string, Uint8Array>;

async function loadTestKey(role: string): Promise<KeyObjectSigner> {
  return KeyObjectSigner.fromPem(
    await readFile(join(KEYS_DIR, `${role}.test-only.key.pem`), 'utf8'),
  );
}

/**
 * verifyFile runs the client workflow over a file map: trusted root → timestamp → snapshot →
 * targets → the target's bytes, as a TUF client does over HTTP.
 */
function verifyFile(
  files: Files,
  trustedRoot: Uint8Array,
  now: number,
  targetPath: string,
): { length: number; sha256: string } {
  const get = (name: string): Uint8Array => {
    const b = files.get(name);
    if (b === undefined) throw new Error(`${name} is missing from the repository`);
    return b;
  };
  const trusted = new TrustedMetadataSet(trustedRoot, now, { backend: nodeBackend });
  for (let v = trusted.root.signed.version + 1; files.has(`${v}.root.json`); v++)
    trusted.updateRoot(get(`${v}.root.json`));
  const ts = trusted.updateTimestamp(get('timestamp.json'));
  trusted.updateSnapshot(get(`${ts.signed.snapshotMeta.version}.snapshot.json`));
  const found = findTarget(
    trusted,
    targetPath,
    (role) => get(`${trusted.snapshot?.signed.roleMeta(role)?.version}.${role}.json`),
    { backend: nodeBackend },
  );
  if (found === undefined) throw new Error(`${targetPath} is not a signed target`);
  const sha256 = found.target.hashes.sha256 as string;
  const bytes = get(`targets/${consistentTargetName(targetPath, sha256)}`);
  // TUF 5.7.3: the target's length and every listed hash
  checkLengthAndHashes(bytes, found.target, targetPath, nodeBackend);
  return { length: bytes.length, sha256 };
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** setUpDemo writes the demo's signed repository, its OCI layout of three images and a policy. */
async function setUpDemo(dir: string, now: number) {
  const repoDir = join(dir, 'repository');
  const layoutDir = join(dir, 'images');
  const [root, targets, snapshot, timestamp] = (await Promise.all(
    ['root', 'targets', 'snapshot', 'timestamp'].map(loadTestKey),
  )) as [KeyObjectSigner, KeyObjectSigner, KeyObjectSigner, KeyObjectSigner];
  const signing = {
    root: { signers: [root] },
    targets: { signers: [targets] },
    snapshot: { signers: [snapshot] },
    timestamp: { signers: [timestamp] },
  };

  // An image and two more that will not pass, in one OCI layout.
  const app = await buildImage([
    { path: 'hello.txt', content: enc.encode('hello from a signed image\n') },
  ]);
  const next = await buildImage([
    { path: 'hello.txt', content: enc.encode('an unsigned rebuild\n') },
  ]);
  const other = await buildImage([{ path: 'x', content: enc.encode('not covered by any rule\n') }]);
  await writeLayoutImages(layoutDir, [
    { refName: IMAGE, image: app },
    { refName: UNSIGNED, image: next },
    { refName: UNCOVERED, image: other },
  ]);

  const content = [
    { path: 'hello.txt', content: enc.encode('hello from a signed repository\n') },
    {
      path: IMAGE,
      content: app.manifest,
      custom: { oci: { mediaType: app.manifestDescriptor.mediaType } },
    },
  ];
  const files = await buildRepository({ ...signing, files: content, now });
  await writeTree(repoDir, files);
  const policyFile = join(dir, 'policy.json');
  const policy = {
    rules: [
      {
        match: 'example.test/demo/**',
        tuf: { metadataUrl: `${pathToFileURL(repoDir).href}/`, root: join(repoDir, '1.root.json') },
      },
    ],
  };
  await writeFile(policyFile, `${JSON.stringify(policy, null, 2)}\n`);
  return { dir, now, repoDir, layoutDir, policyFile, policy, signing, app, next, content, files };
}

type Demo = Awaited<ReturnType<typeof setUpDemo>>;

/** demoVerifier is the image verifier a client of the demo's policy runs. */
function demoVerifier(d: Demo): ImageArgs {
  return new ImageArgs(
    new ImageVerifier({
      policy: TrustPolicy.fromJSON(d.policy, d.dir),
      files: readTrustFile,
      cacheDir: join(d.dir, 'cache'),
      now: () => d.now,
    }),
  );
}

type Attack = [string, () => Promise<void> | void];

/** verifyAndPull verifies the signed file and image as a client would, and pulls the image. */
async function verifyAndPull(
  d: Demo,
  out: Output,
  onDisk: Files,
  trustedRoot: Uint8Array,
  fail: (what: string, e: unknown) => void,
): Promise<void> {
  const { dir, now, layoutDir } = d;
  out.line('Verify before pull:');
  try {
    const v = verifyFile(onDisk, trustedRoot, now, 'hello.txt');
    out.line(
      `  ✔ hello.txt: ${v.length} bytes, sha256 ${v.sha256.slice(0, 16)}… matches the signed target`,
    );
  } catch (e) {
    fail('hello.txt', e);
  }
  const good = demoVerifier(d);
  try {
    const v = await good.verify(`oci:${layoutDir}:${IMAGE}`);
    out.line(`  ✔ ${IMAGE}: manifest ${v.length} bytes matches the signed target → ${v.pinned}`);
    const pulled = join(dir, 'pulled', 'app.tar');
    const r = await good.pull(`oci:${layoutDir}:${IMAGE}`, `oci-archive:${pulled}:1.0`);
    out.line(
      `  ✔ pulled ${r.blobs} blobs (${r.bytes} bytes), each digest checked, into oci-archive:${pulled}`,
    );
  } catch (e) {
    fail(IMAGE, e);
  } finally {
    await good.close();
  }
  out.line('');
}

/** tufAttacks: attacks on the TUF repository, each to be refused by the client workflow. */
async function tufAttacks(d: Demo, onDisk: Files, trustedRoot: Uint8Array): Promise<Attack[]> {
  const { now, signing, content } = d;
  const attacker = new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);
  const v2 = await buildRepository({ ...signing, files: content, now, versions: { timestamp: 2 } });
  const helloName = `targets/${consistentTargetName('hello.txt', sha256Hex(content[0]?.content ?? new Uint8Array()))}`;
  return [
    [
      'arbitrary software: target bytes replaced',
      () => {
        const f = new Map(onDisk);
        f.set(helloName, enc.encode('hello from an attacker!!!!!!!!\n'));
        verifyFile(f, trustedRoot, now, 'hello.txt');
      },
    ],
    [
      'metadata tampering: targets.json edited to list other bytes',
      () => {
        const f = new Map(onDisk);
        f.set(
          '1.targets.json',
          enc.encode(
            new TextDecoder()
              .decode(f.get('1.targets.json'))
              .replace(/"length": \d+/, '"length": 7'),
          ),
        );
        verifyFile(f, trustedRoot, now, 'hello.txt');
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
        verifyFile(f, trustedRoot, now, 'hello.txt');
      },
    ],
    [
      'rollback: timestamp v1 served after the client saw v2',
      () => {
        const set = new TrustedMetadataSet(trustedRoot, now, { backend: nodeBackend });
        set.updateTimestamp(v2.get('timestamp.json') as Uint8Array);
        set.updateTimestamp(onDisk.get('timestamp.json') as Uint8Array);
      },
    ],
    [
      'freeze: the same metadata replayed after it expired',
      () => {
        verifyFile(onDisk, trustedRoot, now + 2 * DAY, 'hello.txt');
      },
    ],
  ];
}

/** imageAttacks: attacks on images and their layout, each to be refused by verify or pull. */
function imageAttacks(demo: Demo): Attack[] {
  const { dir, layoutDir, app, next } = demo;
  const withImages = async (
    name: string,
    images: Array<{ refName: string; image: BuiltImage }>,
  ) => {
    const w = join(dir, 'attacks', name);
    await writeLayoutImages(w, images);
    return w;
  };
  return [
    [
      `unsigned tag: ${UNSIGNED}`,
      async () => {
        const v = demoVerifier(demo);
        await v.verify(`oci:${layoutDir}:${UNSIGNED}`).finally(() => v.close());
      },
    ],
    [
      `image no policy rule covers: ${UNCOVERED}`,
      async () => {
        const v = demoVerifier(demo);
        await v.verify(`oci:${layoutDir}:${UNCOVERED}`).finally(() => v.close());
      },
    ],
    [
      `tampered manifest: ${IMAGE} pointing at another manifest`,
      async () => {
        const d = await withImages('moved-tag', [{ refName: IMAGE, image: next }]);
        const v = demoVerifier(demo);
        await v.verify(`oci:${d}:${IMAGE}`).finally(() => v.close());
      },
    ],
    [
      'corrupted layer: pull checks every blob and leaves nothing behind',
      async () => {
        const d = await withImages('bad-layer', [{ refName: IMAGE, image: app }]);
        const layer = app.blobs[1]?.descriptor.digest.slice('sha256:'.length) as string;
        const blob = join(d, 'blobs', 'sha256', layer);
        const bytes = new Uint8Array(await readFile(blob));
        const mid = bytes.length >> 1;
        bytes[mid] = (bytes[mid] as number) ^ 0xff;
        await writeFile(blob, bytes);
        const dest = join(dir, 'attacks', 'bad-layer.tar');
        const v = demoVerifier(demo);
        const pulled = await v.pull(`oci:${d}:${IMAGE}`, `oci-archive:${dest}`).then(
          () => undefined,
          (e: unknown) => e,
        );
        await v.close();
        if (await exists(dest)) throw new Error(`${dest} was left behind`);
        if (pulled !== undefined) throw pulled;
      },
    ],
  ];
}

/** runDemo prints the demo and returns true when every check came out as it should. */
export async function runDemo(
  out: Output,
  options: { dir?: string; now?: number },
): Promise<boolean> {
  const now = options.now ?? Date.now();
  const d = await setUpDemo(options.dir ?? (await mkdtemp(join(tmpdir(), 'tufa-demo-'))), now);
  const { dir, repoDir, layoutDir, policyFile, files } = d;
  out.line(
    'tufa demo: a signed TUF repository and image, verified, pulled, then attacked (offline)',
  );
  out.line('');
  out.line(`Repository   ${repoDir}`);
  out.line(
    '             signed with keys-example/*.test-only.key.pem: public TEST-ONLY keys, never for real use',
  );
  out.line(`Images       oci:${layoutDir} (${IMAGE} signed; ${UNSIGNED} and ${UNCOVERED} not)`);
  out.line(
    `Policy       ${policyFile}: example.test/demo/** → that repository; anything else denied`,
  );
  out.line('');

  // The client reads back what was written, trusting only 1.root.json.
  const onDisk: Files = new Map();
  for (const name of files.keys())
    onDisk.set(name, new Uint8Array(await readFile(join(repoDir, name))));
  const trustedRoot = onDisk.get('1.root.json') as Uint8Array;
  let ok = true;
  const fail = (what: string, e: unknown) => {
    ok = false;
    out.line(`  ✘ ${what}: ${(e as Error).message}`);
  };
  await verifyAndPull(d, out, onDisk, trustedRoot, fail);

  const attacks = [...(await tufAttacks(d, onDisk, trustedRoot)), ...imageAttacks(d)];
  out.line('Attacks (each must be refused):');
  let refused = 0;
  for (const [what, attack] of attacks) {
    try {
      await attack();
      ok = false;
      out.line(`  ✘ ${what}: ACCEPTED`);
    } catch (e) {
      if (e instanceof TufaError || e instanceof OciError) {
        refused++;
        out.line(`  ✔ ${what}`);
        out.line(`      refused (${e.code}): ${e.message}`);
      } else {
        fail(what, e);
      }
    }
  }
  out.line('');
  out.line(`${refused} of ${attacks.length} attacks refused.${ok ? '' : ' SOMETHING WENT WRONG.'}`);
  out.line(
    `Try it yourself: tufa verify --policy ${policyFile} --cache-dir ${join(dir, 'cache')} oci:${layoutDir}:${IMAGE}`,
  );
  return ok;
}
