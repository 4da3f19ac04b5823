// One UDP socket for every RMCP+ session of the process: each session takes a console session id of its
// own, and the socket hands every datagram to the session it names (the header's session id once the
// session is up, the payload's during setup). The socket opens with the first session and closes with
// the last, so an idle appliance holds none.
import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { peekPacket, setupConsoleSessionId } from './packet.js';

/** What a session hears: a datagram for it, or the socket failing under it. */
export interface Receiver {
  message(datagram: Buffer): void;
  failed(error: Error): void;
}

/** A session's use of the socket. */
export interface Attachment {
  /** The console session id (SID_M) this session answers to. */
  readonly sessionId: number;
  /**
   * Sends a datagram; a send error is treated as a lost datagram (the retransmission or deadline answers
   * for it). `sent` is called once the datagram has left (or could not).
   */
  send(datagram: Buffer, host: string, port: number, sent?: () => void): void;
  /** Gives the id back; the last one closes the socket. */
  detach(): void;
}

let socket: Socket | undefined;
const receivers = new Map<number, Receiver>();

function route(datagram: Buffer): void {
  const peek = peekPacket(datagram);
  if (!peek) return;
  const id = peek.sessionId !== 0 ? peek.sessionId : setupConsoleSessionId(peek.payloadType, datagram);
  if (id !== undefined) receivers.get(id)?.message(datagram);
}

function open(): Socket {
  const s = createSocket('udp4');
  s.on('message', route);
  s.on('error', (err) => {
    if (socket === s) socket = undefined;
    s.close();
    for (const receiver of [...receivers.values()]) receiver.failed(err);
  });
  return s;
}

/** Takes a fresh console session id on the shared socket (opening it when it is the first). */
export function attach(receiver: Receiver): Attachment {
  let id: number;
  do id = randomInt(1, 0xffffffff);
  while (receivers.has(id));
  receivers.set(id, receiver);
  socket ??= open();
  const mine = socket;
  let attached = true;
  return {
    sessionId: id,
    send(datagram, host, port, sent) {
      if (!attached || socket !== mine) {
        sent?.();
        return;
      }
      mine.send(datagram, port, host, () => sent?.());
    },
    detach() {
      if (!attached) return;
      attached = false;
      receivers.delete(id);
      if (receivers.size === 0 && socket === mine) {
        socket = undefined;
        mine.close();
      }
    },
  };
}

/** Whether the shared socket is open (tests: nothing is left behind). */
export function socketOpen(): boolean {
  return socket !== undefined;
}
