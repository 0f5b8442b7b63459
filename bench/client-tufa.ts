/**
 * Benchmark child: one tufa client process. Reads its job (JSON) from argv[2], then:
 * cold: initMetadataDir with the trusted root; refresh; one target lookup;
 * warm: the metadata folder is already up to date; refresh; one target lookup.
 * Prints one JSON line: what it found and the time of each phase (ms since process start).
 */
import { mkdir, readFile } from 'node:fs/promises';
// the library's TUF-client entry point (`tufa/client` in package.json exports)
import { initMetadataDir, Updater } from '../src/client/index.js';
import type { ClientJob, ClientReport } from './job.js';

const loaded = performance.now();
const job = JSON.parse(process.argv[2] ?? '{}') as ClientJob;
if (job.cold) {
  await mkdir(job.metadataDir, { recursive: true });
  await initMetadataDir(job.metadataDir, new Uint8Array(await readFile(job.rootFile)));
}
const initialized = performance.now();
const updater = new Updater({ metadataDir: job.metadataDir, metadataBaseUrl: job.metadataUrl });
await updater.refresh();
const refreshed = performance.now();
const target = await updater.getTargetInfo(job.lookupPath);
const looked = performance.now();
await updater.close();
const report: ClientReport = {
  client: 'tufa',
  found: target !== undefined,
  length: target?.length ?? -1,
  loadedMs: loaded,
  initMs: initialized - loaded,
  refreshMs: refreshed - initialized,
  lookupMs: looked - refreshed,
  endMs: performance.now(),
  maxRssKiB: process.resourceUsage().maxRSS,
  requests: updater.requests.length,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(0);
