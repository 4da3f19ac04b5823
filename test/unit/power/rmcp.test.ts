// The in-process RMCP+ client: its packets byte by byte, its keys against the spec's formulas computed here
// with node:crypto, and whole sessions against a BMC written from the spec in fake-bmc.ts (no shared code):
// the power actions' values, errors in words, and nothing left behind after a deadline or an abort.
import test from 'ava';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { DeadlineError } from '../../../src/appliance/power/command.js';
import { CHASSIS_CONTROL, rmcpPlugin } from '../../../src/appliance/power/ipmi.js';
import {
  decryptPayload,
  encryptPayload,
  rakp2Code,
  rakp3Code,
  rakp4Check,
  sessionIntegrityKey,
  sessionKeys,
  userKey,
  type RakpExchange,
} from '../../../src/appliance/power/rmcp/crypto.js';
import { describeCompletionCode, ipmiRequest, NETFN, parseIpmiResponse } from '../../../src/appliance/power/rmcp/message.js';
import {
  decodePacket,
  encodePacket,
  openSessionRequest,
  parseOpenSessionResponse,
  parseRakp2,
  PAYLOAD,
  rakp1,
  rakp3,
} from '../../../src/appliance/power/rmcp/packet.js';
import { COMMANDS, RmcpSession } from '../../../src/appliance/power/rmcp/session.js';
import { socketOpen } from '../../../src/appliance/power/rmcp/socket.js';
import type { IpmiTarget } from '../../../src/appliance/power/uri.js';
import { FakeBmc, type FakeBmcOptions } from './fake-bmc.js';

const sha1 = (key: Buffer, ...parts: Buffer[]) => createHmac('sha1', key).update(Buffer.concat(parts)).digest();
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('Open Session Request proposes cipher suite 3 only; its response is read back', (t) => {
  const r = openSessionRequest(7, 0xa1b2c3d4, 4);
  t.deepEqual(r, hex('07 04 0000 d4c3b2a1  00000008 01000000  01000008 01000000  02000008 01000000'));
  const response = Buffer.concat([hex('07 00 04 00 d4c3b2a1 78563412'), hex('00000008 01000000 01000008 01000000 02000008 01000000')]);
  t.deepEqual(parseOpenSessionResponse(response), { tag: 7, status: 0, consoleSessionId: 0xa1b2c3d4, bmcSessionId: 0x12345678, algorithms: [1, 1, 1] });
  t.like(parseOpenSessionResponse(hex('07 11 00 00 d4c3b2a1')), { status: 0x11, consoleSessionId: 0xa1b2c3d4 });
  t.is(parseOpenSessionResponse(hex('07 00 04 00 d4c3b2a1 78563412')), undefined, 'a success too short to hold the algorithms');
});

test('RAKP 1 and 3 lay out ids, random number, role and name; RAKP 2 is parsed into its parts', (t) => {
  const rm = Buffer.alloc(16, 0xaa);
  t.deepEqual(rakp1(1, 0x01020304, rm, 0x14, Buffer.from('admin')), Buffer.concat([hex('01000000 04030201'), rm, hex('14 0000 05'), Buffer.from('admin')]));
  t.deepEqual(rakp3(2, 0, 0x01020304, Buffer.alloc(20, 0xbb)), Buffer.concat([hex('02000000 04030201'), Buffer.alloc(20, 0xbb)]));
  t.deepEqual(rakp3(2, 0x0f, 0x01020304, Buffer.alloc(20, 0xbb)), hex('020f0000 04030201'), 'a refusal carries no code');
  const two = Buffer.concat([hex('01000000 d4c3b2a1'), Buffer.alloc(16, 1), Buffer.alloc(16, 2), Buffer.alloc(20, 3)]);
  t.deepEqual(parseRakp2(two), { tag: 1, status: 0, consoleSessionId: 0xa1b2c3d4, bmcRandom: Buffer.alloc(16, 1), bmcGuid: Buffer.alloc(16, 2), code: Buffer.alloc(20, 3) });
  t.like(parseRakp2(hex('01 0d 0000 d4c3b2a1')), { status: 0x0d });
});

test('IPMI messages: checksums both ways, responses paired by sequence and command', (t) => {
  t.deepEqual(ipmiRequest({ netFn: NETFN.chassis, cmd: 0x02, data: [0x01], seq: 5 }), hex('20 00 e0 81 14 02 01 68'));
  const response = hex('81 04 7b 20 14 01 00 01 00 40 8a');
  t.deepEqual(parseIpmiResponse(response), { netFn: 1, cmd: 0x01, seq: 5, completionCode: 0, data: hex('01 00 40') });
  t.is(parseIpmiResponse(hex('81 04 7c 20 14 01 00 01 00 40 8a')), undefined, 'bad header checksum');
  t.is(parseIpmiResponse(hex('81 04 7b 20 14 01 00 01 00 40 8b')), undefined, 'bad body checksum');
  t.is(describeCompletionCode(0xd5), '0xd5 (command not supported in present state)');
  t.is(describeCompletionCode(0x80), '0x80');
});

const exchange: RakpExchange = {
  consoleSessionId: 0xa1b2c3d4,
  bmcSessionId: 0x00001234,
  consoleRandom: Buffer.alloc(16, 0x11),
  bmcRandom: Buffer.alloc(16, 0x22),
  bmcGuid: hex('00112233445566778899aabbccddeeff'),
  role: 0x14,
  user: Buffer.from('admin'),
};

test('keys and codes are the spec formulas (IPMI 2.0 §13.31–13.32), K_UID the password zero-padded to 20 bytes', (t) => {
  const kuid = Buffer.concat([Buffer.from('s3cret'), Buffer.alloc(14)]);
  t.deepEqual(userKey('s3cret'), kuid);
  t.throws(() => userKey('x'.repeat(21)), { message: /at most 20 bytes/ });
  const name = Buffer.concat([Buffer.from([0x14, 5]), Buffer.from('admin')]);
  const sidm = hex('d4c3b2a1');
  const sidc = hex('34120000');
  const rm = exchange.consoleRandom;
  const rc = exchange.bmcRandom;
  t.deepEqual(rakp2Code(kuid, exchange), sha1(kuid, sidm, sidc, rm, rc, exchange.bmcGuid, name));
  t.deepEqual(rakp3Code(kuid, exchange), sha1(kuid, rc, sidm, name));
  const sik = sha1(kuid, rm, rc, name);
  t.deepEqual(sessionIntegrityKey(kuid, exchange), sik);
  t.deepEqual(rakp4Check(sik, exchange), sha1(sik, rm, sidc, exchange.bmcGuid).subarray(0, 12));
  t.deepEqual(sessionKeys(sik), { k1: sha1(sik, Buffer.alloc(20, 1)), aesKey: sha1(sik, Buffer.alloc(20, 2)).subarray(0, 16) });
});

test('AES-CBC-128 payloads: pad 1, 2, … and its length to whole blocks; round trip for every length; bad pads refused', (t) => {
  const key = randomBytes(16);
  for (let n = 0; n <= 40; n++) {
    const plain = randomBytes(n);
    const sealed = encryptPayload(key, plain);
    t.is(sealed.length, 16 + Math.ceil((n + 1) / 16) * 16);
    t.deepEqual(decryptPayload(key, sealed), plain, `length ${n}`);
  }
  const iv = Buffer.alloc(16, 9);
  // 13 bytes of payload: pad 1 2, then the pad length 2, one block.
  const expected = createCipheriv('aes-128-cbc', key, iv).setAutoPadding(false).update(Buffer.concat([Buffer.alloc(13, 0x55), hex('01 02 02')]));
  t.deepEqual(encryptPayload(key, Buffer.alloc(13, 0x55), iv), Buffer.concat([iv, expected]));
  const badPad = createCipheriv('aes-128-cbc', key, iv).setAutoPadding(false).update(Buffer.concat([Buffer.alloc(13, 0x55), hex('01 03 02')]));
  t.is(decryptPayload(key, Buffer.concat([iv, badPad])), undefined);
  t.is(decryptPayload(key, Buffer.alloc(20)), undefined, 'not whole blocks');
});

test('session packets: header fields, integrity pad to a multiple of 4, HMAC-SHA1-96 over header..next header; tampering is refused', (t) => {
  const plain = encodePacket({ payloadType: PAYLOAD.openSessionRequest, sessionId: 0, sequence: 0, payload: Buffer.from([1, 2, 3]) });
  t.deepEqual(plain, hex('0600ff07 06 10 00000000 00000000 0300 010203'));
  t.deepEqual(decodePacket(plain), { payloadType: 0x10, sessionId: 0, sequence: 0, payload: Buffer.from([1, 2, 3]) });

  const keys = sessionKeys(randomBytes(20));
  const payload = ipmiRequest({ ...COMMANDS.getChassisStatus, seq: 1 });
  const sealed = encodePacket({ payloadType: PAYLOAD.ipmi, sessionId: 0x1234, sequence: 7, payload }, keys);
  t.is(sealed[5], 0xc0, 'encrypted and authenticated IPMI payload');
  t.is(sealed.readUInt32LE(6), 0x1234);
  t.is(sealed.readUInt32LE(10), 7);
  const length = sealed.readUInt16LE(14);
  t.is(length, 32, 'IV and one block');
  const covered = sealed.subarray(4, sealed.length - 12);
  t.is(covered.length % 4, 0);
  const padLength = sealed[sealed.length - 14]!;
  t.is(covered.length, 12 + length + padLength + 2);
  t.true(sealed.subarray(16 + length, 16 + length + padLength).every((b) => b === 0xff));
  t.is(sealed[sealed.length - 13], 0x07);
  t.deepEqual(sealed.subarray(sealed.length - 12), sha1(keys.k1, covered).subarray(0, 12));
  t.deepEqual(decodePacket(sealed, keys)?.payload, payload);
  t.is(decodePacket(sealed), undefined, 'no keys, no reading');
  for (const at of [5, 12, 20, sealed.length - 1]) {
    const bad = Buffer.from(sealed);
    bad[at]! ^= 0x01;
    t.is(decodePacket(bad, keys), undefined, `byte ${at} changed`);
  }
  t.is(decodePacket(sealed, sessionKeys(randomBytes(20))), undefined, 'other keys');
});

// Whole sessions: serial, because they share the process's one socket and count what is left behind.
const target = (port: number, password = 'pw-fake'): IpmiTarget => ({ scheme: 'ipmi', bmc: '127.0.0.1', port, user: 'admin', password });
const signal = () => new AbortController().signal;

async function fakeBmc(t: { teardown(fn: () => void): void }, options: Partial<FakeBmcOptions> = {}): Promise<{ bmc: FakeBmc; port: number }> {
  const bmc = new FakeBmc({ password: 'pw-fake', ...options });
  const port = await bmc.start();
  t.teardown(() => bmc.close());
  return { bmc, port };
}

/** Timers and UDP sockets of this process, once earlier closes have completed. */
async function resources(): Promise<string[]> {
  await new Promise((r) => setTimeout(r, 20));
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'UDPWrap').sort();
}

test.serial('against a BMC from the spec: status, on after Set Session Privilege Level (Administrator), Close Session last', async (t) => {
  const { bmc, port } = await fakeBmc(t);
  const plugin = rmcpPlugin(target(port));
  t.is(await plugin.status(signal(), 5), 'off');
  await plugin.act('on', signal(), 5);
  t.is(await plugin.status(signal(), 5), 'on');
  const messages = bmc.received.filter((r) => r.payloadType === 0).map((r) => [r.netFn, r.cmd, ...(r.data ?? [])]);
  t.deepEqual(messages.slice(0, 5), [
    [0x00, 0x01],
    [0x06, 0x3c, 0x00, 0x10, 0, 0],
    [0x06, 0x3b, 0x04],
    [0x00, 0x02, 0x01],
    [0x06, 0x3c, 0x01, 0x10, 0, 0],
  ]);
  t.deepEqual(bmc.received.slice(0, 3).map((r) => r.payloadType), [0x10, 0x12, 0x14]);
  t.false(socketOpen(), 'the socket closed with the last session');
});

test.serial("each action sends ipmitool's Chassis Control value; restart is not an IPMI action", async (t) => {
  const { bmc, port } = await fakeBmc(t);
  const plugin = rmcpPlugin(target(port));
  for (const action of ['off', 'on', 'cycle', 'reset', 'soft'] as const) await plugin.act(action, signal(), 5);
  const controls = bmc.received.filter((r) => r.cmd === 0x02 && r.netFn === 0).map((r) => r.data?.[0]);
  t.deepEqual(controls, [0, 1, 2, 3, 5]);
  t.deepEqual(CHASSIS_CONTROL, { off: 0, on: 1, cycle: 2, reset: 3, soft: 5 });
  await t.throwsAsync(plugin.act('restart', signal(), 5), { message: 'power restart is not supported through IPMI' });
});

test.serial('a wrong password is refused in one line, and the BMC is told (RAKP 3 status 0x0f)', async (t) => {
  const { bmc, port } = await fakeBmc(t);
  await t.throwsAsync(rmcpPlugin(target(port, 'not-it')).status(signal(), 5), {
    message: 'BMC 127.0.0.1 refused the session (wrong user or password?): its RAKP 2 key exchange code does not match the password',
  });
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(bmc.received.at(-1), { payloadType: 0x14, status: 0x0f });
  t.false(socketOpen());
});

test.serial('RAKP 2 statuses and completion codes are named', async (t) => {
  const unknown = await fakeBmc(t, { rakp2Status: 0x0d });
  await t.throwsAsync(rmcpPlugin(target(unknown.port)).status(signal(), 5), {
    message: 'BMC 127.0.0.1 refused the session (wrong user or password?): RAKP 2 status 0x0d (unauthorized name)',
  });
  const busy = await fakeBmc(t, { rakp2Status: 0x01 });
  await t.throwsAsync(rmcpPlugin(target(busy.port)).status(signal(), 5), {
    message: 'BMC 127.0.0.1 refused the session: RAKP 2 status 0x01 (insufficient resources to create a session)',
  });
  const refusing = await fakeBmc(t, { completionCodes: { 0x02: 0xd5 } });
  await t.throwsAsync(rmcpPlugin(target(refusing.port)).act('cycle', signal(), 5), {
    message: 'BMC 127.0.0.1: Chassis Control answered completion code 0xd5 (command not supported in present state)',
  });
  await new Promise((r) => setTimeout(r, 50));
  t.like(refusing.bmc.received.at(-1), { netFn: 0x06, cmd: 0x3c }, 'the session was closed after the refusal');
  t.false(socketOpen());
});

test.serial('a silent BMC: sent again while waiting, DeadlineError at the deadline, no timer or socket left', async (t) => {
  const before = await resources();
  const { bmc, port } = await fakeBmc(t, { silentTo: 0x10 });
  const started = Date.now();
  await t.throwsAsync(
    RmcpSession.run({ host: '127.0.0.1', port, user: 'admin', password: 'pw-fake', where: 'BMC 127.0.0.1' }, { signal: signal(), deadlineMs: 700, retryMs: 100 }, (s) =>
      s.request(COMMANDS.getChassisStatus),
    ),
    { instanceOf: DeadlineError },
  );
  const elapsed = Date.now() - started;
  t.true(elapsed >= 690 && elapsed < 1200, `${elapsed} ms`);
  t.true(bmc.received.length >= 4, `sent ${bmc.received.length} times`);
  bmc.close();
  t.false(socketOpen());
  t.deepEqual(await resources(), before);
});

test.serial('an abort in the middle of a session ends it at once, sends Close Session, leaves nothing behind', async (t) => {
  const before = await resources();
  const { bmc, port } = await fakeBmc(t, { silentTo: 0x00 });
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(new DeadlineError()), 300);
  await t.throwsAsync(rmcpPlugin(target(port)).act('on', controller.signal, 10), { instanceOf: DeadlineError });
  t.true(Date.now() - started < 600);
  await new Promise((r) => setTimeout(r, 50));
  t.like(bmc.received.at(-1), { netFn: 0x06, cmd: 0x3c });
  await t.throwsAsync(rmcpPlugin(target(port)).status(controller.signal, 10), { instanceOf: DeadlineError }, 'already aborted: nothing is sent');
  bmc.close();
  t.false(socketOpen());
  t.deepEqual(await resources(), before);
});

test.serial('one socket serves many sessions at once, each answered by its own BMC', async (t) => {
  const a = await fakeBmc(t);
  const b = await fakeBmc(t);
  b.bmc.power = true;
  const states = await Promise.all(Array.from({ length: 40 }, (_, i) => rmcpPlugin(target(i % 2 ? b.port : a.port)).status(signal(), 5)));
  t.deepEqual(states, Array.from({ length: 40 }, (_, i) => (i % 2 ? 'on' : 'off')));
  t.false(socketOpen());
});
