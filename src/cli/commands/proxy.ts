/** `tufa proxy`: a read-only registry in front of upstream registries serving only signed images. */
import type { Command } from 'commander';
import { startRegistryProxy } from '../../proxy/index.js';
import { readFlagText, UsageError } from '../flags.js';
import type { Output } from '../output.js';
import { withRegistryFlags } from '../registry-options.js';
import { type ServingFlags, servingVerifier, whole } from './admission.js';

interface ProxyFlags extends ServingFlags {
  upstream?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureHttp: boolean;
  host: string;
  port: string;
  maxVerifications: string;
  maxBlobStreams: string;
  maxBlobStreamsPerClient: string;
  maxConnections: string;
}

function portOf(v: string): number {
  const n = Number(v);
  if (!/^[0-9]{1,5}$/.test(v) || n > 65535)
    throw new UsageError(`--port: expected 0 (any free port) to 65535, got ${v}`);
  return n;
}

export function addProxyCommand(program: Command, out: Output): void {
  withRegistryFlags(
    program
      .command('proxy')
      .description(
        'serve a read-only OCI registry (GET/HEAD /v2/…) that passes on only signed manifests and hash-checked blobs from upstream, with /healthz and /metrics',
      )
      .requiredOption('--policy <file>', 'trust policy (JSON)')
      .option('--upstream <registry>', 'registry of names given without one (e.g. ghcr.io)')
      .option('--tls-cert <file>', 'server certificate (PEM)')
      .option('--tls-key <file>', 'server key (PEM)')
      .option('--insecure-http', 'serve plain HTTP (no --tls-cert): for loopback tests only', false)
      .option('--host <addr>', 'listen address', '0.0.0.0')
      .option('--port <n>', 'listen port', '5000')
      .option('--refresh-interval <seconds>', 'reuse refreshed trust data this long', '60')
      .option('--failure-cache <seconds>', 'answer a failed trust refresh this long', '5')
      .option('--cache-dir <dir>', 'TUF metadata cache (default: $XDG_CACHE_HOME/tufa)')
      .option('--max-verifications <n>', 'manifest verifications at once', '16')
      .option(
        '--max-blob-streams <n>',
        'blob streams at once (upstream connections per registry)',
        '8',
      )
      .option(
        '--max-blob-streams-per-client <n>',
        'blob streams at once for one client address (raise it behind a NAT or load balancer)',
        '4',
      )
      .option('--max-connections <n>', 'connections open at once', '1024'),
  ).action(async (o: ProxyFlags) => {
    if ((o.tlsCert === undefined) !== (o.tlsKey === undefined))
      throw new UsageError('--tls-cert and --tls-key go together');
    if (o.tlsCert === undefined && !o.insecureHttp)
      throw new UsageError(
        'give --tls-cert and --tls-key (or --insecure-http for a loopback test)',
      );
    const { registry, verifier } = await servingVerifier(o, out);
    const log = (r: Record<string, unknown>) => out.json({ time: new Date().toISOString(), ...r });
    const server = await startRegistryProxy({
      verifier,
      registry,
      ...(o.upstream === undefined ? {} : { upstream: o.upstream }),
      ...(o.tlsCert === undefined || o.tlsKey === undefined
        ? {}
        : {
            tls: {
              cert: await readFlagText('--tls-cert', o.tlsCert),
              key: await readFlagText('--tls-key', o.tlsKey),
            },
          }),
      host: o.host,
      port: portOf(o.port),
      maxVerifications: whole(o.maxVerifications, '--max-verifications'),
      maxBlobStreams: whole(o.maxBlobStreams, '--max-blob-streams'),
      maxBlobStreamsPerClient: whole(o.maxBlobStreamsPerClient, '--max-blob-streams-per-client'),
      maxConnections: whole(o.maxConnections, '--max-connections'),
      log,
    });
    log({ level: 'info', msg: 'listening', url: server.url, policy: o.policy });
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    log({ level: 'info', msg: 'shutting down' });
    await server.close();
    await verifier.close();
    await registry.close();
  });
}
