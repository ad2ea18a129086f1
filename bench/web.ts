/**
 * `npm run bench -- web [--json]`: the browser client in real Chromium (Debian's, driven by
 * playwright-core; test/helpers/chromium.ts).
 *
 * - bundle_*: what a browser downloads for the page (dist/web: main.js, worker.js, index.html,
 *   style.css; source maps and licence files are not fetched by the page), raw and gzip -9.
 * - connect_ms_*: on a local network started as `backchannel up` starts it (servers as processes,
 *   default parameters), the page served by `backchannel web`'s code: from navigation start to the
 *   worker's first `connected`, fresh keys in a fresh profile each run (RUNS runs: median, min,
 *   max); reconnect_ms_*: the same after a reload, with the keys already in IndexedDB.
 * - the per-primitive figures and CPU per packet in the page (bench/pages/web-bench.ts says how
 *   they are made): @noble against WebCrypto awaited one at a time and batched, the engine's time
 *   per packet with @noble, the calls per packet, and the estimate with WebCrypto behind them.
 *   Ratios are between figures of this run.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { DEFAULT_PARAMS } from '../src/config/params.js';
import { ensureLocalNetwork, startLocalNetwork } from '../src/local/up.js';
import type { RunningLocalNetwork } from '../src/local/up.js';
import { WEB_BUNDLE_DIR, serveNetworkWeb } from '../src/local/web.js';
import { startWebServer } from '../src/local/web-server.js';
import type { WebServer } from '../src/local/web-server.js';
import { bundle, chromiumMissing, launchChromium } from '../test/helpers/chromium.js';
import type { PrimitiveFigures, WebBenchFigures } from './web-figures.js';
import { round } from './_timing.js';

const RUNS = Number(process.env['BENCH_WEB_RUNS'] ?? 5);
const PACKETS = Number(process.env['BENCH_WEB_PACKETS'] ?? 300);
/** Packets the real page sends before its pool's share is read (about 10 s at the default rates). */
const POOL_PACKETS = Number(process.env['BENCH_WEB_POOL_PACKETS'] ?? 250);
/** Where the network's port range is looked for (below Linux's ephemeral range). */
const NETWORK_BASE_PORT = 23_000;
const BUNDLE_FILES = ['main.js', 'worker.js', 'index.html', 'style.css'];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function bundleSizes(): Record<string, number> {
  const out: Record<string, number> = {};
  let raw = 0;
  let gz = 0;
  for (const f of BUNDLE_FILES) {
    const bytes = readFileSync(join(WEB_BUNDLE_DIR, f));
    const z = gzipSync(bytes, { level: 9 }).length;
    raw += bytes.length;
    gz += z;
    if (f.endsWith('.js')) {
      out[`bundle_${f.replace('.js', '')}_raw_bytes`] = bytes.length;
      out[`bundle_${f.replace('.js', '')}_gzip_bytes`] = z;
    }
  }
  out['bundle_total_raw_bytes'] = raw;
  out['bundle_total_gzip_bytes'] = gz;
  out['bundle_gzip_of_300kB_goal'] = round(gz / 300_000, 3);
  return out;
}

function spread(name: string, xs: number[]): Record<string, number> {
  const s = [...xs].sort((a, b) => a - b);
  return { [`${name}_median`]: round(s[Math.floor(s.length / 2)]!, 0), [`${name}_min`]: round(s[0]!, 0), [`${name}_max`]: round(s[s.length - 1]!, 0) };
}

/** Navigation start to `connected`, fresh profile each run; and again after a reload. */
async function connectTimes(browser: Browser, url: string): Promise<Record<string, number>> {
  const fresh: number[] = [];
  const reload: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      for (const [k, into] of [
        ['load', fresh],
        ['reload', reload],
      ] as const) {
        if (k === 'load') await page.goto(`${url}?gateway=gateway-${1 + (i % 2)}`);
        else await page.reload();
        const deadline = Date.now() + 60_000;
        for (;;) {
          const v = (await page.evaluate('globalThis.backchannel')) as { connectedAfterMs: number | null; error: { code: string; message: string } | null };
          if (v.error !== null) throw new Error(`the page shows an error: ${v.error.code}: ${v.error.message}`);
          if (v.connectedAfterMs !== null) {
            into.push(v.connectedAfterMs);
            break;
          }
          if (Date.now() > deadline) throw new Error('the page did not connect within 60 s');
          await sleep(20);
        }
      }
    } finally {
      await context.close();
    }
  }
  return { connect_runs: RUNS, ...spread('connect_ms', fresh), ...spread('reconnect_ms', reload) };
}

/**
 * The real page on the local network, left to run until it has sent POOL_PACKETS packets: whose
 * X25519 its worker uses, and the share of its Sphinx headers (two a packet) built from the pool
 * rather than at the tick, at the network's real rates and timers.
 */
async function pagePool(browser: Browser, url: string): Promise<Record<string, number>> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${url}?gateway=gateway-1`);
    const deadline = Date.now() + 120_000;
    for (;;) {
      type Status = { packetsSent: { real: number; drop: number; loop: number }; crypto?: { x25519: string; pooled: number; synchronous: number } };
      const v = (await page.evaluate('globalThis.backchannel')) as { status: Status | null; error: { code: string; message: string } | null };
      if (v.error !== null) throw new Error(`the page shows an error: ${v.error.code}: ${v.error.message}`);
      const s = v.status;
      const sent = s === null ? 0 : s.packetsSent.real + s.packetsSent.drop + s.packetsSent.loop;
      if (s !== null && sent >= POOL_PACKETS && s.crypto !== undefined) {
        const c = s.crypto;
        return { page_webcrypto: c.x25519 === 'WebCrypto' ? 1 : 0, page_packets: sent, page_headers_pooled: c.pooled, page_headers_at_tick: c.synchronous, page_pool_share: round(c.pooled / Math.max(1, c.pooled + c.synchronous), 3) };
      }
      if (Date.now() > deadline) throw new Error(`the page did not send ${POOL_PACKETS} packets within 120 s`);
      await sleep(250);
    }
  } finally {
    await context.close();
  }
}

async function pageFigures(browser: Browser): Promise<WebBenchFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'bc-bench-web-'));
  let server: WebServer | null = null;
  try {
    await bundle('bench/pages/web-bench.ts', join(dir, 'web-bench.js'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>loading</title><script type="module" src="web-bench.js"></script>\n');
    server = await startWebServer({ root: dir, port: 0 });
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForFunction('document.title === "ready"');
    const figures = (await page.evaluate(`globalThis.runWebBench({ packets: ${PACKETS} })`)) as WebBenchFigures;
    await page.close();
    return figures;
  } finally {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Which primitive row stands for each backend method when the estimate swaps @noble for WebCrypto. */
const WEBCRYPTO_STANDS_IN: Record<string, string> = {
  x25519: 'x25519',
  x25519Base: 'x25519_base',
  hmacSha256: 'hmac_sha256_header',
  aes256Ctr: 'aes256ctr_header',
};

function derived(f: WebBenchFigures): Record<string, number> {
  const out: Record<string, number> = {};
  const rows = new Map<string, PrimitiveFigures>(f.primitives.map((p) => [p.name, p]));
  for (const p of f.primitives) {
    out[`${p.name}_noble_us`] = round(p.nobleUs);
    out[`${p.name}_webcrypto_us`] = round(p.webUs);
    out[`${p.name}_webcrypto_batched_us`] = round(p.webBatchedUs);
    out[`${p.name}_noble_over_webcrypto_batched`] = round(p.nobleUs / p.webBatchedUs);
  }
  for (const [kind, e] of [
    ['cover', f.cover],
    ['real', f.real],
  ] as const) {
    out[`${kind}_packet_noble_us`] = round(e.usPerPacket);
    let nobleCrypto = 0;
    let webCrypto = 0;
    let x = 0;
    for (const [method, calls] of Object.entries(e.callsPerPacket)) {
      out[`${kind}_calls_${method}`] = calls;
      const row = rows.get(WEBCRYPTO_STANDS_IN[method] ?? '');
      if (row === undefined) continue;
      // What these calls took inside the engine, swapped for as many WebCrypto calls, batched.
      nobleCrypto += e.usPerPacketIn[method] ?? 0;
      webCrypto += calls * row.webBatchedUs;
      if (method.startsWith('x25519')) x += e.usPerPacketIn[method] ?? 0;
    }
    out[`${kind}_packet_x25519_share`] = round(x / e.usPerPacket, 3);
    const est = e.usPerPacket - nobleCrypto + webCrypto;
    out[`${kind}_packet_webcrypto_estimate_us`] = round(est);
    out[`${kind}_packet_noble_over_webcrypto`] = round(e.usPerPacket / est);
  }
  out['header_keys_hops'] = f.header.hops;
  out['header_keys_noble_us'] = round(f.header.nobleUs);
  out['header_keys_webcrypto_us'] = round(f.header.webUs);
  out['header_keys_webcrypto_parallel_us'] = round(f.header.webParallelUs);
  out['header_keys_noble_over_webcrypto_parallel'] = round(f.header.nobleUs / f.header.webParallelUs);
  out['fetch_open_noble_us'] = round(f.fetch.openUs);
  out['fetch_surb_reply_noble_us'] = round(f.fetch.surbReplyUs);
  // The page's thread at the default rates: every send and loop tick builds a packet.
  const perS = DEFAULT_PARAMS.sendRatePerS + DEFAULT_PARAMS.loopRatePerS;
  out['cpu_share_default_rate_noble'] = round((perS * f.cover.usPerPacket) / 1e6, 3);
  // Built: the header-key pool with WebCrypto (src/client/header-pool.ts), measured in this run.
  for (const [kind, e, noble] of [
    ['cover', f.coverPool, f.cover],
    ['real', f.realPool, f.real],
  ] as const) {
    if (e === null) continue;
    out[`${kind}_packet_pool_us`] = round(e.usPerPacket);
    out[`${kind}_packet_pool_tick_us`] = round(e.tickUsPerPacket ?? 0);
    out[`${kind}_packet_pool_refill_wall_us`] = round(e.refillUsPerPacket ?? 0);
    out[`${kind}_packet_noble_over_pool`] = round(noble.usPerPacket / e.usPerPacket);
    out[`${kind}_packet_noble_over_pool_tick`] = round(noble.usPerPacket / (e.tickUsPerPacket ?? e.usPerPacket));
    out[`${kind}_pool_share`] = round((e.pooled ?? 0) / Math.max(1, (e.pooled ?? 0) + (e.synchronous ?? 0)), 3);
  }
  if (f.coverPool !== null) out['cpu_share_default_rate_pool'] = round((perS * f.coverPool.usPerPacket) / 1e6, 3);
  out['cpu_share_default_rate_webcrypto_estimate'] = round((perS * (out['cover_packet_webcrypto_estimate_us'] ?? 0)) / 1e6, 3);
  return out;
}

export async function benchWeb(argv: string[]): Promise<Record<string, number>> {
  const missing = chromiumMissing();
  if (missing !== null) throw new Error(missing);
  const json = argv.includes('--json');
  const note = (s: string): void => {
    if (!json) process.stderr.write(`${s}\n`);
  };
  const sizes = bundleSizes();
  const browser = await launchChromium();
  const dir = mkdtempSync(join(tmpdir(), 'bc-bench-web-net-'));
  let net: RunningLocalNetwork | null = null;
  let web: WebServer | null = null;
  try {
    note('in-page crypto and packets...');
    const figures = await pageFigures(browser);
    note(`  ${figures.userAgent}`);
    note('starting a local network...');
    await ensureLocalNetwork({ dir, basePort: NETWORK_BASE_PORT });
    net = await startLocalNetwork({ dir });
    web = await serveNetworkWeb({ networkDir: dir, port: 0 });
    note(`page load to connected, ${RUNS} runs...`);
    const times = await connectTimes(browser, web.url);
    note(`the page's header-key pool over ${POOL_PACKETS} packets...`);
    const pool = await pagePool(browser, web.url);
    return { ...sizes, ...times, ...pool, ...derived(figures) };
  } finally {
    await browser.close();
    await web?.close();
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
