/**
 * `tufa repo …`: maintain a TUF repository from CI or a release engineer's machine. Keys come as
 * files (private: PKCS#8 PEM, passphrase from $TUFA_KEY_PASSPHRASE; public: TUF JSON) or as an
 * external signer command. Nothing private is ever printed.
 */
import { lstat, readdir } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import type { Command } from 'commander';
import type { JsonValue } from '../../core/index.js';
import {
  parseManifest,
  parseOciRepository,
  parseOciUrl,
  pushTufRepository,
  Reference,
  RegistryClient,
} from '../../oci/index.js';
import {
  type BatchTarget,
  DEFAULT_EXPIRY_DAYS,
  ExternalCommandSigner,
  hashesOf,
  parsePublicKeyFile,
  parseTargetLines,
  publishTree,
  publishWorkspace,
  repositoryStatus,
  type Signer,
  signerEnvironment,
  type TargetEntry,
  type TopRole,
  Workspace,
} from '../../repository/index.js';
import {
  conflicting,
  flagError,
  parseFlagFile,
  parseFlagJson,
  readFlagFile,
  readFlagText,
  UsageError,
} from '../flags.js';
import type { Output } from '../output.js';
import { type RegistryFlags, registryOptions, withRegistryFlags } from '../registry-options.js';
import { INSECURE_KEY_FLAG, signerFromKeyFile } from './key.js';

const TOP: readonly TopRole[] = ['root', 'targets', 'snapshot', 'timestamp'];
const collect = (v: string, acc: string[]) => [...acc, v];
const SIGNER_ENV_FLAG = '--signer-env <name>';
const SIGNER_ENV_HELP =
  'a variable the signer command gets besides PATH, HOME, LANG… (repeatable; NAME or PREFIX_*; never TUFA_KEY_PASSPHRASE)';

async function publicKey(flag: string, file: string) {
  return parseFlagFile(flag, file, (bytes) => parsePublicKeyFile(bytes, file));
}

async function signerFrom(
  o: {
    key?: string;
    signerCommand?: string;
    publicKey?: string;
    signerEnv?: string[];
    insecureKeyPermissions?: boolean;
  },
  out: Output,
): Promise<Signer | undefined> {
  conflicting(o, '--key', '--signer-command');
  if (o.signerCommand !== undefined) {
    if (o.publicKey === undefined) throw new UsageError('--signer-command needs --public-key');
    // The command gets a minimal environment plus what --signer-env names, never the passphrase.
    const env = signerEnvironment(process.env, o.signerEnv ?? []);
    const key = await publicKey('--public-key', o.publicKey);
    return new ExternalCommandSigner(o.signerCommand, key, 60_000, env);
  }
  if ((o.signerEnv ?? []).length > 0) throw new UsageError('--signer-env needs --signer-command');
  if (o.publicKey !== undefined) throw new UsageError('--public-key needs --signer-command');
  if (o.key === undefined) return undefined;
  return signerFromKeyFile('--key', o.key, o.insecureKeyPermissions === true, out);
}

function roleNumber(spec: string, what: string): [TopRole, number] {
  const [role, n] = spec.split('=');
  if (!(TOP as readonly string[]).includes(role ?? '') || !/^\d+$/.test(n ?? '')) {
    throw new RangeError(
      `${what}: expected ROLE=N with ROLE one of ${TOP.join(', ')}, got ${spec}`,
    );
  }
  return [role as TopRole, Number(n)];
}

/** summary names the roles a batch edited, with how many targets each got (the first ten). */
function summary(roles: ReadonlyMap<string, number>): string {
  const list = [...roles].map(([r, n]) => `${r} ${n}`);
  return `${list.slice(0, 10).join(', ')}${list.length > 10 ? `, … (${list.length} roles)` : ''}`;
}

/**
 * filesOf lists a command-line file as `[target path, file]`: a file as its name, a folder as
 * every regular file under it, by its path relative to the folder. A symbolic link or other
 * special file is refused (it could list bytes from outside the folder).
 */
async function filesOf(arg: string): Promise<Array<[string, string]>> {
  const st = await lstat(arg).catch((e: unknown) => {
    throw flagError('add-targets', arg, e);
  });
  if (st.isFile()) return [[basename(arg), arg]];
  if (!st.isDirectory()) throw new UsageError(`add-targets ${arg}: not a regular file or folder`);
  const out: Array<[string, string]> = [];
  for (const e of await readdir(arg, { recursive: true, withFileTypes: true })) {
    const file = join(e.parentPath, e.name);
    if (e.isDirectory()) continue;
    if (!e.isFile())
      throw new UsageError(`add-targets ${file}: not a regular file (a symbolic link?): refused`);
    out.push([relative(arg, file).split(sep).join('/'), file]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** imageEntry is the target entry of an image manifest's bytes (`ref`'s digest, when pinned, checked). */
function imageEntry(
  ref: Reference,
  bytes: Uint8Array,
): TargetEntry & { hashes: { sha256: string } } {
  const manifest = parseManifest(bytes);
  const hashes = hashesOf(bytes) as { sha256: string };
  if (ref.digest !== undefined && ref.digest !== `sha256:${hashes.sha256}`)
    throw new RangeError(`${ref.original}: the manifest's digest is sha256:${hashes.sha256}`);
  return { length: bytes.length, hashes, custom: { oci: { mediaType: manifest.mediaType } } };
}

/** What every repo subcommand needs: its command group, the output and the workspace. */
interface RepoContext {
  readonly repo: Command;
  readonly out: Output;
  /** ws opens the workspace named by --repo. */
  ws(): Promise<Workspace>;
  /** change runs one command's edits as a unit: locked, and nothing written when it fails. */
  change<T>(fn: (w: Workspace) => Promise<T>): Promise<T>;
}

export function addRepoCommands(program: Command, out: Output): void {
  const repo = program
    .command('repo')
    .description('maintain a TUF repository (workspace folder: --repo, default .)')
    .option('--repo <dir>', 'repository workspace folder', '.');
  const ws = async () => Workspace.open(repo.opts<{ repo: string }>().repo, Date.now());
  const ctx: RepoContext = {
    repo,
    out,
    ws,
    change: async (fn) => {
      const w = await ws();
      return w.update(() => fn(w));
    },
  };
  addInitCommand(ctx);
  addTargetCommands(ctx);
  addDelegateCommand(ctx);
  addSigningCommands(ctx);
  addLifecycleCommands(ctx);
  addStatusPublishCommands(ctx);
}

/** The repo subcommands init: version 1 of every top-level role. */
function addInitCommand({ repo, out }: RepoContext): void {
  repo
    .command('init')
    .description('create a repository: version 1 of every top-level role, unsigned')
    .option('--root-key <pub>', 'root public key file (repeatable)', collect, [])
    .option('--targets-key <pub>', 'targets public key file (repeatable)', collect, [])
    .option('--snapshot-key <pub>', 'snapshot public key file (repeatable)', collect, [])
    .option('--timestamp-key <pub>', 'timestamp public key file (repeatable)', collect, [])
    .option('--threshold <role=n>', 'threshold of a role (repeatable; default 1)', collect, [])
    .option('--no-consistent-snapshot', 'publish without version/hash-prefixed file names')
    .action(async (o: Record<string, string[]> & { consistentSnapshot: boolean }) => {
      const keys = {} as Record<TopRole, Awaited<ReturnType<typeof publicKey>>[]>;
      for (const role of TOP) {
        const files = o[`${role}Key`] ?? [];
        if (files.length === 0) throw new RangeError(`--${role}-key is required`);
        keys[role] = await Promise.all(files.map((f) => publicKey(`--${role}-key`, f)));
      }
      const thresholds = Object.fromEntries(
        (o.threshold ?? []).map((t) => roleNumber(t, '--threshold')),
      );
      const dir = repo.opts<{ repo: string }>().repo;
      await Workspace.init(dir, {
        keys,
        thresholds,
        consistentSnapshot: o.consistentSnapshot,
        now: Date.now(),
      });
      out.line(`initialised ${dir}: sign root, targets, snapshot and timestamp, then publish`);
    });
}

/** The repo subcommands add-target, add-image, remove-target. */
function addTargetCommands({ repo, out, ws, change }: RepoContext): void {
  repo
    .command('add-target')
    .description('list a file as a target (in the role its path is delegated to, unless --role)')
    .argument('<file>')
    .option('--path <path>', 'target path (default: the file name)')
    .option('--role <role>', 'role to list it in')
    .option('--custom <json>', 'custom metadata (JSON)')
    .option('--replace', 'list other bytes under a path already listed', false)
    .action(
      async (
        file: string,
        o: { path?: string; role?: string; custom?: string; replace: boolean },
      ) => {
        const custom =
          o.custom === undefined ? undefined : (parseFlagJson('--custom', o.custom) as JsonValue);
        const content = await readFlagFile('add-target', file);
        const path = o.path ?? basename(file);
        const entry = { length: content.length, hashes: hashesOf(content), custom };
        const roles = await change((w) =>
          w.addTargets([{ path, entry, content, role: o.role }], { replace: o.replace }),
        );
        out.line(`${path}: ${content.length} bytes, listed in ${[...roles.keys()][0]}`);
      },
    );

  repo
    .command('add-targets')
    .description(
      'list many targets as one change (each role touched gets one new version): files, folders (every file under them, paths relative to the folder), or a JSON Lines manifest',
    )
    .argument('[files...]', 'files and folders')
    .option(
      '--manifest <file>',
      'JSON Lines, one {"path","length","hashes","custom"} a line: targets not on this machine (repeatable)',
      collect,
      [],
    )
    .option('--prefix <path>', 'put the files and folders given under this target path')
    .option('--role <role>', 'role to list them in')
    .option('--replace', 'list other bytes under paths already listed', false)
    .action(
      async (
        files: string[],
        o: { manifest: string[]; prefix?: string; role?: string; replace: boolean },
      ) => {
        if (files.length === 0 && o.manifest.length === 0)
          throw new UsageError('add-targets: give files, folders or --manifest');
        const items: BatchTarget[] = [];
        for (const m of o.manifest)
          items.push(...parseTargetLines(await readFlagText('--manifest', m), m));
        for (const f of files) {
          for (const [path, file] of await filesOf(f)) {
            const content = await readFlagFile('add-targets', file);
            items.push({
              path: o.prefix === undefined ? path : `${o.prefix.replace(/\/+$/, '')}/${path}`,
              entry: { length: content.length, hashes: hashesOf(content) },
              content,
              source: file,
            });
          }
        }
        if (o.role !== undefined) for (const it of items) it.role = o.role;
        const roles = await change((w) => w.addTargets(items, { replace: o.replace }));
        out.line(`${items.length} targets listed: ${summary(roles)}`);
      },
    );

  withRegistryFlags(
    repo
      .command('add-image')
      .description(
        'list an image manifest as the targets <registry>/<repository>:<tag> and <registry>/<repository>@sha256:<digest> (fetched from the registry unless --manifest)',
      )
      .argument('<image>')
      .option(
        '--manifest <file>',
        'the manifest (or index) bytes exactly as the registry serves them',
      )
      .option('--role <role>', 'role to list it in'),
  ).action(async (image: string, o: RegistryFlags & { manifest?: string; role?: string }) => {
    const ref = Reference.parse(image);
    if (ref.tagged === undefined) throw new RangeError(`${image}: a tag is required`);
    let bytes: Uint8Array;
    if (o.manifest !== undefined) {
      bytes = await readFlagFile('--manifest', o.manifest);
    } else {
      const client = new RegistryClient(await registryOptions(o, (t) => out.error(t)));
      try {
        bytes = (await client.getManifest(ref, ref.digest ?? (ref.tag as string))).bytes;
      } finally {
        await client.close();
      }
    }
    const entry = imageEntry(ref, bytes);
    // also listed as `registry/repo@sha256:…`, so digest references verify
    const role = await change((w) => w.addImage(ref.tagged as string, entry, o.role));
    out.line(`${ref.tagged}: ${ref.pinned(`sha256:${entry.hashes.sha256}`)}, listed in ${role}`);
  });

  withRegistryFlags(
    repo
      .command('add-images')
      .description(
        'list many image tags as one change (each also as its digest path, as add-image does), manifests fetched with bounded concurrency',
      )
      .argument('[images...]', 'image references with a tag')
      .option(
        '--all-tags <registry/repository>',
        'every tag the registry lists (repeatable)',
        collect,
        [],
      )
      .option('--concurrency <n>', 'manifests fetched at once', '8')
      .option('--role <role>', 'role to list them in'),
  ).action(
    async (
      images: string[],
      o: RegistryFlags & { allTags: string[]; concurrency: string; role?: string },
    ) => {
      const concurrency = Number(o.concurrency);
      if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64)
        throw new UsageError(`--concurrency ${o.concurrency}: expected 1 to 64`);
      const refs = images.map((i) => {
        const ref = Reference.parse(i);
        if (ref.tag === undefined || ref.digest !== undefined)
          throw new UsageError(`${i}: a tag (and no digest) is required`);
        return ref;
      });
      if (refs.length === 0 && o.allTags.length === 0)
        throw new UsageError('add-images: give image tags or --all-tags');
      const client = new RegistryClient(await registryOptions(o, (t) => out.error(t)));
      try {
        for (const r of o.allTags) {
          const repo = Reference.parse(r);
          if (r.includes('@') || r.lastIndexOf(':') > r.lastIndexOf('/'))
            throw new UsageError(`--all-tags ${r}: a repository, without tag or digest`);
          for (const tag of await client.listTags(repo))
            refs.push(Reference.parse(`${repo.name}:${tag}`));
        }
        // fetched `concurrency` at a time; listed in the order given, as one change
        const entries: Array<ReturnType<typeof imageEntry>> = new Array(refs.length);
        let next = 0;
        const worker = async () => {
          for (let i = next++; i < refs.length; i = next++) {
            const ref = refs[i] as Reference;
            entries[i] = imageEntry(ref, (await client.getManifest(ref, ref.tag as string)).bytes);
          }
        };
        await Promise.all(Array.from({ length: Math.min(concurrency, refs.length) }, worker));
        const roles = await change(async (w) => {
          const count = new Map<string, number>();
          for (const [i, ref] of refs.entries()) {
            const role = await w.addImage(ref.tagged as string, entries[i] as TargetEntry, o.role);
            count.set(role, (count.get(role) ?? 0) + 1);
          }
          return count;
        });
        out.line(`${refs.length} images listed: ${summary(roles)}`);
      } finally {
        await client.close();
      }
    },
  );

  repo
    .command('remove-target')
    .description('stop listing a target (a new version of the role that lists it, to be signed)')
    .argument('<path>', 'the target path as listed')
    .option('--role <role>', 'role that lists it')
    .action(async (path: string, o: { role?: string }) => {
      const w = await ws();
      const role = await change((x) => x.removeTarget(path, o.role));
      out.line(`${path}: removed from ${role}`);
      // another role further on the walk may list it too: clients now get that entry
      const next = (await w.walkTarget(path)).listedBy[0];
      if (next !== undefined)
        out.line(`note: ${next} lists ${path} too: clients now get its entry`);
    });
}

/** The repo subcommands delegate. */
function addDelegateCommand({ repo, out, change }: RepoContext): void {
  repo
    .command('delegate')
    .description('delegate paths to a new role (or succinct hashed bins)')
    .requiredOption(
      '--to <name>',
      'delegated role name (with --succinct-bits: the bin name prefix)',
    )
    .option('--from <role>', 'delegating role', 'targets')
    .option('--key <pub>', 'public key file of the delegated role (repeatable)', collect, [])
    .option('--threshold <n>', 'signatures required', '1')
    .option('--paths <pattern>', 'path pattern (repeatable)', collect, [])
    .option('--path-hash-prefixes <hex>', 'hash prefix (repeatable)', collect, [])
    .option('--succinct-bits <n>', 'delegate to 2^n succinct hashed bins')
    .option('--terminating', 'stop the search at this role for its paths', false)
    .action(
      async (o: {
        to: string;
        from: string;
        key: string[];
        threshold: string;
        paths: string[];
        pathHashPrefixes: string[];
        succinctBits?: string;
        terminating: boolean;
      }) => {
        const keys = await Promise.all(o.key.map((f) => publicKey('--key', f)));
        const created = await change((w) =>
          w.delegate({
            from: o.from,
            name: o.to,
            keys,
            threshold: Number(o.threshold),
            terminating: o.terminating,
            ...(o.paths.length > 0 ? { paths: o.paths } : {}),
            ...(o.pathHashPrefixes.length > 0 ? { pathHashPrefixes: o.pathHashPrefixes } : {}),
            ...(o.succinctBits === undefined ? {} : { succinctBits: Number(o.succinctBits) }),
          }),
        );
        out.line(
          `${o.from} delegates to ${created.length === 1 ? created[0] : `${created.length} bins ${created[0]}…${created.at(-1)}`}`,
        );
      },
    );
}

/** The repo subcommands sign, snapshot, timestamp. */
function addSigningCommands({ repo, out, ws }: RepoContext): void {
  repo
    .command('sign')
    .description('add one signature to roles (idempotent per key), stored as one change')
    .option('--role <role>', 'role to sign (repeatable)', collect, [])
    .option(
      '--all',
      'every role the key may sign (those it signed already are left as they are)',
      false,
    )
    .option('--key <file>', 'private key (PKCS#8 PEM; passphrase from $TUFA_KEY_PASSPHRASE)')
    .option(
      '--signer-command <cmd>',
      'external signer: gets the bytes on stdin, prints the signature',
    )
    .option('--public-key <file>', 'public key of the external signer')
    .option(SIGNER_ENV_FLAG, SIGNER_ENV_HELP, collect, [])
    .option(INSECURE_KEY_FLAG, 'use a key file that group or others may read', false)
    .action(
      async (o: {
        role: string[];
        all: boolean;
        key?: string;
        signerCommand?: string;
        publicKey?: string;
        signerEnv: string[];
        insecureKeyPermissions: boolean;
      }) => {
        if (o.role.length > 0 === o.all) throw new UsageError('give --role (repeatable) or --all');
        const signer = await signerFrom(o, out);
        if (signer === undefined) throw new RangeError('--key or --signer-command is required');
        const w = await ws();
        const roles = o.all ? await w.rolesSignableBy(signer.keyid) : o.role;
        const added = await w.signRoles(roles, signer);
        const fresh = [...added].filter(([, a]) => a).map(([r]) => r);
        if (added.size === 1)
          out.line(
            `${roles[0]}: ${fresh.length > 0 ? 'signed' : 'already signed'} by ${signer.keyid}`,
          );
        else
          out.line(
            `${fresh.length} of ${added.size} roles signed by ${signer.keyid}${fresh.length > 0 ? `: ${fresh.slice(0, 10).join(', ')}${fresh.length > 10 ? ', …' : ''}` : ''}`,
          );
      },
    );

  for (const role of ['snapshot', 'timestamp'] as const) {
    repo
      .command(role)
      .description(
        role === 'snapshot'
          ? 'point snapshot at the current targets roles (new version only when they changed, or --force)'
          : 'point timestamp at the current snapshot, new version and expiry (for a scheduled job)',
      )
      .option('--key <file>', `${role} private key: sign the result`)
      .option('--signer-command <cmd>', 'external signer')
      .option('--public-key <file>', 'public key of the external signer')
      .option(SIGNER_ENV_FLAG, SIGNER_ENV_HELP, collect, [])
      .option(INSECURE_KEY_FLAG, 'use a key file that group or others may read', false)
      .option('--force', 'new version even if nothing changed', false)
      .action(
        async (o: {
          key?: string;
          signerCommand?: string;
          publicKey?: string;
          signerEnv: string[];
          insecureKeyPermissions: boolean;
          force: boolean;
        }) => {
          // the key is read (and its passphrase checked) before anything changes
          const signer = await signerFrom(o, out);
          const w = await ws();
          const changed = await w.update(async () => {
            const c =
              role === 'snapshot'
                ? await w.refreshSnapshotMeta(o.force)
                : await w.refreshTimestampMeta(true);
            if (signer !== undefined) await w.sign(role, signer);
            return c;
          });
          const h = (await w.verification(role))[0];
          out.line(
            `${role}: ${changed ? 'new version' : 'unchanged'}; ${h?.signed.length ?? 0}/${h?.threshold ?? '?'} signatures`,
          );
        },
      );
  }
}

/** The repo subcommands renew, rotate-root. */
function addLifecycleCommands({ repo, out, ws, change }: RepoContext): void {
  repo
    .command('renew')
    .description('give a role a new expiry (a new version, to be signed again)')
    .requiredOption('--role <role>', 'role to renew')
    .option('--days <n>', "days from now (default: the role type's usual lifetime)")
    .action(async (o: { role: string; days?: string }) => {
      const w = await ws();
      const days =
        o.days === undefined
          ? DEFAULT_EXPIRY_DAYS[
              Workspace.typeOf(o.role) === 'targets' ? 'targets' : (o.role as TopRole)
            ]
          : Number(o.days);
      if (!Number.isFinite(days) || days <= 0)
        throw new RangeError(`--days: expected a positive number, got ${o.days}`);
      await w.update(() => w.setExpiry(o.role, days));
      const h = await w.roleHeader(o.role);
      out.line(`${o.role}: v${h.version} expires ${h.expires}; sign it again`);
    });

  repo
    .command('rotate-root')
    .description('start a new root version with changed keys or thresholds')
    .option('--add-key <role=pub>', 'add a key to a role (repeatable)', collect, [])
    .option('--remove-key <role=keyid>', 'remove a key from a role (repeatable)', collect, [])
    .option('--threshold <role=n>', 'set a threshold (repeatable)', collect, [])
    .action(async (o: { addKey: string[]; removeKey: string[]; threshold: string[] }) => {
      const split = (s: string, what: string): [TopRole, string] => {
        const i = s.indexOf('=');
        const role = s.slice(0, i);
        if (i < 0 || !(TOP as readonly string[]).includes(role))
          throw new RangeError(`${what}: expected ROLE=VALUE, got ${s}`);
        return [role as TopRole, s.slice(i + 1)];
      };
      const add = await Promise.all(
        o.addKey.map(async (s) => {
          const [role, file] = split(s, '--add-key');
          return { role, key: await publicKey('--add-key', file) };
        }),
      );
      const remove = o.removeKey.map((s) => {
        const [role, keyid] = split(s, '--remove-key');
        return { role, keyid };
      });
      const thresholds = Object.fromEntries(o.threshold.map((t) => roleNumber(t, '--threshold')));
      const v = await change((w) => w.rotateRoot({ add, remove, thresholds }));
      out.line(
        `root v${v} started: sign it with a threshold of the old root keys and of the new ones`,
      );
    });
}

/** The repo subcommands status, publish. */
function addStatusPublishCommands({ repo, out, ws, change }: RepoContext): void {
  repo
    .command('status')
    .description('signatures missing, expiries, stale meta')
    .option('--json', 'machine-readable output', false)
    .action(async (o: { json: boolean }) => {
      const s = await repositoryStatus(await ws());
      if (o.json) {
        out.json(s, 2);
        return;
      }
      for (const r of s.roles) {
        const sigs = r.thresholds
          .map(
            (t) =>
              `${t.signed.length}/${t.threshold}${r.thresholds.length > 1 ? ` (${t.what})` : ''}`,
          )
          .join(', ');
        const flag = r.expired ? ' EXPIRED' : r.expiresSoon ? ' expires soon' : '';
        out.line(
          `${r.role.padEnd(16)} v${String(r.version).padEnd(4)} signatures ${sigs.padEnd(10)} expires ${r.expires}${flag}`,
        );
      }
      out.line(s.ready ? 'ready to publish' : `not ready:\n  ${s.problems.join('\n  ')}`);
    });

  withRegistryFlags(
    repo
      .command('publish')
      .description(
        'verify as a client would, then write the static tree, or push it to a registry (timestamp.json last)',
      )
      .requiredOption(
        '--to <dir|oci://registry/repo[:tag]>',
        'output folder (served as the metadata and targets base), or a registry repository for the metadata image',
      )
      .option(
        '--targets-to <oci://registry/repo>',
        'with --to oci://: the registry repository for target files',
      ),
  ).action(async (o: RegistryFlags & { to: string; targetsTo?: string }) => {
    if (!o.to.startsWith('oci://')) {
      if (o.targetsTo !== undefined) throw new RangeError('--targets-to needs --to oci://…');
      // under the workspace lock: no change lands halfway through the reads
      const r = await change((w) => publishWorkspace(w, o.to));
      out.line(`published ${r.files.length} files (${r.targets} targets) to ${o.to}`);
      return;
    }
    const metadata = parseOciUrl(o.to);
    const targets = o.targetsTo === undefined ? undefined : parseOciRepository(o.targetsTo);
    const client = new RegistryClient(await registryOptions(o));
    try {
      const { pushed, targets: n } = await change(async (w) => {
        const tree = await publishTree(w);
        return { pushed: await pushTufRepository(client, tree.files, metadata, targets), ...tree };
      });
      out.line(`pushed ${pushed.length} images (${n} targets); the metadata image last:`);
      for (const p of pushed) out.line(`  ${p}`);
    } finally {
      await client.close();
    }
  });
}
