/**
 * The admission decision: every image of the object must verify under the trust policy, or the
 * review is denied (fail closed). In mutating mode each image is rewritten to its verified,
 * pinned form `registry/repository:tag@sha256:…` with a JSON Patch; a pinned image that
 * verifies needs no change, so a second pass patches nothing.
 */
import { TufaError } from '../core/index.js';
import { redactText } from '../internal/index.js';
import { OciError, Reference } from '../oci/index.js';
import type { ImageVerifier } from '../verify/index.js';
import {
  BadReviewError,
  type ImageRef,
  imagesOf,
  parseReview,
  type ReviewRequest,
  type ReviewResponse,
  reviewResponse,
} from './review.js';

export type Mode = 'validate' | 'mutate';

export interface ControllerOptions {
  verifier: ImageVerifier;
  /** ms a review may take before it is denied (keep it well below the webhook's timeoutSeconds). */
  deadlineMs: number;
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

export class AdmissionController {
  constructor(private readonly o: ControllerOptions) {}

  /** verifyImage checks one image; registry images only (`docker://`), never local transports. */
  private async verifyImage(ref: ImageRef): Promise<ImageVerdict> {
    try {
      const v = await this.o.verifier.verify(`docker://${ref.image}`);
      const r = Reference.parse(ref.image);
      const tag = r.tag ?? v.reference.tag;
      return {
        image: ref.image,
        path: ref.path,
        allowed: true,
        pinned: `${r.name}:${tag}@${v.digest}`,
      };
    } catch (e) {
      const code = e instanceof TufaError || e instanceof OciError ? e.code : 'ERROR';
      return {
        image: ref.image,
        path: ref.path,
        allowed: false,
        code,
        // no URL's user info or query token in a denial, a log line or a metric
        reason: redactText((e as Error).message),
      };
    }
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

    // One verification per distinct image, all in parallel, under one deadline.
    const distinct = [...new Set(refs.map((r) => r.image))];
    const results = new Map<string, ImageVerdict>();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineError()), this.o.deadlineMs);
    });
    try {
      await Promise.race([
        Promise.all(
          distinct.map(async (image) => {
            results.set(image, await this.verifyImage({ image, path: '' }));
          }),
        ),
        deadline,
      ]);
    } catch (e) {
      if (!(e instanceof DeadlineError)) throw e;
      // name what was refused and what was still pending when time ran out
      for (const image of distinct) {
        if (!results.has(image)) {
          results.set(image, {
            image,
            path: '',
            allowed: false,
            code: 'DEADLINE_EXCEEDED',
            reason: `verification did not finish within ${this.o.deadlineMs} ms (denied)`,
          });
        }
      }
    } finally {
      clearTimeout(timer);
    }
    const verdicts = refs.map((r) => ({ ...(results.get(r.image) as ImageVerdict), path: r.path }));
    const refused = verdicts.filter((v) => !v.allowed);
    if (refused.length > 0) {
      const lines = [
        ...new Map(refused.map((v) => [v.image, `${v.image}: ${v.code}: ${v.reason}`])).values(),
      ];
      return answer(
        { allowed: false, message: `tufa: image not verified: ${lines.join('; ')}` },
        verdicts,
      );
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
