/**
 * Image arguments as the CLI takes them, with transports like skopeo's: `docker://REF` (or a
 * bare reference), `oci:DIR:REF`, `oci-archive:FILE:REF`. The library takes a parsed reference
 * and a source; this opens one from an argument.
 */
import { readFile } from 'node:fs/promises';
import {
  type Platform,
  RegistryClient,
  type RegistryClientOptions,
  resolveImage,
} from '../oci/index.js';
import {
  type ImageVerifier,
  type PullOptions,
  type PullResult,
  pullImage,
  type VerifiedImage,
} from '../verify/index.js';

/** readTrustFile reads a file a trust policy names (a trusted root, CA certificates). */
export async function readTrustFile(path: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(path));
}

/** ImageArgs verifies and pulls images named by CLI arguments; one registry client for all. */
export class ImageArgs {
  private registry: RegistryClient | undefined;

  /** @param registry - the client for registry images (closed by {@link close}), or its options */
  constructor(
    readonly verifier: ImageVerifier,
    private readonly registryOptions: RegistryClient | RegistryClientOptions = {},
  ) {
    if (registryOptions instanceof RegistryClient) this.registry = registryOptions;
  }

  private readonly client = (): RegistryClient => {
    this.registry ??= new RegistryClient(this.registryOptions as RegistryClientOptions);
    return this.registry;
  };

  /** verify verifies the image an argument names (see {@link ImageVerifier.verify}). */
  async verify(
    input: string,
    options: { platform?: Platform; signal?: AbortSignal } = {},
  ): Promise<VerifiedImage> {
    const { reference, source } = await resolveImage(input, this.client);
    try {
      return await this.verifier.verify(reference, source, options);
    } finally {
      await source.close();
    }
  }

  /** pull verifies an image, then writes it to `output` (see {@link pullImage}). */
  async pull(input: string, output: string, options: PullOptions = {}): Promise<PullResult> {
    const { reference, source } = await resolveImage(input, this.client);
    try {
      return await pullImage(this.verifier, reference, source, output, options);
    } finally {
      await source.close();
    }
  }

  async close(): Promise<void> {
    await this.verifier.close();
    await this.registry?.close();
  }
}
