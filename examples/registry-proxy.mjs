// A registry front that serves only signed images, mounted in your own Node HTTP server.
//
//   node examples/registry-proxy.mjs tufa-policy.json registry.example [PORT]
//   skopeo copy --src-tls-verify=false docker://127.0.0.1:PORT/demo/app:1.0 oci:out:app
//
// Every manifest is verified under the trust policy and served as the signed bytes; blobs are
// streamed from the upstream registry and hash-checked on the way (see docs/registry-proxy.md).
// Put TLS in front of it (or use https.createServer) outside a loopback test.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from 'tufa/oci/registry';
import { createVerifyingRegistryHandler } from 'tufa/proxy';
import { ImageVerifier, TrustPolicy } from 'tufa/verify';

const [policyFile, upstream, port = '0'] = process.argv.slice(2);
if (policyFile === undefined || upstream === undefined) {
  console.error('usage: registry-proxy.mjs POLICY.json UPSTREAM-REGISTRY [PORT]');
  process.exit(2);
}

const upstreamClient = new RegistryClient(); // credentials: pass `credentials` (Docker config)
const verifier = new ImageVerifier({
  policy: await TrustPolicy.load(policyFile),
  registry: upstreamClient,
  files: (path) => readFile(path), // the trusted roots the policy names
  cacheDir: join(tmpdir(), 'tufa-example-proxy-cache'),
  refreshIntervalMs: 60_000, // requests share one trust refresh a minute
  failureCacheMs: 5_000, // a trust server that fails is not asked by every request
});
const registry = createVerifyingRegistryHandler({
  verifier,
  registry: upstreamClient,
  upstream,
});

const server = createServer((req, res) => {
  // your own routes first; everything else is the registry API
  if (req.url === '/') {
    res.end('a registry front serving only signed images: /v2/\n');
    return;
  }
  registry(req, res);
});
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  verifier.close();
  upstreamClient.close();
});
