/**
 * The browser client on a real local network (servers as processes, as `backchannel up` runs
 * them), in headless Chromium: the page served by `backchannel web`'s code joins gateway-1 with
 * fresh keys in IndexedDB, reaches "connected" over the gateway's WebSocket (Noise XK), gets its
 * directory through the gateway, and sends packets at the configured rate, counted at the gateway
 * (backchannel_client_packets_in_total; the page is the gateway's only client). A reload keeps
 * its keys: the same address, not a fresh client. A page and a CLI client (`client run` on
 * gateway-2) exchange one-off messages both ways through the page's form, and what the page
 * received is still there, once, after a reload. Two pages (two browser profiles, one on each
 * gateway) become contacts by code through the page's forms and talk both ways through the
 * messaging layer; a reload in the middle keeps the contact and the conversation, once each.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { serveNetworkWeb } from '../../src/local/web.js';
import type { WebServer } from '../../src/local/web-server.js';
import { readSample } from '../../src/ops/metrics.js';
import { chromiumMissing, launchChromium } from '../helpers/chromium.js';
import { ClientProcess } from '../helpers/client-process.js';
import { scrape } from '../helpers/mixnet-client.js';

const WEB_PORT = 24801;
const NETWORK_BASE_PORT = 24820;
const SEND_RATE = 4;
const LOOP_RATE = 1;
const PARAMS = { epochPeriodMs: 20_000, sendRatePerS: SEND_RATE, loopRatePerS: LOOP_RATE };
/** Packets counted before the rate is judged: with Poisson clocks, enough that the bounds below never flake. */
const COUNT = 80;

const skip = chromiumMissing();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface PageView {
  state: string;
  address: string | null;
  fresh: boolean | null;
  received: Record<string, string>;
  contacts: Array<{ name: string; session: string; safetyNumber: string }>;
  history: Record<string, Array<{ direction: 'in' | 'out'; text: string; state: string }>>;
  invites: Array<{ name: string; code: string | null; stage: string; failure: string | null }>;
  sent: Record<string, { text: string; state: string }>;
  reports: number;
  status: { packetsSent: { real: number; drop: number; loop: number }; epoch: number | null; document: string; crypto?: { x25519: string; pooled: number; synchronous: number } } | null;
  error: { code: string; message: string } | null;
  connectedAfterMs: number | null;
  name?: string | null;
}

function view(page: Page): Promise<PageView> {
  return page.evaluate('globalThis.backchannel') as Promise<PageView>;
}

function sent(v: PageView): number {
  const p = v.status?.packetsSent;
  return p === undefined ? 0 : p.real + p.drop + p.loop;
}

/** Waits for the page's state, failing at once on an error the page shows. */
async function waitFor(page: Page, what: string, pred: (v: PageView) => boolean, timeoutMs: number): Promise<PageView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await view(page);
    if (v.error !== null) throw new Error(`the page shows an error while waiting for ${what}: ${v.error.code}: ${v.error.message}`);
    if (pred(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; page ${JSON.stringify(v)}`);
    await sleep(100);
  }
}

describe('the browser client on a local network, in Chromium', { skip: skip ?? false }, () => {
  let dir: string;
  let net: RunningLocalNetwork | null = null;
  let web: WebServer | null = null;
  let browser: Browser | null = null;
  let page: Page;
  let bob: ClientProcess | null = null;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backchannel-browser-page-'));
    const data = join(dir, 'network');
    await ensureLocalNetwork({ dir: data, basePort: NETWORK_BASE_PORT, params: PARAMS });
    net = await startLocalNetwork({ dir: data });
    web = await serveNetworkWeb({ networkDir: data, port: WEB_PORT });
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
  });

  after(async () => {
    await bob?.kill('SIGTERM');
    await browser?.close();
    await web?.close();
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a new page joins with fresh keys, connects, and sends at the configured rate, counted at the gateway', async (t) => {
    // The join step: a new profile picks a name and a gateway; the worker makes the keys.
    await page.goto(web!.url);
    await page.getByLabel('Your name', { exact: true }).fill('Alice A.');
    await page.getByLabel('Gateway', { exact: true }).selectOption('gateway-1');
    await page.getByRole('button', { name: 'Make my keys and join' }).click();
    const joined = await waitFor(page, 'connected', (v) => v.state === 'connected', 45_000);
    assert.equal(joined.fresh, true, 'fresh keys');
    assert.equal((await waitFor(page, 'the name kept', (v) => v.name !== null, 10_000)).name, 'Alice A.');
    assert.match(joined.address ?? '', /^\S{20,}$/, 'an address');
    t.diagnostic(`page load to connected: ${Math.round(joined.connectedAfterMs ?? -1)} ms`);

    const gatewayOps = net!.network.server('gateway-1').opsUrl;
    const atGateway = async (): Promise<number> => readSample(await scrape(gatewayOps), 'backchannel_client_packets_in_total') ?? 0;
    // Every packet the page says it put on its link arrives at its gateway, and no other does.
    const start = await waitFor(page, 'a first status', (v) => sent(v) > 0, 10_000);
    const g0 = await atGateway();
    const t0 = Date.now();
    const end = await waitFor(page, `${COUNT} packets`, (v) => sent(v) >= sent(start) + COUNT, 120_000);
    const t1 = Date.now();
    const deadline = Date.now() + 20_000;
    let g1 = await atGateway();
    while (g1 < sent(end) && Date.now() < deadline) {
      await sleep(100);
      g1 = await atGateway();
    }
    // The page reports its counts once a second: take a report made after the gateway was read.
    const seen = (await view(page)).reports;
    const after = await waitFor(page, 'a later status report', (v) => v.reports >= seen + 3, 10_000);
    assert.ok(g1 >= sent(end), `the gateway counted ${g1} packets, the page had sent ${sent(end)}`);
    assert.ok(g1 <= sent(after), `the gateway counted ${g1} packets, more than the page has sent (${sent(after)})`);
    assert.ok(g0 <= sent(start) + 10, 'no packets from elsewhere');

    // The rate: send and loop clocks together (fetches are not packets). Bounds wide enough for
    // Poisson counts of 80 (a standard deviation of about 11%).
    const rate = (g1 - g0) / ((t1 - t0) / 1000);
    t.diagnostic(`packets per second at the gateway: ${rate.toFixed(2)} (configured ${SEND_RATE + LOOP_RATE}); page says ${JSON.stringify(end.status?.packetsSent)}`);
    assert.ok(rate > 0.5 * (SEND_RATE + LOOP_RATE) && rate < 1.6 * (SEND_RATE + LOOP_RATE), `rate ${rate.toFixed(2)}/s against ${SEND_RATE + LOOP_RATE}/s configured`);
    assert.ok(end.status !== null && end.status.epoch !== null && end.status.document !== 'none', 'a directory from the gateway');
    // Chromium has WebCrypto's X25519: the worker makes header keys ahead of the ticks with it,
    // and the packets counted above were built from them (two headers a packet).
    const hk = after.status?.crypto;
    t.diagnostic(`crypto: ${JSON.stringify(hk)}`);
    assert.equal(hk?.x25519, 'WebCrypto');
    assert.ok(hk.pooled > 0, 'headers built from the pool');
    assert.equal(await page.locator('#crypto').textContent(), 'WebCrypto');
  });

  test('a reload keeps the keys: the same address, not a new client, connected again', async () => {
    const before = await view(page);
    await page.reload();
    const again = await waitFor(page, 'connected after the reload', (v) => v.state === 'connected', 45_000);
    assert.equal(again.fresh, false);
    assert.equal(again.address, before.address);
    assert.equal((await waitFor(page, 'the name after the reload', (v) => v.name !== null && v.name !== undefined, 10_000)).name, 'Alice A.');
  });

  test('a second tab of the same profile is told to use the first', async () => {
    const second = await page.context().newPage();
    await second.goto(`${web!.url}?gateway=gateway-1`);
    const deadline = Date.now() + 20_000;
    let v = await view(second);
    while (v.error === null && Date.now() < deadline) {
      await sleep(100);
      v = await view(second);
    }
    assert.equal(v.error?.code, 'ERR_PROFILE_BUSY');
    await second.close();
    const first = await view(page);
    assert.equal(first.error, null, 'the first tab carries on');
  });

  test('a page and a CLI client exchange one-off messages both ways; a reload shows what came, once', async () => {
    bob = new ClientProcess(join(dir, 'bob'));
    bob.init(join(dir, 'network'), 'gateway-2');
    await bob.run();
    const ours = await view(page);

    await page.getByLabel("Recipient's address").fill(bob.address);
    await page.getByLabel('Message', { exact: true }).fill('hello from the browser');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await waitFor(page, 'the message delivered', (v) => Object.values(v.sent).some((m) => m.text === 'hello from the browser' && m.state === 'delivered'), 90_000);
    const deadline = Date.now() + 60_000;
    const got: string[] = [];
    while (!got.includes('hello from the browser')) {
      if (Date.now() > deadline) throw new Error(`the CLI client did not receive the page's message; it has ${JSON.stringify(got)}`);
      got.push(...(await bob.recv()).map((m) => new TextDecoder().decode(m.body)));
      await sleep(200);
    }
    assert.equal(got.filter((t) => t === 'hello from the browser').length, 1, 'received once');

    await bob.send(ours.address!, new TextEncoder().encode('hello from the CLI'));
    await waitFor(page, 'the CLI message in the page', (v) => Object.values(v.received).includes('hello from the CLI'), 90_000);

    await page.reload();
    const again = await waitFor(page, 'connected after the reload', (v) => v.state === 'connected', 45_000);
    assert.deepEqual(Object.values(again.received), ['hello from the CLI'], 'the received message is kept');
    assert.equal(await page.locator('#received li').count(), 1, 'shown once');
  });

  test('two pages become contacts by code and talk both ways; a reload keeps the conversation', async () => {
    const alice = page;
    const bobPage = await (await browser!.newContext()).newPage();
    bobPage.on('pageerror', (e) => process.stderr.write(`page error (bob): ${e.message}\n`));
    await bobPage.goto(`${web!.url}?gateway=gateway-2`);
    await waitFor(bobPage, 'bob connected', (v) => v.state === 'connected', 45_000);

    await alice.getByLabel('Name for the new contact').fill('bob');
    await alice.getByRole('button', { name: 'Make an invite code' }).click();
    const withCode = await waitFor(alice, 'an invite code', (v) => v.invites.some((i) => i.name === 'bob' && i.code !== null), 60_000);
    const code = withCode.invites.find((i) => i.name === 'bob')!.code!;
    await bobPage.getByLabel('Code from your contact').fill(code);
    await bobPage.getByLabel('Name for this contact').fill('alice');
    await bobPage.getByRole('button', { name: 'Accept code' }).click();
    await waitFor(alice, 'bob as a contact', (v) => v.contacts.some((c) => c.name === 'bob'), 120_000);
    await waitFor(bobPage, 'alice as a contact', (v) => v.contacts.some((c) => c.name === 'alice'), 120_000);
    const safetyA = (await view(alice)).contacts.find((c) => c.name === 'bob')!.safetyNumber;
    const safetyB = (await view(bobPage)).contacts.find((c) => c.name === 'alice')!.safetyNumber;
    assert.equal(safetyA, safetyB, 'both see the same safety number');

    await alice.getByLabel('Conversation with').selectOption('bob');
    await alice.getByLabel('Your message').fill('hi bob, from a browser');
    await alice.getByRole('button', { name: 'Send message' }).click();
    await waitFor(bobPage, "alice's message", (v) => (v.history['alice'] ?? []).some((h) => h.direction === 'in' && h.text === 'hi bob, from a browser'), 120_000);

    // A reload in the middle of the conversation: the contact and what came are kept, once.
    await bobPage.reload();
    const back = await waitFor(bobPage, 'bob connected after the reload', (v) => v.state === 'connected' && v.contacts.length > 0, 45_000);
    assert.deepEqual(back.contacts.map((c) => c.name), ['alice']);
    assert.equal((back.history['alice'] ?? []).filter((h) => h.text === 'hi bob, from a browser').length, 1, 'once after the reload');

    await bobPage.getByLabel('Conversation with').selectOption('alice');
    await bobPage.getByLabel('Your message').fill('hi alice, from another browser');
    await bobPage.getByRole('button', { name: 'Send message' }).click();
    await waitFor(alice, "bob's answer", (v) => (v.history['bob'] ?? []).some((h) => h.direction === 'in' && h.text === 'hi alice, from another browser'), 120_000);
    await waitFor(alice, 'her message delivered', (v) => (v.history['bob'] ?? []).some((h) => h.direction === 'out' && h.text === 'hi bob, from a browser' && h.state === 'delivered'), 120_000);
        assert.equal(await alice.locator('#conversation li').count(), 2, 'two messages shown in her conversation');
    await bobPage.context().close();
  });
});
