/** `tufa admission serve`: the Kubernetes admission webhook (validating and mutating). */
import type { Command } from 'commander';
import { AdmissionController, startAdmissionServer } from '../../admission/index.js';
import { RegistryClient } from '../../oci/index.js';
import { ImageVerifier, TrustPolicy } from '../../verify/index.js';
import { checkFlagPath, readFlagCertificates, readFlagText } from '../flags.js';
import { readTrustFile } from '../images.js';
import type { Output } from '../output.js';
import {
  cacheDirOf,
  notaryCredentials,
  type RegistryFlags,
  registryOptions,
  withRegistryFlags,
} from '../registry-options.js';

interface ServeFlags extends ServingFlags {
  tlsCert: string;
  tlsKey: string;
  host: string;
  port: string;
  deadline: string;
  maxImages: string;
  maxVerifications: string;
  maxConnections: string;
  maxConnectionsPerIp?: string;
  maxBuffered: string;
  clientCa?: string;
}

/** What a long-running verifier (the webhook, the proxy) is configured with on the command line. */
export interface ServingFlags extends RegistryFlags {
  policy: string;
  cacheDir?: string;
  refreshInterval: string;
  failureCache: string;
}

/**
 * servingVerifier loads the policy and builds the registry client and the verifier a server
 * shares between requests: Docker config credentials for registries, and for notary servers by
 * their origin; trust refreshed every `--refresh-interval`, failures remembered `--failure-cache`.
 */
export async function servingVerifier(
  o: ServingFlags,
  out: Output,
): Promise<{ registry: RegistryClient; verifier: ImageVerifier }> {
  await checkFlagPath('--policy', o.policy);
  const policy = await TrustPolicy.load(o.policy);
  for (const w of policy.warnings) out.error(`warning: ${w}`);
  const registry = new RegistryClient(await registryOptions(o));
  const verifier = new ImageVerifier({
    registry,
    policy,
    files: readTrustFile,
    cacheDir: cacheDirOf(o),
    notaryCredentials: notaryCredentials(),
    refreshIntervalMs: positive(o.refreshInterval, '--refresh-interval') * 1000,
    failureCacheMs: positive(o.failureCache, '--failure-cache') * 1000,
  });
  return { registry, verifier };
}

export function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new RangeError(`${flag}: expected a positive number, got ${v}`);
  return n;
}

export function whole(v: string, flag: string): number {
  const n = positive(v, flag);
  if (!Number.isSafeInteger(n)) throw new RangeError(`${flag}: expected a whole number, got ${v}`);
  return n;
}

export function addAdmissionCommands(program: Command, out: Output): void {
  const admission = program.command('admission').description('Kubernetes admission webhook');
  withRegistryFlags(
    admission
      .command('serve')
      .description(
        'serve POST /validate and /mutate (AdmissionReview v1) over HTTPS, with /healthz, /readyz, /metrics',
      )
      .requiredOption('--policy <file>', 'trust policy (JSON)')
      .requiredOption('--tls-cert <file>', 'server certificate (PEM)')
      .requiredOption('--tls-key <file>', 'server key (PEM)')
      .option('--host <addr>', 'listen address', '0.0.0.0')
      .option('--port <n>', 'listen port', '8443')
      .option(
        '--refresh-interval <seconds>',
        'reuse refreshed trust data this long (never past its expiry)',
        '60',
      )
      .option(
        '--deadline <seconds>',
        'deny a review not decided in this time (keep below timeoutSeconds)',
        '8',
      )
      .option(
        '--cache-dir <dir>',
        'TUF metadata cache (default: $XDG_CACHE_HOME/tufa or ~/.cache/tufa)',
      )
      .option('--max-images <n>', 'deny a review naming more distinct images than this', '64')
      .option('--max-verifications <n>', 'verifications running at once, all reviews', '16')
      .option('--failure-cache <seconds>', 'answer a failed trust refresh this long', '5')
      .option('--max-connections <n>', 'connections open at once', '128')
      .option(
        '--max-connections-per-ip <n>',
        'connections open at once from one client address (default: max(4, max-connections / 4))',
      )
      .option(
        '--max-buffered <MiB>',
        'review bytes held in memory, all requests (503 beyond)',
        '32',
      )
      .option(
        '--client-ca <file>',
        "accept reviews only from clients with a certificate from this CA (the API server's)",
      ),
  ).action(async (o: ServeFlags) => {
    const deadlineMs = positive(o.deadline, '--deadline') * 1000;
    const { registry, verifier } = await servingVerifier(o, out);
    const controller = new AdmissionController({
      verifier,
      registry,
      deadlineMs,
      maxImages: whole(o.maxImages, '--max-images'),
      maxConcurrent: whole(o.maxVerifications, '--max-verifications'),
    });
    const log = (r: Record<string, unknown>) => out.json({ time: new Date().toISOString(), ...r });
    const server = await startAdmissionServer({
      controller,
      tls: {
        cert: await readFlagText('--tls-cert', o.tlsCert),
        key: await readFlagText('--tls-key', o.tlsKey),
      },
      host: o.host,
      port: positive(o.port, '--port'),
      log,
      maxConnections: whole(o.maxConnections, '--max-connections'),
      ...(o.maxConnectionsPerIp === undefined
        ? {}
        : { maxConnectionsPerIp: whole(o.maxConnectionsPerIp, '--max-connections-per-ip') }),
      maxBufferedBytes: positive(o.maxBuffered, '--max-buffered') * 1024 * 1024,
      // the API server sends a review at once: one that takes longer to arrive is cut
      requestTimeoutMs: deadlineMs,
      ...(o.clientCa === undefined
        ? {}
        : { clientCa: await readFlagCertificates('--client-ca', o.clientCa) }),
    });
    log({ level: 'info', msg: 'listening', url: server.url, policy: o.policy });
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    log({ level: 'info', msg: 'shutting down' });
    await server.close();
    await verifier.close();
    await registry.close();
  });
}
