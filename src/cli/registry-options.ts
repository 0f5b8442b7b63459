/** Registry connection options shared by the commands that talk to registries. */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DockerConfigCredentials, type RegistryClientOptions } from '../oci/index.js';
import { isLoopbackHost } from '../transport/index.js';

export interface RegistryFlags {
  plainHttp: string[];
  ca?: string;
}

const collect = (v: string, acc: string[]) => [...acc, v];

/** cacheDirOf is `--cache-dir`, else the default: `$XDG_CACHE_HOME/tufa` or `~/.cache/tufa`. */
export function cacheDirOf(o: { cacheDir?: string }): string {
  return o.cacheDir ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tufa');
}

/** withRegistryFlags adds --plain-http and --ca. */
export function withRegistryFlags(cmd: Command): Command {
  return cmd
    .option(
      '--plain-http <registry>',
      'talk to this registry over plain HTTP (loopback always is)',
      collect,
      [],
    )
    .option('--ca <file>', 'extra CA certificates (PEM) for registries');
}

/**
 * registryOptions builds client options: credentials from `$DOCKER_CONFIG/config.json` (or
 * `~/.docker/config.json`); plain HTTP for the registries named, and for loopback ones unless a
 * CA is given (then loopback registries are spoken to over TLS, as a test or mirror may be).
 */
export async function registryOptions(o: RegistryFlags): Promise<RegistryClientOptions> {
  const dockerConfig = join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  const plain = new Set(o.plainHttp);
  return {
    credentials: new DockerConfigCredentials(dockerConfig, 30_000, process.env),
    plainHttp: (r) => plain.has(r) || (o.ca === undefined && isLoopbackHost(r)),
    ...(o.ca === undefined ? {} : { ca: await readFile(o.ca, 'utf8') }),
  };
}
