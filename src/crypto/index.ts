/**
 * The node:crypto implementation of the core's `CryptoBackend`, kept out of src/core so that
 * the core itself loads nothing from `node:`. Entry `tufa/core/node` is node.ts (the backend
 * only); sha256Hex is for tufa's own modules.
 */
export { sha256Hex } from './hash.js';
export { nodeBackend } from './node.js';
