// cw-nodectl console: --log replays the appliance's log of a node's console through the real API; the
// interactive form is ssh to the appliance with an argument array.
import test from 'ava';
import { ConsoleLog, consoleLogFile } from '../../../src/appliance/console/log-file.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { nodectl } from '../../../src/tools/nodectl/nodectl.js';
import { consoleSshArgv } from '../../../src/tools/nodectl/console.js';
import { clusterFixture } from './harness.js';

const fixture = clusterFixture(test, 'c');

test.serial('console --log prints the last lines; --lines picks how many; one node only', async (t) => {
  const c = await fixture.start();
  await c.client().post('/nodes', [{ index: 0 }, { index: 1 }]);
  const dir = storagePaths(c.storage).consolesDir;
  const log = new ConsoleLog(consoleLogFile(dir, 'n0'));
  await log.append(['2026-12-06T04:00:00.000Z BIOS', '2026-12-06T04:00:05.000Z Linux version 6.1.0', '2026-12-06T04:00:09.000Z n0 login: \x1b[31m']);
  await log.close();
  t.is(await c.ok(nodectl, ['-i', 'n0', 'console', '--log']), '2026-12-06T04:00:00.000Z BIOS\n2026-12-06T04:00:05.000Z Linux version 6.1.0\n2026-12-06T04:00:09.000Z n0 login: \\x1b[31m\n');
  t.is(await c.ok(nodectl, ['-i', 'n0', 'console', '--log', '--lines', '1']), '2026-12-06T04:00:09.000Z n0 login: \\x1b[31m\n');
  t.is(await c.ok(nodectl, ['-i', 'n1', 'console', '--log']), '');
  const both = await c.run(nodectl, ['-i', 'n[0-1]', 'console', '--log']);
  t.not(both.exitCode, 0);
  t.regex(both.error ?? "", /one node at a time/);
  const stray = await c.run(nodectl, ['-i', 'n0', 'console', '--follow']);
  t.regex(stray.error ?? "", /--lines and --follow go with --log/);
});

test('the interactive console is ssh -t to root on the head node\'s host and sshd port, running cw-appliance console NODE', (t) => {
  t.deepEqual(consoleSshArgv('https://head.example:8443/api/v1', 2200, 'n0'), ['-t', '-p', '2200', '--', 'root@head.example', 'cw-appliance', 'console', 'n0']);
  t.deepEqual(consoleSshArgv('https://[fd00::1]/api/v1', 22, 'rack1-n7'), ['-t', '-p', '22', '--', 'root@fd00::1', 'cw-appliance', 'console', 'rack1-n7']);
  t.throws(() => consoleSshArgv('https://head/api/v1', 22, 'n0;reboot'));
  t.throws(() => consoleSshArgv('https://head/api/v1', 22, '-oProxyCommand=x'));
});

test.serial('the client follows a console log: the replay, then new lines, until it stops', async (t) => {
  const c = await fixture.start();
  await c.client().post('/nodes', [{ index: 0 }]);
  const log = new ConsoleLog(consoleLogFile(storagePaths(c.storage).consolesDir, 'n0'));
  await log.append(['2026-12-06T04:00:00.000Z first']);
  const controller = new AbortController();
  let text = '';
  const done = c.client().streamText('/node/n0/console/log', { lines: 5, follow: 1 }, (chunk) => {
    text += chunk;
    if (text.includes('second')) controller.abort();
  }, controller.signal);
  for (let i = 0; i < 100 && !text.includes('first'); i++) await new Promise((r) => setTimeout(r, 20));
  await log.append(['2026-12-06T04:00:01.000Z second']);
  await done;
  await log.close();
  t.is(text, '2026-12-06T04:00:00.000Z first\n2026-12-06T04:00:01.000Z second\n');
  await t.throwsAsync(c.client().streamText('/node/n9/console/log', { follow: 1 }, () => undefined), { message: /no such node: n9/ });
});
