// SSH wire encoding (RFC 4251 section 5): written by the ssh-agent client, read by it and by the
// server's signature check.

/** SSH `uint32`: four bytes, big-endian. */
export function wireUint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** SSH `string`: uint32 length then the bytes. */
export function wireString(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([wireUint32(bytes.length), bytes]);
}

/** Sequential reader for SSH wire data; throws on truncation. */
export class WireReader {
  private pos: number;
  constructor(private readonly buf: Buffer, offset = 0) {
    this.pos = offset;
  }
  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new Error('truncated ssh message');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  string(): Buffer {
    const len = this.uint32();
    if (this.pos + len > this.buf.length) throw new Error('truncated ssh message');
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }
  /** Throws unless every byte was read. */
  end(): void {
    if (this.pos !== this.buf.length) throw new Error('trailing bytes in ssh message');
  }
  get atEnd(): boolean {
    return this.pos === this.buf.length;
  }
}
