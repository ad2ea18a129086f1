/**
 * A whole network on one machine, as separate processes: what `backchannel up` runs, and what the
 * integration and fault tests drive (the same code path). Each server is `backchannel <role>
 * --config <dir>/<name>/config.json`, logging to `<dir>/<name>/server.log`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { joinHostPort } from '../config/_validate.js';
import { loadConfig } from '../config/load.js';
import type { ServerConfig } from '../config/types.js';
import { BackchannelError } from '../errors.js';

/** The bin script, found from this file's place in dist/. */
export const BIN_PATH = fileURLToPath(new URL('../../../bin/backchannel.js', import.meta.url));

export interface LocalServer {
  readonly name: string;
  readonly role: ServerConfig['role'];
  /** Mix layer; 0 for gateways; null for authorities. */
  readonly layer: number | null;
  readonly config: ServerConfig;
  readonly configPath: string;
  /** The operations endpoint (`/healthz`, `/metrics`). */
  readonly opsUrl: string;
  /** Where peers connect: the authority's HTTP API, or a node's link listener. */
  readonly listen: string;
}

/** Every server configured under `dir` (one folder each, holding config.json), in a stable order. */
export function readLocalServers(dir: string): LocalServer[] {
  if (!existsSync(dir)) throw new BackchannelError('ERR_CONFIG', `local: no network in ${dir} (run \`npx backchannel up\` or \`npx backchannel genconfig\`)`);
  const out: LocalServer[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const configPath = join(dir, entry.name, 'config.json');
    if (!existsSync(configPath)) continue;
    const config = loadConfig(configPath);
    const layer = config.role === 'authority' ? null : config.role === 'gateway' ? 0 : config.layer;
    out.push({
      name: config.name,
      role: config.role,
      layer,
      config,
      configPath,
      opsUrl: `http://${joinHostPort(config.ops.host, config.ops.port)}`,
      listen: joinHostPort(config.listen.host, config.listen.port),
    });
  }
  if (out.length === 0) throw new BackchannelError('ERR_CONFIG', `local: no server configs under ${dir}`);
  const rank = { authority: 0, mix: 1, gateway: 2 } as const;
  return out.sort((a, b) => rank[a.role] - rank[b.role] || (a.layer ?? 0) - (b.layer ?? 0) || a.name.localeCompare(b.name));
}

/** True when nothing listens on 127.0.0.1:port now. */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** One address a server's config binds, named for messages. */
export interface ServerPort {
  readonly server: string;
  /** Which listener: the link or API listener, a gateway's WebSocket listener, or the ops endpoint. */
  readonly what: 'listen' | 'ws' | 'ops';
  readonly host: string;
  readonly port: number;
}

/** Every address the servers' configs bind (port 0, any free port, left out). */
export function serverPorts(servers: readonly LocalServer[]): ServerPort[] {
  const out: ServerPort[] = [];
  for (const s of servers) {
    const c = s.config;
    out.push({ server: s.name, what: 'listen', host: c.listen.host, port: c.listen.port });
    if (c.role === 'gateway' && c.wsListen !== null) out.push({ server: s.name, what: 'ws', host: c.wsListen.host, port: c.wsListen.port });
    out.push({ server: s.name, what: 'ops', host: c.ops.host, port: c.ops.port });
  }
  return out.filter((p) => p.port !== 0);
}

/** The addresses of `servers` that something else listens on now. */
export async function takenPorts(servers: readonly LocalServer[]): Promise<ServerPort[]> {
  const ports = serverPorts(servers);
  const free = await Promise.all(ports.map((p) => portFree(p.port, p.host)));
  return ports.filter((_, i) => !free[i]);
}

/** A base port with `count` free ports from it, tried from `start` in steps of 100. */
export async function findFreePortRange(count: number, start = 30_000, host = '127.0.0.1'): Promise<number> {
  for (let base = start; base + count < 65_000; base += 100) {
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p, host);
    if (ok) return base;
  }
  throw new BackchannelError('ERR_SERVER', 'local: no free port range found');
}

export interface ProcessState {
  readonly server: LocalServer;
  child: ChildProcess | null;
  /** Exit code or signal of the last exit, when it exited. */
  lastExit: string | null;
  /** Where the server's log ended when it was last started: what it wrote since starts here. */
  logOffset: number;
}

/** How much of a log's end lastError reads: a failed start writes its error last. */
const LOG_TAIL_BYTES = 64 * 1024;
/** The prefix of the one line main() writes for an error (src/cli/main.ts). */
const ERROR_LINE_PREFIX = 'backchannel: ';

/** Runs and stops the servers of one local network. */
export class LocalNetwork {
  readonly dir: string;
  readonly servers: readonly LocalServer[];
  readonly #procs = new Map<string, ProcessState>();
  readonly #onExit: (name: string, how: string) => void;
  readonly #wrap: ((server: LocalServer) => readonly string[]) | null;
  #stopping = false;

  /**
   * `wrap` gives, for a server, a command that runs the server's own command line in place of
   * itself (by exec, so the pid stays the server's), e.g. `ip netns exec NS` (src/local/netns.ts).
   */
  constructor(dir: string, opts: { onExit?: (name: string, how: string) => void; wrap?: (server: LocalServer) => readonly string[] } = {}) {
    this.dir = dir;
    this.servers = readLocalServers(dir);
    this.#onExit = opts.onExit ?? (() => undefined);
    this.#wrap = opts.wrap ?? null;
    for (const s of this.servers) this.#procs.set(s.name, { server: s, child: null, lastExit: null, logOffset: 0 });
  }

  server(name: string): LocalServer {
    const p = this.#procs.get(name);
    if (!p) throw new RangeError(`local: no server named ${name}`);
    return p.server;
  }

  /** Whether the server's process runs now. */
  running(name: string): boolean {
    const c = this.#procs.get(name)?.child;
    return c !== null && c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  pid(name: string): number | undefined {
    return this.#procs.get(name)?.child?.pid;
  }

  /** Starts every server that is not running, authorities first. */
  startAll(): void {
    for (const s of this.servers) if (!this.running(s.name)) this.start(s.name);
  }

  /** Starts one server's process. */
  start(name: string): void {
    const st = this.#procs.get(name);
    if (!st) throw new RangeError(`local: no server named ${name}`);
    if (this.running(name)) return;
    const logPath = join(this.dir, name, 'server.log');
    const fd = openSync(logPath, 'a', 0o600);
    st.logOffset = fstatSync(fd).size;
    const command = [...(this.#wrap?.(st.server) ?? []), process.execPath, BIN_PATH, st.server.role, '--config', st.server.configPath];
    const child = spawn(command[0]!, command.slice(1), {
      stdio: ['ignore', fd, fd],
      env: { ...process.env },
    });
    closeSync(fd);
    st.child = child;
    child.once('exit', (code, signal) => {
      st.lastExit = signal ?? `exit ${code ?? '?'}`;
      if (!this.#stopping) this.#onExit(name, st.lastExit);
    });
  }

  /**
   * The last error line (`backchannel: ...`, without that prefix) the server wrote to its log since
   * it was last started, or null: why a server that exited at once did.
   */
  lastError(name: string): string | null {
    const st = this.#procs.get(name);
    if (!st) throw new RangeError(`local: no server named ${name}`);
    let text: string;
    try {
      const fd = openSync(join(this.dir, name, 'server.log'), 'r');
      try {
        const size = fstatSync(fd).size;
        const from = Math.max(st.logOffset, size - LOG_TAIL_BYTES);
        const buf = Buffer.alloc(Math.max(0, size - from));
        const n = readSync(fd, buf, 0, buf.length, from);
        text = buf.subarray(0, n).toString('utf8');
      } finally {
        closeSync(fd);
      }
    } catch {
      return null;
    }
    const lines = text.split('\n').filter((l) => l.startsWith(ERROR_LINE_PREFIX));
    const last = lines[lines.length - 1];
    return last === undefined ? null : last.slice(ERROR_LINE_PREFIX.length).trim();
  }

  /** Sends `signal` to one server and waits for it to exit. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    const child = this.#procs.get(name)?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Stops every server: SIGTERM, then SIGKILL after `graceMs`; nodes first, authorities last. */
  async stopAll(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    const nodes = this.servers.filter((s) => s.role !== 'authority');
    await Promise.all(nodes.map((s) => this.kill(s.name, 'SIGTERM', graceMs)));
    await Promise.all(this.servers.filter((s) => s.role === 'authority').map((s) => this.kill(s.name, 'SIGTERM', graceMs)));
  }
}
