/**
 * The benchmark runner (`npm run bench`): tufa side by side with tuf-js.
 *
 * 1. Generates (or takes from `bench/out/`) the repositories: 1k, 10k, 100k targets in one
 *    targets.json; 100k targets in 256 hashed bins; 1M targets in 16,384 succinct bins.
 * 2. Serves them from one static HTTP server on 127.0.0.1.
 * 3. For each case, alternates tufa and tuf-js, each as a whole cold process (trusted root only:
 *    refresh + one target lookup), several repetitions, then warm runs (cache up to date: only
 *    timestamp.json is fetched). Wall time is measured from outside (spawn to exit), peak RSS
 *    by GNU time. A client that does not finish within the bound is killed, reported as such,
 *    and not run again for that case.
 * 4. Pull: a 512 MiB image pushed with skopeo into Debian's docker-registry on 127.0.0.1, then
 *    `pullImage` against the same transfer without checks.
 * 5. Checks the performance targets, profiles tufa (`--cpu-prof`) where one is missed, prints
 *    the table and writes `docs/performance.md` and `docs/performance.svg`.
 *
 * Flags: `--quick` (small cases, few repetitions, 64 MiB image; output under bench/out/quick),
 * `--cases=id,id`, `--no-pull`, `--no-signing`, `--no-proxy` (bench/proxy.ts: `tufa proxy` against
 * its upstream; `--proxy-mib=N`, default 400, 64 with --quick), `--no-profile`, `--bound=SECONDS` (tuf-js and tufa per run,
 * default 120), `--allowance=SECONDS` (repetitions of one client, case and mode stop once they
 * would take longer; default 130), `--budget=SECONDS` (whole run, default 840), `--out=DIR`
 * (default docs).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../test/support/paths.js';
import { RegistryServer, runOk } from '../test/support/registry.js';
import { StaticServer } from '../test/support/static-server.js';
import { type ChartGroup, renderChart } from './chart.js';
import type { PullJob, PullReport } from './client-pull.js';
import { formatSummary, type ProfileSummary, summarizeFile } from './cpuprofile.js';
import { ensureImage, type GeneratedImage } from './image-gen.js';
import type { ClientJob, ClientReport } from './job.js';
import { type ChildResult, HAVE_GNU_TIME, runNodeChild, type Stats, stats } from './measure.js';
import type { ProxyReport } from './proxy.js';
import {
  ensureRepo,
  type GeneratedRepo,
  type RepoParams,
  repoKey,
  writeRepository,
} from './repo-gen.js';

// ---------------------------------------------------------------------------------------------
// options

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const QUICK = flag('quick');
const OUT = join(ROOT, 'bench', 'out');
const WORK = join(OUT, 'compare-work');
const DOC_DIR = option('out') ?? (QUICK ? join(OUT, 'quick') : join(ROOT, 'docs'));
const BOUND_S = Number(option('bound') ?? 120);
const BUDGET_S = Number(option('budget') ?? 840);
/** Repetitions of one client in one case and mode stop once they would take longer than this. */
const ALLOWANCE_S = Number(option('allowance') ?? 130);
/** The lookup cases leave time for the pull benchmark and the profiles. */
const CASES_BUDGET_S = BUDGET_S - (flag('no-pull') ? 30 : 150);
const STARTED = performance.now();
/**
 * The children run from a copy of dist/ taken at the start: other work rebuilding dist/ during a
 * run cannot change the code measured halfway through. (The path keeps a `dist/` segment, so the
 * source maps still lead to src/.)
 */
const SNAPSHOT = join(OUT, 'run-snapshot');
const DIST_BENCH = join(SNAPSHOT, 'dist', 'bench');

function elapsedS(): number {
  return (performance.now() - STARTED) / 1000;
}

function log(msg: string): void {
  process.stderr.write(`[${elapsedS().toFixed(0).padStart(4)} s] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// cases

type Client = 'tufa' | 'tuf-js';
type Mode = 'cold' | 'warm';
const CLIENTS: readonly Client[] = ['tufa', 'tuf-js'];

interface CaseDef {
  id: string;
  label: string;
  params: RepoParams;
  /** Cold repetitions per client, warm repetitions per client. */
  reps: Record<Client, number>;
  warmReps: Record<Client, number>;
}

const both = (n: number): Record<Client, number> => ({ tufa: n, 'tuf-js': n });

const FULL_CASES: CaseDef[] = [
  // Runs of a few hundred ms are cheap: 9 repetitions keep the medians steady on a shared machine.
  {
    id: 'flat-1k',
    label: '1k targets, one targets.json',
    params: { layout: 'flat', targets: 1_000 },
    reps: both(9),
    warmReps: both(9),
  },
  {
    id: 'flat-10k',
    label: '10k targets, one targets.json',
    params: { layout: 'flat', targets: 10_000 },
    // tuf-js takes ~35 s per run here: fewer repetitions keep the whole run within 15 minutes
    reps: { tufa: 9, 'tuf-js': 3 },
    warmReps: { tufa: 9, 'tuf-js': 2 },
  },
  {
    id: 'flat-100k',
    label: '100k targets, one targets.json',
    params: { layout: 'flat', targets: 100_000 },
    reps: { tufa: 5, 'tuf-js': 1 },
    warmReps: { tufa: 5, 'tuf-js': 1 },
  },
  {
    id: 'hashed-100k',
    label: '100k targets, 256 hashed bins',
    params: { layout: 'hashed', targets: 100_000, bins: 256 },
    reps: both(9),
    warmReps: both(9),
  },
  {
    id: 'succinct-1m',
    label: '1M targets, 16,384 succinct bins',
    params: { layout: 'succinct', targets: 1_000_000, bins: 16_384 },
    reps: { tufa: 5, 'tuf-js': 3 },
    warmReps: { tufa: 5, 'tuf-js': 3 },
  },
];

const QUICK_CASES: CaseDef[] = [
  {
    id: 'flat-1k',
    label: '1k targets, one targets.json',
    params: { layout: 'flat', targets: 1_000 },
    reps: both(2),
    warmReps: both(2),
  },
  {
    id: 'hashed-10k',
    label: '10k targets, 256 hashed bins',
    params: { layout: 'hashed', targets: 10_000, bins: 256 },
    reps: both(2),
    warmReps: both(1),
  },
  {
    id: 'succinct-10k',
    label: '10k targets, 1,024 succinct bins',
    params: { layout: 'succinct', targets: 10_000, bins: 1_024 },
    reps: both(2),
    warmReps: both(1),
  },
];

const IMAGE = QUICK
  ? { layers: 2, layerBytes: 32 * 1024 * 1024 }
  : { layers: 4, layerBytes: 128 * 1024 * 1024 };
const PULL_REPS = QUICK ? 1 : 3;

// ---------------------------------------------------------------------------------------------
// results

interface Run {
  wallMs: number;
  rssKiB: number;
  report: ClientReport;
}

interface Series {
  runs: Run[];
  /** Set when a run did not finish within the bound (then it is not repeated). */
  dnf?: number;
  /** A failure other than the bound, or why it was not run. */
  error?: string;
  skipped?: string;
  /** Why fewer repetitions ran than planned. */
  capped?: string;
}

interface CaseResult {
  def: CaseDef;
  repo: GeneratedRepo;
  series: Record<Client, Record<Mode, Series>>;
}

function wall(s: Series): Stats | undefined {
  return stats(s.runs.map((r) => r.wallMs / 1000));
}

function rss(s: Series): Stats | undefined {
  return stats(s.runs.map((r) => r.rssKiB / 1024));
}

function phase(
  s: Series,
  key: 'loadedMs' | 'refreshMs' | 'lookupMs' | 'endMs',
): number | undefined {
  return stats(s.runs.map((r) => r.report[key]))?.median;
}

// ---------------------------------------------------------------------------------------------
// client runs

let runCounter = 0;

async function runClient(
  client: Client,
  mode: Mode,
  repo: GeneratedRepo,
  metadataUrl: string,
  template: string | undefined,
  extraFlags: readonly string[] = [],
): Promise<{ result: ChildResult; dir: string }> {
  const dir = join(WORK, `${client}-${mode}-${++runCounter}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const metadataDir = join(dir, 'metadata');
  if (mode === 'warm') {
    if (template === undefined) throw new Error('warm run without a template');
    await cp(template, metadataDir, { recursive: true });
  }
  const job: ClientJob = {
    cold: mode === 'cold',
    metadataDir,
    rootFile: repo.rootFile,
    metadataUrl,
    targetUrl: `${metadataUrl}../targets/`,
    targetDir: join(dir, 'targets'),
    lookupPath: repo.lookupPath,
  };
  const script = join(DIST_BENCH, client === 'tufa' ? 'client-tufa.js' : 'client-tufjs.js');
  const result = await runNodeChild(script, JSON.stringify(job), {
    timeoutMs: BOUND_S * 1000,
    nodeFlags: extraFlags,
  });
  return { result, dir };
}

function checkReport(r: ChildResult, repo: GeneratedRepo): string | undefined {
  if (r.timedOut) return undefined;
  const rep = r.report as ClientReport | undefined;
  if (r.exitCode !== 0 || rep === undefined)
    return `exit ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' ').slice(0, 300)}`;
  if (!rep.found || rep.length !== repo.lookupLength)
    return `wrong lookup result (found ${rep.found}, length ${rep.length}, expected ${repo.lookupLength})`;
  return undefined;
}

async function runCase(def: CaseDef, server: StaticServer): Promise<CaseResult> {
  const repo = await ensureRepo(OUT, def.params);
  const metadataUrl = server.url(`${repoKey(def.params)}/metadata/`);
  const empty = (): Series => ({ runs: [] });
  const series: Record<Client, Record<Mode, Series>> = {
    tufa: { cold: empty(), warm: empty() },
    'tuf-js': { cold: empty(), warm: empty() },
  };
  const templates = new Map<Client, string>();
  for (const mode of ['cold', 'warm'] as const) {
    const counts = mode === 'cold' ? def.reps : def.warmReps;
    const maxReps = Math.max(...CLIENTS.map((c) => counts[c]));
    for (let rep = 0; rep < maxReps; rep++) {
      // alternate the order, so neither client always runs right after the other
      const order = rep % 2 === 0 ? CLIENTS : [...CLIENTS].reverse();
      for (const client of order) {
        const s = series[client][mode];
        if (rep >= counts[client] || s.dnf !== undefined || s.error !== undefined) continue;
        if (mode === 'warm' && series[client].cold.runs.length === 0) {
          s.skipped = 'no cold run finished, so there is no cache to start from';
          continue;
        }
        // the next run is expected to take as long as the last one of this series (for a first
        // warm run: as the cold runs did)
        const last =
          s.runs.at(-1)?.wallMs ??
          (mode === 'warm' ? (wall(series[client].cold)?.median ?? 0) : 0) * 1000;
        const spent = s.runs.reduce((n, r) => n + r.wallMs, 0) / 1000;
        if (s.runs.length > 0 && spent + last / 1000 > ALLOWANCE_S) {
          s.capped = `${s.runs.length} of ${counts[client]} runs: repetitions stop once they would pass ${ALLOWANCE_S} s per client, case and mode`;
          continue;
        }
        if (elapsedS() + last / 1000 > CASES_BUDGET_S) {
          s.skipped ??= `the run's time budget (${CASES_BUDGET_S} s for the lookup cases) was spent`;
          continue;
        }
        const { result, dir } = await runClient(
          client,
          mode,
          repo,
          metadataUrl,
          templates.get(client),
        );
        const err = checkReport(result, repo);
        if (result.timedOut) {
          s.dnf = BOUND_S;
          log(`${def.id} ${mode} ${client}: did not finish within ${BOUND_S} s`);
        } else if (err !== undefined) {
          s.error = err;
          log(`${def.id} ${mode} ${client}: FAILED ${err}`);
        } else {
          const report = result.report as unknown as ClientReport;
          s.runs.push({ wallMs: result.wallMs, rssKiB: result.maxRssKiB, report });
          log(
            `${def.id} ${mode} ${client} #${rep + 1}: ${(result.wallMs / 1000).toFixed(3)} s, ${(result.maxRssKiB / 1024).toFixed(0)} MiB (refresh ${report.refreshMs.toFixed(0)} ms, lookup ${report.lookupMs.toFixed(0)} ms)`,
          );
        }
        if (mode === 'cold' && !templates.has(client) && err === undefined && !result.timedOut) {
          templates.set(client, join(dir, 'metadata'));
        } else {
          await rm(dir, { recursive: true, force: true });
        }
      }
    }
  }
  for (const t of templates.values()) await rm(join(t, '..'), { recursive: true, force: true });
  return { def, repo, series };
}

// ---------------------------------------------------------------------------------------------
// pull

interface PullRun {
  wallMs: number;
  rssKiB: number;
  report: PullReport;
}

interface PullResult {
  image: GeneratedImage;
  pushS: number;
  modes: Record<PullJob['mode'], PullRun[]>;
  error?: string;
  profile?: ProfileSummary;
}

const PULL_MODES: PullJob['mode'][] = [
  'tufa',
  'plain',
  'plain-sha256',
  'plain-sha256-overlap',
  'plain-nosync',
];

async function runPull(profileWhenMissed: boolean): Promise<PullResult> {
  const image = await ensureImage(OUT, IMAGE);
  if (image.generatedIn > 0) log(`image generated in ${image.generatedIn.toFixed(1)} s`);
  const result: PullResult = {
    image,
    pushS: 0,
    modes: {
      tufa: [],
      plain: [],
      'plain-sha256': [],
      'plain-sha256-overlap': [],
      'plain-nosync': [],
    },
  };
  const reg = await RegistryServer.start('plain');
  let tuf: StaticServer | undefined;
  const work = join(WORK, 'pull');
  try {
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    const policyFile = join(work, 'skopeo-policy.json');
    await writeFile(policyFile, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    const digestFile = join(work, 'digest');
    const t0 = performance.now();
    await runOk(
      'skopeo',
      [
        '--policy',
        policyFile,
        'copy',
        '--quiet',
        '--format',
        'oci',
        '--digestfile',
        digestFile,
        '--dest-tls-verify=false',
        image.ref,
        `docker://${reg.host}/bench/big:1`,
      ],
      {
        timeoutMs: 300_000,
        env: { ...process.env, REGISTRY_AUTH_FILE: join(work, 'auth.json'), TMPDIR: work },
      },
    );
    result.pushS = (performance.now() - t0) / 1000;
    const digest = (await readFile(digestFile, 'utf8')).trim();
    if (digest !== image.manifestDigest)
      throw new Error(`skopeo pushed ${digest}, expected ${image.manifestDigest}`);
    log(
      `pushed ${(image.blobBytes / 2 ** 20).toFixed(0)} MiB with skopeo in ${result.pushS.toFixed(1)} s`,
    );
    const tufDir = join(work, 'tuf');
    await writeRepository(tufDir, { layout: 'flat', targets: 1 }, [
      { path: `${reg.host}/bench/big:1`, length: image.manifestSize, sha256: digest.slice(7) },
    ]);
    tuf = await StaticServer.start(join(tufDir, 'metadata'));
    const pullOnce = async (mode: PullJob['mode'], n: number, flags: string[] = []) => {
      const dir = join(work, `${mode}-${n}`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      const job: PullJob = {
        mode,
        registry: reg.host,
        repository: 'bench/big',
        tag: '1',
        digest,
        metadataUrl: (tuf as StaticServer).url(),
        rootFile: join(tufDir, 'root.json'),
        work: dir,
      };
      const r = await runNodeChild(join(DIST_BENCH, 'client-pull.js'), JSON.stringify(job), {
        timeoutMs: BOUND_S * 1000,
        nodeFlags: flags,
      });
      await rm(dir, { recursive: true, force: true });
      const rep = r.report as unknown as PullReport | undefined;
      if (r.timedOut) throw new Error(`${mode} pull did not finish within ${BOUND_S} s`);
      if (r.exitCode !== 0 || rep === undefined)
        throw new Error(`${mode} pull: exit ${r.exitCode}: ${r.stderr.slice(-400)}`);
      if (rep.bytes !== image.blobBytes)
        throw new Error(`${mode} pull: ${rep.bytes} bytes, expected ${image.blobBytes}`);
      return { wallMs: r.wallMs, rssKiB: r.maxRssKiB, report: rep };
    };
    for (let rep = 0; rep < PULL_REPS; rep++) {
      const order = PULL_MODES.map(
        (_, i) => PULL_MODES[(i + rep) % PULL_MODES.length] as PullJob['mode'],
      );
      for (const mode of order) {
        if (elapsedS() > BUDGET_S) break;
        const run = await pullOnce(mode, rep);
        result.modes[mode].push(run);
        log(
          `pull ${mode} #${rep + 1}: ${(run.report.pullMs / 1000).toFixed(2)} s, ${mbps(image.blobBytes, run.report.pullMs).toFixed(0)} MB/s, ${(run.rssKiB / 1024).toFixed(0)} MiB`,
        );
      }
    }
    const overhead = pullOverhead(result);
    if (profileWhenMissed && overhead !== undefined && overhead > 10 && elapsedS() < BUDGET_S) {
      log('pull overhead target missed: profiling one tufa pull');
      const profDir = join(OUT, 'profiles', 'pull');
      await rm(profDir, { recursive: true, force: true });
      await pullOnce('tufa', 99, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
      result.profile = await summarizeDir(profDir);
    }
  } catch (e) {
    result.error = (e as Error).message;
    log(`pull: FAILED ${result.error}`);
  } finally {
    await tuf?.close();
    await reg.close();
    await rm(work, { recursive: true, force: true });
  }
  return result;
}

function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

function pullStats(runs: PullRun[]): Stats | undefined {
  return stats(runs.map((r) => r.report.pullMs / 1000));
}

function pullOverhead(p: PullResult): number | undefined {
  const t = pullStats(p.modes.tufa)?.median;
  const b = pullStats(p.modes.plain)?.median;
  return t === undefined || b === undefined ? undefined : (t / b - 1) * 100;
}

// ---------------------------------------------------------------------------------------------
// targets

interface TargetCheck {
  id: string;
  what: string;
  measured: string;
  met: boolean | undefined;
  /** The case to profile when missed. */
  caseId?: string;
  profile?: ProfileSummary;
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : a / b;
}

function timeRatio(c: CaseResult | undefined, mode: Mode = 'cold'): number | undefined {
  if (c === undefined) return undefined;
  return ratio(wall(c.series.tufa[mode])?.median, wall(c.series['tuf-js'][mode])?.median);
}

function rssRatio(c: CaseResult, mode: Mode = 'cold'): number | undefined {
  return ratio(rss(c.series.tufa[mode])?.median, rss(c.series['tuf-js'][mode])?.median);
}

function checkTargets(results: CaseResult[], pull: PullResult | undefined): TargetCheck[] {
  const byId = new Map(results.map((r) => [r.def.id, r]));
  const checks: TargetCheck[] = [];
  const relative = (id: string, what: string, max: number) => {
    const c = byId.get(id);
    if (c === undefined) return;
    const r = timeRatio(c);
    const dnf = c.series['tuf-js'].cold.dnf;
    checks.push({
      id,
      what,
      caseId: id,
      measured:
        r !== undefined
          ? `${r.toFixed(2)}× (${fmtS(wall(c.series.tufa.cold)?.median)} vs ${fmtS(wall(c.series['tuf-js'].cold)?.median)})`
          : dnf !== undefined
            ? `tuf-js did not finish in ${dnf} s`
            : 'no figure',
      met:
        r !== undefined
          ? r <= max
          : dnf !== undefined && wall(c.series.tufa.cold) !== undefined
            ? true
            : undefined,
    });
  };
  const absolute = (id: string, what: string, maxS: number) => {
    const c = byId.get(id);
    if (c === undefined) return;
    const m = wall(c.series.tufa.cold)?.median;
    const inProc = phase(c.series.tufa.cold, 'endMs');
    checks.push({
      id,
      what,
      caseId: id,
      measured:
        m === undefined
          ? (c.series.tufa.cold.error ??
            (c.series.tufa.cold.dnf
              ? `did not finish in ${c.series.tufa.cold.dnf} s`
              : 'no figure'))
          : `${fmtS(m)} (in process: ${fmtS((inProc ?? 0) / 1000)})`,
      met: m === undefined ? false : m <= maxS,
    });
  };
  relative('flat-1k', '1k targets: ≤ 0.4× tuf-js time', 0.4);
  absolute('flat-10k', '10k targets: ≤ 0.2 s', 0.2);
  absolute('flat-100k', '100k targets in one targets.json: ≤ 1 s', 1);
  relative('hashed-100k', '100k targets in 256 bins: ≤ 0.6× tuf-js time', 0.6);
  // memory: every case where both clients finished
  const mem = results
    .map((c) => ({ id: c.def.id, r: rssRatio(c) }))
    .filter((x): x is { id: string; r: number } => x.r !== undefined);
  if (mem.length > 0) {
    const worst = mem.reduce((a, b) => (b.r > a.r ? b : a));
    checks.push({
      id: 'memory',
      what: 'peak memory: ≤ 0.7× tuf-js (every case both finish, cold)',
      measured: mem.map((m) => `${m.id} ${m.r.toFixed(2)}×`).join(', '),
      met: worst.r <= 0.7,
    });
  }
  absolute('succinct-1m', '1M targets in 16,384 succinct bins: ≤ 0.5 s', 0.5);
  if (pull !== undefined) {
    const o = pullOverhead(pull);
    checks.push({
      id: 'pull',
      what: 'pull: digest checking ≤ 10% overhead',
      measured:
        o === undefined ? (pull.error ?? 'no figure') : `${o >= 0 ? '+' : ''}${o.toFixed(1)}%`,
      met: o === undefined ? undefined : o <= 10,
    });
  }
  return checks;
}

// ---------------------------------------------------------------------------------------------
// profiles

async function summarizeDir(dir: string): Promise<ProfileSummary | undefined> {
  const files = existsSync(dir)
    ? (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'))
    : [];
  const f = files[0];
  return f === undefined ? undefined : summarizeFile(join(dir, f), 15);
}

async function profileCase(
  c: CaseResult,
  server: StaticServer,
): Promise<ProfileSummary | undefined> {
  const dir = join(OUT, 'profiles', c.def.id);
  await rm(dir, { recursive: true, force: true });
  const { result, dir: work } = await runClient(
    'tufa',
    'cold',
    c.repo,
    server.url(`${repoKey(c.def.params)}/metadata/`),
    undefined,
    ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=200'],
  );
  await rm(work, { recursive: true, force: true });
  if (result.exitCode !== 0) return undefined;
  return summarizeDir(dir);
}

// ---------------------------------------------------------------------------------------------
// output

function fmtS(s: number | undefined): string {
  if (s === undefined) return '–';
  if (s >= 10) return `${s.toFixed(1)} s`;
  if (s >= 1) return `${s.toFixed(2)} s`;
  return `${(s * 1000).toFixed(0)} ms`;
}

function fmtRange(st: Stats | undefined, unit: 's' | 'MiB'): string {
  if (st === undefined) return '–';
  if (unit === 'MiB') return `${st.median.toFixed(0)} (${st.min.toFixed(0)}–${st.max.toFixed(0)})`;
  return `${fmtS(st.median)} (${fmtS(st.min)}–${fmtS(st.max)})`;
}

function seriesCell(s: Series, unit: 's' | 'MiB'): string {
  const st = unit === 's' ? wall(s) : rss(s);
  if (st !== undefined) return `${fmtRange(st, unit)}${st.n > 1 ? '' : ' [1 run]'}`;
  if (s.dnf !== undefined) return `did not finish in ${s.dnf} s`;
  if (s.error !== undefined) return `failed: ${s.error.slice(0, 60)}`;
  return s.skipped !== undefined ? `not run: ${s.skipped}` : '–';
}

function fmtRatio(r: number | undefined): string {
  if (r === undefined) return '–';
  return r >= 0.1 ? `${r.toFixed(2)}×` : `${r.toPrecision(2)}×`;
}

function mainTable(results: CaseResult[]): string[] {
  const lines = [
    '| case | run | tufa wall, median (min–max) | tuf-js wall, median (min–max) | time tufa/tuf-js | tufa peak RSS MiB | tuf-js peak RSS MiB | RSS tufa/tuf-js | runs |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const c of results) {
    for (const mode of ['cold', 'warm'] as const) {
      const t = c.series.tufa[mode];
      const j = c.series['tuf-js'][mode];
      lines.push(
        `| ${c.def.label} | ${mode} | ${seriesCell(t, 's')} | ${seriesCell(j, 's')} | ${fmtRatio(timeRatio(c, mode))} | ${seriesCell(t, 'MiB').replace(/^did not.*|^failed.*|^not run.*/, '–')} | ${seriesCell(j, 'MiB').replace(/^did not.*|^failed.*|^not run.*/, '–')} | ${fmtRatio(rssRatio(c, mode))} | ${t.runs.length} / ${j.runs.length} |`,
      );
    }
  }
  return lines;
}

/** tableNotes lists, below the table, why series have fewer runs than planned. */
function tableNotes(results: CaseResult[]): string[] {
  const notes: string[] = [];
  for (const c of results) {
    for (const mode of ['cold', 'warm'] as const) {
      for (const client of CLIENTS) {
        const s = c.series[client][mode];
        const why = s.capped ?? s.skipped;
        if (why !== undefined) notes.push(`- ${c.def.label}, ${mode}, ${client}: ${why}.`);
        if (s.dnf !== undefined)
          notes.push(
            `- ${c.def.label}, ${mode}, ${client}: killed after ${s.dnf} s (the bound of one run); not run again.`,
          );
      }
    }
  }
  return notes.length === 0 ? [] : ['', 'Notes:', '', ...notes];
}

function phaseTable(results: CaseResult[]): string[] {
  const lines = [
    '| case | run | client | modules loaded at | refresh | lookup | work done at | exit (wall) |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const c of results) {
    for (const mode of ['cold', 'warm'] as const) {
      for (const client of CLIENTS) {
        const s = c.series[client][mode];
        if (s.runs.length === 0) continue;
        const ms = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(0)} ms`);
        lines.push(
          `| ${c.def.id} | ${mode} | ${client} | ${ms(phase(s, 'loadedMs'))} | ${ms(phase(s, 'refreshMs'))} | ${ms(phase(s, 'lookupMs'))} | ${ms(phase(s, 'endMs'))} | ${ms((wall(s)?.median ?? 0) * 1000)} |`,
        );
      }
    }
  }
  return lines;
}

function pullTable(p: PullResult): string[] {
  const base = pullStats(p.modes.plain)?.median;
  const lines = [
    '| transfer | pull time, median (min–max) | throughput | peak RSS MiB | vs plain GET (fsync) |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  const names: Record<PullJob['mode'], string> = {
    tufa: 'tufa `pullImage` (TUF refresh + lookup, manifest and blob digests checked, fsync)',
    plain: 'plain undici GET of each blob to disk (fsync + rename, no checks)',
    'plain-sha256': 'plain GET as above, plus SHA-256 of each blob compared with its digest',
    'plain-sha256-overlap':
      'as above, each chunk written before it is hashed (hashing overlaps the disk write)',
    'plain-nosync': 'plain undici GET of each blob to disk (no fsync, no checks)',
  };
  for (const mode of PULL_MODES) {
    const st = pullStats(p.modes[mode]);
    const r = stats(p.modes[mode].map((x) => x.rssKiB / 1024));
    lines.push(
      `| ${names[mode]} | ${fmtRange(st, 's')} | ${st ? `${mbps(p.image.blobBytes, st.median * 1000).toFixed(0)} MB/s` : '–'} | ${fmtRange(r, 'MiB')} | ${st && base ? `${((st.median / base - 1) * 100).toFixed(1)}%` : '–'} |`,
    );
  }
  return lines;
}

/** pullSplit separates tufa's fixed cost (verify before pull) from the blob transfer. */
function pullSplit(p: PullResult): string[] {
  const first = stats(p.modes.tufa.map((r) => r.report.firstBlobMs ?? Number.NaN))?.median;
  const total = pullStats(p.modes.tufa)?.median;
  const plain = pullStats(p.modes.plain)?.median;
  const hashed = pullStats(p.modes['plain-sha256'])?.median;
  if (first === undefined || total === undefined || plain === undefined) return [];
  const blobs = total - first / 1000;
  const lines = [
    `tufa's pull, split (medians): ${fmtS(first / 1000)} until the first blob was stored (TUF refresh and lookup, the manifest fetched by the signed digest and checked, the layout started), then ${fmtS(blobs)} for the blobs (${mbps(p.image.blobBytes, blobs * 1000).toFixed(0)} MB/s, ${((blobs / plain - 1) * 100).toFixed(1)}% over the plain GET).`,
  ];
  if (hashed !== undefined)
    lines.push(
      `Hashing alone (plain GET + SHA-256) costs ${((hashed / plain - 1) * 100).toFixed(1)}% over the plain GET.`,
    );
  return [...lines.flatMap((l) => [l, '']), ''].slice(0, -1);
}

function targetTable(checks: TargetCheck[]): string[] {
  return [
    '| target | measured | verdict |',
    '| --- | --- | --- |',
    ...checks.map(
      (c) =>
        `| ${c.what} | ${c.measured} | ${c.met === undefined ? 'no figure' : c.met ? 'met' : '**missed**'} |`,
    ),
  ];
}

function chartGroups(results: CaseResult[]): ChartGroup[] {
  const groups: ChartGroup[] = [];
  for (const c of results) {
    for (const mode of ['cold', 'warm'] as const) {
      groups.push({
        label: `${c.def.label.replace(', one targets.json', '')} (${mode})`,
        bars: CLIENTS.map((client) => {
          const s = c.series[client][mode];
          const m = wall(s)?.median;
          if (m !== undefined) return { client, seconds: m };
          if (s.dnf !== undefined) return { client, dnfBound: s.dnf };
          return { client, note: s.error ? 'failed' : (s.skipped ?? 'not run') };
        }),
      });
    }
  }
  return groups;
}

/** gitState names the commit measured, and says when src/ had uncommitted changes. */
function gitState(): string {
  try {
    const run = (args: string[]) =>
      execFileSync('git', args, {
        cwd: ROOT,
        timeout: 10_000,
        maxBuffer: 256 * 1024 * 1024,
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .toString()
        .trim();
    const head = run(['rev-parse', '--short', 'HEAD']);
    const diff = run(['diff', 'HEAD', '--', 'src']);
    const untracked = run(['ls-files', '--others', '--exclude-standard', '--', 'src']);
    const dirty = diff.length > 0 || untracked.length > 0;
    const id = createHash('sha256').update(`${diff}\n${untracked}`).digest('hex').slice(0, 8);
    return `commit ${head}${dirty ? ` with uncommitted changes in src/ (diff ${id}; the working tree was measured)` : ''}`;
  } catch {
    return 'not a git checkout';
  }
}

function tufJsVersion(): string {
  try {
    return (
      JSON.parse(readFileSync(join(ROOT, 'node_modules', 'tuf-js', 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return '?';
  }
}

function machineInfo(
  loadStart: number[],
  loadEnd: number[],
  sourceAtStart: string,
  sourceAtEnd: string,
): string[] {
  const cpu = cpus();
  const version = (file: string) => {
    try {
      return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  const tool = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim()
        .split('\n')[0];
    } catch {
      return 'not found';
    }
  };
  const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(', ');
  return [
    `- CPU: ${cpu[0]?.model ?? '?'}, ${cpu.length} cores`,
    `- memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB; Linux ${release()}`,
    `- Node ${process.version}; tufa ${version(join(ROOT, 'package.json'))}; tuf-js ${version(join(ROOT, 'node_modules', 'tuf-js', 'package.json'))} (@tufjs/models ${version(join(ROOT, 'node_modules', '@tufjs', 'models', 'package.json'))})`,
    `- ${tool('docker-registry', ['--version'])}; ${tool('skopeo', ['--version'])}`,
    `- load average (1, 5, 15 min) at start: ${fmtLoad(loadStart)}; at end: ${fmtLoad(loadEnd)}`,
    `- peak RSS measured by ${HAVE_GNU_TIME ? 'GNU time (`/usr/bin/time -v`, the child process as a whole)' : "the child's own `process.resourceUsage().maxRSS`"}`,
    `- tufa source: ${sourceAtStart}${sourceAtEnd === sourceAtStart ? '' : ` (at the end of the run: ${sourceAtEnd}; the code compiled at the start was measured throughout)`}`,
    `- date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
  ];
}

const ANALYSIS_BEGIN = '<!-- analysis:begin (kept when the benchmark rewrites this file) -->';
const ANALYSIS_END = '<!-- analysis:end -->';

async function keptAnalysis(file: string): Promise<string> {
  const old = await readFile(file, 'utf8').catch(() => '');
  const a = old.indexOf(ANALYSIS_BEGIN);
  const b = old.indexOf(ANALYSIS_END);
  if (a < 0 || b < a) return `${ANALYSIS_BEGIN}\n_No analysis written yet._\n${ANALYSIS_END}`;
  return old.slice(a, b + ANALYSIS_END.length);
}

// ---------------------------------------------------------------------------------------------
// main

// ---------------------------------------------------------------------------------------------
// Signing at scale (bench/signing.ts, one child process)

/** What bench/signing.ts prints. */
interface SigningReport {
  targets: number;
  bins: number;
  add: number;
  tufa: {
    total: number;
    addTotal: number;
    changedFiles: number;
    expectedChangedFiles: number;
    phases: Record<string, number>;
    addPhases: Record<string, number>;
  };
  tufjs: { total: number; addTotal: number };
  ratio: { build: number; add: number };
  maxRssMiB: { afterTufa: number };
}

/**
 * runSigning runs the signing job (`--signing=N` targets; default 100,000, 2,000 with --quick)
 * and returns its report, or why it failed.
 */
function runSigning(): SigningReport | string {
  const n = option('signing') ?? (QUICK ? '2000' : '100000');
  log(`signing at scale: ${n} targets into 256 hashed bins, then 1,000 more`);
  try {
    const text = execFileSync(
      process.execPath,
      [join(SNAPSHOT, 'dist', 'bench', 'signing.js'), `--targets=${n}`, '--bins=256', '--add=1000'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        timeout: 900_000,
        maxBuffer: 1 << 20,
      },
    );
    return JSON.parse(text) as SigningReport;
  } catch (e) {
    return (e as Error).message;
  }
}

function signingSection(r: SigningReport | string): string[] {
  if (typeof r === 'string') return ['## Signing at scale', '', `The signing job failed: ${r}`, ''];
  const phases = (p: Record<string, number>) =>
    Object.entries(p)
      .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
      .join(', ');
  return [
    '## Signing at scale',
    '',
    `\`bench/signing.ts\`: ${r.targets.toLocaleString('en')} targets into ${r.bins} hashed bins (path_hash_prefixes), init to publish, then ${r.add.toLocaleString('en')} more and re-publish; the peer builds, signs and writes the same repository with @tufjs/models (no checks). Run alone: \`node dist/bench/signing.js --targets=N --bins=256 --add=1000\`.`,
    '',
    '| step | tufa | @tufjs/models | ratio | target |',
    '| --- | ---: | ---: | ---: | --- |',
    `| init → publish | ${(r.tufa.total / 1000).toFixed(1)} s | ${(r.tufjs.total / 1000).toFixed(1)} s | ${r.ratio.build} | ${r.targets === 100_000 ? (r.tufa.total <= 10_000 ? 'met (≤ 10 s)' : 'missed (≤ 10 s)') : '≤ 10 s at 100k'} |`,
    `| add ${r.add} and re-publish | ${(r.tufa.addTotal / 1000).toFixed(1)} s | ${(r.tufjs.addTotal / 1000).toFixed(1)} s | ${r.ratio.add} | ≤ 2 s (at 1M targets) |`,
    '',
    `tufa phases: ${phases(r.tufa.phases)}; re-publish: ${phases(r.tufa.addPhases)}. Files the re-publish changed: ${r.tufa.changedFiles} (touched bins, snapshot, timestamp: ${r.tufa.expectedChangedFiles}). Peak RSS after tufa's part: ${r.maxRssMiB.afterTufa} MiB.`,
    '',
  ];
}

// ---------------------------------------------------------------------------------------------
// tufa proxy against its upstream (bench/proxy.ts, one child process)

/**
 * runProxy runs the proxy job (`--proxy-mib=N`, default 400 MiB, 64 with --quick) and returns
 * its report, or why it failed.
 */
function runProxy(): ProxyReport | string {
  const mib = option('proxy-mib') ?? (QUICK ? '64' : '400');
  const reps = QUICK ? '1' : '3';
  log(`tufa proxy: ${mib} MiB single-layer image, ${reps} pulls each way`);
  try {
    const text = execFileSync(
      process.execPath,
      [join(SNAPSHOT, 'dist', 'bench', 'proxy.js'), `--mib=${mib}`, `--reps=${reps}`],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        timeout: 900_000,
        maxBuffer: 1 << 20,
      },
    );
    return JSON.parse(text) as ProxyReport;
  } catch (e) {
    return (e as Error).message;
  }
}

function proxySection(r: ProxyReport | string): string[] {
  if (typeof r === 'string') return ['## tufa proxy', '', `The proxy job failed: ${r}`, ''];
  const met = (ok: boolean) => (ok ? 'met' : 'missed');
  return [
    '## tufa proxy',
    '',
    `\`bench/proxy.ts\`: a ${r.mib} MiB single-layer image in Debian's docker-registry on 127.0.0.1, signed as a TUF target; \`skopeo copy docker://HOST/bench/big:1 oci:…\` through \`tufa proxy\` (startRegistryProxy) and straight from the registry, alternating, ${r.reps}× each after one warm-up pull; then ${r.manifest.requests} manifest GETs by tag each way (keep-alive, warm trust data), alternating. Run alone: \`node dist/bench/proxy.js --mib=${r.mib} --reps=${r.reps}\`.`,
    '',
    '| measure | direct | through the proxy | ratio / added | target |',
    '| --- | ---: | ---: | ---: | --- |',
    `| pull throughput (median) | ${r.pull.directMBps} MB/s | ${r.pull.proxyMBps} MB/s | ${r.pull.ratio}× | ${met(r.pull.met)} (≥ 0.9×) |`,
    `| manifest request p50 | ${r.manifest.directP50Ms} ms | ${r.manifest.proxyP50Ms} ms | ${r.manifest.addedP50Ms >= 0 ? '+' : ''}${r.manifest.addedP50Ms} ms | ${met(r.manifest.met)} (≤ 5 ms added) |`,
    `| manifest request p90 | ${r.manifest.directP90Ms} ms | ${r.manifest.proxyP90Ms} ms | | |`,
    '',
    `Pull times (s): direct ${r.pull.directS.join(', ')}; proxy ${r.pull.proxyS.join(', ')}.`,
    '',
  ];
}

async function main(): Promise<void> {
  const loadStart = loadavg();
  log(
    `tufa vs tuf-js benchmark${QUICK ? ' (quick)' : ''}; load average ${loadStart.map((l) => l.toFixed(2)).join(' ')}`,
  );
  if (!existsSync(join(ROOT, 'dist', 'bench', 'client-tufa.js')))
    throw new Error('dist/bench is missing: compile first (npm run bench does)');
  await rm(SNAPSHOT, { recursive: true, force: true });
  // test/: the proxy job starts docker-registry and builds its TUF repository with test/support
  for (const dir of ['src', 'bench', 'test'])
    await cp(join(ROOT, 'dist', dir), join(SNAPSHOT, 'dist', dir), { recursive: true });
  const sourceAtStart = gitState();
  await mkdir(WORK, { recursive: true });
  const onlyCases = option('cases')?.split(',');
  const cases = (QUICK ? QUICK_CASES : FULL_CASES).filter(
    (c) => onlyCases === undefined || onlyCases.includes(c.id),
  );
  for (const c of cases) {
    const t = performance.now();
    const repo = await ensureRepo(OUT, c.params);
    log(
      `${c.id}: repository ${repoKey(c.params)} ${repo.generatedIn > 0 ? `generated in ${repo.generatedIn.toFixed(1)} s` : `cached (${((performance.now() - t) / 1000).toFixed(1)} s)`}; cold fetch ${(repo.coldBytes / 2 ** 20).toFixed(2)} MiB`,
    );
  }
  const server = await StaticServer.start(join(OUT, 'repos'));
  const results: CaseResult[] = [];
  let pull: PullResult | undefined;
  let signing: SigningReport | string | undefined;
  let proxy: ProxyReport | string | undefined;
  let checks: TargetCheck[] = [];
  try {
    for (const c of cases) {
      results.push(await runCase(c, server));
      server.take();
    }
    if (!flag('no-pull')) {
      pull = await runPull(!flag('no-profile'));
    }
    if (!flag('no-signing')) signing = runSigning();
    if (!flag('no-proxy')) proxy = runProxy();
    checks = checkTargets(results, pull);
    if (!flag('no-profile')) {
      for (const chk of checks) {
        if (chk.met !== false || chk.caseId === undefined) continue;
        const c = results.find((r) => r.def.id === chk.caseId);
        if (c === undefined || elapsedS() > BUDGET_S + 30) continue;
        log(`${chk.id}: target missed; profiling one cold tufa run`);
        chk.profile = await profileCase(c, server);
      }
      const memCheck = checks.find((c) => c.id === 'memory');
      if (memCheck?.met === false && !checks.some((c) => c.caseId === 'flat-1k' && c.profile)) {
        const c = results.find((r) => r.def.id === 'flat-1k');
        if (c !== undefined) memCheck.profile = await profileCase(c, server);
      }
    }
  } finally {
    await server.close();
    await rm(WORK, { recursive: true, force: true });
  }
  const loadEnd = loadavg();
  const totalS = elapsedS();

  // ---- report
  const table = mainTable(results);
  const lines: string[] = [
    '# Performance: tufa and tuf-js side by side',
    '',
    `Generated by \`npm run bench\` (bench/run.ts) in ${totalS.toFixed(0)} s${QUICK ? ' (quick mode: small cases, not the reference figures)' : ''}. Do not edit by hand outside the analysis section: the next run rewrites the rest.`,
    '',
    '## Machine',
    '',
    ...machineInfo(loadStart, loadEnd, sourceAtStart, gitState()),
    '',
    '## Method',
    '',
    '- Repositories are generated deterministically by `bench/repo-gen.ts` (Ed25519 keys from fixed seeds, consistent snapshots, compact JSON with the signed part in canonical form; snapshot and timestamp list version, length and sha256) and cached in `bench/out/repos/`. One static HTTP server on 127.0.0.1 serves them.',
    "- Each run is a whole new Node process (`bench/client-tufa.ts`: tufa's `Updater` after `initMetadataDir`, imported from the `tufa/client` entry point with its default HTTP fetcher; `bench/client-tufjs.ts`: tuf-js's `Updater` with the root copied in and its default fetcher), measured from outside: wall time from spawn to exit, peak RSS by GNU time.",
    '- **cold**: an empty metadata folder with only the trusted root: refresh (root, timestamp, snapshot, targets) and one target lookup (which fetches one bin where there are bins). **warm**: the metadata folder a cold run left (up to date): refresh fetches `timestamp.json` only, then the same lookup from the cache.',
    `- The clients alternate run by run (tufa first in odd repetitions, tuf-js first in even ones). A run that does not finish within ${BOUND_S} s is killed and reported as such, and that client is not run again for that case; repetitions of one client, case and mode also stop once they would take more than ${ALLOWANCE_S} s in all (the notes under the table say where).`,
    '- Both clients must find the looked-up target with its signed length, or the run counts as failed.',
    '',
    '## Repositories',
    '',
    '| case | metadata files | bytes a cold client fetches (root excluded) | generation |',
    '| --- | ---: | ---: | --- |',
    ...results.map(
      (c) =>
        `| ${c.def.label} | ${c.repo.files} | ${(c.repo.coldBytes / 2 ** 20).toFixed(2)} MiB | ${c.repo.generatedIn > 0 ? `${c.repo.generatedIn.toFixed(1)} s (this run)` : 'cached'} |`,
    ),
    '',
    '## Results',
    '',
    ...table,
    ...tableNotes(results),
    '',
    '![wall time per case, log scale](performance.svg)',
    '',
    '### Where the time goes (medians, ms since process start, as each child reports it)',
    '',
    'Node itself needs ~40 ms to start. "modules loaded at": when the client\'s modules were imported; "work done at": when refresh and lookup were over; the rest up to the wall time is process exit.',
    '',
    ...phaseTable(results),
    '',
  ];
  if (pull !== undefined) {
    lines.push(
      '## Pull throughput',
      '',
      `A ${(pull.image.blobBytes / 2 ** 20).toFixed(0)} MiB image (${IMAGE.layers} layers of random data, gzip-wrapped, and a config) pushed with skopeo into Debian's docker-registry on 127.0.0.1 (push: ${pull.pushS.toFixed(1)} s), then pulled ${PULL_REPS}× per mode, modes alternating, each as a fresh process. Pull time is measured inside the process (module loading excluded); MB = 10^6 bytes of blobs.`,
      '',
      ...(pull.error !== undefined ? [`Pull benchmark failed: ${pull.error}`, ''] : []),
      ...pullTable(pull),
      '',
      ...pullSplit(pull),
    );
  }
  if (signing !== undefined) lines.push(...signingSection(signing));
  if (proxy !== undefined) lines.push(...proxySection(proxy));
  lines.push('## Targets', '', ...targetTable(checks), '');
  const profiled = checks.filter((c) => c.profile !== undefined);
  const pullProfile = pull?.profile;
  if (profiled.length > 0 || pullProfile !== undefined) {
    lines.push(
      '## Profiles of missed targets',
      '',
      'One cold tufa process per missed target, run with `node --cpu-prof` (the .cpuprofile files are in `bench/out/profiles/`; summarize one with `node dist/bench/cpuprofile.js FILE`).',
      '',
    );
    for (const c of profiled) {
      lines.push(`### ${c.what}`, '', formatSummary(c.profile as ProfileSummary), '');
    }
    if (pullProfile !== undefined) lines.push('### pull', '', formatSummary(pullProfile), '');
  }
  await mkdir(DOC_DIR, { recursive: true });
  const docFile = join(DOC_DIR, 'performance.md');
  lines.push('## Analysis', '', await keptAnalysis(docFile), '');
  await writeFile(docFile, lines.join('\n'));
  const svg = renderChart(
    chartGroups(results),
    'tufa vs tuf-js: refresh + one target lookup, whole process',
    `${cpus()[0]?.model ?? ''}, ${cpus().length} cores, Node ${process.version}, tuf-js ${tufJsVersion()}, ${new Date().toISOString().slice(0, 10)}, load average ${loadStart[0]?.toFixed(2)} at start`,
  );
  await writeFile(join(DOC_DIR, 'performance.svg'), svg);

  // ---- console
  const out = [
    '',
    ...table,
    '',
    ...(pull ? [...pullTable(pull), ''] : []),
    ...(signing === undefined ? [] : signingSection(signing)),
    ...(proxy === undefined ? [] : proxySection(proxy)),
    ...targetTable(checks),
    '',
    `wrote ${docFile} and ${join(DOC_DIR, 'performance.svg')} in ${totalS.toFixed(0)} s`,
    '',
  ];
  process.stdout.write(out.join('\n'));
}

await main();
