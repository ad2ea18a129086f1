// `backchannel genconfig`: every config it writes loads, agrees with network.json and with the
// key files beside it; ports follow the documented scheme; an existing network needs --force.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runGenconfig } from '../../src/cli/genconfig.js';
import { generateNetwork, networkPortCount, readNetworkFile } from '../../src/config/genconfig.js';
import { loadOrCreateIdentity, loadOrCreateLinkKey } from '../../src/config/keys.js';
import { loadConfig } from '../../src/config/load.js';
import type { ServerConfig } from '../../src/config/types.js';
import { isBackchannelError } from '../../src/errors.js';
import { toHex } from '../../src/util/bytes.js';

async function withTemp(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bc-genconfig-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function loadAll(dir: string): Map<string, ServerConfig> {
  const out = new Map<string, ServerConfig>();
  for (const name of readdirSync(dir).sort()) {
    if (name === 'network.json') continue;
    out.set(name, loadConfig(join(dir, name, 'config.json')));
  }
  return out;
}

describe('backchannel genconfig', () => {
  test('writes a default network whose every config loads and agrees with network.json and the key files', async () => {
    await withTemp(async (root) => {
      const dir = join(root, 'net');
      const out = await runGenconfig(['--dir', dir, '--epoch-seconds', '60', '--mean-delay-ms', '20']);
      assert.match(out, /3 authorities \(2 must sign\), 3 mix layers of 2, 2 gateways; epochs of 60 s/);
      assert.match(out, new RegExp(`backchannel authority --config ${join(dir, 'authority-1', 'config.json')}`));
      assert.match(out, new RegExp(`backchannel gateway --config ${join(dir, 'gateway-2', 'config.json')}`));

      const configs = loadAll(dir);
      assert.deepEqual([...configs.keys()], ['authority-1', 'authority-2', 'authority-3', 'gateway-1', 'gateway-2', 'mix-1-1', 'mix-1-2', 'mix-2-1', 'mix-2-2', 'mix-3-1', 'mix-3-2']);
      const network = readNetworkFile(join(dir, 'network.json'));
      assert.equal(network.threshold, 2);
      assert.equal(network.params.epochPeriodMs, 60_000);
      assert.equal(network.params.mixMeanDelayMs, 20);
      assert.equal(network.params.hops, 5);

      const identities = new Map<string, string>();
      for (const [name, c] of configs) {
        assert.equal(c.name, name);
        assert.equal(c.dataDir, join(dir, name));
        assert.deepEqual(c.params, network.params);
        assert.deepEqual(c.authorities, network.authorities);
        assert.equal(c.threshold, network.threshold);
        const identity = loadOrCreateIdentity(c.dataDir);
        assert.equal(identity.created, false, `${name} has its identity key`);
        identities.set(name, toHex(identity.publicKey));
        assert.equal(existsSync(join(c.dataDir, 'link.key')), c.role !== 'authority');
      }
      assert.equal(new Set(identities.values()).size, identities.size, 'every server has its own key');
      for (const a of network.authorities) assert.equal(toHex(a.identityKey), identities.get(a.name));

      for (const g of network.gateways) {
        const c = configs.get(g.name)!;
        assert.equal(toHex(g.identityKey), identities.get(g.name));
        assert.deepEqual(g.linkKey, loadOrCreateLinkKey(c.dataDir).publicKey);
        assert.ok(c.role === 'gateway');
        if (c.role !== 'gateway') continue;
        assert.equal(g.tcpAddress, c.advertise);
        assert.equal(g.wsAddress, c.wsAdvertise);
      }

      // Each authority authorizes every mix and gateway with its key and layer.
      const expectedNodes = [...configs.values()]
        .filter((c) => c.role !== 'authority')
        .map((c) => [c.name, identities.get(c.name), c.role, c.role === 'mix' ? c.layer : 0])
        .sort();
      for (const c of configs.values()) {
        if (c.role !== 'authority') continue;
        assert.deepEqual(c.nodes.map((n) => [n.name, toHex(n.identityKey), n.role, n.layer]).sort(), expectedNodes);
      }
      for (const [name, c] of configs) if (c.role === 'mix') assert.equal(c.layer, Number(name.split('-')[1]));
    });
  });

  test("the gateways' emission rate follows the client rates unless it is given", async () => {
    await withTemp((dir) => {
      assert.equal(generateNetwork({ dir: join(dir, 'a'), basePort: 40000 }).network.params.gatewayRatePerClientPerS, 25);
      const raised = generateNetwork({ dir: join(dir, 'b'), basePort: 40000, params: { sendRatePerS: 50, loopRatePerS: 5 } });
      assert.equal(raised.network.params.gatewayRatePerClientPerS, 55);
      const given = generateNetwork({ dir: join(dir, 'c'), basePort: 40000, params: { sendRatePerS: 50, gatewayRatePerClientPerS: 7 } });
      assert.equal(given.network.params.gatewayRatePerClientPerS, 7);
    });
  });

  test('ports follow the scheme: consecutive, two per authority or mix, three per gateway', async () => {
    await withTemp((dir) => {
      const r = generateNetwork({ dir, authorities: 2, layers: 1, mixesPerLayer: 1, gateways: 2, basePort: 40000 });
      assert.deepEqual(
        r.servers.map((s) => [s.name, s.ports.listen, s.ports.ops, s.ports.ws]),
        [
          ['authority-1', 40000, 40001, null],
          ['authority-2', 40002, 40003, null],
          ['mix-1-1', 40004, 40005, null],
          ['gateway-1', 40006, 40007, 40008],
          ['gateway-2', 40009, 40010, 40011],
        ],
      );
      const a = loadConfig(join(dir, 'authority-2', 'config.json'));
      assert.ok(a.role === 'authority');
      assert.deepEqual(a.listen, { host: '127.0.0.1', port: 40002 });
      assert.deepEqual(a.ops, { host: '127.0.0.1', port: 40003 });
      assert.equal(a.authorities[1]!.url, 'http://127.0.0.1:40002');
      const g = loadConfig(join(dir, 'gateway-2', 'config.json'));
      assert.ok(g.role === 'gateway');
      if (g.role !== 'gateway') return;
      assert.equal(g.advertise, '127.0.0.1:40009');
      assert.deepEqual(g.wsListen, { host: '127.0.0.1', port: 40011 });
      assert.equal(g.wsAdvertise, 'ws://127.0.0.1:40011/link');
      assert.equal(r.network.params.hops, 3, 'one layer: gateway, mix, gateway');
      assert.equal(r.files[r.files.length - 1], join(dir, 'network.json'));
      for (const f of r.files) assert.ok(existsSync(f), f);
    });
  });

  test('hosts are assigned round-robin; remote servers listen on every interface and advertise their host', async () => {
    await withTemp(async (dir) => {
      await runGenconfig(['--dir', dir, '--hosts', '10.0.0.1, 10.0.0.2,fd00::7', '--authorities', '3', '--layers', '2', '--mixes-per-layer', '1', '--gateways', '1']);
      const configs = loadAll(dir);
      const a2 = configs.get('authority-2')!;
      assert.ok(a2.role === 'authority');
      assert.deepEqual(a2.listen, { host: '0.0.0.0', port: 30002 });
      assert.deepEqual(a2.ops, { host: '127.0.0.1', port: 30003 });
      assert.deepEqual(a2.authorities.map((a) => a.url), ['http://10.0.0.1:30000', 'http://10.0.0.2:30002', 'http://[fd00::7]:30004']);
      const m = configs.get('mix-1-1')!;
      assert.ok(m.role === 'mix' && m.advertise === '10.0.0.1:30006');
      const g = configs.get('gateway-1')!;
      assert.ok(g.role === 'gateway');
      if (g.role !== 'gateway') return;
      assert.deepEqual(g.listen, { host: '::', port: 30010 });
      assert.equal(g.advertise, '[fd00::7]:30010');
      assert.equal(g.wsAdvertise, 'ws://[fd00::7]:30012/link');
    });
  });

  test('opsOnHost binds each ops endpoint on its own host (servers in network namespaces), not on 127.0.0.1', async () => {
    await withTemp((dir) => {
      generateNetwork({ dir, authorities: 1, layers: 1, mixesPerLayer: 1, gateways: 1, hosts: ['10.0.0.1', '10.0.0.2', '10.0.0.3'], basePort: 26000, opsOnHost: true });
      const configs = loadAll(dir);
      assert.deepEqual(configs.get('authority-1')!.ops, { host: '10.0.0.1', port: 26001 });
      assert.deepEqual(configs.get('mix-1-1')!.ops, { host: '10.0.0.2', port: 26003 });
      const g = configs.get('gateway-1')!;
      assert.deepEqual(g.ops, { host: '10.0.0.3', port: 26005 });
      assert.deepEqual(g.listen, { host: '0.0.0.0', port: 26004 });
    });
  });

  test('refuses to overwrite a network without --force, and replaces it (keys included) with it', async () => {
    await withTemp(async (dir) => {
      await runGenconfig(['--dir', dir, '--authorities', '1', '--layers', '1', '--mixes-per-layer', '1', '--gateways', '1']);
      const before = readNetworkFile(join(dir, 'network.json'));
      await assert.rejects(runGenconfig(['--dir', dir]), (e: unknown) => isBackchannelError(e, 'ERR_CONFIG') && /already holds a network.*--force/.test(e.message));
      // A folder with only a stray server folder also counts.
      rmSync(join(dir, 'network.json'));
      await assert.rejects(runGenconfig(['--dir', dir]), (e: unknown) => isBackchannelError(e, 'ERR_CONFIG'));
      mkdirSync(join(dir, 'mix-9-9'));
      writeFileSync(join(dir, 'notes.txt'), 'kept');
      await runGenconfig(['--dir', dir, '--force', '--authorities', '1', '--layers', '1', '--mixes-per-layer', '1', '--gateways', '1']);
      const after = readNetworkFile(join(dir, 'network.json'));
      assert.notDeepEqual(after.authorities[0]!.identityKey, before.authorities[0]!.identityKey);
      assert.deepEqual(readdirSync(dir).sort(), ['authority-1', 'gateway-1', 'mix-1-1', 'network.json', 'notes.txt']);
    });
  });

  test('--help says what is written and how to run it', async () => {
    const help = await runGenconfig(['--help']);
    assert.match(help, /^Usage: backchannel genconfig --dir DIR/);
    assert.match(help, /network\.json/);
    assert.match(help, /--hosts/);
    assert.match(help, /Examples:/);
    assert.equal(await runGenconfig(['-h']), help);
  });

  test('bad options are usage errors', async () => {
    const usage = (e: unknown) => isBackchannelError(e, 'ERR_CLI_USAGE');
    await assert.rejects(runGenconfig([]), (e: unknown) => usage(e) && /--dir is required/.test((e as Error).message));
    await assert.rejects(runGenconfig(['--dir', 'x', '--layers', '0']), usage);
    await assert.rejects(runGenconfig(['--dir', 'x', '--layers', '15']), usage);
    await assert.rejects(runGenconfig(['--dir', 'x', '--epoch-seconds', 'soon']), usage);
    await assert.rejects(runGenconfig(['--dir', 'x', '--hosts', 'a,,b']), usage);
    await assert.rejects(runGenconfig(['--dir', 'x', '--bogus']), usage);
    await assert.rejects(runGenconfig(['--dir', 'x', 'positional']), usage);
  });

  test('bad hosts and ports that run past 65535 are ERR_CONFIG, and nothing is written', async () => {
    await withTemp(async (dir) => {
      const target = join(dir, 'net');
      await assert.rejects(runGenconfig(['--dir', target, '--hosts', 'bad host']), (e: unknown) => isBackchannelError(e, 'ERR_CONFIG') && /hosts\[0\]/.test((e as Error).message));
      await assert.rejects(runGenconfig(['--dir', target, '--base-port', '65530']), (e: unknown) => isBackchannelError(e, 'ERR_CONFIG') && /65535/.test((e as Error).message));
      assert.equal(existsSync(target), false);
    });
  });
});

test('networkPortCount is the span of ports a network takes', () => {
  assert.equal(networkPortCount(), 24);
  assert.equal(networkPortCount({ authorities: 2, layers: 1, mixesPerLayer: 1, gateways: 2 }), 12);
});
