/**
 * What a flag names (a file to read or create, a folder, a JSON value), read in one place: every
 * problem with it is a usage error (exit 2) naming the flag and the file, never a raw ENOENT.
 */
import { X509Certificate } from 'node:crypto';
import { lstat, readFile, stat, writeFile } from 'node:fs/promises';
import { parseJson } from '../core/index.js';

/** A usage error of the command line (exit 2, code `USAGE`). */
export class UsageError extends RangeError {}

/** Words for the system errors a user meets with a path they gave. */
const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a folder, not a file',
  ENOTDIR: 'a part of the path is not a folder',
  EEXIST: 'already exists (it is never overwritten)',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'name too long',
};

/** flagError is the usage error for `flag`'s value: `--key k.pem: no such file`. */
export function flagError(flag: string, value: string, what: unknown): UsageError {
  const e = what as { code?: string; message?: string };
  const reason =
    typeof what === 'string' ? what : ((e?.code && REASONS[e.code]) ?? e?.message ?? String(what));
  return new UsageError(`${flag} ${value}: ${reason}`);
}

/** readFlagFile reads the file a flag names. @throws {@link UsageError} */
export async function readFlagFile(flag: string, file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (e) {
    throw flagError(flag, file, e);
  }
}

/** readFlagText reads the UTF-8 file a flag names. @throws {@link UsageError} */
export async function readFlagText(flag: string, file: string): Promise<string> {
  return new TextDecoder().decode(await readFlagFile(flag, file));
}

/**
 * parseFlagFile reads the file a flag names and parses it with `parse`; what `parse` throws
 * becomes a usage error naming the flag and the file (a private key given for a public one says so).
 */
export async function parseFlagFile<T>(
  flag: string,
  file: string,
  parse: (bytes: Uint8Array) => T,
): Promise<T> {
  const bytes = await readFlagFile(flag, file);
  try {
    return parse(bytes);
  } catch (e) {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(new TextDecoder().decode(bytes))) {
      throw flagError(
        flag,
        file,
        'a private key, where a public one is expected (give NAME.pub.json)',
      );
    }
    throw flagError(flag, file, (e as Error).message.replace(`${file}: `, ''));
  }
}

/** parseFlagJson parses a flag's JSON value. @throws {@link UsageError} */
export function parseFlagJson(flag: string, text: string): unknown {
  try {
    return parseJson(text, { source: flag });
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message.replace(`${flag}: `, '')}`);
  }
}

/** createFlagFile creates the file a flag names, never overwriting one. @throws {@link UsageError} */
export async function createFlagFile(
  flag: string,
  file: string,
  data: string | Uint8Array,
  mode: number,
): Promise<void> {
  try {
    await writeFile(file, data, { mode, flag: 'wx' });
  } catch (e) {
    throw flagError(flag, file, e);
  }
}

/** checkFlagDir refuses a flag's folder that exists as something else. @throws {@link UsageError} */
export async function checkFlagDir(flag: string, dir: string): Promise<void> {
  const s = await stat(dir).catch((e: { code?: string }) => {
    if (e?.code === 'ENOENT') return undefined; // created when needed
    throw flagError(flag, dir, e);
  });
  if (s !== undefined && !s.isDirectory()) throw flagError(flag, dir, 'not a folder');
}

/** checkRegularFile refuses a flag's file that is not a regular file (a folder, a device). */
export async function checkRegularFile(flag: string, file: string): Promise<void> {
  const s = await lstat(file).catch((e) => {
    throw flagError(flag, file, e);
  });
  if (!s.isFile()) throw flagError(flag, file, 'not a regular file');
}

/** conflicting refuses flags given together that exclude each other. @throws {@link UsageError} */
export function conflicting(given: Record<string, unknown>, ...flags: string[]): void {
  const set = flags.filter((f) => given[camel(f)] !== undefined);
  if (set.length > 1) throw new UsageError(`${set.join(' and ')}: give only one of them`);
}

/** camel is commander's property name of a flag: `--signer-command` → `signerCommand`. */
function camel(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * readFlagCertificates reads a flag's PEM file of CA certificates: at least one, each parsing.
 * @throws {@link UsageError} naming the flag and the file
 */
export async function readFlagCertificates(flag: string, file: string): Promise<string> {
  const text = await readFlagText(flag, file);
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw flagError(flag, file, 'no PEM certificate in it');
  for (const [i, b] of blocks.entries()) {
    try {
      new X509Certificate(b);
    } catch (e) {
      throw flagError(flag, file, `certificate ${i + 1}: ${(e as Error).message}`);
    }
  }
  return text;
}

/** checkFlagPath refuses a flag's path that cannot be opened (a pipe like /dev/stdin passes). */
export async function checkFlagPath(flag: string, file: string): Promise<void> {
  const s = await stat(file).catch((e) => {
    throw flagError(flag, file, e);
  });
  if (s.isDirectory()) throw flagError(flag, file, REASONS.EISDIR as string);
}
