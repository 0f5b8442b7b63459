/**
 * Registry credentials from a Docker config file (`~/.docker/config.json`): `auths` entries,
 * a `credsStore` for all registries, and per-registry `credHelpers` (programs named
 * `docker-credential-<name>`, asked with `get`). Registries match exactly by host (Docker Hub's
 * historical key `https://index.docker.io/v1/` is Docker Hub); a credential never goes to a
 * registry it was not stored for. Nothing here logs a secret. A helper gets only the
 * environment it needs ({@link helperEnvironment}), never TUFA_KEY_PASSPHRASE.
 */
import { readFile } from 'node:fs/promises';
import { childEnvironment, killGroup } from '../internal/index.js';
import { OciError } from './errors.js';

/** Credentials for one registry. */
export interface Credentials {
  readonly username?: string;
  readonly password?: string;
  /** An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the token endpoint. */
  readonly identityToken?: string;
}

/** Gives the credentials for a registry host (`host[:port]`), if any. */
export interface CredentialProvider {
  get(registry: string): Promise<Credentials | undefined>;
}

const DOCKER_HUB_KEYS = [
  'https://index.docker.io/v1/',
  'index.docker.io',
  'registry-1.docker.io',
  'docker.io',
];

/** hostOf reduces an `auths` key (`https://host:port/v1/`, `host`) to `host[:port]`. */
function hostOf(key: string): string {
  const noScheme = key.replace(/^[a-z]+:\/\//i, '');
  return noScheme.split('/')[0]?.toLowerCase() ?? '';
}

function isDockerHub(registry: string): boolean {
  return (
    registry === 'docker.io' ||
    registry === 'index.docker.io' ||
    registry === 'registry-1.docker.io'
  );
}

/**
 * What a credential helper gets of the caller's environment besides the base (PATH, HOME, …,
 * see childEnvironment): where Docker's and desktop keyrings live (DOCKER_CONFIG, XDG_*,
 * DBUS_SESSION_BUS_ADDRESS, DISPLAY), pass/gpg's, proxies, and the cloud SDK settings the
 * ecr-login, gcr and acr helpers read (AWS_*, GOOGLE_*, CLOUDSDK_*, AZURE_*). Never
 * TUFA_KEY_PASSPHRASE or other TUFA_* variables, nor CI tokens.
 */
function helperEnvironment(
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  return childEnvironment(
    env,
    (name) =>
      /^(?:DOCKER_CONFIG|DBUS_SESSION_BUS_ADDRESS|DISPLAY|WAYLAND_DISPLAY|GNUPGHOME|GPG_AGENT_INFO|PASSWORD_STORE_DIR|(?:HTTPS?|NO)_PROXY|(?:https?|no)_proxy)$/.test(
        name,
      ) || /^(?:XDG_|AWS_|GOOGLE_|CLOUDSDK_|AZURE_)/.test(name),
  );
}

/** Static credentials for one registry (e.g. from flags or the environment). */
export class StaticCredentials implements CredentialProvider {
  constructor(private readonly byRegistry: ReadonlyMap<string, Credentials>) {}

  async get(registry: string): Promise<Credentials | undefined> {
    return this.byRegistry.get(registry);
  }
}

interface DockerConfig {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string }
  >;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** Credentials from a Docker config file. */
export class DockerConfigCredentials implements CredentialProvider {
  private config?: Promise<DockerConfig | undefined>;

  /**
   * @param path - the config file (the CLI passes `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`)
   * @param env - the environment credential helpers are started from (the CLI passes its own);
   *   they get only what they need of it, never TUFA_* variables
   */
  constructor(
    readonly path: string,
    private readonly helperTimeoutMs = 30_000,
    private readonly env: Readonly<Record<string, string | undefined>> = {},
  ) {}

  private load(): Promise<DockerConfig | undefined> {
    this.config ??= readFile(this.path, 'utf8').then(
      (text) => {
        try {
          return JSON.parse(text) as DockerConfig;
        } catch (cause) {
          throw new OciError('UNAUTHORIZED', `${this.path}: not valid JSON`, { cause });
        }
      },
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw new OciError('UNAUTHORIZED', `${this.path}: ${e.message}`, { cause: e });
      },
    );
    return this.config;
  }

  async get(registry: string): Promise<Credentials | undefined> {
    const config = await this.load();
    if (config === undefined) return undefined;
    const keys = isDockerHub(registry) ? DOCKER_HUB_KEYS : [registry];
    for (const [key, helper] of Object.entries(config.credHelpers ?? {})) {
      if (keys.some((k) => hostOf(k) === hostOf(key))) return this.fromHelper(helper, registry);
    }
    for (const [key, entry] of Object.entries(config.auths ?? {})) {
      if (!keys.some((k) => hostOf(k) === hostOf(key))) continue;
      if (entry.identitytoken) return { identityToken: entry.identitytoken };
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        if (i < 0)
          throw new OciError(
            'UNAUTHORIZED',
            `${this.path}: the auth entry for ${registry} is not user:password`,
          );
        return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
      }
      if (entry.username !== undefined)
        return { username: entry.username, password: entry.password ?? '' };
    }
    if (config.credsStore) return this.fromHelper(config.credsStore, registry);
    return undefined;
  }

  /** fromHelper runs `docker-credential-<helper> get` with the server URL on stdin. */
  private fromHelper(helper: string, registry: string): Promise<Credentials | undefined> {
    if (!/^[A-Za-z0-9._-]+$/.test(helper)) {
      return Promise.reject(
        new OciError(
          'UNAUTHORIZED',
          `credential helper name ${JSON.stringify(helper)} is not valid`,
        ),
      );
    }
    const server = isDockerHub(registry) ? 'https://index.docker.io/v1/' : registry;
    // child_process is loaded only when a credential helper is configured
    return import('node:child_process').then(({ spawn }) => this.runHelper(spawn, helper, server));
  }

  private runHelper(
    spawn: typeof import('node:child_process').spawn,
    helper: string,
    server: string,
  ): Promise<Credentials | undefined> {
    const name = `docker-credential-${helper}`;
    return new Promise((resolve, reject) => {
      // its own process group (detached), so the timeout kills whatever it started too: a
      // helper ignoring SIGTERM, or a child (agent, pinentry) holding its stdout open, cannot
      // keep us waiting; we settle on its exit with its stdout ended, or on our own timer
      const child = spawn(name, ['get'], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: helperEnvironment(this.env),
        detached: true,
      });
      const out: Buffer[] = [];
      let exitCode: number | null | undefined;
      let ended = false;
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const fail = (why: string) =>
        settle(() => reject(new OciError('UNAUTHORIZED', `credential helper ${name} ${why}`)));
      const timer = setTimeout(() => {
        killGroup(child);
        fail(`gave no answer within ${this.helperTimeoutMs} ms (killed)`);
      }, this.helperTimeoutMs);
      const done = () => {
        if (exitCode === undefined || !ended) return;
        const text = Buffer.concat(out).toString('utf8');
        if (exitCode !== 0) {
          // "credentials not found" is not an error: anonymous access may still work
          if (/not found/i.test(text)) settle(() => resolve(undefined));
          else fail(`exited with ${exitCode}`);
          return;
        }
        try {
          const r = JSON.parse(text) as { Username?: string; Secret?: string };
          settle(() =>
            resolve(
              r.Username === '<token>'
                ? { identityToken: r.Secret ?? '' }
                : { username: r.Username ?? '', password: r.Secret ?? '' },
            ),
          );
        } catch {
          fail('printed no JSON');
        }
      };
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stdout.on('end', () => {
        ended = true;
        done();
      });
      child.stdout.on('error', () => undefined);
      child.stderr.on('error', () => undefined);
      child.stderr.resume();
      child.on('error', (e) => fail(`could not run: ${e.message}`));
      child.on('exit', (code) => {
        exitCode = code;
        done();
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(server);
    });
  }
}
