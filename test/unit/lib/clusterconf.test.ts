import test from 'ava';
import {
  ClusterConfError,
  parseClusterConf,
  renderClusterConf,
  type ClusterConf,
} from '../../../src/lib/clusterconf.js';
import { intToIp, ipToInt } from '../../../src/lib/ipv4.js';

/** The problems a refused file reports (fails the test when the file is accepted). */
function problems(t: { fail: (m: string) => void }, text: string | Uint8Array, fileName?: string): string[] {
  try {
    parseClusterConf(text, fileName ? { fileName } : {});
  } catch (err) {
    if (err instanceof ClusterConfError) return err.problems;
    throw err;
  }
  t.fail('the file was accepted');
  return [];
}

const mac = (i: number) => `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

test('the seed example gives n0 and n1 at .100 and .101', (t) => {
  const conf = parseClusterConf('iprange 192.168.122.100/24\nnode 52:54:00:00:00:01\nnode 52:54:00:00:00:02\n');
  t.deepEqual(conf, {
    ranges: [{ first: '192.168.122.100', prefix: 24, last: '192.168.122.254', network: '192.168.122.0', netmask: '255.255.255.0' }],
    nodes: [
      { index: 0, mac: '52:54:00:00:00:01', ip: '192.168.122.100' },
      { index: 1, mac: '52:54:00:00:00:02', ip: '192.168.122.101' },
    ],
  });
});

test('comments, blank lines, CRLF, tabs, a BOM, upper-case MACs and keywords are fine', (t) => {
  const text = '\uFEFF# cluster\r\n\r\n  IPRANGE\t10.10.24.100/24 10.10.24.199   # first/prefix last\r\n' +
    'nodes 2 # placeholders\r\nnode 52-54-00-AA-BB-CC\r\n   # indented comment\r\n';
  const conf = parseClusterConf(text);
  t.is(conf.ranges[0]?.last, '10.10.24.199');
  t.deepEqual(conf.nodes, [
    { index: 0, mac: null, ip: '10.10.24.100' },
    { index: 1, mac: null, ip: '10.10.24.101' },
    { index: 2, mac: '52:54:00:aa:bb:cc', ip: '10.10.24.102' },
  ]);
});

test('indexes can start elsewhere', (t) => {
  const conf = parseClusterConf('iprange 10.0.0.10/24\nnodes 2\n', { startIndex: 10 });
  t.deepEqual(conf.nodes.map((n) => n.index), [10, 11]);
});

test('nodes take addresses from the iprange above them and spill into the next one', (t) => {
  const conf = parseClusterConf(
    'iprange 10.0.0.10/24 10.0.0.11\nnodes 3\niprange 10.0.1.10/24 10.0.1.19\nnode 52:54:00:00:00:01\niprange 10.0.2.1/24\nnodes 1\n',
  );
  t.deepEqual(conf.nodes.map((n) => `${n.index}:${n.ip}`), ['0:10.0.0.10', '1:10.0.0.11', '2:10.0.1.10', '3:10.0.1.11', '4:10.0.2.1']);
  t.is(conf.ranges.length, 3);
  t.is(conf.ranges[1]?.network, '10.0.1.0');
});

test('a later iprange starts its nodes at its own first address', (t) => {
  const conf = parseClusterConf('iprange 10.0.0.10/24\nnodes 1\niprange 10.1.0.10/16\nnodes 1\n');
  t.deepEqual(conf.nodes.map((n) => n.ip), ['10.0.0.10', '10.1.0.10']);
  t.is(conf.ranges[1]?.netmask, '255.255.0.0');
});

test('an empty file or one with only comments describes nothing', (t) => {
  t.deepEqual(parseClusterConf(''), { ranges: [], nodes: [] });
  t.deepEqual(parseClusterConf('# nothing\n\n'), { ranges: [], nodes: [] });
});

test('a bad MAC is reported with its line number', (t) => {
  t.deepEqual(problems(t, 'iprange 192.168.122.100/24\nnode 52:54:00:00:00:01\nnode 52:54:00:zz:00:01\n'), [
    'cluster.conf:3: invalid MAC "52:54:00:zz:00:01": expected six hex pairs like 52:54:00:00:00:01',
  ]);
  const err = t.throws(() => parseClusterConf('iprange 192.168.122.100/24\nnode 52:54:00:zz:00:01\n', { fileName: 'my.conf' }));
  t.true(err?.message.startsWith('my.conf:2: invalid MAC "52:54:00:zz:00:01"'));
});

test('every problem is collected, in line order, before refusing', (t) => {
  const text = [
    'node 52:54:00:00:00:01', // 1: before any iprange
    'iprange 10.0.0.0/24', // 2: network address
    'iprange 10.0.1.10/24 10.0.2.5', // 3: last outside subnet
    'iprange 10.0.3.10/24 10.0.3.5', // 4: last before first
    'iprange 10.0.4.255/24', // 5: broadcast
    'iprange 10.0.5.10/24 10.0.5.255', // 6: last is broadcast
    'iprange 10.0.6.10', // 7: no prefix
    'iprange 10.0.7.10/31', // 8: prefix range
    'iprange 10.0.8.300/24', // 9: bad IP
    'iprange 10.0.9.10/24', // fine
    'node 52:54:00:00:00:02',
    'node 52:54:00:00:00:02', // 12: duplicate
    'node 52:54:00:00:00:03 extra', // 13: extra
    'node', // 14: missing MAC
    'nodes ten', // 15: bad count
    'nodes 0', // 16: zero
    'gateway 10.0.9.1', // 17: unknown keyword
    'node ff:ff:ff:ff:ff:ff', // 18: broadcast MAC
    `# ${'x'.repeat(1000)}`, // 19: too long even as a comment
    'iprange 10.0.9.100/24', // 20: overlaps line 10
    'iprange 127.0.0.10/8', // 21: loopback
    'iprange 224.0.0.10/24', // 22: multicast
    'iprange 10.0.10.1/24 10.0.10.9 10.0.10.20', // 23: too many words
    'iprange', // 24
  ].join('\n');
  t.deepEqual(problems(t, text), [
    'cluster.conf:1: node before any iprange (put an "iprange FIRST/PREFIX [LAST]" line above it)',
    'cluster.conf:2: iprange starts at 10.0.0.0, the network address of 10.0.0.0/24',
    'cluster.conf:3: last address 10.0.2.5 is outside 10.0.1.0/24',
    'cluster.conf:4: last address 10.0.3.5 comes before the first address 10.0.3.10',
    'cluster.conf:5: iprange starts at 10.0.4.255, the broadcast address of 10.0.4.0/24',
    'cluster.conf:6: last address 10.0.5.255 is the broadcast address of 10.0.5.0/24',
    'cluster.conf:7: iprange "10.0.6.10" needs a prefix length, as in 10.0.0.100/24',
    'cluster.conf:8: prefix /31 is out of range (8 to 30)',
    'cluster.conf:9: invalid IP address "10.0.8.300": part 300 is larger than 255',
    'cluster.conf:12: duplicate MAC 52:54:00:00:00:02 (first on line 11)',
    'cluster.conf:13: node takes one MAC address, got extra "extra"',
    'cluster.conf:14: node needs a MAC address (use "nodes N" for nodes without one)',
    'cluster.conf:15: nodes needs one count, as in "nodes 10", not "ten"',
    'cluster.conf:16: nodes 0 describes no nodes',
    'cluster.conf:17: unknown keyword "gateway" (expected iprange, nodes or node)',
    'cluster.conf:18: invalid MAC "ff:ff:ff:ff:ff:ff": multicast or broadcast address, not a NIC',
    'cluster.conf:19: line is 1002 characters long (limit 1000)',
    'cluster.conf:20: iprange 10.0.9.100-10.0.9.254 overlaps the iprange on line 10',
    'cluster.conf:21: iprange 127.0.0.10 is a loopback address',
    'cluster.conf:22: iprange 224.0.0.10 is a multicast address',
    'cluster.conf:23: iprange needs FIRST/PREFIX and an optional LAST address, as in "iprange 10.0.0.100/24 10.0.0.199"',
    'cluster.conf:24: iprange needs FIRST/PREFIX and an optional LAST address, as in "iprange 10.0.0.100/24 10.0.0.199"',
  ]);
});

test('the one-line message quotes the first problems and counts the rest', (t) => {
  const text = `iprange 10.0.0.1/24\n${Array.from({ length: 8 }, (_, i) => `node bad${i}`).join('\n')}\n`;
  const err = t.throws(() => parseClusterConf(text), { instanceOf: ClusterConfError });
  t.false(err?.message.includes('\n'));
  t.regex(err?.message ?? '', /^cluster.conf:2: invalid MAC "bad0": .*; cluster.conf:6: invalid MAC "bad4": .* \(and 3 more problems\)$/);
  t.is((err as ClusterConfError).problems.length, 8);
});

test('more nodes than the range holds', (t) => {
  t.deepEqual(problems(t, 'iprange 10.0.0.100/24 10.0.0.109\nnodes 11\n'), [
    'cluster.conf:1: iprange 10.0.0.100/24 10.0.0.109 holds 10 addresses, 11 nodes need addresses',
  ]);
  t.is(parseClusterConf('iprange 10.0.0.100/24 10.0.0.109\nnodes 10\n').nodes.at(-1)?.ip, '10.0.0.109');
  t.deepEqual(problems(t, 'iprange 10.0.0.1/24 10.0.0.4\nnodes 3\niprange 10.0.1.1/24 10.0.1.2\nnodes 1\nnodes 3\n'), [
    'cluster.conf:3: iprange 10.0.1.1/24 10.0.1.2 holds 2 addresses, 4 nodes need addresses',
  ]);
  // The first range's overflow already took one address of the second.
  t.deepEqual(problems(t, 'iprange 10.0.0.1/24 10.0.0.2\nnodes 3\niprange 10.0.1.1/24 10.0.1.2\nnodes 2\n'), [
    'cluster.conf:3: iprange 10.0.1.1/24 10.0.1.2 holds 1 address, 2 nodes need addresses',
  ]);
  t.deepEqual(problems(t, 'iprange 10.0.0.1/30\nnodes 3\n'), ['cluster.conf:1: iprange 10.0.0.1/30 10.0.0.2 holds 2 addresses, 3 nodes need addresses']);
  t.deepEqual(problems(t, 'iprange 10.0.0.1/24 10.0.0.2\nnodes 5\niprange 10.0.1.1/24 10.0.1.2\n'), [
    'cluster.conf:1: iprange 10.0.0.1/24 10.0.0.2 and the ipranges after it hold 4 addresses, 5 nodes need addresses',
  ]);
});

test('more than 100,000 nodes in one file are refused', (t) => {
  t.deepEqual(problems(t, 'iprange 10.0.0.1/8\nnodes 60000\nnodes 60000\nnode 52:54:00:00:00:01\n'), [
    'cluster.conf:3: more than 100000 nodes in one file',
  ]);
  t.deepEqual(problems(t, 'iprange 10.0.0.1/8\nnodes 999999999\n'), ['cluster.conf:2: more than 100000 nodes in one file']);
});

test('node lines before any iprange are reported once', (t) => {
  t.deepEqual(problems(t, 'nodes 2\nnode 52:54:00:00:00:01\niprange 10.0.0.1/24\nnode 52:54:00:00:00:02\n'), [
    'cluster.conf:1: nodes before any iprange (put an "iprange FIRST/PREFIX [LAST]" line above it)',
  ]);
});

test('binary files are refused without parsing lines', (t) => {
  t.deepEqual(problems(t, Buffer.from([0x69, 0x70, 0x00, 0x01, 0x02])), ['cluster.conf: binary content (NUL at byte 2), not a text file']);
  t.deepEqual(problems(t, Buffer.from([0x6e, 0x6f, 0x64, 0x65, 0x20, 0xff, 0xfe, 0x0a])), ['cluster.conf: binary content (not UTF-8 text)']);
  t.deepEqual(problems(t, 'node\0'), ['cluster.conf: binary content (NUL at character 4), not a text file']);
  const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(64, 0)]);
  t.is(problems(t, elf).length, 1);
});

test('files over 4 MiB are refused', (t) => {
  const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x23); // '#' * (4 MiB + 1)
  t.deepEqual(problems(t, big), ['cluster.conf: file is 4194305 bytes, larger than the 4 MiB limit']);
  t.deepEqual(problems(t, big.toString('latin1')), ['cluster.conf: file is 4194305 bytes, larger than the 4 MiB limit']);
});

test('a 10,000-node file parses with indexes and addresses in order', (t) => {
  const lines = ['iprange 10.1.0.1/16'];
  for (let i = 0; i < 10_000; i++) lines.push(`node ${mac(i)}`);
  const conf = parseClusterConf(`${lines.join('\n')}\n`);
  t.is(conf.nodes.length, 10_000);
  t.is(conf.nodes[9_999]?.ip, intToIp(ipToInt('10.1.0.1') + 9_999));
  t.is(conf.nodes[9_999]?.index, 9_999);
});

test('10,000 bad lines: every problem kept up to a cap, message stays one line', (t) => {
  const text = `iprange 10.1.0.1/16\n${'node zz\n'.repeat(10_000)}`;
  const err = t.throws(() => parseClusterConf(text), { instanceOf: ClusterConfError }) as ClusterConfError;
  t.is(err.problems.length, 1001);
  t.is(err.problems.at(-1), '... and 9000 more problems');
  t.regex(err.message, /\(and 9995 more problems\)$/);
});

test('render writes the seed file back and parsing it gives the same model', (t) => {
  const text = 'iprange 192.168.122.100/24\nnode 52:54:00:00:00:01\nnode 52:54:00:00:00:02\n';
  const model = parseClusterConf(text);
  const rendered = renderClusterConf(model);
  t.is(rendered, 'iprange 192.168.122.100/24 192.168.122.254\nnode 52:54:00:00:00:01\nnode 52:54:00:00:00:02\n');
  t.deepEqual(parseClusterConf(rendered), model);
});

test('render round-trips placeholders, spills, empty ranges and a start index', (t) => {
  const text = [
    'iprange 10.0.0.10/24 10.0.0.13',
    'nodes 2',
    'node 52:54:00:00:00:01',
    'nodes 3', // two of these spill into the next range
    'iprange 10.0.1.10/24 10.0.1.30',
    'node 52:54:00:00:00:02',
    'iprange 172.16.0.5/12',
    'iprange 10.0.2.1/24',
    'nodes 2',
  ].join('\n');
  const model = parseClusterConf(text, { startIndex: 100 });
  const rendered = renderClusterConf(model, { header: 'saved by cw-cluster-conf' });
  t.is(
    rendered,
    '# saved by cw-cluster-conf\niprange 10.0.0.10/24 10.0.0.13\nnodes 2\nnode 52:54:00:00:00:01\nnodes 1\n' +
      'iprange 10.0.1.10/24 10.0.1.30\nnodes 2\nnode 52:54:00:00:00:02\niprange 172.16.0.5/12 172.31.255.254\n' +
      'iprange 10.0.2.1/24 10.0.2.254\nnodes 2\n',
  );
  t.deepEqual(parseClusterConf(rendered, { startIndex: 100 }), model);
});

test('render round-trips 10,000 nodes', (t) => {
  const lines = ['iprange 10.1.0.1/16'];
  for (let i = 0; i < 10_000; i++) lines.push(i % 7 === 0 ? 'nodes 1' : `node ${mac(i)}`);
  const model = parseClusterConf(lines.join('\n'));
  t.deepEqual(parseClusterConf(renderClusterConf(model)), model);
});

test('an empty model renders as an empty file', (t) => {
  t.is(renderClusterConf({ ranges: [], nodes: [] }), '');
  t.deepEqual(parseClusterConf(renderClusterConf({ ranges: [], nodes: [] })), { ranges: [], nodes: [] });
});

test('render refuses models the format cannot express', (t) => {
  const base: ClusterConf = parseClusterConf('iprange 10.0.0.10/24\nnodes 3\n');
  const gapIndex: ClusterConf = { ...base, nodes: base.nodes.map((n, i) => (i === 2 ? { ...n, index: 5 } : n)) };
  t.throws(() => renderClusterConf(gapIndex), { message: /cannot write n5 \(10.0.0.12\) as cluster.conf: .*expected n2 at 10.0.0.12/ });
  const gapIp: ClusterConf = { ...base, nodes: base.nodes.map((n, i) => (i === 1 ? { ...n, ip: '10.0.0.50' } : n)) };
  t.throws(() => renderClusterConf(gapIp), { message: /cannot write n1 \(10.0.0.50\)/ });
  const outside: ClusterConf = { ...base, nodes: [{ index: 0, mac: null, ip: '10.9.9.9' }] };
  t.throws(() => renderClusterConf(outside), { message: 'cannot write n0: its address 10.9.9.9 is in no iprange' });
  const badMac: ClusterConf = { ...base, nodes: [{ index: 0, mac: '52:54:00:00:00:01\niprange 1.2.3.4/8', ip: '10.0.0.10' }] };
  t.throws(() => renderClusterConf(badMac), { message: /invalid MAC/ });
});
