// The server commands as real processes: help, and clear one-line errors for bad configs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateNetwork } from '../../src/config/genconfig.js';
import { cli } from '../helpers/cli.js';

describe('backchannel authority|mix|gateway|up|status', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bc-cli-'));
    generateNetwork({ dir, basePort: 39_000 });
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

  it('status reports every server down when nothing runs, and fails clearly without a network', async () => {
    const r = await cli(['status', '--dir', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const st = JSON.parse(r.stdout) as { epoch: number | null; nodes: Array<{ name: string; role: string; layer: number | null; healthy: boolean }> };
    assert.equal(st.epoch, null);
    assert.equal(st.nodes.length, 11);
    assert.ok(st.nodes.every((n) => n.healthy === false));
    assert.deepEqual(st.nodes.find((n) => n.name === 'mix-2-1'), { ...st.nodes.find((n) => n.name === 'mix-2-1'), role: 'mix', layer: 2 });
    const none = await cli(['status', '--dir', join(dir, 'missing')]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no network/);
  });
});
