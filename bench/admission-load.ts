/**
 * Load test of the admission webhook: `tufa admission serve` (the real CLI, its own process,
 * logging one JSON line per review to a file) against a real registry and TUF repository
 * (test/admission/environment.ts), driven from this process over keep-alive HTTPS with the
 * test CA. The cache is warm: every review of the mix is answered once before measuring.
 *
 * Two phases, both bounded by count and by time:
 *
 *  1. closed loop: `--concurrency` (default 48) requests always in flight, up to `--count`
 *     (20,000) reviews or `--seconds` (30 s): the throughput, reviews/s;
 *  2. open loop: reviews sent at `--rate` (2,000/s) on a fixed schedule for `--open-seconds`
 *     (10 s), latency counted from each review's scheduled time (no coordinated omission),
 *     at most `--max-in-flight` (256) in flight over the same `--concurrency` connections: the
 *     latency at the target rate (also reported from send, without the generator's own lag).
 *
 * In a closed loop latency is concurrency ÷ throughput by construction (48 in flight at
 * 2,000/s is 24 ms each), so the p99 target is judged at the target rate (phase 2).
 *
 * Targets (2 cores): ≥ 2,000 reviews/s (phase 1) and p99 ≤ 20 ms at 2,000 reviews/s (phase 2).
 *
 * Usage: node dist/bench/admission-load.js [--count N] [--seconds S] [--concurrency C]
 *          [--rate R] [--open-seconds S] [--max-in-flight N] [--json]
 *          [--server-node-flags "FLAGS"]   (node flags of the server, e.g. "--cpu-prof")
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { AdmissionWorld, ReviewClient } from '../test/admission/environment.js';
import { TUFA_BIN } from '../test/support/paths.js';
import { skipReason } from '../test/support/registry.js';

interface Options {
  count: number;
  seconds: number;
  concurrency: number;
  rate: number;
  openSeconds: number;
  maxInFlight: number;
  json: boolean;
  /** Extra node flags for the server process (e.g. `--cpu-prof`, `--import FILE`). */
  serverNodeFlags: string[];
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = {
    count: 20_000,
    seconds: 30,
    concurrency: 48,
    rate: 2_000,
    openSeconds: 10,
    maxInFlight: 256,
    json: false,
    serverNodeFlags: [],
  };
  const numbers: Record<string, keyof Options> = {
    '--count': 'count',
    '--seconds': 'seconds',
    '--concurrency': 'concurrency',
    '--rate': 'rate',
    '--open-seconds': 'openSeconds',
    '--max-in-flight': 'maxInFlight',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--json') {
      o.json = true;
      continue;
    }
    if (a === '--server-node-flags') {
      o.serverNodeFlags = (argv[++i] ?? '').split(' ').filter((f) => f.length > 0);
      continue;
    }
    const key = numbers[a];
    const v = Number(argv[++i]);
    if (key === undefined || !Number.isFinite(v) || v <= 0) throw new Error(`bad argument ${a}`);
    (o[key] as number) = v;
  }
  // the bounds the brief sets
  o.count = Math.min(o.count, 100_000);
  o.seconds = Math.min(o.seconds, 60);
  o.openSeconds = Math.min(o.openSeconds, 30);
  return o;
}

/** One kind of review in the mix, pre-serialized around its uid. */
interface Template {
  readonly name: string;
  readonly path: '/validate' | '/mutate';
  readonly allowed: boolean;
  readonly weight: number;
  readonly before: string;
  readonly after: string;
}

const MIX: ReadonlyArray<{ file: string; mode: 'validate' | 'mutate'; weight: number }> = [
  { file: 'pod.json', mode: 'validate', weight: 4 },
  { file: 'pod.json', mode: 'mutate', weight: 2 },
  { file: 'deployment.json', mode: 'mutate', weight: 2 },
  { file: 'deployment.json', mode: 'validate', weight: 1 },
  { file: 'pod-ephemeral-debug.json', mode: 'validate', weight: 1 },
  { file: 'replicaset.json', mode: 'validate', weight: 2 },
  { file: 'statefulset.json', mode: 'mutate', weight: 1 },
  { file: 'cronjob.json', mode: 'validate', weight: 1 },
  { file: 'pod-unsigned.json', mode: 'validate', weight: 1 },
  { file: 'configmap.json', mode: 'validate', weight: 1 },
];

function templates(world: AdmissionWorld): Template[] {
  return MIX.map((m) => {
    const review = world.review(m.file);
    const uid = review.request?.uid as string;
    const text = JSON.stringify(review);
    const at = text.indexOf(uid);
    return {
      name: `${m.mode} ${m.file}`,
      path: `/${m.mode}` as const,
      allowed: m.file !== 'pod-unsigned.json',
      weight: m.weight,
      before: text.slice(0, at),
      after: text.slice(at + uid.length),
    };
  });
}

/** A weighted round robin over the mix, each review with a new uid. */
function picker(ts: readonly Template[]): () => { t: Template; body: string } {
  const wheel = ts.flatMap((t) => Array.from({ length: t.weight }, () => t));
  let i = 0;
  const prefix = randomUUID().slice(0, 24);
  return () => {
    const t = wheel[i % wheel.length] as Template;
    const uid = `${prefix}${(i++).toString(16).padStart(12, '0')}`;
    return { t, body: t.before + uid + t.after };
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)] as number;
}

interface PhaseResult {
  readonly reviews: number;
  readonly errors: number;
  readonly wrong: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly serverCpuPercent: number;
  readonly serverCpuMsPerReview: number;
  readonly clientCpuPercent: number;
}

/** CPU time of a process (user + system), ms, from /proc. */
function cpuMsOf(pid: number, tick: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[11] is utime, fields[12] stime (fields 14 and 15 of proc(5), counted from state)
  return ((Number(fields[11]) + Number(fields[12])) / tick) * 1000;
}

function rssMiBOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : Number.NaN;
}

class Meter {
  private readonly started = performance.now();
  private readonly cpu0: number;
  private readonly client0 = process.cpuUsage();

  constructor(
    private readonly pid: number,
    private readonly tick: number,
  ) {
    this.cpu0 = cpuMsOf(pid, tick);
  }

  finish(latencies: number[], errors: number, wrong: number): PhaseResult {
    const seconds = (performance.now() - this.started) / 1000;
    const serverMs = cpuMsOf(this.pid, this.tick) - this.cpu0;
    const c = process.cpuUsage(this.client0);
    const sorted = Float64Array.from(latencies).sort();
    const n = latencies.length;
    const r2 = (x: number) => Math.round(x * 100) / 100;
    return {
      reviews: n,
      errors,
      wrong,
      seconds: r2(seconds),
      perSecond: Math.round(n / seconds),
      p50: r2(percentile(sorted, 50)),
      p90: r2(percentile(sorted, 90)),
      p99: r2(percentile(sorted, 99)),
      max: r2(sorted[sorted.length - 1] ?? Number.NaN),
      serverCpuPercent: Math.round(serverMs / seconds / 10),
      serverCpuMsPerReview: r2(serverMs / Math.max(1, n)),
      clientCpuPercent: Math.round((c.user + c.system) / 1000 / seconds / 10),
    };
  }
}

/** check reads an answer: is it the AdmissionReview expected for this review? */
function check(status: number, text: string, t: Template): boolean {
  if (status !== 200) return false;
  const allowed = text.includes('"allowed":true');
  return allowed === t.allowed;
}

/** closedLoop keeps `concurrency` reviews in flight until the count or the time is reached. */
async function closedLoop(
  client: ReviewClient,
  next: () => { t: Template; body: string },
  o: { count: number; seconds: number; concurrency: number },
  meter: Meter,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  let errors = 0;
  let wrong = 0;
  let issued = 0;
  const end = performance.now() + o.seconds * 1000;
  const worker = async () => {
    while (issued < o.count && performance.now() < end) {
      issued++;
      const { t, body } = next();
      try {
        const r = await client.post(t.path, body);
        latencies.push(r.ms);
        if (!check(r.status, r.text, t)) wrong++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return meter.finish(latencies, errors, wrong);
}

/**
 * openLoop sends reviews on a fixed schedule (`rate` per second) and times each from when it
 * was due, so a slow server's backlog shows in the latency.
 */
async function openLoop(
  client: ReviewClient,
  next: () => { t: Template; body: string },
  o: { rate: number; seconds: number; maxInFlight: number },
  meter: Meter,
): Promise<PhaseResult & { late: number; fromSend: { p50: number; p90: number; p99: number } }> {
  const latencies: number[] = [];
  const service: number[] = [];
  let errors = 0;
  let wrong = 0;
  let late = 0;
  let inFlight = 0;
  const total = Math.round(o.rate * o.seconds);
  const t0 = performance.now();
  const hardEnd = t0 + (o.seconds + 15) * 1000;
  let sent = 0;
  const pending = new Set<Promise<void>>();
  while (sent < total && performance.now() < hardEnd) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - t0) * o.rate) / 1000) + 1);
    while (sent < due && inFlight < o.maxInFlight) {
      const scheduled = t0 + (sent * 1000) / o.rate;
      if (now - scheduled > 5) late++;
      sent++;
      inFlight++;
      const { t, body } = next();
      const p = client
        .post(t.path, body)
        .then(
          (r) => {
            latencies.push(performance.now() - scheduled);
            service.push(r.ms);
            if (!check(r.status, r.text, t)) wrong++;
          },
          () => {
            errors++;
          },
        )
        .finally(() => {
          inFlight--;
          pending.delete(p);
        });
      pending.add(p);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  const sorted = Float64Array.from(service).sort();
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    ...meter.finish(latencies, errors, wrong),
    late,
    fromSend: {
      p50: r2(percentile(sorted, 50)),
      p90: r2(percentile(sorted, 90)),
      p99: r2(percentile(sorted, 99)),
    },
  };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', () => ok()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // gone
  }
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const why = skipReason();
  if (why !== undefined) {
    process.stderr.write(`admission-load: cannot run: ${why}\n`);
    return 2;
  }
  const say = (s: string) => {
    if (!o.json) process.stdout.write(`${s}\n`);
  };
  const load0 = loadavg();
  let tick = 100;
  try {
    tick = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    // Linux default
  }
  say('admission-load: building the registry, images, TUF repository and TLS material…');
  const world = await AdmissionWorld.start();
  let child: ChildProcess | undefined;
  let client: ReviewClient | undefined;
  // the whole run is bounded, whatever happens
  const guard = setTimeout(
    () => {
      process.stderr.write('admission-load: over the 5-minute bound, stopping\n');
      if (child) killGroup(child, 'SIGKILL');
      process.exit(1);
    },
    5 * 60_000 + (o.seconds + o.openSeconds) * 1000,
  );
  guard.unref();
  try {
    const port = await freePort();
    const dir = join(world.tmp, 'serve');
    mkdirSync(dir);
    const logFile = join(dir, 'serve.log');
    const logFd = openSync(logFile, 'w');
    child = spawn(
      process.execPath,
      [
        ...o.serverNodeFlags,
        TUFA_BIN,
        'admission',
        'serve',
        '--policy',
        world.policyFile,
        '--tls-cert',
        world.tls.certFile,
        '--tls-key',
        world.tls.keyFile,
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--cache-dir',
        join(dir, 'cache'),
        '--deadline',
        '8',
      ],
      {
        env: { ...process.env, DOCKER_CONFIG: join(dir, 'docker'), NODE_OPTIONS: '' },
        detached: true,
        stdio: ['ignore', logFd, 'pipe'],
      },
    );
    closeSync(logFd);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    const exited = new Promise<number | null>((ok) => child?.once('exit', (code) => ok(code)));
    const until = Date.now() + 20_000;
    while (!readFileSync(logFile, 'utf8').includes('"msg":"listening"')) {
      if (Date.now() > until || child.exitCode !== null)
        throw new Error(`tufa admission serve did not start\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const pid = child.pid as number;
    client = new ReviewClient(`https://127.0.0.1:${port}`, world.tls.ca, {
      // as many keep-alive connections as the closed loop opens; more reviews queue for them
      maxSockets: o.concurrency,
      timeoutMs: 10_000,
    });

    // warm: every review of the mix once (verifies each image, fills the caches), checked
    const ts = templates(world);
    for (const t of ts) {
      const r = await client.post(t.path, t.before + randomUUID() + t.after);
      if (!check(r.status, r.text, t)) throw new Error(`warm-up ${t.name}: ${r.status} ${r.text}`);
    }
    const next = picker(ts);
    // and the JIT: a short unmeasured burst
    await closedLoop(
      client,
      next,
      { count: 2_000, seconds: 5, concurrency: o.concurrency },
      new Meter(pid, tick),
    );
    say(
      `warm: ${ts.length} kinds of review verified; closed loop: ${o.concurrency} in flight, up to ${o.count} reviews or ${o.seconds} s…`,
    );
    const closed = await closedLoop(client, next, o, new Meter(pid, tick));
    say(`open loop: ${o.rate} reviews/s for ${o.openSeconds} s…`);
    const open = await openLoop(
      client,
      next,
      { rate: o.rate, seconds: o.openSeconds, maxInFlight: o.maxInFlight },
      new Meter(pid, tick),
    );
    const serverRssMiB = rssMiBOf(pid);
    client.close();
    killGroup(child, 'SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000)),
    ]);
    if (code === 'timeout') killGroup(child, 'SIGKILL');
    const logged = readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"review"'));

    const throughputMet = closed.perSecond >= 2_000 && closed.errors === 0 && closed.wrong === 0;
    const latencyMet = open.p99 <= 20 && open.errors === 0 && open.wrong === 0;
    const report = {
      bench: 'admission-load',
      machine: {
        cpus: cpus().length,
        model: cpus()[0]?.model,
        node: process.version,
        loadavgBefore: load0.map((x) => Math.round(x * 100) / 100),
        loadavgAfter: loadavg().map((x) => Math.round(x * 100) / 100),
      },
      server: {
        process: 'tufa admission serve',
        nodeFlags: o.serverNodeFlags,
        rssMiB: serverRssMiB,
        /** exit code after SIGTERM, or 'timeout' when it was still running 10 s later */
        exitAfterSigterm: code,
      },
      reviewsLogged: logged.length,
      closed: { concurrency: o.concurrency, ...closed },
      open: { rate: o.rate, ...open },
      targets: {
        throughput: { want: '>= 2000 reviews/s', got: closed.perSecond, met: throughputMet },
        p99AtRate: { want: '<= 20 ms at 2000 reviews/s', got: open.p99, met: latencyMet },
      },
    };
    if (o.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
    } else {
      const m = report.machine;
      say('');
      say(
        `machine: ${m.cpus} × ${m.model}, node ${m.node}, load average ${m.loadavgBefore.join(' ')} before, ${m.loadavgAfter.join(' ')} after`,
      );
      say(
        `closed loop (${o.concurrency} in flight): ${closed.reviews} reviews in ${closed.seconds} s = ${closed.perSecond} reviews/s; latency p50 ${closed.p50} ms, p90 ${closed.p90} ms, p99 ${closed.p99} ms, max ${closed.max} ms; errors ${closed.errors}, wrong answers ${closed.wrong}`,
      );
      say(
        `  server CPU ${closed.serverCpuPercent}% (${closed.serverCpuMsPerReview} ms per review), load generator CPU ${closed.clientCpuPercent}%`,
      );
      say(
        `open loop (${o.rate}/s scheduled): ${open.reviews} reviews in ${open.seconds} s = ${open.perSecond} reviews/s; latency from schedule p50 ${open.p50} ms, p90 ${open.p90} ms, p99 ${open.p99} ms, max ${open.max} ms (from send: p50 ${open.fromSend.p50}, p90 ${open.fromSend.p90}, p99 ${open.fromSend.p99} ms); sent > 5 ms late ${open.late}; errors ${open.errors}, wrong ${open.wrong}`,
      );
      say(
        `  server CPU ${open.serverCpuPercent}% (${open.serverCpuMsPerReview} ms per review), load generator CPU ${open.clientCpuPercent}%, server RSS ${serverRssMiB} MiB, ${logged.length} review log lines, exit after SIGTERM: ${code}`,
      );
      say(
        `target ≥ 2000 reviews/s: ${throughputMet ? 'MET' : 'NOT MET'} (${closed.perSecond}/s); target p99 ≤ 20 ms at 2000/s: ${latencyMet ? 'MET' : 'NOT MET'} (${open.p99} ms)`,
      );
      say(JSON.stringify(report));
    }
    return 0;
  } finally {
    client?.close();
    if (child !== undefined && child.exitCode === null && child.signalCode === null)
      killGroup(child, 'SIGKILL');
    await world.close();
    clearTimeout(guard);
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`admission-load: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
