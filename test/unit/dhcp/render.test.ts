import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { DhcpModelError, type DhcpHost, type DhcpNet } from '../../../src/appliance/dhcp/model.js';
import { declaresArchOption, freeRanges, hostLabels, renderDhcpConfig, renderDhcpSections } from '../../../src/appliance/dhcp/render.js';
import { requireTools, toolPath } from '../../helpers/tools.js';

const dhcpdTest = requireTools('dhcpd');
const DHCPD = toolPath('dhcpd');

const NET: DhcpNet = {
  name: 'cluster',
  network: '10.10.24.0',
  prefix: 24,
  netmask: '255.255.255.0',
  first: '10.10.24.100',
  last: '10.10.24.199',
};

const N0: DhcpHost = { name: 'n0', mac: '52:54:00:00:00:01', ip: '10.10.24.100' };
const N1: DhcpHost = { name: 'n1', mac: '52:54:00:00:00:02', ip: '10.10.24.101' };

/** `count` hosts n0.. with IPs from 10.1.0.1, MACs 52:54:00:..:..:.. */
function manyHosts(count: number): DhcpHost[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `n${i}`,
    mac: `52:54:00:${hex(i >> 16)}:${hex(i >> 8)}:${hex(i)}`,
    ip: `10.1.${((i + 1) >> 8) & 255}.${(i + 1) & 255}`,
  }));
}
const hex = (n: number): string => (n & 255).toString(16).padStart(2, '0');

test('one subnet per cluster network and one host line per node MAC', (t) => {
  t.is(
    renderDhcpConfig({ nets: [NET], hosts: [N1, N0] }),
    [
      '# cluster network cluster: 10.10.24.0/24, node range 10.10.24.100 - 10.10.24.199',
      'subnet 10.10.24.0 netmask 255.255.255.0 {',
      '}',
      '',
      'host n0 { hardware ethernet 52:54:00:00:00:01; fixed-address 10.10.24.100; option host-name "n0"; }',
      'host n1 { hardware ethernet 52:54:00:00:00:02; fixed-address 10.10.24.101; option host-name "n1"; }',
      '',
    ].join('\n'),
  );
});

test('option routers only with a gateway; a range only for a dynamic network, around the nodes, gateway and head node', (t) => {
  const withGateway = renderDhcpConfig({ nets: [{ ...NET, gateway: '10.10.24.1' }], hosts: [] });
  t.regex(withGateway, /^ {2}option routers 10\.10\.24\.1;$/m);
  t.notRegex(withGateway, /^\s*range /m);
  t.notRegex(renderDhcpConfig({ nets: [{ ...NET, gateway: null }], hosts: [] }), /routers/);

  const dynamic = renderDhcpConfig({
    nets: [{ ...NET, dynamic: true, gateway: '10.10.24.150' }],
    hosts: [N0, N1, { name: 'n5', mac: '52:54:00:00:00:05', ip: '10.10.24.105' }, { name: 'far', mac: '52:54:00:00:00:09', ip: '10.99.0.9' }],
    options: { reserved: ['10.10.24.199', '10.10.24.1'] },
  });
  t.deepEqual(
    dynamic.split('\n').filter((l) => l.startsWith('  range ')),
    ['  range 10.10.24.102 10.10.24.104;', '  range 10.10.24.106 10.10.24.149;', '  range 10.10.24.151 10.10.24.198;'],
  );
  t.regex(dynamic, /^# cluster network cluster: .*, dynamic$/m);

  const full = renderDhcpConfig({ nets: [{ ...NET, first: '10.10.24.100', last: '10.10.24.101', dynamic: true }], hosts: [N0, N1] });
  t.regex(full, /# dynamic, but every address of the node range is taken/);
  t.notRegex(full, /^\s*range /m);
});

test('free ranges: runs between taken addresses, ends included', (t) => {
  const net = { firstInt: 10, lastInt: 20, gatewayInt: null };
  t.deepEqual(freeRanges(net, new Set()), [[10, 20]]);
  t.deepEqual(freeRanges(net, new Set([10, 20, 15, 16, 99])), [[11, 14], [17, 19]]);
  t.deepEqual(freeRanges({ ...net, gatewayInt: 12 }, new Set([11])), [[10, 10], [13, 20]]);
  t.deepEqual(freeRanges({ firstInt: 5, lastInt: 5, gatewayInt: null }, new Set([5])), []);
});

test('deterministic: the order of the input does not matter; networks by address, hosts by IP then MAC', (t) => {
  const nets: DhcpNet[] = [
    { name: 'b', network: '192.168.1.0', prefix: 24, netmask: '255.255.255.0', first: '192.168.1.10', last: '192.168.1.20' },
    { name: 'a', network: '10.2.0.0', prefix: 16, netmask: '255.255.0.0', first: '10.2.0.10', last: '10.2.9.20' },
    { name: 'c', network: '10.10.0.0', prefix: 24, netmask: '255.255.255.0', first: '10.10.0.10', last: '10.10.0.20' },
  ];
  const hosts: DhcpHost[] = [
    { name: 'x', mac: '52:54:00:00:00:10', ip: '192.168.1.10' },
    { name: 'y', mac: '52:54:00:00:00:11', ip: '10.2.0.200' },
    { name: 'z', mac: '52:54:00:00:00:12', ip: '10.10.0.12' },
    { name: 'w', mac: '52:54:00:00:00:13', ip: '10.2.0.9' },
  ];
  const text = renderDhcpConfig({ nets, hosts, options: { listenOnly: [{ network: '172.16.0.0', prefix: 12 }] } });
  t.deepEqual(
    text.split('\n').filter((l) => l.startsWith('subnet ')).map((l) => l.split(' ')[1]),
    ['10.2.0.0', '10.10.0.0', '172.16.0.0', '192.168.1.0'],
  );
  t.deepEqual(
    text.split('\n').filter((l) => l.startsWith('host ')).map((l) => l.split(' ')[1]),
    ['w', 'y', 'z', 'x'],
  );
  for (let i = 0; i < 5; i++) {
    const shuffled = { nets: shuffle(nets), hosts: shuffle(hosts), options: { listenOnly: [{ network: '172.16.0.0', prefix: 12 }] } };
    t.is(renderDhcpConfig(shuffled), text);
  }
});

test('hostile or malformed values throw before anything is rendered, naming every problem', (t) => {
  const hostile: Array<Partial<DhcpHost>> = [
    { name: 'n0; }' },
    { name: 'n0 {' },
    { name: 'n0"' },
    { name: "n0'" },
    { name: 'n0\nhost evil' },
    { name: '' },
    { name: 'x'.repeat(64) },
    { name: '-n0' },
    { mac: '52:54:00:00:00:01; }' },
    { mac: '52:54:00:zz:00:01' },
    { mac: '52:54:00:00:00' },
    { mac: 'ff:ff:ff:ff:ff:ff' },
    { mac: '00:00:00:00:00:00' },
    { ip: '10.10.24.100;' },
    { ip: '10.10.24.1000' },
    { ip: '10.10.24.010' },
    { ip: '10.10.24.0', name: 'netaddr' },
    { ip: '10.10.24.255', name: 'bcast' },
  ];
  for (const bad of hostile) {
    const error = t.throws(() => renderDhcpConfig({ nets: [NET], hosts: [{ ...N0, ...bad }] }), { instanceOf: DhcpModelError }, JSON.stringify(bad));
    t.regex(error?.message ?? '', /^invalid DHCP model: hosts\[0\]/);
  }
  const notStrings = [{ ...N0, name: 7 }, { ...N0, mac: null }, { ...N0, ip: ['10.10.24.100'] }, 'n0', null];
  for (const bad of notStrings) {
    t.throws(() => renderDhcpConfig({ nets: [NET], hosts: [bad as unknown as DhcpHost] }), { instanceOf: DhcpModelError });
  }

  const nets: Array<Partial<DhcpNet>> = [
    { name: 'net}' },
    { network: '10.10.24.1' },
    { prefix: 33 },
    { prefix: 24.5 },
    { netmask: '255.255.0.0' },
    { first: '10.10.25.1' },
    { first: '10.10.24.200' },
    { last: '10.10.24.255' },
    { gateway: '10.10.24.1;' },
    { gateway: '192.168.0.1' },
    { dynamic: 'yes' as unknown as boolean },
  ];
  for (const bad of nets) {
    t.throws(() => renderDhcpConfig({ nets: [{ ...NET, ...bad }], hosts: [] }), { instanceOf: DhcpModelError, message: /^invalid DHCP model: nets\[0\]/ }, JSON.stringify(bad));
  }

  const all = t.throws(() =>
    renderDhcpConfig({ nets: [NET], hosts: [{ ...N0, name: 'a;b' }, N1, { ...N1, name: 'n2', mac: '52:54:00:zz:00:01' }] }),
  );
  t.is(
    all?.message,
    'invalid DHCP model: hosts[0] "a;b": name "a;b": name contains ";" (allowed: letters, digits, ".", "_", "-"); ' +
      'hosts[2] "n2": mac "52:54:00:zz:00:01": expected six hex pairs like 52:54:00:00:00:01',
  );
  t.throws(() => renderDhcpConfig({ nets: [NET], hosts: [], options: { listenOnly: [{ network: '10.0.0.0;', prefix: 8 }] } }), {
    message: /DHCP render options/,
  });
  t.throws(() => renderDhcpConfig({ nets: [NET], hosts: [], options: { reserved: ['10.10.24.1 ;'] } }), { message: /DHCP render options/ });
  t.throws(() => renderDhcpConfig({ nets: [NET], hosts: [], options: { listenOnly: [{ network: '192.168.0.0', prefix: 16, note: 'a\nb' }] } }), {
    message: /unsafe comment/,
  });
});

test('conflicts in the model are refused: duplicate MACs, shared IPs, overlapping networks', (t) => {
  t.throws(() => renderDhcpConfig({ nets: [NET], hosts: [N0, { ...N1, mac: N0.mac.toUpperCase() }] }), {
    message: /hosts\[1\] "n1": mac "52:54:00:00:00:01": is also the MAC of n0/,
  });
  t.throws(() => renderDhcpConfig({ nets: [NET], hosts: [N0, { ...N1, ip: N0.ip }] }), { message: /ip "10\.10\.24\.100": is also the IP of n0/ });
  t.throws(() => renderDhcpConfig({ nets: [NET], hosts: [N0, { ...N0, mac: '52:54:00:00:00:09', ip: N1.ip }] }), {
    message: /differs from 10\.10\.24\.100 given for another MAC of n0/,
  });
  t.throws(() => renderDhcpConfig({ nets: [{ ...NET, gateway: '10.10.24.100' }], hosts: [N0] }), { message: /is the gateway of cluster/ });
  t.throws(
    () => renderDhcpConfig({ nets: [NET, { ...NET, name: 'wide', network: '10.10.0.0', prefix: 16, netmask: '255.255.0.0' }], hosts: [] }),
    { message: /nets: cluster 10\.10\.24\.0\/24 overlaps wide 10\.10\.0\.0\/16/ },
  );
  t.throws(() => renderDhcpConfig({ nets: [NET, { ...NET, network: '10.10.25.0', first: '10.10.25.1', last: '10.10.25.9' }], hosts: [] }), {
    message: /name "cluster" is used twice/,
  });
});

test('MACs are normalized; a node with several MACs gets unique dhcpd names', (t) => {
  const text = renderDhcpConfig({
    nets: [NET],
    hosts: [N0, { name: 'n0', mac: '52-54-00-00-00-AA', ip: N0.ip }, { name: 'n0-525400000001', mac: '52:54:00:00:00:03', ip: '10.10.24.103' }],
  });
  t.deepEqual(text.split('\n').filter((l) => l.startsWith('host ')), [
    'host n0 { hardware ethernet 52:54:00:00:00:01; fixed-address 10.10.24.100; option host-name "n0"; }',
    'host n0-5254000000aa { hardware ethernet 52:54:00:00:00:aa; fixed-address 10.10.24.100; option host-name "n0"; }',
    'host n0-525400000001 { hardware ethernet 52:54:00:00:00:03; fixed-address 10.10.24.103; option host-name "n0-525400000001"; }',
  ]);
  const long = 'a'.repeat(63);
  const labels = hostLabels([
    { name: 'a..b', mac: '52:54:00:00:00:01' },
    { name: 'a--b', mac: '52:54:00:00:00:02' },
    { name: 'n0.', mac: '52:54:00:00:00:03' },
    { name: 'rack1.n0', mac: '52:54:00:00:00:04' },
    { name: long, mac: '52:54:00:00:00:05' },
    { name: long, mac: '52:54:00:00:00:06' },
  ]);
  t.deepEqual(labels, ['a--b', 'a--b-525400000002', 'n0-', 'rack1.n0', long, `${'a'.repeat(51)}-525400000006`]);
});

test('listen-only networks: declared without a pool, once, and never over a cluster network', (t) => {
  const { subnets } = renderDhcpSections({
    nets: [NET],
    hosts: [],
    options: {
      listenOnly: [
        { network: '192.168.50.7', prefix: 24, note: 'eth2 192.168.50.7/24' },
        { network: '192.168.50.0', prefix: 24 },
        { network: '10.10.0.0', prefix: 16, note: 'eth1 10.10.0.1/16' },
      ],
    },
  });
  t.is(
    subnets.text,
    [
      '# cluster network cluster: 10.10.24.0/24, node range 10.10.24.100 - 10.10.24.199',
      'subnet 10.10.24.0 netmask 255.255.255.0 {',
      '}',
      '# eth2 192.168.50.7/24: listen only, not a cluster network (nothing is handed out)',
      'subnet 192.168.50.0 netmask 255.255.255.0 {',
      '}',
    ].join('\n'),
  );
  t.is(renderDhcpConfig({ nets: [], hosts: [] }), '# no cluster network defined\n\n# no cluster network defined\n');
});

test('10,000 hosts render in one pass of string building', (t) => {
  const hosts = manyHosts(10_000);
  const nets: DhcpNet[] = [{ name: 'big', network: '10.1.0.0', prefix: 16, netmask: '255.255.0.0', first: '10.1.0.1', last: '10.1.255.254', dynamic: true }];
  renderDhcpConfig({ nets, hosts: hosts.slice(0, 100) });
  const started = performance.now();
  const text = renderDhcpConfig({ nets, hosts });
  const ms = performance.now() - started;
  t.log(`10,000 hosts rendered in ${ms.toFixed(1)} ms (${(text.length / 1024).toFixed(0)} KiB)`);
  const lines = text.split('\n');
  t.is(lines.filter((l) => l.startsWith('host ')).length, 10_000);
  t.is(lines.find((l) => l.startsWith('  range ')), '  range 10.1.39.17 10.1.255.254;');
  t.is(lines.at(-2), 'host n9999 { hardware ethernet 52:54:00:00:27:0f; fixed-address 10.1.39.16; option host-name "n9999"; }');
});

dhcpdTest('the real dhcpd -t accepts what the renderer produces, odd names included', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-dhcp-render-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const names = ['a..b', 'n0.', '_'.padStart(2, 'x'), '9-', 'x.-y', 'subnet', 'host', 'a'.repeat(63), 'A.b_c-d', '0x1f', '123'];
  const hosts: DhcpHost[] = names.flatMap((name, i) => [
    { name, mac: `52:54:00:00:01:${hex(i)}`, ip: `10.10.24.${100 + i}` },
    { name, mac: `52:54:00:00:02:${hex(i)}`, ip: `10.10.24.${100 + i}` },
  ]);
  const file = path.join(dir, 'dhcpd.conf');
  await writeFile(file, renderDhcpConfig({ nets: [{ ...NET, gateway: '10.10.24.1', dynamic: true }], hosts, options: { listenOnly: [{ network: '192.168.7.0', prefix: 24, note: 'eth9' }] } }));
  const check = await promisify(execFile)(DHCPD, ['-t', '-4', '-cf', file]).then(
    () => 'ok',
    (err: { stderr?: string }) => err.stderr ?? 'failed',
  );
  t.is(check, 'ok');
});

test('network boot: next-server and the boot file by client, from the head address on each network', (t) => {
  const other: DhcpNet = { name: 'far', network: '10.20.0.0', prefix: 16, netmask: '255.255.0.0', first: '10.20.1.0', last: '10.20.1.255' };
  const text = renderDhcpConfig({
    nets: [{ ...NET, gateway: '10.10.24.1' }, other],
    hosts: [N0],
    options: { boot: { headAddresses: ['192.168.1.5', '10.10.24.2'], httpPort: 8080 } },
  });
  t.is(
    text.split('\n\n')[0],
    [
      '# cluster network cluster: 10.10.24.0/24, node range 10.10.24.100 - 10.10.24.199',
      'subnet 10.10.24.0 netmask 255.255.255.0 {',
      '  option routers 10.10.24.1;',
      '  next-server 10.10.24.2;',
      '  if exists user-class and option user-class = "iPXE" {',
      '    filename "http://10.10.24.2:8080/api/v1/boot/ipxe";',
      '  } elsif option arch = 00:07 or option arch = 00:09 {',
      '    filename "ipxe.efi";',
      '  } else {',
      '    filename "undionly.kpxe";',
      '  }',
      '}',
      '# cluster network far: 10.20.0.0/16, node range 10.20.1.0 - 10.20.1.255',
      'subnet 10.20.0.0 netmask 255.255.0.0 {',
      '  # no network boot: the head node has no address on this network',
      '}',
    ].join('\n'),
  );
  // Port 80 is left out of the URL.
  const plain = renderDhcpConfig({ nets: [NET], hosts: [], options: { boot: { headAddresses: ['10.10.24.2'], httpPort: 80 } } });
  t.regex(plain, /^ {4}filename "http:\/\/10\.10\.24\.2\/api\/v1\/boot\/ipxe";$/m);
  // Without boot options (or without cluster networks) nothing about booting is written.
  t.notRegex(renderDhcpConfig({ nets: [NET], hosts: [] }), /next-server|filename/);
  t.notRegex(renderDhcpConfig({ nets: [], hosts: [], options: { boot: { headAddresses: ['10.10.24.2'], httpPort: 80 } } }), /next-server|filename|arch/);
  // A template without the option 93 declaration gets it in the subnets block.
  const sections = renderDhcpSections({ nets: [NET], hosts: [], options: { boot: { headAddresses: ['10.10.24.2'], httpPort: 80 } } }, true);
  t.regex(sections.subnets.text, /^option arch code 93 = unsigned integer 16;$/m);
  t.true(declaresArchOption('x;\noption arch code 93 = unsigned integer 16;\n'));
  t.false(declaresArchOption('# option arch code 93 = unsigned integer 16;\n'));
});

test('network boot options are checked like the model', (t) => {
  for (const boot of [
    { headAddresses: ['10.10.24.2; }'], httpPort: 80 },
    { headAddresses: ['10.10.24.2'], httpPort: 0 },
    { headAddresses: ['10.10.24.2'], httpPort: 70000 },
    { headAddresses: ['10.10.24.2'], httpPort: 80.5 },
  ]) {
    t.throws(() => renderDhcpConfig({ nets: [NET], hosts: [], options: { boot } }), { instanceOf: DhcpModelError, message: /^invalid DHCP render options: options\.boot/ }, JSON.stringify(boot));
  }
});

dhcpdTest('the real dhcpd -t accepts the network boot statements with the built-in template', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-dhcp-boot-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const template = await readFile(new URL('../../../rootfs/etc/cw/templates/dhcpd.conf.template', import.meta.url), 'utf8');
  t.true(declaresArchOption(template), 'the built-in template declares option arch');
  const sections = renderDhcpSections({ nets: [{ ...NET, dynamic: true }], hosts: [N0, N1], options: { boot: { headAddresses: ['10.10.24.2'], httpPort: 8080 } } });
  const file = path.join(dir, 'dhcpd.conf');
  await writeFile(file, template.replace('{{subnets}}', sections.subnets.text).replace('{{hosts}}', sections.hosts.text));
  const check = await promisify(execFile)(DHCPD, ['-t', '-4', '-cf', file]).then(
    () => 'ok',
    (err: { stderr?: string }) => err.stderr ?? 'failed',
  );
  t.is(check, 'ok');
});

function shuffle<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

test('a dynamic node range dhcpd could not load quickly is refused', (t) => {
  // Found by fuzzing: dhcpd keeps a lease for every pool address; a /8 pool took it seconds and GBs per start.
  const big: DhcpNet = { name: 'big', network: '10.0.0.0', prefix: 8, netmask: '255.0.0.0', first: '10.0.0.10', last: '10.255.255.250', dynamic: true };
  t.throws(() => renderDhcpConfig({ nets: [big], hosts: [] }), { instanceOf: DhcpModelError, message: /nets\[0\] "big": last "10\.255\.255\.250": the dynamic node range holds 16777201 addresses \(limit 1048576\)/ });
  // The same range without a pool, and a pool at the limit, are fine.
  t.notThrows(() => renderDhcpConfig({ nets: [{ ...big, dynamic: false }], hosts: [] }));
  t.notThrows(() => renderDhcpConfig({ nets: [{ ...big, first: '10.0.0.1', last: '10.16.0.0' }], hosts: [] }));
});
