/**
 * Headless Chromium for the browser tests: Debian's /usr/bin/chromium (or $CHROMIUM) driven by
 * playwright-core, which downloads no browser. A fresh, empty profile per launch (playwright's
 * launch makes one), and the flags this machine's closed network needs: without
 * --disable-background-networking and friends, Chromium's own connections are refused and slow it.
 */
import { existsSync } from 'node:fs';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env['CHROMIUM'] ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Null when there is no Chromium here (the caller skips, saying why). */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM_PATH) ? null : `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium; .ci/run does it)`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS, timeout: 30_000 });
}

/** Bundles the TypeScript entry `entry` (a page script) into `outfile` for the browser. */
export async function bundle(entry: string, outfile: string): Promise<void> {
  await build({ entryPoints: [entry], outfile, bundle: true, format: 'esm', target: 'es2022', platform: 'browser', logLevel: 'silent' });
}
