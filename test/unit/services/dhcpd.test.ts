import test from 'ava';
import type { NetworkInterfaceInfo } from 'node:os';
import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { dhcpdFiles, dhcpdService, renderDhcpdConf } from '../../../src/appliance/services/dhcpd/index.js';
import {
  isPrivateIpv4,
  parseInterfaceList,
  renderSubnets,
  selectDhcpNetworks,
  type InterfaceTable,
} from '../../../src/appliance/services/dhcpd/networks.js';
import { Supervisor } from '../../../src/appliance/supervisor/supervisor.js';
import { eventually, FakeClock, FakeSpawner, MemorySink, flush } from '../supervisor/fakes.js';
import { testContext } from './context.js';

function v4(address: string, netmask: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask, family: 'IPv4', mac: '52:54:00:00:00:01', internal, cidr: null };
}
function v6(address: string): NetworkInterfaceInfo {
  return { address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '52:54:00:00:00:01', internal: false, cidr: null, scopeid: 0 };
}

const HOST: InterfaceTable = {
  lo: [v4('127.0.0.1', '255.0.0.0', true)],
  eth0: [v4('203.0.113.7', '255.255.255.0'), v6('2001:db8::7')],
  eth1: [v4('10.54.1.1', '255.255.0.0'), v6('fe80::1')],
  eth2: [v4('192.168.50.10', '255.255.255.0')],
  docker0: [v4('172.17.0.1', '255.255.0.0')],
  'br-3f2a1b9c0d4e': [v4('172.18.0.1', '255.255.0.0')],
  eth3: [v6('fe80::3')],
};

test('automatic selection takes private IPv4 networks and skips public, loopback and engine bridges', (t) => {
  const { networks, notes } = selectDhcpNetworks(HOST, null);
  t.deepEqual(
    networks.map((n) => [n.iface, n.network, n.netmask, n.prefix]),
    [
      ['eth1', '10.54.0.0', '255.255.0.0', 16],
      ['eth2', '192.168.50.0', '255.255.255.0', 24],
    ],
  );
  t.deepEqual(notes, []);
});

test('CW_DHCP_INTERFACES names the interfaces; missing ones are noted', (t) => {
  t.deepEqual(parseInterfaceList(' eth0  eth2,eth0 '), ['eth0', 'eth2']);
  t.is(parseInterfaceList(''), null);
  t.is(parseInterfaceList(undefined), null);
  t.throws(() => parseInterfaceList('eth0 ;reboot'), { message: /invalid interface name ";reboot"/ });
  const { networks, notes } = selectDhcpNetworks(HOST, ['eth0', 'eth3', 'ib0']);
  t.deepEqual(networks.map((n) => [n.iface, n.network]), [['eth0', '203.0.113.0']]);
  t.deepEqual(notes, ['eth3: no IPv4 address', 'ib0: no such interface']);
});

test('private ranges', (t) => {
  t.true(isPrivateIpv4('10.1.2.3'));
  t.true(isPrivateIpv4('172.31.255.1'));
  t.false(isPrivateIpv4('172.32.0.1'));
  t.true(isPrivateIpv4('192.168.0.1'));
  t.false(isPrivateIpv4('192.169.0.1'));
});

test('subnets are declared without a pool, once per network', (t) => {
  const { networks } = selectDhcpNetworks({ ...HOST, eth4: [v4('10.54.9.9', '255.255.0.0')] }, null);
  t.is(
    renderSubnets(networks).text,
    [
      '# eth1 10.54.1.1/16, eth4 10.54.9.9/16: listen and log only (no pool yet)',
      'subnet 10.54.0.0 netmask 255.255.0.0 {',
      '}',
      '# eth2 192.168.50.10/24: listen and log only (no pool yet)',
      'subnet 192.168.50.0 netmask 255.255.255.0 {',
      '}',
    ].join('\n'),
  );
});

test('dhcpd.conf is not authoritative, has no ddns and hands out nothing', async (t) => {
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  const text = await renderDhcpdConf(ctx, selectDhcpNetworks(HOST, null).networks);
  t.regex(text, /^not authoritative;$/m);
  t.regex(text, /^ddns-update-style none;$/m);
  t.regex(text, /^subnet 10\.54\.0\.0 netmask 255\.255\.0\.0 \{\n\}$/m);
  t.notRegex(text, /range|\{\{/);
});

test('prepare: validated config installed, leases touched, interfaces on the command line', async (t) => {
  const { ctx, runs, cleanup } = await testContext();
  t.teardown(cleanup);
  await mkdir(ctx.paths.dhcpDir, { recursive: true });
  await mkdir(ctx.paths.runDir, { recursive: true });
  const files = dhcpdFiles(ctx);
  await writeFile(files.pidFile, '4242\n');
  const spec = dhcpdService(ctx, () => HOST);
  t.is(await spec.prepare?.(), undefined);
  t.deepEqual(runs[0]?.args.slice(0, 4), ['-t', '-4', '-q', '-cf']);
  t.regex(await readFile(files.config, 'utf8'), /subnet 192\.168\.50\.0/);
  t.true((await stat(files.leases)).isFile());
  await t.throwsAsync(stat(files.pidFile), undefined, 'stale pid file removed');
  const command = await spec.command();
  t.deepEqual(command.args, ['-f', '-d', '-4', '-cf', files.config, '-lf', files.leases, '-pf', files.pidFile, 'eth1', 'eth2']);
});

test('prepare: a config dhcpd -t rejects keeps the last good one', async (t) => {
  let accept = true;
  const { ctx, logs, cleanup } = await testContext({
    run: async () => (accept ? { exitCode: 0, output: '' } : { exitCode: 1, output: 'dhcpd.conf line 3: semicolon expected.\nConfiguration file errors encountered -- exiting' }),
  });
  t.teardown(cleanup);
  await mkdir(ctx.paths.dhcpDir, { recursive: true });
  let table: InterfaceTable = HOST;
  const spec = dhcpdService(ctx, () => table);
  await spec.prepare?.();
  const good = await readFile(dhcpdFiles(ctx).config, 'utf8');
  accept = false;
  table = { eth9: [v4('10.99.0.1', '255.255.255.0')] };
  await spec.prepare?.();
  t.is(await readFile(dhcpdFiles(ctx).config, 'utf8'), good);
  t.truthy(logs.find((l) => l.startsWith('[dhcpd] new dhcpd.conf rejected, keeping the last good one: dhcpd.conf line 3: semicolon expected.')));
});

test('no cluster interface: dhcpd waits (clearly logged, once), health stays OK, starts when one appears', async (t) => {
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  await mkdir(ctx.paths.dhcpDir, { recursive: true });
  let table: InterfaceTable = { lo: HOST.lo, eth0: HOST.eth0, docker0: HOST.docker0 };
  const clock = new FakeClock();
  const spawner = new FakeSpawner(clock);
  const sink = new MemorySink();
  const spec = { ...dhcpdService(ctx, () => table), readiness: { probe: async () => true, intervalMs: 100, timeoutMs: 1000 } };
  const supervisor = new Supervisor([spec], { clock, spawner, sink });
  supervisor.start();
  await flush();
  t.is(supervisor.state('dhcpd'), 'waiting');
  await clock.advance(60_000);
  t.deepEqual(sink.matching(/^\[dhcpd\]/), ['[dhcpd] no cluster network interface; waiting']);
  t.is(spawner.children.length, 0);
  const answer = supervisor.health();
  t.is(answer.status, 'healthy');

  table = HOST;
  await clock.advance(10_000);
  t.true(await eventually(() => spawner.children.length === 1));
  await clock.advance(100);
  t.is(supervisor.state('dhcpd'), 'ready');
  t.deepEqual(spawner.last('dhcpd').request.args.slice(-2), ['eth1', 'eth2']);
});
