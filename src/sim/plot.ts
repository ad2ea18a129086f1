/**
 * Dependency-free SVG charts for simulation results: line charts with error bars, and empirical
 * CDFs. The output is a standalone SVG document, the same bytes for the same input. Points that
 * are not finite (or not positive, on a log axis) are skipped and break the line; empty data
 * gives an empty chart with axes.
 */

export interface Point {
  readonly x: number;
  readonly y: number;
  /** Half-width of an error bar (e.g. one standard deviation). */
  readonly yErr?: number;
}

export interface Series {
  readonly name: string;
  readonly points: readonly Point[];
  /** Dashed line, e.g. a theory curve. */
  readonly dashed?: boolean;
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** Pixels; default 720. */
  readonly width?: number;
  /** Pixels; default 440. */
  readonly height?: number;
  /** A log10 x axis; points with x <= 0 are skipped. */
  readonly logX?: boolean;
  /** The y range always includes these. */
  readonly yMin?: number;
  readonly yMax?: number;
}

/** Eight colours that stay apart on white, used in turn. */
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'] as const;

/** Values are clamped to this magnitude, so that no range or scale overflows. */
const LIMIT = 1e300;
const LEGEND_WIDTH = 150;
const MARGIN = { top: 36, right: 16, bottom: 46, left: 68 } as const;

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** XML text or attribute content: the five special characters escaped, characters XML forbids dropped or replaced. */
function esc(s: string): string {
  let out = '';
  for (const c of s) {
    const n = c.charCodeAt(0);
    if ((n < 0x20 && n !== 0x09 && n !== 0x0a && n !== 0x0d) || n === 0xfffe || n === 0xffff) continue;
    // A lone surrogate arrives as a single code unit.
    out += c.length === 1 && n >= 0xd800 && n <= 0xdfff ? '\ufffd' : (ENTITIES[c] ?? c);
  }
  return out;
}

/** A coordinate with at most 2 decimals and no "-0". */
function num(v: number): string {
  const r = Math.round(v * 100) / 100;
  return r === 0 ? '0' : String(r);
}

function clamp(v: number): number {
  return Math.min(LIMIT, Math.max(-LIMIT, v));
}

interface Axis {
  readonly lo: number;
  readonly hi: number;
  /** Tick positions, in axis units (log10 of the value on a log axis). */
  readonly ticks: readonly { readonly at: number; readonly label: string }[];
}

/** A tick label for a multiple of 10^e (the step's decade). */
function tickLabel(v: number, e: number): string {
  const a = Math.abs(v);
  const fixed = e >= -10 && Math.max(a, 10 ** e) >= 1e-4 && a < 1e9;
  if (a < 10 ** e / 2) return fixed ? (0).toFixed(Math.max(0, -e)) : '0';
  if (fixed) return v.toFixed(Math.max(0, -e));
  const digits = Math.min(12, Math.max(0, Math.floor(Math.log10(a)) - e));
  return v.toExponential(digits).replace(/\.?0+e/, 'e').replace('e+', 'e');
}

/** A linear axis over [lo, hi] widened to whole 1-2-5 steps, about `count` ticks. */
function linearAxis(lo: number, hi: number, count: number): Axis {
  const big = Math.max(Math.abs(lo), Math.abs(hi));
  if (!(hi - lo > big * 1e-9) || hi - lo < 1e-100) {
    const mid = (lo + hi) / 2;
    const pad = Math.abs(mid) >= 1e-100 ? Math.abs(mid) * 0.1 : 1;
    lo = mid - pad;
    hi = mid + pad;
  }
  const raw = (hi - lo) / count;
  let e = Math.floor(Math.log10(raw));
  const r = raw / 10 ** e;
  let m = r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10;
  if (m === 10) {
    m = 1;
    e += 1;
  }
  const step = m * 10 ** e;
  const first = Math.floor(lo / step);
  const last = Math.ceil(hi / step);
  const ticks: { at: number; label: string }[] = [];
  for (let i = first; i <= last && ticks.length <= 4 * count; i++) ticks.push({ at: i * step, label: tickLabel(i * step, e) });
  return { lo: first * step, hi: last * step, ticks };
}

/** 10^d as a label: plain from 0.0001 to 100000 (1 / 10^-d, since 10 ** -4 is not 0.0001), else 1eD. */
function decade(d: number): string {
  if (d < -4 || d > 5) return `1e${d}`;
  return String(d < 0 ? 1 / 10 ** -d : 10 ** d);
}

/** A log10 axis over [lo, hi] (already in log10 units) widened to whole decades, ticked every k decades. */
function logAxis(lo: number, hi: number, count: number): Axis {
  const every = Math.max(1, Math.ceil((Math.ceil(hi) - Math.floor(lo)) / count));
  let first = Math.floor(lo / every) * every;
  let last = Math.ceil(hi / every) * every;
  if (first === last) {
    first -= every;
    last += every;
  }
  const ticks: { at: number; label: string }[] = [];
  for (let d = first; d <= last; d += every) ticks.push({ at: d, label: decade(d) });
  return { lo: first, hi: last, ticks };
}

interface Drawn {
  readonly options: ChartOptions;
  /** Draw a circle at each point. */
  readonly markers: boolean;
}

function render({ options, markers }: Drawn): string {
  const width = sizeOr(options.width, 720);
  const height = sizeOr(options.height, 440);
  const logX = options.logX === true;
  const hasLegend = options.series.length > 0;
  const left = MARGIN.left;
  const top = MARGIN.top;
  const right = width - MARGIN.right - (hasLegend ? LEGEND_WIDTH : 0);
  const bottom = height - MARGIN.bottom;

  // Each series as runs of drawable points, in axis units; a skipped point ends a run.
  const runs = options.series.map((s) => {
    const out: { x: number; y: number; err: number }[][] = [[]];
    for (const p of s.points) {
      const x = logX ? (p.x > 0 ? Math.log10(p.x) : NaN) : p.x;
      if (!Number.isFinite(x) || !Number.isFinite(p.y)) {
        if (out[out.length - 1]?.length !== 0) out.push([]);
        continue;
      }
      const err = p.yErr !== undefined && Number.isFinite(p.yErr) && p.yErr > 0 ? p.yErr : 0;
      out[out.length - 1]?.push({ x: clamp(x), y: clamp(p.y), err });
    }
    return out.filter((run) => run.length > 0);
  });

  let xLo = Infinity, xHi = -Infinity, yLo = Infinity, yHi = -Infinity;
  for (const p of runs.flat(2)) {
    xLo = Math.min(xLo, p.x);
    xHi = Math.max(xHi, p.x);
    yLo = Math.min(yLo, clamp(p.y - p.err));
    yHi = Math.max(yHi, clamp(p.y + p.err));
  }
  for (const v of [options.yMin, options.yMax]) {
    if (v !== undefined && Number.isFinite(v)) {
      yLo = Math.min(yLo, clamp(v));
      yHi = Math.max(yHi, clamp(v));
    }
  }
  // No data: x from 0 to 1 (1 to 10 on a log axis), y from 0 to 1.
  if (xLo > xHi) [xLo, xHi] = [0, 1];
  if (yLo > yHi) [yLo, yHi] = [0, 1];
  const xCount = Math.max(2, Math.round((right - left) / 90));
  const xAxis = logX ? logAxis(xLo, xHi, xCount) : linearAxis(xLo, xHi, xCount);
  const yAxis = linearAxis(yLo, yHi, Math.max(2, Math.round((bottom - top) / 60)));
  const sx = (v: number): number => left + ((v - xAxis.lo) / (xAxis.hi - xAxis.lo)) * (right - left);
  const sy = (v: number): number => bottom - ((v - yAxis.lo) / (yAxis.hi - yAxis.lo)) * (bottom - top);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${num((left + right) / 2)}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(options.title)}</text>`,
  ];
  // Grid, ticks and tick labels.
  out.push('<g class="grid" stroke="#e3e3e3" stroke-width="1">');
  for (const t of xAxis.ticks) out.push(`<line x1="${num(sx(t.at))}" y1="${top}" x2="${num(sx(t.at))}" y2="${bottom}"/>`);
  for (const t of yAxis.ticks) out.push(`<line x1="${left}" y1="${num(sy(t.at))}" x2="${right}" y2="${num(sy(t.at))}"/>`);
  out.push('</g>', '<g class="axes" fill="#333333">');
  for (const t of xAxis.ticks) out.push(`<text class="xtick" x="${num(sx(t.at))}" y="${bottom + 16}" text-anchor="middle">${esc(t.label)}</text>`);
  for (const t of yAxis.ticks) out.push(`<text class="ytick" x="${left - 6}" y="${num(sy(t.at) + 4)}" text-anchor="end">${esc(t.label)}</text>`);
  out.push(
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#333333"/>`,
    `<text x="${num((left + right) / 2)}" y="${height - 8}" text-anchor="middle">${esc(options.xLabel)}</text>`,
    `<text transform="rotate(-90)" x="${num(-(top + bottom) / 2)}" y="16" text-anchor="middle">${esc(options.yLabel)}</text>`,
    '</g>',
  );

  // Series: error bars, one path, markers.
  options.series.forEach((s, i) => {
    const seriesRuns = runs[i] ?? [];
    if (seriesRuns.length === 0) return;
    const colour = PALETTE[i % PALETTE.length] ?? '#000000';
    out.push(`<g class="series" stroke="${colour}" fill="${colour}">`);
    for (const p of seriesRuns.flat()) {
      if (p.err === 0) continue;
      const x = num(sx(p.x));
      const [y1, y2] = [num(sy(clamp(p.y - p.err))), num(sy(clamp(p.y + p.err)))];
      out.push(`<line class="err" x1="${x}" y1="${y1}" x2="${x}" y2="${y2}"/>`);
      for (const y of [y1, y2]) out.push(`<line class="err" x1="${num(sx(p.x) - 3)}" y1="${y}" x2="${num(sx(p.x) + 3)}" y2="${y}"/>`);
    }
    const d = seriesRuns.map((run) => run.map((p, j) => `${j === 0 ? 'M' : 'L'}${num(sx(p.x))} ${num(sy(p.y))}`).join(' ')).join(' ');
    out.push(`<path d="${d}" fill="none" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`);
    if (markers) for (const p of seriesRuns.flat()) out.push(`<circle cx="${num(sx(p.x))}" cy="${num(sy(p.y))}" r="3"/>`);
    out.push('</g>');
  });

  // Legend, right of the plot.
  if (hasLegend) {
    out.push('<g class="legend">');
    options.series.forEach((s, i) => {
      const colour = PALETTE[i % PALETTE.length] ?? '#000000';
      const y = top + 10 + i * 18;
      const name = s.name.length > 22 ? `${s.name.slice(0, 21)}…` : s.name;
      out.push(
        `<g class="legend-entry" stroke="${colour}" fill="${colour}">`,
        `<line x1="${right + 12}" y1="${y}" x2="${right + 36}" y2="${y}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
        `<text x="${right + 42}" y="${y + 4}" stroke="none" fill="#333333">${esc(name)}</text>`,
        '</g>',
      );
    });
    out.push('</g>');
  }
  out.push('</svg>', '');
  return out.join('\n');
}

/** A chart dimension: whole pixels in [240, 8192], or the default when not a finite number. */
function sizeOr(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isFinite(v) ? Math.min(8192, Math.max(240, Math.round(v))) : fallback;
}

/**
 * A line chart with markers, error bars, axes with "nice" ticks (1-2-5 steps; decades for logX),
 * grid lines and a legend, as a standalone SVG document.
 */
export function lineChartSvg(options: ChartOptions): string {
  return render({ options, markers: true });
}

/** The most points drawn per CDF curve; larger samples are drawn at evenly spaced ranks. */
const CDF_POINTS = 1000;

/**
 * An empirical CDF (y from 0 to 1) of each sample set, as a line chart without markers: for
 * latency distributions. Values that are not finite are left out.
 */
export function cdfChartSvg(options: {
  title: string;
  xLabel: string;
  samples: readonly { name: string; values: readonly number[] }[];
  width?: number;
  height?: number;
  logX?: boolean;
}): string {
  const series = options.samples.map((s): Series => {
    const sorted = s.values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
    const n = sorted.length;
    const points: Point[] = [];
    if (n <= CDF_POINTS) {
      // A step function: up by 1/n at each value.
      sorted.forEach((v, i) => points.push({ x: v, y: i / n }, { x: v, y: (i + 1) / n }));
    } else {
      for (let j = 0; j < CDF_POINTS; j++) {
        const i = Math.round((j * (n - 1)) / (CDF_POINTS - 1));
        points.push({ x: sorted[i] ?? 0, y: (i + 1) / n });
      }
    }
    return { name: s.name, points };
  });
  const chart: ChartOptions = {
    title: options.title,
    xLabel: options.xLabel,
    yLabel: 'fraction ≤ x',
    series,
    yMin: 0,
    yMax: 1,
    ...(options.width !== undefined ? { width: options.width } : {}),
    ...(options.height !== undefined ? { height: options.height } : {}),
    ...(options.logX !== undefined ? { logX: options.logX } : {}),
  };
  return render({ options: chart, markers: false });
}
