import test from 'ava';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BackupSchedule,
  autoBackupTime,
  backupSettings,
  formatBackupInterval,
  parseBackupInterval,
  type Timers,
} from '../../../src/appliance/backup/schedule.js';
import { backupFileName } from '../../../src/lib/backup-archive.js';
import { tempDir } from '../lib/keys.js';

/** Timers that fire only when the test says so, with a clock the test moves. */
class FakeTimers implements Timers {
  now = Date.parse('2026-12-06T00:00:00Z');
  pending: Array<{ fn: () => void; at: number; id: number }> = [];
  #next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.pending.push({ fn, at: this.now + ms, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((p) => p.id !== handle);
  }
  /** Moves the clock to the next timer and runs it; returns how far the clock moved (ms). */
  fireNext(): number {
    this.pending.sort((a, b) => a.at - b.at);
    const next = this.pending.shift();
    if (!next) throw new Error('no timer pending');
    const moved = next.at - this.now;
    this.now = next.at;
    next.fn();
    return moved;
  }
}

function schedule(t: { teardown(fn: () => void): void }, settings: { intervalS: number; keep: number }, failing = false) {
  const { dir, cleanup } = tempDir('cw-sched-');
  t.teardown(cleanup);
  const timers = new FakeTimers();
  const logs: string[] = [];
  let made = 0;
  const sched = new BackupSchedule({
    dir,
    settings: async () => settings,
    backup: async (name) => {
      if (failing) throw new Error('disk full');
      made++;
      writeFileSync(join(dir, name), 'x');
    },
    log: (l) => logs.push(l),
    now: () => timers.now,
    timers,
    startDelayMs: 60_000,
    retryMs: 600_000,
  });
  return { dir, timers, logs, sched, made: () => made };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

test('intervals parse and print in the units admins write', (t) => {
  t.is(parseBackupInterval('24h'), 86400);
  t.is(parseBackupInterval('90m'), 5400);
  t.is(parseBackupInterval('7d'), 604800);
  t.is(parseBackupInterval('3600'), 3600);
  t.is(parseBackupInterval('off'), 0);
  t.throws(() => parseBackupInterval('30s'), { message: /between 1m and 366d/ });
  t.throws(() => parseBackupInterval('1 week'), { message: /like 24h/ });
  t.is(formatBackupInterval(86400), '24h');
  t.is(formatBackupInterval(604800), '7d');
  t.is(formatBackupInterval(5400), '90m');
  t.is(formatBackupInterval(0), 'off');
  t.deepEqual(backupSettings({}), { intervalS: 86400, keep: 7 });
  t.deepEqual(backupSettings({ interval: '0', keep: '2' }), { intervalS: 0, keep: 2 });
  t.deepEqual(backupSettings({ interval: 'junk', keep: '-1' }), { intervalS: 86400, keep: 7 });
  t.is(autoBackupTime(backupFileName(new Date('2026-12-06T10:15:00Z'), 'auto')), Date.parse('2026-12-06T10:15:00Z'));
  t.is(autoBackupTime(backupFileName(new Date('2026-12-06T10:15:00Z'))), undefined);
});

test('the first backup comes after the start delay, then one per interval, and only the newest N scheduled ones stay', async (t) => {
  const { dir, timers, sched, made } = schedule(t, { intervalS: 3600, keep: 2 });
  writeFileSync(join(dir, 'cw-backup-20261201T000000Z.tar.gz'), 'manual, never pruned');
  await sched.start();
  t.is(timers.fireNext(), 60_000);
  await settle();
  t.is(made(), 1);
  for (let i = 0; i < 3; i++) {
    t.is(timers.fireNext(), 3600_000);
    await settle();
  }
  t.is(made(), 4);
  const names = readdirSync(dir).sort();
  t.deepEqual(names, [
    'cw-backup-20261201T000000Z.tar.gz',
    backupFileName(new Date(timers.now - 3600_000), 'auto'),
    backupFileName(new Date(timers.now), 'auto'),
  ]);
  await sched.stop();
  t.is(timers.pending.length, 0);
});

test('after a restart the next backup is an interval after the newest one, not at once', async (t) => {
  const { dir, timers, sched } = schedule(t, { intervalS: 86400, keep: 7 });
  writeFileSync(join(dir, backupFileName(new Date(timers.now - 3600_000), 'auto')), 'x');
  await sched.start();
  t.is(timers.fireNext(), 23 * 3600_000);
});

test('interval off: no timer; a failed backup is logged and tried again', async (t) => {
  const off = schedule(t, { intervalS: 0, keep: 7 });
  await off.sched.start();
  t.is(off.timers.pending.length, 0);
  const failing = schedule(t, { intervalS: 86400, keep: 7 }, true);
  await failing.sched.start();
  failing.timers.fireNext();
  await settle();
  t.true(failing.logs.some((l) => /failed: disk full; trying again later/.test(l)));
  t.is(failing.timers.fireNext(), 600_000);
});
