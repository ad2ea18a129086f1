/**
 * The load side of `npm run bench -- fetch`: a thread of its own that plays a client's fetches
 * and the deliveries from the last mix layer, as Poisson streams, and posts each to the gateway
 * side stamped with the time it was sent (performance.timeOrigin + performance.now(), one clock
 * across a process's threads). Between events it sleeps in Atomics.wait: no 1 ms timer ticks,
 * and nothing of its own work delays the gateway's thread.
 */
import { parentPort } from 'node:worker_threads';

/** One phase of load: Poisson fetches and deliveries for `durationMs`. */
export interface LoadPhase {
  readonly fetchRate: number;
  readonly deliveryRate: number;
  readonly durationMs: number;
  readonly seed: number;
}

/** What the load thread posts: a fetch, a delivery (to one of the other recipients), or the phase's end. */
export type LoadEvent = { readonly t: 'fetch'; readonly at: number } | { readonly t: 'delivery'; readonly at: number; readonly r: number } | { readonly t: 'end' };

const now = (): number => performance.timeOrigin + performance.now();

/** mulberry32: a small seeded generator, so that both paths of the benchmark see the same arrivals. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function run(phase: LoadPhase, post: (e: LoadEvent) => void): void {
  const random = prng(phase.seed);
  const gap = (rate: number): number => (rate > 0 ? (-Math.log(1 - random()) * 1000) / rate : Infinity);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const start = now();
  const end = start + phase.durationMs;
  let nextFetch = start + gap(phase.fetchRate);
  let nextDelivery = start + gap(phase.deliveryRate);
  for (;;) {
    const due = Math.min(nextFetch, nextDelivery);
    if (due >= end) break;
    const wait = due - now();
    if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
    if (nextFetch <= nextDelivery) {
      post({ t: 'fetch', at: now() });
      nextFetch += gap(phase.fetchRate);
    } else {
      post({ t: 'delivery', at: now(), r: Math.floor(random() * 1_000_000) });
      nextDelivery += gap(phase.deliveryRate);
    }
  }
  post({ t: 'end' });
}

if (parentPort !== null) {
  const port = parentPort;
  port.on('message', (phase: LoadPhase | 'stop') => {
    if (phase === 'stop') port.close();
    else run(phase, (e) => port.postMessage(e));
  });
}
