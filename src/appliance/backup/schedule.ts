// The rolling set of backups the appliance keeps by itself: every `backup_interval` (default 24 h) a
// `cw-backup-auto-TIMESTAMP.tar.gz` in backup/, the newest `backup_keep` (default 7) kept. Backups made by
// `cw-containerctl backup` have other names and are never removed here.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { backupFileName } from '../../lib/backup-archive.js';
import { errorMessage } from '../../lib/errors.js';

export const DEFAULT_BACKUP_INTERVAL_S = 24 * 3600;
export const DEFAULT_BACKUP_KEEP = 7;
export const MIN_BACKUP_INTERVAL_S = 60;
export const MAX_BACKUP_INTERVAL_S = 366 * 24 * 3600;
export const MAX_BACKUP_KEEP = 1000;

const AUTO_RE = /^cw-backup-auto-(\d{8}T\d{6}Z)\.tar\.gz$/;
// setTimeout's limit is about 24.8 days: longer waits are taken in steps.
const MAX_TIMER_MS = 24 * 3600 * 1000;

/**
 * `24h`, `90m`, `3600` or `3600s`, `7d`; `off` or `0` for none. Returns seconds; throws a message for
 * anything else or a value outside 1 minute .. 366 days.
 */
export function parseBackupInterval(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === '0') return 0;
  const m = /^(\d{1,9})\s*([smhd]?)$/.exec(t);
  if (!m) throw new Error(`backup interval must be like 24h, 90m, 7d or off, not ${JSON.stringify(text.slice(0, 40))}`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(m[1]) * unit;
  if (seconds < MIN_BACKUP_INTERVAL_S || seconds > MAX_BACKUP_INTERVAL_S) throw new Error('backup interval must be between 1m and 366d (or off)');
  return seconds;
}

/** Seconds in the unit an admin would write: 86400 → `24h`, 604800 → `7d`, 5400 → `90m`, 0 → `off`. */
export function formatBackupInterval(seconds: number): string {
  if (seconds === 0) return 'off';
  if (seconds % 86400 === 0 && seconds >= 7 * 86400) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** The stored settings as numbers, defaults for unset or unreadable ones. */
export function backupSettings(stored: { interval?: string | undefined; keep?: string | undefined }): { intervalS: number; keep: number } {
  const interval = Number(stored.interval);
  const keep = Number(stored.keep);
  return {
    intervalS: stored.interval !== undefined && Number.isInteger(interval) && interval >= 0 ? interval : DEFAULT_BACKUP_INTERVAL_S,
    keep: stored.keep !== undefined && Number.isInteger(keep) && keep >= 1 ? keep : DEFAULT_BACKUP_KEEP,
  };
}

/** The time a scheduled backup's name carries, or undefined for other names. */
export function autoBackupTime(name: string): number | undefined {
  const m = AUTO_RE.exec(name);
  if (!m) return undefined;
  const s = m[1]!;
  return Date.parse(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`);
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface BackupScheduleOptions {
  /** The storage's backup/ directory. */
  dir: string;
  /** The current settings (read again before every decision, so a change needs no restart). */
  settings: () => Promise<{ intervalS: number; keep: number }>;
  /** Writes one archive named `fileName` into `dir`. */
  backup: (fileName: string) => Promise<void>;
  log: (line: string) => void;
  now?: () => number;
  timers?: Timers;
  /** The least wait after start before a backup that is already due (the head node settles first). */
  startDelayMs?: number;
  /** The wait before trying again after a failed backup (at most the interval). */
  retryMs?: number;
}

export class BackupSchedule {
  readonly #o: Required<BackupScheduleOptions>;
  #timer: unknown;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(options: BackupScheduleOptions) {
    this.#o = {
      now: Date.now,
      timers: { setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) },
      startDelayMs: 60_000,
      retryMs: 3600_000,
      ...options,
    };
  }

  /** Plans the first backup: when the newest scheduled one is an interval old, but not before the start delay. */
  start(): Promise<void> {
    return this.#plan(this.#o.startDelayMs);
  }

  /** The settings changed: plan again from them. */
  poke(): Promise<void> {
    return this.#plan(0);
  }

  /** No more backups; waits for one that is being written. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clear();
    await this.#running;
  }

  /** Scheduled backups in the directory, oldest first. */
  async list(): Promise<Array<{ name: string; time: number }>> {
    const names = await readdir(this.#o.dir).catch(() => [] as string[]);
    return names
      .map((name) => ({ name, time: autoBackupTime(name) }))
      .filter((e): e is { name: string; time: number } => e.time !== undefined)
      .sort((a, b) => a.time - b.time || a.name.localeCompare(b.name));
  }

  async #plan(minDelayMs: number): Promise<void> {
    this.#clear();
    if (this.#stopped) return;
    const { intervalS } = await this.#o.settings();
    if (intervalS === 0 || this.#stopped) return;
    const newest = (await this.list()).at(-1)?.time;
    const now = this.#o.now();
    const due = newest === undefined ? now : newest + intervalS * 1000;
    this.#arm(Math.max(due - now, minDelayMs));
  }

  #arm(ms: number): void {
    this.#clear();
    if (this.#stopped) return;
    const wait = Math.min(Math.max(ms, 0), MAX_TIMER_MS);
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      // A long wait taken in steps: plan again until the backup is due.
      if (wait < ms) return void this.#plan(0);
      this.#running = this.#fire();
    }, wait);
  }

  #clear(): void {
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #fire(): Promise<void> {
    const { intervalS, keep } = await this.#o.settings();
    if (intervalS === 0 || this.#stopped) return;
    const name = backupFileName(new Date(this.#o.now()), 'auto');
    try {
      await this.#o.backup(name);
      this.#o.log(`backup: wrote ${name}`);
      await this.#prune(keep);
    } catch (err) {
      this.#o.log(`backup: ${name} failed: ${errorMessage(err)}; trying again later`);
      this.#arm(Math.min(this.#o.retryMs, intervalS * 1000));
      return;
    }
    await this.#plan(0);
  }

  async #prune(keep: number): Promise<void> {
    const all = await this.list();
    for (const old of all.slice(0, Math.max(all.length - keep, 0))) {
      await rm(join(this.#o.dir, old.name), { force: true });
      this.#o.log(`backup: removed ${old.name} (keeping the newest ${keep})`);
    }
  }
}
