// `backchannel up` as real processes on 127.0.0.1, against a folder that already runs: one `up` per
// folder, no start on ports in use (a copy of a running folder has the same ones), and a start that
// fails as soon as one of its servers exits. Small networks (1 authority, 1 mix, 1 gateway) keep it
// quick; `up` runs whatever network the folder holds.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateNetwork, networkPortCount } from '../../src/config/genconfig.js';
import { LOCK_FILE, processRunning } from '../../src/local/lock.js';
import { findFreePortRange, portFree } from '../../src/local/network.js';
import { BIN, cli } from '../helpers/cli.js';

const SHAPE = { authorities: 1, layers: 1, mixesPerLayer: 1, gateways: 1 } as const;
const SERVERS = ['authority-1', 'mix-1-1', 'gateway-1'];
/** Generous: the machine may be busy with other test files' networks. */
const START_TIMEOUT_MS = 90_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The pid of a process that has ended: a real pid that no longer names anything. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  assert.equal(processRunning(r.pid!), false);
  return r.pid!;
}

/** How many times each server's log says it started. */
function startedLines(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of readdirSync(dir)) {
    const log = join(dir, s, 'server.log');
    if (existsSync(log)) out[s] = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"msg":"started"')).length;
  }
  return out;
}

/** The lines of `stderr` that are errors (main() writes each as `backchannel: ...`), not progress. */
const errorLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('backchannel: '));

/** Waits for `exit` of a child, up to `ms`; true when it exited. */
async function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('backchannel up on a folder that already runs', { timeout: 240_000 }, () => {
  let root: string;
  let dir: string;
  let basePort: number;
  let stalePid: number;
  let up: ChildProcess;
  let out = '';
  let err = '';
  let serverPids: number[] = [];

  before(async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'bc-up-')));
    dir = join(root, 'net');
    basePort = await findFreePortRange(networkPortCount(SHAPE), 31_600);
    generateNetwork({ dir, ...SHAPE, basePort, params: { epochPeriodMs: 10_000 } });
    // The lock a crashed `up` would leave behind.
    stalePid = deadPid();
    writeFileSync(join(dir, LOCK_FILE), `${JSON.stringify({ pid: stalePid, dir, since: '2026-01-01T00:00:00.000Z' })}\n`, { mode: 0o600 });

    up = spawn(process.execPath, [BIN, 'up', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    up.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    up.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!out.includes('Press Ctrl-C')) {
      if (up.exitCode !== null) throw new Error(`test: the first up exited (${up.exitCode}): ${err}`);
      if (Date.now() > deadline) throw new Error(`test: the first up did not start in time: ${err}`);
      await sleep(100);
    }
    serverPids = [...out.matchAll(/ pid (\d+)/g)].map((m) => Number(m[1]));
    assert.equal(serverPids.length, SERVERS.length, out);
  });

  after(async () => {
    if (up !== undefined && !(await exited(up, 0))) {
      up.kill('SIGINT');
      if (!(await exited(up, 30_000))) {
        // It did not stop: end it and the servers it printed, which are this test's own.
        up.kill('SIGKILL');
        for (const pid of serverPids) if (processRunning(pid)) process.kill(pid, 'SIGKILL');
      }
    }
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('replaced the stale lock that a process which no longer runs had left, saying so once', () => {
    assert.equal(err.match(/replacing a stale lock/g)?.length, 1, err);
    assert.match(err, new RegExp(`stale lock: pid ${stalePid}\\b`));
    const owner = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number };
    assert.equal(owner.pid, up.pid);
  });

  it("refuses a second up on the same folder, naming the first one's pid, and starts no duplicate server", async () => {
    const before = startedLines(dir);
    assert.deepEqual(Object.keys(before).sort(), [...SERVERS].sort());
    const r = await cli(['up', '--dir', dir], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    const lines = errorLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`in use by another backchannel up \\(pid ${up.pid},`));
    assert.match(lines[0]!, /backchannel status --dir /);
    assert.doesNotMatch(r.stderr, /Backchannel is running|starting \d+ servers/);
    assert.deepEqual(startedLines(dir), before);
    assert.equal((JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number }).pid, up.pid);
  });

  it('status exits with 0 while every server is healthy', async () => {
    const deadline = Date.now() + 30_000;
    let r = await cli(['status', '--dir', dir, '--json']);
    // Health follows each server's document, which may be renewing just now.
    while (r.code !== 0 && Date.now() < deadline) {
      await sleep(250);
      r = await cli(['status', '--dir', dir, '--json']);
    }
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const st = JSON.parse(r.stdout) as { nodes: Array<{ healthy: boolean }> };
    assert.equal(st.nodes.length, SERVERS.length);
    assert.ok(st.nodes.every((n) => n.healthy));
  });

  it('refuses to start a copy of the running folder, naming a port in use, and starts none of its servers', async () => {
    const copy = join(root, 'copy');
    cpSync(dir, copy, { recursive: true });
    const before = startedLines(copy);
    const r = await cli(['up', '--dir', copy], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stderr);
    const lines = errorLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`ports of the network in ${copy} are in use \\(authority-1 listen 127\\.0\\.0\\.1:${basePort}, `));
    // The copied lock names the original folder: it is replaced, not taken for this folder's owner.
    assert.match(r.stderr, /replacing a lock copied from another folder/);
    assert.equal(existsSync(join(copy, LOCK_FILE)), false, 'a refused up releases its lock');
    assert.deepEqual(startedLines(copy), before);
  });

  it('stops every server on Ctrl-C and removes its lock', async () => {
    up.kill('SIGINT');
    assert.ok(await exited(up, 30_000), 'up stops within 30 s');
    assert.equal(up.exitCode, 0, err);
    assert.equal(existsSync(join(dir, LOCK_FILE)), false);
    for (const pid of serverPids) assert.equal(processRunning(pid), false, `server pid ${pid} still runs`);
  });
});

describe('backchannel up when a server exits while starting', { timeout: 120_000 }, () => {
  let root: string;

  before(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'bc-up-fail-')));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('fails at once with one line naming the server, its error and its log, and stops the rest', async () => {
    const dir = join(root, 'net');
    const basePort = await findFreePortRange(networkPortCount(SHAPE), 31_700);
    // 60-second epochs: waiting for the consensus would take minutes, so an answer within the
    // command's time limit shows that up did not wait for it.
    generateNetwork({ dir, ...SHAPE, basePort, params: { epochPeriodMs: 60_000 } });
    writeFileSync(join(dir, 'mix-1-1', 'identity.key'), '{"type":"ed25519-seed","secret":"00"}\n', { mode: 0o600 });
    const r = await cli(['up', '--dir', dir], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stderr);
    const lines = errorLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^backchannel: up: mix-1-1 exited while starting \(exit 1: keys: identity\.key is corrupt .*\); see .*mix-1-1\/server\.log$/);
    assert.equal(existsSync(join(dir, LOCK_FILE)), false);
    // Stopped before up returned: the ports of the servers that did start are free again.
    for (const port of [basePort, basePort + 1]) assert.ok(await portFree(port), `port ${port} still held`);
  });
});
