// RMCP+ datagrams (IPMI 2.0 spec §13.6, §13.17–13.23): the IPMI 2.0 session header, the session trailer
// with its integrity pad and HMAC-SHA1-96 code, AES-CBC-128 payloads, and the payloads of session setup
// (Open Session Request/Response, RAKP messages 1–4) for cipher suite 3.
import { authCode, decryptPayload, encryptPayload, sameCode, u32, type SessionKeys } from './crypto.js';
import { describeCode, RMCP_HEADER } from './message.js';

/** Payload types. */
export const PAYLOAD = {
  ipmi: 0x00,
  openSessionRequest: 0x10,
  openSessionResponse: 0x11,
  rakp1: 0x12,
  rakp2: 0x13,
  rakp3: 0x14,
  rakp4: 0x15,
} as const;

/** Authentication type/format byte of every IPMI 2.0 session header. */
const RMCP_PLUS = 0x06;
const ENCRYPTED = 0x80;
const AUTHENTICATED = 0x40;
/** RMCP header (4) + session header up to the payload (12). */
const PAYLOAD_OFFSET = 16;
const AUTH_CODE_LENGTH = 12;

export interface Packet {
  payloadType: number;
  /** Outbound: the BMC's session id (0 before the session exists); inbound: ours. */
  sessionId: number;
  sequence: number;
  /** The plain payload. */
  payload: Buffer;
}

/**
 * One datagram. With `keys` the payload is encrypted (AES-CBC-128) and the packet authenticated
 * (HMAC-SHA1-96 over the session header through the next-header byte).
 */
export function encodePacket(packet: Packet, keys?: SessionKeys): Buffer {
  const body = keys ? encryptPayload(keys.aesKey, packet.payload) : packet.payload;
  const header = Buffer.alloc(12);
  header[0] = RMCP_PLUS;
  header[1] = (packet.payloadType & 0x3f) | (keys ? ENCRYPTED | AUTHENTICATED : 0);
  header.writeUInt32LE(packet.sessionId >>> 0, 2);
  header.writeUInt32LE(packet.sequence >>> 0, 6);
  header.writeUInt16LE(body.length, 10);
  if (!keys) return Buffer.concat([Buffer.from(RMCP_HEADER), header, body]);
  // The integrity pad makes the covered bytes (header … pad length, next header) a multiple of 4.
  const padLength = (4 - ((header.length + body.length + 2) % 4)) % 4;
  const covered = Buffer.concat([header, body, Buffer.alloc(padLength, 0xff), Buffer.from([padLength, 0x07])]);
  return Buffer.concat([Buffer.from(RMCP_HEADER), covered, authCode(keys.k1, covered)]);
}

/** The parts of an IPMI 2.0 datagram that route it: payload type and session id, without checking anything else. */
export function peekPacket(datagram: Buffer): { payloadType: number; sessionId: number } | undefined {
  if (datagram.length < PAYLOAD_OFFSET || datagram[0] !== RMCP_HEADER[0] || datagram[3] !== RMCP_HEADER[3] || datagram[4] !== RMCP_PLUS) return undefined;
  return { payloadType: datagram[5]! & 0x3f, sessionId: datagram.readUInt32LE(6) };
}

/**
 * A datagram's packet, or undefined when it is not a well-formed IPMI 2.0 packet. An authenticated or
 * encrypted one needs `keys`, must carry a valid integrity code and decrypt with a valid pad.
 */
export function decodePacket(datagram: Buffer, keys?: SessionKeys): Packet | undefined {
  const peek = peekPacket(datagram);
  if (!peek) return undefined;
  const flags = datagram[5]!;
  const sequence = datagram.readUInt32LE(10);
  const length = datagram.readUInt16LE(14);
  const end = PAYLOAD_OFFSET + length;
  if (end > datagram.length) return undefined;
  let body = datagram.subarray(PAYLOAD_OFFSET, end);
  if (flags & AUTHENTICATED) {
    if (!keys) return undefined;
    const padLength = datagram[datagram.length - AUTH_CODE_LENGTH - 2];
    if (padLength === undefined || datagram.length !== end + padLength + 2 + AUTH_CODE_LENGTH) return undefined;
    if (datagram[datagram.length - AUTH_CODE_LENGTH - 1] !== 0x07) return undefined;
    const covered = datagram.subarray(4, datagram.length - AUTH_CODE_LENGTH);
    if (!sameCode(authCode(keys.k1, covered), datagram.subarray(datagram.length - AUTH_CODE_LENGTH))) return undefined;
  } else if (end !== datagram.length) {
    return undefined;
  }
  if (flags & ENCRYPTED) {
    if (!keys) return undefined;
    const plain = decryptPayload(keys.aesKey, body);
    if (!plain) return undefined;
    body = plain;
  }
  return { payloadType: peek.payloadType, sessionId: peek.sessionId, sequence, payload: Buffer.from(body) };
}

/** Privilege levels. */
export const PRIVILEGE = { user: 0x02, operator: 0x03, administrator: 0x04 } as const;
/** RAKP 1's lookup bit: find the user by name only (ipmitool's default), not by name and privilege. */
export const NAME_ONLY_LOOKUP = 0x10;

/**
 * Open Session Request proposing cipher suite 3 only: RAKP-HMAC-SHA1 (authentication algorithm 1),
 * HMAC-SHA1-96 (integrity 1), AES-CBC-128 (confidentiality 1).
 */
export function openSessionRequest(tag: number, consoleSessionId: number, maxPrivilege: number): Buffer {
  const algorithm = (type: number, id: number) => [type, 0, 0, 0x08, id, 0, 0, 0];
  return Buffer.from([tag, maxPrivilege, 0, 0, ...u32(consoleSessionId), ...algorithm(0, 1), ...algorithm(1, 1), ...algorithm(2, 1)]);
}

export interface OpenSessionResponse {
  tag: number;
  status: number;
  consoleSessionId: number;
  /** Only meaningful when status is 0. */
  bmcSessionId: number;
  /** Authentication, integrity and confidentiality algorithms the BMC chose. */
  algorithms: [number, number, number];
}

export function parseOpenSessionResponse(p: Buffer): OpenSessionResponse | undefined {
  if (p.length < 8) return undefined;
  const status = p[1]!;
  if (status !== 0) return { tag: p[0]!, status, consoleSessionId: p.readUInt32LE(4), bmcSessionId: 0, algorithms: [0, 0, 0] };
  if (p.length < 36) return undefined;
  return {
    tag: p[0]!,
    status,
    consoleSessionId: p.readUInt32LE(4),
    bmcSessionId: p.readUInt32LE(8),
    algorithms: [p[16]! & 0x3f, p[24]! & 0x3f, p[32]! & 0x3f],
  };
}

/** RAKP message 1: our random number, the role byte and the user name. */
export function rakp1(tag: number, bmcSessionId: number, consoleRandom: Buffer, role: number, user: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag, 0, 0, 0]), u32(bmcSessionId), consoleRandom, Buffer.from([role, 0, 0, user.length]), user]);
}

export interface Rakp2 {
  tag: number;
  status: number;
  consoleSessionId: number;
  bmcRandom: Buffer;
  bmcGuid: Buffer;
  /** The key exchange authentication code (HMAC-SHA1: 20 bytes). */
  code: Buffer;
}

export function parseRakp2(p: Buffer): Rakp2 | undefined {
  if (p.length < 8) return undefined;
  const base = { tag: p[0]!, status: p[1]!, consoleSessionId: p.readUInt32LE(4) };
  if (base.status !== 0) return { ...base, bmcRandom: Buffer.alloc(0), bmcGuid: Buffer.alloc(0), code: Buffer.alloc(0) };
  if (p.length < 40) return undefined;
  return { ...base, bmcRandom: Buffer.from(p.subarray(8, 24)), bmcGuid: Buffer.from(p.subarray(24, 40)), code: Buffer.from(p.subarray(40)) };
}

/** RAKP message 3: our key exchange code, or only a status that tells the BMC why we give up. */
export function rakp3(tag: number, status: number, bmcSessionId: number, code: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from([tag, status, 0, 0]), u32(bmcSessionId), status === 0 ? code : Buffer.alloc(0)]);
}

export interface Rakp4 {
  tag: number;
  status: number;
  consoleSessionId: number;
  /** The integrity check value (HMAC-SHA1-96: 12 bytes). */
  check: Buffer;
}

export function parseRakp4(p: Buffer): Rakp4 | undefined {
  if (p.length < 8) return undefined;
  return { tag: p[0]!, status: p[1]!, consoleSessionId: p.readUInt32LE(4), check: Buffer.from(p.subarray(8)) };
}

/** Where a session-setup answer names our session id (its header's session id is 0). */
export function setupConsoleSessionId(payloadType: number, datagram: Buffer): number | undefined {
  const isSetupAnswer = payloadType === PAYLOAD.openSessionResponse || payloadType === PAYLOAD.rakp2 || payloadType === PAYLOAD.rakp4;
  if (!isSetupAnswer || datagram.length < PAYLOAD_OFFSET + 8) return undefined;
  return datagram.readUInt32LE(PAYLOAD_OFFSET + 4);
}

/** RMCP+ status codes (IPMI 2.0 table 13-15) in words. */
const STATUS: Record<number, string> = {
  0x01: 'insufficient resources to create a session',
  0x02: 'invalid session id',
  0x03: 'invalid payload type',
  0x04: 'invalid authentication algorithm',
  0x05: 'invalid integrity algorithm',
  0x06: 'no matching authentication payload',
  0x07: 'no matching integrity payload',
  0x08: 'inactive session id',
  0x09: 'invalid role',
  0x0a: 'unauthorized role or privilege level requested',
  0x0b: 'insufficient resources to create a session at the requested role',
  0x0c: 'invalid name length',
  0x0d: 'unauthorized name',
  0x0e: 'unauthorized GUID',
  0x0f: 'invalid integrity check value',
  0x10: 'invalid confidentiality algorithm',
  0x11: 'no cipher suite match with proposed security algorithms',
  0x12: 'illegal or unrecognized parameter',
};

/** RMCP+ status codes that mean the user name, its password or its privilege is wrong. */
export const CREDENTIAL_STATUS: ReadonlySet<number> = new Set([0x09, 0x0a, 0x0c, 0x0d, 0x0f]);

/** `0x0d (unauthorized name)`. */
export function describeStatus(status: number): string {
  return describeCode(status, STATUS);
}
