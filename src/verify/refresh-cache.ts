/**
 * Refreshed trust sources kept in memory and shared by concurrent verifications, and the abort
 * signal of the verification running in an async context.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Fetcher } from '../client/index.js';
import { DownloadError } from '../core/index.js';
import { redact } from '../transport/index.js';
import type { VerifierOptions } from './verify-image.js';

/**
 * The abort signal of the verification running in this async context: every request a
 * verification makes (its refreshes and lookups included) ends when it aborts.
 */
export const currentSignal = new AsyncLocalStorage<AbortSignal | undefined>();

/** abortable settles with `p`, or fails at once when `signal` aborts. */
export function abortable<T>(
  p: Promise<T>,
  signal: AbortSignal | undefined,
  what: string,
): Promise<T> {
  if (signal === undefined) return p;
  const stopped = () =>
    new DownloadError(`${redact(what)}: aborted (deadline)`, {
      code: 'SLOW_RETRIEVAL',
      cause: signal.reason,
    });
  if (signal.aborted) {
    p.catch(() => undefined); // its own failure is no longer anyone's answer
    return Promise.reject(stopped());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(stopped());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** A fetcher that passes on the signal of the verification it runs for. */
export class SignalFetcher implements Fetcher {
  constructor(private readonly inner: Fetcher) {}

  fetch(url: string, maxLength: number, headers?: Record<string, string>): Promise<Uint8Array> {
    const signal = currentSignal.getStore();
    return abortable(this.inner.fetch(url, maxLength, headers, signal), signal, url);
  }
}

/** A refreshed trust source and how long it may be reused. */
interface Fresh<T> {
  readonly value: Promise<T>;
  readonly refreshedAt: number;
  /**
   * Earliest expiry of the metadata it holds, read at every use: a role loaded after the
   * refresh lowers it. Infinite while the refresh runs.
   */
  validUntil: () => number;
  /** Set when the refresh failed: the failure is the answer until then. */
  failedUntil?: number;
  /** While the refresh runs: the callers waiting for it, and how to stop it. */
  running?: { waiters: number; readonly stop: AbortController; readonly drop: () => void };
}

/** Trust sources kept at once, per kind (TUF repositories, Notary collections): least recently used go first. */
const MAX_SOURCES = 1024;

/** How long a shared refresh may run, ms, whoever waits for it (default). */
const REFRESH_TIMEOUT_MS = 30_000;

/** The verifier's refresh settings (see {@link VerifierOptions}), with its clock. */
export type RefreshOptions = Pick<
  VerifierOptions,
  'refreshIntervalMs' | 'failureCacheMs' | 'refreshTimeoutMs' | 'maxSources'
> & { now: () => number };

/** A refresh: the value and the earliest expiry of what it holds. */
export type Refresh<T> = (
  previous: Promise<T> | undefined,
) => Promise<{ value: T; validUntil: () => number }>;

/** RefreshCache keeps refreshed values (TUF clients, Notary collections) by trust source. */
export class RefreshCache<T> {
  private readonly map = new Map<string, Fresh<T>>();

  constructor(private readonly o: RefreshOptions) {}

  /** How many trust sources are held. */
  get size(): number {
    return this.map.size;
  }

  /** values are the values held (settled or not), for closing them. */
  values(): Array<Promise<T>> {
    return [...this.map.values()].map((e) => e.value);
  }

  /**
   * get returns a source's refreshed value, refreshing it (once, shared by concurrent callers)
   * when the refresh interval passed or the metadata it holds expired (checked at every use).
   * The refresh runs under its own timeout, not under the signal of the caller that started it:
   * each caller stops waiting when its own signal aborts, and the refresh is stopped only when
   * no caller waits for it any more. A failed refresh is answered for `failureCacheMs`, then
   * forgotten, so a later caller tries again; meanwhile nothing is trusted. A refresh stopped
   * because its callers left is never remembered as a failure. At most `maxSources` sources are
   * kept: expired failures and the least recently used go first.
   */
  get(key: string, what: string, refresh: Refresh<T>): Promise<T> {
    const now = this.o.now();
    const cur = this.map.get(key);
    const signal = currentSignal.getStore();
    if (cur !== undefined && (cur.running !== undefined || this.usable(cur, now))) {
      // most recently used last
      this.map.delete(key);
      this.map.set(key, cur);
      return this.wait(cur, signal, what);
    }
    const entry = this.start(key, what, now, () => refresh(cur?.value));
    this.map.delete(key);
    this.map.set(key, entry);
    this.evict(now);
    return this.wait(entry, signal, what);
  }

  /** usable: a settled entry is the answer (its failure, or a value still fresh). */
  private usable(e: Fresh<T>, now: number): boolean {
    if (e.failedUntil !== undefined) return now < e.failedUntil;
    const interval = this.o.refreshIntervalMs ?? Number.POSITIVE_INFINITY;
    return now - e.refreshedAt < interval && now < e.validUntil();
  }

  /** start runs a refresh under its own signal: aborted at its timeout, or when nobody waits. */
  private start(
    key: string,
    what: string,
    now: number,
    refresh: () => ReturnType<Refresh<T>>,
  ): Fresh<T> {
    const stop = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stop.abort(new Error(`${redact(what)}: the refresh timed out`));
    }, this.o.refreshTimeoutMs ?? REFRESH_TIMEOUT_MS);
    timer.unref?.();
    const entry: Fresh<T> = {
      refreshedAt: now,
      validUntil: () => Number.POSITIVE_INFINITY,
      running: {
        waiters: 0,
        stop,
        // stopped: later callers start a refresh of their own rather than join this one
        drop: () => {
          if (this.map.get(key) === entry) this.map.delete(key);
        },
      },
      // its requests end with its own signal, not with the caller's
      value: currentSignal
        .run(stop.signal, refresh)
        .then((r) => {
          entry.validUntil = r.validUntil;
          return r.value;
        })
        .finally(() => clearTimeout(timer)),
    };
    entry.value.then(
      () => {
        delete entry.running;
      },
      () => {
        delete entry.running;
        if (this.map.get(key) !== entry) return;
        const ttl = this.o.failureCacheMs ?? 0;
        // stopped because nobody waits: not an answer about the trust source (a refresh that
        // ran out its own timeout is one: the server is too slow)
        if (ttl > 0 && (!stop.signal.aborted || timedOut)) entry.failedUntil = this.o.now() + ttl;
        else this.map.delete(key);
      },
    );
    return entry;
  }

  /** wait waits for a source until `signal` aborts; the last waiter to leave stops its refresh. */
  private wait(entry: Fresh<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
    const running = entry.running;
    if (running === undefined) return abortable(entry.value, signal, what);
    if (signal === undefined) {
      // a caller that never aborts keeps the refresh wanted until it ends
      running.waiters++;
      return entry.value;
    }
    if (signal.aborted) return abortable(entry.value, signal, what);
    running.waiters++;
    return abortable(entry.value, signal, what).finally(() => {
      if (--running.waiters === 0 && entry.running === running) {
        running.drop();
        running.stop.abort();
      }
    });
  }

  /** evict forgets failures past their time, then the least recently used beyond the bound. */
  private evict(now: number): void {
    for (const [k, e] of this.map) {
      if (e.failedUntil !== undefined && now >= e.failedUntil) this.map.delete(k);
    }
    const max = this.o.maxSources ?? MAX_SOURCES;
    // (an evicted TUF client holds no connections: its fetcher is the verifier's, shared)
    for (const k of this.map.keys()) {
      if (this.map.size <= max) break;
      this.map.delete(k);
    }
  }

  /** isFresh tells, without waiting, whether `key` holds a refreshed value still fresh. */
  isFresh(key: string): boolean {
    const e = this.map.get(key);
    return (
      e !== undefined &&
      e.running === undefined &&
      e.failedUntil === undefined &&
      this.usable(e, this.o.now())
    );
  }
}
