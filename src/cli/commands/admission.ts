/** `tufa admission serve`: the Kubernetes admission webhook (validating and mutating). */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AdmissionController, startAdmissionServer } from '../../admission/index.js';
import { ImageVerifier, TrustPolicy } from '../../verify/index.js';
import type { Output } from '../output.js';
import { type RegistryFlags, registryOptions, withRegistryFlags } from '../registry-options.js';

interface ServeFlags extends RegistryFlags {
  policy: string;
  tlsCert: string;
  tlsKey: string;
  host: string;
  port: string;
  refreshInterval: string;
  deadline: string;
  cacheDir?: string;
}

function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new RangeError(`${flag}: expected a positive number, got ${v}`);
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
      ),
  ).action(async (o: ServeFlags) => {
    const policy = await TrustPolicy.load(o.policy);
    for (const w of policy.warnings) out.error(`warning: ${w}`);
    const verifier = new ImageVerifier({
      policy,
      cacheDir: o.cacheDir ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tufa'),
      registryOptions: await registryOptions(o),
      refreshIntervalMs: positive(o.refreshInterval, '--refresh-interval') * 1000,
    });
    const controller = new AdmissionController({
      verifier,
      deadlineMs: positive(o.deadline, '--deadline') * 1000,
    });
    const log = (r: Record<string, unknown>) =>
      out.line(JSON.stringify({ time: new Date().toISOString(), ...r }));
    const server = await startAdmissionServer({
      controller,
      tls: { cert: await readFile(o.tlsCert), key: await readFile(o.tlsKey) },
      host: o.host,
      port: positive(o.port, '--port'),
      log,
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
  });
}
