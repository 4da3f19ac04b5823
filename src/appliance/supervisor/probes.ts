import { readFile, readdir, readlink } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import type { ReadinessContext } from './types.js';

export type Probe = (ctx: ReadinessContext) => Promise<boolean>;

/** Ready when a TCP connection to `host:port` is accepted. */
export function tcpProbe(port: number, host = '127.0.0.1', timeoutMs = 1000): Probe {
  return () =>
    new Promise((resolve) => {
      const socket = net.connect({ port, host });
      const finish = (ok: boolean): void => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(timeoutMs, () => finish(false));
      socket.once('connect', () => finish(true));
      socket.once('error', () => finish(false));
    });
}

/** Ready when `GET path` over the unix socket answers with `expectStatus`. */
export function httpUnixProbe(socketPath: string, path: string, expectStatus = 200, timeoutMs = 1000): Probe {
  return () =>
    new Promise((resolve) => {
      const req = http.request({ socketPath, path, method: 'GET', timeout: timeoutMs }, (res) => {
        res.resume();
        resolve(res.statusCode === expectStatus);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
}

export interface ProcSocketEntry {
  port: number;
  /** Kernel socket state in hex as printed (`0A` = LISTEN for TCP, `07` = unconnected UDP). */
  state: string;
  inode: number;
}

/** Parses `/proc/net/{tcp,tcp6,udp,udp6}`: local port, state and socket inode of every line. */
export function parseProcNetSockets(text: string): ProcSocketEntry[] {
  const entries: ProcSocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    const state = fields[3];
    const inode = fields[9];
    if (!local || state === undefined || inode === undefined) continue;
    const port = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    if (Number.isInteger(port)) entries.push({ port, state, inode: Number(inode) });
  }
  return entries;
}

/**
 * Ready when a socket matching `port` (and `state`, if given) exists in the given /proc/net tables —
 * preferably one held by the service's own process, so another daemon on the host network that owns
 * the port does not count.
 */
function procSocketProbe(tables: readonly string[], port: number, state: string | null, procRoot: string): Probe {
  return async ({ pid }) => {
    const inodes = new Set<number>();
    for (const table of tables) {
      const text = await readFile(`${procRoot}/${table}`, 'utf8').catch(() => '');
      for (const entry of parseProcNetSockets(text)) {
        if (entry.port === port && (state === null || entry.state === state)) inodes.add(entry.inode);
      }
    }
    if (inodes.size === 0) return false;
    const own = await socketInodesOf(pid, procRoot);
    if (own === null) return true;
    for (const inode of own) if (inodes.has(inode)) return true;
    return false;
  };
}

/** Ready when the service has a UDP socket bound to `port` (any state): tftpd, dhcpd. */
export function udpBoundProbe(port: number, procRoot = '/proc'): Probe {
  return procSocketProbe(['net/udp', 'net/udp6'], port, null, procRoot);
}

/**
 * Ready when the service listens on TCP `port`, checked without connecting — for daemons such as
 * sshd that log every connection that closes without a handshake.
 */
export function tcpListeningProbe(port: number, procRoot = '/proc'): Probe {
  return procSocketProbe(['net/tcp', 'net/tcp6'], port, '0A', procRoot);
}

/** Socket inodes among a process's open files, or null when they cannot be read. */
async function socketInodesOf(pid: number, procRoot: string): Promise<Set<number> | null> {
  let fds: string[];
  try {
    fds = await readdir(`${procRoot}/${pid}/fd`);
  } catch {
    return null;
  }
  const inodes = new Set<number>();
  await Promise.all(
    fds.map(async (fd) => {
      const target = await readlink(`${procRoot}/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) inodes.add(Number(m[1]));
    }),
  );
  return inodes;
}
