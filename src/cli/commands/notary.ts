/**
 * `tufa notary verify` (Docker Content Trust) and `tufa notary import` (migrate a Notary
 * collection into a tufa repository for re-signing with the repository's own keys).
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { base64ToBytes, bytesToHex, MisuseError } from '../../core/index.js';
import { NotaryClient, signedTags } from '../../notary/index.js';
import { Reference } from '../../oci/index.js';
import { Workspace } from '../../repository/index.js';
import { ImageVerifier, TrustPolicy } from '../../verify/index.js';
import { readFlagCertificates } from '../flags.js';
import type { Output } from '../output.js';
import { type RegistryFlags, registryOptions, withRegistryFlags } from '../registry-options.js';
import { verifyAll } from './image.js';

interface TrustFlags {
  server: string;
  rootKey: string[];
  rootCa?: string;
  serverCa?: string;
  tofu: boolean;
  cacheDir?: string;
}

const collect = (v: string, acc: string[]) => [...acc, v];
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

function withTrustFlags(cmd: Command): Command {
  return cmd
    .requiredOption('--server <url>', 'the notary server (https://…)')
    .option(
      '--root-key <id>',
      'pinned root key ID: certificate or canonical ID (repeatable)',
      collect,
      [],
    )
    .option('--root-ca <file>', 'pinned CA (PEM) the root certificates must chain to')
    .option(
      '--server-ca <file>',
      "CA (PEM) of the notary server's TLS certificate, besides the system's",
    )
    .option(
      '--tofu',
      'trust the first root seen (then keep it): only when you accept that risk',
      false,
    )
    .option(
      '--cache-dir <dir>',
      'where trusted roots are kept (default: $XDG_CACHE_HOME/tufa or ~/.cache/tufa)',
    );
}

function cacheDirOf(o: TrustFlags): string {
  return o.cacheDir ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tufa');
}

function hex(b64: string | undefined): string | undefined {
  const b = b64 === undefined ? undefined : base64ToBytes(b64);
  return b === undefined ? undefined : bytesToHex(b);
}

export function addNotaryCommands(
  program: Command,
  out: Output,
  setCode: (n: number) => void,
): void {
  const notary = program.command('notary').description('Notary v1 / Docker Content Trust');

  withRegistryFlags(
    withTrustFlags(
      notary
        .command('verify')
        .description('verify images signed with Docker Content Trust; print the pinned references')
        .argument('<image...>')
        .option('--json', 'machine-readable output', false),
    ),
  ).action(async (images: string[], o: TrustFlags & RegistryFlags & { json: boolean }) => {
    const policy = TrustPolicy.fromJSON(
      {
        rules: [
          {
            match: '**',
            notary: {
              server: o.server,
              ...(o.serverCa ? { serverCa: o.serverCa } : {}),
              rootKeys: o.rootKey,
              ...(o.rootCa ? { rootCa: o.rootCa } : {}),
              tofu: o.tofu,
            },
          },
        ],
      },
      process.cwd(),
      'notary flags',
    );
    const verifier = new ImageVerifier({
      policy,
      cacheDir: cacheDirOf(o),
      registryOptions: await registryOptions(o),
    });
    setCode(await verifyAll(verifier, images, o.json, out));
  });

  withTrustFlags(
    notary
      .command('import')
      .description(
        'verify a Notary collection, then list its signed tags as targets <GUN>:<tag> in a tufa repository',
      )
      .argument('<gun>', 'registry/repository')
      .requiredOption('--into <dir>', 'tufa repository workspace (tufa repo init first)')
      .option('--json', 'machine-readable report', false),
  ).action(async (gun: string, o: TrustFlags & { into: string; json: boolean }) => {
    const ref = Reference.parse(`${gun}:latest`);
    if (ref.name !== gun)
      throw new RangeError(`${gun}: give the GUN fully qualified, as ${ref.name}`);
    const ws = await Workspace.open(o.into, Date.now());
    const rootCa = o.rootCa ? await readFlagCertificates('--root-ca', o.rootCa) : undefined;
    const client = new NotaryClient({
      server: o.server,
      gun,
      trust: { rootKeyIds: o.rootKey, ...(rootCa ? { rootCa } : {}), tofu: o.tofu },
      ...(o.serverCa ? { serverCa: await readFlagCertificates('--server-ca', o.serverCa) } : {}),
      // one cache per (server, GUN, trust settings): a cached root never outlives a changed pin
      cacheDir: join(
        cacheDirOf(o),
        'notary-import',
        createHash('sha256')
          .update(JSON.stringify([o.server, gun, [...o.rootKey].sort(), rootCa ?? '', o.tofu]))
          .digest('hex')
          .slice(0, 32),
      ),
    });
    let collection: Awaited<ReturnType<NotaryClient['refresh']>>;
    try {
      collection = await client.refresh();
    } finally {
      await client.close();
    }
    const carried: object[] = [];
    const refused: object[] = [];
    for (const t of signedTags(collection)) {
      const name = t.target.name;
      const sha256 = hex(t.target.hashes.sha256);
      if (!TAG.test(name)) {
        refused.push({ tag: name, role: t.role, reason: 'not a valid image tag' });
        continue;
      }
      if (sha256 === undefined || sha256.length !== 64) {
        refused.push({
          tag: name,
          role: t.role,
          reason: 'no sha256 (Docker Content Trust requires one)',
        });
        continue;
      }
      const sha512 = hex(t.target.hashes.sha512);
      const path = `${gun}:${name}`;
      let role: string;
      try {
        // the workspace's checks: a publishable path, a role clients will read it from
        role = await ws.addTarget(path, {
          length: t.target.length,
          hashes: { sha256, ...(sha512 ? { sha512 } : {}) },
          custom: {
            notary: {
              role: t.role,
              ...(t.target.custom === undefined ? {} : { custom: t.target.custom }),
            },
          },
        });
      } catch (e) {
        if (!(e instanceof MisuseError)) throw e;
        refused.push({ tag: name, role: t.role, reason: e.message });
        continue;
      }
      carried.push({
        tag: name,
        target: path,
        digest: `sha256:${sha256}`,
        length: t.target.length,
        from: t.role,
        into: role,
      });
    }
    for (const s of collection.skipped) refused.push({ role: s.role, reason: s.reason });
    if (o.json) {
      out.json({ gun, carried, refused }, 2);
    } else {
      for (const c of carried as Array<{
        target: string;
        digest: string;
        from: string;
        into: string;
      }>) {
        out.line(`✔ ${c.target} → ${c.digest} (from ${c.from}, now in ${c.into})`);
      }
      for (const r of refused as Array<{ tag?: string; role: string; reason: string }>) {
        out.line(`✘ ${r.tag ?? r.role}: not carried over: ${r.reason}`);
      }
      out.line(
        `${carried.length} tags carried over, ${refused.length} refused; now sign with the repository's keys (tufa repo sign …)`,
      );
    }
  });
}
