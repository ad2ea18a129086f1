/**
 * `npm run bench -- hidden-timers [--minutes M]`: what Chromium does to a hidden tab's timers,
 * in the page and in a dedicated Worker (docs/browser.md, "Hidden tabs").
 *
 * A headful Chromium on a virtual display (Xvfb; headless never hides a page). Two browsers run
 * at once, one per way of hiding a tab: another tab brought to the front of the same window, and
 * the window minimised (through the DevTools protocol). In each, one page runs a 100 ms chained
 * setTimeout and a 100 ms setInterval, and a dedicated Worker of the page runs the same two; each
 * records when it fired (Date.now()). The page is visible for 10 s, then hidden for M minutes
 * (default 6: intensive throttling starts after 5). Per window of time since hiding, each timer's
 * firings per second and longest gap are printed. Chromium is started as a user's browser is
 * (test/helpers/xvfb.ts, launchUserChromium: without playwright's switches and focus emulation,
 * which keep hidden pages running).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { launchUserChromium, startXvfb, xvfbMissing } from '../test/helpers/xvfb.js';
import type { UserChromium } from '../test/helpers/xvfb.js';

const PERIOD_MS = 100;
const VISIBLE_MS = 10_000;

const WORKER_JS = `
const t = { timeout: [], interval: [] };
const tick = () => { t.timeout.push(Date.now()); setTimeout(tick, ${PERIOD_MS}); };
setTimeout(tick, ${PERIOD_MS});
setInterval(() => t.interval.push(Date.now()), ${PERIOD_MS});
onmessage = () => postMessage(t);
`;

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>timers</title><p>timers</p><script>
const t = { timeout: [], interval: [] };
const tick = () => { t.timeout.push(Date.now()); setTimeout(tick, ${PERIOD_MS}); };
setTimeout(tick, ${PERIOD_MS});
setInterval(() => t.interval.push(Date.now()), ${PERIOD_MS});
const w = new Worker('worker.js');
const visibility = [];
document.addEventListener('visibilitychange', () => visibility.push([Date.now(), document.visibilityState]));
globalThis.dump = () => new Promise((r) => { w.onmessage = (e) => r({ page: t, worker: e.data, visibility }); w.postMessage(0); });
</script>`;

interface Dump {
  page: { timeout: number[]; interval: number[] };
  worker: { timeout: number[]; interval: number[] };
  visibility: Array<[number, string]>;
}

type Way = 'tab' | 'minimised';

async function hide(way: Way, chrome: UserChromium, page: Page): Promise<void> {
  if (way === 'tab') {
    await chrome.openTab('about:blank');
    return;
  }
  const cdp = await page.context().newCDPSession(page);
  const { windowId } = (await cdp.send('Browser.getWindowForTarget')) as { windowId: number };
  await cdp.send('Browser.setWindowBounds', { windowId, bounds: { windowState: 'minimized' } });
}

/** The windows (seconds since hiding) over which the timers are summarised. */
function windows(minutes: number): Array<[number, number]> {
  const end = minutes * 60;
  const w: Array<[number, number]> = [[-10, 0]];
  for (const [a, b] of [[0, 10], [10, 60], [60, 300], [300, end]] as const) if (a < end) w.push([a, Math.min(b, end)]);
  return w;
}

function summarise(times: number[], hiddenAt: number, from: number, to: number): { perS: number; maxGapS: number } {
  const inside = times.filter((x) => x >= hiddenAt + from * 1000 && x < hiddenAt + to * 1000);
  let maxGap = 0;
  for (let k = 1; k < inside.length; k++) maxGap = Math.max(maxGap, inside[k]! - inside[k - 1]!);
  return { perS: inside.length / (to - from), maxGapS: maxGap / 1000 };
}

async function measure(way: Way, url: string, minutes: number): Promise<{ dump: Dump; hiddenAt: number }> {
  const x = await startXvfb();
  let chrome: UserChromium | null = null;
  try {
    chrome = await launchUserChromium(x.display);
    const page = chrome.browser.contexts()[0]!.pages()[0]!;
    await page.goto(url);
    await new Promise((r) => setTimeout(r, VISIBLE_MS));
    const hiddenAt = Date.now();
    await hide(way, chrome, page);
    await new Promise((r) => setTimeout(r, minutes * 60_000));
    const dump = (await page.evaluate('globalThis.dump()')) as Dump;
    return { dump, hiddenAt };
  } finally {
    await chrome?.close();
    await x.stop();
  }
}

export async function benchHiddenTimers(argv: string[]): Promise<Record<string, number>> {
  const why = xvfbMissing();
  if (why !== null) throw new Error(`hidden-timers needs a headful Chromium on a virtual display: ${why}`);
  const k = argv.indexOf('--minutes');
  const minutes = k >= 0 ? Number(argv[k + 1]) : 6;
  if (!(minutes > 0 && minutes <= 60)) throw new RangeError('--minutes takes 0 < M <= 60');
  const server = createServer((req, res) => {
    const js = req.url === '/worker.js';
    res.writeHead(200, { 'content-type': js ? 'text/javascript' : 'text/html' });
    res.end(js ? WORKER_JS : PAGE_HTML);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const out: Record<string, number> = {};
  try {
    const runs = await Promise.all((['tab', 'minimised'] as const).map(async (way) => ({ way, ...(await measure(way, url, minutes)) })));
    for (const { way, dump, hiddenAt } of runs) {
      const hiddenEvents = dump.visibility.filter(([, s]) => s === 'hidden');
      const seen = hiddenEvents.length > 0 ? (hiddenEvents[0]![0] - hiddenAt) / 1000 : -1;
      process.stdout.write(`\n${way === 'tab' ? 'another tab in front' : 'window minimised'}: visibilitychange to hidden ${seen >= 0 ? `${seen.toFixed(2)} s after hiding` : 'never came'}\n`);
      out[`${way}_hidden_seen_s`] = seen;
      // When the page's own timers first went a minute-like stretch without firing (intensive throttling).
      const chain = dump.page.timeout.filter((x) => x >= hiddenAt);
      let intensive = -1;
      for (let k = 1; k < chain.length && intensive < 0; k++) if (chain[k]! - chain[k - 1]! > 5_000) intensive = (chain[k - 1]! - hiddenAt) / 1000;
      process.stdout.write(`  the page's setTimeout first waited over 5 s ${intensive >= 0 ? `after firing at ${intensive.toFixed(1)} s hidden` : 'never'}\n`);
      out[`${way}_page_first_long_gap_s`] = intensive;
      process.stdout.write(`  ${'seconds hidden'.padEnd(16)}${['page setTimeout', 'page setInterval', 'worker setTimeout', 'worker setInterval'].map((h) => h.padStart(22)).join('')}\n`);
      for (const [from, to] of windows(minutes)) {
        const cells: string[] = [];
        for (const [where, which] of [['page', 'timeout'], ['page', 'interval'], ['worker', 'timeout'], ['worker', 'interval']] as const) {
          const s = summarise(dump[where][which], hiddenAt, from, to);
          cells.push(`${s.perS.toFixed(2)}/s max ${s.maxGapS.toFixed(1)} s`.padStart(22));
          out[`${way}_${where}_${which}_${from}_${to}_per_s`] = Number(s.perS.toFixed(3));
          out[`${way}_${where}_${which}_${from}_${to}_max_gap_s`] = Number(s.maxGapS.toFixed(3));
        }
        process.stdout.write(`  ${`${from} to ${to}`.padEnd(16)}${cells.join('')}\n`);
      }
    }
  } finally {
    server.close();
  }
  return out;
}
