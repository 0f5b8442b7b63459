/**
 * Benchmark child: one tuf-js client process (its `Updater`), doing exactly what
 * `client-tufa.ts` does: cold (trusted root copied in) or warm; refresh; one target lookup.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Updater } from 'tuf-js';
import type { ClientJob, ClientReport } from './job.js';

const loaded = performance.now();
const job = JSON.parse(process.argv[2] ?? '{}') as ClientJob;
if (job.cold) {
  await mkdir(job.metadataDir, { recursive: true });
  await copyFile(job.rootFile, join(job.metadataDir, 'root.json'));
}
await mkdir(job.targetDir, { recursive: true });
const initialized = performance.now();
const updater = new Updater({
  metadataBaseUrl: job.metadataUrl,
  targetBaseUrl: job.targetUrl,
  metadataDir: job.metadataDir,
  targetDir: job.targetDir,
});
await updater.refresh();
const refreshed = performance.now();
const target = await updater.getTargetInfo(job.lookupPath);
const looked = performance.now();
const report: ClientReport = {
  client: 'tuf-js',
  found: target !== undefined,
  length: target?.length ?? -1,
  loadedMs: loaded,
  initMs: initialized - loaded,
  refreshMs: refreshed - initialized,
  lookupMs: looked - refreshed,
  endMs: performance.now(),
  maxRssKiB: process.resourceUsage().maxRSS,
  requests: -1,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(0);
