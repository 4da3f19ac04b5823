import test from 'ava';
import { createSocket } from 'node:dgram';
import { dnsAnswersProbe } from '../../../src/appliance/services/dns/index.js';

test('the dns readiness probe is true once something answers its query on 127.0.0.1, false before', async (t) => {
  const server = createSocket('udp4');
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  const { port } = server.address();
  t.teardown(() => server.close());
  let asked: Buffer | undefined;
  server.on('message', (msg, from) => {
    asked = msg;
    // Answer with the query's id, as a DNS server does.
    server.send(Buffer.concat([msg.subarray(0, 2), Buffer.from([0x84, 0x00]), msg.subarray(4)]), from.port, from.address);
  });
  t.true(await dnsAnswersProbe(port)({ pid: 1 }));
  t.regex(asked?.toString('latin1') ?? '', /\x07version\x04bind\x00\x00\x10\x00\x03$/);
  server.removeAllListeners('message');
  t.false(await dnsAnswersProbe(port, 100)({ pid: 1 }));
});
