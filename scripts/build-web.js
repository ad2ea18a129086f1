#!/usr/bin/env node
// Bundles the browser client (web/) into dist/web with esbuild: the page script, the worker that
// runs the client engine, and the static files. Part of `npm run build`; takes well under a
// second. Type-checking is tsc's job (tsconfig.web.json), not esbuild's.
import { copyFileSync, mkdirSync } from 'node:fs';
import { build } from 'esbuild';

const out = 'dist/web';
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { main: 'web/main.ts', worker: 'web/worker.ts' },
  outdir: out,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const f of ['index.html', 'style.css']) copyFileSync(`web/${f}`, `${out}/${f}`);
