/**
 * Signing a release from a script, with an asynchronous signer: the signing key sits behind an
 * API you await (a KMS, an HSM, a signing service), never in this process. Here the "service" is
 * a small in-process stand-in that answers after a delay; swap in your client's call.
 *
 *   node examples/sign-release.mjs [WORKDIR]
 *
 * It creates a repository, adds a release file, signs every role that changed with its own
 * signer, publishes the site and checks the published metadata with the TUF client.
 */
import { generateKeyPairSync, sign as signBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initMetadataDir, Updater } from 'tufa/client';
import { KeyObjectSigner, publicKeyOf, publishWorkspace, Workspace } from 'tufa/repository';

/** A remote signing service stand-in: holds the private keys, answers sign requests later. */
class SigningService {
  #keys = new Map();
  createKey(name) {
    const { privateKey } = generateKeyPairSync('ed25519');
    this.#keys.set(name, privateKey);
    return publicKeyOf(privateKey); // only the public key leaves the service
  }
  async sign(name, data) {
    await new Promise((ok) => setTimeout(ok, 5)); // a network round trip
    return new Uint8Array(signBytes(null, data, this.#keys.get(name)));
  }
}

/** An asynchronous tufa Signer: `sign` returns a promise of the raw signature. */
class ServiceSigner {
  constructor(service, name) {
    this.service = service;
    this.name = name;
    this.publicKey = service.createKey(name);
    this.keyid = this.publicKey.keyid;
  }
  sign(data) {
    return this.service.sign(this.name, data);
  }
}

const work = process.argv[2] ?? (await mkdtemp(join(tmpdir(), 'tufa-release-')));
const now = Date.now();
const service = new SigningService();
// root stays offline in real life (a key file on an air-gapped machine); the online roles use
// the service
const root = new KeyObjectSigner(generateKeyPairSync('ed25519').privateKey);
const online = {
  targets: new ServiceSigner(service, 'targets'),
  snapshot: new ServiceSigner(service, 'snapshot'),
  timestamp: new ServiceSigner(service, 'timestamp'),
};

const ws = await Workspace.init(join(work, 'repo'), {
  keys: {
    root: [root.publicKey],
    targets: [online.targets.publicKey],
    snapshot: [online.snapshot.publicKey],
    timestamp: [online.timestamp.publicKey],
  },
  now,
});
await ws.sign('root', root);

// the release: a file built by CI, listed under its path with its length and hashes
const artifact = join(work, 'app-1.2.0.tar.gz');
await writeFile(artifact, 'release 1.2.0 contents\n');
await ws.addTargetFile('app/app-1.2.0.tar.gz', await readFile(artifact));
await ws.sign('targets', online.targets);
await ws.refreshSnapshotMeta();
await ws.sign('snapshot', online.snapshot);
await ws.refreshTimestampMeta();
await ws.sign('timestamp', online.timestamp);
const site = join(work, 'site');
const published = await publishWorkspace(ws, site);
console.log(`published ${published.files.length} files: ${published.files.join(', ')}`);

// what a client sees: the release verifies from the published site
const client = join(work, 'client');
await initMetadataDir(client, await readFile(join(site, '1.root.json')));
const updater = new Updater({
  metadataDir: client,
  metadataBaseUrl: pathToFileURL(`${site}/`).href,
  targetBaseUrl: pathToFileURL(`${site}/targets/`).href,
});
await updater.refresh();
const target = await updater.getTargetInfo('app/app-1.2.0.tar.gz');
if (target === undefined) throw new Error('the release is not a signed target');
const bytes = await updater.fetchTarget(target);
console.log(`verified app/app-1.2.0.tar.gz: ${bytes.length} bytes, sha256 ${target.hashes.sha256}`);
await updater.close();
if (process.argv[2] === undefined) await rm(work, { recursive: true, force: true });
