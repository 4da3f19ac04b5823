import { execa } from 'execa';
import { closeSync, constants as fsConstants, fstatSync, openSync } from 'node:fs';
import { chmod, mkdir, rm, unlink } from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { removeStaleSocket } from '../../supervisor/control.js';
import type { InternalServiceSpec } from '../../supervisor/types.js';

/** Which service a syslog identity belongs to; `null` drops lines the service already prints on stderr. */
export const SYSLOG_IDENTS: Readonly<Record<string, string | null>> = {
  'in.tftpd': 'tftpd',
  tftpd: 'tftpd',
  // `dhcpd -d` copies every syslog line to stderr, where the supervisor already reads it.
  dhcpd: null,
};

export interface SyslogMessage {
  facility: number;
  severity: number;
  ident: string;
  pid: number | null;
  text: string;
}

const HEADER = /^<(\d{1,3})>(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d )?(.*)$/s;
const TAG = /^([^\s[\]:]{1,64})(?:\[(\d+)\])?: ?(.*)$/s;

/** Parses one BSD-style syslog message as glibc's syslog(3) sends it: `<29>Nov 21 08:28:23 in.tftpd[42]: RRQ ...`. */
export function parseSyslogMessage(raw: string): SyslogMessage | null {
  const header = HEADER.exec(raw);
  if (!header) return null;
  const pri = Number(header[1]);
  const rest = header[2] ?? '';
  const tag = TAG.exec(rest);
  return {
    facility: pri >> 3,
    severity: pri & 7,
    ident: tag?.[1] ?? '',
    pid: tag?.[2] ? Number(tag[2]) : null,
    text: (tag ? (tag[3] ?? '') : rest).replace(/\s+$/, ''),
  };
}

/** Where a message goes: `{source: 'tftpd', line: 'RRQ ...'}`, or null to drop it. */
export function routeSyslogMessage(message: SyslogMessage): { source: string; line: string } | null {
  if (Object.hasOwn(SYSLOG_IDENTS, message.ident)) {
    const source = SYSLOG_IDENTS[message.ident];
    return source ? { source, line: message.text } : null;
  }
  const who = message.ident ? `${message.ident}${message.pid !== null ? `[${message.pid}]` : ''}: ` : '';
  return { source: 'syslog', line: `${who}${message.text}` };
}

/**
 * Splits one connection's byte stream into messages. glibc falls back to a stream socket when
 * /dev/log is not a datagram socket (EPROTOTYPE) and then ends every message with a NUL byte.
 */
export class SyslogStreamDecoder {
  private buffer = '';
  constructor(private readonly emit: (raw: string) => void) {}

  push(chunk: string): void {
    this.buffer += chunk;
    const parts = this.buffer.split(/\0|\n/);
    this.buffer = parts.pop() ?? '';
    for (const part of parts) if (part.trim() !== '') this.emit(part);
    if (this.buffer.length > 64 * 1024) this.end();
  }

  end(): void {
    if (this.buffer.trim() !== '') this.emit(this.buffer);
    this.buffer = '';
  }
}

export interface SyslogSinkOptions {
  socketPath: string;
  /** The FIFO nginx writes its access log to (`RUN/nginx-access.fifo`); none: no access log. */
  accessLogFifo?: string;
  /** The `mkfifo` binary (Node has no mkfifo). */
  mkfifo?: string;
  write(source: string, line: string): void;
}

export interface SyslogSink {
  spec: InternalServiceSpec;
  /** The FIFO nginx's access log goes to, once it is open for reading; null before, or without one. */
  accessLogPath(): string | null;
}

/**
 * Makes a FIFO only this user may open (mode 0600) at `fifoPath`, replacing whatever a previous run left
 * there, and opens it for reading. Opened read-write, so it never reports the end when nginx closes its
 * end (a restart, a reload) and a writer's open never waits for a reader. Checked on the open handle:
 * what is read from is a FIFO of this user with mode 0600, not something swapped in under the name.
 */
export async function openPrivateFifo(fifoPath: string, mkfifo = 'mkfifo'): Promise<number> {
  await mkdir(path.dirname(fifoPath), { recursive: true, mode: 0o755 });
  await rm(fifoPath, { force: true });
  const made = await execa(mkfifo, ['-m', '0600', '--', fifoPath], { reject: false, all: true, stdin: 'ignore', timeout: 10_000 });
  if (made.exitCode !== 0) throw new Error(`cannot make the access log FIFO ${fifoPath}: ${String(made.all ?? made.shortMessage).trim()}`);
  const fd = openSync(fifoPath, fsConstants.O_RDWR | fsConstants.O_NONBLOCK | fsConstants.O_NOFOLLOW);
  const st = fstatSync(fd);
  const uid = process.getuid?.() ?? st.uid;
  if (!st.isFIFO() || (st.mode & 0o777) !== 0o600 || st.uid !== uid) {
    closeSync(fd);
    throw new Error(`${fifoPath} is not a FIFO of uid ${uid} with mode 0600; refusing to read it`);
  }
  return fd;
}

/**
 * The supervisor's syslog sink: no child, it lives in the supervisor process. Only root (the supervisor's
 * user) can write to it: a line shown as `[tftpd]` or `[httpd]` came from that daemon, not from any
 * process that can reach a port.
 *
 * `/dev/log`, mode 0600: Node has no unix datagram sockets, so it listens on a unix *stream* socket;
 * glibc's syslog(3) retries with SOCK_STREAM when connecting a datagram socket fails with EPROTOTYPE,
 * which is exactly what a stream listener answers. Daemons must connect as root, before they chroot and
 * drop privileges (tftpd does, with LOG_NDELAY; dhcpd stays root), which is why tftpd depends on this
 * service.
 *
 * A FIFO, mode 0600, for nginx's access log: nginx's master (root) opens it by path like a log file and
 * its workers inherit the handle; each request is one line. (Not `/dev/stdout`: nginx opens it by path,
 * which fails on the socket pair Node gives its children. Not nginx's syslog client: it speaks UDP, which
 * any local process could forge, or unix datagrams, which Node cannot receive.)
 */
export function createSyslogSink(options: SyslogSinkOptions): SyslogSink {
  let server: net.Server | null = null;
  let fifo: net.Socket | null = null;
  let fifoOpen = false;
  const connections = new Set<net.Socket>();

  /** Delivers one message; returns where it went (null: nowhere) and whether its sender is one we drop. */
  const deliver = (raw: string, previous: string | null): { source: string | null; muted: boolean } => {
    const message = parseSyslogMessage(raw);
    // A line without a header continues the previous message of the same connection.
    if (!message) {
      if (previous) options.write(previous, raw.replace(/\s+$/, ''));
      return { source: previous, muted: false };
    }
    const routed = routeSyslogMessage(message);
    if (routed) options.write(routed.source, routed.line);
    // routeSyslogMessage drops a message only for a sender whose lines we never want.
    return { source: routed?.source ?? null, muted: routed === null };
  };

  const openAccessLog = async (fifoPath: string): Promise<void> => {
    const fd = await openPrivateFifo(fifoPath, options.mkfifo);
    const pipe = new net.Socket({ fd, readable: true, writable: false });
    pipe.setEncoding('utf8');
    // One access log line per request, no syslog header.
    const decoder = new SyslogStreamDecoder((line) => options.write('httpd', line.replace(/\s+$/, '')));
    pipe.on('data', (chunk: string) => decoder.push(chunk));
    pipe.on('error', () => undefined);
    fifo = pipe;
    fifoOpen = true;
  };

  const spec: InternalServiceSpec = {
    kind: 'internal',
    name: 'syslog',
    dependsOn: [],
    essential: true,
    async start() {
      await removeStaleSocket(options.socketPath);
      const srv = net.createServer((conn) => {
        connections.add(conn);
        conn.setEncoding('utf8');
        let lastSource: string | null = null;
        // A connection is one process's openlog(3). Once it shows itself as a sender whose lines we drop
        // (dhcpd: a line per DHCP message, already read from its stderr), the rest of it is not even
        // parsed: at thousands of leases a second that parsing was a third of a core.
        let muted = false;
        const decoder = new SyslogStreamDecoder((raw) => {
          if (muted) return;
          const delivered = deliver(raw, lastSource);
          lastSource = delivered.source;
          muted = delivered.muted;
        });
        conn.on('data', (chunk: string) => {
          if (!muted) decoder.push(chunk);
        });
        conn.on('end', () => decoder.end());
        conn.on('error', () => undefined);
        conn.on('close', () => connections.delete(conn));
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(options.socketPath, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      srv.on('error', () => undefined);
      server = srv;
      await chmod(options.socketPath, 0o600);

      if (options.accessLogFifo) await openAccessLog(options.accessLogFifo);
    },
    async stop() {
      fifo?.destroy();
      fifo = null;
      if (fifoOpen && options.accessLogFifo) await unlink(options.accessLogFifo).catch(() => undefined);
      fifoOpen = false;
      const srv = server;
      server = null;
      if (!srv) return;
      for (const conn of connections) conn.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
      await unlink(options.socketPath).catch(() => undefined);
    },
  };
  return { spec, accessLogPath: () => (fifoOpen ? (options.accessLogFifo ?? null) : null) };
}
