/**
 * The benchmark chart: horizontal bars of wall time per case for both clients, on a log scale,
 * as a self-contained SVG (no fonts or scripts loaded from anywhere).
 */

export interface ChartBar {
  readonly client: string;
  /** Median seconds, or undefined when there is no figure. */
  readonly seconds?: number;
  /** Did not finish within this bound (seconds). */
  readonly dnfBound?: number;
  /** Shown instead of a bar when there is neither. */
  readonly note?: string;
}

export interface ChartGroup {
  readonly label: string;
  readonly bars: readonly ChartBar[];
}

const COLORS: Record<string, string> = { tufa: '#1f77b4', 'tuf-js': '#ff7f0e' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(s: number): string {
  if (s >= 100) return `${s.toFixed(0)} s`;
  if (s >= 10) return `${s.toFixed(1)} s`;
  if (s >= 1) return `${s.toFixed(2)} s`;
  return `${(s * 1000).toFixed(0)} ms`;
}

/** renderChart draws the groups; `title` and `subtitle` go on top. */
export function renderChart(
  groups: readonly ChartGroup[],
  title: string,
  subtitle: string,
): string {
  const left = 250;
  const plotW = 560;
  const right = 210;
  const barH = 14;
  const gap = 10;
  const top = 62;
  let maxS = 1;
  let minS = 1;
  for (const g of groups) {
    for (const b of g.bars) {
      const v = b.seconds ?? b.dnfBound;
      if (v !== undefined && v > 0) {
        maxS = Math.max(maxS, v);
        minS = Math.min(minS, v);
      }
    }
  }
  const lo = Math.floor(Math.log10(minS));
  // room for the labels after the longest bar, without a whole empty decade
  const hi = Math.max(lo + 1, Math.log10(maxS * 1.25));
  const x = (s: number) => left + ((Math.log10(Math.max(s, 10 ** lo)) - lo) / (hi - lo)) * plotW;
  const rowsH = groups.reduce((n, g) => n + g.bars.length * barH + gap, 0);
  const height = top + rowsH + 50;
  const width = left + plotW + right;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11" role="img">`,
    `<title>${esc(title)}</title>`,
    '<defs><pattern id="dnf" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#ff7f0e" opacity="0.55"/></pattern></defs>',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="${width / 2}" y="37" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`,
  ];
  // grid: one line per decade, minor lines at 2 and 5
  for (let d = lo; d <= Math.floor(hi); d++) {
    for (const m of [1, 2, 5]) {
      const s = m * 10 ** d;
      if (Math.log10(s) > hi + 1e-9) continue;
      const gx = x(s);
      out.push(
        `<line x1="${gx.toFixed(1)}" y1="${top - 6}" x2="${gx.toFixed(1)}" y2="${top + rowsH}" stroke="${m === 1 ? '#bbb' : '#e6e6e6'}"/>`,
      );
      if (m === 1)
        out.push(
          `<text x="${gx.toFixed(1)}" y="${top + rowsH + 14}" text-anchor="middle" fill="#333">${fmt(s)}</text>`,
        );
    }
  }
  out.push(
    `<text x="${left + plotW / 2}" y="${top + rowsH + 30}" text-anchor="middle" fill="#333">wall time of one whole client process, median (log scale)</text>`,
  );
  let y = top;
  for (const g of groups) {
    const gh = g.bars.length * barH;
    out.push(
      `<text x="${left - 8}" y="${(y + gh / 2 + 4).toFixed(1)}" text-anchor="end">${esc(g.label)}</text>`,
    );
    for (const b of g.bars) {
      const color = COLORS[b.client] ?? '#777';
      if (b.seconds !== undefined) {
        const w = Math.max(1, x(b.seconds) - left);
        out.push(
          `<rect x="${left}" y="${y + 1}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${color}"><title>${esc(`${b.client}: ${fmt(b.seconds)}`)}</title></rect>`,
          `<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 3}" fill="#222">${esc(`${b.client} ${fmt(b.seconds)}`)}</text>`,
        );
      } else if (b.dnfBound !== undefined) {
        const w = Math.max(1, x(b.dnfBound) - left);
        out.push(
          `<rect x="${left}" y="${y + 1}" width="${w.toFixed(1)}" height="${barH - 2}" fill="url(#dnf)" stroke="${color}"/>`,
          `<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 3}" fill="#222">${esc(`${b.client} > ${fmt(b.dnfBound)} (did not finish)`)}</text>`,
        );
      } else {
        out.push(
          `<text x="${left + 4}" y="${y + barH - 3}" fill="#888">${esc(`${b.client}: ${b.note ?? 'no figure'}`)}</text>`,
        );
      }
      y += barH;
    }
    y += gap;
  }
  // legend
  let lx = left;
  for (const [name, color] of Object.entries(COLORS)) {
    out.push(
      `<rect x="${lx}" y="${top - 20}" width="12" height="10" fill="${color}"/>`,
      `<text x="${lx + 16}" y="${top - 11}">${name}</text>`,
    );
    lx += 80;
  }
  out.push(
    `<rect x="${lx}" y="${top - 20}" width="12" height="10" fill="url(#dnf)" stroke="#ff7f0e"/>`,
    `<text x="${lx + 16}" y="${top - 11}">did not finish within the bound</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
