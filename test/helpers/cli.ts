/** Runs the built `backchannel` command as a user would, for the CLI tests. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const BIN = fileURLToPath(new URL('../../../bin/backchannel.js', import.meta.url));
const run = promisify(execFile);

/**
 * Runs `backchannel ...args`; never throws for a non-zero exit, which `code` reports. A run past
 * `timeoutMs` (default 20 s) is killed with SIGKILL: the server commands take SIGTERM as a request
 * to stop cleanly, which one stuck in its start would never act on.
 */
export async function cli(args: string[], opts: { timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { timeout: opts.timeoutMs ?? 20_000, killSignal: 'SIGKILL' });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
