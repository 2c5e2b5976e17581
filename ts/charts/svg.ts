// A small, dependency-free SVG line chart for benchmark and model results: axes with ticks and labels,
// linear or logarithmic scales, one colour (and dash pattern) per series, a legend. The output is one
// standalone SVG document that browsers and rsvg-convert render as is.
//
//   +--------------------------------------------------------------------------+
//   |                                title                                      |
//   |  y ticks |‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾ plot area ‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾|   legend       |
//   |  y label |  grid, series (polyline + markers)              |   — name       |
//   |          |_________________________________________________|   — name       |
//   |                     x ticks, x label                                        |
//   +--------------------------------------------------------------------------+
//
// Log axes use powers of 2 when every value on the axis is an integer (member counts, sizes) and powers
// of 10 otherwise (times, rates); `xLogBase`/`yLogBase` override. Points that a log axis cannot show
// (≤ 0) or that are not finite are left out, breaking the line there.

export interface Series {
  name: string;
  points: [number, number][];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  /** Tick base of a log axis; by default 2 for all-integer data, 10 otherwise. */
  xLogBase?: 2 | 10;
  yLogBase?: 2 | 10;
  /** Tick labels; by default plain numbers (formatTick). E.g. formatBytes for block sizes. */
  xFormat?: (value: number) => string;
  yFormat?: (value: number) => string;
  series: Series[];
  /** A point to mark and label on the chart (e.g. squall tune's recommendation); drawn over the series. */
  mark?: { x: number; y: number; label: string };
  /** Pixels; default 760 × 460. */
  width?: number;
  height?: number;
}

/** Okabe–Ito colours: distinguishable with the common colour-vision deficiencies, and on white. */
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#999999'];
/** Dash patterns, so series stay apart in greyscale and when colours repeat. */
const DASHES = ['', '6 3', '2 3', '8 3 2 3'];
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

/** Text for an SVG text node or attribute value. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
    // characters XML 1.0 does not allow at all
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '');
}

/** Numbers in attributes: two decimals are finer than a pixel. */
const px = (v: number): string => String(Math.round(v * 100) / 100);

interface Tick {
  value: number;
  label: string;
  /** A major tick has a label and a darker grid line. */
  major: boolean;
}

/** A scale maps data values to pixels; `ticks` are inside the domain, in increasing order. */
interface Scale {
  toPixel(value: number): number;
  ticks: Tick[];
  /** Whether a value can be drawn at all (log axes refuse ≤ 0). */
  accepts(value: number): boolean;
}

/** A readable tick label: "0.5", "12", "4096", "1e6", "2.5e-4". */
export function formatTick(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e6 || abs < 1e-3) {
    const [mantissa, exponent] = value.toExponential().split('e') as [string, string];
    return `${Number(Number(mantissa).toPrecision(3))}e${Number(exponent)}`;
  }
  return String(Number(value.toPrecision(6)));
}

function linearScale(min: number, max: number, pixelLow: number, pixelHigh: number): Scale {
  if (min === max) { const pad = min === 0 ? 1 : Math.abs(min) * 0.1; min -= pad; max += pad; }
  const rough = (max - min) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? 10 * magnitude;
  const low = Math.floor(min / step) * step, high = Math.ceil(max / step) * step;
  const ticks: Tick[] = [];
  for (let i = 0; low + i * step <= high + step * 1e-9; i++) {
    const value = Number((low + i * step).toPrecision(12));
    ticks.push({ value, label: formatTick(value), major: true });
  }
  const span = high - low;
  return {
    toPixel: (v) => pixelLow + ((v - low) / span) * (pixelHigh - pixelLow),
    ticks,
    accepts: (v) => Number.isFinite(v),
  };
}

function logScale(min: number, max: number, base: 2 | 10, pixelLow: number, pixelHigh: number): Scale {
  const log = (v: number) => Math.log(v) / Math.log(base);
  let lowExp = Math.floor(log(min) + 1e-9), highExp = Math.ceil(log(max) - 1e-9);
  if (highExp === lowExp) highExp++;
  const decades = highExp - lowExp;
  // at most ~12 labelled powers: label every `every`-th
  const every = Math.max(1, Math.ceil((decades + 1) / 12));
  const ticks: Tick[] = [];
  for (let e = lowExp; e <= highExp; e++) {
    const value = base ** e;
    ticks.push({
      value, label: (e - lowExp) % every === 0 ? formatTick(value) : '', major: (e - lowExp) % every === 0,
    });
    // minor ticks: 2..9 × 10^e on short decade spans (they are what makes a log axis readable)
    if (base === 10 && e < highExp && decades <= 6) {
      for (let m = 2; m <= 9; m++) {
        const label = decades <= 1 && (m === 2 || m === 5) ? formatTick(m * value) : '';
        ticks.push({ value: m * value, label, major: false });
      }
    }
  }
  const low = lowExp, span = highExp - lowExp;
  return {
    toPixel: (v) => pixelLow + ((log(v) - low) / span) * (pixelHigh - pixelLow),
    ticks,
    accepts: (v) => Number.isFinite(v) && v > 0,
  };
}

/** A linear axis of values that are all positive starts at zero (`fromZero`): bars of throughput, not of noise. */
function makeScale(
  values: number[], log: boolean, base: 2 | 10 | undefined, pixelLow: number, pixelHigh: number, fromZero = false,
): Scale {
  const usable = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (usable.length === 0) {
    return log ? logScale(1, 10, base ?? 10, pixelLow, pixelHigh) : linearScale(0, 1, pixelLow, pixelHigh);
  }
  let min = Infinity, max = -Infinity;
  for (const v of usable) { if (v < min) min = v; if (v > max) max = v; }
  if (!log) return linearScale(fromZero && min > 0 ? 0 : min, max, pixelLow, pixelHigh);
  const chosen = base ?? (usable.every((v) => Number.isInteger(v)) ? 2 : 10);
  return logScale(min, max, chosen, pixelLow, pixelHigh);
}

/** The chart as a standalone SVG document. */
export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 760;
  const height = options.height ?? 460;
  const legendWidth = Math.min(220, 40 + 7 * Math.max(6, ...options.series.map((s) => s.name.length)));
  const plot = { left: 78, top: 46, right: width - legendWidth - 16, bottom: height - 58 };
  const x = makeScale(
    options.series.flatMap((s) => s.points.map((p) => p[0])), !!options.xLog, options.xLogBase, plot.left, plot.right);
  const y = makeScale(
    options.series.flatMap((s) => s.points.map((p) => p[1])), !!options.yLog, options.yLogBase, plot.bottom, plot.top,
    true);
  for (const [scale, format] of [[x, options.xFormat], [y, options.yFormat]] as const) {
    if (format) for (const t of scale.ticks) if (t.label !== '') t.label = format(t.value);
  }

  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`);
  out.push(`<title>${escapeXml(options.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text class="title" x="${px(width / 2)}" y="26" text-anchor="middle" font-size="15" ` +
      `font-weight="600">${escapeXml(options.title)}</text>`);

  // grid and ticks
  out.push('<g class="grid" stroke-width="1">');
  for (const t of x.ticks) {
    const p = px(x.toPixel(t.value));
    out.push(
      `<line x1="${p}" y1="${plot.top}" x2="${p}" y2="${plot.bottom}" stroke="${t.major ? '#d9d9d9' : '#f0f0f0'}"/>`);
  }
  for (const t of y.ticks) {
    const p = px(y.toPixel(t.value));
    out.push(
      `<line x1="${plot.left}" y1="${p}" x2="${plot.right}" y2="${p}" stroke="${t.major ? '#d9d9d9' : '#f0f0f0'}"/>`);
  }
  out.push('</g>');
  out.push(
    `<rect class="plot-area" x="${plot.left}" y="${plot.top}" width="${plot.right - plot.left}" ` +
      `height="${plot.bottom - plot.top}" fill="none" stroke="#333333"/>`);
  out.push('<g class="x-ticks" text-anchor="middle">');
  for (const t of x.ticks) {
    const p = px(x.toPixel(t.value));
    out.push(
      `<line x1="${p}" y1="${plot.bottom}" x2="${p}" y2="${plot.bottom + (t.major ? 5 : 3)}" stroke="#333333"/>`);
    if (t.label) {
      out.push(`<text x="${p}" y="${plot.bottom + 18}" data-value="${t.value}">${escapeXml(t.label)}</text>`);
    }
  }
  out.push('</g>');
  out.push('<g class="y-ticks" text-anchor="end">');
  for (const t of y.ticks) {
    const p = px(y.toPixel(t.value));
    out.push(`<line x1="${plot.left - (t.major ? 5 : 3)}" y1="${p}" x2="${plot.left}" y2="${p}" stroke="#333333"/>`);
    if (t.label) {
      out.push(
        `<text x="${plot.left - 8}" y="${px(y.toPixel(t.value) + 4)}" ` +
          `data-value="${t.value}">${escapeXml(t.label)}</text>`);
    }
  }
  out.push('</g>');
  out.push(
    `<text class="x-label" x="${px((plot.left + plot.right) / 2)}" y="${height - 16}" text-anchor="middle" ` +
      `font-size="13">${escapeXml(options.xLabel)}</text>`);
  const yMid = px((plot.top + plot.bottom) / 2);
  out.push(
    `<text class="y-label" x="20" y="${yMid}" text-anchor="middle" font-size="13" ` +
      `transform="rotate(-90 20 ${yMid})">${escapeXml(options.yLabel)}</text>`);

  // series: a polyline per unbroken run of drawable points, and a marker per point
  options.series.forEach((series, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const dash = DASHES[i % DASHES.length]!;
    out.push(`<g class="series" data-series="${escapeXml(series.name)}" stroke="${colour}" fill="${colour}">`);
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) {
        out.push(
          `<polyline points="${run.join(' ')}" fill="none" ` +
            `stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
      }
      run = [];
    };
    for (const [vx, vy] of series.points) {
      if (!x.accepts(vx) || !y.accepts(vy)) { flush(); continue; }
      run.push(`${px(x.toPixel(vx))},${px(y.toPixel(vy))}`);
    }
    flush();
    for (const [vx, vy] of series.points) {
      if (!x.accepts(vx) || !y.accepts(vy)) continue;
      out.push(`<circle cx="${px(x.toPixel(vx))}" cy="${px(y.toPixel(vy))}" r="3" data-x="${vx}" data-y="${vy}"/>`);
    }
    out.push('</g>');
  });

  const mark = options.mark;
  if (mark && x.accepts(mark.x) && y.accepts(mark.y)) {
    const [mx, my] = [x.toPixel(mark.x), y.toPixel(mark.y)];
    const anchor = mx > (plot.left + plot.right) / 2 ? 'end' : 'start';
    out.push(`<g class="mark" data-x="${mark.x}" data-y="${mark.y}">`);
    out.push(`<circle cx="${px(mx)}" cy="${px(my)}" r="7" fill="none" stroke="#000000" stroke-width="2"/>`);
    out.push(`<text x="${px(mx + (anchor === 'end' ? -10 : 10))}" y="${px(my - 10)}" text-anchor="${anchor}" ` +
      `font-weight="600">${escapeXml(mark.label)}</text>`);
    out.push('</g>');
  }

  // legend
  out.push(`<g class="legend" font-size="12">`);
  options.series.forEach((series, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const dash = DASHES[i % DASHES.length]!;
    const ly = plot.top + 10 + i * 20;
    const lx = plot.right + 18;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 26}" y2="${ly}" stroke="${colour}" ` +
        `stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    out.push(`<circle cx="${lx + 13}" cy="${ly}" r="3" fill="${colour}"/>`);
    out.push(`<text x="${lx + 34}" y="${ly + 4}">${escapeXml(series.name)}</text>`);
  });
  out.push('</g>');
  if (!options.series.some((s) => s.points.some(([vx, vy]) => x.accepts(vx) && y.accepts(vy)))) {
    out.push(
      `<text x="${px((plot.left + plot.right) / 2)}" y="${px((plot.top + plot.bottom) / 2)}" text-anchor="middle" ` +
        `fill="#777777">no data</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
