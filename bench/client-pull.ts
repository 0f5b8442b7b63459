/**
 * Benchmark child: one pull of the benchmark image from the local registry, as a fresh process.
 *
 *  - `tufa`: `pullImage` through an `ImageVerifier` whose policy sends the repository to a TUF
 *    repository signing the manifest: TUF refresh and lookup, the manifest fetched by the signed
 *    digest and checked, every blob streamed with its size and SHA-256 checked, each blob
 *    fsynced and renamed into an OCI layout.
 *  - `plain`: the same transfer without any check: undici GETs of the manifest and of each blob,
 *    each blob streamed to a file, fsynced and renamed (the same durability as tufa's layout
 *    writer, so the difference is the checking).
 *  - `plain-sha256`: as `plain`, and each blob's SHA-256 computed as it streams and compared
 *    with its digest: the cheapest form of the checking, to split tufa's overhead into the
 *    hashing and the rest;
 *  - `plain-sha256-overlap`: as `plain-sha256`, with each chunk's write started before it is
 *    hashed, so hashing overlaps the disk write (what a checking pipeline can cost here);
 *  - `plain-nosync`: as `plain` without fsync (what a naive download costs).
 *
 * Prints one JSON line: bytes of blobs written and the time of the pull (ms, in process).
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';

export interface PullJob {
  mode: 'tufa' | 'plain' | 'plain-sha256' | 'plain-sha256-overlap' | 'plain-nosync';
  /** `127.0.0.1:PORT` */
  registry: string;
  repository: string;
  tag: string;
  /** The manifest digest (plain modes fetch by it, as tufa does after verifying). */
  digest: string;
  /** TUF metadata URL and trusted root (tufa mode). */
  metadataUrl: string;
  rootFile: string;
  /** Work folder: the output goes to `<work>/out`, tufa's cache to `<work>/cache`. */
  work: string;
}

export interface PullReport {
  mode: PullJob['mode'];
  bytes: number;
  blobs: number;
  loadedMs: number;
  pullMs: number;
  /**
   * tufa: ms from the start until the first blob (the tiny config) was stored: TUF refresh and
   * lookup, the manifest fetched and checked, the output layout started.
   */
  firstBlobMs?: number;
  maxRssKiB: number;
}

const MANIFEST_ACCEPT =
  'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function plainPull(
  job: PullJob,
  sync: boolean,
  check: boolean,
  overlap = false,
): Promise<{ bytes: number; blobs: number }> {
  const agent = new Agent({ connect: { timeout: 30_000 }, bodyTimeout: 60_000 });
  const base = `http://${job.registry}/v2/${job.repository}`;
  const out = join(job.work, 'out');
  const blobDir = join(out, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  try {
    const res = await request(`${base}/manifests/${job.digest}`, {
      dispatcher: agent,
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (res.statusCode !== 200) throw new Error(`manifest: HTTP ${res.statusCode}`);
    const manifestBytes = Buffer.from(await res.body.arrayBuffer());
    await writeFile(join(blobDir, job.digest.slice(7)), manifestBytes);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as {
      config: { digest: string };
      layers: Array<{ digest: string }>;
    };
    let bytes = 0;
    const blobs = [manifest.config, ...manifest.layers];
    for (const b of blobs) {
      const r = await request(`${base}/blobs/${b.digest}`, { dispatcher: agent });
      if (r.statusCode !== 200) throw new Error(`${b.digest}: HTTP ${r.statusCode}`);
      const final = join(blobDir, b.digest.slice(7));
      const fh = await open(`${final}.partial`, 'w');
      const hash = check ? createHash('sha256') : undefined;
      try {
        for await (const chunk of r.body) {
          bytes += (chunk as Uint8Array).length;
          if (overlap) {
            const written = fh.write(chunk as Uint8Array);
            hash?.update(chunk as Uint8Array);
            await written;
          } else {
            hash?.update(chunk as Uint8Array);
            await fh.write(chunk as Uint8Array);
          }
        }
        if (hash !== undefined && `sha256:${hash.digest('hex')}` !== b.digest)
          throw new Error(`${b.digest}: digest mismatch`);
        if (sync) await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(`${final}.partial`, final);
    }
    await writeFile(join(out, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
    return { bytes, blobs: blobs.length };
  } finally {
    await agent.close();
  }
}

type VerifyModule = typeof import('../src/verify/index.js') & typeof import('../src/oci/index.js');

async function tufaPull(
  job: PullJob,
  {
    ImageVerifier,
    pullImage,
    TrustPolicy,
    Reference,
    RegistryClient,
    RegistrySource,
  }: VerifyModule,
  started: number,
): Promise<{ bytes: number; blobs: number; firstBlobMs?: number }> {
  let firstBlobMs: number | undefined;
  const policy = TrustPolicy.fromJSON(
    {
      rules: [
        {
          match: `${job.registry}/${job.repository}`,
          tuf: { metadataUrl: job.metadataUrl, root: job.rootFile },
        },
      ],
    },
    job.work,
  );
  const verifier = new ImageVerifier({
    policy,
    files: (p: string) => readFile(p),
    cacheDir: join(job.work, 'cache'),
  });
  const registry = new RegistryClient({ timeoutMs: 60_000 });
  const reference = Reference.parse(`${job.registry}/${job.repository}:${job.tag}`);
  try {
    const r = await pullImage(
      verifier,
      reference,
      new RegistrySource(registry, reference),
      `oci:${join(job.work, 'out')}`,
      {
        onProgress: (_done, _total, blob) => {
          if (blob.done === blob.size) firstBlobMs ??= performance.now() - started;
        },
      },
    );
    return {
      bytes: r.bytes,
      blobs: r.blobs,
      ...(firstBlobMs === undefined ? {} : { firstBlobMs }),
    };
  } finally {
    await verifier.close();
    await registry.close();
  }
}

const job = JSON.parse(process.argv[2] ?? '{}') as PullJob;
// Only the tufa mode loads the library; module loading is not part of the pull time.
const verify =
  job.mode === 'tufa'
    ? { ...(await import('../src/verify/index.js')), ...(await import('../src/oci/index.js')) }
    : undefined;
const loaded = performance.now();
const r: { bytes: number; blobs: number; firstBlobMs?: number } =
  verify !== undefined
    ? await tufaPull(job, verify, loaded)
    : await plainPull(
        job,
        job.mode !== 'plain-nosync',
        job.mode.startsWith('plain-sha256'),
        job.mode === 'plain-sha256-overlap',
      );
const pulled = performance.now();
const report: PullReport = {
  mode: job.mode,
  bytes: r.bytes,
  blobs: r.blobs,
  loadedMs: loaded,
  pullMs: pulled - loaded,
  ...(r.firstBlobMs === undefined ? {} : { firstBlobMs: r.firstBlobMs }),
  maxRssKiB: process.resourceUsage().maxRSS,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(0);
