/**
 * `npm run bench -- web-screens [--out DIR]`: regenerates the screenshots of the browser client
 * that docs/browser.md shows (default DIR docs/screens). Not a test and not part of `npm test`.
 *
 * A local network (servers as processes), two CLI clients (bob, carol) and the page in headless
 * Chromium, driven through its forms as a user would: the join step, an invite code, bob
 * accepting it, a conversation with bob (states, a file from bob as a download link), the safety
 * number, carol's code accepted and her message unread in the contacts list, the Contact panel
 * (rename, block, remove) and the confirmation before removing, an introduction of bob and carol,
 * and the network panel. Each view is saved at 360 px wide (the
 * section alone) and at desktop width (1280 × 860, the window).
 */
import { mkdtempSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { ipcCall } from '../src/client/ipc.js';
import { ensureLocalNetwork, startLocalNetwork } from '../src/local/up.js';
import { serveNetworkWeb } from '../src/local/web.js';
import { BIN_PATH } from '../src/local/network.js';
import { launchChromium } from '../test/helpers/chromium.js';
import { ClientProcess } from '../test/helpers/client-process.js';
import { spawn, spawnSync } from 'node:child_process';

const WEB_PORT = 24920;
const NETWORK_BASE_PORT = 24921;
const PARAMS = { epochPeriodMs: 20_000, sendRatePerS: 8, loopRatePerS: 2, fetchRatePerS: 20 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`web-screens: timed out waiting for ${what}`);
    await sleep(250);
  }
}

function bc(args: string[]): void {
  const r = spawnSync(process.execPath, [BIN_PATH, ...args], { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`backchannel ${args.slice(0, 2).join(' ')}: ${r.stderr}`);
}

/** `client invite` in the background: the code, once printed. */
function cliInvite(dir: string, name: string): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN_PATH, 'client', 'invite', '--dir', dir, '--name', name], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /^(\d+(?:-[a-z]+){4})$/m.exec(out);
      if (m !== null) res(m[1]!);
    });
    child.on('exit', () => rej(new Error('client invite ended without a code')));
  });
}

type PageState = { state: string; contacts: Array<{ name: string; unread?: number }>; invites: Array<{ name: string; code: string | null }>; history: Record<string, Array<{ direction: string; state: string }>>; introductions: Array<{ role: string }> };
const state = (page: Page): Promise<PageState> => page.evaluate('globalThis.backchannel') as Promise<PageState>;

export async function benchWebScreens(argv: string[]): Promise<Record<string, number>> {
  const k = argv.indexOf('--out');
  const out = resolve(k >= 0 ? argv[k + 1]! : 'docs/screens');
  mkdirSync(out, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'backchannel-web-screens-'));
  const data = join(dir, 'network');
  await ensureLocalNetwork({ dir: data, basePort: NETWORK_BASE_PORT, params: PARAMS });
  const net = await startLocalNetwork({ dir: data });
  const web = await serveNetworkWeb({ networkDir: data, port: WEB_PORT });
  const bob = new ClientProcess(join(dir, 'bob'));
  const carol = new ClientProcess(join(dir, 'carol'));
  const browser = await launchChromium();
  const sizes: Record<string, number> = {};
  try {
    bob.init(data, 'gateway-2');
    carol.init(data, 'gateway-2');
    const page = await (await browser.newContext({ viewport: { width: 360, height: 800 }, deviceScaleFactor: 1 })).newPage();
    await Promise.all([bob.run(), carol.run(), page.goto(web.url)]);

    /** Saves `section` at 360 px (the section alone), and the window at desktop width. */
    const shot = async (name: string, section: Locator): Promise<void> => {
      await page.setViewportSize({ width: 360, height: 800 });
      const narrow = join(out, `web-${name}-360.png`);
      await section.screenshot({ path: narrow });
      await page.setViewportSize({ width: 1280, height: 860 });
      await section.scrollIntoViewIfNeeded();
      const wide = join(out, `web-${name}-desktop.png`);
      await page.screenshot({ path: wide });
      await page.setViewportSize({ width: 360, height: 800 });
      sizes[`${name}_360_bytes`] = statSync(narrow).size;
      sizes[`${name}_desktop_bytes`] = statSync(wide).size;
      process.stderr.write(`web-screens: ${name}\n`);
    };

    await page.getByLabel('Your name', { exact: true }).fill('Alice');
    await shot('join', page.locator('#join'));
    await page.getByRole('button', { name: 'Make my keys and join' }).click();
    await until('connected', async () => (await state(page)).state === 'connected');

    await page.getByLabel('Name for the new contact').fill('bob');
    await page.getByRole('button', { name: 'Make an invite code' }).click();
    const code = await until('a code', async () => (await state(page)).invites.find((i) => i.name === 'bob')?.code);
    await shot('invite', page.locator('#add'));
    bc(['client', 'accept', code, '--name', 'alice', '--dir', bob.dir]);
    await until('bob', async () => (await state(page)).contacts.some((c) => c.name === 'bob'));

    await page.locator('#contacts').getByRole('button', { name: 'bob' }).click();
    await page.getByLabel('Your message').fill('Hi Bob! Are we still on for Thursday?');
    await page.getByLabel('Your message').press('Enter');
    bc(['client', 'send', 'alice', 'Yes, 7 pm at the usual place.', '--dir', bob.dir]);
    await until('the answer and delivered', async () => {
      const h = (await state(page)).history['bob'] ?? [];
      return h.some((x) => x.direction === 'in') && h.some((x) => x.direction === 'out' && x.state === 'delivered');
    });
    await page.getByLabel('Your message').fill('Great, see you there');
    await page.getByLabel('Your message').press('Enter');
    await until('the third message shown', async () => ((await state(page)).history['bob'] ?? []).length === 3);
    const file = join(dir, 'directions.txt');
    writeFileSync(file, 'Take the 12 to the last stop, then walk north for five minutes.\n'.repeat(400));
    bc(['client', 'send', 'alice', '--file', file, '--dir', bob.dir]);
    await until('the file as a link', async () => (await page.getByRole('link', { name: /Download directions\.txt/ }).count()) === 1);
    await page.getByRole('button', { name: 'Safety number' }).click();
    await page.getByRole('button', { name: 'Mark as verified' }).click();
    await until('verified', async () => (await page.locator('#conv-badge').textContent()) === '✓ verified');
    await shot('conversation', page.locator('#conv'));

    const carolCode = await cliInvite(carol.dir, 'alice');
    await page.getByLabel('Code from your contact').fill(carolCode);
    await page.getByLabel('Name for this contact').fill('carol');
    await page.getByRole('button', { name: 'Accept code' }).click();
    await until('carol', async () => (await state(page)).contacts.some((c) => c.name === 'carol'));
    bc(['client', 'send', 'alice', 'Hi Alice, Carol here.', '--dir', carol.dir]);
    await until("carol's message unread", async () => (await state(page)).contacts.find((c) => c.name === 'carol')?.unread === 1);
    await shot('contacts', page.locator('#chats'));

    await page.getByRole('button', { name: 'Safety number' }).click();
    await page.getByRole('button', { name: 'Contact', exact: true }).click();
    await shot('contact', page.locator('#conv'));
    await page.getByRole('button', { name: 'Remove bob…' }).click();
    await shot('remove', page.locator('#remove-dialog'));
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'Contact', exact: true }).click();

    await page.getByLabel('Introduce', { exact: true }).selectOption('bob');
    await page.getByLabel('to', { exact: true }).selectOption('carol');
    await page.getByRole('button', { name: 'Offer introduction' }).click();
    await until('the introduction', async () => (await state(page)).introductions.length > 0);
    const offer = await until('the offer at bob', async () => ((await ipcCall(bob.socket, { op: 'introductions' }))['introductions'] as Array<{ id: number; role: string }>).find((i) => i.role === 'received'));
    bc(['client', 'introduction', 'accept', String(offer.id), '--dir', bob.dir]);
    await until('bob accepted, in the page', async () => (await page.locator('#introductions li').first().textContent())?.includes('bob (accepted)'));
    await shot('introductions', page.locator('#intros'));

    await sleep(11_000); // the panel's rates are over 10 s
    await shot('network', page.locator('#net'));
  } finally {
    await browser.close();
    await bob.kill('SIGTERM');
    await carol.kill('SIGTERM');
    await web.close();
    await net.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return sizes;
}
