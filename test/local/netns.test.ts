/**
 * The hosts of src/local/netns.ts on the real kernel: a process run inside a host listens on the
 * host's address and is reached from the root namespace over the bridge; a partition cuts it off
 * and healing restores it; loss drops packets (counted by tc) without breaking TCP; removal leaves
 * nothing behind, also after a run that did not clean up. Skips where namespaces cannot be made
 * (and fails instead in CI as root on Linux, as netns-chaos.test.ts explains).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { HostNetwork, probeHosts, removeHosts } from '../../src/local/netns.js';

const PREFIX = 'bcnu';
const SUBNET = '10.213.2';
const PORT = 7000;

const refusal = probeHosts();
const mustRun = process.env['CI'] === 'true' && process.platform === 'linux' && process.getuid?.() === 0;
const skip = refusal !== null && !mustRun ? `network namespaces cannot be made here: ${refusal}` : false;

/** A TCP server inside a host that answers each connection with "hi" and counts the bytes it is sent. */
function serveIn(hosts: HostNetwork, index: number): Promise<ChildProcess> {
  const code = `const n=require('net');n.createServer(s=>{s.write('hi');s.on('data',()=>{});s.on('error',()=>{})}).listen(${PORT},'${hosts.host(index).address}',()=>console.log('ready'))`;
  const [file, ...args] = [...hosts.execPrefix(index), process.execPath, '-e', code];
  const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (c) => reject(new Error(`server exited (${c})`)));
  });
}

/** Connects and reads the greeting; resolves false when the connection fails or gives nothing in `ms`. */
function reach(address: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(PORT, address);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    s.once('data', () => done(true));
    s.once('error', () => done(false));
  });
}

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${PREFIX}-`));
}

function links(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n.startsWith(`${PREFIX}-`));
}

describe('hosts as network namespaces', { skip, timeout: 120_000 }, () => {
  after(() => {
    if (refusal === null) removeHosts(PREFIX);
  });

  it('runs, partitions, heals, loses packets and removes everything', async () => {
    if (refusal !== null) assert.fail(`CI=true as root on Linux, yet network namespaces cannot be made: ${refusal}`);
    const hosts = HostNetwork.create(2, { prefix: PREFIX, subnet: SUBNET });
    let server: ChildProcess | null = null;
    const sockets: Socket[] = [];
    try {
      assert.deepEqual(namespaces().sort(), [`${PREFIX}-h1`, `${PREFIX}-h2`]);
      server = await serveIn(hosts, 2);
      const addr = hosts.host(2).address;
      assert.equal(await reach(addr, 10_000), true, 'reached over the bridge');

      hosts.partition(2);
      assert.equal(hosts.partitioned(2), true);
      assert.equal(await reach(addr, 2_000), false, 'a partitioned host is not reached');
      hosts.heal(2);
      // The link comes back; the neighbour entry may need a moment: wait for the state.
      let back = false;
      for (let i = 0; i < 20 && !back; i++) back = await reach(addr, 2_000);
      assert.equal(back, true, 'reached again after healing');

      if (hosts.lossSupport !== null) {
        hosts.setLoss(2, 4);
        // Small writes a millisecond or more apart until the loss qdiscs have dropped something
        // (a quarter of the milliseconds lose their packets); TCP carries on regardless.
        const sock = connect(PORT, addr);
        sockets.push(sock);
        sock.on('error', () => undefined);
        sock.setNoDelay(true);
        await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
        for (let i = 0; i < 20_000 && hosts.droppedPackets() === 0; i++) {
          sock.write(Buffer.alloc(64));
          await new Promise((r) => setTimeout(r, 2));
        }
        assert.ok(hosts.droppedPackets() > 0, 'the loss qdisc dropped packets');
        sock.destroy();
        hosts.setLoss(2, 0);
        assert.equal(await reach(addr, 10_000), true, 'reached without loss');
      }
      if (hosts.delayUnsupported !== null) assert.throws(() => hosts.setDelay(2, 50), /no delay/);
    } finally {
      for (const sock of sockets) sock.destroy();
      server?.kill('SIGKILL');
      hosts.destroy();
    }
    assert.deepEqual(namespaces(), []);
    assert.deepEqual(links(), []);
  });

  it('a run that left its hosts behind is cleaned up by the next', () => {
    HostNetwork.create(1, { prefix: PREFIX, subnet: SUBNET }); // not destroyed: as if it crashed
    const sleeper = spawn('ip', ['netns', 'exec', `${PREFIX}-h1`, 'sleep', '600'], { stdio: 'ignore' });
    try {
      const hosts = HostNetwork.create(3, { prefix: PREFIX, subnet: SUBNET });
      assert.deepEqual(namespaces().sort(), [`${PREFIX}-h1`, `${PREFIX}-h2`, `${PREFIX}-h3`]);
      hosts.destroy();
      hosts.destroy(); // idempotent
      assert.deepEqual(namespaces(), []);
      assert.deepEqual(links(), []);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});
