/**
 * The shared ClientStore suite (test/client/store-compliance.ts) in headless Chromium against the
 * record store over IndexedDB (web/idb.ts): the suite is bundled with esbuild into a page that
 * the test serves on 127.0.0.1 and drives with playwright-core; each case's result comes back and
 * is asserted here. Then a real page reload: what was flushed is read back by a new page.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startWebServer } from '../../src/local/web-server.js';
import type { WebServer } from '../../src/local/web-server.js';
import { complianceCases } from '../client/store-compliance.js';
import { bundle, chromiumMissing, launchChromium } from '../helpers/chromium.js';

const PORT = 24800;
const skip = chromiumMissing();

describe('ClientStore compliance: record store over IndexedDB, in Chromium', { skip: skip ?? false }, () => {
  let dir: string;
  let server: WebServer;
  let browser: Browser;
  let page: Page;
  let results: Array<{ name: string; error: string | null }> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backchannel-browser-store-'));
    // The compiled test runs from dist/test/browser; the TypeScript sources are bundled.
    await bundle('test/browser/pages/store-page.ts', join(dir, 'store-page.js'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>loading</title><script type="module" src="store-page.js"></script>\n');
    server = await startWebServer({ root: dir, port: PORT });
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForFunction('document.title === "ready"');
    results = await page.evaluate(() => (globalThis as unknown as { runCompliance: () => Promise<Array<{ name: string; error: string | null }>> }).runCompliance());
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const c of complianceCases) {
    test(c.name, () => {
      const r = results.find((x) => x.name === c.name);
      assert.ok(r !== undefined, 'the page ran the case');
      assert.equal(r.error, null);
    });
  }

  test('WebCrypto X25519 equals @noble: RFC 7748 vectors, 200 random inputs, a small-order point refused, a Sphinx packet from prepared keys', async () => {
    const r = await page.evaluate(() => (globalThis as unknown as { runX25519Check: (n: number) => Promise<{ available: boolean; vectors: number; random: number; mismatches: string[]; lowOrder: boolean; packetEqual: boolean }> }).runX25519Check(200));
    assert.deepEqual(r, { available: true, vectors: 4, random: 200, mismatches: [], lowOrder: true, packetEqual: true });
  });

  test('what was flushed is there after a real page reload', async () => {
    await page.evaluate(() => (globalThis as unknown as { writeForReload: (n: number) => Promise<void> }).writeForReload(25));
    await page.reload();
    await page.waitForFunction('document.title === "ready"');
    const r = await page.evaluate(() => (globalThis as unknown as { readAfterReload: () => Promise<{ seq: number; pending: number }> }).readAfterReload());
    assert.deepEqual(r, { seq: 25, pending: 25 });
  });
});
