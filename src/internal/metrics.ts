/** Prometheus-style metrics of the network services (webhook, registry proxy): counters and a latency histogram, text format 0.0.4. */

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly histograms = new Map<string, { counts: number[]; sum: number; count: number }>();

  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    const key = `${name}${fmt(labels)}`;
    this.counters.set(key, (this.counters.get(key) ?? 0) + by);
  }

  observe(name: string, labels: Record<string, string>, seconds: number): void {
    const key = `${name}\u0000${fmt(labels)}`;
    let h = this.histograms.get(key);
    if (h === undefined) {
      h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.histograms.set(key, h);
    }
    for (let i = 0; i < BUCKETS.length; i++)
      if (seconds <= (BUCKETS[i] as number)) h.counts[i] = (h.counts[i] as number) + 1;
    h.sum += seconds;
    h.count++;
  }

  /** render writes the exposition text. */
  render(): string {
    const lines: string[] = [];
    const typed = new Set<string>();
    const type = (name: string, kind: string) => {
      if (typed.has(name)) return;
      typed.add(name);
      lines.push(`# TYPE ${name} ${kind}`);
    };
    for (const [key, v] of [...this.counters].sort()) {
      type(key.split('{')[0] as string, 'counter');
      lines.push(`${key} ${v}`);
    }
    for (const [key, h] of this.histograms) {
      const [name, labels] = key.split('\u0000') as [string, string];
      type(name, 'histogram');
      const inner = labels.slice(1, -1);
      const join = (extra: string) => `{${inner ? `${inner},` : ''}${extra}}`;
      BUCKETS.forEach((b, i) => {
        lines.push(`${name}_bucket${join(`le="${b}"`)} ${h.counts[i]}`);
      });
      lines.push(`${name}_bucket${join('le="+Inf"')} ${h.count}`);
      lines.push(`${name}_sum${labels} ${h.sum}`);
      lines.push(`${name}_count${labels} ${h.count}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

function fmt(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}
