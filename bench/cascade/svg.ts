// A small, dependency-free SVG line chart: axes with ticks, a shaded fault window, a dashed reference line, and a
// few series (a gap where a value is missing). Enough for the cascade charts in docs/resilience.md.

export interface Series {
  name: string;
  color: string;
  /** [x, y]; y null = no value (the line breaks). */
  points: [number, number | null][];
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  yLabel: string;
  xLabel?: string;
  series: Series[];
  xMax: number;
  yMin?: number;
  yMax: number;
  /** Logarithmic y axis (yMin must be > 0). */
  yLog?: boolean;
  /** Shaded x range, e.g. the fault window. */
  shade?: { from: number; to: number; label: string };
  /** Horizontal reference line, e.g. an SLO. */
  reference?: { y: number; label: string };
  /** Formats a y tick. */
  yFormat?: (y: number) => string;
  width?: number;
  height?: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const r = (n: number) => Math.round(n * 10) / 10;

/** Round tick steps (1, 2, 5 × 10^k) giving about `count` ticks. */
function linearTicks(min: number, max: number, count = 5): number[] {
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

export function lineChart(o: ChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 320;
  const m = { left: 70, right: 20, top: 56, bottom: 46 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const yMin = o.yMin ?? 0;
  const x = (v: number) => m.left + (Math.min(Math.max(v, 0), o.xMax) / o.xMax) * pw;
  const y = (v: number) => {
    const c = Math.min(Math.max(v, yMin), o.yMax);
    const f = o.yLog ? (Math.log10(c) - Math.log10(yMin)) / (Math.log10(o.yMax) - Math.log10(yMin)) : (c - yMin) / (o.yMax - yMin);
    return m.top + ph - f * ph;
  };
  const fmt = o.yFormat ?? ((v: number) => String(v));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${m.left}" y="20" font-size="15" font-weight="bold" fill="#222">${esc(o.title)}</text>`);
  if (o.shade) {
    const x1 = x(o.shade.from);
    const x2 = x(o.shade.to);
    out.push(`<rect x="${r(x1)}" y="${m.top}" width="${r(x2 - x1)}" height="${ph}" fill="#f4a261" fill-opacity="0.18"/>`);
    out.push(`<text x="${r((x1 + x2) / 2)}" y="${m.top + 14}" text-anchor="middle" fill="#b5651d">${esc(o.shade.label)}</text>`);
  }
  // Grid and y ticks.
  const yTicks = o.yLog
    ? Array.from({ length: Math.floor(Math.log10(o.yMax)) - Math.ceil(Math.log10(yMin)) + 1 }, (_, i) => 10 ** (Math.ceil(Math.log10(yMin)) + i))
    : linearTicks(yMin, o.yMax);
  for (const t of yTicks) {
    const ty = r(y(t));
    out.push(`<line x1="${m.left}" y1="${ty}" x2="${m.left + pw}" y2="${ty}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${ty + 4}" text-anchor="end" fill="#444">${esc(fmt(t))}</text>`);
  }
  for (const t of linearTicks(0, o.xMax, 8)) {
    const tx = r(x(t));
    out.push(`<line x1="${tx}" y1="${m.top + ph}" x2="${tx}" y2="${m.top + ph + 4}" stroke="#444"/>`);
    out.push(`<text x="${tx}" y="${m.top + ph + 17}" text-anchor="middle" fill="#444">${t}</text>`);
  }
  out.push(`<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#444"/>`);
  out.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#444"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${height - 8}" text-anchor="middle" fill="#222">${esc(o.xLabel ?? 'time (s)')}</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#222">${esc(o.yLabel)}</text>`);
  if (o.reference) {
    const ry = r(y(o.reference.y));
    out.push(`<line x1="${m.left}" y1="${ry}" x2="${m.left + pw}" y2="${ry}" stroke="#555" stroke-dasharray="2 3"/>`);
    out.push(`<text x="${m.left + pw - 4}" y="${ry - 4}" text-anchor="end" fill="#555">${esc(o.reference.label)}</text>`);
  }
  for (const s of o.series) {
    let d = '';
    let pen = false;
    for (const [px, py] of s.points) {
      if (py === null || !Number.isFinite(py)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${r(x(px))} ${r(y(py))} `;
      pen = true;
    }
    out.push(`<path d="${d.trim()}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} stroke-linejoin="round"/>`);
  }
  // Legend, top right above the plot.
  let lx = m.left + pw;
  for (const s of [...o.series].reverse()) {
    const w = 30 + s.name.length * 6.6;
    lx -= w;
    out.push(`<line x1="${r(lx)}" y1="40" x2="${r(lx + 20)}" y2="40" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${r(lx + 25)}" y="44" fill="#222">${esc(s.name)}</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
