/** tufa: TUF client, signing tools and verify-before-pull for OCI images. */

export * from './client/index.js';
export * from './core/index.js';
