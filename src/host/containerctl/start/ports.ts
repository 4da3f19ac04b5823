import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';

export interface PortCheck {
  port: number;
  protocol: 'tcp' | 'udp';
  /** What to tell the user when it is taken, e.g. `use --http-port`. */
  hint: string;
  /**
   * Probe each of these addresses instead of all at once (0.0.0.0): for a daemon that binds every address
   * on its own socket (the DNS server), so a server on another address (systemd-resolved's 127.0.0.53)
   * is no conflict.
   */
  addresses?: readonly string[];
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
    for (const address of check.addresses ?? [host]) {
      if ((await probePort(check, address)) === 'in-use') return check;
    }
  }
  return undefined;
}

/** The host's own IPv4 addresses (127.0.0.1 among them): where the DNS server binds under host networking. */
export function hostIPv4Addresses(table = networkInterfaces()): string[] {
  const addresses = new Set<string>(['127.0.0.1']);
  for (const infos of Object.values(table)) for (const info of infos ?? []) if (info.family === 'IPv4') addresses.add(info.address);
  return [...addresses];
}

/** The ports the appliance takes on the host under host networking. */
export function appliancePorts(
  ports: { http: number; https: number; ssh: number; tftp: number; dns: number },
  dnsAddresses: readonly string[] = hostIPv4Addresses(),
): PortCheck[] {
  const dnsHint = 'use --dns-port, or stop the DNS server that holds it';
  return [
    { port: ports.http, protocol: 'tcp', hint: 'use --http-port' },
    { port: ports.https, protocol: 'tcp', hint: 'use --https-port' },
    { port: ports.ssh, protocol: 'tcp', hint: 'use --ssh-port' },
    { port: 67, protocol: 'udp', hint: 'is another DHCP server running on this host?' },
    { port: ports.tftp, protocol: 'udp', hint: 'use --tftp-port' },
    { port: ports.dns, protocol: 'udp', hint: dnsHint, addresses: dnsAddresses },
    { port: ports.dns, protocol: 'tcp', hint: dnsHint, addresses: dnsAddresses },
  ];
}
