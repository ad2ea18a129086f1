/**
 * The browser client and gateway admission, in headless Chromium on a real local network (servers
 * as processes, as `backchannel up` runs them): gateway-1 admits by proof of work (12 bits, so
 * that the test is quick), gateway-2 by invitation token. A page joining gateway-1 is refused once
 * with the work asked, computes it in its worker, and reaches "connected"; a page joining gateway-2
 * without a token is refused cleanly (the error shown in the page), then given a token in the
 * page's form is admitted at its next attempt and the error goes; one given a token in the page's
 * address (`?token=HEX`) is admitted and connects. Each page is its own browser profile.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { loadOrCreateAdmissionTokenKey } from '../../src/config/keys.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { serveNetworkWeb } from '../../src/local/web.js';
import type { WebServer } from '../../src/local/web-server.js';
import { readSample } from '../../src/ops/metrics.js';
import { toHex, wipe } from '../../src/util/bytes.js';
import { mintToken, TOKEN_ID_LENGTH } from '../../src/wire/admission.js';
import { chromiumMissing, launchChromium } from '../helpers/chromium.js';
import { scrape } from '../helpers/mixnet-client.js';

const WEB_PORT = 24846;
const NETWORK_BASE_PORT = 24850;
const WORK_BITS = 12;
const PARAMS = { epochPeriodMs: 20_000, sendRatePerS: 4, loopRatePerS: 1 };

const skip = chromiumMissing();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface PageView {
  state: string;
  error: { code: string; message: string } | null;
  status: { connected: boolean } | null;
}

function view(page: Page): Promise<PageView> {
  return page.evaluate('globalThis.backchannel') as Promise<PageView>;
}

/** Waits for the page to reach a state (polling it), or for `what` to be past `timeoutMs`. */
async function waitFor(page: Page, what: string, pred: (v: PageView) => boolean, timeoutMs: number, errorOk = false): Promise<PageView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await view(page);
    if (!errorOk && v.error !== null) throw new Error(`the page shows an error while waiting for ${what}: ${v.error.code}: ${v.error.message}`);
    if (pred(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; page ${JSON.stringify(v)}`);
    await sleep(100);
  }
}

function setAdmission(data: string, gateway: string, admission: Record<string, unknown>): void {
  const p = join(data, gateway, 'config.json');
  const c = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  c['admission'] = admission;
  writeFileSync(p, JSON.stringify(c, null, 2));
}

describe('the browser client at gateways that admit by work and by token, in Chromium', { skip: skip ?? false, timeout: 180_000 }, () => {
  let dir: string;
  let data: string;
  let net: RunningLocalNetwork | null = null;
  let web: WebServer | null = null;
  let browser: Browser | null = null;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backchannel-browser-admission-'));
    data = join(dir, 'network');
    await ensureLocalNetwork({ dir: data, basePort: NETWORK_BASE_PORT, params: PARAMS });
    setAdmission(data, 'gateway-1', { mode: 'proof-of-work', workBits: WORK_BITS });
    setAdmission(data, 'gateway-2', { mode: 'token' });
    net = await startLocalNetwork({ dir: data });
    web = await serveNetworkWeb({ networkDir: data, port: WEB_PORT });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await web?.close();
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function newPage(query: string): Promise<Page> {
    const page = await (await browser!.newContext()).newPage();
    page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
    await page.goto(`${web!.url}?${query}`);
    return page;
  }

  test('proof of work: a new page is told the work, computes it, and connects', async (t) => {
    const ops = net!.network.server('gateway-1').opsUrl;
    const started = Date.now();
    const page = await newPage('gateway=gateway-1');
    await waitFor(page, 'connected', (v) => v.state === 'connected', 90_000);
    t.diagnostic(`page load to connected with ${WORK_BITS} bits of work: ${Date.now() - started} ms`);
    const m = await scrape(ops);
    assert.equal(readSample(m, 'backchannel_admission_total', { outcome: 'work' }), 1, 'refused once, for want of work');
    assert.equal(readSample(m, 'backchannel_admission_total', { outcome: 'admitted' }), 1, 'then admitted with it');
    await page.context().close();
  });

  test('token: a page without a token is refused, the error shown; given a token in its form it connects and the error goes; one given a token in its address connects', async () => {
    const ops = net!.network.server('gateway-2').opsUrl;
    const without = await newPage('gateway=gateway-2');
    const refused = await waitFor(without, 'the refusal', (v) => v.error !== null, 60_000, true);
    assert.equal(refused.error!.code, 'ERR_ADMISSION_TOKEN_REQUIRED');
    assert.match(refused.error!.message, /invitation token/);
    assert.notEqual(refused.state, 'connected');
    assert.equal(await without.locator('#error').isVisible(), true, 'shown on the page');
    assert.ok((readSample(await scrape(ops), 'backchannel_admission_total', { outcome: 'token_required' }) ?? 0) >= 1);

    // gateway-2's dataDir is its config's folder (genconfig writes "dataDir": ".").
    const { key } = loadOrCreateAdmissionTokenKey(join(data, 'gateway-2'));
    const mint = (): string => toHex(mintToken(nodeBackend, key, nodeBackend.randomBytes(TOKEN_ID_LENGTH)));
    const given = mint();
    const token = mint();
    wipe(key);
    // The refused page is given a token in its form: admitted at its next attempt, the alert goes.
    await without.getByLabel('Invitation token').fill(given);
    await without.getByRole('button', { name: 'Use token' }).click();
    const admitted = await waitFor(without, 'connected with the token given in the page', (v) => v.state === 'connected' && v.error === null, 60_000, true);
    assert.equal(admitted.status?.connected, true);
    assert.equal(await without.locator('#error').isVisible(), false, 'the refusal no longer shown');
    assert.equal(readSample(await scrape(ops), 'backchannel_admission_total', { outcome: 'admitted' }), 1);
    await without.context().close();

    const withToken = await newPage(`gateway=gateway-2&token=${token}`);
    await waitFor(withToken, 'connected with the token', (v) => v.state === 'connected', 60_000);
    assert.equal(readSample(await scrape(ops), 'backchannel_admission_total', { outcome: 'admitted' }), 2);
    await withToken.context().close();
  });
});
