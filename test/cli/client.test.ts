// `backchannel client ...` as real processes: help, init from a network directory, address,
// and clear one-line errors when the client is not initialised or not running.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAddress } from '../../src/client/address.js';
import { generateNetwork, networkPortCount, readNetworkFile } from '../../src/config/genconfig.js';
import { findFreePortRange } from '../../src/local/network.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { toHex } from '../../src/util/bytes.js';
import { BIN, cli } from '../helpers/cli.js';

function oneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

/** Starts `client run` and resolves once it prints its socket. */
async function startDaemon(dir: string): Promise<{ child: ChildProcessWithoutNullStreams; stdout: () => string; stderr: () => string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'client', 'run', '--dir', dir]);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (/socket: /.test(stdout)) resolve();
    });
    void exit.then((code) => reject(new Error(`client run exited with ${code}: ${stderr}`)));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

describe('backchannel client', () => {
  let root: string;
  let network: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'bc-cli-client-'));
    network = join(root, 'net');
    // Below Linux's ephemeral range (32768 and up), where outgoing connections take their ports.
    generateNetwork({ dir: network, basePort: await findFreePortRange(networkPortCount(), 32_000) });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('prints help for the command and each subcommand, and lists it in the top-level help', async () => {
    const top = await cli(['client', '--help']);
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.stdout, /Usage: backchannel client <command>/);
    for (const sub of ['init', 'run', 'address', 'status', 'send', 'recv', 'inbox']) {
      assert.match(top.stdout, new RegExp(`\\n  ${sub} `));
      const r = await cli(['client', sub, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`Usage: backchannel client ${sub}`));
      assert.match(r.stdout, /--dir DIR/);
    }
    assert.match((await cli(['--help'])).stdout, /\n {2}client /);
    const bad = await cli(['client', 'launch']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown client command/);
  });

  it('init from a network directory; address prints an address at one of its gateways; a second init is refused', async () => {
    const dir = join(root, 'alice');
    const r = await cli(['client', 'init', '--dir', dir, '--network', network]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Initialised a client in/);
    assert.equal(statSync(dir).mode & 0o777, 0o700);

    const a = await cli(['client', 'address', '--dir', dir]);
    assert.equal(a.code, 0, a.stderr);
    const text = a.stdout.trim();
    assert.equal(text.split('\n').length, 1);
    assert.ok(r.stdout.includes(text), 'init printed the same address');
    const address = decodeAddress(nodeBackend, text);
    const gateways = readNetworkFile(join(network, 'network.json')).gateways;
    const gateway = gateways.find((g) => toHex(g.identityKey) === toHex(address.gateway));
    assert.ok(gateway !== undefined, 'the address names a gateway of network.json');
    assert.match(r.stdout, new RegExp(`gateway ${gateway.name}`));

    const again = await cli(['client', 'init', '--dir', dir, '--network', network]);
    oneLineError(again, /already initialised/);
    assert.ok(!again.stderr.includes(text), 'errors never carry an address');
    assert.match(again.stderr, /client address --dir/, 'the refusal says how to print the address');
    assert.equal((await cli(['client', 'address', '--dir', dir])).stdout.trim(), text, 'the identity is unchanged');
  });

  it('init makes a missing folder 0700, narrows an empty one to 0700, and leaves a folder with other files as it is', async () => {
    const empty = join(root, 'made-by-user');
    mkdirSync(empty, { mode: 0o755 });
    chmodSync(empty, 0o755);
    assert.equal((await cli(['client', 'init', '--dir', empty, '--network', network])).code, 0);
    assert.equal(statSync(empty).mode & 0o777, 0o700);
    const nested = join(root, 'a', 'b', 'c');
    assert.equal((await cli(['client', 'init', '--dir', nested, '--network', network])).code, 0);
    assert.equal(statSync(nested).mode & 0o777, 0o700);
    const shared = join(root, 'shared');
    mkdirSync(shared, { mode: 0o755 });
    chmodSync(shared, 0o755);
    writeFileSync(join(shared, 'notes.txt'), 'mine');
    assert.equal((await cli(['client', 'init', '--dir', shared, '--network', network])).code, 0);
    assert.equal(statSync(shared).mode & 0o777, 0o755, 'a folder with the user\'s files is not changed');
    assert.equal(statSync(join(shared, 'client.db')).mode & 0o777, 0o600);
  });

  it('init picks the named gateway, and refuses an unknown one listing the names', async () => {
    const dir = join(root, 'bob');
    const r = await cli(['client', 'init', '--dir', dir, '--network', network, '--gateway', 'gateway-2']);
    assert.equal(r.code, 0, r.stderr);
    const address = decodeAddress(nodeBackend, (await cli(['client', 'address', '--dir', dir])).stdout);
    const g2 = readNetworkFile(join(network, 'network.json')).gateways.find((g) => g.name === 'gateway-2')!;
    assert.equal(toHex(address.gateway), toHex(g2.identityKey));

    const bad = await cli(['client', 'init', '--dir', join(root, 'carol'), '--network', network, '--gateway', 'gateway-9']);
    oneLineError(bad, /gateway-1, gateway-2/);
    assert.equal(bad.code, 2);
  });

  it('init fails clearly without a network, or when its authorities cannot be reached', async () => {
    const none = await cli(['client', 'init', '--dir', join(root, 'dave'), '--network', join(root, 'nowhere')]);
    oneLineError(none, /no network\.json in .*backchannel up/);
    const key = '11'.repeat(32);
    const down = await cli(['client', 'init', '--dir', join(root, 'dave'), '--network', `http://127.0.0.1:1#${key}`]);
    oneLineError(down, /cannot fetch the network directory from its authorities: is the network running\?/);
    const malformed = await cli(['client', 'init', '--dir', join(root, 'dave'), '--network', 'http://127.0.0.1:1#abc']);
    oneLineError(malformed, /--network: entry 1/);
    assert.equal(malformed.code, 2);
  });

  it('send and status say the client is not running, naming the directory', async () => {
    const dir = join(root, 'alice');
    const to = (await cli(['client', 'address', '--dir', dir])).stdout.trim();
    const r = await cli(['client', 'send', '--dir', dir, '--to', to, 'hi']);
    oneLineError(r, /the client is not running for .*alice; start it with: npx backchannel client run --dir .*alice/);
    assert.equal(r.code, 1);
    const s = await cli(['client', 'status', '--dir', dir]);
    oneLineError(s, /not running/);
  });

  it('send refuses bad usage: no recipient, both, a bad address, an empty message', async () => {
    const dir = join(root, 'alice');
    const to = (await cli(['client', 'address', '--dir', dir])).stdout.trim();
    const cases: Array<[string[], RegExp, number]> = [
      [['client', 'send', '--dir', dir, 'hi'], /--to ADDRESS .* or --reply-to ID/, 2],
      [['client', 'send', '--dir', dir, '--to', to, '--reply-to', 'abcd', 'hi'], /not both/, 2],
      [['client', 'send', '--dir', dir, '--reply-to', 'xyz', 'hi'], /--reply-to must be the id of a received message/, 2],
      [['client', 'send', '--dir', dir, '--reply-to', 'abcdef1', 'hi'], /its first 8 or more hex digits/, 2],
      [['client', 'send', '--dir', dir, '--to', `${to.slice(0, -2)}AA`, 'hi'], /address: checksum mismatch/, 1],
      [['client', 'send', '--dir', dir, '--to', to, '--bogus', 'hi'], /Unknown option/, 2],
      [['client', 'send', '--dir', dir, '--to', to, ''], /the message is empty/, 2],
      [['client', 'send', '--dir', dir, '--to', to, '--file', join(root, 'missing.txt')], /--file: cannot read/, 2],
    ];
    for (const [args, pattern, code] of cases) {
      const r = await cli(args);
      oneLineError(r, pattern);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  it('run serves status and recv on its socket, refuses a second run, replaces a stale socket and stops on SIGINT', async () => {
    const dir = join(root, 'alice');
    const address = (await cli(['client', 'address', '--dir', dir])).stdout.trim();
    const first = await startDaemon(dir);
    assert.match(first.stdout(), new RegExp(`address: ${address}`));
    assert.match(first.stdout(), new RegExp(`socket: +${join(dir, 'client.sock')}`));
    assert.equal(statSync(join(dir, 'client.sock')).mode & 0o777, 0o600);

    const st = await cli(['client', 'status', '--dir', dir, '--json']);
    assert.equal(st.code, 0, st.stderr);
    const status = JSON.parse(st.stdout) as Record<string, unknown>;
    assert.equal(status['address'], address);
    assert.equal(status['connected'], false, 'the network is not running');
    const table = await cli(['client', 'status', '--dir', dir]);
    assert.match(table.stdout, /not connected/);

    const recv = await cli(['client', 'recv', '--dir', dir]);
    assert.equal(recv.code, 0, recv.stderr);
    assert.equal(recv.stdout, '');

    oneLineError(await cli(['client', 'run', '--dir', dir]), /a client is already running for .*alice/);

    // A daemon killed outright leaves its socket behind; the next run replaces it.
    first.child.kill('SIGKILL');
    await first.exit;
    assert.ok(existsSync(join(dir, 'client.sock')));
    oneLineError(await cli(['client', 'status', '--dir', dir]), /not running/);
    const second = await startDaemon(dir);
    assert.equal((await cli(['client', 'status', '--dir', dir, '--json'])).code, 0);
    second.child.kill('SIGINT');
    assert.equal(await second.exit, 0, second.stderr());
    assert.match(second.stderr(), /stopped/);
    assert.ok(!existsSync(join(dir, 'client.sock')), 'the socket is removed on a clean stop');
    assert.ok(existsSync(join(dir, 'client.log')));
  });

  it('recv, status, send and address without init say it is not initialised', async () => {
    const dir = join(root, 'nobody');
    for (const args of [['recv'], ['inbox'], ['status'], ['address'], ['run'], ['send', '--to', (await cli(['client', 'address', '--dir', join(root, 'alice')])).stdout.trim(), 'hi']]) {
      const r = await cli(['client', ...args, '--dir', dir]);
      oneLineError(r, /not initialised in .*nobody; run `npx backchannel client init --dir .*nobody`/);
      assert.equal(r.code, 1);
    }
  });
});
