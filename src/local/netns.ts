/**
 * Hosts on one machine: each a Linux network namespace with its own address, all joined by one
 * bridge in the root namespace (through a veth pair each), so that servers run "on different
 * hosts" with their own addresses, links that can be cut, and packet loss on those links. The
 * root namespace holds an address on the bridge too: processes there (clients, the test) reach
 * every host.
 *
 *   root ns:  <prefix>-br (10.213.0.254/24) ── <prefix>-v1 ... <prefix>-vN
 *   host i:   namespace <prefix>-h<i>, eth0 = 10.213.0.<i>/24 (peer of <prefix>-v<i>), lo up
 *
 * Everything made carries the prefix, and `removeHosts(prefix)` deletes whatever carries it:
 * processes left in the namespaces (by pid, from `ip netns pids`), the namespaces, the veth ends
 * and the bridge. `createHosts` runs it first, so a run that crashed is cleaned up by the next one.
 *
 * Faults:
 * - partition: the host's veth end in the root namespace goes down, so the host reaches nothing
 *   and nothing reaches it; heal brings it back up.
 * - loss: with sch_netem, netem's loss; without it (some kernels, e.g. this project's CI machine,
 *   lack it), an htb qdisc on both ends of the host's link whose u32 filter sends a share of TCP
 *   packets to a class with a zero-length pfifo, which drops them. The filter matches the low 4
 *   bits of the TCP timestamp (TSval, in ms, at byte 47 of a packet with a 20-byte IP header and
 *   Linux's NOP-NOP-timestamp option block), so k/16 of the milliseconds lose every TCP packet
 *   sent in them: bursty, not independent, loss, and only on TCP (all this project's links).
 * - delay: only with sch_netem. Nothing else in tc adds a fixed delay (tbf and htb add queueing
 *   delay only once a rate is exceeded), so without netem `delaySupport` is null and the reason.
 *
 * Needs root (CAP_NET_ADMIN) and the `ip` and `tc` commands (iproute2). `probeHosts` says whether
 * namespaces can be made here, and why not.
 */
import { execFileSync } from 'node:child_process';
import { BackchannelError } from '../errors.js';

/** The prefix every name made here starts with, unless another is given. */
export const DEFAULT_NETNS_PREFIX = 'bcn';
/** The first three octets of the hosts' /24; the root namespace takes .254, host i takes .i. */
export const DEFAULT_NETNS_SUBNET = '10.213.0';
/** Host numbers 1..253 (.254 is the root namespace's address on the bridge). */
export const MAX_HOSTS = 253;
/** Loss is set in sixteenths (the u32 filter matches 4 bits of the TCP timestamp). */
export const LOSS_STEPS = 16;
/** A bound on every `ip`/`tc` command: none should take more than moments. */
const COMMAND_TIMEOUT_MS = 10_000;
/** The prefix must fit interface names (15 bytes): "<prefix>-v253". */
const PREFIX_PATTERN = /^[a-z][a-z0-9]{0,7}$/;

export interface NetnsHost {
  /** 1-based. */
  readonly index: number;
  readonly namespace: string;
  readonly address: string;
  /** The veth end in the root namespace, on the bridge. */
  readonly rootLink: string;
}

export interface HostsOptions {
  readonly prefix?: string;
  readonly subnet?: string;
}

/** Runs a command; returns its stdout, or throws with its stderr. */
function run(file: string, args: readonly string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: COMMAND_TIMEOUT_MS });
  } catch (e) {
    const err = e as { stderr?: unknown; message?: string };
    const detail = typeof err.stderr === 'string' && err.stderr.trim() !== '' ? err.stderr.trim().split('\n')[0] : (err.message ?? 'failed');
    throw new BackchannelError('ERR_SERVER', `netns: ${file} ${args.join(' ')}: ${detail}`, { cause: e });
  }
}

/** Runs a command and ignores its failure (removal of what may not exist). */
function tryRun(file: string, args: readonly string[]): boolean {
  try {
    run(file, args);
    return true;
  } catch {
    return false;
  }
}

function checkPrefix(prefix: string): string {
  if (!PREFIX_PATTERN.test(prefix)) throw new RangeError(`netns: prefix must be 1-8 lower-case letters and digits, starting with a letter (got ${JSON.stringify(prefix)})`);
  return prefix;
}

/**
 * Deletes everything named with `prefix`: kills (SIGKILL, by pid) the processes still in its
 * namespaces, deletes the namespaces, then the links (veth ends and the bridge). Idempotent; safe
 * when nothing exists or `ip` is missing. Returns how many namespaces and links it deleted.
 */
export function removeHosts(prefix = DEFAULT_NETNS_PREFIX): { namespaces: number; links: number } {
  checkPrefix(prefix);
  let namespaces = 0;
  let links = 0;
  let list = '';
  try {
    list = run('ip', ['netns', 'list']);
  } catch {
    return { namespaces, links };
  }
  const mine = list
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-h`));
  for (const ns of mine) {
    let pids: number[] = [];
    try {
      pids = run('ip', ['netns', 'pids', ns])
        .split(/\s+/)
        .filter((p) => /^\d+$/.test(p))
        .map(Number);
    } catch {
      // none, or the namespace is half gone
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (tryRun('ip', ['netns', 'del', ns])) namespaces++;
  }
  let linkList = '';
  try {
    linkList = run('ip', ['-o', 'link', 'show']);
  } catch {
    return { namespaces, links };
  }
  const names = linkList
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n.startsWith(`${prefix}-`));
  // The veth ends first (deleting one end deletes its peer), the bridge last.
  names.sort((a, b) => (a.endsWith('-br') ? 1 : 0) - (b.endsWith('-br') ? 1 : 0));
  for (const name of names) if (tryRun('ip', ['link', 'del', name])) links++;
  return { namespaces, links };
}

/**
 * Whether hosts can be made here: null when they can, else why not (not Linux, not root, no
 * `ip`, or the kernel refuses namespaces, veth pairs or bridges). Makes and removes one host, named
 * and addressed (10.214.x.0/24) after this process, so that two processes may probe at once.
 */
export function probeHosts(prefix = `bcnp${process.pid % 10_000}`): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'network namespaces need root (CAP_NET_ADMIN); run as root';
  try {
    run('ip', ['-V']);
  } catch {
    return 'the `ip` command (iproute2) is missing';
  }
  try {
    run('tc', ['-V']);
  } catch {
    return 'the `tc` command (iproute2) is missing';
  }
  try {
    const h = HostNetwork.create(1, { prefix, subnet: `10.214.${process.pid % 250}` });
    h.destroy();
    return null;
  } catch (e) {
    removeHosts(prefix);
    return `the kernel refused: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** What the kernel offers for loss and delay, found once per set of hosts. */
interface Shaping {
  readonly netem: boolean;
  /** htb + u32 + pfifo: loss without netem. */
  readonly u32Loss: boolean;
}

/** A set of hosts made by `create`; `destroy` removes them (also on exit, SIGINT and SIGTERM, once `removeOnExit` is called). */
export class HostNetwork {
  readonly prefix: string;
  readonly subnet: string;
  readonly hosts: readonly NetnsHost[];
  readonly bridge: string;
  /** The root namespace's address on the bridge. */
  readonly rootAddress: string;
  readonly #partitioned = new Set<number>();
  /** Loss in sixteenths (or netem percent) per host index. */
  readonly #loss = new Map<number, number>();
  readonly #delay = new Map<number, number>();
  #shaping: Shaping | null = null;
  /** Drops counted by qdiscs since removed. */
  #droppedBefore = 0;
  #destroyed = false;
  #exitHooks: (() => void) | null = null;
  #signalHooks: [NodeJS.Signals, () => void][] = [];

  private constructor(prefix: string, subnet: string, hosts: NetnsHost[]) {
    this.prefix = prefix;
    this.subnet = subnet;
    this.hosts = hosts;
    this.bridge = `${prefix}-br`;
    this.rootAddress = `${subnet}.254`;
  }

  /**
   * Makes `count` hosts, after removing whatever an earlier run left with the same prefix.
   * Whatever this makes is removed again when it fails halfway.
   * @throws {BackchannelError} ERR_SERVER naming the command the kernel refused.
   */
  static create(count: number, opts: HostsOptions = {}): HostNetwork {
    const prefix = checkPrefix(opts.prefix ?? DEFAULT_NETNS_PREFIX);
    const subnet = opts.subnet ?? DEFAULT_NETNS_SUBNET;
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(subnet)) throw new RangeError(`netns: subnet must be three octets, e.g. ${DEFAULT_NETNS_SUBNET}`);
    if (!Number.isInteger(count) || count < 1 || count > MAX_HOSTS) throw new RangeError(`netns: 1 to ${MAX_HOSTS} hosts`);
    removeHosts(prefix);
    const hosts: NetnsHost[] = [];
    for (let i = 1; i <= count; i++) hosts.push({ index: i, namespace: `${prefix}-h${i}`, address: `${subnet}.${i}`, rootLink: `${prefix}-v${i}` });
    const net = new HostNetwork(prefix, subnet, hosts);
    try {
      run('ip', ['link', 'add', net.bridge, 'type', 'bridge']);
      run('ip', ['addr', 'add', `${net.rootAddress}/24`, 'dev', net.bridge]);
      run('ip', ['link', 'set', net.bridge, 'up']);
      for (const h of hosts) {
        const peer = `${prefix}-p${h.index}`;
        run('ip', ['netns', 'add', h.namespace]);
        run('ip', ['link', 'add', h.rootLink, 'type', 'veth', 'peer', 'name', peer]);
        run('ip', ['link', 'set', peer, 'netns', h.namespace]);
        run('ip', ['link', 'set', h.rootLink, 'master', net.bridge]);
        run('ip', ['link', 'set', h.rootLink, 'up']);
        const inNs = ['netns', 'exec', h.namespace, 'ip'];
        run('ip', [...inNs, 'link', 'set', peer, 'name', 'eth0']);
        run('ip', [...inNs, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
        run('ip', [...inNs, 'link', 'set', 'eth0', 'up']);
        run('ip', [...inNs, 'link', 'set', 'lo', 'up']);
      }
    } catch (e) {
      removeHosts(prefix);
      throw e;
    }
    return net;
  }

  host(index: number): NetnsHost {
    const h = this.hosts[index - 1];
    if (h === undefined) throw new RangeError(`netns: no host ${index}`);
    return h;
  }

  /** The command prefix that runs a program inside host `index` (`ip netns exec` execs it: the pid is the program's). */
  execPrefix(index: number): string[] {
    return ['ip', 'netns', 'exec', this.host(index).namespace];
  }

  /** Cuts host `index` off: its link goes down. */
  partition(index: number): void {
    run('ip', ['link', 'set', this.host(index).rootLink, 'down']);
    this.#partitioned.add(index);
  }

  /** Undoes `partition`. */
  heal(index: number): void {
    run('ip', ['link', 'set', this.host(index).rootLink, 'up']);
    this.#partitioned.delete(index);
  }

  partitioned(index: number): boolean {
    return this.#partitioned.has(index);
  }

  #probeShaping(): Shaping {
    if (this.#shaping !== null) return this.#shaping;
    const dev = this.host(1).rootLink;
    const netem = tryRun('tc', ['qdisc', 'replace', 'dev', dev, 'root', 'netem', 'delay', '0ms']);
    if (netem) tryRun('tc', ['qdisc', 'del', 'dev', dev, 'root']);
    let u32Loss = false;
    if (!netem) {
      u32Loss = tryRun('tc', ['qdisc', 'replace', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1']) && tryRun('tc', ['filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'u8', '6', '0xff', 'at', '9', 'classid', '1:2']);
      tryRun('tc', ['qdisc', 'del', 'dev', dev, 'root']);
    }
    this.#shaping = { netem, u32Loss };
    return this.#shaping;
  }

  /** How loss is made here ('netem' or 'u32', see the file's comment), or null when it cannot be. */
  get lossSupport(): 'netem' | 'u32' | null {
    const s = this.#probeShaping();
    return s.netem ? 'netem' : s.u32Loss ? 'u32' : null;
  }

  /** Null when delay can be added (netem), else why not. */
  get delayUnsupported(): string | null {
    return this.#probeShaping().netem ? null : 'this kernel has no sch_netem, and no other qdisc it has adds a fixed delay';
  }

  /** Both ends of host `index`'s link: [namespace or null for the root, device]. */
  #ends(index: number): [string | null, string][] {
    const h = this.host(index);
    return [
      [null, h.rootLink],
      [h.namespace, 'eth0'],
    ];
  }

  #tc(ns: string | null, args: readonly string[]): void {
    if (ns === null) run('tc', args);
    else run('ip', ['netns', 'exec', ns, 'tc', ...args]);
  }

  #tryTc(ns: string | null, args: readonly string[]): void {
    try {
      this.#tc(ns, args);
    } catch {
      // nothing to remove
    }
  }

  /** Applies this host's loss and delay to both ends of its link, replacing what was there. */
  #applyShaping(index: number): void {
    const loss = this.#loss.get(index) ?? 0;
    const delay = this.#delay.get(index) ?? 0;
    const s = this.#probeShaping();
    this.#droppedBefore += this.#droppedNow(index);
    for (const [ns, dev] of this.#ends(index)) {
      this.#tryTc(ns, ['qdisc', 'del', 'dev', dev, 'root']);
      if (loss === 0 && delay === 0) continue;
      if (s.netem) {
        // Delay on both ends: the round trip gains twice `delay`; loss likewise on each way.
        this.#tc(ns, ['qdisc', 'add', 'dev', dev, 'root', 'netem', 'delay', `${delay}ms`, 'loss', `${((loss / LOSS_STEPS) * 100).toFixed(2)}%`]);
        continue;
      }
      this.#tc(ns, ['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1', 'r2q', '100000']);
      this.#tc(ns, ['class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '10gbit']);
      this.#tc(ns, ['class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:2', 'htb', 'rate', '10gbit']);
      this.#tc(ns, ['qdisc', 'add', 'dev', dev, 'parent', '1:2', 'handle', '20:', 'pfifo', 'limit', '0']);
      for (let v = 0; v < loss; v++) {
        this.#tc(ns, ['filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'u8', '6', '0xff', 'at', '9', 'match', 'u8', String(v), '0x0f', 'at', '47', 'classid', '1:2']);
      }
    }
  }

  /**
   * Loses `sixteenths`/16 of the packets on host `index`'s link, each way (0 removes the loss).
   * @throws {BackchannelError} ERR_SERVER when this kernel can make no loss (lossSupport null).
   */
  setLoss(index: number, sixteenths: number): void {
    if (!Number.isInteger(sixteenths) || sixteenths < 0 || sixteenths > LOSS_STEPS) throw new RangeError(`netns: loss in sixteenths, 0 to ${LOSS_STEPS}`);
    if (sixteenths > 0 && this.lossSupport === null) throw new BackchannelError('ERR_SERVER', 'netns: this kernel can make no packet loss (no sch_netem, no htb/u32/pfifo)');
    this.#loss.set(index, sixteenths);
    this.#applyShaping(index);
  }

  /**
   * Delays every packet on host `index`'s link by `ms` each way (0 removes it).
   * @throws {BackchannelError} ERR_SERVER without sch_netem (delayUnsupported says so).
   */
  setDelay(index: number, ms: number): void {
    if (!Number.isInteger(ms) || ms < 0 || ms > 60_000) throw new RangeError('netns: delay in whole milliseconds, 0 to 60000');
    const why = this.delayUnsupported;
    if (ms > 0 && why !== null) throw new BackchannelError('ERR_SERVER', `netns: no delay: ${why}`);
    this.#delay.set(index, ms);
    this.#applyShaping(index);
  }

  /** Packets the loss qdiscs of every host dropped so far (both ends of each link), as tc counts them. */
  droppedPackets(): number {
    return this.hosts.reduce((a, h) => a + this.#droppedNow(h.index), this.#droppedBefore);
  }

  /** What host `index`'s qdiscs in place now have dropped. */
  #droppedNow(index: number): number {
    let total = 0;
    for (const [ns, dev] of this.#ends(index)) {
      let out = '';
      try {
        out = ns === null ? run('tc', ['-s', 'qdisc', 'show', 'dev', dev]) : run('ip', ['netns', 'exec', ns, 'tc', '-s', 'qdisc', 'show', 'dev', dev]);
      } catch {
        continue;
      }
      // Only the drop qdisc (pfifo 20:) or netem; htb's own line counts its children's drops again.
      const blocks = out.split(/\n(?=qdisc )/).filter((b) => b.startsWith('qdisc pfifo 20:') || b.startsWith('qdisc netem'));
      for (const b of blocks) total += Number(/dropped (\d+)/.exec(b)?.[1] ?? 0);
    }
    return total;
  }

  /** Heals every partition and removes every loss and delay. */
  clearFaults(): void {
    for (const i of [...this.#partitioned]) this.heal(i);
    for (const i of new Set([...this.#loss.keys(), ...this.#delay.keys()])) {
      this.#loss.delete(i);
      this.#delay.delete(i);
      this.#applyShaping(i);
    }
  }

  /**
   * Removes everything these hosts are (see removeHosts), also from the exit hooks. Idempotent.
   */
  destroy(): void {
    if (this.#exitHooks !== null) {
      process.off('exit', this.#exitHooks);
      this.#exitHooks = null;
    }
    for (const [sig, hook] of this.#signalHooks.splice(0)) process.off(sig, hook);
    if (this.#destroyed) return;
    this.#destroyed = true;
    removeHosts(this.prefix);
  }

  /**
   * Removes the hosts when the process exits, and on SIGINT/SIGTERM (then exits with 130/143,
   * after `beforeExit` ran, e.g. to kill the servers).
   */
  removeOnExit(beforeExit: () => void = () => undefined): void {
    if (this.#exitHooks !== null) return;
    const onExit = (): void => {
      try {
        beforeExit();
      } finally {
        this.destroy();
      }
    };
    this.#exitHooks = onExit;
    process.once('exit', onExit);
    for (const [sig, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      const hook = (): void => {
        onExit();
        process.exit(code);
      };
      this.#signalHooks.push([sig, hook]);
      process.once(sig, hook);
    }
  }
}
