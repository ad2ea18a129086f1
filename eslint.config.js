import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The protocol libraries (STYLE.md, item 11). They run in a browser as well as on a server, so
 * they import no server, client, CLI or Node-only code. src/messaging does not exist yet; it is
 * listed so that it starts out under the rule.
 */
export const PROTOCOL_FOLDERS = ['crypto', 'aez', 'sphinx', 'noise', 'wire', 'pki', 'messaging'];

/**
 * What a protocol file may import from outside its own folder: other protocol folders, the pure
 * helpers in src/util and src/errors.ts. This is an allow-list rather than a list of the folders
 * to keep out (server, client, cli, local, authority, sim, node, mix, gateway, config, ops, ...)
 * so that a folder added later is kept out until someone decides it is portable.
 */
const PROTOCOL_MAY_IMPORT = { folders: [...PROTOCOL_FOLDERS, 'util'], files: ['errors.js'] };

/**
 * The Node-only files inside protocol folders (and the allowed src/util): native backends and the
 * entries that re-export them. They are exactly the protocol files that tsconfig.browser.json
 * does not type-check (test/layout.test.ts checks that the two lists agree). They may import
 * Node builtins and native packages; no portable file may import them.
 */
export const NODE_ONLY_FILES = [
  // The sodium-native / node:crypto backend, and the entry that exports it beside the portable one.
  'src/crypto/node.ts',
  'src/crypto/index.ts',
  // Noise primitives over sodium-native and node:crypto, and the entry whose createHandshake uses them.
  'src/noise/crypto-node.ts',
  'src/noise/index.ts',
  // Ed25519 over sodium-native, and the entry that exports it and the follower.
  'src/pki/ed25519-node.ts',
  'src/pki/index.ts',
  // Counts stale documents in a prom-client registry. It also imports the Clock and Logger
  // types from src/ops, which no protocol file should: a known exception until it moves out of pki.
  'src/pki/follower.ts',
  // better-sqlite3 and node:fs; src/util is otherwise pure helpers.
  'src/util/sqlite.ts',
];

/** Imports outside src/ that are Node-only: builtins, native add-ons, server-side packages. */
const NODE_PACKAGES = {
  regex: `^(?:node:|(?:${[...builtinModules, 'sodium-native', 'better-sqlite3', 'ws', 'prom-client'].join('|')})(?:/|$))`,
  message: 'protocol folders run in the browser too: no Node builtins, native add-ons or server packages (put Node-only code in a file listed in NODE_ONLY_FILES in eslint.config.js).',
};

const fail = (message) => {
  throw new Error(`eslint.config.js: ${message}`);
};
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The relative-import restrictions for a file at `depth` folders below src/ in protocol folder
 * `folder`. ESLint matches specifiers as written, so the patterns are built for each depth:
 * `'../'.repeat(depth)` is where a specifier reaches src/ itself.
 */
function relativePatterns(folder, depth, mayImport) {
  const up = escape('../'.repeat(depth));
  const allowed = [...mayImport.folders.map((f) => `${escape(f)}/`), ...mayImport.files.map((f) => `${escape(f)}$`)].join('|');
  const sameFolder = depth === 1 ? escape('./') : escape('../'.repeat(depth - 1));
  const nodeOnly = NODE_ONLY_FILES.map((p) => {
    const [, dir, base] = /^src\/([^/]+)\/([^/]+)\.ts$/.exec(p) ?? fail(`${p}: NODE_ONLY_FILES entries sit directly in a folder under src/`);
    const js = escape(`${base}.js`);
    return dir === folder ? `(?:${up}${escape(dir)}/|${sameFolder})${js}` : `${up}${escape(dir)}/${js}`;
  });
  return {
    outside: {
      regex: `^${up}(?!${allowed})`,
      message: `protocol folders import only ${mayImport.folders.join(', ')} and ${mayImport.files.join(', ')} from src/: no server, client, CLI or Node-only code.`,
    },
    nodeOnly: {
      regex: `^(?:${nodeOnly.join('|')})$`,
      message: 'this file is Node-only (NODE_ONLY_FILES in eslint.config.js); a portable protocol file must not import it.',
    },
  };
}

/** Deepest nesting below src/ that the rule is built for; protocol folders are flat today. */
const MAX_DEPTH = 4;

function protocolImportRules() {
  const configs = [];
  for (const folder of PROTOCOL_FOLDERS) {
    for (let depth = 1; depth <= MAX_DEPTH; depth++) {
      const { outside, nodeOnly } = relativePatterns(folder, depth, PROTOCOL_MAY_IMPORT);
      configs.push({
        files: [`src/${folder}/${'*/'.repeat(depth - 1)}*.ts`],
        ignores: NODE_ONLY_FILES,
        rules: { 'no-restricted-imports': ['error', { patterns: [outside, nodeOnly, NODE_PACKAGES] }] },
      });
    }
  }
  // The Node-only adapters may use Node, but are still held to the folder allow-list.
  for (const file of NODE_ONLY_FILES) {
    const [, folder] = /^src\/([^/]+)\//.exec(file);
    if (!PROTOCOL_FOLDERS.includes(folder)) continue;
    const mayImport = file === 'src/pki/follower.ts' ? { ...PROTOCOL_MAY_IMPORT, folders: [...PROTOCOL_MAY_IMPORT.folders, 'ops'] } : PROTOCOL_MAY_IMPORT;
    configs.push({ files: [file], rules: { 'no-restricted-imports': ['error', { patterns: [relativePatterns(folder, 1, mayImport).outside] }] } });
  }
  // A dynamic import would get round every pattern above; protocol code has no use for one.
  const dynamic = { selector: 'ImportExpression', message: 'protocol folders load no modules dynamically' };
  configs.push({ files: PROTOCOL_FOLDERS.map((f) => `src/${f}/**/*.ts`), rules: { 'no-restricted-syntax': ['error', dynamic] } });
  // Below MAX_DEPTH the patterns above do not apply; refuse such files rather than miss their imports.
  const tooDeep = { selector: 'Program', message: 'nested deeper than the protocol import rule in eslint.config.js handles (MAX_DEPTH)' };
  configs.push({
    files: PROTOCOL_FOLDERS.map((f) => `src/${f}/${'*/'.repeat(MAX_DEPTH)}**/*.ts`),
    rules: { 'no-restricted-syntax': ['error', dynamic, tooDeep] },
  });
  return configs;
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'backchannel-data/', 'backchannel-client/', 'sim-results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // Randomness comes from the crypto backend, never Math.random.
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'use the injected CSPRNG' }],
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
    },
  },
  ...protocolImportRules(),
  {
    // Plain JavaScript entry points run on Node.
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // The CLI, benchmarks and test runner print to the terminal on purpose.
    files: ['src/cli/**', 'bench/**', 'scripts/**', 'bin/**'],
    rules: { 'no-console': 'off' },
  },
);
