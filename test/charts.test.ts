// The SVG line chart (ts/charts/svg.ts) and the CSV writer (ts/charts/csv.ts). The SVG is parsed by a
// strict little XML reader below (balanced tags, quoted attributes, known entities only), then checked
// for what a reader of the chart relies on: every series drawn and named, points inside the plot area,
// ticks in order along each axis, text escaped.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { escapeXml, formatTick, lineChart, type LineChartOptions } from '../ts/charts/svg.js';
import { toCsv } from '../ts/charts/csv.js';

interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** Parses the XML subset an SVG writer produces; throws on anything malformed. */
function parseXml(source: string): XmlElement {
  let at = 0;
  const fail = (why: string): never => {
    throw new Error(`XML: ${why} at offset ${at}: ${JSON.stringify(source.slice(at, at + 40))}`);
  };
  const decode = (text: string): string => {
    if (/[<]/.test(text)) fail('a raw < in text');
    return text.replace(/&([^;]*);?/g, (whole, name: string) => {
      if (!whole.endsWith(';')) fail(`an unterminated entity &${name}`);
      const known: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
      if (name in known) return known[name]!;
      if (/^#\d+$/.test(name)) return String.fromCodePoint(Number(name.slice(1)));
      if (/^#x[0-9a-f]+$/i.test(name)) return String.fromCodePoint(parseInt(name.slice(2), 16));
      return fail(`an unknown entity &${name};`);
    });
  };
  if (source.startsWith('<?xml')) {
    at = source.indexOf('?>') + 2;
    if (at < 2) fail('an unterminated XML declaration');
  }
  const skipSpace = () => { while (/\s/.test(source[at] ?? '')) at++; };
  const name = (): string => {
    const m = /^[A-Za-z_][\w.:-]*/.exec(source.slice(at));
    if (!m) return fail('a name expected');
    at += m[0].length;
    return m[0];
  };
  const element = (): XmlElement => {
    if (source[at] !== '<') fail('< expected');
    at++;
    const el: XmlElement = { name: name(), attributes: {}, children: [], text: '' };
    for (;;) {
      skipSpace();
      if (source.startsWith('/>', at)) { at += 2; return el; }
      if (source[at] === '>') { at++; break; }
      const attr = name();
      if (attr in el.attributes) fail(`a repeated attribute ${attr}`);
      skipSpace();
      if (source[at] !== '=') fail('= expected');
      at++;
      skipSpace();
      const quote = source[at];
      if (quote !== '"' && quote !== "'") return fail('a quoted attribute value expected');
      const end = source.indexOf(quote, at + 1);
      if (end < 0) fail('an unterminated attribute value');
      el.attributes[attr] = decode(source.slice(at + 1, end));
      at = end + 1;
    }
    for (;;) {
      const next = source.indexOf('<', at);
      if (next < 0) fail(`</${el.name}> missing`);
      el.text += decode(source.slice(at, next));
      at = next;
      if (source.startsWith('</', at)) {
        at += 2;
        const closing = name();
        if (closing !== el.name) fail(`</${closing}> closes <${el.name}>`);
        skipSpace();
        if (source[at] !== '>') fail('> expected');
        at++;
        return el;
      }
      el.children.push(element());
    }
  };
  skipSpace();
  const root = element();
  skipSpace();
  if (at !== source.length) fail('content after the root element');
  return root;
}

function all(el: XmlElement, predicate: (e: XmlElement) => boolean, out: XmlElement[] = []): XmlElement[] {
  if (predicate(el)) out.push(el);
  for (const c of el.children) all(c, predicate, out);
  return out;
}
const byClass = (root: XmlElement, cls: string) => all(root, (e) => e.attributes['class'] === cls);
const num = (e: XmlElement, attr: string): number => Number(e.attributes[attr]);

function plotArea(root: XmlElement): { left: number; top: number; right: number; bottom: number } {
  const [rect] = byClass(root, 'plot-area');
  assert.ok(rect, 'a plot-area rect');
  return {
    left: num(rect!, 'x'), top: num(rect!, 'y'), right: num(rect!, 'x') + num(rect!, 'width'),
    bottom: num(rect!, 'y') + num(rect!, 'height'),
  };
}

/** Every marker inside the plot area, and markers of a series follow its points in order. */
function checkSeries(root: XmlElement, options: LineChartOptions): void {
  const area = plotArea(root);
  const groups = byClass(root, 'series');
  assert.equal(
    groups.map((g) => g.attributes['data-series']), options.series.map((s) => s.name),
    'one group per series, in order');
  const legend = byClass(root, 'legend')[0]!;
  assert.equal(
    all(legend, (e) => e.name === 'text').map((t) => t.text), options.series.map((s) => s.name), 'legend names');
  groups.forEach((group, i) => {
    const circles = all(group, (e) => e.name === 'circle');
    const drawable = options.series[i]!.points.filter(([x, y]) =>
      Number.isFinite(x) && Number.isFinite(y) && (!options.xLog || x > 0) && (!options.yLog || y > 0));
    assert.is(circles.length, drawable.length, `${options.series[i]!.name}: a marker per drawable point`);
    for (const c of circles) {
      const cx = num(c, 'cx'), cy = num(c, 'cy');
      assert.ok(cx >= area.left - 0.01 && cx <= area.right + 0.01 && cy >= area.top - 0.01 && cy <= area.bottom + 0.01,
        `point (${c.attributes['data-x']}, ${c.attributes['data-y']}) at (${cx}, ${cy}) outside the plot area`);
    }
    if (drawable.length > 1) {
      assert.ok(all(group, (e) => e.name === 'polyline').length >= 1, 'a line through the points');
    }
  });
}

/** Tick labels along an axis: positions strictly monotone in value (left→right, bottom→top). */
function checkTicks(root: XmlElement, axis: 'x' | 'y'): number[] {
  const labels = all(byClass(root, `${axis}-ticks`)[0]!, (e) => e.name === 'text');
  assert.ok(labels.length >= 2, `${axis}: at least two labelled ticks`);
  const values = labels.map((l) => Number(l.attributes['data-value']));
  const positions = labels.map((l) => num(l, axis));
  for (let i = 1; i < labels.length; i++) {
    assert.ok(values[i]! > values[i - 1]!, `${axis} tick values increase: ${values}`);
    if (axis === 'x') assert.ok(positions[i]! > positions[i - 1]!, `x ticks move right: ${positions}`);
    else assert.ok(positions[i]! < positions[i - 1]!, `y ticks move up: ${positions}`);
  }
  return values;
}

const members = [2, 3, 4, 8, 16, 64, 256, 1024, 4096];
const modelLike: LineChartOptions = {
  title: 'RDMC model: 256 MiB in 1 MiB blocks, 1 Gbit/s',
  xLabel: 'members', yLabel: 'completion time (s)', xLog: true, yLog: true,
  series: [
    { name: 'sequential', points: members.map((n) => [n, 2.147 * (n - 1)]) },
    { name: 'chain', points: members.map((n) => [n, 2.147 * (256 + n - 2) / 256]) },
    { name: 'tree', points: members.map((n) => [n, 2.147 * Math.ceil(Math.log2(n))]) },
    { name: 'binomial pipeline', points: members.map((n) => [n, 2.147 * (256 + Math.log2(n)) / 256]) },
  ],
};

test('a log-log chart of the model is well-formed SVG with every series, inside the plot area', () => {
  const svg = lineChart(modelLike);
  const root = parseXml(svg);
  assert.is(root.name, 'svg');
  assert.is(root.attributes['xmlns'], 'http://www.w3.org/2000/svg');
  checkSeries(root, modelLike);
  // member counts are integers: powers of 2 on x; seconds are not: powers of 10 on y
  const xs = checkTicks(root, 'x');
  assert.equal(xs, [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]);
  const ys = checkTicks(root, 'y');
  assert.equal(ys, [1, 10, 100, 1000, 10000]);
});

test('on a log axis, points keep their order and equal ratios get equal distances', () => {
  const options: LineChartOptions = { title: 't', xLabel: 'x', yLabel: 'y', xLog: true, yLog: true,
    series: [{ name: 'doubling', points: [[1, 1], [2, 2], [4, 4], [8, 8], [16, 16]] }] };
  const root = parseXml(lineChart(options));
  const circles = all(byClass(root, 'series')[0]!, (e) => e.name === 'circle');
  const cx = circles.map((c) => num(c, 'cx')), cy = circles.map((c) => num(c, 'cy'));
  for (let i = 1; i < cx.length; i++) {
    assert.ok(cx[i]! > cx[i - 1]! && cy[i]! < cy[i - 1]!, 'right and up');
    if (i > 1) assert.ok(Math.abs((cx[i]! - cx[i - 1]!) - (cx[1]! - cx[0]!)) < 0.02, `equal steps: ${cx}`);
  }
});

test('a linear chart with negative values, and a forced log base', () => {
  const linear: LineChartOptions = { title: 'linear', xLabel: 'x', yLabel: 'y',
    series: [
      { name: 'a', points: [[0, 0.1], [1, 0.35], [2.5, 0.2], [3, -0.05]] }, { name: 'b', points: [[0, 0], [3, 0.3]] },
    ] };
  const root = parseXml(lineChart(linear));
  checkSeries(root, linear);
  assert.equal(checkTicks(root, 'y'), [-0.1, 0, 0.1, 0.2, 0.3, 0.4]);
  assert.equal(checkTicks(root, 'x'), [0, 1, 2, 3]);
  const forced: LineChartOptions = { ...modelLike, xLogBase: 10 };
  assert.equal(checkTicks(parseXml(lineChart(forced)), 'x'), [1, 10, 100, 1000, 10000]);
});

test('a value axis of positive values starts at zero; a mark is drawn at its point with its label', () => {
  const options: LineChartOptions = { title: 'tune', xLabel: 'block size', yLabel: 'GB/s', xLog: true,
    series: [{ name: 'binomial', points: [[4096, 5.2], [65536, 8.9], [1048576, 7.1]] }],
    mark: { x: 65536, y: 8.9, label: 'recommended: binomial, 64 KiB' } };
  const root = parseXml(lineChart(options));
  checkSeries(root, options);
  assert.is(checkTicks(root, 'y')[0], 0, 'the value axis starts at zero');
  const [mark] = all(root, (e) => e.attributes['class'] === 'mark');
  assert.ok(mark, 'the mark is drawn');
  const circle = mark.children.find((c) => c.name === 'circle')!;
  const point = all(root, (e) => e.name === 'circle' && e.attributes['data-x'] === '65536')[0]!;
  assert.is(circle.attributes['cx'], point.attributes['cx'], 'at the recommended point');
  assert.is(circle.attributes['cy'], point.attributes['cy']);
  assert.is(mark.children.find((c) => c.name === 'text')!.text, 'recommended: binomial, 64 KiB');
  const unmarked = parseXml(lineChart({ ...options, mark: { x: -1, y: 1, label: 'off the log axis' } }));
  assert.equal(all(unmarked, (e) => e.attributes['class'] === 'mark'), [], 'a mark the axes cannot show is left out');
});

test('points a log axis cannot show are left out, breaking the line; empty charts still parse', () => {
  const options: LineChartOptions = { title: 'gaps', xLabel: 'x', yLabel: 'y', xLog: true, yLog: true,
    series: [
      { name: 'gappy', points: [[1, 1], [2, 0], [4, 4], [8, NaN], [16, 16], [32, 32], [-1, 3]] },
      { name: 'empty', points: [] },
    ] };
  const root = parseXml(lineChart(options));
  checkSeries(root, options);
  const group = byClass(root, 'series')[0]!;
  assert.is(all(group, (e) => e.name === 'polyline').length, 1, 'only 16→32 is an unbroken run of two');
  const none = parseXml(lineChart({ title: 'nothing', xLabel: 'x', yLabel: 'y', yLog: true, series: [] }));
  assert.ok(all(none, (e) => e.name === 'text').some((t) => t.text === 'no data'));
});

test('titles, labels and series names are escaped', () => {
  const nasty = `a <b> & "c" 'd' \u0001`;
  const options: LineChartOptions = {
    title: nasty, xLabel: nasty, yLabel: nasty, series: [{ name: nasty, points: [[1, 2], [2, 3]] }],
  };
  const svg = lineChart(options);
  const root = parseXml(svg);
  const clean = `a <b> & "c" 'd' `;
  assert.is(all(root, (e) => e.name === 'title')[0]!.text, clean);
  assert.is(byClass(root, 'x-label')[0]!.text, clean);
  assert.is(byClass(root, 'y-label')[0]!.text, clean);
  assert.is(byClass(root, 'series')[0]!.attributes['data-series'], clean);
  assert.is(escapeXml('<&>'), '&lt;&amp;&gt;');
});

test('tick labels are short', () => {
  assert.is(formatTick(4096), '4096');
  assert.is(formatTick(0.25), '0.25');
  assert.is(formatTick(1e6), '1e6');
  assert.is(formatTick(2.5e-4), '2.5e-4');
  assert.is(formatTick(0.1 + 0.2), '0.3');
});

test('CSV: header, rows, quoting', () => {
  const csv = toCsv([
    { algorithm: 'binomial', members: 4, seconds: 2.25 }, { algorithm: 'a,"b"', members: 8, seconds: 1e-7 },
  ]);
  assert.is(csv, 'algorithm,members,seconds\nbinomial,4,2.25\n"a,""b""",8,1e-7\n');
  assert.is(toCsv([{ a: 1, b: null }], ['b', 'a']), 'b,a\n,1\n');
  assert.is(toCsv([]), '\n');
});

test.run();
