import * as path from 'node:path';
import winston from 'winston';
import DailyRotateFile from 'winston-daily-rotate-file';

/** How long and how large rotated log files may grow before they are dropped or rolled. */
export const LOG_RETENTION = { maxFiles: '14d', maxSize: '20m' } as const;

/** One rotating log file per name under a directory: `DIR/NAME-YYYY-MM-DD.log` plus a `DIR/NAME.log` link to the current one. */
export interface LogFiles {
  /** Appends one line (timestamped) to `NAME.log`; lines written within `flushMs` reach the file together. */
  write(name: string, line: string): void;
  /** Hands the lines written so far to the files now instead of up to `flushMs` later. */
  flush(): void;
  /** Flushes and closes every file; later writes are dropped. */
  close(): Promise<void>;
}

/**
 * Creates a winston logger that appends its messages verbatim (one message may hold several lines,
 * each already timestamped) to a daily-rotated file.
 * Example: `createFileLogger('/var/lib/cw/logs', 'dhcpd').info('2025-01-01T00:00:00.000Z DHCPDISCOVER ...')`.
 */
export function createFileLogger(dir: string, name: string): winston.Logger {
  const transport = new DailyRotateFile({
    dirname: dir,
    filename: `${name}-%DATE%.log`,
    datePattern: 'YYYY-MM-DD',
    utc: true,
    maxFiles: LOG_RETENTION.maxFiles,
    maxSize: LOG_RETENTION.maxSize,
    createSymlink: true,
    symlinkName: `${name}.log`,
    auditFile: path.join(dir, `.${name}-audit.json`),
  });
  // A full disk or a vanished directory must never take the supervisor down with it.
  transport.on('error', () => undefined);
  return winston.createLogger({
    level: 'info',
    format: winston.format.printf((info) => String(info.message)),
    transports: [transport],
    exitOnError: false,
  });
}

/**
 * A lazily populated set of rotating files, one per name (service), in `dir`. A busy daemon (dhcpd logs
 * four lines per lease exchange) sends thousands of lines a second: they are collected for `flushMs`
 * and handed to the file's logger as one block instead of one winston write per line. Lines get the
 * time they were written, to the millisecond (computed once per millisecond, not per line).
 */
export function openLogFiles(dir: string, options: { now?: () => number; flushMs?: number } = {}): LogFiles {
  const now = options.now ?? Date.now;
  const flushMs = options.flushMs ?? 10;
  const loggers = new Map<string, winston.Logger>();
  // name -> the lines written since the last flush, each with its timestamp, `\n`-separated.
  const pending = new Map<string, string>();
  let stamp = '';
  let stampMs = Number.NaN;
  let scheduled = false;
  let closed = false;

  const flush = (): void => {
    scheduled = false;
    if (pending.size === 0) return;
    for (const [name, block] of pending) {
      let logger = loggers.get(name);
      if (!logger) {
        logger = createFileLogger(dir, name);
        loggers.set(name, logger);
      }
      logger.info(block);
    }
    pending.clear();
  };

  return {
    write(name, line) {
      if (closed) return;
      const ms = now();
      if (ms !== stampMs) {
        stampMs = ms;
        stamp = new Date(ms).toISOString();
      }
      const block = pending.get(name);
      pending.set(name, block === undefined ? `${stamp} ${line}` : `${block}\n${stamp} ${line}`);
      if (!scheduled) {
        scheduled = true;
        setTimeout(flush, flushMs);
      }
    },
    flush,
    async close() {
      flush();
      closed = true;
      await Promise.all([...loggers.values()].map((l) => closeLogger(l)));
      loggers.clear();
    },
  };
}

/** Ends a logger and waits (at most `timeoutMs`) until its files are flushed. */
export function closeLogger(logger: winston.Logger, timeoutMs = 1000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    logger.on('finish', () => {
      clearTimeout(timer);
      // The file transport finishes its own stream a tick after the logger does.
      setImmediate(resolve);
    });
    logger.end();
  });
}
