/**
 * The security battery's harness: every case is a row of a table (id, title, the attack, where
 * it came from, the refusal expected) and runs as one mocha test named `<id> <title>`, so
 * docs/security.md can name each test exactly. A case asserts its refusals through
 * {@link CaseContext.refuses}, which insists on a typed error (a TufaError or an OciError) with
 * a stable code, and the harness checks that the case saw every code its row declares.
 *
 * Also here: temp folders removed after each case, bounded subprocesses of the CLI, a
 * repository simulator publishing role files under the client's own file names, and a SimRepo
 * whose expiries follow the real clock (for the CLI, which reads it).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TufaError } from '../../src/core/errors.js';
import type { JsonObject, JsonValue } from '../../src/core/json.js';
import { formatExpires } from '../../src/core/metadata/fields.js';
import { encodeName } from '../../src/core/names.js';
import { OciError } from '../../src/oci/errors.js';
import { RepositorySimulator } from '../sim/repository-simulator.js';
import { TUFA_BIN } from '../support/paths.js';
import { envelope, type SimRepo } from '../support/tuf-builder.js';

/** What a case may use while it runs. */
export interface CaseContext {
  /**
   * refuses awaits `attempt` (a promise or a function) and asserts it failed with a TufaError
   * or OciError whose code is `code` (default: the case's only expected code).
   */
  refuses(
    attempt: Promise<unknown> | (() => unknown),
    code?: string,
    message?: RegExp,
  ): Promise<Error>;
  /** refusedBy records a refusal seen another way (a CLI exit status and the code it printed). */
  refusedBy(code: string): void;
  /** tmp makes a fresh temp folder, removed after the case. */
  tmp(): string;
  /** defer runs `fn` after the case, pass or fail (servers to close, …). */
  defer(fn: () => unknown): void;
}

/** One row of the battery. */
export interface SecurityCase {
  /** Stable id, e.g. `TUF-08`; docs/security.md lists it. */
  readonly id: string;
  /** Short title; the test is named `<id> <title>`. */
  readonly title: string;
  /** What the attacker does. */
  readonly attack: string;
  /** Where the case comes from (TUF spec section, advisory id, …). */
  readonly source: string;
  /**
   * The refusal expected: error codes separated by ` | ` (each must be seen), or, for a case
   * whose defence is not a refusal, a sentence starting with a lowercase word (`safe: …`).
   */
  readonly expect: string;
  /** ms (default 20 s). */
  readonly timeout?: number;
  run(t: CaseContext): Promise<void> | void;
}

/** expectedCodes returns the error codes a row declares (none for a `safe: …` row). */
export function expectedCodes(expect: string): string[] {
  return /^[A-Z_]+( \| [A-Z_]+)*$/.test(expect) ? expect.split(' | ') : [];
}

/** codeOf returns the stable code of a typed error, or undefined for anything else. */
export function codeOf(e: unknown): string | undefined {
  if (e instanceof TufaError || e instanceof OciError) return e.code;
  return undefined;
}

function describeError(e: unknown): string {
  return e instanceof Error ? `${e.constructor.name} ${codeOf(e) ?? '-'}: ${e.message}` : String(e);
}

/** defineCases registers each row as a mocha test inside the current describe block. */
export function defineCases(cases: readonly SecurityCase[]): void {
  const ids = new Set<string>();
  for (const c of cases) {
    assert.ok(!ids.has(c.id), `duplicate case id ${c.id}`);
    ids.add(c.id);
    it(`${c.id} ${c.title}`, async function () {
      this.timeout(c.timeout ?? 20_000);
      const declared = expectedCodes(c.expect);
      const seen: string[] = [];
      const dirs: string[] = [];
      const deferred: Array<() => unknown> = [];
      const ctx: CaseContext = {
        async refuses(attempt, code, message) {
          const want = code ?? (declared.length === 1 ? declared[0] : undefined);
          assert.ok(
            want !== undefined,
            `${c.id}: refuses() needs a code (row declares ${c.expect})`,
          );
          let caught: unknown;
          let resolved = false;
          try {
            const r = typeof attempt === 'function' ? attempt() : attempt;
            await r;
            resolved = true;
          } catch (e) {
            caught = e;
          }
          assert.ok(!resolved, `${c.id}: expected a refusal ${want}, but the attempt succeeded`);
          const got = codeOf(caught);
          assert.ok(
            got !== undefined,
            `${c.id}: expected a typed refusal ${want}, got ${describeError(caught)}`,
          );
          assert.equal(got, want, `${c.id}: ${describeError(caught)}`);
          if (message !== undefined) assert.match((caught as Error).message, message);
          seen.push(got);
          return caught as Error;
        },
        refusedBy(code) {
          seen.push(code);
        },
        tmp() {
          const d = mkdtempSync(join(tmpdir(), `tufa-sec-${c.id.toLowerCase()}-`));
          dirs.push(d);
          return d;
        },
        defer(fn) {
          deferred.push(fn);
        },
      };
      try {
        await c.run(ctx);
        for (const code of seen) {
          if (declared.length > 0)
            assert.ok(
              declared.includes(code),
              `${c.id}: refused with ${code}, row says ${c.expect}`,
            );
        }
        for (const code of declared) {
          assert.ok(seen.includes(code), `${c.id}: the row expects ${code}, never seen`);
        }
      } finally {
        for (const fn of deferred.reverse()) await fn();
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// repositories

const DAY = 86_400_000;

/**
 * publishEncoded publishes the simulator's repository and also serves every delegated role
 * under the file name the client asks for (`encodeName`, which differs from
 * `encodeURIComponent` for `.`, `..`, `!'()*`).
 */
export function publishEncoded(sim: RepositorySimulator): void {
  sim.publish();
  for (const [name, role] of sim.repo.delegated) {
    sim.files.set(
      `metadata/${role.signed.version}.${encodeName(name)}.json`,
      sim.repo.targetsBytes(name),
    );
  }
}

/** simulator makes a RepositorySimulator whose delegated roles are served by encoded name. */
export function simulator(repo: SimRepo): RepositorySimulator {
  const sim = new RepositorySimulator(repo);
  publishEncoded(sim);
  return sim;
}

/**
 * liveExpiries moves every expiry of a SimRepo relative to the real clock (the CLI reads it)
 * and re-signs root v1 with its new expiry.
 */
export function liveExpiries(repo: SimRepo): SimRepo {
  const at = (days: number) => formatExpires(Date.now() + days * DAY);
  repo.root.expires = at(365);
  repo.targets.expires = at(90);
  repo.snapshot.expires = at(7);
  repo.timestamp.expires = at(1);
  for (const role of repo.delegated.values()) role.signed.expires = at(90);
  repo.rootHistory[0] = envelope(repo.root, repo.rootKeys);
  return repo;
}

// ---------------------------------------------------------------------------------------------
// subprocesses

export interface CliResult {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export function show(r: CliResult): string {
  return `exit ${r.status} signal ${r.signal}${r.timedOut ? ' (timed out)' : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** A running CLI process in its own process group. */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly done: Promise<CliResult>;
  /** kill sends SIGKILL to the process group. */
  kill(): void;
}

/** startTufa starts `node bin/tufa args…` (own process group, killed after `timeoutMs`). */
export function startTufa(
  args: readonly string[],
  o: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): CliProcess {
  const child = spawn(process.execPath, [TUFA_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: o.env ?? process.env,
    cwd: o.cwd,
  });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const kill = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, o.timeoutMs ?? 30_000);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
  return { child, done, kill };
}

/** tufa runs the CLI to its end (30 s at most by default). */
export function tufa(
  args: readonly string[],
  o: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  return startTufa(args, o).done;
}

/** sleep waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** seeded is a small deterministic PRNG (mulberry32), for reproducible kill points. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// JSON trees

/** pathsOf lists every path of a JSON value (object keys and array indexes), the root first. */
export function pathsOf(
  v: JsonValue,
  at: Array<string | number> = [],
): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [at];
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) out.push(...pathsOf(x, [...at, i]));
  } else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) out.push(...pathsOf(v[k] as JsonValue, [...at, k]));
  }
  return out;
}

/** replaced returns a deep copy of `v` with the value at `path` replaced by `x`. */
export function replaced(
  v: JsonValue,
  path: ReadonlyArray<string | number>,
  x: JsonValue,
): JsonValue {
  if (path.length === 0) return x;
  const copy = structuredClone(v) as JsonObject;
  let node = copy as unknown as Record<string | number, JsonValue>;
  for (const p of path.slice(0, -1))
    node = node[p] as unknown as Record<string | number, JsonValue>;
  node[path[path.length - 1] as string | number] = x;
  return copy;
}
