// SVG charts (line charts, CDFs), CSV output and the CLI progress bar: structure, escaping,
// determinism and robustness of the charts under any numbers; quoting and number formats of the
// CSV; throttling of the progress bar on a fake stream and a fake clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { cdfChartSvg, lineChartSvg } from '../../src/sim/plot.js';
import type { ChartOptions, Point, Series } from '../../src/sim/plot.js';
import { toCsv } from '../../src/sim/table.js';
import { progressBar } from '../../src/cli/progress.js';

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/** The text of every <text> element, unescaped only as far as the tests need. */
function texts(svg: string, cls?: string): string[] {
  return [...svg.matchAll(/<text([^>]*)>([^<]*)<\/text>/g)].filter((m) => cls === undefined || (m[1] ?? '').includes(`class="${cls}"`)).map((m) => m[2] ?? '');
}

function chart(series: readonly Series[], extra: Partial<ChartOptions> = {}): ChartOptions {
  return { title: 'T', xLabel: 'x', yLabel: 'y', series, ...extra };
}

/** A standalone SVG document with no NaN or Infinity anywhere. */
function assertWellFormed(svg: string): void {
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" '));
  assert.match(svg, /viewBox="0 0 \d+ \d+"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.ok(!svg.includes('NaN'), 'NaN in output');
  assert.ok(!svg.includes('Infinity'), 'Infinity in output');
  assert.ok(!svg.includes('undefined'), 'undefined in output');
  // Every number in an attribute has at most 2 decimals.
  for (const m of svg.matchAll(/="([^"]*)"/g)) {
    for (const n of (m[1] ?? '').matchAll(/-?\d+\.(\d+)/g)) assert.ok((n[1] ?? '').length <= 2, `too many decimals: ${n[0]}`);
  }
}

describe('lineChartSvg', () => {
  const two: Series[] = [
    { name: 'measured', points: [{ x: 1, y: 2, yErr: 0.5 }, { x: 2, y: 3, yErr: 0.25 }, { x: 3, y: 5 }] },
    { name: 'theory', points: [{ x: 1, y: 2.2 }, { x: 3, y: 4.8 }], dashed: true },
  ];

  test('an SVG document with one path and one legend entry per series', () => {
    const svg = lineChartSvg(chart(two, { width: 600, height: 400 }));
    assertWellFormed(svg);
    assert.match(svg, /width="600" height="400" viewBox="0 0 600 400"/);
    assert.match(svg, /font-family="sans-serif"/);
    assert.equal(count(svg, '<path'), 2);
    assert.equal(count(svg, '<g class="legend-entry"'), 2);
    assert.ok(texts(svg).includes('measured'));
    assert.ok(texts(svg).includes('theory'));
    assert.equal(count(svg, 'stroke-dasharray'), 2, 'the dashed series and its legend line');
    // Distinct colours for the two series.
    const colours = [...svg.matchAll(/<g class="series" stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
    assert.equal(new Set(colours).size, 2);
  });

  test('error bars only where yErr is given', () => {
    const svg = lineChartSvg(chart(two));
    assert.equal(count(svg, 'class="err"'), 2 * 3, 'a bar and two caps for each of two points');
    assert.equal(count(lineChartSvg(chart([{ name: 'a', points: [{ x: 1, y: 1 }, { x: 2, y: 2 }] }])), 'class="err"'), 0);
    assert.equal(count(lineChartSvg(chart([{ name: 'a', points: [{ x: 1, y: 1, yErr: NaN }, { x: 2, y: 2, yErr: -1 }] }])), 'class="err"'), 0);
  });

  test('text is XML-escaped', () => {
    const svg = lineChartSvg({ title: 'a < b & "c"', xLabel: "it's > 1", yLabel: 'y', series: [{ name: '<s>', points: [{ x: 0, y: 0 }] }] });
    assertWellFormed(svg);
    assert.ok(svg.includes('a &lt; b &amp; &quot;c&quot;'));
    assert.ok(svg.includes('it&apos;s &gt; 1'));
    assert.ok(svg.includes('&lt;s&gt;'));
    // Characters XML forbids never reach the document.
    const odd = lineChartSvg(chart([{ name: 'a\u0001b\ud800c', points: [] }]));
    assert.ok(odd.includes('>ab\ufffdc<'));
    assert.ok(!svg.includes('a < b'));
    assert.ok(!svg.includes('<s>'));
  });

  test('linear ticks in 1-2-5 steps', () => {
    const svg = lineChartSvg(chart([{ name: 'a', points: [{ x: 0, y: 0 }, { x: 10, y: 1 }] }]));
    assert.deepEqual(texts(svg, 'xtick'), ['0', '2', '4', '6', '8', '10']);
    assert.deepEqual(texts(svg, 'ytick'), ['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']);
    const labels = texts(svg);
    for (const l of ['0', '2', '4', '6', '8', '10', '0.2', '0.4', '1.0']) assert.ok(labels.includes(l), `tick ${l} in ${labels.join(' ')}`);
  });

  test('logX ticks at decades', () => {
    const points = [1, 3, 10, 30, 100, 1000].map((x) => ({ x, y: Math.sqrt(x) }));
    const svg = lineChartSvg(chart([{ name: 'a', points }], { logX: true }));
    assertWellFormed(svg);
    const labels = texts(svg, 'xtick');
    assert.deepEqual(labels, ['1', '10', '100', '1000']);
    for (const l of ['1', '10', '100', '1000']) assert.ok(labels.includes(l), `decade ${l} in ${labels.join(' ')}`);
    assert.ok(!labels.includes('3') && !labels.includes('30'));
    const small = lineChartSvg(chart([{ name: 'a', points: [{ x: 1e-4, y: 1 }, { x: 0.5, y: 2 }] }], { logX: true }));
    assert.deepEqual(texts(small, 'xtick'), ['0.0001', '0.001', '0.01', '0.1', '1']);
    const wide = lineChartSvg(chart([{ name: 'a', points: [{ x: 1e-30, y: 1 }, { x: 1e30, y: 2 }] }], { logX: true }));
    assert.ok(texts(wide, 'xtick').every((l) => /^1e-?\d+$|^1$/.test(l)), texts(wide, 'xtick').join(' '));
    assert.ok(texts(wide, 'xtick').length <= 12);
    // x <= 0 cannot be drawn on a log axis and is skipped.
    const withZero = lineChartSvg(chart([{ name: 'a', points: [{ x: 0, y: 1 }, { x: -1, y: 1 }, ...points] }], { logX: true }));
    assertWellFormed(withZero);
    assert.equal(count(withZero, '<circle'), points.length);
  });

  test('the same input gives the same bytes', () => {
    assert.equal(lineChartSvg(chart(two, { logX: true })), lineChartSvg(chart(structuredClone(two), { logX: true })));
    assert.equal(lineChartSvg(chart(two)), lineChartSvg(chart(two)));
  });

  test('colours cycle through a palette of 8', () => {
    const series = Array.from({ length: 10 }, (_, i) => ({ name: `s${i}`, points: [{ x: i, y: i }] }));
    const colours = [...lineChartSvg(chart(series)).matchAll(/<g class="series" stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
    assert.equal(colours.length, 10);
    assert.equal(new Set(colours).size, 8);
    assert.equal(colours[8], colours[0]);
    assert.equal(colours[9], colours[1]);
  });

  test('empty, NaN, single-point and zero-range input draw without throwing', () => {
    const cases: ChartOptions[] = [
      chart([]),
      chart([{ name: 'empty', points: [] }]),
      chart([{ name: 'one', points: [{ x: 5, y: 7 }] }]),
      chart([{ name: 'flat', points: [{ x: 1, y: 3 }, { x: 2, y: 3 }, { x: 3, y: 3 }] }]),
      chart([{ name: 'vertical', points: [{ x: 2, y: 1 }, { x: 2, y: 5 }] }]),
      chart([{ name: 'zeros', points: [{ x: 0, y: 0 }, { x: 0, y: 0 }] }]),
      chart([{ name: 'nan', points: [{ x: NaN, y: NaN }, { x: Infinity, y: -Infinity }] }]),
      chart([{ name: 'one', points: [{ x: 5, y: 7 }] }], { logX: true }),
      chart([], { logX: true, yMin: 0, yMax: 1 }),
      chart([{ name: 'a', points: [{ x: 1, y: 1 }] }], { width: NaN, height: -5 }),
    ];
    for (const c of cases) assertWellFormed(lineChartSvg(c));
    // Series without a drawable point have a legend entry but no path.
    const svg = lineChartSvg(chart([{ name: 'empty', points: [] }, { name: 'nan', points: [{ x: NaN, y: 1 }] }, { name: 'one', points: [{ x: 1, y: 1 }] }]));
    assert.equal(count(svg, '<path'), 1);
    assert.equal(count(svg, '<g class="legend-entry"'), 3);
  });

  test('a NaN y breaks the line', () => {
    const svg = lineChartSvg(chart([{ name: 'a', points: [{ x: 1, y: 1 }, { x: 2, y: 2 }, { x: 3, y: NaN }, { x: 4, y: 3 }, { x: 5, y: 4 }] }]));
    assertWellFormed(svg);
    const d = /<path d="([^"]*)"/.exec(svg)?.[1] ?? '';
    assert.equal(count(d, 'M'), 2);
    assert.equal(count(d, 'L'), 2);
    assert.equal(count(svg, '<circle'), 4);
  });

  test('yMin and yMax widen the y range', () => {
    const svg = lineChartSvg(chart([{ name: 'a', points: [{ x: 0, y: 0.4 }, { x: 1, y: 0.6 }] }], { yMin: 0, yMax: 1 }));
    assert.deepEqual(texts(svg, 'ytick'), ['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']);
    const unforced = lineChartSvg(chart([{ name: 'a', points: [{ x: 0, y: 0.4 }, { x: 1, y: 0.6 }] }]));
    assert.equal(texts(unforced, 'ytick')[0], '0.40');
  });

  test('no NaN or Infinity in the output for any numbers', () => {
    const num = fc.oneof(fc.double(), fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.constantFrom(0, 1, -1, 1e-320, 1e308, -1e308));
    const point = fc.record({ x: num, y: num, yErr: fc.option(num, { nil: undefined }) }).map((p): Point => (p.yErr === undefined ? { x: p.x, y: p.y } : { x: p.x, y: p.y, yErr: p.yErr }));
    const series = fc.array(fc.record({ name: fc.constantFrom('a', 'b'), points: fc.array(point, { maxLength: 8 }), dashed: fc.boolean() }), { maxLength: 4 });
    fc.assert(
      fc.property(series, fc.boolean(), fc.option(num, { nil: undefined }), (s, logX, yMin) => {
        const options = chart(s, yMin === undefined ? { logX } : { logX, yMin });
        const svg = lineChartSvg(options);
        assertWellFormed(svg);
        assert.equal(svg, lineChartSvg(options));
      }),
      { numRuns: 300 },
    );
  });
});

describe('cdfChartSvg', () => {
  test('one step curve per sample set, y from 0 to 1', () => {
    const svg = cdfChartSvg({ title: 'latency', xLabel: 'ms', samples: [{ name: 'p', values: [3, 1, 2, NaN] }, { name: 'q', values: [10, 20] }] });
    assertWellFormed(svg);
    assert.equal(count(svg, '<path'), 2);
    assert.equal(count(svg, '<g class="legend-entry"'), 2);
    assert.equal(count(svg, '<circle'), 0);
    assert.deepEqual(texts(svg, 'ytick'), ['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']);
  });

  test('empty sample sets and large samples', () => {
    assertWellFormed(cdfChartSvg({ title: 't', xLabel: 'x', samples: [] }));
    const svg = cdfChartSvg({ title: 't', xLabel: 'x', samples: [{ name: 'empty', values: [] }, { name: 'nan', values: [NaN] }] });
    assertWellFormed(svg);
    assert.equal(count(svg, '<path'), 0);
    const many = Array.from({ length: 50_000 }, (_, i) => 1 + ((i * 7919) % 10_007));
    const big = cdfChartSvg({ title: 't', xLabel: 'x', samples: [{ name: 'big', values: many }], logX: true, width: 800, height: 500 });
    assertWellFormed(big);
    assert.ok(big.length < 100_000, `${big.length} bytes`);
  });
});

describe('toCsv', () => {
  test('header from the first row, CRLF after every row, quoting', () => {
    const csv = toCsv([
      { name: 'plain', note: 'a,b', q: 'say "hi"', ml: 'x\ny', cr: 'x\ry' },
      { name: 'second', note: '', q: null, ml: 'ok', cr: 'ok' },
    ]);
    assert.equal(csv, 'name,note,q,ml,cr\r\nplain,"a,b","say ""hi""","x\ny","x\ry"\r\nsecond,,,ok,ok\r\n');
  });

  test('numbers, booleans and non-finite values', () => {
    const csv = toCsv([{ a: 1, b: 1.5, c: 1 / 3, d: NaN, e: Infinity, f: -Infinity, g: true, h: false, i: -0, j: 123456789, k: 1234567.891, l: 0.000123456789, m: -2.5 }]);
    assert.equal(csv, 'a,b,c,d,e,f,g,h,i,j,k,l,m\r\n1,1.5,0.333333,,,,true,false,0,123456789,1234570,0.000123457,-2.5\r\n');
  });

  test('column order follows the first row, or the given columns', () => {
    const rows = [
      { b: 2, a: 1 },
      { a: 3, b: 4, c: 5 },
    ];
    assert.equal(toCsv(rows), 'b,a\r\n2,1\r\n4,3\r\n');
    assert.equal(toCsv(rows, ['c', 'a', 'missing']), 'c,a,missing\r\n,1,\r\n5,3,\r\n');
    assert.equal(toCsv([], ['x', 'y,z']), 'x,"y,z"\r\n');
    assert.equal(toCsv([]), '');
  });
});

/** A stream that records what is written to it. */
function fakeStream(isTTY: boolean): { writes: string[]; write(s: string): boolean; isTTY: boolean } {
  const writes: string[] = [];
  return { writes, isTTY, write: (s: string) => (writes.push(s), true) };
}

describe('progressBar', () => {
  test('on a TTY: redrawn in place at most every 100 ms', () => {
    let t = 1000;
    const stream = fakeStream(true);
    const bar = progressBar({ label: 'run', total: 100, stream, now: () => t });
    bar.update(0);
    assert.equal(stream.writes.length, 1, 'the first update draws at once');
    for (let i = 1; i <= 10; i++) {
      t += 10;
      bar.update(i);
    }
    assert.equal(stream.writes.length, 2, 'one more redraw after 100 ms');
    t += 99;
    bar.update(11);
    assert.equal(stream.writes.length, 2);
    t += 1;
    bar.update(42, 'step 42');
    assert.equal(stream.writes.length, 3);
    const last = stream.writes.at(-1) ?? '';
    assert.ok(last.startsWith('\r\x1b[K'));
    assert.ok(!last.includes('\n'));
    assert.match(last.slice(4), /^run \[#{8}\.{12}\]\s+42%\s+step 42\s+eta \d+:\d\d$/);
    bar.finish('done');
    const final = stream.writes.at(-1) ?? '';
    assert.ok(final.startsWith('\r\x1b[K') && final.endsWith('\n'));
    assert.match(final, /done/);
    bar.update(50);
    bar.finish();
    assert.equal(stream.writes.length, 4, 'nothing after finish');
  });

  test('the ETA comes from the elapsed time and the fraction done', () => {
    let t = 0;
    const stream = fakeStream(true);
    const bar = progressBar({ label: 'x', total: 4, stream, now: () => t });
    t = 30_000;
    bar.update(1);
    assert.match(stream.writes.at(-1) ?? '', /25%.*eta 1:30$/);
    t = 3_600_000;
    bar.update(2);
    assert.match(stream.writes.at(-1) ?? '', /50%.*eta 1:00:00$/);
  });

  test('not on a TTY: a plain line at most every 5 s, and at finish', () => {
    let t = 0;
    const stream = fakeStream(false);
    const bar = progressBar({ label: 'run', total: 10, stream, now: () => t });
    for (let i = 0; i < 49; i++) {
      t += 100;
      bar.update(i / 10);
    }
    assert.equal(stream.writes.length, 0, 'nothing within the first 5 s');
    t += 100;
    bar.update(5);
    assert.equal(stream.writes.length, 1);
    t += 4_999;
    bar.update(6);
    assert.equal(stream.writes.length, 1);
    t += 1;
    bar.update(7);
    assert.equal(stream.writes.length, 2);
    for (const w of stream.writes) {
      assert.ok(w.endsWith('\n'));
      assert.ok(!w.includes('\r') && !w.includes('\x1b'));
    }
    bar.finish();
    assert.equal(stream.writes.length, 3);
    assert.ok((stream.writes.at(-1) ?? '').endsWith('\n'));
  });

  test('quiet writes nothing', () => {
    for (const isTTY of [true, false]) {
      const stream = fakeStream(isTTY);
      let t = 0;
      const bar = progressBar({ label: 'q', total: 3, stream, quiet: true, now: () => t });
      for (let i = 0; i <= 3; i++) {
        t += 10_000;
        bar.update(i);
      }
      bar.finish();
      assert.deepEqual(stream.writes, []);
    }
  });

  test('percent never exceeds 100 and the bar never overflows', () => {
    let t = 0;
    const stream = fakeStream(true);
    const bar = progressBar({ label: 'p', total: 10, stream, now: () => t });
    for (const done of [25, 1e9, Infinity, NaN, -5]) {
      t += 1000;
      bar.update(done);
    }
    bar.finish();
    for (const w of stream.writes) {
      const pct = Number(/(\d+)%/.exec(w)?.[1]);
      assert.ok(pct >= 0 && pct <= 100, w);
      assert.match(w, /\[[#.]{20}\]/);
      assert.ok(!w.includes('NaN') && !w.includes('Infinity'), w);
    }
  });
});
