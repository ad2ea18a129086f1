/**
 * Who is at the other end of a relayed connection. An observer of a real network reads it from
 * the source address; on one machine every process connects from 127.0.0.1, and only the source
 * port differs. Linux says which socket has that port (/proc/net/tcp) and which process holds the
 * socket (/proc/<pid>/fd), so the relay can name the process among those the caller started.
 * Elsewhere (no /proc) the peer stays unknown.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** A socket table row: its local and remote ports and its inode. */
interface SocketRow {
  readonly localPort: number;
  readonly remotePort: number;
  readonly inode: string;
}

function portOf(field: string): number {
  const colon = field.lastIndexOf(':');
  return colon < 0 ? NaN : Number.parseInt(field.slice(colon + 1), 16);
}

/** Parses /proc/net/tcp or tcp6: every row's ports and inode. */
export function parseProcNetTcp(text: string): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const localPort = portOf(f[1]!);
    const remotePort = portOf(f[2]!);
    if (!Number.isInteger(localPort) || !Number.isInteger(remotePort)) continue;
    rows.push({ localPort, remotePort, inode: f[9]! });
  }
  return rows;
}

/**
 * The inode of the socket bound to `port` and connected to `peerPort`. The local port alone is
 * not enough: Linux gives one ephemeral port to several connections to different destinations.
 */
async function inodeOf(port: number, peerPort: number): Promise<string | null> {
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue;
    }
    const row = parseProcNetTcp(text).find((r) => r.localPort === port && r.remotePort === peerPort && r.inode !== '0');
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
 * call so that processes started later count), that holds the socket of the connection from
 * `remotePort` to the relay's `localPort`.
 */
export function procPeerIdentifier(processes: () => ReadonlyMap<number, string>): (remotePort: number, localPort: number) => Promise<string | null> {
  return async (remotePort, localPort) => {
    const inode = await inodeOf(remotePort, localPort);
    if (inode === null) return null;
    const link = `socket:[${inode}]`;
    for (const [pid, name] of processes()) if (await holds(pid, link)) return name;
    return null;
  };
}
