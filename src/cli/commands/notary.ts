/**
 * `tufa notary verify` (Docker Content Trust) and `tufa notary import` (migrate a Notary
 * collection into a tufa repository for re-signing with the repository's own keys).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  BadVersionNumberError,
  base64ToBytes,
  bytesToHex,
  type JsonObject,
  MisuseError,
  parseJson,
} from '../../core/index.js';
import { NotaryClient, ROOT_KEY_ID, type SignedTag, signedTags } from '../../notary/index.js';
import { Reference } from '../../oci/index.js';
import { sameJson, type TargetEntry, Workspace } from '../../repository/index.js';
import { ImageVerifier, TrustPolicy } from '../../verify/index.js';
import { EXIT } from '../exit.js';
import { readFlagCertificates } from '../flags.js';
import { ImageArgs, readTrustFile } from '../images.js';
import type { Output } from '../output.js';
import {
  cacheDirOf,
  type LoginFlags,
  login,
  notaryCredentials,
  type RegistryFlags,
  registryOptions,
  withLoginFlags,
  withRegistryFlags,
} from '../registry-options.js';
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

/** checkTrustFlags refuses, as usage errors naming the flags, trust settings that cannot work. */
function checkTrustFlags(o: TrustFlags): void {
  for (const [i, k] of o.rootKey.entries()) {
    // the value is not echoed: it may be a private key given by mistake
    if (!ROOT_KEY_ID.test(k))
      throw new MisuseError(
        `--root-key (${i + 1}): expected a root key ID of 64 hex digits as \`notary key list\` prints it, got ${k.length} characters${k.includes('-----BEGIN') ? ' of PEM (give the key ID, not the key)' : ''}`,
      );
  }
  if (o.rootKey.length === 0 && o.rootCa === undefined && !o.tofu)
    throw new MisuseError(
      'no root trust given: pin the root with --root-key <ID> (repeatable) or --root-ca <file>, or accept trust on first use with --tofu',
    );
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

  withLoginFlags(
    withRegistryFlags(
      withTrustFlags(
        notary
          .command('verify')
          .description(
            'verify images signed with Docker Content Trust; print the pinned references',
          )
          .argument('<image...>')
          .option('--json', 'machine-readable output', false),
      ),
    ),
  ).action(
    async (images: string[], o: TrustFlags & RegistryFlags & LoginFlags & { json: boolean }) => {
      checkTrustFlags(o);
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
      const verifier = new ImageArgs(
        new ImageVerifier({
          policy,
          files: readTrustFile,
          cacheDir: cacheDirOf(o),
          // the login answers the notary server's origin only, never the registry
          notaryCredentials: notaryCredentials(await login(o, o.server)),
        }),
        await registryOptions(o),
      );
      setCode(await verifyAll(verifier, images, o.json, out));
    },
  );

  withLoginFlags(
    withTrustFlags(
      notary
        .command('import')
        .description(
          'verify a Notary collection, then make the targets <GUN>:<tag> of a tufa repository follow its signed tags (added, changed, removed)',
        )
        .argument('<gun>', 'registry/repository')
        .requiredOption('--into <dir>', 'tufa repository workspace (tufa repo init first)')
        .option('--json', 'machine-readable report', false),
    ),
  ).action(async (gun: string, o: TrustFlags & LoginFlags & { into: string; json: boolean }) => {
    checkTrustFlags(o);
    const ref = Reference.parse(`${gun}:latest`);
    if (ref.name !== gun)
      throw new RangeError(`${gun}: give the GUN fully qualified, as ${ref.name}`);
    // the login given, else the Docker config's for the notary host
    const credentials = await notaryCredentials(await login(o, o.server))(new URL(o.server));
    const ws = await Workspace.open(o.into, Date.now());
    const rootCa = o.rootCa ? await readFlagCertificates('--root-ca', o.rootCa) : undefined;
    const client = new NotaryClient({
      server: o.server,
      gun,
      trust: { rootKeyIds: o.rootKey, ...(rootCa ? { rootCa } : {}), tofu: o.tofu },
      ...(o.serverCa ? { serverCa: await readFlagCertificates('--server-ca', o.serverCa) } : {}),
      ...(credentials === undefined ? {} : { credentials }),
      // one cache per (server, GUN, trust settings): a cached root never outlives a changed pin
      cacheDir: join(
        cacheDirOf(o),
        'notary-import',
        createHash('sha256')
          .update(
            JSON.stringify([serverKey(o.server), gun, [...o.rootKey].sort(), rootCa ?? '', o.tofu]),
          )
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
    const report = await ws.update(async () => {
      await recordVersions(ws, gun, collection);
      return importTags(ws, gun, signedTags(collection));
    });
    // a skipped delegation holds no tag DCT resolves (targets/releases skipped fails signedTags)
    const skipped = collection.skipped;
    if (o.json) {
      out.json({ gun, ...report, skipped }, 2);
    } else {
      for (const [mark, list] of [
        ['+', report.added],
        ['~', report.changed],
        ['-', report.removed],
      ] as const) {
        for (const c of list)
          out.line(
            `${mark} ${c.target} → ${c.digest}${'into' in c ? ` (from ${c.from}, in ${c.into})` : ''}`,
          );
      }
      for (const r of skipped) out.line(`· ${r.role}: skipped: ${r.reason}`);
      for (const r of report.refused) out.line(`✘ ${r.tag}: not carried over: ${r.reason}`);
      out.line(
        `${report.added.length} added, ${report.changed.length} changed, ${report.removed.length} removed, ${report.unchanged.length} unchanged, ${report.refused.length} refused; now sign with the repository's keys (tufa repo sign …)`,
      );
    }
    if (report.refused.length > 0) setCode(EXIT.refused);
  });
}

/** serverKey is a notary server as its cache is keyed: origin and path, no trailing slash. */
function serverKey(server: string): string {
  const u = new URL(server);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/** The workspace record of the notary versions each GUN was last imported from. */
const IMPORTS = 'notary-imports.json';

/**
 * recordVersions refuses a collection whose targets roles (`targets`, `targets/releases`, …) are
 * older than those the workspace last imported for the GUN, whatever the import cache holds (a
 * fresh `--cache-dir` has no rollback reference: TUF 5.5.5 for Notary's targets versions), and
 * records the new versions in the same change.
 */
async function recordVersions(
  ws: Workspace,
  gun: string,
  collection: { roles: ReadonlyMap<string, { version: number }> },
): Promise<void> {
  const stored = await ws.record(IMPORTS);
  const all = stored === undefined ? {} : (parseJson(stored, { source: IMPORTS }) as JsonObject);
  const before = isObject(all[gun]) ? (all[gun] as JsonObject) : {};
  const now: JsonObject = {};
  for (const [role, t] of collection.roles) {
    const was = before[role];
    if (typeof was === 'number' && t.version < was) {
      throw new BadVersionNumberError(
        `${gun} ${role}.json: version ${t.version} is lower than the ${was} this workspace imported (${IMPORTS}); nothing changed`,
        'ROLLBACK',
      );
    }
    now[role] = t.version;
  }
  await ws.record(
    IMPORTS,
    new TextEncoder().encode(
      `${JSON.stringify({ ...all, [gun]: { ...before, ...now } }, null, 2)}\n`,
    ),
  );
}

interface Carried {
  tag: string;
  target: string;
  digest: string;
  length: number;
  from: string;
  into: string;
}

interface ImportReport {
  added: Carried[];
  changed: Array<Carried & { was: string }>;
  removed: Array<{ tag: string; target: string; digest: string; from: string }>;
  unchanged: Carried[];
  refused: Array<{ tag: string; role: string; reason: string }>;
}

const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * importTags makes the workspace's targets `<gun>:<tag>` that an import made (they carry
 * `custom.notary`) follow the signed tags: new ones added, changed ones replaced, those no longer
 * signed (or now refused) removed, within the caller's one change. Targets added by other means
 * are left alone.
 */
async function importTags(ws: Workspace, gun: string, tags: SignedTag[]): Promise<ImportReport> {
  const report: ImportReport = { added: [], changed: [], removed: [], unchanged: [], refused: [] };
  const before = new Map<string, { role: string; entry: JsonObject }>();
  for (const { name } of await ws.targetsRoles()) {
    const listed = (await ws.read(name)).signed.targets;
    for (const [path, entry] of Object.entries(isObject(listed) ? listed : {})) {
      if (
        path.startsWith(`${gun}:`) &&
        isObject(entry) &&
        isObject(entry.custom) &&
        'notary' in entry.custom
      )
        before.set(path, { role: name, entry });
    }
  }
  const digestOf = (e: JsonObject) => `sha256:${(e.hashes as JsonObject).sha256}`;
  const kept = new Set<string>();
  for (const t of tags) {
    const name = t.target.name;
    const sha256 = hex(t.target.hashes.sha256);
    const refuse = (reason: string) => report.refused.push({ tag: name, role: t.role, reason });
    if (!TAG.test(name)) {
      refuse('not a valid image tag');
      continue;
    }
    if (sha256 === undefined || sha256.length !== 64) {
      refuse('no sha256 (Docker Content Trust requires one)');
      continue;
    }
    const sha512 = hex(t.target.hashes.sha512);
    const path = `${gun}:${name}`;
    const entry = {
      length: t.target.length,
      hashes: { sha256, ...(sha512 ? { sha512 } : {}) },
      custom: {
        notary: {
          role: t.role,
          ...(t.target.custom === undefined ? {} : { custom: t.target.custom }),
        },
      },
    } as JsonObject;
    const old = before.get(path);
    const carried = {
      tag: name,
      target: path,
      digest: `sha256:${sha256}`,
      length: t.target.length,
      from: t.role,
    };
    if (old !== undefined && sameJson(old.entry, entry)) {
      kept.add(path);
      report.unchanged.push({ ...carried, into: old.role });
      continue;
    }
    let into: string;
    try {
      // the workspace's checks: a publishable path, a role clients will read it from
      into = await ws.addTarget(path, entry as unknown as TargetEntry, old?.role);
    } catch (e) {
      if (!(e instanceof MisuseError)) throw e;
      refuse(e.message);
      continue;
    }
    kept.add(path);
    if (old === undefined) report.added.push({ ...carried, into });
    else report.changed.push({ ...carried, into, was: digestOf(old.entry) });
  }
  for (const [path, { role, entry }] of before) {
    if (kept.has(path)) continue;
    await ws.removeTarget(path, role);
    const notary = (entry.custom as JsonObject).notary;
    report.removed.push({
      tag: path.slice(gun.length + 1),
      target: path,
      digest: digestOf(entry),
      from: isObject(notary) && typeof notary.role === 'string' ? notary.role : '',
    });
  }
  return report;
}
