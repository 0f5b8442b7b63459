/** `tufa verify` and `tufa pull`: verify before pull, under a trust policy. */
import type { Command } from 'commander';
import { type Platform, parsePlatform, RegistryClient } from '../../oci/index.js';
import { ImageVerifier, TrustPolicy } from '../../verify/index.js';
import { EXIT, errorCode, exitCodeFor } from '../exit.js';
import { checkFlagDir, checkFlagPath } from '../flags.js';
import { ImageArgs, readTrustFile } from '../images.js';
import type { Output } from '../output.js';
import { blobProgress } from '../progress.js';
import {
  cacheDirOf,
  notaryCredentials,
  type RegistryFlags,
  registryOptions,
  withRegistryFlags,
} from '../registry-options.js';

interface CommonOptions extends RegistryFlags {
  policy: string;
  cacheDir?: string;
  platform?: string;
  json: boolean;
}

function withCommonOptions(cmd: Command): Command {
  return withRegistryFlags(cmd)
    .option('--policy <file>', 'trust policy (JSON)', process.env.TUFA_POLICY ?? 'tufa-policy.json')
    .option(
      '--cache-dir <dir>',
      'TUF metadata cache (default: $XDG_CACHE_HOME/tufa or ~/.cache/tufa)',
    )
    .option(
      '--platform <os/arch>',
      'platform of a multi-platform image (pull default: linux/amd64)',
    )
    .option('--json', 'machine-readable output', false);
}

async function makeVerifier(o: CommonOptions, out: Output): Promise<ImageArgs> {
  await checkFlagPath('--policy', o.policy);
  const policy = await TrustPolicy.load(o.policy);
  for (const w of policy.warnings) out.error(`warning: ${w}`);
  if (o.cacheDir !== undefined) await checkFlagDir('--cache-dir', o.cacheDir);
  const registry = new RegistryClient(await registryOptions(o, (t) => out.error(t)));
  return new ImageArgs(
    new ImageVerifier({
      policy,
      files: readTrustFile,
      cacheDir: cacheDirOf(o),
      registry,
      notaryCredentials: notaryCredentials(),
    }),
    registry,
  );
}

/**
 * verifyAll verifies each image, prints one line per image (or a JSON array), closes the
 * verifier and returns the exit code: 0 all verified, 1 any refused (a definite answer outranks
 * an outage), else 3 or 2.
 */
export async function verifyAll(
  verifier: ImageArgs,
  images: readonly string[],
  json: boolean,
  out: Output,
  options: { platform?: Platform } = {},
): Promise<number> {
  const results: object[] = [];
  let code: number = EXIT.ok;
  try {
    for (const image of images) {
      try {
        const v = await verifier.verify(image, options);
        results.push({
          input: image,
          verified: true,
          pinned: v.pinned,
          digest: v.digest,
          target: v.targetPath,
          length: v.length,
          mediaType: v.parsed.mediaType,
          rule: v.rule,
          signedBy: v.signed.signedBy,
          ...(v.platformDigest ? { platformDigest: v.platformDigest } : {}),
        });
        if (!json) out.line(`✔ ${image} → ${v.pinned}`);
      } catch (e) {
        const c = exitCodeFor(e);
        code = code === EXIT.refused || c === EXIT.refused ? EXIT.refused : Math.max(code, c);
        results.push({
          input: image,
          verified: false,
          error: { code: errorCode(e), message: (e as Error).message },
        });
        // a refusal is a diagnostic: stderr (stdout keeps only what verified)
        if (!json) out.error(`✘ ${image}: refused (${errorCode(e)}): ${(e as Error).message}`);
      }
    }
  } finally {
    await verifier.close();
  }
  if (json) out.json(results, 2);
  return code;
}

export function addImageCommands(
  program: Command,
  out: Output,
  setCode: (n: number) => void,
): void {
  withCommonOptions(
    program
      .command('verify')
      .description('verify images against signed TUF targets; print the pinned references')
      .argument('<image...>', 'docker://REF (default), oci:DIR:REF or oci-archive:FILE:REF'),
  ).action(async (images: string[], o: CommonOptions) => {
    const verifier = await makeVerifier(o, out);
    const platform = o.platform === undefined ? undefined : parsePlatform(o.platform);
    setCode(await verifyAll(verifier, images, o.json, out, platform ? { platform } : {}));
  });

  withCommonOptions(
    program
      .command('pull')
      .description(
        'verify an image, then pull it by digest, checking every blob, into an OCI layout or archive',
      )
      .argument('<image>', 'docker://REF (default), oci:DIR:REF or oci-archive:FILE:REF')
      .requiredOption('--output <dest>', 'oci:DIR[:tag] or oci-archive:FILE[:tag] (must not exist)')
      .option(
        '-q, --quiet',
        'no byte progress (there is none either when stderr is not a terminal)',
        false,
      ),
  ).action(async (image: string, o: CommonOptions & { output: string; quiet: boolean }) => {
    let verifier: ImageArgs | undefined;
    const tty = process.stderr.isTTY === true && !o.json && !o.quiet;
    try {
      verifier = await makeVerifier(o, out);
      const r = await verifier.pull(image, o.output, {
        ...(o.platform === undefined ? {} : { platform: parsePlatform(o.platform) }),
        ...(tty ? { onProgress: blobProgress((t) => process.stderr.write(t)) } : {}),
      });
      if (o.json) {
        out.json(
          {
            input: image,
            pinned: r.verified.pinned,
            digest: r.verified.digest,
            manifest: r.manifestDigest,
            blobs: r.blobs,
            bytes: r.bytes,
            output: r.output,
          },
          2,
        );
      } else {
        out.line(`✔ ${image} → ${r.verified.pinned}`);
        out.line(
          `  pulled ${r.blobs} blobs (${r.bytes} bytes), each digest checked, into ${r.output}`,
        );
      }
    } catch (e) {
      if (!o.json) throw e;
      // --json prints JSON on a refusal too (and the reason on stderr)
      out.json(
        {
          input: image,
          verified: false,
          error: { code: errorCode(e), message: (e as Error).message },
        },
        2,
      );
      out.error(`tufa: ${errorCode(e)}: ${(e as Error).message}`);
      setCode(exitCodeFor(e));
    } finally {
      await verifier?.close();
    }
  });
}
