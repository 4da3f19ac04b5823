import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { closeSync } from 'node:fs';
import { appendFile, chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  createSyslogSink,
  openPrivateFifo,
  parseSyslogMessage,
  routeSyslogMessage,
  SyslogStreamDecoder,
} from '../../../src/appliance/services/syslog/index.js';
import { requireTools, toolPath } from '../../helpers/tools.js';
import { eventually } from '../supervisor/fakes.js';

const rootTest = requireTools('root', 'setpriv');

test('glibc syslog messages are parsed into identity, pid and text', (t) => {
  t.deepEqual(parseSyslogMessage('<29>Nov 21 08:28:23 in.tftpd[14545]: RRQ from 10.0.0.5 filename undionly.kpxe\n'), {
    facility: 3,
    severity: 5,
    ident: 'in.tftpd',
    pid: 14545,
    text: 'RRQ from 10.0.0.5 filename undionly.kpxe',
  });
  t.like(parseSyslogMessage('<190>Nov  1 08:00:00 cron: 10.0.0.5 - - "GET /boot/x HTTP/1.1" 200'), { ident: 'cron', pid: null, facility: 23 });
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

/** A started sink on a socket and an access-log FIFO in a fresh directory, collecting `[source] line`. */
async function startedSink(t: ExecutionContext) {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-syslog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'log');
  const fifoPath = path.join(dir, 'run', 'nginx-access.fifo');
  const lines: string[] = [];
  const sink = createSyslogSink({ socketPath, accessLogFifo: fifoPath, write: (source, line) => lines.push(`[${source}] ${line}`) });
  await sink.spec.start();
  return { socketPath, fifoPath, lines, sink };
}

test('the sink answers on a unix stream socket (what glibc falls back to) and reads the access log from a FIFO, both mode 0600', async (t) => {
  const { socketPath, fifoPath, lines, sink } = await startedSink(t);
  t.is((await stat(socketPath)).mode & 0o777, 0o600);
  const fifo = await stat(fifoPath);
  t.true(fifo.isFIFO());
  t.is(fifo.mode & 0o777, 0o600);
  t.is(sink.accessLogPath(), fifoPath);

  const conn = net.connect({ path: socketPath });
  await new Promise((resolve) => conn.once('connect', resolve));
  conn.write('<29>Nov 21 08:28:23 in.tftpd[14545]: RRQ from 127.0.0.1 filename hello.txt\n\0');
  // nginx's master opens the FIFO by path like a log file and writes a line per request; closing it
  // (a restart) does not end the reading.
  await appendFile(fifoPath, '127.0.0.1 - - "GET /boot/undionly.kpxe HTTP/1.1" 200\n');
  await appendFile(fifoPath, '127.0.0.1 - - "GET /boot/ipxe.efi HTTP/1.1" 404\n');
  t.true(await eventually(() => lines.length === 3));
  t.deepEqual(lines.sort(), [
    '[httpd] 127.0.0.1 - - "GET /boot/ipxe.efi HTTP/1.1" 404',
    '[httpd] 127.0.0.1 - - "GET /boot/undionly.kpxe HTTP/1.1" 200',
    '[tftpd] RRQ from 127.0.0.1 filename hello.txt',
  ]);
  conn.destroy();

  await sink.spec.stop();
  await t.throwsAsync(stat(socketPath));
  await t.throwsAsync(stat(fifoPath));
  t.is(sink.accessLogPath(), null);
  // A stale socket left by a crashed run is replaced on the next start.
  const stale = net.createServer().listen(socketPath);
  await new Promise((resolve) => stale.once('listening', resolve));
  await t.throwsAsync(sink.spec.start(), { message: /in use/ });
  await sink.spec.stop();
  stale.close();
});

test('whatever a previous run left at the FIFO path is replaced by a fresh private FIFO', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-syslog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fifoPath = path.join(dir, 'nginx-access.fifo');
  await writeFile(fifoPath, 'a regular file', { mode: 0o666 });
  const fd = await openPrivateFifo(fifoPath);
  t.teardown(() => closeSync(fd));
  const st = await stat(fifoPath);
  t.true(st.isFIFO());
  t.is(st.mode & 0o777, 0o600);
});

test('httpd lines come only from the FIFO: a /dev/log message tagged httpd is shown as syslog', (t) => {
  const routed = routeSyslogMessage(parseSyslogMessage('<190>Nov 21 08:28:23 httpd: 10.0.0.5 - - "GET /boot/x HTTP/1.1" 200')!);
  t.deepEqual(routed, { source: 'syslog', line: 'httpd: 10.0.0.5 - - "GET /boot/x HTTP/1.1" 200' });
});

rootTest('a process that is not root can neither write to the socket nor open the FIFO', async (t) => {
  const { socketPath, fifoPath, lines, sink } = await startedSink(t);
  t.teardown(() => sink.spec.stop());
  const dir = path.dirname(socketPath);
  // The temporary directories are private to root; let nobody reach the two paths, so only their own modes count.
  await chmod(dir, 0o755);
  await chmod(path.dirname(fifoPath), 0o755);
  const asNobody = (script: string) =>
    execa(toolPath('setpriv'), ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '-e', script], { reject: false, all: true });
  const fifoTry = await asNobody(`require('fs').appendFileSync(${JSON.stringify(fifoPath)}, '6.6.6.6 - - "GET /forged HTTP/1.1" 200\\n')`);
  t.not(fifoTry.exitCode, 0);
  t.regex(fifoTry.all ?? '', /EACCES/);
  const socketTry = await asNobody(
    `const c = require('net').connect(${JSON.stringify(socketPath)}); c.on('connect', () => { c.end('<29>Nov 21 08:28:23 in.tftpd[1]: forged\\0'); }); c.on('error', (e) => { console.error(e.code); process.exit(3); });`,
  );
  t.is(socketTry.exitCode, 3);
  t.regex(socketTry.all ?? '', /EACCES/);
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(lines, []);
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
