import test from 'ava';
import type { NetworkInterfaceInfo } from 'node:os';
import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { DhcpModel } from '../../../src/appliance/dhcp/model.js';
import { writeDhcpModel } from '../../../src/appliance/dhcp/model-file.js';
import { dhcpdCheckReason, dhcpdFiles, dhcpdService, renderDhcpdConf } from '../../../src/appliance/services/dhcpd/index.js';
import {
  advertisedAddresses,
  parseInterfaceList,
  planListening,
  selectDhcpNetworks,
  type InterfaceTable,
} from '../../../src/appliance/services/dhcpd/networks.js';
import { runCommandLine } from '../../../src/appliance/services/run.js';
import { Supervisor } from '../../../src/appliance/supervisor/supervisor.js';
import { eventually, FakeClock, FakeSpawner, MemorySink, flush } from '../supervisor/fakes.js';
import { requireTools, toolPath } from '../../helpers/tools.js';
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

const CLUSTER: DhcpModel = {
  version: 3,
  nets: [{ name: 'cluster', network: '10.54.0.0', prefix: 16, netmask: '255.255.0.0', first: '10.54.2.0', last: '10.54.2.255', gateway: '10.54.1.1' }],
  hosts: [
    { name: 'n1', mac: '52:54:00:00:00:02', ip: '10.54.2.1' },
    { name: 'n0', mac: '52:54:00:00:00:01', ip: '10.54.2.0' },
  ],
};

const EMPTY: DhcpModel = { version: 0, nets: [], hosts: [] };
const DHCPD = toolPath('dhcpd');
const dhcpdTest = requireTools('dhcpd');

test('without cluster networks: one listen-only subnet per network, not authoritative, nothing handed out', async (t) => {
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  const plan = planListening({ ...HOST, eth4: [v4('10.54.9.9', '255.255.0.0')] }, [], null);
  t.deepEqual(plan.listen.map((n) => n.iface), ['eth1', 'eth2', 'eth4']);
  const { text } = await renderDhcpdConf(ctx, EMPTY, plan);
  t.regex(text, /^not authoritative;$/m);
  t.regex(text, /^ddns-update-style none;$/m);
  t.regex(text, /^# eth1 10\.54\.1\.1\/16, eth4 10\.54\.9\.9\/16: listen only, not a cluster network \(nothing is handed out\)\nsubnet 10\.54\.0\.0 netmask 255\.255\.0\.0 \{\n\}$/m);
  t.regex(text, /^subnet 192\.168\.50\.0 netmask 255\.255\.255\.0 \{\n\}$/m);
  t.notRegex(text, /^\s*(range|host) |\{\{/m);
});

test('with cluster networks: dhcpd listens where the head node has an address in one, plus CW_DHCP_INTERFACES', (t) => {
  const plan = planListening(HOST, CLUSTER.nets, null);
  t.deepEqual(plan.listen.map((n) => n.iface), ['eth1']);
  t.deepEqual(plan.ownAddresses, ['10.54.1.1']);
  t.deepEqual(plan.listenOnly, []);
  t.is(plan.wait, null);

  const relayed = planListening(HOST, CLUSTER.nets, ['eth2', 'eth1', 'ib0']);
  t.deepEqual(relayed.listen.map((n) => n.iface), ['eth1', 'eth2']);
  t.deepEqual(relayed.listenOnly, [{ network: '192.168.50.0', prefix: 24, note: 'eth2 192.168.50.10/24' }]);
  t.deepEqual(relayed.notes, ['ib0: no such interface']);

  const elsewhere = planListening({ eth0: HOST.eth0, eth2: HOST.eth2 }, CLUSTER.nets, null);
  t.deepEqual(elsewhere.listen, []);
  t.is(elsewhere.wait, 'no interface has an address in a cluster network (cluster 10.54.0.0/16)');
});

test('a head address (floating IP) is the only one nodes are told in its network; absent, the host\'s own are', async (t) => {
  const floating = { ...HOST, eth1: [v4('10.54.1.1', '255.255.0.0'), v4('10.54.0.2', '255.255.0.0')] };
  const plan = planListening(floating, CLUSTER.nets, null);
  t.deepEqual(plan.ownAddresses, ['10.54.1.1', '10.54.0.2']);
  t.deepEqual(advertisedAddresses(plan.ownAddresses, CLUSTER.nets, null), { addresses: ['10.54.1.1', '10.54.0.2'], note: null });
  const advertised = advertisedAddresses(plan.ownAddresses, CLUSTER.nets, '10.54.0.2');
  t.deepEqual(advertised, { addresses: ['10.54.0.2'], note: null });
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  const { text } = await renderDhcpdConf(ctx, CLUSTER, plan, advertised.addresses);
  t.regex(text, /^ {2}next-server 10\.54\.0\.2;$/m);
  t.regex(text, /filename "http:\/\/10\.54\.0\.2:18080\//);
  t.notRegex(text, /next-server 10\.54\.1\.1/);
  // Reserved all the same: neither address is ever handed to a node.
  const hostOnly = planListening(HOST, CLUSTER.nets, null);
  t.deepEqual(advertisedAddresses(hostOnly.ownAddresses, CLUSTER.nets, '10.54.0.2'), {
    addresses: ['10.54.1.1'],
    note: 'head address 10.54.0.2 is not advertised: no interface has it (yet) in cluster network cluster',
  });
  t.deepEqual(advertisedAddresses(hostOnly.ownAddresses, CLUSTER.nets, '192.168.9.9').note, 'head address 192.168.9.9 is not advertised: it is in no cluster network');
});

test('prepare: the model becomes subnets and hosts, checked by dhcpd -t, started on the cluster interface', async (t) => {
  const { ctx, runs, cleanup } = await testContext();
  t.teardown(cleanup);
  await mkdir(ctx.paths.dhcpDir, { recursive: true });
  await mkdir(ctx.paths.runDir, { recursive: true });
  const files = dhcpdFiles(ctx);
  await writeFile(files.pidFile, '4242\n');
  await writeDhcpModel(ctx.paths, CLUSTER);
  const spec = dhcpdService(ctx, () => HOST);
  t.is(await spec.prepare?.(), undefined);
  t.deepEqual(runs[0]?.args.slice(0, 3), ['-t', '-4', '-cf']);
  const text = await readFile(files.config, 'utf8');
  t.true(
    text.includes(
      [
        '# cluster network cluster: 10.54.0.0/16, node range 10.54.2.0 - 10.54.2.255',
        'subnet 10.54.0.0 netmask 255.255.0.0 {',
        '  option routers 10.54.1.1;',
        '  next-server 10.54.1.1;',
        '  if exists user-class and option user-class = "iPXE" {',
        '    filename "http://10.54.1.1:18080/api/v1/boot/ipxe";',
        '  } elsif option arch = 00:07 or option arch = 00:09 {',
        '    filename "ipxe.efi";',
        '  } else {',
        '    filename "undionly.kpxe";',
        '  }',
        '}',
        '',
        '# Compute nodes.',
        'host n0 { hardware ethernet 52:54:00:00:00:01; fixed-address 10.54.2.0; option host-name "n0"; }',
        'host n1 { hardware ethernet 52:54:00:00:00:02; fixed-address 10.54.2.1; option host-name "n1"; }',
        '',
      ].join('\n'),
    ),
    text,
  );
  t.notRegex(text, /^\s*range /m, 'not dynamic: unknown MACs get nothing');
  const command = await spec.command();
  t.deepEqual(command.args, ['-f', '-d', '-4', '-cf', files.config, '-lf', files.leases, '-pf', files.pidFile, 'eth1']);
  t.true((await stat(files.leases)).isFile(), 'leases file created in STORAGE/dhcp');
  await t.throwsAsync(stat(files.pidFile), undefined, 'stale pid file removed');
  t.is(spec.statusDetail?.(), null);
});

test('an admin template in STORAGE/etc/templates is used (e.g. to add name servers)', async (t) => {
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  await mkdir(ctx.paths.templates.overrideDir, { recursive: true });
  await writeFile(
    path.join(ctx.paths.templates.overrideDir, 'dhcpd.conf.template'),
    'authoritative;\noption domain-name-servers 10.54.1.1;\n{{subnets}}\n{{hosts}}\n',
  );
  const { text } = await renderDhcpdConf(ctx, CLUSTER, planListening(HOST, CLUSTER.nets, null));
  // A copy made before network boot lacks the option 93 declaration the boot file choice needs: it is added.
  t.true(
    text.startsWith(
      'authoritative;\noption domain-name-servers 10.54.1.1;\n# DHCP option 93 (client architecture), missing from the template\n' +
        'option arch code 93 = unsigned integer 16;\n# cluster network cluster:',
    ),
    text,
  );
  t.regex(text, /^host n1 \{/m);
  const declared = 'option arch code 93 = unsigned integer 16;\n{{subnets}}\n{{hosts}}\n';
  await writeFile(path.join(ctx.paths.templates.overrideDir, 'dhcpd.conf.template'), declared);
  const own = await renderDhcpdConf(ctx, CLUSTER, planListening(HOST, CLUSTER.nets, null));
  t.is(own.text.split('\n').filter((l) => l.startsWith('option arch code 93')).length, 1, 'declared once');
});

test('a config dhcpd -t rejects keeps the last good one running: one log line, health detail, no restart', async (t) => {
  let accept = true;
  const { ctx, logs, cleanup } = await testContext({
    run: async () =>
      accept
        ? { exitCode: 0, output: '' }
        : {
            exitCode: 1,
            output: `Internet Systems Consortium DHCP Server 4.4.3-P1\n${ctx.paths.generatedDir}/dhcpd.conf.new line 3: unknown option dhcp.routerz\noption routerz 1.\n        ^\nConfiguration file errors encountered -- exiting\n\nexiting.`,
          },
  });
  t.teardown(cleanup);
  await mkdir(ctx.paths.dhcpDir, { recursive: true });
  await writeDhcpModel(ctx.paths, CLUSTER);
  const files = dhcpdFiles(ctx);
  const spec = { ...dhcpdService(ctx, () => HOST), readiness: { probe: async () => true, intervalMs: 10, timeoutMs: 1000 } };
  const clock = new FakeClock();
  const spawner = new FakeSpawner(clock);
  const sink = new MemorySink();
  const supervisor = new Supervisor([spec], { clock, spawner, sink });
  supervisor.start();
  t.true(await eventually(() => supervisor.state('dhcpd') === 'ready'));
  const good = await readFile(files.config, 'utf8');

  accept = false;
  await writeDhcpModel(ctx.paths, { ...CLUSTER, version: 4, hosts: [...CLUSTER.hosts, { name: 'n2', mac: '52:54:00:00:00:03', ip: '10.54.2.2' }] });
  const after = await supervisor.reload('dhcpd');
  t.is(await readFile(files.config, 'utf8'), good, 'working config untouched');
  t.regex(await readFile(files.rejected, 'utf8'), /host n2 /, 'the refused config is kept for the admin');
  t.deepEqual(
    logs.filter((l) => l.includes('rejected')),
    ['[dhcpd] new config rejected by dhcpd -t: dhcpd.conf line 3: unknown option dhcp.routerz | option routerz 1.; keeping the last good config'],
  );
  t.is(spawner.of('dhcpd').length, 1, 'the running daemon was not restarted');
  t.is(after.state, 'ready');
  t.regex(after.detail ?? '', /^new config rejected by dhcpd -t: .*; serving the last good config$/);
  t.is(supervisor.health().status, 'healthy');

  accept = true;
  const fixed = await supervisor.reload('dhcpd');
  t.is(fixed.detail, null);
  t.is(spawner.of('dhcpd').length, 2, 'the accepted config is served by a restarted dhcpd');
  t.regex(await readFile(files.config, 'utf8'), /host n2 /);
  await t.throwsAsync(stat(files.rejected), undefined, 'the stale rejected copy is removed');
});

test('a broken admin template or model keeps the last good config; with none to keep the start fails', async (t) => {
  const { ctx, logs, cleanup } = await testContext();
  t.teardown(cleanup);
  await mkdir(ctx.paths.dhcpDir, { recursive: true });
  await mkdir(ctx.paths.templates.overrideDir, { recursive: true });
  const template = path.join(ctx.paths.templates.overrideDir, 'dhcpd.conf.template');
  await writeFile(template, '{{subnet}}\n');
  const spec = dhcpdService(ctx, () => HOST);
  await t.throwsAsync(spec.prepare?.() ?? Promise.resolve(), {
    message: /^new config not rendered: .*dhcpd\.conf\.template:1: unknown placeholder \{\{subnet\}\}; no earlier config to keep$/,
  });

  await writeFile(template, '{{subnets}}\n{{hosts}}\n');
  t.is(await spec.prepare?.(), undefined);
  await spec.command();
  const good = await readFile(dhcpdFiles(ctx).config, 'utf8');
  await writeFile(template, '{{subnets}}\n{{hostz}}\n');
  t.deepEqual(await spec.prepare?.(), { unchanged: true });
  await writeFile(template, '{{subnets}}\n{{hosts}}\n');
  await writeFile(path.join(ctx.paths.generatedDir, 'dhcp-model.json'), '{"version":1,"nets":[],"hosts":[{"name":"n0; }","mac":"52:54:00:00:00:01","ip":"10.54.2.0"}]}');
  t.deepEqual(await spec.prepare?.(), { unchanged: true });
  t.is(await readFile(dhcpdFiles(ctx).config, 'utf8'), good);
  const rejected = logs.filter((l) => l.includes('keeping the last good config'));
  t.is(rejected.length, 2);
  t.regex(rejected[0] ?? '', /^\[dhcpd\] new config not rendered: .*unknown placeholder \{\{hostz\}\}; keeping the last good config$/);
  t.regex(rejected[1] ?? '', /^\[dhcpd\] new config not rendered: invalid .*dhcp-model\.json: hosts\[0\] "n0; }": name "n0; }": name contains ";"/);
});

test('a reload with an unchanged config leaves the running dhcpd alone', async (t) => {
  const { ctx, runs, cleanup } = await testContext();
  t.teardown(cleanup);
  await mkdir(ctx.paths.dhcpDir, { recursive: true });
  await writeDhcpModel(ctx.paths, CLUSTER);
  const clock = new FakeClock();
  const spawner = new FakeSpawner(clock);
  const supervisor = new Supervisor([dhcpdService(ctx, () => HOST)], { clock, spawner, sink: new MemorySink() });
  supervisor.start();
  t.true(await eventually(() => spawner.children.length === 1));
  await writeDhcpModel(ctx.paths, { ...CLUSTER, version: 4 });
  await supervisor.reload('dhcpd');
  t.is(spawner.of('dhcpd').length, 1, 'same content, same interfaces: no restart');
  t.is(runs.length, 1, 'and no second dhcpd -t');
  await writeDhcpModel(ctx.paths, { ...CLUSTER, version: 5, hosts: CLUSTER.hosts.slice(1) });
  await supervisor.reload('dhcpd');
  t.is(spawner.of('dhcpd').length, 2);
});

test('cluster networks without a local interface: dhcpd waits with the reason, then starts when the model matches', async (t) => {
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  await mkdir(ctx.paths.dhcpDir, { recursive: true });
  await writeDhcpModel(ctx.paths, { ...CLUSTER, nets: [{ ...CLUSTER.nets[0]!, network: '10.99.0.0' , first: '10.99.2.0', last: '10.99.2.255', gateway: null }], hosts: [] });
  const clock = new FakeClock();
  const spawner = new FakeSpawner(clock);
  const supervisor = new Supervisor([dhcpdService(ctx, () => HOST)], { clock, spawner, sink: new MemorySink() });
  supervisor.start();
  t.true(await eventually(() => supervisor.state('dhcpd') === 'waiting'));
  t.is(supervisor.health().services.dhcpd?.detail, 'no interface has an address in a cluster network (cluster 10.99.0.0/16)');
  t.is(supervisor.health().status, 'healthy');
  await writeDhcpModel(ctx.paths, CLUSTER);
  await supervisor.reload('dhcpd');
  t.is(spawner.of('dhcpd').length, 1);
  t.deepEqual(spawner.last('dhcpd').request.args.slice(-1), ['eth1']);
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
  // Preparing reads the interfaces and writes files: under load that takes more than a flush.
  t.true(await eventually(() => supervisor.state('dhcpd') === 'waiting'), supervisor.state('dhcpd'));
  await clock.advance(60_000);
  t.deepEqual(sink.matching(/^\[dhcpd\]/), ['[dhcpd] no cluster network interface; waiting']);
  t.is(spawner.children.length, 0);
  t.is(supervisor.health().status, 'healthy');

  table = HOST;
  await clock.advance(10_000);
  t.true(await eventually(() => spawner.children.length === 1));
  await clock.advance(100);
  t.is(supervisor.state('dhcpd'), 'ready');
  t.deepEqual(spawner.last('dhcpd').request.args.slice(-2), ['eth1', 'eth2']);
});

test('dhcpd -t output is reduced to its complaint', (t) => {
  const output = [
    'Internet Systems Consortium DHCP Server 4.4.3-P1',
    'Copyright 2004-2022 Internet Systems Consortium.',
    'All rights reserved.',
    'For info, please visit https://www.isc.org/software/dhcp/',
    '/var/lib/cw/etc/generated/dhcpd.conf.new line 1: unexpected end of file',
    'subnet 10.214.0.0 netmask 255.255.255.0 {',
    '                                         ^',
    'Configuration file errors encountered -- exiting',
    '',
    'If you think you have received this message due to a bug rather',
    'exiting.',
  ].join('\n');
  t.is(
    dhcpdCheckReason(output, '/var/lib/cw/etc/generated/dhcpd.conf.new'),
    'dhcpd.conf line 1: unexpected end of file | subnet 10.214.0.0 netmask 255.255.255.0 {',
  );
  t.is(dhcpdCheckReason("Can't open /nonexist: No such file or directory\nexiting.", '/x'), "Can't open /nonexist: No such file or directory");
});

dhcpdTest('the real dhcpd -t accepts a rendered 10,000-host config and refuses a broken admin template', async (t) => {
  const { ctx, logs, cleanup } = await testContext({ run: runCommandLine });
  t.teardown(cleanup);
  ctx.bins.dhcpd = DHCPD;
  await mkdir(ctx.paths.dhcpDir, { recursive: true });
  const hosts = Array.from({ length: 10_000 }, (_, i) => ({
    name: `n${i}`,
    mac: `52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
    ip: `10.54.${100 + (i >> 8)}.${i & 255}`,
  }));
  await writeDhcpModel(ctx.paths, {
    version: 1,
    nets: [{ name: 'cluster', network: '10.54.0.0', prefix: 16, netmask: '255.255.0.0', first: '10.54.100.0', last: '10.54.200.255', dynamic: true }],
    hosts,
  });
  const spec = dhcpdService(ctx, () => HOST);
  t.is(await spec.prepare?.(), undefined);
  t.log(logs.find((l) => l.includes('rendered in')));
  const text = await readFile(dhcpdFiles(ctx).config, 'utf8');
  t.is(text.split('\n').filter((l) => l.startsWith('host ')).length, 10_000);
  t.regex(text, /^ {2}range 10\.54\.139\.16 10\.54\.200\.255;$/m);

  await mkdir(ctx.paths.templates.overrideDir, { recursive: true });
  await writeFile(path.join(ctx.paths.templates.overrideDir, 'dhcpd.conf.template'), 'option routerz 10.54.1.1;\n{{subnets}}\n{{hosts}}\n');
  t.deepEqual(await spec.prepare?.(), { unchanged: true });
  t.is(await readFile(dhcpdFiles(ctx).config, 'utf8'), text);
  t.deepEqual(logs.filter((l) => l.includes('rejected')), [
    '[dhcpd] new config rejected by dhcpd -t: dhcpd.conf line 1: unknown option dhcp.routerz | option routerz 10.; keeping the last good config',
  ]);
});
