import test from 'ava';
import { mkdirSync } from 'node:fs';
import { ConsoleLog, consoleLogFile } from '../../../src/appliance/console/log-file.js';
import { wantedConsoles } from '../../../src/appliance/console/manager.js';
import { session } from './helpers.js';

test('GET /node/:id/console tells the ssh port and whether the console is logged', async (t) => {
  const s = await session(t, { console: { sshPort: 2200 } });
  await s.call('POST', '/nodes', {});
  t.deepEqual((await s.call('GET', '/node/n0/console')).body.data, { name: 'n0', ssh_port: 2200, logged: false });
  const set = await s.call('PATCH', '/nodes', { ids: 'n0', set: { _console_log: 'yes' } });
  t.is(set.status, 200);
  t.true((await s.call('GET', '/node/n0/console')).body.data.logged);
  t.is((await s.call('GET', '/node/n9/console')).status, 404);
});

test('GET /node/:id/console/log replays the last lines; refuses bad counts, unknown nodes and missing tokens', async (t) => {
  const s = await session(t);
  await s.call('POST', '/nodes', {});
  t.deepEqual((await s.call('GET', '/node/n0/console/log')).body.data, { name: 'n0', lines: [] });
  mkdirSync(s.store.paths.consolesDir, { recursive: true });
  const log = new ConsoleLog(consoleLogFile(s.store.paths.consolesDir, 'n0'));
  await log.append(['2026-12-06T04:00:00.000Z one', '2026-12-06T04:00:01.000Z two', '2026-12-06T04:00:02.000Z three']);
  await log.close();
  t.deepEqual((await s.call('GET', '/node/n0/console/log?lines=2')).body.data.lines, ['2026-12-06T04:00:01.000Z two', '2026-12-06T04:00:02.000Z three']);
  t.is((await s.call('GET', '/node/n0/console/log')).body.data.lines.length, 3);
  t.is((await s.call('GET', '/node/n0/console/log?lines=-1')).status, 400);
  t.is((await s.call('GET', '/node/n0/console/log?lines=../x')).status, 400);
  t.is((await s.call('GET', '/node/n1/console/log')).status, 404);
  t.is((await s.api.inject({ url: '/api/v1/node/n0/console/log' })).statusCode, 401);
});

test('follow=1 streams the replay, then new lines as they are written, across a rotation', async (t) => {
  const s = await session(t, { console: { pollMs: 20 } });
  await s.call('POST', '/nodes', {});
  mkdirSync(s.store.paths.consolesDir, { recursive: true });
  const file = consoleLogFile(s.store.paths.consolesDir, 'n0');
  const log = new ConsoleLog(file, { maxBytes: 40 });
  await log.append(['old line 1', 'old line 2']);
  const res = await s.api.inject({ url: '/api/v1/node/n0/console/log?lines=1&follow=1', headers: s.auth, payloadAsStream: true });
  t.is(res.statusCode, 200);
  t.regex(String(res.headers['content-type']), /^text\/plain/);
  const stream = res.stream();
  let text = '';
  stream.on('data', (c: Buffer) => {
    text += c.toString('utf8');
  });
  const until = async (probe: () => boolean) => {
    for (let i = 0; i < 200 && !probe(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  await until(() => text.includes('old line 2'));
  await new Promise((r) => setTimeout(r, 60));
  await log.append(['new line 3']);
  await until(() => text.includes('new line 3'));
  // The next line rotates the file: the follow finds the new one and reads it from its start.
  await log.append(['new line 4 after rotation']);
  await until(() => text.includes('new line 4'));
  await log.close();
  stream.destroy();
  t.is(text, 'old line 2\nnew line 3\nnew line 4 after rotation\n');
});

test('wantedConsoles: _console_log and _power_uri resolved through groups; the node\'s own power_uri first; others skipped with a reason', async (t) => {
  const s = await session(t);
  t.is((await s.call('POST', '/attribs', { name: 'rack1', attributes: { _console_log: 'yes', _power_uri: 'ipmi:///admin:pw@10.1.15.1' } })).status, 201);
  await s.call('POST', '/nodes', { groups: ['rack1'] });
  await s.call('POST', '/nodes', { groups: ['rack1'], power_uri: 'ipmi:///admin:pw@10.1.15.2:6230' });
  await s.call('POST', '/nodes', { groups: ['rack1'], power_uri: 'redfish://root:pw@10.1.16.1' });
  await s.call('POST', '/nodes', { groups: ['rack1'], attributes: { _console_log: 'no' } });
  await s.call('POST', '/nodes', {});
  const { wanted, skipped } = await wantedConsoles(s.store);
  t.deepEqual(
    wanted.map((w) => [w.node, w.target.scheme === 'ipmi' ? `${w.target.bmc}:${w.target.port ?? 623}` : '']),
    [['n0', '10.1.15.1:623'], ['n1', '10.1.15.2:6230']],
  );
  t.deepEqual(skipped, [{ node: 'n2', reason: 'console logs need an ipmi:/// power_uri (no relay)' }]);
});

test('onChange is called after each successful change request, not after reads or refusals', async (t) => {
  let changes = 0;
  const s = await session(t, { onChange: () => (changes += 1) });
  const before = changes; // logging in is a POST
  await s.call('POST', '/nodes', {});
  await s.call('PATCH', '/nodes', { ids: 'n0', set: { _console_log: 'yes' } });
  t.is(changes, before + 2);
  await s.call('GET', '/nodes');
  await s.call('PATCH', '/nodes', { ids: 'n9', set: { x: '1' } });
  await s.call('POST', '/nodes', { mac: 'bad' });
  t.is(changes, before + 2);
});
