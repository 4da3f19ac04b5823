// The BMC probe against UDP responders on loopback: one that answers like a BMC, one that stays silent.
import test from 'ava';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { authCapabilitiesRequest, isRmcpAnswer, probeBmcs } from '../../../src/appliance/power/ipmi-probe.js';

/** A UDP socket on 127.0.0.1 that answers each request with an RMCP datagram (or never, when silent). */
async function responder(t: { teardown(fn: () => unknown): void }, silent = false): Promise<{ port: number; seen: Buffer[] }> {
  const socket: Socket = createSocket('udp4');
  const seen: Buffer[] = [];
  socket.on('message', (msg, from) => {
    seen.push(msg);
    if (!silent) socket.send(Buffer.from([0x06, 0x00, 0xff, 0x07, 0x00]), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => socket.close());
  return { port: (socket.address() as AddressInfo).port, seen };
}

test('the request is Get Channel Authentication Capabilities in IPMI 1.5 framing, with valid checksums', (t) => {
  const r = authCapabilitiesRequest();
  t.is(r.length, 23);
  t.deepEqual([...r.subarray(0, 4)], [0x06, 0x00, 0xff, 0x07]);
  t.is(r[13], 9, 'message length');
  const msg = r.subarray(14);
  t.is((msg[0]! + msg[1]! + msg[2]!) & 0xff, 0, 'header checksum');
  t.is([...msg.subarray(3)].reduce((a, b) => a + b, 0) & 0xff, 0, 'body checksum');
  t.is(msg[5], 0x38);
  t.true(isRmcpAnswer(Buffer.from([0x06, 0, 0xff, 0x07])));
  t.false(isRmcpAnswer(Buffer.from([0x45, 0, 0, 0])));
});

test('an answering BMC is known at once, a silent one at the deadline; names are left to ipmitool', async (t) => {
  const live = await responder(t);
  const quiet = await responder(t, true);
  const started = Date.now();
  const answers = probeBmcs(
    [
      { host: '127.0.0.1', port: live.port },
      { host: '127.0.0.1', port: quiet.port },
      { host: '127.0.0.1', port: live.port },
      { host: 'bmc7.example', port: 623 },
    ],
    { deadlineMs: 1200, resendMs: 300 },
  );
  t.is(answers.size, 3, 'each BMC asked once');
  t.true(await answers.get(`127.0.0.1:${live.port}`));
  t.true(Date.now() - started < 500, 'the live one answered before the deadline');
  t.true(await answers.get('bmc7.example:623'));
  t.false(await answers.get(`127.0.0.1:${quiet.port}`));
  const elapsed = Date.now() - started;
  t.true(elapsed >= 1150 && elapsed < 2500, `silent after ${elapsed} ms`);
  t.true(quiet.seen.length >= 3, 'asked again while it stayed silent');
  t.deepEqual(live.seen[0], authCapabilitiesRequest());
});
