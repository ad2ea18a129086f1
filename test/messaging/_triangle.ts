// Three parties for introduction tests: a knows b (as bob) and c (as carol); b and c do not know each other.
import type { MessengerStore } from '../../src/messaging/index.js';
import { Net, type Party } from './_net.js';

/** a knows b as bob and c as carol; b and c do not know each other. */
export function triangle(makeStore?: (name: string) => MessengerStore): { net: Net; a: Party; b: Party; c: Party } {
  const net = new Net(makeStore);
  const a = net.party('a');
  const b = net.party('b');
  const c = net.party('c');
  net.introduce(a, 'alice', b, 'bob');
  net.introduce(a, 'alice', c, 'carol');
  net.settle();
  return { net, a, b, c };
}
