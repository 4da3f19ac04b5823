import test, { type ExecutionContext } from 'ava';
import * as dgram from 'node:dgram';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  createSyslogSink,
  parseSyslogMessage,
  routeSyslogMessage,
  SyslogStreamDecoder,
} from '../../../src/appliance/services/syslog/index.js';
import { eventually } from '../supervisor/fakes.js';

test('glibc syslog messages are parsed into identity, pid and text', (t) => {
  t.deepEqual(parseSyslogMessage('<29>Nov 21 08:28:23 in.tftpd[14545]: RRQ from 10.0.0.5 filename undionly.kpxe\n'), {
    facility: 3,
    severity: 5,
    ident: 'in.tftpd',
    pid: 14545,
    text: 'RRQ from 10.0.0.5 filename undionly.kpxe',
  });
  t.like(parseSyslogMessage('<190>Nov  1 08:00:00 httpd: 10.0.0.5 - - "GET /boot/x HTTP/1.1" 200'), { ident: 'httpd', pid: null, facility: 23 });
  t.is(parseSyslogMessage('no header'), null);
});

test('messages are routed to their service; dhcpd duplicates of stderr are dropped; others are kept', (t) => {
  const route = (raw: string) => routeSyslogMessage(parseSyslogMessage(raw)!);
  t.deepEqual(route('<29>Nov 21 08:28:23 in.tftpd[7]: RRQ from 10.0.0.5 filename ipxe.efi'), { source: 'tftpd', line: 'RRQ from 10.0.0.5 filename ipxe.efi' });
  t.is(route('<30>Nov 21 08:28:23 dhcpd[9]: DHCPDISCOVER from 52:54:00:00:00:01 via eth1'), null);
  t.deepEqual(route('<13>Nov 21 08:28:23 cron[3]: hello'), { source: 'syslog', line: 'cron[3]: hello' });
});

test('stream framing: NUL-terminated messages, split anywhere', (t) => {
  const out: string[] = [];
  const decoder = new SyslogStreamDecoder((raw) => out.push(raw));
  decoder.push('<29>Nov 21 08:28:23 in.tftpd[1]: one\n\0<29>Nov 21 08:');
  decoder.push('28:24 in.tftpd[1]: two\0');
  decoder.end();
  t.deepEqual(out, ['<29>Nov 21 08:28:23 in.tftpd[1]: one', '<29>Nov 21 08:28:24 in.tftpd[1]: two']);
});

/** A started sink on a socket in a fresh directory, collecting `[source] line`. */
async function startedSink(t: ExecutionContext) {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-syslog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'log');
  const lines: string[] = [];
  const sink = createSyslogSink({ socketPath, write: (source, line) => lines.push(`[${source}] ${line}`) });
  await sink.spec.start();
  return { socketPath, lines, sink };
}

test('the sink answers on a unix stream socket (what glibc falls back to) and on loopback UDP', async (t) => {
  const { socketPath, lines, sink } = await startedSink(t);
  t.is((await stat(socketPath)).mode & 0o777, 0o666);

  const conn = net.connect({ path: socketPath });
  await new Promise((resolve) => conn.once('connect', resolve));
  conn.write('<29>Nov 21 08:28:23 in.tftpd[14545]: RRQ from 127.0.0.1 filename hello.txt\n\0');
  const port = sink.udpPort();
  t.true(typeof port === 'number' && port > 0);
  const udp = dgram.createSocket('udp4');
  udp.send('<190>Nov 21 08:28:23 httpd: 127.0.0.1 - - "GET /boot/undionly.kpxe HTTP/1.1" 200', port as number, '127.0.0.1');
  t.true(await eventually(() => lines.length === 2));
  t.deepEqual(lines.sort(), [
    '[httpd] 127.0.0.1 - - "GET /boot/undionly.kpxe HTTP/1.1" 200',
    '[tftpd] RRQ from 127.0.0.1 filename hello.txt',
  ]);
  udp.close();

  await sink.spec.stop();
  await t.throwsAsync(stat(socketPath));
  t.is(sink.udpPort(), null);
  // A stale socket left by a crashed run is replaced on the next start.
  const stale = net.createServer().listen(socketPath);
  await new Promise((resolve) => stale.once('listening', resolve));
  await t.throwsAsync(sink.spec.start(), { message: /in use/ });
  await sink.spec.stop();
  stale.close();
});

test('a connection that shows itself as dhcpd is muted; other connections keep being delivered', async (t) => {
  const { socketPath, lines, sink } = await startedSink(t);
  t.teardown(() => sink.spec.stop());
  const open = async () => {
    const conn = net.connect({ path: socketPath });
    await new Promise((resolve) => conn.once('connect', resolve));
    return conn;
  };
  const dhcpd = await open();
  const tftpd = await open();
  dhcpd.write('<30>Nov 21 08:28:23 dhcpd[9]: DHCPDISCOVER from 52:54:00:00:00:01 via eth1\0');
  tftpd.write('<29>Nov 21 08:28:23 in.tftpd[14]: RRQ from 10.0.0.5 filename undionly.kpxe\0');
  t.true(await eventually(() => lines.length === 1));
  // Whatever follows on dhcpd's connection is not looked at, headers or not.
  dhcpd.write('<30>Nov 21 08:28:24 dhcpd[9]: DHCPOFFER on 10.0.0.5 to 52:54:00:00:00:01 via eth1\0continued\0<29>Nov 21 08:28:24 other: x\0');
  tftpd.write('<29>Nov 21 08:28:24 in.tftpd[14]: RRQ from 10.0.0.5 filename ipxe.efi\0');
  t.true(await eventually(() => lines.length === 2));
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(lines, ['[tftpd] RRQ from 10.0.0.5 filename undionly.kpxe', '[tftpd] RRQ from 10.0.0.5 filename ipxe.efi']);
  dhcpd.destroy();
  tftpd.destroy();
});
