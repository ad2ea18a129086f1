/**
 * Timing helpers for benchmarks: warm up, then time batches and report the median per-operation
 * time, which is robust to the noise of a shared machine. Figures are printed, never asserted.
 */

export interface Timing {
  /** Median microseconds per operation over the batches. */
  us: number;
  /**
   * Median process CPU microseconds (user + system, every thread) per operation over the
   * batches: on a shared machine, unlike wall time, it does not count the time others ran.
   */
  cpuUs: number;
  /** Fastest batch, microseconds per operation. */
  minUs: number;
  ops: number;
}

/** Times `fn` in `batches` batches that each last about `batchMs` milliseconds. */
export function measure(fn: () => void, opts: { batchMs?: number; batches?: number } = {}): Timing {
  const batchMs = opts.batchMs ?? 100;
  const batches = opts.batches ?? 7;
  // Warm up and calibrate: how many calls fill one batch.
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    const dt = performance.now() - t0;
    if (dt >= batchMs / 4) {
      n = Math.max(1, Math.round((n * batchMs) / dt));
      break;
    }
    n *= 2;
  }
  const per: number[] = [];
  const cpu: number[] = [];
  for (let b = 0; b < batches; b++) timeBatch(fn, n, per, cpu);
  return summarise(per, cpu, n * batches);
}

/** Runs `fn` `n` times; appends the wall and process-CPU microseconds per call. */
function timeBatch(fn: () => void, n: number, per: number[], cpu: number[]): void {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  per.push(((performance.now() - t0) * 1000) / n);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / n);
}

/** Medians (and the fastest batch) of per-call times. */
function summarise(per: number[], cpu: number[], ops: number): Timing {
  per.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  return { us: per[Math.floor(per.length / 2)]!, cpuUs: cpu[Math.floor(cpu.length / 2)]!, minUs: per[0]!, ops };
}

/**
 * Times `a` and `b` in alternating batches (a, b, a, b, ...) and reports each one's median: on a
 * machine shared with other work, load that comes and goes falls on both alike, so the ratio of
 * the two holds better than with one measured after the other. Wall time, as `measure`: the
 * process's CPU time would leave out waits for a CPU, but would count the garbage collector's
 * helper threads, which penalises whichever of the two allocates more.
 */
export function measurePair(a: () => void, b: () => void, opts: { batchMs?: number; batches?: number } = {}): [Timing, Timing] {
  const batchMs = opts.batchMs ?? 100;
  const batches = opts.batches ?? 15;
  const calibrate = (fn: () => void): number => {
    let n = 1;
    for (;;) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) fn();
      const dt = performance.now() - t0;
      if (dt >= batchMs / 4) return Math.max(1, Math.round((n * batchMs) / dt));
      n *= 2;
    }
  };
  const na = calibrate(a);
  const nb = calibrate(b);
  const pa: number[] = [];
  const pb: number[] = [];
  const ca: number[] = [];
  const cb: number[] = [];
  for (let k = 0; k < batches; k++) {
    timeBatch(a, na, pa, ca);
    timeBatch(b, nb, pb, cb);
  }
  return [summarise(pa, ca, na * batches), summarise(pb, cb, nb * batches)];
}

/** The p-th percentile (0-100) of ascending `sorted`, nearest rank; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Rounds for printing. */
export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Prints a two-column table of figures. */
export function printTable(title: string, rows: [string, string | number][]): void {
  const w = Math.max(...rows.map(([k]) => k.length));
  console.log(title);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
}
