import { StringDecoder } from 'node:string_decoder';

/** Longest line kept in one piece; a daemon printing without newlines cannot grow memory without bound. */
export const MAX_LINE_CHARS = 16 * 1024;

/**
 * Turns a byte stream into lines: keeps partial lines until their newline arrives, drops the `\r`
 * of CRLF endings, decodes UTF-8 across chunk boundaries, and splits overlong lines.
 */
export class LineSplitter {
  private buffer = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxChars = MAX_LINE_CHARS,
  ) {}

  push(chunk: Buffer | string): void {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    // Lines are cut from the chunk by position; the rest is kept once, not re-sliced per line.
    let start = 0;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n', start)) !== -1) {
      this.emitLine(this.buffer.slice(start, newline));
      start = newline + 1;
    }
    if (start > 0) this.buffer = this.buffer.slice(start);
    while (this.buffer.length > this.maxChars) {
      this.emit(this.buffer.slice(0, this.maxChars));
      this.buffer = this.buffer.slice(this.maxChars);
    }
  }

  /** Emits what is left (a last line without newline) at end of stream. */
  end(): void {
    this.buffer += this.decoder.end();
    if (this.buffer.length > 0) this.emitLine(this.buffer);
    this.buffer = '';
  }

  private emitLine(raw: string): void {
    let line = raw.charCodeAt(raw.length - 1) === 13 ? raw.slice(0, -1) : raw;
    while (line.length > this.maxChars) {
      this.emit(line.slice(0, this.maxChars));
      line = line.slice(this.maxChars);
    }
    this.emit(line);
  }
}

/** The form every line takes on stdout: `[dhcpd] DHCPDISCOVER from ...`. */
export function prefixLine(source: string, line: string): string {
  return `[${source}] ${line}`;
}
