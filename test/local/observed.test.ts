// An observed local network's configs: every mix and gateway listens off its advertised address,
// which its relay takes; the advertised addresses (descriptors, network.json) do not change.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateNetwork, readNetworkFile } from '../../src/config/genconfig.js';
import { splitHostPort } from '../../src/config/_validate.js';
import { readLocalServers } from '../../src/local/network.js';
import { planRelays } from '../../src/local/observed.js';

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
