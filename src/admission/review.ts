/**
 * AdmissionReview (admission.k8s.io/v1): reading a request, finding every container image of
 * the object under review with its JSON Pointer, and writing the response.
 */

/** An image found in an object (a container's, or an image volume's), with where it is. */
export interface ImageRef {
  /**
   * JSON Pointer to the field holding it, e.g. `/spec/template/spec/containers/0/image` or
   * `/spec/volumes/2/image/reference`.
   */
  readonly path: string;
  readonly image: string;
}

/** The parts of a request the webhook uses. */
export interface ReviewRequest {
  readonly apiVersion: string;
  readonly uid: string;
  readonly kind: string;
  readonly operation: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly object: unknown;
  /** The object as it was (UPDATE). */
  readonly oldObject?: unknown;
  /** The subresource asked for, e.g. `ephemeralcontainers` (kubectl debug). */
  readonly subResource?: string;
}

/** A malformed review: answered with HTTP 400 (the API server then fails closed). */
export class BadReviewError extends Error {
  override readonly name = 'BadReviewError';
}

const API_VERSIONS = new Set(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']);

/** parseReview checks an AdmissionReview body and returns its request. */
export function parseReview(body: unknown): ReviewRequest {
  const review = body as Record<string, unknown> | null;
  if (typeof review !== 'object' || review === null || Array.isArray(review))
    throw new BadReviewError('expected an AdmissionReview object');
  if (review.kind !== 'AdmissionReview')
    throw new BadReviewError(`expected kind AdmissionReview, got ${JSON.stringify(review.kind)}`);
  if (typeof review.apiVersion !== 'string' || !API_VERSIONS.has(review.apiVersion)) {
    throw new BadReviewError(`unsupported apiVersion ${JSON.stringify(review.apiVersion)}`);
  }
  const req = review.request as Record<string, unknown> | null | undefined;
  if (typeof req !== 'object' || req === null)
    throw new BadReviewError('the review has no request');
  if (typeof req.uid !== 'string' || req.uid === '')
    throw new BadReviewError('request.uid is missing');
  const kind = (req.kind as { kind?: unknown } | undefined)?.kind;
  if (typeof kind !== 'string') throw new BadReviewError('request.kind.kind is missing');
  if (typeof req.operation !== 'string') throw new BadReviewError('request.operation is missing');
  return {
    apiVersion: review.apiVersion,
    uid: req.uid,
    kind,
    operation: req.operation,
    ...(typeof req.namespace === 'string' ? { namespace: req.namespace } : {}),
    ...(typeof req.name === 'string' ? { name: req.name } : {}),
    object: req.object,
    ...(req.oldObject === undefined ? {} : { oldObject: req.oldObject }),
    ...(typeof req.subResource === 'string' ? { subResource: req.subResource } : {}),
  };
}

/** valueAt reads the value a JSON Pointer (RFC 6901) names in `doc`; undefined when absent. */
export function valueAt(doc: unknown, pointer: string): unknown {
  let v = doc;
  for (const raw of pointer.split('/').slice(1)) {
    if (typeof v !== 'object' || v === null) return undefined;
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!Object.hasOwn(v, seg)) return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

/** Where each kind keeps its pod spec, as JSON Pointer segments. */
const POD_SPEC: Record<string, readonly string[]> = {
  Pod: ['spec'],
  PodTemplate: ['template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Deployment: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};

/** The kinds whose images are checked. */
export const WORKLOAD_KINDS: readonly string[] = Object.keys(POD_SPEC);

const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * imagesOf lists every image of an object's pod spec: those of its containers, init containers
 * and ephemeral containers, and those of its image volumes (`volumes[].image.reference`, which
 * the kubelet pulls and mounts). A container without a string image, or an image volume without
 * a string reference, is refused: an image we cannot read is not an image we verified.
 */
export function imagesOf(kind: string, object: unknown): ImageRef[] {
  // own keys only: a kind named like an Object.prototype member (`constructor`) is no workload
  const path = Object.hasOwn(POD_SPEC, kind) ? POD_SPEC[kind] : undefined;
  if (path === undefined) return [];
  let spec: unknown = object;
  for (const seg of path) {
    if (typeof spec !== 'object' || spec === null) return [];
    spec = (spec as Record<string, unknown>)[seg];
  }
  if (typeof spec !== 'object' || spec === null) return [];
  const out: ImageRef[] = [];
  const prefix = `/${path.map(escapePointer).join('/')}`;
  for (const field of ['initContainers', 'containers', 'ephemeralContainers']) {
    const list = (spec as Record<string, unknown>)[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw new BadReviewError(`${prefix}/${field}: expected an array`);
    list.forEach((c, i) => {
      const image = (c as Record<string, unknown> | null)?.image;
      if (typeof image !== 'string' || image === '')
        throw new BadReviewError(`${prefix}/${field}/${i}: a container without an image`);
      out.push({ path: `${prefix}/${field}/${i}/image`, image });
    });
  }
  const volumes = (spec as Record<string, unknown>).volumes;
  if (volumes !== undefined && volumes !== null) {
    if (!Array.isArray(volumes)) throw new BadReviewError(`${prefix}/volumes: expected an array`);
    volumes.forEach((v, i) => {
      const source = (v as Record<string, unknown> | null)?.image;
      if (source === undefined || source === null) return;
      const image = (source as Record<string, unknown>).reference;
      if (typeof image !== 'string' || image === '')
        throw new BadReviewError(
          `${prefix}/volumes/${i}/image: an image volume without a reference`,
        );
      out.push({ path: `${prefix}/volumes/${i}/image/reference`, image });
    });
  }
  return out;
}

/** A response to write. */
export interface ReviewResponse {
  allowed: boolean;
  message?: string;
  warnings?: string[];
  patch?: Array<{ op: 'replace'; path: string; value: string }>;
}

/** reviewResponse writes the AdmissionReview answer: same apiVersion, `response.uid` = request's. */
export function reviewResponse(req: ReviewRequest, r: ReviewResponse): object {
  const response: Record<string, unknown> = { uid: req.uid, allowed: r.allowed };
  if (!r.allowed)
    response.status = { code: 403, reason: 'Forbidden', message: r.message ?? 'denied' };
  else if (r.message) response.status = { code: 200, message: r.message };
  if (r.warnings && r.warnings.length > 0) response.warnings = r.warnings;
  if (r.allowed && r.patch && r.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(r.patch)).toString('base64');
  }
  return { apiVersion: req.apiVersion, kind: 'AdmissionReview', response };
}
