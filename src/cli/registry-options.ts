/** Registry connection options shared by the commands that talk to registries. */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  type CredentialProvider,
  type Credentials,
  DockerConfigCredentials,
  type RegistryClientOptions,
} from '../oci/index.js';
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

export interface LoginFlags {
  username?: string;
  passwordStdin: boolean;
}

/** withLoginFlags adds --username and --password-stdin (the login to a notary server). */
export function withLoginFlags(cmd: Command): Command {
  return cmd
    .option('--username <name>', 'user name at the notary server (with --password-stdin)')
    .option('--password-stdin', 'read the notary server password from stdin', false);
}

/**
 * login reads `--username` and the password on stdin (one trailing newline dropped, as `docker
 * login --password-stdin` does) into the credentials for the server at `url`.
 */
export async function login(
  o: LoginFlags,
  url: string,
): Promise<{ host: string; credentials: Credentials } | undefined> {
  if (o.username === undefined && !o.passwordStdin) return undefined;
  if (o.username === undefined || !o.passwordStdin)
    throw new RangeError('--username and --password-stdin go together');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (password === '') throw new RangeError('--password-stdin: no password on stdin');
  return { host: new URL(url).host, credentials: { username: o.username, password } };
}

/** Docker Hub's notary server, which shares Docker Hub's login and token service. */
const DOCKER_HUB_NOTARY = 'notary.docker.io';

/**
 * The CLI's credentials by host: the login given on the command line for its server only, else
 * the Docker config's (for notary.docker.io, Docker Hub's, as Docker does for its own notary).
 */
class CliCredentials implements CredentialProvider {
  constructor(
    private readonly docker: CredentialProvider,
    private readonly given?: { host: string; credentials: Credentials },
  ) {}

  async get(host: string): Promise<Credentials | undefined> {
    if (host === this.given?.host) return this.given.credentials;
    const c = await this.docker.get(host);
    return c ?? (host === DOCKER_HUB_NOTARY ? this.docker.get('docker.io') : undefined);
  }
}

/**
 * cliCredentials gives credentials by host: from `$DOCKER_CONFIG/config.json` (or
 * `~/.docker/config.json`), and a command line login for its one server.
 */
export function cliCredentials(given?: {
  host: string;
  credentials: Credentials;
}): CredentialProvider {
  const dockerConfig = join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  return new CliCredentials(new DockerConfigCredentials(dockerConfig, 30_000, process.env), given);
}

/**
 * registryOptions builds client options: {@link cliCredentials}; plain HTTP for the registries
 * named, and for loopback ones unless a CA is given (then loopback registries are spoken to over
 * TLS, as a test or mirror may be).
 */
export async function registryOptions(
  o: RegistryFlags,
  given?: { host: string; credentials: Credentials },
): Promise<RegistryClientOptions> {
  const plain = new Set(o.plainHttp);
  return {
    credentials: cliCredentials(given),
    plainHttp: (r) => plain.has(r) || (o.ca === undefined && isLoopbackHost(r)),
    ...(o.ca === undefined ? {} : { ca: await readFile(o.ca, 'utf8') }),
  };
}
