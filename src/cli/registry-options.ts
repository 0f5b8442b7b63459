/** Registry connection options shared by the commands that talk to registries. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DockerConfigCredentials, type RegistryClientOptions } from '../oci/index.js';
import { isLoopbackHost } from '../transport/index.js';
import { readFlagCertificates } from './flags.js';

export interface RegistryFlags {
  plainHttp: string[];
  https: string[];
  ca?: string;
}

const collect = (v: string, acc: string[]) => [...acc, v];

/** withRegistryFlags adds --plain-http, --https and --ca. */
export function withRegistryFlags(cmd: Command): Command {
  return cmd
    .option(
      '--plain-http <registry>',
      'talk to this registry over plain HTTP (loopback ones are, unless --https)',
      collect,
      [],
    )
    .option('--https <registry>', 'talk to this loopback registry over HTTPS', collect, [])
    .option('--ca <file>', 'extra CA certificates (PEM) for registries');
}

/**
 * registryOptions builds client options: credentials from `$DOCKER_CONFIG/config.json` (or
 * `~/.docker/config.json`); plain HTTP for the registries named and for loopback ones not named
 * by --https. The scheme never depends on --ca; when a CA is given and a loopback registry is
 * still spoken to over HTTP, `note` says so once, with why.
 */
export async function registryOptions(
  o: RegistryFlags,
  note?: (text: string) => void,
): Promise<RegistryClientOptions> {
  const dockerConfig = join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  const plain = new Set(o.plainHttp);
  const https = new Set(o.https ?? []);
  const noted = new Set<string>();
  return {
    credentials: new DockerConfigCredentials(dockerConfig, 30_000, process.env),
    plainHttp: (r) => {
      if (plain.has(r)) return true;
      if (https.has(r) || !isLoopbackHost(r)) return false;
      if (o.ca !== undefined && !noted.has(r)) {
        noted.add(r);
        note?.(
          `note: ${r}: plain HTTP (a loopback registry; --ca applies to HTTPS: add --https ${r} to use it)`,
        );
      }
      return true;
    },
    ...(o.ca === undefined ? {} : { ca: await readFlagCertificates('--ca', o.ca) }),
  };
}
