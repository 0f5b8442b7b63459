/**
 * The environment of the programs tufa starts (a signer command, a Docker credential helper):
 * only what such a program needs from the caller's, never TUFA_KEY_PASSPHRASE or a CI token.
 */
import type { ChildProcess } from 'node:child_process';

/** What every child program gets from the caller's environment (besides LC_*). */
const BASE_ENV = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'TERM',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
];

/** Never given to a child program, even when named. */
export const NEVER_CHILD_ENV = 'TUFA_KEY_PASSPHRASE';

/**
 * childEnvironment picks from `env` PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ,
 * TMPDIR, TERM, SSL_CERT_FILE, SSL_CERT_DIR, and the variables `pass` accepts; never
 * {@link NEVER_CHILD_ENV}.
 */
export function childEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  pass: (name: string) => boolean = () => false,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || name === NEVER_CHILD_ENV) continue;
    if (BASE_ENV.includes(name) || name.startsWith('LC_') || pass(name)) out[name] = value;
  }
  return out;
}

/**
 * killGroup stops a child started with `detached: true` and everything it started (its process
 * group: a command ignoring SIGTERM, or an agent it left holding our pipes), and closes its
 * pipes, so no wait on them can outlive a timeout.
 */
export function killGroup(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  child.stdout?.destroy();
  child.stderr?.destroy();
  child.stdin?.destroy();
}
