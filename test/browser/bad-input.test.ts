/**
 * Bad input in the page, in headless Chromium on a real local network (servers as processes):
 *
 * - a second tab of the same profile is refused with a clear message in the page's alert; once
 *   the first tab closes, the second takes the profile over and the alert goes;
 * - a "gateway" that answers garbage (a WebSocket server on loopback that sends junk): the typed
 *   error is shown, the engine tries again, and the worker stays alive (its reports go on);
 * - the gateway's directory documents fail verification (the page was given the authorities'
 *   keys in the wrong order, so every signature is checked against another authority's key):
 *   refused, the page says so, and nothing but cover leaves;
 * - a full IndexedDB quota (the page's worker is served with a shim that fails every write with a
 *   QuotaExceededError while the test says so): the page says so; a message that reaches the
 *   page's gateway while storage is full is not taken (nor acknowledged), so after a reload it
 *   comes, once; a message sent while storage is full is "queued" only once it is on disk, and
 *   arrives once;
 * - a reload with messages queued to a contact (another page, by invite code) while the page's
 *   gateway is down: the page loads with its gateway down (a clear message, attempts with a
 *   backoff), still shows the messages queued, once each, connects when the gateway comes back,
 *   and each message arrives exactly once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { WebSocketServer } from 'ws';
import { portableEd25519 } from '../../src/pki/ed25519.js';
import { toHex } from '../../src/util/bytes.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { WEB_BUNDLE_DIR, serveNetworkWeb } from '../../src/local/web.js';
import { startWebServer } from '../../src/local/web-server.js';
import type { WebServer } from '../../src/local/web-server.js';
import { chromiumMissing, launchChromium } from '../helpers/chromium.js';
import { ClientProcess } from '../helpers/client-process.js';

const WEB_PORT = 24860;
const GARBAGE_WEB_PORT = 24861;
const BAD_DIRECTORY_WEB_PORT = 24862;
const JUNK_WS_PORT = 24863;
const QUOTA_WEB_PORT = 24864;
const NETWORK_BASE_PORT = 24870;
const PARAMS = { epochPeriodMs: 20_000, sendRatePerS: 4, loopRatePerS: 1 };
/** The BroadcastChannel on which the test tells the quota shim in the worker to fail writes or not. */
const QUOTA_CHANNEL = 'backchannel-test-quota';

const skip = chromiumMissing();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface PageView {
  state: string;
  address: string | null;
  fresh: boolean | null;
  reports: number;
  error: { code: string; message: string } | null;
  received: Record<string, string>;
  sent: Record<string, { text: string; state: string }>;
  contacts: Array<{ name: string; session: string }>;
  history: Record<string, Array<{ direction: 'in' | 'out'; text: string; state: string }>>;
  invites: Array<{ name: string; code: string | null }>;
  status: { document: string; packetsSent: { real: number; drop: number; loop: number } } | null;
}

function view(page: Page): Promise<PageView> {
  return page.evaluate('globalThis.backchannel') as Promise<PageView>;
}

/** Waits for the page's view to satisfy `pred` (errors are part of what is waited for here). */
async function until(page: Page, what: string, pred: (v: PageView) => boolean, timeoutMs: number): Promise<PageView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await view(page);
    if (pred(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; page ${JSON.stringify({ ...v, history: undefined, invites: undefined })}`);
    await sleep(100);
  }
}

/** The page's alert as a person sees it. */
async function alertText(page: Page): Promise<string | null> {
  const box = page.locator('#error');
  return (await box.isVisible()) ? await box.textContent() : null;
}

/**
 * Served in front of the worker's bundle: fails every IndexedDB write (put and delete throw a
 * QuotaExceededError DOMException, as Chromium's quota refusal carries) while the test has said
 * 'full' on QUOTA_CHANNEL, until it says 'free'.
 */
const QUOTA_SHIM = `{
  let full = false;
  new BroadcastChannel(${JSON.stringify(QUOTA_CHANNEL)}).onmessage = (e) => { full = e.data === 'full'; };
  for (const m of ['put', 'delete']) {
    const real = IDBObjectStore.prototype[m];
    IDBObjectStore.prototype[m] = function (...args) {
      if (full && this.transaction.mode === 'readwrite') throw new DOMException('The quota has been exceeded (simulated).', 'QuotaExceededError');
      return real.apply(this, args);
    };
  }
}
`;

/** A copy of the page's bundle in `root` whose worker starts with the quota shim (Playwright's request routing would also stop the worker's WebSocket). */
function shimmedBundle(root: string): void {
  mkdirSync(root, { recursive: true });
  for (const f of readdirSync(WEB_BUNDLE_DIR)) copyFileSync(join(WEB_BUNDLE_DIR, f), join(root, f));
  writeFileSync(join(root, 'worker.js'), QUOTA_SHIM + readFileSync(join(WEB_BUNDLE_DIR, 'worker.js'), 'utf8'));
}

async function setQuota(page: Page, state: 'full' | 'free'): Promise<void> {
  await page.evaluate(([channel, s]) => new BroadcastChannel(channel!).postMessage(s), [QUOTA_CHANNEL, state]);
}

describe('bad input in the browser client, in Chromium', { skip: skip ?? false }, () => {
  let dir: string;
  let data: string;
  let net: RunningLocalNetwork | null = null;
  let web: WebServer | null = null;
  const servers: WebServer[] = [];
  let browser: Browser | null = null;
  let bob: ClientProcess | null = null;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backchannel-browser-bad-'));
    data = join(dir, 'network');
    await ensureLocalNetwork({ dir: data, basePort: NETWORK_BASE_PORT, params: PARAMS });
    net = await startLocalNetwork({ dir: data });
    web = await serveNetworkWeb({ networkDir: data, port: WEB_PORT });
    browser = await launchChromium();
  });

  after(async () => {
    await bob?.kill('SIGTERM');
    await browser?.close();
    for (const s of servers) await s.close();
    await web?.close();
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The page served with a network file changed by `change` (a copy of the real one). */
  async function serveChanged(port: number, change: (network: { authorities: Array<{ identityKey: string }>; gateways: Array<{ name: string; wsAddress: string | null }> }) => void, root = WEB_BUNDLE_DIR): Promise<WebServer> {
    const network = JSON.parse(readFileSync(join(data, 'network.json'), 'utf8')) as Parameters<typeof change>[0];
    change(network);
    const s = await startWebServer({ root, port, documents: { '/network.json': { type: 'application/json', body: JSON.stringify(network) } } });
    servers.push(s);
    return s;
  }

  test('a second tab of the same profile is refused with a clear message; the first carries on; once it closes, the second takes over and the alert goes', async () => {
    const context = await browser!.newContext();
    const first = await context.newPage();
    await first.goto(`${web!.url}?gateway=gateway-1`);
    await until(first, 'connected', (v) => v.state === 'connected', 45_000);
    const second = await context.newPage();
    await second.goto(`${web!.url}?gateway=gateway-1`);
    const v = await until(second, 'the refusal', (x) => x.error !== null, 20_000);
    assert.equal(v.error?.code, 'ERR_PROFILE_BUSY');
    const shown = await alertText(second);
    assert.match(shown ?? '', /open in another tab of this browser/, 'the alert says why');
    assert.match(shown ?? '', /close it: this tab then takes over/, 'and what to do');
    assert.notEqual(v.state, 'connected', 'the second tab runs no client');
    const reports = (await view(first)).reports;
    const still = await until(first, 'the first tab reporting', (x) => x.reports >= reports + 2, 10_000);
    assert.equal(still.error, null);
    assert.equal(still.state, 'connected');
    // The first tab closes: the second takes the profile over, and its alert goes by itself.
    const address = (await view(first)).address;
    await first.close();
    const over = await until(second, 'the second tab connected', (x) => x.state === 'connected', 45_000);
    assert.equal(over.error, null, 'the refusal is cleared');
    assert.equal(await alertText(second), null, 'and no longer shown');
    assert.equal(over.address, address, 'the same profile');
    await context.close();
  });

  test('a gateway that answers garbage: the typed error is shown, it is tried again, the worker stays alive', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: JUNK_WS_PORT });
    let connections = 0;
    wss.on('connection', (ws) => {
      connections++;
      // Junk where the Noise handshake's answer belongs, then more junk.
      ws.send(Buffer.from('HTTP/1.1 200 OK\r\n\r\n<html>not a gateway</html>'));
      ws.send(Buffer.alloc(3000, 0xa5));
    });
    try {
      const s = await serveChanged(GARBAGE_WEB_PORT, (n) => {
        n.gateways.find((g) => g.name === 'gateway-1')!.wsAddress = `ws://127.0.0.1:${JUNK_WS_PORT}`;
      });
      const context = await browser!.newContext();
      const page = await context.newPage();
      await page.goto(`${s.url}?gateway=gateway-1`);
      const v = await until(page, 'the error shown', (x) => x.error !== null, 30_000);
      assert.equal(v.error?.code, 'ERR_LINK_CONNECT');
      assert.match(v.error?.message ?? '', /not Backchannel's protocol \(ERR_[A-Z_]+\)/, 'says what happened, with the typed code');
      assert.match((await alertText(page)) ?? '', /answered with something that is not Backchannel's protocol/);
      // Tried again (the engine's backoff), and the worker goes on reporting.
      const reports = v.reports;
      const later = await until(page, 'a second attempt', (x) => /attempt [2-9]/.test(x.error?.message ?? ''), 20_000);
      await until(page, 'reports after the errors', (x) => x.reports >= reports + 2, 10_000);
      assert.ok(connections >= 2, `the junk server saw ${connections} connections`);
      assert.notEqual(later.state, 'connected');
      await context.close();
    } finally {
      await new Promise((r) => wss.close(r));
    }
  });

  test('directory documents with bad signatures are refused and the page says so', async () => {
    // The page is told other keys for the authorities (valid keys of nobody's): every signature on
    // the documents the gateway hands over fails against them.
    const s = await serveChanged(BAD_DIRECTORY_WEB_PORT, (n) => {
      for (const a of n.authorities) a.identityKey = toHex(portableEd25519.publicKeyFromSeed(randomBytes(32)));
    });
    const context = await browser!.newContext();
    const page = await context.newPage();
    await page.goto(`${s.url}?gateway=gateway-1`);
    const v = await until(page, 'the directory refused', (x) => x.error !== null, 45_000);
    assert.equal(v.error?.code, 'ERR_CLIENT_DIRECTORY');
    assert.match((await alertText(page)) ?? '', /could not be verified with the network's authority keys/);
    const later = await until(page, 'more reports', (x) => x.reports >= v.reports + 2, 10_000);
    assert.equal(later.status?.document, 'none', 'no document in use');
    assert.equal(later.status?.packetsSent.real, 0);
    await context.close();
  });

  test('a full IndexedDB quota: shown, nothing acknowledged is lost, no duplicate once it frees', async () => {
    bob = new ClientProcess(join(dir, 'bob'));
    bob.init(data, 'gateway-2');
    await bob.run();
    shimmedBundle(join(dir, 'shimmed'));
    const s = await serveChanged(QUOTA_WEB_PORT, () => undefined, join(dir, 'shimmed'));
    const context = await browser!.newContext();
    const page = await context.newPage();
    page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
    await page.goto(`${s.url}?gateway=gateway-1`);
    const joined = await until(page, 'connected', (v) => v.state === 'connected', 45_000);
    await until(page, 'a directory', (v) => v.status?.document === 'current', 45_000);

    // Storage full: the next write (cover traffic makes some every second) fails, and the page says so.
    await setQuota(page, 'full');
    const full = await until(page, 'the storage problem shown', (v) => v.error !== null, 20_000);
    assert.equal(full.error?.code, 'ERR_STORE_WRITE');
    assert.match((await alertText(page)) ?? '', /storage for this site is full/);

    // A message comes to the page's gateway while nothing can be written: the page takes nothing
    // more from its gateway (it could not record having taken it), so the gateway keeps it.
    await bob.send(joined.address!, new TextEncoder().encode('while full'));
    await bob.until((st) => st['pendingMessages'] === 0, 90_000, "the message acknowledged by the page's gateway");
    assert.ok(!Object.values((await view(page)).received).includes('while full'), 'not taken in while storage is full');
    // The tab goes away before storage frees (a reload: the worker and its memory are gone).
    await page.reload();
    const back = await until(page, 'connected after the reload', (v) => v.state === 'connected', 45_000);
    assert.equal(back.fresh, false);
    await until(page, 'the message, from the gateway', (v) => Object.values(v.received).includes('while full'), 90_000);

    // Full again; a message sent now is not "queued" until it is on disk.
    await setQuota(page, 'full');
    await until(page, 'the storage problem shown', (v) => v.error?.code === 'ERR_STORE_WRITE', 20_000);
    await page.getByLabel("Recipient's address").fill(bob.address);
    await page.getByLabel('Message', { exact: true }).fill('sent while full');
    const clicked = (await view(page)).reports;
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    // Two status reports later (the engine's clocks ran meanwhile), the page still does not claim it.
    await until(page, 'two more reports', (v) => v.reports >= clicked + 2, 10_000);
    assert.equal(await page.locator('#send-result').textContent(), 'Sending…', 'not claimed queued before it is on disk');
    await setQuota(page, 'free');
    const freed = await until(page, 'the problem cleared and the message queued', (v) => v.error === null && Object.values(v.sent).some((m) => m.text === 'sent while full'), 30_000);
    assert.equal(await alertText(page), null, 'the alert is gone');
    assert.equal(Object.values(freed.sent).filter((m) => m.text === 'sent while full').length, 1);

    const deadline = Date.now() + 90_000;
    const got: string[] = [];
    while (!got.includes('sent while full')) {
      if (Date.now() > deadline) throw new Error(`bob did not receive the message; he has ${JSON.stringify(got)}`);
      got.push(...(await bob.recv()).map((m) => new TextDecoder().decode(m.body)));
      await sleep(250);
    }
    // Once: wait out the retransmission window of a few more fetches, then count.
    await until(page, 'delivered', (v) => Object.values(v.sent).some((m) => m.text === 'sent while full' && m.state === 'delivered'), 90_000);
    got.push(...(await bob.recv()).map((m) => new TextDecoder().decode(m.body)));
    assert.equal(got.filter((t) => t === 'sent while full').length, 1, 'received once');

    await page.reload();
    const last = await until(page, 'connected after the reload', (v) => v.state === 'connected', 45_000);
    // Three reports later (some 90 fetches at the default rate) a lost position would have brought the message again.
    const final = await until(page, 'three more reports', (v) => v.reports >= last.reports + 3, 15_000);
    assert.equal(Object.values(final.received).filter((t) => t === 'while full').length, 1);
    assert.equal(await page.locator('#received li').filter({ hasText: 'while full' }).count(), 1, 'shown once');
    assert.equal(last.error, null);
    await context.close();
  });
  test('a reload with messages queued while the gateway is down: still queued, shown once, then each delivered once', async () => {
    const alice = await (await browser!.newContext()).newPage();
    const carol = await (await browser!.newContext()).newPage();
    alice.on('pageerror', (e) => process.stderr.write(`page error (alice): ${e.message}\n`));
    await alice.goto(`${web!.url}?gateway=gateway-1`);
    await carol.goto(`${web!.url}?gateway=gateway-2`);
    await until(alice, 'alice connected', (v) => v.state === 'connected', 45_000);
    await until(carol, 'carol connected', (v) => v.state === 'connected', 45_000);
    await alice.getByLabel('Name for the new contact').fill('carol');
    await alice.getByRole('button', { name: 'Make an invite code' }).click();
    const withCode = await until(alice, 'an invite code', (v) => v.invites.some((i) => i.name === 'carol' && i.code !== null), 60_000);
    await carol.getByLabel('Code from your contact').fill(withCode.invites.find((i) => i.name === 'carol')!.code!);
    await carol.getByLabel('Name for this contact').fill('alice');
    await carol.getByRole('button', { name: 'Accept code' }).click();
    await until(alice, 'carol as a contact', (v) => v.contacts.some((c) => c.name === 'carol'), 120_000);
    await until(carol, 'alice as a contact', (v) => v.contacts.some((c) => c.name === 'alice'), 120_000);

    // Alice's gateway goes down; she writes three messages, which wait.
    await net!.network.kill('gateway-1');
    await until(alice, 'alice disconnected', (v) => v.state !== 'connected', 30_000);
    const texts = ['queued one', 'queued two', 'queued three'];
    await alice.getByLabel('Conversation with').selectOption('carol');
    for (const t of texts) {
      await alice.getByLabel('Your message').fill(t);
      await alice.getByRole('button', { name: 'Send message' }).click();
      await until(alice, `"${t}" queued`, (v) => (v.history['carol'] ?? []).some((h) => h.text === t), 20_000);
    }
    const mine = (v: PageView) => (v.history['carol'] ?? []).filter((h) => h.direction === 'out' && texts.includes(h.text));

    // A reload with the gateway still down: the page says it cannot reach it and keeps trying; the
    // messages are still there, queued, once each.
    await alice.reload();
    const down = await until(alice, 'the gateway-down message after the reload', (v) => v.error?.code === 'ERR_LINK_CONNECT' && mine(v).length === texts.length, 45_000);
    assert.match((await alertText(alice)) ?? '', /Cannot reach your gateway gateway-1/);
    assert.deepEqual(mine(down).map((h) => h.text), texts, 'each once, in order');
    assert.ok(mine(down).every((h) => h.state === 'queued'), JSON.stringify(mine(down)));
    await until(alice, 'a second attempt', (v) => /attempt [2-9]/.test(v.error?.message ?? ''), 30_000);

    // The gateway comes back: the page connects, the alert goes, each message arrives exactly once.
    net!.network.start('gateway-1');
    await until(alice, 'connected again', (v) => v.state === 'connected' && v.error === null, 90_000);
    assert.equal(await alertText(alice), null);
    await until(carol, 'the three messages', (v) => texts.every((t) => (v.history['alice'] ?? []).some((h) => h.direction === 'in' && h.text === t)), 120_000);
    await until(alice, 'all delivered', (v) => mine(v).length === texts.length && mine(v).every((h) => h.state === 'delivered'), 120_000);
    const final = await view(carol);
    for (const t of texts) assert.equal((final.history['alice'] ?? []).filter((h) => h.text === t).length, 1, `"${t}" received once`);
    const a = await view(alice);
    assert.equal(mine(a).length, texts.length, 'shown once each in her history');
    for (const t of texts) assert.equal(await alice.locator('#conversation li').filter({ hasText: t }).count(), 1, `"${t}" on screen once`);
    await alice.context().close();
    await carol.context().close();
  });
});

