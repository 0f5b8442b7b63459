/**
 * Ready-made settings for the security cases: a client (Updater) against the in-process
 * repository simulator, the same repository served over HTTP on 127.0.0.1 for the CLI, and an
 * image verifier whose TUF repository is the simulator and whose images sit in an OCI layout.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageArgs, readTrustFile } from '../../src/cli/images.js';
import { initMetadataDir, Updater, type UpdaterOptions } from '../../src/client/index.js';
import { MEDIA_TYPES } from '../../src/oci/index.js';
import { LayoutWriter } from '../../src/oci/layout.js';
import { type Descriptor, digestOf } from '../../src/oci/manifest.js';
import { TrustPolicy } from '../../src/verify/policy.js';
import { ImageVerifier } from '../../src/verify/verify-image.js';
import {
  METADATA_URL,
  type RepositorySimulator,
  TARGETS_URL,
} from '../sim/repository-simulator.js';
import { StaticServer } from '../support/static-server.js';
import { NOW, SimRepo } from '../support/tuf-builder.js';
import {
  type CaseContext,
  type CliResult,
  liveExpiries,
  publishEncoded,
  simulator,
  tufa,
} from './harness.js';

export const te = new TextEncoder();

/** A client folder and a simulated repository. */
export interface SimWorld {
  readonly repo: SimRepo;
  readonly sim: RepositorySimulator;
  readonly dir: string;
  readonly md: string;
  readonly td: string;
  /** updater makes a client of the simulator (clock at NOW unless overridden). */
  updater(extra?: Partial<UpdaterOptions>): Updater;
  /** refresh runs a fresh updater's refresh and returns the updater. */
  refresh(extra?: Partial<UpdaterOptions>): Promise<Updater>;
}

/**
 * simWorld builds a repository (`setup` may add keys, roles and targets before the first
 * publication), serves it from the simulator and initialises a client folder with root v1.
 */
export async function simWorld(
  t: CaseContext,
  setup: (
    repo: SimRepo,
    add: (path: string, content: Uint8Array, role?: string) => void,
  ) => void = () => undefined,
): Promise<SimWorld> {
  const dir = t.tmp();
  const md = join(dir, 'metadata');
  const td = join(dir, 'targets');
  const repo = new SimRepo();
  const pending: Array<[string, Uint8Array, string]> = [];
  setup(repo, (path, content, role = 'targets') => {
    pending.push([path, content, role]);
  });
  const sim = simulator(repo);
  for (const [path, content, role] of pending) sim.addTargetFile(path, content, role);
  publishEncoded(sim);
  await initMetadataDir(md, repo.rootBytes(1));
  const updater = (extra: Partial<UpdaterOptions> = {}) =>
    new Updater({
      metadataDir: md,
      metadataBaseUrl: METADATA_URL,
      targetDir: td,
      targetBaseUrl: TARGETS_URL,
      fetcher: sim,
      now: () => NOW,
      ...extra,
    });
  return {
    repo,
    sim,
    dir,
    md,
    td,
    updater,
    async refresh(extra) {
      const u = updater(extra);
      await u.refresh();
      return u;
    },
  };
}

/** The same repository over HTTP for the CLI (expiries on the real clock). */
export interface HttpWorld {
  readonly repo: SimRepo;
  readonly sim: RepositorySimulator;
  readonly server: StaticServer;
  readonly dir: string;
  readonly md: string;
  readonly td: string;
  readonly rootFile: string;
  /** cli runs `tufa tuf --metadata-url … --metadata-dir MD <args…>`. */
  tuf(...args: string[]): Promise<CliResult>;
  /** download runs `tufa tuf … --target-name N… --target-dir TD --target-base-url … download`. */
  download(names: string[], targetDir?: string): Promise<CliResult>;
  /** downloadArgs are the CLI arguments of {@link download}. */
  downloadArgs(names: string[], targetDir?: string): string[];
  refreshArgs(): string[];
}

export async function httpWorld(
  t: CaseContext,
  setup: (
    repo: SimRepo,
    add: (path: string, content: Uint8Array, role?: string) => void,
  ) => void = () => undefined,
): Promise<HttpWorld> {
  const dir = t.tmp();
  const md = join(dir, 'metadata');
  const td = join(dir, 'targets');
  mkdirSync(md);
  mkdirSync(td);
  const repo = new SimRepo();
  const pending: Array<[string, Uint8Array, string]> = [];
  setup(repo, (path, content, role = 'targets') => {
    pending.push([path, content, role]);
  });
  liveExpiries(repo);
  const sim = simulator(repo);
  for (const [path, content, role] of pending) sim.addTargetFile(path, content, role);
  publishEncoded(sim);
  const server = await StaticServer.start(sim.files);
  t.defer(() => server.close());
  const rootFile = join(dir, 'trusted-root.json');
  writeFileSync(rootFile, repo.rootBytes(1));
  const init = await tufa(['tuf', '--metadata-dir', md, 'init', rootFile]);
  if (init.status !== 0) throw new Error(`tufa tuf init failed: ${init.stderr}`);
  const common = () => ['tuf', '--metadata-url', server.url('metadata/'), '--metadata-dir', md];
  const downloadArgs = (names: string[], targetDir = td) => [
    ...common(),
    ...names.flatMap((n) => ['--target-name', n]),
    '--target-dir',
    targetDir,
    '--target-base-url',
    server.url('targets/'),
    'download',
  ];
  return {
    repo,
    sim,
    server,
    dir,
    md,
    td,
    rootFile,
    tuf: (...args) => tufa([...common(), ...args]),
    download: (names, targetDir) => tufa(downloadArgs(names, targetDir)),
    downloadArgs,
    refreshArgs: () => [...common(), 'refresh'],
  };
}

// ---------------------------------------------------------------------------------------------
// images in a local layout, verified against the simulator

/** A small image manifest (its blobs are never read by verify). */
export function manifestBytes(label: string): Uint8Array {
  const config = te.encode(JSON.stringify({ architecture: 'amd64', os: 'linux', label }));
  const layer = te.encode(`layer of ${label}`);
  const d = (mediaType: string, b: Uint8Array): Descriptor => ({
    mediaType,
    digest: digestOf(b),
    size: b.length,
  });
  return te.encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: d(MEDIA_TYPES.ociConfig, config),
      layers: [d('application/vnd.oci.image.layer.v1.tar', layer)],
    }),
  );
}

/**
 * verifyInLayout writes `manifest` to an OCI layout named `targetPath` and verifies
 * `oci:LAYOUT:targetPath` under a policy trusting the simulator's repository for
 * `registry.example/**`.
 */
export async function verifyInLayout(
  t: CaseContext,
  w: SimWorld,
  targetPath: string,
  manifest: Uint8Array,
): Promise<unknown> {
  const dir = t.tmp();
  const layout = join(dir, 'layout');
  const writer = await LayoutWriter.create('dir', layout);
  const desc = {
    mediaType: MEDIA_TYPES.ociManifest,
    digest: digestOf(manifest),
    size: manifest.length,
  };
  await writer.putBlob(desc, manifest);
  writer.addManifest(desc, targetPath);
  await writer.commit();
  writeFileSync(join(dir, 'root.json'), w.repo.rootBytes(1));
  const policy = TrustPolicy.fromJSON(
    {
      rules: [
        { match: 'registry.example/**', tuf: { metadataUrl: METADATA_URL, root: 'root.json' } },
      ],
    },
    dir,
  );
  const verifier = new ImageArgs(
    new ImageVerifier({
      policy,
      files: readTrustFile,
      cacheDir: join(dir, 'cache'),
      fetcher: w.sim,
      now: () => NOW,
    }),
  );
  try {
    return await verifier.verify(`oci:${layout}:${targetPath}`);
  } finally {
    await verifier.close();
  }
}
