/**
 * The TUF client with no disk: trusted metadata kept in memory, bytes fetched by a fetcher of
 * your own (here a Map; in your code, your storage or transport). To run anywhere it first signs
 * a small repository in memory. Run it with `node examples/memory-store.mjs` after `npm run build`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { MemoryMetadataStore, Updater } from 'tufa/client';
import { DownloadError, DownloadHttpError } from 'tufa/core';
import { buildRepository, KeyObjectSigner } from 'tufa/repository';

// A repository signed with one Ed25519 key for every role (a real one keeps root offline).
const signer = new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);
const role = { signers: [signer] };
const files = await buildRepository({
  root: role,
  targets: role,
  snapshot: role,
  timestamp: role,
  files: [{ path: 'app/config.json', content: new TextEncoder().encode('{"replicas": 3}\n') }],
  now: Date.now(),
});

// A fetcher is one method: the bytes at a URL, never more than maxLength, 404 when missing.
const BASE = 'mem://repository/';
const fetcher = {
  async fetch(url, maxLength) {
    const bytes = url.startsWith(BASE) ? files.get(url.slice(BASE.length)) : undefined;
    if (bytes === undefined) throw new DownloadHttpError(`${url}: not found`, 404);
    if (bytes.length > maxLength) {
      throw new DownloadError(`${url}: more than ${maxLength} bytes`, { code: 'TOO_LARGE' });
    }
    return bytes;
  },
};

const updater = new Updater({
  store: new MemoryMetadataStore(),
  // the root you trust, as bytes (shipped with your program, or from a trusted channel)
  trustedRoot: files.get('1.root.json'),
  metadataBaseUrl: BASE,
  targetBaseUrl: `${BASE}targets/`,
  fetcher,
});
await updater.refresh(); // TUF 5.3–5.6: root chain, timestamp, snapshot, targets
const target = await updater.getTargetInfo('app/config.json');
if (target === undefined) throw new Error('app/config.json is not a signed target');
const bytes = await updater.fetchTarget(target); // length and hashes checked, nothing written
console.log(`${target.path}: ${bytes.length} bytes verified: ${new TextDecoder().decode(bytes)}`);

// A mirror serving other bytes under the same name is refused.
for (const name of files.keys()) {
  if (name.endsWith('.config.json')) files.set(name, new TextEncoder().encode('{"replicas": 0}\n'));
}
try {
  await updater.fetchTarget(target);
  throw new Error('tampered bytes were accepted');
} catch (e) {
  if (e.code !== 'LENGTH_OR_HASH_MISMATCH') throw e;
  console.log(`tampered copy refused: ${e.code}`);
}
