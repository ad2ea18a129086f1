/** A `backchannel client` as a user runs it: `client init` and `client run` processes, driven over the client's IPC socket. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { clientSocketPath, ipcCall, ipcRequest } from '../../src/client/ipc.js';
import type { IpcMessage } from '../../src/client/ipc.js';
import { BIN_PATH } from '../../src/local/network.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ClientProcess {
  readonly dir: string;
  readonly socket: string;
  #child: ChildProcess | null = null;
  address = '';

  constructor(dir: string) {
    this.dir = dir;
    this.socket = clientSocketPath(dir);
  }

  init(network: string, gateway: string): void {
    const r = spawnSync(process.execPath, [BIN_PATH, 'client', 'init', '--dir', this.dir, '--network', network, '--gateway', gateway], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const a = spawnSync(process.execPath, [BIN_PATH, 'client', 'address', '--dir', this.dir], { encoding: 'utf8' });
    assert.equal(a.status, 0, a.stderr);
    this.address = a.stdout.trim();
  }

  /**
   * Starts `client run` and waits until it is connected to its gateway and holds a network
   * document (before that a send is refused; on a loaded machine the document can take seconds).
   */
  async run(): Promise<void> {
    this.#child = spawn(process.execPath, [BIN_PATH, 'client', 'run', '--dir', this.dir], { stdio: ['ignore', 'ignore', 'ignore'] });
    await this.until((s) => s['connected'] === true && s['document'] !== 'none', 60_000, 'connected with a network document');
  }

  async status(): Promise<Record<string, unknown>> {
    const r = await ipcCall(this.socket, { op: 'status' });
    assert.equal(r['ok'], true);
    return r['status'] as Record<string, unknown>;
  }

  /** Polls the status until `ok` holds; fails after `timeoutMs` saying what it waited for. */
  async until(ok: (s: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status().catch(() => null);
      if (s !== null && ok(s)) return s;
      if (Date.now() > deadline) throw new Error(`client ${this.dir}: not ${what}; status ${JSON.stringify(s)}`);
      await sleep(200);
    }
  }

  /** Queues a message; returns its id once the client has it durably. */
  async send(to: string, body: Uint8Array): Promise<string> {
    const r = await ipcCall(this.socket, { op: 'send', to, body_base64: Buffer.from(body).toString('base64'), wait: false });
    assert.equal(r['ok'], true, JSON.stringify(r));
    return r['id'] as string;
  }

  /** Every unconsumed message, consumed. */
  async recv(): Promise<{ id: string; body: Uint8Array }[]> {
    const out: { id: string; body: Uint8Array }[] = [];
    await ipcRequest(this.socket, { op: 'recv' }, (m: IpcMessage, conn) => {
      if (m['event'] === 'message') {
        out.push({ id: m['id'] as string, body: new Uint8Array(Buffer.from(m['body_base64'] as string, 'base64')) });
        conn.send({ op: 'consume', seq: m['seq'] as number });
      } else if (m['event'] === 'end') conn.end();
    });
    return out;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.#child;
    this.#child = null;
    if (c === null || c.exitCode !== null) return Promise.resolve();
    return new Promise((r) => {
      c.once('exit', () => r());
      c.kill(signal);
    });
  }
}
