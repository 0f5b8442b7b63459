// Verify an image inside a plain node:http request handler: a registry front that serves a
// manifest only when a TUF repository signs it (a registry embedding of tufa).
//
//   GET /v2/<repository>/manifests/<tag>   → 200 with the signed manifest bytes, or 403 DENIED
//
// The handler reads images from one upstream registry and never from a local file: it parses
// the request into an image reference and asks a registry source for the signed digest.
//
// Run (after `npm run build`):
//   UPSTREAM=registry.example METADATA_URL=https://tuf.example/metadata/ ROOT=root.json \
//     node examples/registry-handler.mjs
// It prints `listening on http://127.0.0.1:<port>`; PORT picks the port (default: any free one).
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { Reference, RegistryClient, RegistrySource } from 'tufa/oci/registry';
import { ImageVerifier, TrustPolicy } from 'tufa/verify';

const upstream = process.env.UPSTREAM; // host[:port] of the registry the images come from
const metadataUrl = process.env.METADATA_URL; // the TUF repository that signs them
const root = process.env.ROOT; // its trusted root.json
if (!upstream || !metadataUrl || !root) {
  console.error('set UPSTREAM, METADATA_URL and ROOT');
  process.exit(2);
}

// One rule: every image of the upstream registry is governed by the TUF repository, whose
// trusted root is given as bytes (the library reads no file of its own).
const policy = TrustPolicy.fromJSON(
  { rules: [{ match: `${upstream}/**`, tuf: { metadataUrl, root: await readFile(root) } }] },
  process.cwd(),
);
// Trust data is refreshed at most once a minute, shared by every request.
const verifier = new ImageVerifier({ policy, refreshIntervalMs: 60_000 });
const registry = new RegistryClient();

/** deny answers 403 with an OCI distribution error body. */
function deny(res, message) {
  res.writeHead(403, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code: 'DENIED', message }] }));
}

/** handle is the request handler: what a registry author would mount on their own server. */
async function handle(req, res) {
  const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(new URL(req.url, 'http://x').pathname);
  if (req.method !== 'GET' || m === null) return deny(res, 'only manifest reads are served');
  let reference;
  try {
    reference = Reference.parse(`${upstream}/${m[1]}:${m[2]}`);
  } catch (e) {
    return deny(res, e.message);
  }
  try {
    const v = await verifier.verify(reference, new RegistrySource(registry, reference), {
      signal: AbortSignal.timeout(10_000),
    });
    res.writeHead(200, {
      'content-type': v.parsed.mediaType,
      'docker-content-digest': v.digest,
      'content-length': v.manifest.length,
    });
    res.end(v.manifest);
  } catch (e) {
    deny(res, `${e.code ?? 'ERROR'}: ${e.message}`);
  }
}

const server = createServer((req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
const stop = () =>
  server.close(async () => {
    await verifier.close();
    await registry.close();
  });
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
