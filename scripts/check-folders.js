#!/usr/bin/env node
// Fails when two or more top-level folders under src/ import each other, directly or round a
// longer loop (STYLE.md: "no two folders import each other"). A file directly under src/ (such
// as errors.ts) is a node of its own. Every relative import counts, `import type` included: a
// type-only loop still means neither folder can be understood, moved or published without the
// other.
//
//   node scripts/check-folders.js [SRC_DIR]     SRC_DIR defaults to the repository's src/
//
// Exit 0 with a one-line summary; exit 1 printing each cycle and the import behind each edge.
// Plain Node, no dependencies: it runs before anything is built.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Cycles printed per strongly connected component before the rest are only counted. */
const MAX_CYCLES_PER_COMPONENT = 20;

/** Words after which a `/` starts a regular expression rather than a division. */
const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);

/**
 * Splits TypeScript source into identifiers, string literals and punctuation, dropping comments,
 * template text and regular expressions, so that an import written inside a comment or a string
 * is not mistaken for one. Not a full lexer: enough to find import and export clauses.
 */
export function tokenize(src) {
  const tokens = [];
  // One entry per open `{`: 'code', or 'template' for the `${` that opened a substitution.
  const braces = [];
  let line = 1;
  let i = 0;
  const n = src.length;
  const push = (type, value) => tokens.push({ type, value, line });
  const prev = () => tokens[tokens.length - 1];

  // Reads template text from i (just after a backtick or a substitution's closing brace).
  const templateText = () => {
    while (i < n) {
      const c = src[i];
      if (c === '\\') {
        i += 2;
        continue;
      }
      if (c === '\n') line++;
      if (c === '`') {
        i++;
        push('template', '');
        return;
      }
      if (c === '$' && src[i + 1] === '{') {
        i += 2;
        braces.push('template');
        return;
      }
      i++;
    }
  };

  while (i < n) {
    const c = src[i];
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || c === '\ufeff') {
      i++;
    } else if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let k = i; k < stop; k++) if (src[k] === '\n') line++;
      i = stop;
    } else if (c === '"' || c === "'") {
      const startLine = line;
      let value = '';
      i++;
      while (i < n && src[i] !== c && src[i] !== '\n') {
        if (src[i] === '\\') {
          if (src[i + 1] === '\n') line++;
          value += src[i + 1] ?? '';
          i += 2;
        } else value += src[i++];
      }
      i++;
      tokens.push({ type: 'string', value, line: startLine });
    } else if (c === '`') {
      i++;
      templateText();
    } else if (c === '/') {
      const p = prev();
      const regex = p === undefined || (p.type === 'punct' && !')]}'.includes(p.value)) || (p.type === 'word' && REGEX_AFTER_WORD.has(p.value));
      if (!regex) {
        push('punct', '/');
        i++;
        continue;
      }
      let inClass = false;
      i++;
      while (i < n && src[i] !== '\n') {
        const r = src[i];
        if (r === '\\') i++;
        else if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        else if (r === '/' && !inClass) break;
        i++;
      }
      i++;
      while (i < n && /[A-Za-z]/.test(src[i])) i++;
      push('regex', '');
    } else if (/[A-Za-z_$#\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w$\u0080-\uffff]/.test(src[j])) j++;
      push('word', src.slice(i, j));
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w.]/.test(src[j])) j++;
      push('number', src.slice(i, j));
      i = j;
    } else if (c === '{') {
      braces.push('code');
      push('punct', c);
      i++;
    } else if (c === '}') {
      i++;
      if (braces.pop() === 'template') templateText();
      else push('punct', c);
    } else {
      push('punct', c);
      i++;
    }
  }
  return tokens;
}

/**
 * The module specifiers a file imports: static imports (type-only too), side-effect imports,
 * `export ... from` and `import('...')` with a literal argument. Each with its line.
 */
export function importsOf(src) {
  const t = tokenize(src);
  const found = [];
  const is = (k, type, value) => t[k] !== undefined && t[k].type === type && (value === undefined || t[k].value === value);
  for (let k = 0; k < t.length; k++) {
    if (t[k].type !== 'word' || is(k - 1, 'punct', '.')) continue;
    if (t[k].value === 'import') {
      if (is(k + 1, 'string')) {
        found.push({ specifier: t[k + 1].value, line: t[k].line });
      } else if (is(k + 1, 'punct', '(') && is(k + 2, 'string')) {
        found.push({ specifier: t[k + 2].value, line: t[k].line });
      } else if (!is(k + 1, 'punct', '.') && !is(k + 1, 'punct', '(')) {
        // import [type] default, { names } | * as ns from '...'
        for (let j = k + 1; j < t.length && !is(j, 'punct', ';') && !is(j, 'string'); j++) {
          if (is(j, 'word', 'from') && is(j + 1, 'string')) {
            found.push({ specifier: t[j + 1].value, line: t[k].line });
            break;
          }
        }
      }
    } else if (t[k].value === 'export') {
      // export [type] { names } from '...' | export [type] * [as ns] from '...'
      let j = k + 1;
      if (is(j, 'word', 'type')) j++;
      if (is(j, 'punct', '{')) {
        while (j < t.length && !is(j, 'punct', '}')) j++;
        j++;
      } else if (is(j, 'punct', '*')) {
        j++;
        if (is(j, 'word', 'as')) j += 2;
      } else continue;
      if (is(j, 'word', 'from') && is(j + 1, 'string')) found.push({ specifier: t[j + 1].value, line: t[k].line });
    }
  }
  return found;
}

function listTs(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTs(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/**
 * The graph node of a path inside srcDir: its top-level folder, or the file's own name (as .ts)
 * when it sits directly under srcDir. Null for a path outside srcDir.
 */
function nodeOf(srcDir, path) {
  const rel = relative(srcDir, path);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return null;
  const parts = rel.split(sep);
  if (parts.length > 1) return parts[0];
  return parts[0].replace(/\.(?:m|c)?jsx?$/, '.ts');
}

/**
 * Builds the graph between top-level nodes of srcDir. Each edge keeps every file-level import
 * that makes it, as `{ file, line, specifier }` with `file` relative to srcDir's parent.
 */
export function folderGraph(srcDir) {
  const root = resolve(srcDir);
  const base = dirname(root);
  const nodes = new Set();
  /** @type {Map<string, Map<string, {file: string, line: number, specifier: string}[]>>} */
  const edges = new Map();
  const files = listTs(root);
  for (const file of files) {
    const from = nodeOf(root, file);
    nodes.add(from);
    for (const { specifier, line } of importsOf(readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue;
      const to = nodeOf(root, resolve(dirname(file), specifier));
      if (to === null || to === from) continue;
      nodes.add(to);
      if (!edges.has(from)) edges.set(from, new Map());
      const out = edges.get(from);
      if (!out.has(to)) out.set(to, []);
      out.get(to).push({ file: relative(base, file).split(sep).join('/'), line, specifier });
    }
  }
  return { nodes: [...nodes].sort(), edges, files: files.length };
}

/** Tarjan's algorithm: the strongly connected components with more than one node, each sorted. */
export function stronglyConnected(nodes, edges) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of [...(edges.get(v)?.keys() ?? [])].sort()) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    }
    if (low.get(v) === index.get(v)) {
      const c = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) components.push(c.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) visit(v);
  return components.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/**
 * The elementary cycles inside one component, each as a node list starting at its smallest
 * node (so each is found once), at most `limit` of them; `more` counts any left out.
 */
export function cyclesIn(component, edges, limit = MAX_CYCLES_PER_COMPONENT) {
  const inside = new Set(component);
  const cycles = [];
  let more = 0;
  for (const start of component) {
    const path = [start];
    const onPath = new Set(path);
    const walk = (v) => {
      for (const w of [...(edges.get(v)?.keys() ?? [])].sort()) {
        if (!inside.has(w) || w < start) continue;
        if (w === start) {
          if (cycles.length < limit) cycles.push([...path]);
          else more++;
        } else if (!onPath.has(w)) {
          path.push(w);
          onPath.add(w);
          walk(w);
          onPath.delete(w);
          path.pop();
        }
      }
    };
    walk(start);
  }
  return { cycles, more };
}

/** Checks srcDir; returns the exit code and the lines to print. */
export function check(srcDir) {
  const { nodes, edges, files } = folderGraph(srcDir);
  const components = stronglyConnected(nodes, edges);
  const edgeCount = [...edges.values()].reduce((s, m) => s + m.size, 0);
  if (components.length === 0) {
    return { code: 0, lines: [`check-folders: no cycles between the ${nodes.length} top-level folders and files of ${files} files under ${srcDir} (${edgeCount} edges)`] };
  }
  const lines = [`check-folders: ${components.length} group(s) of top-level folders under ${srcDir} import each other; no two folders may:`];
  for (const c of components) {
    const { cycles, more } = cyclesIn(c, edges);
    lines.push('', `  {${c.join(', ')}}`);
    for (const cycle of cycles) {
      lines.push(`    ${[...cycle, cycle[0]].join(' -> ')}`);
      cycle.forEach((from, k) => {
        const to = cycle[(k + 1) % cycle.length];
        const via = edges.get(from).get(to);
        const first = via[0];
        const others = via.length > 1 ? ` (and ${via.length - 1} more import${via.length > 2 ? 's' : ''})` : '';
        lines.push(`      ${from} -> ${to}: ${first.file}:${first.line} imports '${first.specifier}'${others}`);
      });
    }
    if (more > 0) lines.push(`    ... and ${more} more cycle(s) in this group`);
  }
  return { code: 1, lines };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const srcDir = process.argv[2] ?? (relative(process.cwd(), resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src')) || '.');
  const { code, lines } = check(srcDir);
  (code === 0 ? console.log : console.error)(lines.join('\n'));
  process.exit(code);
}
