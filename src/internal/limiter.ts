/** A fair counting semaphore, shared by the network services (admission webhook, registry proxy). */

/**
 * A counting semaphore shared fairly: at most `max` tasks run at once, all groups (reviews, clients)
 * together, and while several groups want slots each runs at most `ceil(max / groups)` of
 * them, and never more than `perGroup`; freed slots go round-robin to the groups that wait. So
 * one review with many images cannot starve the others, nor can one client holding its slots.
 * A waiting task whose signal aborts leaves the queue without running.
 */
export class Limiter {
  private running = 0;
  /** Per group: its running tasks and its queue, in round-robin order. */
  private readonly groups = new Map<unknown, { running: number; queue: Array<() => void> }>();

  constructor(
    readonly max: number,
    readonly perGroup = max,
  ) {}

  async run<T>(signal: AbortSignal, task: () => Promise<T>, group: unknown = signal): Promise<T> {
    if (signal.aborted) throw signal.reason;
    let g = this.groups.get(group);
    if (g === undefined) {
      g = { running: 0, queue: [] };
      this.groups.set(group, g);
    }
    const mine = g;
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal.removeEventListener('abort', gone);
        resolve();
      };
      const gone = () => {
        const i = mine.queue.indexOf(go);
        if (i >= 0) mine.queue.splice(i, 1);
        this.forget(group, mine);
        reject(signal.reason);
      };
      signal.addEventListener('abort', gone, { once: true });
      mine.queue.push(go);
      this.pump();
    });
    try {
      return await task();
    } finally {
      this.running--;
      mine.running--;
      this.forget(group, mine);
      this.pump();
    }
  }

  private forget(group: unknown, g: { running: number; queue: unknown[] }): void {
    if (g.running === 0 && g.queue.length === 0 && this.groups.get(group) === g)
      this.groups.delete(group);
  }

  /** pump hands free slots round-robin to the waiting groups under their fair share. */
  private pump(): void {
    while (this.running < this.max) {
      const share = Math.min(this.perGroup, Math.ceil(this.max / Math.max(1, this.groups.size)));
      let started = false;
      for (const [key, g] of this.groups) {
        if (g.queue.length === 0 || g.running >= share) continue;
        const go = g.queue.shift() as () => void;
        g.running++;
        this.running++;
        // served: to the back of the round
        this.groups.delete(key);
        this.groups.set(key, g);
        go();
        started = true;
        break;
      }
      if (!started) return;
    }
  }
}
