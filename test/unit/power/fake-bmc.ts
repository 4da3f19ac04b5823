// The BMC side of an RMCP+ session with cipher suite 3, written from the IPMI 2.0 spec with node:crypto
// alone (nothing from src/), on a loopback UDP port: the client's packets, codes and keys are checked
// against an implementation that shares no code with it. Misbehaviours on request: a RAKP 2 status, a
// different password, a completion code, silence from a given step on.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';

export interface FakeBmcOptions {
  user?: string;
  password: string;
  /** RAKP 2 answers with this status instead of a key exchange code. */
  rakp2Status?: number;
  /** Completion code of these commands (by command number). */
  completionCodes?: Record<number, number>;
  /** Never answers this payload type (0x10 open session, 0x12 RAKP 1, 0x14 RAKP 3, 0x00 IPMI messages). */
  silentTo?: number;
}

/** What the fake BMC received, in order. */
export interface Received {
  payloadType: number;
  /** IPMI messages: netFn, cmd and data; RAKP 3: its status. */
  netFn?: number;
  cmd?: number;
  data?: number[];
  status?: number;
}

const hmac = (key: Buffer, ...parts: Buffer[]) => createHmac('sha1', key).update(Buffer.concat(parts)).digest();
const le32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const sum = (bytes: number[]) => (0x100 - (bytes.reduce((a, b) => a + b, 0) & 0xff)) & 0xff;

interface Session {
  consoleSid: number;
  bmcSid: number;
  rm?: Buffer;
  rc?: Buffer;
  roleAndName?: Buffer;
  k1?: Buffer;
  aes?: Buffer;
  seq: number;
}

export class FakeBmc {
  readonly received: Received[] = [];
  readonly guid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  power = false;
  readonly #socket: Socket = createSocket('udp4');
  readonly #sessions = new Map<number, Session>();
  readonly #kuid: Buffer;
  #nextSid = 0x1000;

  constructor(readonly options: FakeBmcOptions) {
    this.#kuid = Buffer.alloc(20);
    Buffer.from(options.password).copy(this.#kuid);
    this.#socket.on('message', (m, from) => this.#answer(m, from.port, from.address));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.#socket.bind(0, '127.0.0.1', resolve));
    return (this.#socket.address() as AddressInfo).port;
  }

  close(): void {
    try {
      this.#socket.close();
    } catch {
      // Closed already.
    }
  }

  #send(port: number, host: string, payloadType: number, sid: number, payload: Buffer, session?: Session): void {
    let body = payload;
    let flags = payloadType;
    if (session?.aes && session.k1) {
      const padLength = (16 - ((payload.length + 1) % 16)) % 16;
      const plain = Buffer.concat([payload, Buffer.from([...Array.from({ length: padLength }, (_, i) => i + 1), padLength])]);
      const iv = randomBytes(16);
      const c = createCipheriv('aes-128-cbc', session.aes, iv).setAutoPadding(false);
      body = Buffer.concat([iv, c.update(plain), c.final()]);
      flags |= 0xc0;
    }
    const header = Buffer.concat([Buffer.from([0x06, flags]), le32(sid), le32(session ? ++session.seq : 0), Buffer.from([body.length & 0xff, body.length >> 8])]);
    let packet = Buffer.concat([Buffer.from([0x06, 0x00, 0xff, 0x07]), header, body]);
    if (flags & 0x40) {
      const pad = (4 - ((12 + body.length + 2) % 4)) % 4;
      const covered = Buffer.concat([header, body, Buffer.alloc(pad, 0xff), Buffer.from([pad, 0x07])]);
      packet = Buffer.concat([Buffer.from([0x06, 0x00, 0xff, 0x07]), covered, hmac(session!.k1!, covered).subarray(0, 12)]);
    }
    this.#socket.send(packet, port, host);
  }

  #answer(m: Buffer, port: number, host: string): void {
    if (m.length < 16 || m[4] !== 0x06) return;
    const type = m[5]! & 0x3f;
    const sid = m.readUInt32LE(6);
    const p = m.subarray(16, 16 + m.readUInt16LE(14));
    if (type === 0x10) {
      this.received.push({ payloadType: type });
      if (this.options.silentTo === type) return;
      const session: Session = { consoleSid: p.readUInt32LE(4), bmcSid: this.#nextSid++, seq: 0 };
      this.#sessions.set(session.bmcSid, session);
      const alg = (t: number) => [t, 0, 0, 8, 1, 0, 0, 0];
      this.#send(port, host, 0x11, 0, Buffer.from([p[0]!, 0, 4, 0, ...le32(session.consoleSid), ...le32(session.bmcSid), ...alg(0), ...alg(1), ...alg(2)]));
      return;
    }
    const session = this.#sessions.get(type === 0 ? sid : p.readUInt32LE(4));
    if (!session) return;
    if (type === 0x12) {
      this.received.push({ payloadType: type });
      if (this.options.silentTo === type) return;
      if (this.options.rakp2Status) {
        this.#send(port, host, 0x13, 0, Buffer.from([p[0]!, this.options.rakp2Status, 0, 0, ...le32(session.consoleSid)]));
        return;
      }
      session.rm = Buffer.from(p.subarray(8, 24));
      session.roleAndName = Buffer.from([p[24]!, p[27]!, ...p.subarray(28, 28 + p[27]!)]);
      session.rc = randomBytes(16);
      const code = hmac(this.#kuid, le32(session.consoleSid), le32(session.bmcSid), session.rm, session.rc, this.guid, session.roleAndName);
      this.#send(port, host, 0x13, 0, Buffer.concat([Buffer.from([p[0]!, 0, 0, 0]), le32(session.consoleSid), session.rc, this.guid, code]));
      return;
    }
    if (type === 0x14) {
      this.received.push({ payloadType: type, status: p[1]! });
      if (this.options.silentTo === type || p[1] !== 0 || !session.rc || !session.rm || !session.roleAndName) return;
      const expected = hmac(this.#kuid, session.rc, le32(session.consoleSid), session.roleAndName);
      if (!expected.equals(p.subarray(8))) {
        this.#send(port, host, 0x15, 0, Buffer.from([p[0]!, 0x0f, 0, 0, ...le32(session.consoleSid)]));
        return;
      }
      const sik = hmac(this.#kuid, session.rm, session.rc, session.roleAndName);
      const icv = hmac(sik, session.rm, le32(session.bmcSid), this.guid).subarray(0, 12);
      this.#send(port, host, 0x15, 0, Buffer.concat([Buffer.from([p[0]!, 0, 0, 0]), le32(session.consoleSid), icv]));
      session.k1 = hmac(sik, Buffer.alloc(20, 1));
      session.aes = hmac(sik, Buffer.alloc(20, 2)).subarray(0, 16);
      return;
    }
    if (type !== 0 || !session.k1 || !session.aes || (m[5]! & 0xc0) !== 0xc0) return;
    if (!hmac(session.k1, m.subarray(4, m.length - 12)).subarray(0, 12).equals(m.subarray(m.length - 12))) return;
    const d = createDecipheriv('aes-128-cbc', session.aes, p.subarray(0, 16)).setAutoPadding(false);
    const plain = Buffer.concat([d.update(p.subarray(16)), d.final()]);
    const msg = plain.subarray(0, plain.length - 1 - plain[plain.length - 1]!);
    const [netFn, cmd, data] = [msg[1]! >> 2, msg[5]!, [...msg.subarray(6, msg.length - 1)]];
    this.received.push({ payloadType: 0, netFn, cmd, data });
    if (this.options.silentTo === 0) return;
    const cc = this.options.completionCodes?.[cmd] ?? 0;
    let out: number[] = [];
    if (cc === 0 && netFn === 0 && cmd === 0x01) out = [this.power ? 0x01 : 0x00, 0, 0x40];
    if (cc === 0 && netFn === 0 && cmd === 0x02) this.power = data[0] === 1 || data[0] === 2 ? true : data[0] === 0 || data[0] === 5 ? false : this.power;
    if (cc === 0 && netFn === 6 && cmd === 0x3b) out = [data[0]!];
    const head = [0x81, (netFn + 1) << 2];
    const body = [0x20, msg[4]!, cmd, cc, ...out];
    this.#send(port, host, 0, session.consoleSid, Buffer.from([...head, sum(head), ...body, sum(body)]), session);
    if (cmd === 0x3c) this.#sessions.delete(session.bmcSid);
  }
}
