/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`) by self time: per function (name, file,
 * line) and per file/package. Usable as a module (the runner profiles missed targets) or as a
 * command: `node dist/bench/cpuprofile.js FILE.cpuprofile [TOP]`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTimeRow {
  readonly name: string;
  readonly where: string;
  readonly ms: number;
  readonly percent: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Samples whose stack is inside module loading (import/require, compiling modules). */
  readonly moduleLoadingMs: number;
  /** Idle samples (waiting for I/O) and garbage collection. */
  readonly idleMs: number;
  readonly gcMs: number;
  readonly functions: SelfTimeRow[];
  readonly files: SelfTimeRow[];
  /** Inclusive (total) time of the project's own functions (src/), outermost first by time. */
  readonly projectInclusive: SelfTimeRow[];
}

const MODULE_LOADING = /^node:internal\/modules\//;

function isProjectUrl(url: string): boolean {
  return /\/dist\/src\//.test(url);
}

/** shortPath makes a profile URL readable: the project-relative path or the npm package. */
export function shortPath(url: string): string {
  if (url === '') return '(native/V8)';
  let p = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = p.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = p.slice(nm + 'node_modules/'.length).split('/');
    const pkg = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? '');
    return `${pkg} (npm)/${rest.slice(rest[0]?.startsWith('@') ? 2 : 1).join('/')}`;
  }
  // compiled files keep their path and line in dist/ (the .js.map files lead back to src/)
  const dist = p.indexOf('/dist/');
  if (dist >= 0) p = p.slice(dist + 1);
  return p;
}

const sourceMaps = new Map<string, SourceMap | undefined>();

/**
 * location names a call frame: for compiled project files the TypeScript source and line (from
 * the .js.map beside the file), else the file and line as the profile gives them.
 */
function location(cf: CallFrame): string {
  if (cf.url === '') return shortPath(cf.url);
  if (
    cf.url.startsWith('file://') &&
    cf.url.includes('/dist/') &&
    !cf.url.includes('node_modules')
  ) {
    const file = fileURLToPath(cf.url);
    if (!sourceMaps.has(file)) {
      const mapFile = `${file}.map`;
      let map: SourceMap | undefined;
      try {
        if (existsSync(mapFile)) map = new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')));
      } catch {
        map = undefined;
      }
      sourceMaps.set(file, map);
    }
    const entry = sourceMaps.get(file)?.findEntry(cf.lineNumber, cf.columnNumber) as
      | { originalSource?: string; originalLine?: number }
      | undefined;
    if (entry?.originalSource !== undefined && entry.originalLine !== undefined) {
      const src = entry.originalSource.startsWith('file://')
        ? fileURLToPath(entry.originalSource)
        : resolve(dirname(file), entry.originalSource);
      const root = file.slice(0, file.indexOf('/dist/'));
      return `${relative(root, src)}:${entry.originalLine + 1}`;
    }
  }
  return `${shortPath(cf.url)}:${cf.lineNumber + 1}`;
}

/** summarizeProfile computes self time per function and per file. */
export function summarizeProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const id = profile.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  }
  const fns = new Map<string, { name: string; where: string; ms: number }>();
  const files = new Map<string, number>();
  const inclusive = new Map<string, { name: string; where: string; ms: number }>();
  let moduleLoadingMs = 0;
  let idleMs = 0;
  let gcMs = 0;
  for (const [id, ms] of self) {
    const cf = byId.get(id)?.callFrame;
    if (cf === undefined) continue;
    if (cf.functionName === '(idle)') idleMs += ms;
    if (cf.functionName === '(garbage collector)') gcMs += ms;
    // walk the stack once: module loading, and each project function on it (counted once)
    const seen = new Set<string>();
    let loading = false;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)?.callFrame;
      if (f === undefined) break;
      if (MODULE_LOADING.test(f.url)) loading = true;
      if (isProjectUrl(f.url)) {
        const name = f.functionName || '(anonymous)';
        const where = location(f);
        const key = `${name}\u0000${where}`;
        if (!seen.has(key)) {
          seen.add(key);
          const row = inclusive.get(key) ?? { name, where, ms: 0 };
          row.ms += ms;
          inclusive.set(key, row);
        }
      }
    }
    if (loading) moduleLoadingMs += ms;
    const name = cf.functionName || '(anonymous)';
    const where = location(cf);
    const file = where.replace(/:\d+$/, '');
    const key = `${name}\u0000${where}`;
    const row = fns.get(key) ?? { name, where, ms: 0 };
    row.ms += ms;
    fns.set(key, row);
    const fileKey = cf.url === '' ? (name.startsWith('(') ? name : '(native/V8)') : file;
    files.set(fileKey, (files.get(fileKey) ?? 0) + ms);
  }
  const pct = (ms: number) => (total > 0 ? (100 * ms) / total : 0);
  return {
    totalMs: total,
    moduleLoadingMs,
    idleMs,
    gcMs,
    projectInclusive: [...inclusive.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((r) => ({ ...r, percent: pct(r.ms) })),
    functions: [...fns.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((r) => ({ ...r, percent: pct(r.ms) })),
    files: [...files.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([where, ms]) => ({ name: where, where, ms, percent: pct(ms) })),
  };
}

export async function summarizeFile(file: string, top = 15): Promise<ProfileSummary> {
  return summarizeProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, top);
}

/** formatSummary renders a summary as Markdown tables. */
export function formatSummary(s: ProfileSummary): string {
  const pct = (ms: number) => (s.totalMs > 0 ? ((100 * ms) / s.totalMs).toFixed(0) : '0');
  const lines = [
    `Sampled ${s.totalMs.toFixed(0)} ms: module loading (import, compile) ${s.moduleLoadingMs.toFixed(0)} ms (${pct(s.moduleLoadingMs)}%), idle (waiting for I/O) ${s.idleMs.toFixed(0)} ms (${pct(s.idleMs)}%), garbage collection ${s.gcMs.toFixed(0)} ms (${pct(s.gcMs)}%).`,
    '',
    "Total (inclusive) time of the project's functions:",
    '',
    '| total ms | % | function | where |',
    '| ---: | ---: | --- | --- |',
    ...s.projectInclusive.map(
      (r) => `| ${r.ms.toFixed(1)} | ${r.percent.toFixed(1)} | \`${r.name}\` | ${r.where} |`,
    ),
    '',
    'Self time by function:',
    '',
    '| self ms | % | function | where |',
    '| ---: | ---: | --- | --- |',
    ...s.functions.map(
      (r) => `| ${r.ms.toFixed(1)} | ${r.percent.toFixed(1)} | \`${r.name}\` | ${r.where} |`,
    ),
    '',
    'Self time by file or package:',
    '',
    '| self ms | % | file |',
    '| ---: | ---: | --- |',
    ...s.files.map((r) => `| ${r.ms.toFixed(1)} | ${r.percent.toFixed(1)} | ${r.where} |`),
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/cpuprofile.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  process.stdout.write(
    `${formatSummary(await summarizeFile(file, Number(process.argv[3] ?? 20)))}\n`,
  );
}
