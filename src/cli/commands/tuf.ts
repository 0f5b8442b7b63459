/**
 * `tufa tuf …`: a generic TUF client speaking the conformance-suite protocol exactly:
 *
 *     --metadata-dir MD init TRUSTED_ROOT_FILE
 *
 * URL may be `oci://REGISTRY/REPOSITORY[:TAG]` (and TURL `oci://REGISTRY/REPOSITORY`): a TUF
 * repository stored in a registry, read with the credentials of the Docker config.
 *     --metadata-url URL --metadata-dir MD refresh
 *     --metadata-url URL --metadata-dir MD --target-name N [--target-name N2 …]
 *         --target-dir TD --target-base-url TURL download
 *
 * Options come before the subcommand, in any order. Exit status is 0 on success and 1 on any
 * failure, usage errors and crashes included.
 */
import { readFile } from 'node:fs/promises';
import { Command, CommanderError } from 'commander';
import { initMetadataDir, isOciUrl, RegistryFetcher, Updater } from '../../client/index.js';
import { ociBaseUrl, parseOciUrl, RegistryClient } from '../../oci/index.js';
import type { Output } from '../output.js';
import { registryOptions } from '../registry-options.js';

interface TufOptions {
  metadataDir?: string;
  metadataUrl?: string;
  targetName: string[];
  targetDir?: string;
  targetBaseUrl?: string;
}

function required<T>(v: T | undefined, flag: string): T {
  if (v === undefined) throw new Error(`${flag} is required`);
  return v;
}

async function refresh(o: TufOptions): Promise<{ updater: Updater; close: () => Promise<void> }> {
  let url = required(o.metadataUrl, '--metadata-url');
  let registry: RegistryClient | undefined;
  let targetBaseUrl = o.targetBaseUrl;
  if (isOciUrl(url)) {
    // a TUF repository in a registry (docker/attest's layout), with Docker's credentials
    url = ociBaseUrl(parseOciUrl(url));
    if (targetBaseUrl !== undefined && !targetBaseUrl.endsWith('/')) targetBaseUrl += '/';
    registry = new RegistryClient(await registryOptions({ plainHttp: [], https: [] }));
  }
  const updater = new Updater({
    metadataDir: required(o.metadataDir, '--metadata-dir'),
    metadataBaseUrl: url,
    ...(o.targetDir === undefined ? {} : { targetDir: o.targetDir }),
    ...(targetBaseUrl === undefined ? {} : { targetBaseUrl }),
    ...(registry === undefined
      ? {}
      : {
          fetcher: new RegistryFetcher(
            registry,
            targetBaseUrl === undefined ? {} : { targetBaseUrl },
          ),
        }),
  });
  const close = async () => {
    await updater.close();
    await registry?.close();
  };
  try {
    await updater.refresh();
  } catch (e) {
    await close();
    throw e;
  }
  return { updater, close };
}

/** runTufClient runs the protocol with `argv` (after the `tuf` word); returns 0 or 1. */
export async function runTufClient(argv: readonly string[], out: Output): Promise<number> {
  const program = new Command('tuf')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => out.line(s.trimEnd()),
      writeErr: (s) => out.error(s.trimEnd()),
    })
    .option('--metadata-dir <dir>', 'folder of the trusted metadata')
    .option(
      '--metadata-url <url>',
      'metadata URL prefix (ends with /), or oci://REGISTRY/REPOSITORY[:TAG]',
    )
    .option(
      '--target-name <name>',
      'target to download (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option('--target-dir <dir>', 'folder for downloaded targets')
    .option('--target-base-url <url>', 'targets URL prefix (ends with /)');
  program
    .description('generic TUF client (the conformance-suite protocol); options before the command')
    .helpOption('-h, --help', 'display help');
  program
    .command('init')
    .description('trust a root: copy it into --metadata-dir after it verifies against itself')
    .argument('<trusted-root-file>', 'the root.json obtained through a trusted channel')
    .action(async (rootFile: string) => {
      const o = program.opts<TufOptions>();
      await initMetadataDir(
        required(o.metadataDir, '--metadata-dir'),
        new Uint8Array(await readFile(rootFile)),
      );
    });
  program
    .command('refresh')
    .description('bring the metadata in --metadata-dir up to date from --metadata-url')
    .action(async () => {
      await (await refresh(program.opts<TufOptions>())).close();
    });
  program
    .command('download')
    .description(
      'refresh, then download each --target-name into --target-dir, verified against its signed length and hashes',
    )
    .action(async () => {
      const o = program.opts<TufOptions>();
      if (o.targetName.length === 0) throw new Error('--target-name is required');
      required(o.targetDir, '--target-dir');
      required(o.targetBaseUrl, '--target-base-url');
      const { updater, close } = await refresh(o);
      try {
        for (const name of o.targetName) {
          const info = await updater.getTargetInfo(name);
          if (info === undefined) throw new Error(`${name}: not a signed target`);
          if ((await updater.findCachedTarget(info)) === undefined)
            await updater.downloadTarget(info);
        }
      } finally {
        await close();
      }
    });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    const msg = (e as Error)?.message ?? String(e);
    const code = (e as { code?: string })?.code;
    // help asked for (--help) is not a failure; help shown for a usage error is
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    if (!code?.startsWith('commander.')) out.error(`tufa tuf: ${msg}`);
    return 1;
  }
}
