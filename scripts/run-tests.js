#!/usr/bin/env node
// Runs every compiled test file under dist/test with node:test. Node 20 has no glob support in
// `node --test`, so the files are listed here. Extra arguments filter by path substring.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = 'dist/test';
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js') && (filters.length === 0 || filters.some((f) => p.includes(f)))) files.push(p);
  }
})(root);
if (files.length === 0) {
  console.error(`run-tests: no test files under ${root}${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
  process.exit(1);
}
// Node 20 keeps the WHATWG WebSocket (the browser's API, used by the portable link) behind a flag.
const flags = typeof globalThis.WebSocket === 'undefined' ? ['--experimental-websocket'] : [];

// Two passes. First the folders whose tests are computation only (no sockets, no processes, no
// timers of the real clock: vectors, properties, the simulator in virtual time), two files at a
// time, one per core. Then everything else one file at a time, as before: those start networks,
// processes and browsers, and measure rates and timings that a second file beside them would
// disturb. node:test's default is one file at a time on this 2-core machine.
const PARALLEL = ['aez', 'crypto', 'messaging', 'noise', 'observe', 'pki', 'sim', 'sphinx', 'util', 'wire'].map((d) => join(root, d) + '/');
const parallel = files.filter((f) => PARALLEL.some((d) => f.startsWith(d)));
const serial = files.filter((f) => !parallel.includes(f));
let status = 0;
for (const [batch, concurrency] of [[parallel, 2], [serial, 1]]) {
  if (batch.length === 0) continue;
  const r = spawnSync(process.execPath, [...flags, '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...batch], { stdio: 'inherit' });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
