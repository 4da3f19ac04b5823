import test from 'ava';
import { spawn } from 'node:child_process';
import { lstat, mkdtemp, open, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openLogFiles, type LogFiles } from '../../../src/appliance/supervisor/log-files.js';
import { boundedWriter, FLUSH_BYTES, FLUSH_INTERVAL_MS, logFanOut } from '../../../src/appliance/supervisor/fanout.js';

const later = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** LogFiles that remember their lines. */
function memoryFiles(): LogFiles & { lines: Array<[string, string]>; flushes: number } {
  return {
    lines: [],
    flushes: 0,
    write(name, line) {
      this.lines.push([name, line]);
    },
    flush() {
      this.flushes++;
    },
    async close() {},
  };
}

test('lines collected together leave in one stdout write, each prefixed with its source', (t) => {
  const writes: string[] = [];
  const deferred: Array<() => void> = [];
  const files = memoryFiles();
  const sink = logFanOut(files, { out: (text) => writes.push(text), defer: (fn) => deferred.push(fn) });
  sink.write('dhcpd', 'DHCPDISCOVER from 52:54:00:00:00:01 via eth0');
  sink.write('dhcpd', 'DHCPOFFER on 10.0.0.5 to 52:54:00:00:00:01 via eth0');
  sink.write('api', 'CW API listening');
  t.deepEqual(writes, [], 'nothing is written at once');
  t.is(deferred.length, 1, 'one flush, however many lines');
  deferred.shift()!();
  t.deepEqual(writes, ['[dhcpd] DHCPDISCOVER from 52:54:00:00:00:01 via eth0\n[dhcpd] DHCPOFFER on 10.0.0.5 to 52:54:00:00:00:01 via eth0\n[api] CW API listening\n']);
  t.deepEqual(files.lines.map(([name]) => name), ['dhcpd', 'dhcpd', 'api']);

  sink.write('sshd', 'Server listening on :: port 22.');
  t.is(deferred.length, 1, 'the next line schedules the next flush');
  sink.flush();
  t.is(writes.at(-1), '[sshd] Server listening on :: port 22.\n', 'flush writes at once (before exit)');
  t.is(files.flushes, 1);
  deferred.shift()!();
  t.is(writes.length, 2, 'a flush with nothing collected writes nothing');
});

test('the real fan-out writes every line to stdout, in order, within a few milliseconds', async (t) => {
  const writes: string[] = [];
  const sink = logFanOut(memoryFiles(), { out: (text) => writes.push(text) });
  for (let i = 0; i < 3; i++) sink.write('tftpd', `line ${i}`);
  await later(FLUSH_INTERVAL_MS + 20);
  sink.write('tftpd', 'line 3');
  await later(FLUSH_INTERVAL_MS + 20);
  t.is(writes.join(''), '[tftpd] line 0\n[tftpd] line 1\n[tftpd] line 2\n[tftpd] line 3\n');
  t.is(writes.length, 2);
});

test('a flood is written in pieces as it comes, not held back', (t) => {
  const writes: string[] = [];
  const sink = logFanOut(memoryFiles(), { out: (text) => writes.push(text), defer: () => {} });
  const line = 'x'.repeat(99);
  for (let i = 0; i < 1000; i++) sink.write('dhcpd', line);
  t.true(writes.length >= Math.floor((1000 * 108) / FLUSH_BYTES) - 1);
  t.true(writes.every((w) => w.length <= FLUSH_BYTES + 108 && w.endsWith('\n')));
  sink.flush();
  t.is(writes.join('').split('\n').length - 1, 1000);
});

test('log files: one timestamped line per write in NAME-DATE.log, NAME.log links to it', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-logs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const at = Date.parse('2025-03-04T05:06:07.089Z');
  const files = openLogFiles(dir, { now: () => at });
  files.write('dhcpd', 'DHCPDISCOVER from 52:54:00:00:00:01 via eth0');
  files.write('dhcpd', 'DHCPOFFER on 10.0.0.5 to 52:54:00:00:00:01 via eth0');
  files.write('api', 'CW API listening');
  await later(30);
  files.write('dhcpd', 'DHCPREQUEST for 10.0.0.5');
  await files.close();
  files.write('dhcpd', 'after close: dropped');

  const link = path.join(dir, 'dhcpd.log');
  t.true((await lstat(link)).isSymbolicLink());
  t.regex(await readlink(link), /dhcpd-\d{4}-\d\d-\d\d\.log$/);
  t.is(
    await readFile(link, 'utf8'),
    '2025-03-04T05:06:07.089Z DHCPDISCOVER from 52:54:00:00:00:01 via eth0\n' +
      '2025-03-04T05:06:07.089Z DHCPOFFER on 10.0.0.5 to 52:54:00:00:00:01 via eth0\n' +
      '2025-03-04T05:06:07.089Z DHCPREQUEST for 10.0.0.5\n',
  );
  t.is(await readFile(path.join(dir, 'api.log'), 'utf8'), '2025-03-04T05:06:07.089Z CW API listening\n');
});

test('stdout whose reader stalls: the backlog stays bounded, dropped lines are counted and said once it reads again', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-fanout-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const received = path.join(dir, 'received');
  // A real pipe: cat copies it to a file; SIGSTOP makes it the reader that stopped reading.
  const out = await open(received, 'w');
  const reader = spawn('cat', [], { stdio: ['pipe', out.fd, 'ignore'] });
  t.teardown(() => reader.kill('SIGKILL'));
  reader.kill('SIGSTOP');
  const pipe = reader.stdin;
  if (!pipe) throw new Error('cat has no stdin pipe');
  const max = 256 * 1024;
  const write = boundedWriter(pipe, max);
  const line = `${'x'.repeat(99)}\n`;
  const chunk = line.repeat(320); // 32,000 bytes, 320 lines
  for (let i = 0; i < 100; i++) write(chunk); // 3.2 MB against a 64 KiB pipe
  t.true(pipe.writableLength <= max + chunk.length, `${pipe.writableLength} bytes queued`);
  const kept = Math.ceil(pipe.writableLength / chunk.length);
  reader.kill('SIGCONT');
  await new Promise((resolve) => pipe.once('drain', resolve));
  write('[dhcpd] after\n');
  pipe.end();
  await new Promise((resolve) => reader.once('exit', resolve));
  await out.close();
  const text = await readFile(received, 'utf8');
  const notice = /\[supervisor\] (\d+) log lines were not written here while the reader of this output was behind; STORAGE\/logs has them\n\[dhcpd\] after\n$/.exec(text);
  t.truthy(notice, text.slice(-300));
  const dropped = Number(notice?.[1]);
  const written = text.split('\n').filter((l) => l === 'x'.repeat(99)).length;
  t.is(written + dropped, 100 * 320, 'every line either reached the reader or was counted');
  t.true(dropped > 0 && written >= kept * 320);
});
