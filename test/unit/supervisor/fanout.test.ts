import test from 'ava';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openLogFiles, type LogFiles } from '../../../src/lib/log.js';
import { FLUSH_BYTES, FLUSH_INTERVAL_MS, logFanOut } from '../../../src/appliance/supervisor/fanout.js';

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
