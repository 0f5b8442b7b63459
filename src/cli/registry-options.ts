/** Registry connection options shared by the commands that talk to registries. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  type CredentialProvider,
  type Credentials,
  DockerConfigCredentials,
  normalizeRegistry,
  type RegistryClientOptions,
} from '../oci/index.js';
import { type CredentialLookup, isLoopbackHost, mayHoldCredentials } from '../transport/index.js';
import { readFlagCertificates } from './flags.js';

export interface RegistryFlags {
  plainHttp: string[];
  https: string[];
  ca?: string;
}

const collect = (v: string, acc: string[]) => [...acc, v];

/** cacheDirOf is `--cache-dir`, else the default: `$XDG_CACHE_HOME/tufa` or `~/.cache/tufa`. */
export function cacheDirOf(o: { cacheDir?: string }): string {
  return o.cacheDir ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tufa');
}

/** withRegistryFlags adds --plain-http, --https and --ca. */
export function withRegistryFlags(cmd: Command): Command {
  return cmd
    .option(
      '--plain-http <registry>',
      'talk to this registry over plain HTTP (loopback ones are, unless --https); no credentials are sent to it unless it is a loopback one',
      collect,
      [],
    )
    .option('--https <registry>', 'talk to this loopback registry over HTTPS', collect, [])
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

/** A command line login: credentials for one server's origin (`https://host:port`). */
export interface Login {
  readonly origin: string;
  readonly credentials: Credentials;
}

/**
 * login reads `--username` and the password on stdin (one trailing newline dropped, as `docker
 * login --password-stdin` does) into the credentials for the server at `url` (its origin only).
 */
export async function login(o: LoginFlags, url: string): Promise<Login | undefined> {
  if (o.username === undefined && !o.passwordStdin) return undefined;
  if (o.username === undefined || !o.passwordStdin)
    throw new RangeError('--username and --password-stdin go together');
  if (!mayHoldCredentials(new URL(url)))
    throw new RangeError(`--password-stdin: ${url} is plain http: no password is sent there`);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (password === '') throw new RangeError('--password-stdin: no password on stdin');
  return { origin: new URL(url).origin, credentials: { username: o.username, password } };
}

/** Docker Hub's notary server, which shares Docker Hub's login and token service. */
const DOCKER_HUB_NOTARY = 'notary.docker.io';

/**
 * cliCredentials gives credentials by host from `$DOCKER_CONFIG/config.json` (or
 * `~/.docker/config.json`): the registries' credentials.
 */
export function cliCredentials(): CredentialProvider {
  const dockerConfig = join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  return new DockerConfigCredentials(dockerConfig, 30_000, process.env);
}

/**
 * notaryCredentials gives a notary server's credentials by origin: the command line login for
 * its one origin, else the Docker config's for the server's host (for notary.docker.io, Docker
 * Hub's, as Docker does for its own notary). The login never reaches a registry.
 */
export function notaryCredentials(given?: Login): CredentialLookup {
  const docker = cliCredentials();
  return async (origin) => {
    if (given !== undefined && origin.origin === given.origin) return given.credentials;
    const c = await docker.get(origin.host);
    return c ?? (origin.host === DOCKER_HUB_NOTARY ? docker.get('docker.io') : undefined);
  };
}

/**
 * registryOptions builds client options: {@link cliCredentials}; plain HTTP for the registries
 * named and for loopback ones not named by --https. The scheme never depends on --ca; when a CA
 * is given and a loopback registry is still spoken to over HTTP, `note` says so once, with why.
 */
export async function registryOptions(
  o: RegistryFlags,
  note?: (text: string) => void,
): Promise<RegistryClientOptions> {
  // the registries named in one spelling, the one the client asks about (`LOCALHOST:5000`, `[0:0::1]`)
  const hosts = (flag: string, list: readonly string[]) =>
    new Set(
      list.map((h) => {
        try {
          return normalizeRegistry(h);
        } catch (e) {
          throw new RangeError(`${flag} ${JSON.stringify(h)}: ${(e as Error).message}`);
        }
      }),
    );
  const plain = hosts('--plain-http', o.plainHttp);
  const https = hosts('--https', o.https ?? []);
  const noted = new Set<string>();
  return {
    credentials: cliCredentials(),
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
