import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import test from 'ava';
import { appliancePorts, findPortInUse, hostIPv4Addresses, probePort } from '../../../src/host/containerctl/start/ports.js';

async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('a TCP port someone listens on is reported in use', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const busy = await findPortInUse([{ port, protocol: 'tcp', hint: 'use --http-port' }]);
    t.deepEqual(busy, { port, protocol: 'tcp', hint: 'use --http-port' });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  t.is(await probePort({ port, protocol: 'tcp', hint: '' }), 'free');
});

test('a bound UDP port is reported in use', async (t) => {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', resolve));
  const { port } = socket.address();
  try {
    t.is(await probePort({ port, protocol: 'udp', hint: '' }), 'in-use');
  } finally {
    socket.close();
  }
});

test('free ports pass, and the check leaves them free', async (t) => {
  const port = await freeTcpPort();
  t.is(await findPortInUse([{ port, protocol: 'tcp', hint: '' }]), undefined);
  t.is(await probePort({ port, protocol: 'tcp', hint: '' }), 'free');
});

// systemd-resolved holds 53 on 127.0.0.53 only; the appliance's DNS server binds each host address on
// its own socket, so that is no conflict, while a server on one of those addresses (or on all) is.
test('the DNS port is probed per address: a server on another loopback address is no conflict, one on a host address is', async (t) => {
  const resolved = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve) => resolved.bind(0, '127.0.0.53', resolve));
  const { port } = resolved.address();
  t.teardown(() => resolved.close());
  const dns = (addresses: string[]) => appliancePorts({ http: 1, https: 2, ssh: 3, tftp: 4, dns: port }, addresses).filter((c) => c.port === port && c.protocol === 'udp');
  t.is(await findPortInUse(dns(['127.0.0.1'])), undefined);
  // The same port on all addresses at once would collide with it.
  t.is(await probePort({ port, protocol: 'udp', hint: '' }), 'in-use');
  const other = createSocket('udp4');
  await new Promise<void>((resolve) => other.bind(port, '127.0.0.1', resolve));
  t.teardown(() => other.close());
  t.like(await findPortInUse(dns(['127.0.0.1'])), { port, protocol: 'udp', hint: 'use --dns-port, or stop the DNS server that holds it' });
});

test('appliancePorts checks DNS on udp and tcp at each host address, 127.0.0.1 included', (t) => {
  const checks = appliancePorts({ http: 80, https: 443, ssh: 2200, tftp: 69, dns: 53 }, hostIPv4Addresses({ eth0: [{ family: 'IPv4', address: '10.0.0.2' } as never], eth1: [{ family: 'IPv6', address: 'fe80::1' } as never] }));
  t.deepEqual(
    checks.filter((c) => c.port === 53).map((c) => [c.protocol, c.addresses]),
    [
      ['udp', ['127.0.0.1', '10.0.0.2']],
      ['tcp', ['127.0.0.1', '10.0.0.2']],
    ],
  );
});
