import test from 'ava';
import { renderDns, reverseName, reverseZones } from '../../../src/appliance/dns/render.js';
import { dnsName } from '../../../src/appliance/config/template.js';
import { isValidDomain } from '../../../src/lib/validate.js';

test('the hosts file has one line per node, full name first (the PTR answer), ordered by address', (t) => {
  const { hosts, skipped } = renderDns({
    domain: 'cluster.internal',
    nets: [],
    hosts: [
      { name: 'n10', ip: '10.0.0.110' },
      { name: 'n2', ip: '10.0.0.9' },
      { name: 'n0', ip: '10.0.0.100' },
    ],
  });
  t.deepEqual(skipped, []);
  t.deepEqual(hosts.split('\n').slice(1), ['10.0.0.9 n2.cluster.internal n2', '10.0.0.100 n0.cluster.internal n0', '10.0.0.110 n10.cluster.internal n10', '']);
  t.regex(hosts.split('\n')[0] as string, /^# 3 nodes of cluster\.internal/);
});

test('the zones file keeps the domain and the reverse zones of the networks local', (t) => {
  const { zones } = renderDns({
    domain: 'hpc.example.org',
    nets: [
      { name: 'a', network: '10.10.24.0', prefix: 24 },
      { name: 'b', network: '172.16.0.0', prefix: 15 },
      { name: 'c', network: '10.10.24.128', prefix: 25 },
    ],
    hosts: [],
  });
  t.deepEqual(zones.split('\n').slice(1), [
    'server=/hpc.example.org/',
    'server=/24.10.10.in-addr.arpa/',
    'server=/16.172.in-addr.arpa/',
    'server=/17.172.in-addr.arpa/',
    '',
  ]);
});

test('reverse names and zones', (t) => {
  t.is(reverseName('10.10.24.100'), '100.24.10.10.in-addr.arpa');
  t.deepEqual(reverseZones('10.0.0.0', 8), ['10.in-addr.arpa']);
  t.deepEqual(reverseZones('10.10.0.0', 23), ['0.10.10.in-addr.arpa', '1.10.10.in-addr.arpa']);
  t.deepEqual(reverseZones('10.10.24.5', 32), ['24.10.10.in-addr.arpa']);
  t.deepEqual(reverseZones('10.10.24.128', 25), ['24.10.10.in-addr.arpa']);
  t.is(reverseZones('10.0.0.0', 9).length, 128);
  t.deepEqual(reverseZones('192.168.4.0', 22), ['4.168.192.in-addr.arpa', '5.168.192.in-addr.arpa', '6.168.192.in-addr.arpa', '7.168.192.in-addr.arpa']);
  t.throws(() => reverseName('10.0.0.256'));
  t.throws(() => reverseZones('10.0.0.0', 0));
});

test('a bad domain is refused; a node that cannot be named, or a second one on an address, is left out and said', (t) => {
  t.throws(() => renderDns({ domain: 'bad domain', nets: [], hosts: [] }), { message: /invalid domain "bad domain"/ });
  t.throws(() => renderDns({ domain: 'x.org\nserver=/evil/1.2.3.4', nets: [], hosts: [] }));
  const { hosts, skipped } = renderDns({
    domain: 'cluster.internal',
    nets: [],
    hosts: [
      { name: 'n0', ip: '10.0.0.1' },
      { name: 'n0 evil', ip: '10.0.0.2' },
      { name: 'a.b', ip: '10.0.0.3' },
      { name: 'n4', ip: '10.0.0.1' },
      { name: 'n5', ip: '10.0.0.999' },
    ],
  });
  t.deepEqual(hosts.split('\n').slice(1), ['10.0.0.1 n0.cluster.internal n0', '']);
  t.deepEqual(skipped, [
    'node "n0 evil": not a DNS name',
    'node "a.b": not a DNS name',
    'node n5: address "10.0.0.999" is not IPv4',
    "node n4: address 10.0.0.1 is also n0's",
  ]);
});

test('domain names: lowercase labels, no empty, edge-hyphen or numeric top label, within DNS limits', (t) => {
  for (const ok of ['cluster.internal', 'hpc.example.org', 'a', 'x-1.y2', '24.10.10.in-addr.arpa', `${'a'.repeat(63)}.org`]) t.is(isValidDomain(ok), true, ok);
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['Cluster.local', /lowercase/],
    ['a..b', /empty label/],
    ['.a', /empty label/],
    ['a.', /empty label/],
    ['-a.org', /must not start or end/],
    ['a-.org', /must not start or end/],
    ['a_b.org', /"_"/],
    ['a b', /space/],
    ['x.123', /all digits/],
    [`${'a'.repeat(64)}.org`, /limit 63/],
    [`${'a.'.repeat(127)}ab`, /limit 253/],
  ];
  for (const [value, reason] of bad) {
    const check = isValidDomain(value);
    t.true(typeof check === 'string' && reason.test(check), `${JSON.stringify(value)}: ${String(check)}`);
  }
  t.throws(() => dnsName('a;b'), { message: /unsafe DNS name/ });
});
