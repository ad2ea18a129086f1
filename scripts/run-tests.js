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
const r = spawnSync(process.execPath, [...flags, '--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
