// An observed local network's configs: every mix and gateway listens off its advertised address,
// which its relay takes; the advertised addresses (descriptors, network.json) do not change.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateNetwork, readNetworkFile } from '../../src/config/genconfig.js';
import { splitHostPort } from '../../src/config/_validate.js';
import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { findFreePortRange, readLocalServers } from '../../src/local/network.js';
import { planRelays, startRelays } from '../../src/local/observed.js';

const root = mkdtempSync(join(tmpdir(), 'bc-observed-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('planRelays moves every mix and gateway listener off its advertised port, once, and keeps the advertised addresses', async () => {
  const dir = join(root, 'net');
  const gen = generateNetwork({ dir, basePort: 39_700 });
  const before = readLocalServers(dir);
  const plans = await planRelays(dir);
  const after = readLocalServers(dir);
  const nodes = before.filter((s) => s.role !== 'authority');
  assert.equal(plans.length, nodes.length);
  const ports = new Set<number>();
  for (const p of plans) {
    const was = nodes.find((s) => s.name === p.name)!;
    const now = after.find((s) => s.name === p.name)!;
    assert.equal(p.advertised.port, was.config.listen.port, `${p.name}: the relay takes the old listen port`);
    assert.notEqual(p.listen.port, p.advertised.port);
    assert.equal(now.config.listen.port, p.listen.port, `${p.name}: the config listens on the new port`);
    assert.ok(now.config.role !== 'authority' && now.config.advertise !== null && splitHostPort(now.config.advertise).port === p.advertised.port);
    ports.add(p.listen.port);
  }
  assert.equal(ports.size, plans.length, 'every node gets its own port');
  // Authorities are not moved; network.json (what clients read) is unchanged.
  for (const a of before.filter((s) => s.role === 'authority')) assert.deepEqual(after.find((s) => s.name === a.name)!.config.listen, a.config.listen);
  assert.deepEqual(
    readNetworkFile(gen.networkPath).gateways.map((g) => g.tcpAddress),
    gen.network.gateways.map((g) => g.tcpAddress),
  );
  assert.deepEqual(await planRelays(dir), plans, 'a second call finds the nodes already moved');
});

test('startRelays records on its own thread: frames both ways, timed from the given origin, the peer named, handed back on close', async () => {
  // An echo server stands for a node; the relay takes a free port in front of it.
  const sockets: Socket[] = [];
  const echo = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  const target = (echo.address() as AddressInfo).port;
  const advertised = await findFreePortRange(1, 25_600);
  const originNs = process.hrtime.bigint();
  const observer = await startRelays(
    [{ name: 'gateway-x', advertised: { host: '127.0.0.1', port: advertised }, listen: { host: '127.0.0.1', port: target } }],
    { servers: [], pid: () => undefined },
    { originNs, processes: () => new Map([[process.pid, 'this-test']]) },
  );
  try {
    assert.equal(observer.relays.length, 0, 'nothing is handed back before close');
    const c = createConnection({ host: '127.0.0.1', port: advertised });
    await new Promise<void>((resolve) => c.once('connect', resolve));
    const frames = [Buffer.from([0, 3, 1, 2, 3]), Buffer.from([0, 5, 1, 2, 3, 4, 5])];
    let echoed = 0;
    const back = new Promise<void>((resolve) =>
      c.on('data', (b: Buffer) => {
        echoed += b.length;
        if (echoed === 12) resolve();
      }),
    );
    const before = Number(process.hrtime.bigint() - originNs) / 1e6;
    c.write(frames[0]!);
    c.write(frames[1]!);
    await back;
    const afterMs = Number(process.hrtime.bigint() - originNs) / 1e6;
    // Closing waits until the connecting side is named (it still has its socket open here).
    await observer.close();
    c.destroy();
    assert.equal(observer.relays.length, 1);
    const [relay] = observer.relays;
    assert.equal(relay!.name, 'gateway-x');
    const [conn] = relay!.connections();
    assert.deepEqual(conn!.forward.sizes, [5, 7]);
    assert.deepEqual(conn!.backward.sizes.reduce((a, b) => a + b, 0), 12);
    assert.equal(conn!.peer, 'this-test');
    for (const t of [...conn!.forward.times, ...conn!.backward.times]) assert.ok(t >= before && t <= afterMs, `a frame timed on the driver's clock (${t} in [${before}, ${afterMs}])`);
    assert.equal(observer.dropped(), 0);
  } finally {
    await observer.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  }
});
