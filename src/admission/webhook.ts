/**
 * The admission decision: every image of the object must verify under the trust policy, or the
 * review is denied (fail closed). In mutating mode each image is rewritten to its verified,
 * pinned form `registry/repository:tag@sha256:…` with a JSON Patch; a pinned image that
 * verifies needs no change, so a second pass patches nothing.
 */
import { setMaxListeners } from 'node:events';
import { TufaError } from '../core/index.js';
import { Limiter } from '../internal/index.js';
import {
  MAX_REFERENCE_LENGTH,
  OciError,
  Reference,
  type RegistryClient,
  RegistrySource,
} from '../oci/index.js';
import { escapeControls, redactText } from '../transport/index.js';
import type { ImageVerifier } from '../verify/index.js';
import {
  BadReviewError,
  type ImageRef,
  imagesOf,
  parseReview,
  type ReviewRequest,
  type ReviewResponse,
  reviewResponse,
  valueAt,
} from './review.js';

export type Mode = 'validate' | 'mutate';

export interface ControllerOptions {
  verifier: ImageVerifier;
  /** The registries the images are read from (the webhook reads no local files). */
  registry: Pick<RegistryClient, 'getManifest' | 'copyBlob'>;
  /** ms a review may take before it is denied (keep it well below the webhook's timeoutSeconds). */
  deadlineMs: number;
  /** Distinct images one review may ask for; a review with more is denied unverified (64). */
  maxImages?: number;
  /** Verifications running at once, all reviews together (16); the rest wait their turn. */
  maxConcurrent?: number;
}

/** Longest denial message (bytes): the API server passes it on to the user and its logs. */
export const MAX_MESSAGE_BYTES = 4096;

/** truncate cuts `text` to at most `max` bytes of UTF-8, saying how much was left out. */
export function truncate(text: string, max = MAX_MESSAGE_BYTES): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) return text;
  const note = ` … (${bytes.length} bytes, cut)`;
  // a cut in the middle of a character decodes to U+FFFD (3 bytes): leave room for it
  const head = bytes.subarray(0, max - Buffer.byteLength(note) - 3).toString('utf8');
  return `${head.replace(/\uFFFD$/, '')}${note}`;
}

/** The verdict on one image. */
export interface ImageVerdict {
  readonly image: string;
  readonly path: string;
  readonly allowed: boolean;
  /** `registry/repository:tag@sha256:…` when allowed. */
  readonly pinned?: string;
  readonly code?: string;
  readonly reason?: string;
}

/** The outcome of one review, for the HTTP layer, logs and metrics. */
export interface ReviewOutcome {
  readonly status: 200 | 400;
  readonly body: object;
  readonly allowed: boolean;
  readonly request?: ReviewRequest;
  readonly verdicts: readonly ImageVerdict[];
  readonly error?: string;
}

class DeadlineError extends Error {}

/** hasDigest tells whether an image reference names its digest (one that does not parse: no). */
function hasDigest(image: string): boolean {
  try {
    return Reference.parse(image).digest !== undefined;
  } catch {
    return false;
  }
}

export class AdmissionController {
  /** Shared by every review this controller answers (one per process). */
  private readonly limiter: Limiter;
  /**
   * Images whose trust data is fresh in memory: they wait for no slow image, but their manifest
   * requests are bounded too (4 × the verifications), so many reviews of them cannot open
   * thousands of registry requests at once.
   */
  private readonly freshLimiter: Limiter;

  constructor(private readonly o: ControllerOptions) {
    this.limiter = new Limiter(o.maxConcurrent ?? 16);
    this.freshLimiter = new Limiter(4 * (o.maxConcurrent ?? 16));
  }

  /** verifyImage checks one image, read from its registry (a reference names no local file). */
  private async verifyImage(ref: ImageRef, signal: AbortSignal): Promise<ImageVerdict> {
    try {
      const r = Reference.parse(ref.image);
      const source = new RegistrySource(this.o.registry, r);
      const verify = () => this.o.verifier.verify(r, source, { signal });
      // an image whose trust data is fresh in memory waits for no slow image: reviews of slow
      // images cannot hold it up (it has a limiter of its own)
      const v = this.o.verifier.hasFreshTrust?.(r)
        ? await this.freshLimiter.run(signal, verify)
        : await this.limiter.run(signal, verify);
      return {
        image: ref.image,
        path: ref.path,
        allowed: true,
        // a digest alone stays a digest alone: it verifies as that digest's signed target
        pinned: r.tag === undefined ? r.pinned(v.digest) : `${r.name}:${r.tag}@${v.digest}`,
      };
    } catch (e) {
      if (signal.aborted) return this.lateVerdict(ref.image);
      const code = e instanceof TufaError || e instanceof OciError ? e.code : 'ERROR';
      return {
        image: ref.image,
        path: ref.path,
        allowed: false,
        code,
        // no URL's user info or query token in a denial, a log line or a metric; no control character
        reason: escapeControls(redactText((e as Error).message)),
      };
    }
  }

  private lateVerdict(image: string): ImageVerdict {
    return {
      image,
      path: '',
      allowed: false,
      code: 'DEADLINE_EXCEEDED',
      reason: `verification did not finish within ${this.o.deadlineMs} ms (denied)`,
    };
  }

  /** review answers one AdmissionReview body. It never throws. */
  async review(body: unknown, mode: Mode): Promise<ReviewOutcome> {
    let req: ReviewRequest;
    try {
      req = parseReview(body);
    } catch (e) {
      return {
        status: 400,
        body: { error: (e as Error).message },
        allowed: false,
        verdicts: [],
        error: (e as Error).message,
      };
    }
    const answer = (r: ReviewResponse, verdicts: ImageVerdict[] = []): ReviewOutcome => ({
      status: 200,
      body: reviewResponse(req, r),
      allowed: r.allowed,
      request: req,
      verdicts,
    });
    if (req.operation === 'DELETE' || req.operation === 'CONNECT') return answer({ allowed: true });
    let refs: ImageRef[];
    try {
      refs = imagesOf(req.kind, req.object);
    } catch (e) {
      if (!(e instanceof BadReviewError)) throw e;
      return answer({
        allowed: false,
        message: `tufa: cannot read the images of this ${req.kind}: ${e.message}`,
      });
    }
    if (refs.length === 0) return answer({ allowed: true });
    // An image longer than any reference may be (Kubernetes image names are far shorter) is
    // denied before any work, named by where it is rather than echoed.
    const long = refs.find((r) => r.image.length > MAX_REFERENCE_LENGTH);
    if (long !== undefined) {
      return answer({
        allowed: false,
        message: `tufa: BAD_REFERENCE: ${long.path}: the image is ${long.image.length} characters long, more than the ${MAX_REFERENCE_LENGTH} an image reference may have (denied, none verified)`,
      });
    }

    // One verification per distinct image, under one deadline, at most maxImages of them.
    const distinct = [...new Set(refs.map((r) => r.image))];
    const maxImages = this.o.maxImages ?? 64;
    if (distinct.length > maxImages) {
      return answer({
        allowed: false,
        message: truncate(
          `tufa: TOO_MANY_IMAGES: this ${req.kind} names ${distinct.length} distinct images, more than the ${maxImages} one review may verify (denied, none verified)`,
        ),
      });
    }
    const results = new Map<string, ImageVerdict>();
    let timer: NodeJS.Timeout | undefined;
    // At the deadline the waiting verifications leave the queue and the running ones are
    // aborted (their requests cut), so a review's work ends with its answer.
    const abort = new AbortController();
    // every waiting and running verification listens to it: bounded by maxImages, not a leak
    setMaxListeners(0, abort.signal);
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new DeadlineError();
        reject(e);
        abort.abort(e);
      }, this.o.deadlineMs);
    });
    try {
      await Promise.race([
        Promise.all(
          distinct.map(async (image) => {
            results.set(image, await this.verifyImage({ image, path: '' }, abort.signal));
          }),
        ),
        deadline,
      ]);
    } catch (e) {
      if (!(e instanceof DeadlineError)) throw e;
      // name what was refused and what was still pending when time ran out
      for (const image of distinct) {
        if (!results.has(image)) results.set(image, this.lateVerdict(image));
      }
    } finally {
      clearTimeout(timer);
    }
    const verdicts = refs.map((r) => ({ ...(results.get(r.image) as ImageVerdict), path: r.path }));
    const refused = verdicts.filter((v) => !v.allowed);
    if (refused.length > 0) {
      const lines = [
        ...new Map(
          refused.map((v) => [v.image, `${redactText(v.image)}: ${v.code}: ${v.reason}`]),
        ).values(),
      ];
      return answer(
        { allowed: false, message: truncate(`tufa: image not verified: ${lines.join('; ')}`) },
        verdicts,
      );
    }
    // The mutating webhook pins Pods on CREATE only (an UPDATE of a Pod itself may change only
    // images; its ephemeralcontainers subresource is pinned on UPDATE too): an image a Pod
    // UPDATE changes would be verified but not pinned, so the kubelet would pull a tag the
    // registry may move. Validation asks for the digest instead. (Workload kinds are pinned by
    // the mutating webhook on UPDATE, and their Pods on CREATE.)
    if (
      mode === 'validate' &&
      req.operation === 'UPDATE' &&
      req.kind === 'Pod' &&
      req.subResource !== 'ephemeralcontainers'
    ) {
      const unpinned = [
        ...new Set(
          verdicts
            .filter((v) => valueAt(req.oldObject, v.path) !== v.image && !hasDigest(v.image))
            .map((v) => v.image),
        ),
      ];
      if (unpinned.length > 0) {
        return answer(
          {
            allowed: false,
            message: truncate(
              `tufa: UNPINNED_IMAGE: a Pod update that changes an image must pin it by digest (deploy the pinned reference, e.g. ${unpinned.map((i) => verdicts.find((v) => v.image === i)?.pinned).join(', ')}): ${unpinned.join(', ')}`,
            ),
          },
          verdicts,
        );
      }
    }
    if (mode === 'mutate') {
      const patch = verdicts
        .filter((v) => v.image !== v.pinned)
        .map((v) => ({ op: 'replace' as const, path: v.path, value: v.pinned as string }));
      return answer({ allowed: true, patch }, verdicts);
    }
    const warnings = [
      ...new Set(
        verdicts
          .filter((v) => v.image !== v.pinned)
          .map((v) => `${v.image} is verified as ${v.pinned}; deploy that pinned reference`),
      ),
    ];
    return answer({ allowed: true, warnings }, verdicts);
  }
}
