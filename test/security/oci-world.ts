/**
 * The OCI setting shared by the OCI and crash cases: a real registry (docker-registry, plain
 * HTTP on 127.0.0.1) with images built by umoci and pushed by skopeo, a {@link RegistryProxy} in
 * front of it that the client talks to, a {@link BlobMirror} as "another host", and a TUF
 * repository (SimRepo on the real clock, served over HTTP) signing the images as targets
 * `<proxy host>/<repository>:<tag>`, with a trust policy for the CLI and the API.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageArgs, readTrustFile } from '../../src/cli/images.js';
import { StaticCredentials } from '../../src/oci/credentials.js';
import { digestOf } from '../../src/oci/manifest.js';
import { TrustPolicy } from '../../src/verify/policy.js';
import { ImageVerifier } from '../../src/verify/verify-image.js';
import type { RepositorySimulator } from '../sim/repository-simulator.js';
import {
  type BuiltImage,
  buildImage,
  buildIndex,
  RegistryServer,
  skipReason,
} from '../support/registry.js';
import { StaticServer } from '../support/static-server.js';
import { SimRepo } from '../support/tuf-builder.js';
import {
  type CaseContext,
  type CliResult,
  liveExpiries,
  publishEncoded,
  simulator,
  tufa,
} from './harness.js';
import { BlobMirror, RegistryProxy } from './oci-proxy.js';

export const CREDS = { username: 'sec-user', password: `sec-${randomBytes(9).toString('hex')}` };

/** An image as pushed: its manifest bytes as the registry serves them, and its digest. */
export interface PushedImage {
  readonly built: BuiltImage;
  readonly manifest: Buffer;
  readonly digest: string;
}

export type ImageName = 'app' | 'other' | 'multi' | 'amd' | 'arm';

export interface OciWorld {
  readonly dir: string;
  readonly reg: RegistryServer;
  readonly proxy: RegistryProxy;
  readonly mirror: BlobMirror;
  readonly tuf: StaticServer;
  readonly repo: SimRepo;
  readonly sim: RepositorySimulator;
  readonly policy: TrustPolicy;
  readonly policyFile: string;
  /** A DOCKER_CONFIG folder holding the proxy's credentials. */
  readonly dockerConfig: string;
  /** Signed images by name (`app`, `moving`, `multi`, `amd`, `arm`), and `other` (unsigned). */
  readonly images: Record<ImageName, PushedImage>;
  /** A signed 6 MiB "manifest" (`demo/big:1.0`) the registry never had. */
  readonly big: Buffer;
  /** image names a reference through the proxy: `<proxy host>/<ref>`. */
  image(ref: string): string;
  /** verifier makes an ImageVerifier (credentials for the proxy; closed after the case). */
  verifier(t: CaseContext, timeoutMs?: number): ImageArgs;
  /** cli runs tufa with the policy, a fresh cache folder and the credentials. */
  cli(t: CaseContext, ...args: string[]): Promise<CliResult>;
  /** cliArgs are the common flags (a new cache folder each call unless `cache` is given). */
  cliArgs(t: CaseContext, cache?: string): string[];
  env(): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** ociSkipReason says why the OCI cases cannot run here. */
export function ociSkipReason(): string | undefined {
  return skipReason(['docker-registry', 'skopeo', 'umoci']);
}

export async function startOciWorld(options: { layerBytes?: number } = {}): Promise<OciWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'tufa-sec-oci-'));
  const cleanups: Array<() => Promise<unknown> | unknown> = [
    () => rmSync(dir, { recursive: true, force: true }),
  ];
  try {
    const layout = join(dir, 'build', 'layout');
    const unique = (what: string) => `${what} ${randomBytes(8).toString('hex')}\n`;
    const built = {
      app: await buildImage(`${layout}:app`, {
        '/etc/app.conf': unique('app'),
        '/bin/app': randomBytes(options.layerBytes ?? 256 * 1024),
      }),
      other: await buildImage(`${layout}:other`, { '/etc/other.conf': unique('other') }),
      amd: await buildImage(
        `${layout}:amd64`,
        { '/arch': unique('amd64') },
        { os: 'linux', architecture: 'amd64' },
      ),
      arm: await buildImage(
        `${layout}:arm64`,
        { '/arch': unique('arm64') },
        { os: 'linux', architecture: 'arm64' },
      ),
    };
    const multi = await buildIndex(`${layout}:multi`, [
      { image: built.amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: built.arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    const reg = await RegistryServer.start('plain');
    cleanups.push(() => reg.close());
    await reg.push(built.app.ref, 'demo/app:1.0');
    await reg.push(built.app.ref, 'demo/moving:1.0');
    await reg.push(built.app.ref, 'demo/pull:1.0');
    await reg.push(built.other.ref, 'demo/app:other');
    await reg.push(built.other.ref, 'demo/moving:other');
    await reg.push(multi.ref, 'demo/multi:1.0', { all: true });
    const pushed = async (b: BuiltImage, ref: string): Promise<PushedImage> => {
      const manifest = await reg.inspectRaw(ref);
      return { built: b, manifest, digest: digestOf(manifest) };
    };
    const images: Record<ImageName, PushedImage> = {
      app: await pushed(built.app, 'demo/app:1.0'),
      other: await pushed(built.other, 'demo/app:other'),
      multi: await pushed(multi, 'demo/multi:1.0'),
      amd: await pushed(built.amd, `demo/multi@${built.amd.digest}`),
      arm: await pushed(built.arm, `demo/multi@${built.arm.digest}`),
    };
    const proxy = await RegistryProxy.start(reg.origin);
    cleanups.push(() => proxy.close());
    const mirror = await BlobMirror.start(reg.origin);
    cleanups.push(() => mirror.close());

    const big = Buffer.alloc(6 * 1024 * 1024, 0x20);
    big.write('{"schemaVersion":2,"layers":[],"config":{}}');
    const repo = liveExpiries(new SimRepo());
    const sim = simulator(repo);
    const at = (ref: string) => `${proxy.host}/${ref}`;
    sim.addTargetFile(at('demo/app:1.0'), images.app.manifest);
    sim.addTargetFile(at('demo/moving:1.0'), images.app.manifest);
    sim.addTargetFile(at('demo/pull:1.0'), images.app.manifest);
    sim.addTargetFile(at('demo/multi:1.0'), images.multi.manifest);
    sim.addTargetFile(at('demo/big:1.0'), big);
    publishEncoded(sim);
    const tuf = await StaticServer.start(sim.files);
    cleanups.push(() => tuf.close());

    const policyDir = join(dir, 'policy');
    mkdirSync(policyDir);
    writeFileSync(join(policyDir, 'root.json'), repo.rootBytes(1));
    const policyJson = {
      rules: [
        {
          match: `${proxy.host}/demo/**`,
          tuf: { metadataUrl: tuf.url('metadata/'), root: 'root.json' },
        },
      ],
    };
    const policyFile = join(policyDir, 'tufa-policy.json');
    writeFileSync(policyFile, JSON.stringify(policyJson));
    const policy = TrustPolicy.fromJSON(policyJson, policyDir);
    const dockerConfig = join(dir, 'docker');
    mkdirSync(dockerConfig);
    writeFileSync(
      join(dockerConfig, 'config.json'),
      JSON.stringify({
        auths: {
          [proxy.host]: {
            auth: Buffer.from(`${CREDS.username}:${CREDS.password}`).toString('base64'),
          },
        },
      }),
      { mode: 0o600 },
    );
    const env = (): NodeJS.ProcessEnv => {
      const e: NodeJS.ProcessEnv = {
        ...process.env,
        DOCKER_CONFIG: dockerConfig,
        XDG_CACHE_HOME: join(dir, 'xdg'),
        NO_COLOR: '1',
      };
      delete e.TUFA_POLICY;
      return e;
    };
    const cliArgs = (t: CaseContext, cache?: string) => [
      '--policy',
      policyFile,
      '--cache-dir',
      cache ?? join(t.tmp(), 'cache'),
    ];
    return {
      dir,
      reg,
      proxy,
      mirror,
      tuf,
      repo,
      sim,
      policy,
      policyFile,
      dockerConfig,
      images,
      big,
      image: at,
      verifier(t, timeoutMs = 15_000) {
        const v = new ImageArgs(
          new ImageVerifier({ policy, files: readTrustFile, cacheDir: join(t.tmp(), 'cache') }),
          {
            timeoutMs,
            credentials: new StaticCredentials(new Map([[proxy.host, CREDS]])),
          },
        );
        t.defer(() => v.close());
        return v;
      },
      cli: (t, ...args) => tufa([...args, ...cliArgs(t)], { env: env(), timeoutMs: 60_000 }),
      cliArgs,
      env,
      async close() {
        for (const c of cleanups.reverse()) await c();
      },
    };
  } catch (e) {
    for (const c of cleanups.reverse()) await c();
    throw e;
  }
}
