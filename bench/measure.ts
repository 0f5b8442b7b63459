/**
 * Runs one benchmark child process and measures it from outside: wall time from spawn to exit
 * (parent's clock) and peak RSS from GNU time's `-v` report (`/usr/bin/time`, Debian package
 * `time`) when it is there, else the child's own `process.resourceUsage().maxRSS`.
 *
 * The child runs in its own process group and the group is killed when the time bound passes,
 * so a client that cannot finish never outlives its slot.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export const GNU_TIME = '/usr/bin/time';
export const HAVE_GNU_TIME = existsSync(GNU_TIME);

/** Process groups of running children, killed when the runner is interrupted. */
const liveGroups = new Set<number>();
let signalsHooked = false;

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const pgid of liveGroups) {
        try {
          process.kill(-pgid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      process.exit(130);
    });
  }
}

export interface ChildResult {
  /** Wall time, spawn to exit, ms. */
  readonly wallMs: number;
  /** Peak resident set size, KiB (from GNU time, else the child's report; NaN if neither). */
  readonly maxRssKiB: number;
  readonly timedOut: boolean;
  readonly exitCode: number | null;
  /** The JSON object the child printed last on stdout, if any. */
  readonly report?: Record<string, unknown>;
  readonly stderr: string;
}

export interface ChildOptions {
  timeoutMs: number;
  /** Extra flags for node (e.g. --cpu-prof). */
  nodeFlags?: readonly string[];
  cwd?: string;
}

/** runNodeChild runs `node [flags] script arg` and measures it. */
export function runNodeChild(
  script: string,
  arg: string,
  options: ChildOptions,
): Promise<ChildResult> {
  const nodeArgs = [...(options.nodeFlags ?? []), script, arg];
  const [cmd, args] = HAVE_GNU_TIME
    ? [GNU_TIME, ['-v', process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let out = '';
    let err = '';
    let timedOut = false;
    hookSignals();
    if (child.pid !== undefined) liveGroups.add(child.pid);
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      if (out.length < 1_000_000) out += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      if (err.length < 1_000_000) err += s;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, options.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      clearTimeout(timer);
      if (child.pid !== undefined) liveGroups.delete(child.pid);
      let report: Record<string, unknown> | undefined;
      const lines = out.trim().split('\n');
      for (let i = lines.length - 1; i >= 0 && report === undefined; i--) {
        const line = lines[i]?.trim() ?? '';
        if (!line.startsWith('{')) continue;
        try {
          report = JSON.parse(line) as Record<string, unknown>;
        } catch {
          // not the report
        }
      }
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(err);
      const fromChild = typeof report?.maxRssKiB === 'number' ? report.maxRssKiB : Number.NaN;
      const timeCode = /Exit status: (\d+)/.exec(err);
      resolve({
        wallMs,
        maxRssKiB: m ? Number(m[1]) : fromChild,
        timedOut,
        exitCode: timeCode ? Number(timeCode[1]) : code,
        ...(report === undefined ? {} : { report }),
        stderr: HAVE_GNU_TIME ? err.replace(/\n?\s*Command being timed:[\s\S]*$/, '') : err,
      });
    });
  });
}

/** Summary statistics of a sample. */
export interface Stats {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function stats(values: readonly number[]): Stats | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  const median =
    v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
  return { n: v.length, median, min: v[0] as number, max: v[v.length - 1] as number };
}
