import test from 'ava';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleLog, consoleLogFile, stampLine, tailLines } from '../../../src/appliance/console/log-file.js';

function scratch(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cw-console-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('stampLine: ISO time, a space, the text without terminal controls (tabs kept)', (t) => {
  const at = new Date(Date.UTC(2026, 11, 6, 4, 20, 0, 123));
  t.is(stampLine(at, 'Debian GNU/Linux 12 n0 ttyS0'), '2026-12-06T04:20:00.123Z Debian GNU/Linux 12 n0 ttyS0');
  t.is(stampLine(at, '\x1b[1;32m[  OK  ]\x1b[0m Started\tsshd\x07\x00'), '2026-12-06T04:20:00.123Z [  OK  ] Started\tsshd');
  t.is(stampLine(at, '\x1b]0;title\x07login:'), '2026-12-06T04:20:00.123Z login:');
});

test('consoleLogFile refuses names that are not node names', (t) => {
  t.is(consoleLogFile('/var/lib/cw/logs/consoles', 'n0'), '/var/lib/cw/logs/consoles/n0.log');
  for (const bad of ['../x', 'a/b', '', '.hidden', 'a..b']) t.throws(() => consoleLogFile('/d', bad));
});

test('ConsoleLog appends lines in order, mode 0640, making its directory when missing', async (t) => {
  const file = join(scratch(t), 'consoles', 'n0.log');
  const log = new ConsoleLog(file);
  await Promise.all([log.append(['a', 'b']), log.append(['c'])]);
  await log.close();
  t.is(readFileSync(file, 'utf8'), 'a\nb\nc\n');
  t.is(statSync(file).mode & 0o777, 0o640);
});

test('ConsoleLog rotates by size and keeps 3 old files', async (t) => {
  const dir = scratch(t);
  const file = join(dir, 'n0.log');
  const log = new ConsoleLog(file, { maxBytes: 20, keep: 3 });
  // Each line is 10 bytes with its newline: two per file.
  for (let i = 0; i < 12; i++) await log.append([`line-${String(i).padStart(4, '0')}`]);
  await log.close();
  t.deepEqual(readdirSync(dir).sort(), ['n0.log', 'n0.log.1', 'n0.log.2', 'n0.log.3']);
  t.is(readFileSync(file, 'utf8'), 'line-0010\nline-0011\n');
  t.is(readFileSync(`${file}.1`, 'utf8'), 'line-0008\nline-0009\n');
  t.is(readFileSync(`${file}.3`, 'utf8'), 'line-0004\nline-0005\n');
  for (const name of readdirSync(dir)) t.true(statSync(join(dir, name)).size <= 20);
});

test('ConsoleLog picks up the size of an existing file and refuses a symlink in its place', async (t) => {
  const dir = scratch(t);
  const file = join(dir, 'n0.log');
  const first = new ConsoleLog(file, { maxBytes: 20 });
  await first.append(['line-0000']);
  await first.close();
  const again = new ConsoleLog(file, { maxBytes: 20 });
  await again.append(['line-0001', 'line-0002']);
  await again.close();
  t.is(readFileSync(`${file}.1`, 'utf8'), 'line-0000\n');
  symlinkSync('/etc/passwd', join(dir, 'n1.log'));
  const evil = new ConsoleLog(join(dir, 'n1.log'));
  await t.throwsAsync(evil.append(['x']));
});

test('tailLines returns the last N lines, reaching into the rotated file', async (t) => {
  const dir = scratch(t);
  const file = join(dir, 'n0.log');
  t.deepEqual(await tailLines(file, 10), []);
  const log = new ConsoleLog(file, { maxBytes: 20 });
  for (let i = 0; i < 5; i++) await log.append([`line-${String(i).padStart(4, '0')}`]);
  await log.close();
  t.deepEqual(await tailLines(file, 1), ['line-0004']);
  t.deepEqual(await tailLines(file, 3), ['line-0002', 'line-0003', 'line-0004']);
  t.deepEqual(await tailLines(file, 100), ['line-0002', 'line-0003', 'line-0004']);
});
