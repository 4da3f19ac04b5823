import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

export interface PortCheck {
  port: number;
  protocol: 'tcp' | 'udp';
  /** What to tell the user when it is taken, e.g. `use --http-port`. */
  hint: string;
}

export type PortState = 'free' | 'in-use' | 'unknown';

/** Tries to bind the port on all IPv4 addresses in this process: in use, free, or unknown (not allowed to bind). */
export function probePort(check: PortCheck, host = '0.0.0.0'): Promise<PortState> {
  return new Promise((resolve) => {
    const verdict = (err: NodeJS.ErrnoException | undefined): PortState =>
      !err ? 'free' : err.code === 'EADDRINUSE' ? 'in-use' : 'unknown';
    if (check.protocol === 'tcp') {
      const server = createServer();
      server.once('error', (err: NodeJS.ErrnoException) => resolve(verdict(err)));
      server.listen({ port: check.port, host, exclusive: true }, () => server.close(() => resolve('free')));
    } else {
      const socket = createSocket({ type: 'udp4', reuseAddr: false });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        socket.close();
        resolve(verdict(err));
      });
      socket.bind({ port: check.port, address: host, exclusive: true }, () => socket.close(() => resolve('free')));
    }
  });
}

/** The first port of the list that something on this host already uses (EACCES = cannot tell: skipped). */
export async function findPortInUse(checks: PortCheck[], host = '0.0.0.0'): Promise<PortCheck | undefined> {
  for (const check of checks) {
    if ((await probePort(check, host)) === 'in-use') return check;
  }
  return undefined;
}

/** The ports the appliance takes on the host under host networking. */
export function appliancePorts(ports: { http: number; https: number; ssh: number; tftp: number }): PortCheck[] {
  return [
    { port: ports.http, protocol: 'tcp', hint: 'use --http-port' },
    { port: ports.https, protocol: 'tcp', hint: 'use --https-port' },
    { port: ports.ssh, protocol: 'tcp', hint: 'use --ssh-port' },
    { port: 67, protocol: 'udp', hint: 'is another DHCP server running on this host?' },
    { port: ports.tftp, protocol: 'udp', hint: 'use --tftp-port' },
  ];
}
