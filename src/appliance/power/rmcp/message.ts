// IPMI messages as they travel over LAN (IPMI 2.0 spec §13.8): the RMCP header every datagram starts
// with, and the request/response of one command with its two checksums. Shared by the BMC probe (one
// IPMI 1.5 request outside any session) and the RMCP+ client (the same messages inside a session).
//
// Hand-written because no maintained npm package speaks IPMI over LAN.

/** RMCP version 1.0, reserved, sequence 0xff (no RMCP ack), class IPMI. */
export const RMCP_HEADER: readonly number[] = [0x06, 0x00, 0xff, 0x07];

/** Network functions (requests; the response's is one more). */
export const NETFN = { chassis: 0x00, app: 0x06 } as const;

/** The BMC's and the remote console's addresses on the IPMB (a software id for the console). */
const BMC_ADDR = 0x20;
const CONSOLE_ADDR = 0x81;

/** The two's complement checksum that makes `bytes` plus it sum to 0 modulo 256. */
export function checksum(bytes: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) sum += bytes[i]!;
  return (0x100 - (sum & 0xff)) & 0xff;
}

export interface IpmiRequest {
  netFn: number;
  cmd: number;
  data?: ArrayLike<number>;
  /** The requester's sequence number (6 bits), to pair the response with the request. */
  seq: number;
}

/**
 * One request message: rsAddr, netFn/LUN, checksum, rqAddr, rqSeq/LUN, cmd, data, checksum.
 * Example: `ipmiRequest({ netFn: NETFN.chassis, cmd: 0x01, seq: 1 })` is Get Chassis Status.
 */
export function ipmiRequest(request: IpmiRequest): Buffer {
  const head = [BMC_ADDR, (request.netFn & 0x3f) << 2];
  const body = [CONSOLE_ADDR, (request.seq & 0x3f) << 2, request.cmd & 0xff, ...Array.from(request.data ?? [])];
  return Buffer.from([...head, checksum(head), ...body, checksum(body)]);
}

export interface IpmiResponse {
  /** The response's network function (the request's + 1). */
  netFn: number;
  cmd: number;
  seq: number;
  completionCode: number;
  /** What follows the completion code. */
  data: Buffer;
}

/** A response message (rqAddr first), or undefined when it is too short or a checksum is wrong. */
export function parseIpmiResponse(message: Buffer): IpmiResponse | undefined {
  if (message.length < 8) return undefined;
  if (checksum(message.subarray(0, 2)) !== message[2]) return undefined;
  if (checksum(message.subarray(3, message.length - 1)) !== message[message.length - 1]) return undefined;
  return {
    netFn: message[1]! >> 2,
    seq: message[4]! >> 2,
    cmd: message[5]!,
    completionCode: message[6]!,
    data: Buffer.from(message.subarray(7, message.length - 1)),
  };
}

/** Completion codes (IPMI 2.0 table 5-2) in words, for error messages. */
const COMPLETION_CODES: Record<number, string> = {
  0xc0: 'node busy',
  0xc1: 'invalid command',
  0xc2: 'command invalid for given LUN',
  0xc3: 'timeout while processing command',
  0xc4: 'out of space',
  0xc5: 'reservation canceled or invalid',
  0xc6: 'request data truncated',
  0xc7: 'request data length invalid',
  0xc8: 'request data field length limit exceeded',
  0xc9: 'parameter out of range',
  0xca: 'cannot return number of requested data bytes',
  0xcb: 'requested sensor, data, or record not present',
  0xcc: 'invalid data field in request',
  0xcd: 'command illegal for specified sensor or record type',
  0xce: 'command response could not be provided',
  0xcf: 'cannot execute duplicated request',
  0xd0: 'SDR repository in update mode',
  0xd1: 'device in firmware update mode',
  0xd2: 'BMC initialization in progress',
  0xd3: 'destination unavailable',
  0xd4: 'insufficient privilege level',
  0xd5: 'command not supported in present state',
  0xd6: 'command sub-function has been disabled or is unavailable',
  0xff: 'unspecified error',
};

/** A code byte and its name when `names` has one: `0xd5 (command not supported in present state)`. */
export function describeCode(code: number, names: Readonly<Record<number, string>>): string {
  const hex = `0x${code.toString(16).padStart(2, '0')}`;
  const name = names[code];
  return name ? `${hex} (${name})` : hex;
}

/** `0xd5 (command not supported in present state)`. */
export function describeCompletionCode(code: number): string {
  return describeCode(code, COMPLETION_CODES);
}
