import * as path from 'node:path';
import winston from 'winston';
import DailyRotateFile from 'winston-daily-rotate-file';

/** How long and how large rotated log files may grow before they are dropped or rolled. */
export const LOG_RETENTION = { maxFiles: '14d', maxSize: '20m' } as const;

/** One rotating log file per name under a directory: `DIR/NAME-YYYY-MM-DD.log` plus a `DIR/NAME.log` link to the current one. */
export interface LogFiles {
  /** Appends one line (timestamped) to `NAME.log`. */
  write(name: string, line: string): void;
  /** Flushes and closes every file; later writes are dropped. */
  close(): Promise<void>;
}

/**
 * Creates a winston logger that appends plain timestamped lines to a daily-rotated file.
 * Example: `createFileLogger('/var/lib/cw/logs', 'dhcpd').info('DHCPDISCOVER ...')`.
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
    format: winston.format.printf((info) => `${new Date().toISOString()} ${String(info.message)}`),
    transports: [transport],
    exitOnError: false,
  });
}

/** A lazily populated set of rotating files, one per name (service), in `dir`. */
export function openLogFiles(dir: string): LogFiles {
  const loggers = new Map<string, winston.Logger>();
  let closed = false;
  return {
    write(name, line) {
      if (closed) return;
      let logger = loggers.get(name);
      if (!logger) {
        logger = createFileLogger(dir, name);
        loggers.set(name, logger);
      }
      logger.info(line);
    },
    async close() {
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
