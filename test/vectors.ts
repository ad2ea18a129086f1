/**
 * Locates ../shared/vectors from the repository root. When the files are missing the tests fail
 * under CI=true and skip (loudly) elsewhere.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('vectors: cannot find the repository root');
    dir = up;
  }
}

/** Absolute path of ../shared/vectors beside the repository. */
export const VECTORS_DIR = resolve(repoRoot(), '..', 'shared', 'vectors');

/**
 * Reads a vector file (path relative to the vectors folder) as JSON, or returns undefined with a
 * skip reason when it is missing outside CI. Under CI=true a missing file throws.
 */
export function loadVectors<T>(relPath: string): { data: T } | { skip: string } {
  const p = join(VECTORS_DIR, relPath);
  if (!existsSync(p)) {
    if (process.env['CI'] === 'true') throw new Error(`vectors: ${relPath} is missing under ${VECTORS_DIR} (CI=true)`);
    return { skip: `vector file ${relPath} not found under ${VECTORS_DIR}` };
  }
  return { data: JSON.parse(readFileSync(p, 'utf8')) as T };
}
