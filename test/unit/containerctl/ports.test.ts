import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import test from 'ava';
import { findPortInUse, probePort } from '../../../src/host/containerctl/start/ports.js';

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
