/**
 * Who is at the other end of a relayed connection. An observer of a real network reads it from
 * the source address; on one machine every process connects from 127.0.0.1, and only the source
 * port differs. Linux says which socket has that port (/proc/net/tcp) and which process holds the
 * socket (/proc/<pid>/fd), so the relay can name the process among those the caller started.
 * Elsewhere (no /proc) the peer stays unknown.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** A socket table row: local port and inode. */
interface SocketRow {
  readonly localPort: number;
  readonly inode: string;
}

/** Parses /proc/net/tcp or tcp6: every row's local port and inode. */
export function parseProcNetTcp(text: string): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = f[1]!;
    const colon = local.lastIndexOf(':');
    if (colon < 0) continue;
    const port = Number.parseInt(local.slice(colon + 1), 16);
    if (!Number.isInteger(port)) continue;
    rows.push({ localPort: port, inode: f[9]! });
  }
  return rows;
}

async function inodeOfPort(port: number): Promise<string | null> {
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue;
    }
    const row = parseProcNetTcp(text).find((r) => r.localPort === port && r.inode !== '0');
    if (row !== undefined) return row.inode;
  }
  return null;
}

async function holds(pid: number, link: string): Promise<boolean> {
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if ((await readlink(`/proc/${pid}/fd/${fd}`)) === link) return true;
    } catch {
      // The descriptor closed meanwhile.
    }
  }
  return false;
}

/**
 * An `identify` for relays: names the process, among `processes()` (pid → name, read at each
 * call so that processes started later count), that holds the socket bound to the source port.
 */
export function procPeerIdentifier(processes: () => ReadonlyMap<number, string>): (remotePort: number) => Promise<string | null> {
  return async (remotePort) => {
    const inode = await inodeOfPort(remotePort);
    if (inode === null) return null;
    const link = `socket:[${inode}]`;
    for (const [pid, name] of processes()) if (await holds(pid, link)) return name;
    return null;
  };
}
