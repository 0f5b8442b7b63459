/** `tufa verify` and `tufa pull`: verify before pull, under a trust policy. */
import type { Command } from 'commander';
import { type Platform, parsePlatform } from '../../oci/index.js';
import { ImageVerifier, pullImage, TrustPolicy } from '../../verify/index.js';
import { EXIT, errorCode, exitCodeFor } from '../exit.js';
import type { Output } from '../output.js';
import {
  cacheDirOf,
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

async function makeVerifier(o: CommonOptions, out: Output): Promise<ImageVerifier> {
  const policy = await TrustPolicy.load(o.policy);
  for (const w of policy.warnings) out.error(`warning: ${w}`);
  return new ImageVerifier({
    policy,
    cacheDir: cacheDirOf(o),
    registryOptions: await registryOptions(o),
  });
}

/**
 * verifyAll verifies each image, prints one line per image (or a JSON array), closes the
 * verifier and returns the exit code: 0 all verified, 1 any refused (a definite answer outranks
 * an outage), else 3 or 2.
 */
export async function verifyAll(
  verifier: ImageVerifier,
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
        if (!json) out.line(`✘ ${image}: refused (${errorCode(e)}): ${(e as Error).message}`);
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
      .requiredOption(
        '--output <dest>',
        'oci:DIR[:tag] or oci-archive:FILE[:tag] (must not exist)',
      ),
  ).action(async (image: string, o: CommonOptions & { output: string }) => {
    const verifier = await makeVerifier(o, out);
    const tty = process.stderr.isTTY === true && !o.json;
    let last = -1;
    try {
      const r = await pullImage(verifier, image, o.output, {
        ...(o.platform === undefined ? {} : { platform: parsePlatform(o.platform) }),
        onProgress: (done, total) => {
          if (!tty) return;
          const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
          if (pct === last) return;
          last = pct;
          const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, '.');
          process.stderr.write(
            `\r[${bar}] ${pct}% ${(done / 1048576).toFixed(1)}/${(total / 1048576).toFixed(1)} MiB`,
          );
          if (done === total) process.stderr.write('\n');
        },
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
    } finally {
      await verifier.close();
    }
  });
}
