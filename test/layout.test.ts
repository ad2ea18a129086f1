// The folder layout (STYLE.md, item 11). No two top-level folders under src/ import each other:
// scripts/check-folders.js does the work; `npm run lint` runs it too, and this file puts it in
// `npm test`, which is all CI runs. The fixtures below prove the script finds what it should.
// Protocol folders import no Node-only code: eslint.config.js says so, and its list of exempt
// Node-only files is checked here against what tsconfig.browser.json type-checks.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// This file runs as dist/test/layout.test.js; the scripts and configs are not compiled.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'check-folders.js');

function checkFolders(srcDir?: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, srcDir === undefined ? [SCRIPT] : [SCRIPT, srcDir], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('the top-level folders under src/ import each other in no cycle', () => {
  const { status, out } = checkFolders();
  assert.equal(status, 0, out);
  assert.match(out, /^check-folders: no cycles/);
});

describe('check-folders on fixture trees', () => {
  const root = mkdtempSync(join(tmpdir(), 'backchannel-layout-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  /** Writes `files` (paths relative to a fresh src/) and returns that src/. */
  function tree(name: string, files: Record<string, string>): string {
    const src = join(root, name, 'src');
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(src, path)), { recursive: true });
      writeFileSync(join(src, path), text);
    }
    return src;
  }

  test('a loop through three folders is reported with the import behind each edge', () => {
    const src = tree('three', {
      'a/x.ts': "import type { Y } from '../b/y.js';\nexport type X = Y;\n",
      'b/y.ts': "// a re-export is an edge too\nexport { z as y } from '../c/deep/z.js';\nexport type Y = number;\n",
      'c/deep/z.ts': "export const z = 1;\nexport async function load(): Promise<unknown> {\n  return import('../../a/x.js');\n}\n",
      'd/w.ts': "import '../a/x.js';\n",
    });
    const { status, out } = checkFolders(src);
    assert.equal(status, 1, out);
    assert.match(out, /\{a, b, c\}/);
    assert.match(out, /a -> b -> c -> a/);
    assert.match(out, /a -> b: src\/a\/x\.ts:1 imports '\.\.\/b\/y\.js'/);
    assert.match(out, /b -> c: src\/b\/y\.ts:2 imports '\.\.\/c\/deep\/z\.js'/);
    assert.match(out, /c -> a: src\/c\/deep\/z\.ts:3 imports '\.\.\/\.\.\/a\/x\.js'/);
    // d only imports into the loop; it is not part of it.
    assert.doesNotMatch(out, /\bd -> /);
  });

  test('a file directly under src/ is a node of its own', () => {
    const src = tree('file-node', {
      'errors.ts': "import { limit } from './a/limits.js';\nexport const E = limit;\n",
      'a/limits.ts': "import { E } from '../errors.js';\nexport const limit = 1;\nexport const again = E;\n",
    });
    const { status, out } = checkFolders(src);
    assert.equal(status, 1, out);
    assert.match(out, /a -> errors\.ts -> a/);
  });

  test('imports written in comments, strings and templates do not count, and an acyclic tree passes', () => {
    const src = tree('clean', {
      'errors.ts': 'export const E = 1;\n',
      'a/x.ts': [
        "import { E } from '../errors.js';",
        "import { y } from '../b/y.js';",
        "// import { x } from '../a/x.js' in b would be a cycle",
        'export const x = E + y;',
      ].join('\n'),
      'b/y.ts': [
        "/* import { x } from '../a/x.js'; */",
        "export const hint = \"import { x } from '../a/x.js'\";",
        "export const t = `${hint} import('../a/x.js')`;",
        "export const re = /from '..\\/a\\/x.js'/;",
        'export const y = 2;',
      ].join('\n'),
    });
    const { status, out } = checkFolders(src);
    assert.equal(status, 0, out);
    assert.match(out, /^check-folders: no cycles between the 3 top-level folders and files of 3 files/);
  });
});

test('the Node-only files exempt from the protocol import rule are exactly the protocol files the browser build does not type-check', async () => {
  const config = (await import(pathToFileURL(join(ROOT, 'eslint.config.js')).href)) as { PROTOCOL_FOLDERS: string[]; NODE_ONLY_FILES: string[] };
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.browser.json'), '--listFilesOnly'], { encoding: 'utf8' });
  assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  // Every file tsc reaches from the browser roots, imported ones included, is browser-checked.
  const browser = new Set(
    tsc.stdout
      .split('\n')
      .map((p) => relative(ROOT, p.trim()).split(sep).join('/'))
      .filter((p) => p.startsWith('src/')),
  );
  const protocolFiles = config.PROTOCOL_FOLDERS.filter((f) => existsSync(join(ROOT, 'src', f))).flatMap((f) =>
    readdirSync(join(ROOT, 'src', f), { recursive: true, encoding: 'utf8' })
      .filter((p) => p.endsWith('.ts'))
      .map((p) => `src/${f}/${p.split(sep).join('/')}`),
  );
  assert.ok(protocolFiles.length > 0);
  const exempt = new Set(config.NODE_ONLY_FILES);
  for (const file of config.NODE_ONLY_FILES) {
    assert.ok(existsSync(join(ROOT, file)), `${file} is listed in NODE_ONLY_FILES but does not exist`);
    assert.ok(!browser.has(file), `${file} is listed in NODE_ONLY_FILES but tsconfig.browser.json type-checks it`);
  }
  for (const file of protocolFiles) {
    assert.ok(exempt.has(file) || browser.has(file), `${file} is neither type-checked by tsconfig.browser.json nor listed in NODE_ONLY_FILES in eslint.config.js`);
  }
});
