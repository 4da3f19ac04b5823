import test from 'ava';
import { spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { httpUnixProbe, parseProcNetSockets, tcpListeningProbe, tcpProbe, udpBoundProbe } from '../../../src/appliance/supervisor/probes.js';

const UDP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 3435: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 154216 2 0000000070c81788 0
 3501: 00000000:4269 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 154999 2 0000000070c81788 0
`;

test('/proc/net tables are parsed into port, state and inode', (t) => {
  t.deepEqual(parseProcNetSockets(UDP), [
    { port: 67, state: '07', inode: 154216 },
    { port: 17001, state: '07', inode: 154999 },
  ]);
});

test('a UDP port counts only when the service itself holds the socket', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'cw-proc-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'net'));
  await writeFile(path.join(root, 'net', 'udp'), UDP);
  await mkdir(path.join(root, '42', 'fd'), { recursive: true });
  await symlink('socket:[154216]', path.join(root, '42', 'fd', '5'));
  await mkdir(path.join(root, '43', 'fd'), { recursive: true });
  await symlink('socket:[154999]', path.join(root, '43', 'fd', '5'));
  t.true(await udpBoundProbe(67, root)({ pid: 42 }));
  t.false(await udpBoundProbe(67, root)({ pid: 43 }), 'someone else owns port 67');
  t.false(await udpBoundProbe(69, root)({ pid: 42 }));
  t.true(await udpBoundProbe(67, root)({ pid: 999 }), 'unreadable fds: any owner will do');
});

test('real sockets: UDP bound, TCP listening, TCP connect, HTTP over a unix socket', async (t) => {
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const udpPort = udp.address().port;
  const tcp = net.createServer();
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const tcpPort = (tcp.address() as net.AddressInfo).port;
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-probe-'));
  const socketPath = path.join(dir, 'api.sock');
  const api = http.createServer((req, res) => res.writeHead(req.url === '/api/v1/version' ? 200 : 404).end());
  await new Promise<void>((resolve) => api.listen(socketPath, resolve));
  const other = spawn('sleep', ['30']);
  t.teardown(async () => {
    other.kill();
    udp.close();
    tcp.close();
    api.close();
    await rm(dir, { recursive: true, force: true });
  });

  const me = { pid: process.pid };
  t.true(await udpBoundProbe(udpPort)(me));
  t.false(await udpBoundProbe(udpPort)({ pid: other.pid as number }));
  t.true(await tcpListeningProbe(tcpPort)(me));
  t.false(await tcpListeningProbe(udpPort)(me));
  t.true(await tcpProbe(tcpPort)(me));
  t.true(await httpUnixProbe(socketPath, '/api/v1/version')(me));
  t.false(await httpUnixProbe(socketPath, '/other')(me));
  t.false(await httpUnixProbe(path.join(dir, 'missing.sock'), '/api/v1/version')(me));
  tcp.close();
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.false(await tcpProbe(tcpPort)(me));
});
