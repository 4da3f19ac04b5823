// Which BMCs answer at all, asked of all of them at once from one UDP socket before any session starts.
// A silent BMC would otherwise hold a fan-out slot (a session retrying) for its whole deadline,
// so 100 silent BMCs at fan-out 64 cost two deadlines; probed, they cost one, together, and take no slot.
//
// The question is the one every IPMI-over-LAN session starts with (ipmitool's lanplus sends it first too):
// Get Channel Authentication Capabilities, an IPMI 1.5 message outside any session. Any RMCP answer counts
// as "answers": the real session, with its errors in words, is the client's. Hand-written because no
// maintained npm package speaks IPMI over LAN; this is one fixed request of 23 bytes.
import { createSocket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { ipmiRequest, NETFN, RMCP_HEADER } from './rmcp/message.js';

/** A BMC address as probed: an IPv4 literal and its UDP port. */
export interface BmcAddress {
  host: string;
  port: number;
}

/** The request datagram: RMCP header, IPMI 1.5 session header (no auth, no session), the message. */
export function authCapabilitiesRequest(sequence = 0): Buffer {
  // Get Channel Authentication Capabilities: this channel, with IPMI 2.0 extended data; Administrator.
  const message = ipmiRequest({ netFn: NETFN.app, cmd: 0x38, data: [0x8e, 0x04], seq: sequence });
  const session = [0x00, 0, 0, 0, 0, 0, 0, 0, 0, message.length]; // auth none, sequence 0, session 0, length
  return Buffer.from([...RMCP_HEADER, ...session, ...message]);
}

/** Whether `datagram` is an RMCP answer carrying an IPMI message (what a BMC sends back). */
export function isRmcpAnswer(datagram: Buffer): boolean {
  return datagram.length >= 4 && datagram[0] === 0x06 && datagram[3] === 0x07;
}

/** `10.1.15.1:623`. */
export function bmcKey(bmc: BmcAddress): string {
  return `${bmc.host}:${bmc.port}`;
}

export interface ProbeOptions {
  /** How long a BMC may take to answer (the nodes' deadline). */
  deadlineMs: number;
  /** Asks again this often (UDP may lose the datagram either way); default 1 s. */
  resendMs?: number;
}

/**
 * Asks every BMC at once; the promise of each resolves `true` as soon as it answers, `false` at the deadline.
 * Only IPv4 literals are probed: others (names) resolve `true` at once and are left to the session.
 * Example: `const answers = probeBmcs([{ host: '10.1.15.7', port: 623 }], { deadlineMs: 10_000 })`,
 * then `await answers.get('10.1.15.7:623')`.
 */
export function probeBmcs(bmcs: readonly BmcAddress[], options: ProbeOptions): Map<string, Promise<boolean>> {
  const answers = new Map<string, Promise<boolean>>();
  const pending = new Map<string, { bmc: BmcAddress; resolve: (answered: boolean) => void }>();
  for (const bmc of bmcs) {
    const key = bmcKey(bmc);
    if (answers.has(key)) continue;
    if (!isIPv4(bmc.host)) {
      answers.set(key, Promise.resolve(true));
      continue;
    }
    answers.set(key, new Promise<boolean>((resolve) => pending.set(key, { bmc, resolve })));
  }
  if (pending.size === 0) return answers;

  const socket = createSocket('udp4');
  const request = authCapabilitiesRequest();
  let closed = false;
  const settle = (key: string, answered: boolean): void => {
    const entry = pending.get(key);
    if (!entry) return;
    pending.delete(key);
    entry.resolve(answered);
    if (pending.size === 0) finish();
  };
  const sendAll = (): void => {
    for (const { bmc } of pending.values()) {
      // A send error (no route, ...) is the same as silence: the deadline answers for it.
      socket.send(request, bmc.port, bmc.host, () => undefined);
    }
  };
  const resend = setInterval(sendAll, options.resendMs ?? 1000);
  const deadline = setTimeout(() => {
    for (const key of [...pending.keys()]) settle(key, false);
  }, options.deadlineMs);
  function finish(): void {
    if (closed) return;
    closed = true;
    clearInterval(resend);
    clearTimeout(deadline);
    try {
      socket.close();
    } catch {
      // already closed after an error
    }
  }
  socket.on('message', (datagram, from) => {
    if (isRmcpAnswer(datagram)) settle(bmcKey({ host: from.address, port: from.port }), true);
  });
  socket.on('error', () => {
    // Cannot ask at all: let the sessions try (and report) every BMC themselves.
    for (const key of [...pending.keys()]) settle(key, true);
  });
  socket.bind(0, () => sendAll());
  return answers;
}
