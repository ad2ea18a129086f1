/**
 * The browser client and CLI clients through the messenger, on a real local network (servers as
 * processes), with a page in headless Chromium driven through its forms and `client run`
 * processes driven by the commands a user types (and their IPC socket for reading state):
 *
 * - the page makes an invite code, a CLI client accepts it (`client accept`); they chat both ways
 *   and each one's message reaches "delivered"; both show the same safety number, and the page
 *   marks it verified;
 * - a CLI client makes a code (`client invite`) and the page accepts it; they chat both ways;
 * - the page introduces its two CLI contacts to each other; both accept (`client introduction
 *   accept`) and become contacts with one safety number;
 * - a CLI client introduces the page to another CLI client; the page accepts in its
 *   introductions list, the other accepts, and the page and the new contact chat;
 * - files both ways: one chosen in the page's file field reaches a CLI client with the same bytes
 *   (the page shows its sending progress), one sent by `client send --file` becomes a download
 *   link (a Blob URL) in the page with the same bytes; a file over the limit is refused in the page;
 * - contact management in the page: an unread count appears for a conversation not on screen, is
 *   kept over a reload and clears when the conversation is opened; a contact renamed, blocked,
 *   unblocked and blocked again, another removed (Escape in the confirmation keeps it), an invite
 *   cancelled, each kept over a reload;
 * - a tab hidden for 2 minutes (another tab in front, headful Chromium on an Xvfb display) keeps
 *   sending at the configured Poisson rate, counted at its gateway, while the page's own timers
 *   are throttled (the control that shows the tab was hidden).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ipcCall } from '../../src/client/ipc.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { serveNetworkWeb } from '../../src/local/web.js';
import type { WebServer } from '../../src/local/web-server.js';
import { chromiumMissing, launchChromium } from '../helpers/chromium.js';
import { BIN, cli } from '../helpers/cli.js';
import { ClientProcess } from '../helpers/client-process.js';
import { scrape } from '../helpers/mixnet-client.js';
import { launchUserChromium, startXvfb, xvfbMissing } from '../helpers/xvfb.js';
import type { UserChromium, Xvfb } from '../helpers/xvfb.js';
import { readSample } from '../../src/ops/metrics.js';
import { MAX_FILE_LENGTH } from '../../src/messaging/content.js';

const WEB_PORT = 24920;
const NETWORK_BASE_PORT = 24921;
const PARAMS = { epochPeriodMs: 20_000, sendRatePerS: 8, loopRatePerS: 2, fetchRatePerS: 20 };
/** The files sent each way: about 11 fragments of the default 2,000-byte payload, enough for progress to show. */
const FILE_BYTES = 20_000;

const skip = chromiumMissing();
/**
 * How long the tab stays hidden: 70 s in `npm test`, past the 60 s after which Chromium throttles
 * a hidden page's timers to one wake-up a minute (docs/browser.md, measured here); the full
 * 2 minutes with BACKCHANNEL_LONG_TESTS=1 (an opt-in run, to keep `npm test` within its budget).
 */
const HIDDEN_MS = process.env['BACKCHANNEL_LONG_TESTS'] === '1' ? 120_000 : 70_000;
/** Outside CI a machine without Xvfb skips the hidden-tab test, saying why; in CI it must run. */
const skipHidden = process.env['CI'] === undefined ? xvfbMissing() : null;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface PageView {
  state: string;
  error: { code: string; message: string } | null;
  name: string | null;
  contacts: Array<{ name: string; session: string; verified: boolean; safetyNumber: string; blocked?: boolean; unread?: number }>;
  history: Record<string, Array<{ id: number; direction: 'in' | 'out'; text: string; state: string; kind?: string; fileName?: string | null; fileLength?: number | null }>>;
  invites: Array<{ name: string; code: string | null; stage: string; failure: string | null }>;
  introductions: Array<{ id: number; role: string; from: string | null; names: string[]; state: string }>;
  status: { packetsSent: { real: number; drop: number; loop: number }; clockRestarts?: { send: number; loop: number; fetch: number } } | null;
}

interface Entry {
  id: number;
  direction: 'in' | 'out';
  kind: 'text' | 'file';
  text: string | null;
  file_name: string | null;
  state: string;
}

function view(page: Page): Promise<PageView> {
  return page.evaluate('globalThis.backchannel') as Promise<PageView>;
}

/** Waits for the page's state, failing at once on an error the page shows. */
async function waitPage(page: Page, what: string, pred: (v: PageView) => boolean, timeoutMs = 120_000): Promise<PageView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await view(page);
    if (v.error !== null) throw new Error(`the page shows an error while waiting for ${what}: ${v.error.code}: ${v.error.message}`);
    if (pred(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; page ${JSON.stringify({ ...v, history: undefined })}`);
    await sleep(200);
  }
}

/** Polls `fn` until it gives a value. */
async function waitCli<T>(what: string, fn: () => Promise<T | null | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function history(c: ClientProcess, name: string): Promise<Entry[]> {
  const r = await ipcCall(c.socket, { op: 'history', name });
  assert.equal(r['ok'], true, JSON.stringify(r));
  return r['entries'] as Entry[];
}

async function contactNames(c: ClientProcess): Promise<string[]> {
  return ((await ipcCall(c.socket, { op: 'contacts' }))['contacts'] as Array<{ name: string }>).map((x) => x.name);
}

async function safetyNumber(c: ClientProcess, name: string): Promise<string> {
  return String((await ipcCall(c.socket, { op: 'contact_verify', name }))['safety_number']);
}

/** `backchannel ...args` must succeed. */
async function bc(args: string[]): Promise<string> {
  const r = await cli(args, { timeoutMs: 150_000 });
  assert.equal(r.code, 0, `backchannel ${args.slice(0, 3).join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** `client invite --name NAME` as a user runs it: the code once printed, and the command's end. */
function cliInvite(dir: string, name: string): Promise<{ code: string; done: Promise<{ code: number | null; stderr: string }> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'client', 'invite', '--dir', dir, '--name', name], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let found = false;
    const done = new Promise<{ code: number | null; stderr: string }>((r) => child.on('exit', (code) => r({ code, stderr })));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      const m = /^(\d+(?:-[a-z]+){4})$/m.exec(stdout);
      if (m !== null && !found) {
        found = true;
        resolve({ code: m[1]!, done });
      }
    });
    child.on('error', reject);
    void done.then((f) => {
      if (!found) reject(new Error(`client invite ended without a code: ${JSON.stringify(f)}`));
    });
  });
}

/** The page sends `text` to `contact` through the conversation view. */
async function say(page: Page, contact: string, text: string): Promise<void> {
  await page.locator('#contacts').getByRole('button', { name: contact }).click();
  assert.equal(await page.getByLabel('Conversation with').inputValue(), contact);
  await page.getByLabel('Your message').fill(text);
  await page.getByLabel('Your message').press('Enter');
}

describe('a page and CLI clients through the messenger', { skip: skip ?? false, timeout: 600_000 }, () => {
  let dir: string;
  let net: RunningLocalNetwork | null = null;
  let web: WebServer | null = null;
  let browser: Browser | null = null;
  let page: Page;
  const clis: ClientProcess[] = [];
  let bob: ClientProcess;
  let carol: ClientProcess;
  let dave: ClientProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backchannel-browser-messenger-'));
    const data = join(dir, 'network');
    await ensureLocalNetwork({ dir: data, basePort: NETWORK_BASE_PORT, params: PARAMS });
    net = await startLocalNetwork({ dir: data });
    web = await serveNetworkWeb({ networkDir: data, port: WEB_PORT });
    for (const name of ['bob', 'carol', 'dave']) {
      const c = new ClientProcess(join(dir, name));
      c.init(data, 'gateway-2');
      clis.push(c);
    }
    [bob, carol, dave] = clis as [ClientProcess, ClientProcess, ClientProcess];
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
    await Promise.all([...clis.map((c) => c.run()), page.goto(web.url)]);
    await page.getByLabel('Your name', { exact: true }).fill('alice');
    await page.getByLabel('Gateway', { exact: true }).selectOption('gateway-1');
    await page.getByRole('button', { name: 'Make my keys and join' }).click();
    await waitPage(page, 'connected', (v) => v.state === 'connected', 60_000);
  });

  let xvfb: Xvfb | null = null;
  let headful: UserChromium | null = null;

  after(async () => {
    for (const c of clis) await c.kill('SIGTERM');
    await headful?.close();
    await xvfb?.stop();
    await browser?.close();
    await web?.close();
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the page makes a code, a CLI client accepts it; they chat both ways, delivered on both; one safety number, verified in the page', async (t) => {
    const t0 = Date.now();
    await page.getByLabel('Name for the new contact').fill('bob');
    await page.getByRole('button', { name: 'Make an invite code' }).click();
    const code = (await waitPage(page, 'an invite code', (v) => v.invites.some((i) => i.name === 'bob' && i.code !== null))).invites.find((i) => i.name === 'bob')!.code!;
    await bc(['client', 'accept', code, '--name', 'alice', '--dir', bob.dir]);
    await waitPage(page, 'bob as a contact', (v) => v.contacts.some((c) => c.name === 'bob'));
    assert.deepEqual(await contactNames(bob), ['alice']);
    t.diagnostic(`code to contacts: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    await say(page, 'bob', 'hi bob, from the page');
    await waitCli("the page's message at bob", async () => (await history(bob, 'alice')).find((e) => e.direction === 'in' && e.text === 'hi bob, from the page'));
    await bc(['client', 'send', 'alice', 'hi alice, from the CLI', '--dir', bob.dir]);
    await waitPage(page, "bob's message in the page", (v) => (v.history['bob'] ?? []).some((h) => h.direction === 'in' && h.text === 'hi alice, from the CLI'));
    await waitPage(page, 'the page\'s message delivered', (v) => (v.history['bob'] ?? []).some((h) => h.direction === 'out' && h.text === 'hi bob, from the page' && h.state === 'delivered'));
    await waitCli("bob's message delivered", async () => (await history(bob, 'alice')).find((e) => e.direction === 'out' && e.text === 'hi alice, from the CLI' && e.state === 'delivered'));
    t.diagnostic(`code to a two-way conversation, both delivered: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Each message once on each side; the page shows the states in words.
    const pageRows = (await view(page)).history['bob'] ?? [];
    assert.deepEqual(pageRows.map((h) => `${h.direction}:${h.text}`).sort(), ['in:hi alice, from the CLI', 'out:hi bob, from the page']);
    assert.deepEqual((await history(bob, 'alice')).map((e) => `${e.direction}:${e.text ?? ''}`).sort(), ['in:hi bob, from the page', 'out:hi alice, from the CLI']);
    assert.match((await page.locator('#conversation li.out').textContent()) ?? '', /\(delivered\)/);

    // The safety number: the page shows what the CLI prints, and marks it verified.
    const theirs = await safetyNumber(bob, 'alice');
    await page.getByRole('button', { name: 'Safety number' }).click();
    const shown = (await page.locator('#safety-number .group').allTextContents()).join(' ');
    assert.equal(shown, theirs, 'the page shows the number the CLI client prints');
    assert.equal(shown.replace(/ /g, '').length, 60);
    await page.getByRole('button', { name: 'Mark as verified' }).click();
    await waitPage(page, 'bob verified', (v) => v.contacts.find((c) => c.name === 'bob')?.verified === true, 10_000);
    assert.equal(await page.locator('#conv-badge').textContent(), '✓ verified');
    await page.getByRole('button', { name: 'Clear verification' }).click();
    await waitPage(page, 'bob not verified', (v) => v.contacts.find((c) => c.name === 'bob')?.verified === false, 10_000);
    await page.getByRole('button', { name: 'Mark as verified' }).click();
    await waitPage(page, 'bob verified again', (v) => v.contacts.find((c) => c.name === 'bob')?.verified === true, 10_000);
  });

  test('a CLI client makes a code, the page accepts it; they chat both ways', async () => {
    const inv = await cliInvite(carol.dir, 'alice');
    await page.getByLabel('Code from your contact').fill(inv.code);
    await page.getByLabel('Name for this contact').fill('carol');
    await page.getByRole('button', { name: 'Accept code' }).click();
    const ended = await inv.done;
    assert.equal(ended.code, 0, ended.stderr);
    await waitPage(page, 'carol as a contact', (v) => v.contacts.some((c) => c.name === 'carol'));
    assert.equal((await view(page)).contacts.find((c) => c.name === 'carol')!.safetyNumber, await safetyNumber(carol, 'alice'));
    await say(page, 'carol', 'hello carol');
    await bc(['client', 'send', 'alice', 'hello alice', '--dir', carol.dir]);
    await waitCli("the page's message at carol", async () => (await history(carol, 'alice')).find((e) => e.direction === 'in' && e.text === 'hello carol'));
    await waitPage(page, "carol's message, and the page's delivered", (v) => {
      const rows = v.history['carol'] ?? [];
      return rows.some((h) => h.direction === 'in' && h.text === 'hello alice') && rows.some((h) => h.direction === 'out' && h.text === 'hello carol' && h.state === 'delivered');
    });
  });

  test('the page introduces its two CLI contacts; both accept and become contacts with one safety number', async () => {
    await page.getByLabel('Introduce', { exact: true }).selectOption('bob');
    await page.getByLabel('to', { exact: true }).selectOption('carol');
    await page.getByRole('button', { name: 'Offer introduction' }).click();
    await waitPage(page, 'the introduction listed', (v) => v.introductions.some((i) => i.role === 'made'), 20_000);
    for (const [c, other] of [[bob, 'carol'], [carol, 'bob']] as const) {
      const offer = await waitCli(`the offer at ${other === 'carol' ? 'bob' : 'carol'}`, async () =>
        ((await ipcCall(c.socket, { op: 'introductions' }))['introductions'] as Array<{ id: number; role: string; state: string; names: string[] }>).find((i) => i.role === 'received' && i.state === 'offered' && i.names[0] === other));
      await bc(['client', 'introduction', 'accept', String(offer.id), '--dir', c.dir]);
    }
    await waitCli('bob and carol contacts', async () => ((await contactNames(bob)).includes('carol') && (await contactNames(carol)).includes('bob') ? true : null));
    assert.equal(await safetyNumber(bob, 'carol'), await safetyNumber(carol, 'bob'));
    await waitPage(page, 'the introduction done in the page', (v) => v.introductions.some((i) => i.role === 'made' && i.state === 'done'), 60_000);
    assert.match((await page.locator('#introductions li').first().textContent()) ?? '', /You introduced bob \(accepted\) and carol \(accepted\)/);
  });

  test('a CLI client introduces the page to another; the page accepts in its list; they chat', async () => {
    // dave and bob become contacts by code (CLI to CLI), then bob introduces dave and alice.
    const inv = await cliInvite(dave.dir, 'bob');
    await bc(['client', 'accept', inv.code, '--name', 'dave', '--dir', bob.dir]);
    assert.equal((await inv.done).code, 0);
    await bc(['client', 'introduce', 'alice', 'dave', '--dir', bob.dir]);
    const offered = await waitPage(page, 'the offer in the page', (v) => v.introductions.some((i) => i.role === 'received' && i.state === 'offered'));
    const offer = offered.introductions.find((i) => i.role === 'received' && i.state === 'offered')!;
    assert.equal(offer.from, 'bob');
    assert.equal(offer.names[0], 'dave');
    const row = page.locator(`#introductions li[data-id="${offer.id}"]`);
    assert.match((await row.textContent()) ?? '', /bob offers to introduce you to dave/);
    await row.getByLabel('Name for them').fill('dave d.');
    await row.getByRole('button', { name: 'Accept the introduction to dave' }).click();
    const atDave = await waitCli('the offer at dave', async () =>
      ((await ipcCall(dave.socket, { op: 'introductions' }))['introductions'] as Array<{ id: number; role: string; state: string }>).find((i) => i.role === 'received' && i.state === 'offered'));
    await bc(['client', 'introduction', 'accept', String(atDave.id), '--name', 'alice', '--dir', dave.dir]);
    await waitPage(page, 'dave as a contact', (v) => v.contacts.some((c) => c.name === 'dave d.'));
    // bob forwards each side its card on its own; the page can hold dave's before dave holds the page's.
    await waitCli('the page as a contact at dave', async () => ((await contactNames(dave)).includes('alice') ? true : null));
    assert.equal((await view(page)).contacts.find((c) => c.name === 'dave d.')!.safetyNumber, await safetyNumber(dave, 'alice'));
    await say(page, 'dave d.', 'nice to meet you, dave');
    await waitCli("the page's message at dave", async () => (await history(dave, 'alice')).find((e) => e.direction === 'in' && e.text === 'nice to meet you, dave'));
    await bc(['client', 'send', 'alice', 'likewise', '--dir', dave.dir]);
    await waitPage(page, "dave's answer", (v) => (v.history['dave d.'] ?? []).some((h) => h.direction === 'in' && h.text === 'likewise'));
  });

  test('files both ways: one from the page reaches a CLI client whole, one from a CLI client downloads in the page; too large is refused', async (t) => {
    const t0 = Date.now();
    await page.locator('#contacts').getByRole('button', { name: 'bob' }).click();
    // Every "sending: ..." the conversation shows, collected in the page between our polls.
    await page.evaluate(`globalThis.sendingSeen = []; globalThis.sendingTimer = setInterval(() => { for (const s of document.querySelectorAll('#conversation .state')) if (/sending:/.test(s.textContent) && !globalThis.sendingSeen.includes(s.textContent)) globalThis.sendingSeen.push(s.textContent); }, 20)`);
    const fromPage = randomBytes(FILE_BYTES);
    await page.getByLabel('File to send').setInputFiles({ name: 'from page.bin', mimeType: 'application/octet-stream', buffer: fromPage });
    await page.getByRole('button', { name: 'Send file' }).click();
    const atBob = await waitCli("the page's file whole at bob", async () => (await history(bob, 'alice')).find((e) => e.direction === 'in' && e.kind === 'file' && e.state === 'received'));
    assert.equal(atBob.file_name, 'from page.bin');
    const got = await ipcCall(bob.socket, { op: 'msg_file', id: atBob.id });
    assert.ok(Buffer.from(String(got['data_base64']), 'base64').equals(fromPage), 'the same bytes at the CLI client');
    await waitPage(page, 'the file delivered in the page', (v) => (v.history['bob'] ?? []).some((h) => h.direction === 'out' && h.kind === 'file' && h.state === 'delivered'));
    const seen = (await page.evaluate('clearInterval(globalThis.sendingTimer), globalThis.sendingSeen')) as string[];
    t.diagnostic(`page to CLI, ${FILE_BYTES} bytes: ${((Date.now() - t0) / 1000).toFixed(1)} s; progress shown: ${JSON.stringify(seen)}`);
    assert.ok(seen.some((s) => /sending: \d+ %, \d+\/\d+ fragments/.test(s)), 'the page showed the sending progress');

    const t1 = Date.now();
    const fromCli = randomBytes(FILE_BYTES);
    const path = join(dir, 'from cli.bin');
    writeFileSync(path, fromCli);
    await bc(['client', 'send', 'alice', '--file', path, '--dir', bob.dir]);
    const v = await waitPage(page, "bob's file whole in the page", (x) => (x.history['bob'] ?? []).some((h) => h.direction === 'in' && h.kind === 'file' && h.state === 'received'));
    const row = (v.history['bob'] ?? []).find((h) => h.direction === 'in' && h.kind === 'file')!;
    assert.equal(row.fileName, 'from cli.bin');
    assert.equal(row.fileLength, FILE_BYTES);
    const link = page.getByRole('link', { name: /Download from cli\.bin/ });
    await link.waitFor({ timeout: 10_000 });
    assert.equal(await link.getAttribute('download'), 'from cli.bin');
    const href = (await link.getAttribute('href'))!;
    assert.match(href, /^blob:/);
    // The link a person clicks: a download of the same bytes, under the file's name. (The page's
    // CSP allows no fetch of a blob: URL, so the test downloads it as a person does.)
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    assert.equal(download.suggestedFilename(), 'from cli.bin');
    assert.ok(readFileSync(await download.path()).equals(fromCli), 'the same bytes downloaded');
    t.diagnostic(`CLI to page, ${FILE_BYTES} bytes: ${((Date.now() - t1) / 1000).toFixed(1)} s`);

    // Too large: refused in the page with the limit, before anything is queued.
    const rows = ((await view(page)).history['bob'] ?? []).length;
    await page.getByLabel('File to send').setInputFiles({ name: 'big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(MAX_FILE_LENGTH + 1) });
    await page.getByRole('button', { name: 'Send file' }).click();
    await page.locator('#say-result', { hasText: 'too large' }).waitFor({ timeout: 5_000 });
    assert.match((await page.locator('#say-result').textContent()) ?? '', new RegExp(`at most .*\\(${MAX_FILE_LENGTH} bytes\\)`));
    assert.equal(((await view(page)).history['bob'] ?? []).length, rows, 'nothing queued');
  });

  test('contacts in the page: an unread count appears and clears; rename, block, unblock, remove, cancel an invite; a reload keeps each', async (t) => {
    const t0 = Date.now();
    // No conversation on screen: what carol sends stays unread (sent while the page does the rest).
    await page.getByLabel('Conversation with').selectOption('');
    const carolSends = bc(['client', 'send', 'alice', 'are you there?', '--dir', carol.dir]);

    // An invite made and cancelled: its code goes from the list.
    await page.getByLabel('Name for the new contact').fill('zed');
    await page.getByRole('button', { name: 'Make an invite code' }).click();
    await waitPage(page, 'an invite code for zed', (v) => v.invites.some((i) => i.name === 'zed' && i.code !== null), 60_000);
    await page.getByRole('button', { name: 'Cancel the invite for zed' }).click();
    await waitPage(page, 'the invite cancelled', (v) => v.invites.some((i) => i.name === 'zed' && i.code === null && ['aborting', 'failed'].includes(i.stage)), 20_000);

    // Rename dave, block, unblock and block him again through the Contact panel.
    await page.locator('#contacts').getByRole('button', { name: 'dave d.' }).click();
    await page.getByRole('button', { name: 'Contact', exact: true }).click();
    await page.getByLabel('Rename to').fill('dave');
    await page.getByRole('button', { name: 'Rename', exact: true }).click();
    await waitPage(page, 'dave renamed', (v) => v.contacts.some((c) => c.name === 'dave') && !v.contacts.some((c) => c.name === 'dave d.'), 10_000);
    assert.equal(await page.getByLabel('Conversation with').inputValue(), 'dave', 'the conversation follows the new name');
    assert.ok(((await view(page)).history['dave'] ?? []).some((h) => h.text === 'likewise'), 'the history kept under the new name');
    await page.getByRole('button', { name: 'Block dave' }).click();
    await waitPage(page, 'dave blocked', (v) => v.contacts.find((c) => c.name === 'dave')?.blocked === true, 10_000);
    assert.equal(await page.getByLabel('Your message').isDisabled(), true, 'no writing to a blocked contact');
    await page.getByRole('button', { name: 'Unblock dave' }).click();
    await waitPage(page, 'dave unblocked', (v) => v.contacts.find((c) => c.name === 'dave')?.blocked === false, 10_000);
    assert.equal(await page.getByLabel('Your message').isDisabled(), false);
    await page.getByRole('button', { name: 'Block dave' }).click();
    await waitPage(page, 'dave blocked again', (v) => v.contacts.find((c) => c.name === 'dave')?.blocked === true, 10_000);

    // Remove bob: Escape in the confirmation keeps him, its Remove button removes him.
    await page.locator('#contacts').getByRole('button', { name: 'bob' }).click();
    await page.getByRole('button', { name: 'Remove bob…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Remove bob?' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.ok((await view(page)).contacts.some((c) => c.name === 'bob'), 'Escape keeps the contact');
    await page.getByRole('button', { name: 'Remove bob…' }).click();
    await dialog.getByRole('button', { name: 'Remove bob' }).click();
    await waitPage(page, 'bob removed', (v) => !v.contacts.some((c) => c.name === 'bob'), 10_000);
    assert.equal(await page.getByLabel('Conversation with').inputValue(), '', 'no conversation on screen');

    await carolSends;
    await waitPage(page, 'an unread count for carol', (v) => v.contacts.find((c) => c.name === 'carol')?.unread === 1);
    assert.equal(await page.locator('#contacts').getByRole('button', { name: 'carol' }).locator('.unread').textContent(), '1');

    // A reload keeps the unread count, the new name, the block, the removal and the cancelled invite.
    await page.reload();
    const back = await waitPage(page, 'contacts after the reload', (v) => v.state === 'connected' && v.contacts.length > 0, 45_000);
    assert.deepEqual(back.contacts.map((c) => [c.name, c.unread, c.blocked]), [['carol', 1, false], ['dave', 0, true]]);
    assert.equal(back.invites.find((i) => i.name === 'zed')?.code ?? null, null, 'the cancelled code is not shown again');

    // Opening carol's conversation clears her count, in the worker's store (what it reports comes from there).
    await page.locator('#contacts').getByRole('button', { name: 'carol' }).click();
    await waitPage(page, "carol's count cleared", (v) => v.contacts.find((c) => c.name === 'carol')?.unread === 0, 10_000);
    assert.equal(await page.locator('#contacts .unread').count(), 0);
    t.diagnostic(`contact management with a reload: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  test(`a tab hidden for ${HIDDEN_MS / 1000} s keeps sending at the configured Poisson rate, counted at its gateway`, { skip: skipHidden ?? false }, async (t) => {
    // gateway-1 is to count this tab's packets alone: the headless page above leaves it.
    await browser?.close();
    browser = null;
    xvfb = await startXvfb();
    headful = await launchUserChromium(xvfb.display);
    const tab = headful.browser.contexts()[0]!.pages()[0]!;
    tab.on('pageerror', (e) => process.stderr.write(`page error (hidden tab): ${e.message}\n`));
    await tab.goto(`${web!.url}?gateway=gateway-1&name=hidden`);
    await waitPage(tab, 'the tab connected', (v) => v.state === 'connected', 60_000);
    await waitPage(tab, 'packets flowing', (v) => (v.status?.packetsSent.drop ?? 0) > 0, 30_000);
    // The control: a 100 ms interval in the page itself, which Chromium throttles once the tab is hidden.
    await tab.evaluate('globalThis.pageTicks = 0; setInterval(() => globalThis.pageTicks++, 100)');
    const restarts = async (): Promise<number> => {
      const r = (await view(tab)).status?.clockRestarts;
      return r === undefined ? 0 : r.send + r.loop;
    };
    const atGateway = async (): Promise<number> => readSample(await scrape(net!.network.server('gateway-1').opsUrl), 'backchannel_client_packets_in_total') ?? 0;

    await headful.openTab('about:blank');
    const hideBy = Date.now() + 10_000;
    while ((await tab.evaluate('document.visibilityState')) !== 'hidden') {
      if (Date.now() > hideBy) assert.fail('another tab in front did not hide the page');
      await sleep(100);
    }
    const r0 = await restarts();
    const ticks0 = (await tab.evaluate('globalThis.pageTicks')) as number;
    const g0 = await atGateway();
    const t0 = Date.now();
    // The measurement is the passing of time itself: the tab is left alone, hidden, for HIDDEN_MS.
    await sleep(HIDDEN_MS);
    const g1 = await atGateway();
    const t1 = Date.now();
    const ticks = ((await tab.evaluate('globalThis.pageTicks')) as number) - ticks0;
    const restarted = (await restarts()) - r0;
    assert.equal(await tab.evaluate('document.visibilityState'), 'hidden', 'still hidden');

    const seconds = (t1 - t0) / 1000;
    const expected = (PARAMS.sendRatePerS + PARAMS.loopRatePerS) * seconds;
    const counted = g1 - g0;
    t.diagnostic(`hidden ${seconds.toFixed(1)} s: ${counted} packets at the gateway (${(counted / seconds).toFixed(2)}/s; configured ${PARAMS.sendRatePerS + PARAMS.loopRatePerS}/s, expected ${expected.toFixed(0)} ± ${Math.sqrt(expected).toFixed(1)}); page timer ${(ticks / seconds).toFixed(2)}/s (10/s visible); clock restarts ${restarted}; load average ${loadavg()[0]!.toFixed(1)}`);
    // The control: the page's own 100 ms timer ran at most about once a second while hidden.
    assert.ok(ticks < 0.25 * (seconds * 10), `the page's own timer was not throttled (${ticks} ticks in ${seconds.toFixed(0)} s): the tab was not really hidden`);
    // The send and loop clocks are Poisson with rate 10/s, so the count over ~70 s (~120 s) is
    // Poisson with mean ~700 (~1,200) and standard deviation ~26 (~35). Accepting 5 standard
    // deviations either side (about ±19%, ±14%), a correct client fails with probability about
    // 6e-7 (two-sided normal tail at 5 sigma). A throttled clock (a page's timers: one wake-up a second, then one a minute after
    // 5 minutes) drops what is more than a second late and restarts: the restarts say so.
    const tolerance = 5 * Math.sqrt(expected);
    assert.ok(Math.abs(counted - expected) <= tolerance, `${counted} packets in ${seconds.toFixed(1)} s hidden, expected ${expected.toFixed(0)} ± ${tolerance.toFixed(0)}`);
    // The clocks' restarts (a clock more than a second behind, or more than 8 events due at once)
    // are reported, not judged: a hidden tab's renderer runs at a lower CPU priority, and on a
    // loaded machine its worker then stalls now and then (18 restarts in 2 minutes at a load
    // average of 40 here; docs/browser.md).
  });
});
