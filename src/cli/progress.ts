/**
 * A progress bar for long CLI runs (simulations, benchmarks), on stderr by default so that it
 * never mixes with the results on stdout.
 */
import { performance } from 'node:perf_hooks';

export interface Progress {
  /** Reports `done` units finished so far (of `total`); drawn only when the throttle allows. */
  update(done: number, detail?: string): void;
  /** Draws the final state and ends the line. Later calls do nothing. */
  finish(detail?: string): void;
}

/** The least time between redraws on a terminal, and between plain lines elsewhere (ms). */
const TTY_INTERVAL_MS = 100;
const PLAIN_INTERVAL_MS = 5000;
const BAR_WIDTH = 20;

/** Seconds as m:ss, or h:mm:ss from one hour. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/**
 * A progress bar on a stream (default process.stderr) for a job of `total` units. On a TTY, one
 * line redrawn in place ("\r\x1b[K") at most every 100 ms, the first update at once:
 * `label [#####.....]  42%  detail  eta 0:12`. Not on a TTY, a plain line at most every 5 s
 * (the first 5 s after the start) and one at finish. `quiet` prints nothing. finish() ends the
 * line, showing the elapsed time instead of the ETA. The ETA is the elapsed time (from `now`,
 * default performance.now(), in ms) scaled by the fraction left over the fraction done.
 */
export function progressBar(options: {
  label: string;
  total: number;
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  quiet?: boolean;
  now?: () => number;
}): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? (() => performance.now());
  const quiet = options.quiet === true;
  const tty = stream.isTTY === true;
  const start = now();
  let last = tty ? -Infinity : start;
  let done = 0;
  let finished = false;

  const line = (detail: string | undefined, final: boolean): string => {
    const total = options.total;
    const frac = total > 0 ? Math.min(1, Math.max(0, (Number.isNaN(done) ? 0 : done) / total)) || 0 : final ? 1 : 0;
    const filled = Math.floor(frac * BAR_WIDTH);
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    const elapsed = (now() - start) / 1000;
    const time = final ? `time ${clock(elapsed)}` : frac > 0 ? `eta ${clock((elapsed * (1 - frac)) / frac)}` : 'eta --:--';
    const parts = [`${options.label} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${pct}`];
    if (detail !== undefined && detail !== '') parts.push(detail);
    parts.push(time);
    const text = parts.join('  ');
    // Redrawing in place works only while the line does not wrap.
    const columns = (stream as { columns?: unknown }).columns;
    return tty && typeof columns === 'number' && columns > 1 && text.length >= columns ? text.slice(0, columns - 1) : text;
  };

  return {
    update(d: number, detail?: string): void {
      if (quiet || finished) return;
      done = d;
      const t = now();
      if (t - last < (tty ? TTY_INTERVAL_MS : PLAIN_INTERVAL_MS)) return;
      last = t;
      stream.write(tty ? `\r\x1b[K${line(detail, false)}` : `${line(detail, false)}\n`);
    },
    finish(detail?: string): void {
      if (quiet || finished) return;
      finished = true;
      stream.write(`${tty ? '\r\x1b[K' : ''}${line(detail, true)}\n`);
    },
  };
}
