import * as dgram from 'node:dgram';
import { chmod, unlink } from 'node:fs/promises';
import * as net from 'node:net';
import { removeStaleSocket } from '../../supervisor/control.js';
import type { InternalServiceSpec } from '../../supervisor/types.js';

/** Which service a syslog identity belongs to; `null` drops lines the service already prints on stderr. */
export const SYSLOG_IDENTS: Readonly<Record<string, string | null>> = {
  'in.tftpd': 'tftpd',
  tftpd: 'tftpd',
  // nginx's access log arrives over UDP with this tag (see nginx.conf.template).
  httpd: 'httpd',
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
  write(source: string, line: string): void;
}

export interface SyslogSink {
  spec: InternalServiceSpec;
  /** The loopback UDP port nginx sends its access log to, once started. */
  udpPort(): number | null;
}

/**
 * The supervisor's syslog sink: no child, it lives in the supervisor process.
 *
 * `/dev/log`: Node has no unix datagram sockets, so it listens on a unix *stream* socket; glibc's
 * syslog(3) retries with SOCK_STREAM when connecting a datagram socket fails with EPROTOTYPE, which
 * is exactly what a stream listener answers. Daemons must connect before they chroot (tftpd does,
 * with LOG_NDELAY), which is why tftpd depends on this service.
 *
 * UDP on 127.0.0.1 (ephemeral port): for nginx's access log. nginx opens `/dev/stdout` by path, and
 * that fails when stdout is the socket pair Node gives its children; its syslog client speaks UDP.
 */
export function createSyslogSink(options: SyslogSinkOptions): SyslogSink {
  let server: net.Server | null = null;
  let udp: dgram.Socket | null = null;
  let port: number | null = null;
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

  const spec: InternalServiceSpec = {
    kind: 'internal',
    name: 'syslog',
    dependsOn: [],
    essential: true,
    async start() {
      const socket = dgram.createSocket('udp4');
      socket.on('message', (msg) => {
        for (const part of msg.toString('utf8').split(/\0|\n/)) if (part.trim() !== '') deliver(part, null);
      });
      socket.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address: '127.0.0.1', port: 0 }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      udp = socket;
      port = socket.address().port;

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
      await chmod(options.socketPath, 0o666);
      server = srv;
    },
    async stop() {
      udp?.close();
      udp = null;
      port = null;
      const srv = server;
      server = null;
      if (!srv) return;
      for (const conn of connections) conn.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
      await unlink(options.socketPath).catch(() => undefined);
    },
  };
  return { spec, udpPort: () => port };
}
