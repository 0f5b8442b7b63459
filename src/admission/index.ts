export {
  BadReviewError,
  type ImageRef,
  imagesOf,
  parseReview,
  type ReviewRequest,
  type ReviewResponse,
  reviewResponse,
  WORKLOAD_KINDS,
} from './review.js';
export { type RunningServer, type ServerOptions, startAdmissionServer } from './server.js';
export {
  AdmissionController,
  type ControllerOptions,
  type ImageVerdict,
  type Mode,
  type ReviewOutcome,
} from './webhook.js';
