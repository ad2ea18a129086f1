/**
 * A virtual X display (Xvfb) and a headful Chromium on it: headless Chromium never hides a page
 * (its pages stay `visible` behind another tab and in a "minimised" window), so what Chromium does
 * to a hidden tab can only be seen with a real window. Debian's `xvfb` package; .ci/run installs it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from './chromium.js';

export const XVFB_PATH = process.env['XVFB'] ?? '/usr/bin/Xvfb';

/** Null when Xvfb can run here; else why not (the caller skips, saying it). */
export function xvfbMissing(): string | null {
  if (!existsSync(XVFB_PATH)) return `no Xvfb at ${XVFB_PATH} (apt-get install xvfb; .ci/run does it)`;
  if (!existsSync(CHROMIUM_PATH)) return `no Chromium at ${CHROMIUM_PATH}`;
  return null;
}

export interface Xvfb {
  /** The DISPLAY value, ":N". */
  readonly display: string;
  stop(): Promise<void>;
}

/** Starts Xvfb on a free display (it picks the number and writes it to us: -displayfd). */
export function startXvfb(timeoutMs = 15_000): Promise<Xvfb> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(XVFB_PATH, ['-displayfd', '1', '-screen', '0', '1280x900x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Xvfb did not start in ${timeoutMs} ms: ${err.slice(-500)}`));
    }, timeoutMs);
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /^(\d+)\n/.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      const stop = (): Promise<void> =>
        new Promise((r) => {
          if (child.exitCode !== null || child.signalCode !== null) return r();
          child.once('exit', () => r());
          child.kill('SIGTERM');
        });
      resolve({ display: `:${m[1]!}`, stop });
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Xvfb exited (${String(code)}): ${err.slice(-500)}`));
    });
  });
}

/**
 * A Chromium on `display` that treats hidden tabs as a user's browser does. playwright's own
 * launch cannot give that: its switches (--disable-background-timer-throttling,
 * --disable-renderer-backgrounding, --disable-backgrounding-occluded-windows) turn backgrounding
 * off, and on every page it makes it enables focus emulation, which keeps the page "visible"
 * whatever is in front of it. So Chromium is started here with the test flags only, a fresh
 * profile and a DevTools port, and playwright connects over CDP without its defaults; pages are
 * opened as tabs of the one window (`openTab`).
 */
export interface UserChromium {
  readonly browser: Browser;
  /** Opens a tab in front of the others in the window (as Ctrl+T does); the page behind is hidden. */
  openTab(url: string): Promise<void>;
  close(): Promise<void>;
}

export async function launchUserChromium(display: string, timeoutMs = 30_000): Promise<UserChromium> {
  const profile = mkdtempSync(join(tmpdir(), 'backchannel-chromium-'));
  const child = spawn(CHROMIUM_PATH, [...CHROMIUM_FLAGS, '--remote-debugging-port=0', `--user-data-dir=${profile}`, '--window-size=1000,800', 'about:blank'], {
    env: { ...process.env, DISPLAY: display },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`Chromium gave no DevTools endpoint in ${timeoutMs} ms: ${err.slice(-500)}`)), timeoutMs);
      child.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`Chromium exited (${String(code)}): ${err.slice(-500)}`));
      });
    });
    // noDefaults: no focus emulation on the default context's pages (not in the typed options).
    const options = { timeout: timeoutMs, noDefaults: true };
    const browser = await chromium.connectOverCDP(endpoint, options);
    const openTab = async (url: string): Promise<void> => {
      const cdp = await browser.newBrowserCDPSession();
      await cdp.send('Target.createTarget', { url, newWindow: false, background: false });
      await cdp.detach();
    };
    return {
      browser,
      openTab,
      close: async () => {
        await browser.close().catch(() => undefined);
        await stop();
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
