import { chmod, chown, readFile } from 'node:fs/promises';
import { httpUnixProbe, type Probe } from '../../supervisor/probes.js';
import type { ChildServiceSpec } from '../../supervisor/types.js';
import { DAEMON_RESTART, type ServiceContext } from '../context.js';

/** The group nginx's workers run as; they must be able to connect to the API socket. */
export const PROXY_GROUP = 'www-data';

/** Numeric gid of a group in /etc/group, or null. */
export async function groupId(name: string, groupFile = '/etc/group'): Promise<number | null> {
  const text = await readFile(groupFile, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}

/**
 * Ready when `/api/v1/version` answers 200 over the socket. The API is asked (CW_API_SOCKET_GROUP) to
 * open its socket to nginx's workers; this makes sure of it (group www-data, 0660) either way. Without
 * that group the socket is never opened to everyone: the API does not become ready, and the error says why.
 */
export function apiReadyProbe(socketPath: string, group = PROXY_GROUP, groupFile = '/etc/group'): Probe {
  const answers = httpUnixProbe(socketPath, '/api/v1/version');
  return async (ctx) => {
    if (!(await answers(ctx))) return false;
    const gid = await groupId(group, groupFile);
    if (gid === null) throw new Error(`group ${group} is missing from ${groupFile}: nginx cannot reach the API socket ${socketPath}, which stays closed to other users`);
    await chown(socketPath, 0, gid);
    await chmod(socketPath, 0o660);
    return true;
  };
}

/** The CW API (Node), listening on the unix socket nginx proxies to. */
export function apiService(ctx: ServiceContext): ChildServiceSpec {
  return {
    kind: 'child',
    name: 'api',
    dependsOn: [],
    essential: true,
    command: () => ({
      command: ctx.bins.node,
      args: [ctx.bins.apiMain],
      env: {
        ...ctx.baseEnv,
        CW_STORAGE: ctx.paths.storage,
        CW_RUN_DIR: ctx.paths.runDir,
        CW_API_SOCKET: ctx.paths.apiSocket,
        CW_API_SOCKET_GROUP: PROXY_GROUP,
        // Signed challenges name the URL the tools used: the head node's addresses on this port.
        CW_HTTP_PORT: String(ctx.ports.http),
        CW_HTTPS_PORT: String(ctx.ports.https),
        // Admins attach to serial consoles through sshd on this port (GET /node/:id/console tells them).
        CW_SSH_PORT: String(ctx.ports.ssh),
        CW_SUPERVISOR_SOCKET: ctx.paths.controlSocket,
      },
    }),
    readiness: { probe: apiReadyProbe(ctx.paths.apiSocket), intervalMs: 100, timeoutMs: 20_000 },
    restart: DAEMON_RESTART,
    reload: { kind: 'restart' },
    stopDeadlineMs: 3000,
  };
}
