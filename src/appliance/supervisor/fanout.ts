// The log fan-out: every daemon line once on stdout as `[source] line` (what `docker logs` shows) and
// once in `logs/SOURCE.log`. Lines are collected for a few milliseconds and leave in one stdout write
// (and one block per file): a busy dhcpd prints four lines per lease exchange, each with a write(2) of
// its own, and a write per line cost the supervisor, and the engine's log driver reading the pipe, more
// CPU than dhcpd itself. What waits for a stdout reader that stopped reading is bounded (boundedWriter).
import type { LogFiles } from './log-files.js';
import { prefixLine } from './lines.js';
import type { LogSink } from './types.js';

/** Longest a line waits for company before it is written. */
export const FLUSH_INTERVAL_MS = 10;
/** Collected text beyond which it is written at once (a pipe holds 64 KiB). */
export const FLUSH_BYTES = 32 * 1024;
/** stdout text waiting for its reader beyond which new lines are dropped there (they stay in logs/). */
export const MAX_PENDING_STDOUT = 8 * 1024 * 1024;

export interface LogFanOut extends LogSink {
  /** Writes what is collected now (before exiting, or from tests). */
  flush(): void;
}

export interface FanOutOptions {
  /** Receives stdout text: whole lines, each ending in `\n` (default: process.stdout, bounded). */
  out?: (text: string) => void;
  /** Runs `fn` a little later (default FLUSH_INTERVAL_MS later). */
  defer?: (fn: () => void) => void;
}

/** Example: `const sink = logFanOut(openLogFiles(dir)); sink.write('dhcpd', 'DHCPDISCOVER from ...')`. */
export function logFanOut(files: LogFiles, options: FanOutOptions = {}): LogFanOut {
  const out = options.out ?? boundedWriter(process.stdout);
  const defer = options.defer ?? ((fn: () => void) => void setTimeout(fn, FLUSH_INTERVAL_MS));
  let text = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (text === '') return;
    const chunk = text;
    text = '';
    out(chunk);
  };
  return {
    write(source, line) {
      text += `${prefixLine(source, line)}\n`;
      files.write(source, line);
      if (text.length >= FLUSH_BYTES) flush();
      else if (!scheduled) {
        scheduled = true;
        defer(flush);
      }
    },
    flush() {
      flush();
      files.flush();
    },
  };
}

/**
 * Writes to `stream` (stdout: a pipe the engine reads for `docker logs`) without holding an unbounded
 * backlog: writes to a pipe are queued in memory while its reader is away (the engine restarting, a log
 * driver that stalls), and a busy dhcpd prints megabytes a minute. Beyond `maxPending` queued bytes the
 * text is dropped here — every line is still in STORAGE/logs — and once the reader catches up, one line
 * says how many were dropped.
 */
export function boundedWriter(stream: NodeJS.WritableStream & { writableLength: number }, maxPending = MAX_PENDING_STDOUT): (text: string) => void {
  let dropped = 0;
  return (text) => {
    if (stream.writableLength > maxPending) {
      for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) dropped++;
      return;
    }
    if (dropped > 0) {
      stream.write(`${prefixLine('supervisor', `${dropped} log lines were not written here while the reader of this output was behind; STORAGE/logs has them`)}\n`);
      dropped = 0;
    }
    stream.write(text);
  };
}
