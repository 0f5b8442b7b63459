/**
 * `tufa proxy` side by side with its upstream (issue 15, performance): a single-layer image of
 * `--mib` MiB random data (bench/image-gen.ts) pushed with skopeo into Debian's docker-registry
 * on 127.0.0.1 and signed as the TUF target `<registry>/bench/big:1` (a repository served by a
 * static server on 127.0.0.1); then, alternating, `skopeo copy docker://PROXY/bench/big:1 oci:…`
 * and the same copy straight from the registry, `--reps` times each. Then manifest requests
 * (GET by tag, keep-alive) with warm trust data, alternating proxy and direct.
 *
 *     node dist/bench/proxy.js [--mib=400] [--reps=3] [--manifests=200]
 *
 * Prints one JSON report on stdout; progress on stderr. Runs on its own or from `run.ts`.
 * Targets: pull throughput through the proxy ≥ 0.9× direct; p50 added to a manifest request
 * ≤ 5 ms.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../src/oci/index.js';
import { startRegistryProxy } from '../src/proxy/index.js';
import { ImageVerifier, TrustPolicy } from '../src/verify/index.js';
import { liveExpiries, publishEncoded, simulator } from '../test/security/harness.js';
import { ROOT } from '../test/support/paths.js';
import { RegistryServer, runOk } from '../test/support/registry.js';
import { StaticServer } from '../test/support/static-server.js';
import { SimRepo } from '../test/support/tuf-builder.js';
import { ensureImage } from './image-gen.js';
import { stats } from './measure.js';

/** What this job prints (run.ts reads it). */
export interface ProxyReport {
  mib: number;
  blobBytes: number;
  reps: number;
  pull: {
    directS: number[];
    proxyS: number[];
    /** Median MB/s (10^6 bytes of blobs per second). */
    directMBps: number;
    proxyMBps: number;
    /** proxy throughput / direct throughput (medians). */
    ratio: number;
    met: boolean;
  };
  manifest: {
    requests: number;
    directP50Ms: number;
    proxyP50Ms: number;
    directP90Ms: number;
    proxyP90Ms: number;
    addedP50Ms: number;
    met: boolean;
  };
}

const argv = process.argv.slice(2);
const option = (name: string) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const MIB = Number(option('mib') ?? 400);
const REPS = Number(option('reps') ?? 3);
const MANIFESTS = Number(option('manifests') ?? 200);
const PULL_TARGET = 0.9;
const MANIFEST_TARGET_MS = 5;

function log(msg: string): void {
  process.stderr.write(`[proxy] ${msg}\n`);
}

function median(v: readonly number[]): number {
  return stats(v)?.median ?? Number.NaN;
}

function percentile(v: readonly number[], p: number): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** getManifest fetches a manifest by tag and returns the time to the last byte, in ms. */
function getManifest(url: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(url, { agent, headers: { accept: OCI_MANIFEST } }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${url}: HTTP ${res.statusCode}`));
        else resolve(performance.now() - t0);
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`${url}: no answer within 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  if (!(MIB > 0) || !(REPS > 0) || !(MANIFESTS > 0))
    throw new Error('--mib, --reps and --manifests must be positive numbers');
  const image = await ensureImage(join(ROOT, 'bench', 'out'), {
    layers: 1,
    layerBytes: MIB * 1024 * 1024,
  });
  if (image.generatedIn > 0) log(`image generated in ${image.generatedIn.toFixed(1)} s`);
  const dir = await mkdtemp(join(tmpdir(), 'tufa-bench-proxy-'));
  const env = { ...process.env, REGISTRY_AUTH_FILE: join(dir, 'no-auth.json'), TMPDIR: dir };
  const skopeoPolicy = join(dir, 'skopeo-policy.json');
  writeFileSync(skopeoPolicy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const reg = await RegistryServer.start('plain');
  let tuf: StaticServer | undefined;
  let upstream: RegistryClient | undefined;
  let verifier: ImageVerifier | undefined;
  let proxy: Awaited<ReturnType<typeof startRegistryProxy>> | undefined;
  try {
    const t0 = performance.now();
    await runOk(
      'skopeo',
      [
        '--policy',
        skopeoPolicy,
        'copy',
        '--quiet',
        '--format',
        'oci',
        '--dest-tls-verify=false',
        image.ref,
        `docker://${reg.host}/bench/big:1`,
      ],
      { env, timeoutMs: 600_000 },
    );
    log(`pushed ${MIB} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const manifest = await reg.inspectRaw('bench/big:1');

    // the TUF repository that signs the image, as test/integration/registry-proxy.test.ts builds it
    const repo = liveExpiries(new SimRepo());
    const sim = simulator(repo);
    sim.addTargetFile(`${reg.host}/bench/big:1`, manifest);
    publishEncoded(sim);
    tuf = await StaticServer.start(sim.files);
    const policyDir = join(dir, 'policy');
    mkdirSync(policyDir);
    writeFileSync(join(policyDir, 'root.json'), repo.rootBytes(1));
    const policyJson = {
      rules: [
        {
          match: `${reg.host}/bench/**`,
          tuf: { metadataUrl: tuf.url('metadata/'), root: 'root.json' },
        },
      ],
    };
    upstream = new RegistryClient();
    verifier = new ImageVerifier({
      registry: upstream,
      files: (path) => readFile(path),
      policy: TrustPolicy.fromJSON(policyJson, policyDir),
      cacheDir: join(dir, 'cache'),
      refreshIntervalMs: 60_000,
    });
    proxy = await startRegistryProxy({ verifier, registry: upstream, upstream: reg.host });

    // ---- pull: alternate direct and proxy, each into a fresh oci: directory
    const times: Record<'direct' | 'proxy', number[]> = { direct: [], proxy: [] };
    let n = 0;
    const copy = async (host: string): Promise<number> => {
      const out = join(dir, `out-${++n}`);
      const t = performance.now();
      await runOk(
        'skopeo',
        [
          '--policy',
          skopeoPolicy,
          'copy',
          '--quiet',
          '--src-tls-verify=false',
          '--retry-times=0',
          `docker://${host}/bench/big:1`,
          `oci:${out}:x`,
        ],
        { env, timeoutMs: 600_000 },
      );
      const s = (performance.now() - t) / 1000;
      await rm(out, { recursive: true, force: true });
      return s;
    };
    // one untimed pull through the proxy warms the trust data and the page cache
    log(`warm-up pull through the proxy: ${(await copy(proxy.host)).toFixed(2)} s`);
    for (let i = 0; i < REPS; i++) {
      const order = i % 2 === 0 ? (['direct', 'proxy'] as const) : (['proxy', 'direct'] as const);
      for (const which of order) {
        const s = await copy(which === 'direct' ? reg.host : proxy.host);
        times[which].push(s);
        log(`pull ${which} #${i + 1}: ${s.toFixed(2)} s`);
      }
    }
    const mbps = (s: number) => image.blobBytes / 1e6 / s;
    const directMBps = mbps(median(times.direct));
    const proxyMBps = mbps(median(times.proxy));
    const ratio = proxyMBps / directMBps;

    // ---- manifest requests with warm trust data, alternating, keep-alive connections
    const agents = {
      direct: new Agent({ keepAlive: true }),
      proxy: new Agent({ keepAlive: true }),
    };
    const urls = {
      direct: `http://${reg.host}/v2/bench/big/manifests/1`,
      proxy: `${proxy.url}/v2/bench/big/manifests/1`,
    };
    const lat: Record<'direct' | 'proxy', number[]> = { direct: [], proxy: [] };
    for (let i = 0; i < 10; i++) {
      await getManifest(urls.direct, agents.direct);
      await getManifest(urls.proxy, agents.proxy);
    }
    for (let i = 0; i < MANIFESTS; i++) {
      const order = i % 2 === 0 ? (['direct', 'proxy'] as const) : (['proxy', 'direct'] as const);
      for (const which of order) lat[which].push(await getManifest(urls[which], agents[which]));
    }
    agents.direct.destroy();
    agents.proxy.destroy();
    const directP50Ms = percentile(lat.direct, 50);
    const proxyP50Ms = percentile(lat.proxy, 50);
    const round = (x: number, d = 2) => Number(x.toFixed(d));
    const report: ProxyReport = {
      mib: MIB,
      blobBytes: image.blobBytes,
      reps: REPS,
      pull: {
        directS: times.direct.map((s) => round(s, 3)),
        proxyS: times.proxy.map((s) => round(s, 3)),
        directMBps: round(directMBps, 1),
        proxyMBps: round(proxyMBps, 1),
        ratio: round(ratio),
        met: ratio >= PULL_TARGET,
      },
      manifest: {
        requests: MANIFESTS,
        directP50Ms: round(directP50Ms),
        proxyP50Ms: round(proxyP50Ms),
        directP90Ms: round(percentile(lat.direct, 90)),
        proxyP90Ms: round(percentile(lat.proxy, 90)),
        addedP50Ms: round(proxyP50Ms - directP50Ms),
        met: proxyP50Ms - directP50Ms <= MANIFEST_TARGET_MS,
      },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await proxy?.close();
    await verifier?.close();
    await upstream?.close();
    await tuf?.close();
    await reg.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
