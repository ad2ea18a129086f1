/**
 * Simulator speed: simulated events per second (timer firings and link deliveries) for a network
 * of population clients through 3 layers of 10 mixes, with and without the sender-entropy
 * observer, for one Poisson mix, and for the bare event queue in the same run (the floor every
 * event pays), as a ratio.
 */
import { SimClock } from '../src/sim/clock.js';
import { parseScenario } from '../src/sim/scenario.js';
import { runScenario } from '../src/sim/simulation.js';
import { round } from './_timing.js';

async function clockOnly(events: number): Promise<number> {
  const clock = new SimClock(0);
  let left = events;
  const tick = (): void => {
    if (--left > 0) clock.at(clock.now() + 1, tick, undefined);
  };
  for (let i = 0; i < 64; i++) clock.at(i, tick, undefined);
  const t = performance.now();
  await clock.run(Number.MAX_SAFE_INTEGER);
  return clock.events / ((performance.now() - t) / 1000);
}

export async function benchSim(): Promise<Record<string, number>> {
  const network = (entropySamples: number) =>
    parseScenario({
      name: 'bench',
      seed: 'bench',
      warmup: 0,
      duration: 30,
      mu: 20,
      topology: { layers: 3, mixesPerLayer: 10, gateways: 10 },
      clients: { count: 2000, model: 'population', sendRate: 1, loopRate: 0.2, fetchRate: 0.2, messageRate: 0.05 },
      payloadBytes: 64,
      entropySamples,
    });
  const plain = await runScenario(network(0), 0);
  const observed = await runScenario(network(200), 0);
  const single = await runScenario(parseScenario({ kind: 'single-mix', seed: 'bench', timeUnitMs: 10_000, lambda: 100, mu: 1, warmup: 20, duration: 500 }), 0);
  const floor = await clockOnly(2_000_000);
  return {
    events_per_s: round(plain.eventsPerSecond, 0),
    events: plain.events,
    wall_s: round(plain.wallSeconds, 2),
    clients: 2000,
    simulated_s: plain.simulated,
    events_per_s_with_entropy: round(observed.eventsPerSecond, 0),
    single_mix_events_per_s: round(single.eventsPerSecond, 0),
    clock_only_events_per_s: round(floor, 0),
    clock_only_over_network: round(floor / plain.eventsPerSecond, 1),
  };
}
