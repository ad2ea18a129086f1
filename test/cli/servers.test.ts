// The server commands as real processes: help, and clear one-line errors for bad configs and for
// addresses in use.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateNetwork, networkPortCount } from '../../src/config/genconfig.js';
import { findFreePortRange } from '../../src/local/network.js';
import { cli } from '../helpers/cli.js';

/** Listens on 127.0.0.1:port, as another program holding it would. */
function hold(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

describe('backchannel authority|mix|gateway|up|status', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bc-cli-'));
    // Below Linux's ephemeral range (32768 and up), where outgoing connections take their ports.
    generateNetwork({ dir, basePort: await findFreePortRange(networkPortCount(), 31_900) });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints help for each command', async () => {
    for (const cmd of ['authority', 'mix', 'gateway', 'up', 'status']) {
      const r = await cli([cmd, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`Usage: backchannel ${cmd}`));
    }
    const top = await cli(['--help']);
    for (const cmd of ['up', 'status', 'genconfig', 'authority', 'mix', 'gateway']) assert.match(top.stdout, new RegExp(`\\n  ${cmd} `));
  });

  it('refuses a missing, malformed, invalid or wrong-role config with one line and no stack trace', async () => {
    const bad = join(dir, 'bad.json');
    const cases: Array<[string[], RegExp]> = [
      [['mix', '--config', join(dir, 'nope.json')], /config:/],
      [['mix', '--config', bad], /config:/],
      [['gateway', '--config', join(dir, 'mix-1-1', 'config.json')], /this is a mix config, not a gateway config/],
      [['mix'], /--config is required/],
    ];
    writeFileSync(bad, '{"role": "mix", "name": "x", "lisen": 1');
    for (const [args, msg] of cases) {
      const r = await cli(args);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
    writeFileSync(bad, '{"role": "mix", "name": "x", "lisen": 1}');
    const r = await cli(['mix', '--config', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /config:/);
  });

  it("exits with one line naming the address in use when a server's port is taken, whichever listener it is", async () => {
    const net = join(dir, 'in-use');
    const base = await findFreePortRange(networkPortCount(), 31_800);
    generateNetwork({ dir: net, basePort: base });
    // genconfig's ports: two for each of 3 authorities and 6 mixes, then three for each gateway,
    // so authority-1 listens on base, mix-1-1 on base+6 (ops base+7), gateway-1's WebSocket on base+20.
    const cases: Array<[string, string, number, string]> = [
      ['authority', 'authority-1', base, 'authority'],
      ['mix', 'mix-1-1', base + 6, 'link'],
      // The ops endpoint binds last, after the node already listens for links and uploads: the
      // process must still end rather than linger half started.
      ['mix', 'mix-1-1', base + 7, 'ops'],
      // Its TCP listener is already bound when the WebSocket one fails.
      ['gateway', 'gateway-1', base + 20, 'link'],
    ];
    for (const [role, name, port, module] of cases) {
      const holder = await hold(port);
      try {
        const r = await cli([role, '--config', join(net, name, 'config.json')], { timeoutMs: 60_000 });
        assert.equal(r.code, 1, `${name} with port ${port} taken: ${r.stderr}`);
        const lines = r.stderr.split('\n').filter((l) => !l.startsWith('{') && l !== '');
        assert.deepEqual(lines, [`backchannel: ${module}: cannot listen on 127.0.0.1:${port} (address in use)`]);
        assert.doesNotMatch(r.stderr, /internal error/);
      } finally {
        await new Promise((resolve) => holder.close(resolve));
      }
    }
  });

  it('status exits with 1 but still prints every server when they are down, and fails clearly without a network', async () => {
    const r = await cli(['status', '--dir', dir, '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, '');
    const st = JSON.parse(r.stdout) as { epoch: number | null; nodes: Array<{ name: string; role: string; layer: number | null; healthy: boolean }> };
    assert.equal(st.epoch, null);
    assert.equal(st.nodes.length, 11);
    assert.ok(st.nodes.every((n) => n.healthy === false));
    assert.deepEqual(st.nodes.find((n) => n.name === 'mix-2-1'), { ...st.nodes.find((n) => n.name === 'mix-2-1'), role: 'mix', layer: 2 });
    const table = await cli(['status', '--dir', dir]);
    assert.equal(table.code, 1);
    assert.match(table.stdout, /0 of 11 servers healthy/);
    const none = await cli(['status', '--dir', join(dir, 'missing')]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no network/);
  });
});
