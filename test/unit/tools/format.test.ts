import test from 'ava';
import { formatBytes } from '../../../src/lib/bytes.js';
import { humanAge, humanize, renderJson, renderListing, safeText } from '../../../src/tools/common/format.js';
import { describeResult } from '../../../src/tools/cluster-conf/cluster-conf.js';

test('plain listing: the title, then names indented by two', (t) => {
  t.is(renderListing('Nodes', [{ label: 'n0' }, { label: 'n1' }], 'plain'), 'Nodes\n  n0\n  n1\n');
});

test('plain long listing looks like the ClusterWare tools: sorted fields, lists item by item, [] when empty', (t) => {
  const text = renderListing(
    'Repos',
    [{ label: 'CentOS_base', fields: { urls: ['http://mirror.centos.org/centos/$releasever/os/$basearch/'], name: 'CentOS_base', keys: [] } }],
    'plain',
  );
  t.is(
    text,
    [
      'Repos',
      '  CentOS_base',
      '    keys: []',
      '    name: CentOS_base',
      '    urls',
      '      http://mirror.centos.org/centos/$releasever/os/$basearch/',
      '',
    ].join('\n'),
  );
});

test('nested objects indent further; null shows as none; empty objects as {}', (t) => {
  const text = renderListing('Nodes', [{ label: 'n0', fields: { attributes: { _boot_config: 'DefaultBoot' }, power_uri: null, status: {} } }], 'plain');
  t.is(text, 'Nodes\n  n0\n    attributes\n      _boot_config: DefaultBoot\n    power_uri: none\n    status: {}\n');
});

test('JSON: names as an array, or name -> fields; --pretty indents', (t) => {
  t.is(renderListing('Nodes', [{ label: 'n0' }], 'json'), '["n0"]\n');
  t.is(renderListing('Nodes', [{ label: 'n0', fields: { ip: '10.0.0.1' } }], 'json'), '{"n0":{"ip":"10.0.0.1"}}\n');
  t.is(renderJson({ a: 1 }, 'pretty'), '{\n  "a": 1\n}\n');
});

test('control characters from the server are escaped in plain output', (t) => {
  t.is(safeText('a\x1b[2Jb'), 'a\\x1b[2Jb');
  t.is(safeText('x\u202ey'), 'x\\u{202e}y');
  const text = renderListing('Images', [{ label: 'i', fields: { description: 'line1\nline2\x07' } }], 'plain');
  t.is(text, 'Images\n  i\n    description: line1\n      line2\\x07\n');
});

test('--human: sizes and times', (t) => {
  t.is(formatBytes(512), '512 B');
  t.is(formatBytes(1536), '1.5 KiB');
  t.is(formatBytes(3 * 1024 ** 3), '3.0 GiB');
  t.is(humanAge(12_000), '12 s ago');
  t.is(humanAge(5 * 60_000), '5 min ago');
  t.is(humanAge(-120 * 60_000), 'in 2 h');
  const now = Date.parse('2025-01-01T12:00:10Z');
  t.deepEqual(humanize({ size: 2048, last_seen: '2025-01-01T12:00:00Z', name: 'x' }, now), {
    size: '2.0 KiB',
    last_seen: '2025-01-01 12:00:00 UTC (10 s ago)',
    name: 'x',
  });
});

test('cluster-conf load result: nets, created nodes, dry-run note', (t) => {
  const result = {
    nets: [{ name: 'net0', first: '192.168.122.100', last: '192.168.122.254', network: '192.168.122.0', prefix: 24 }],
    created: [
      { name: 'n0', mac: '52:54:00:00:00:01', ip: '192.168.122.100' },
      { name: 'n1', mac: '52:54:00:00:00:02', ip: '192.168.122.101' },
    ],
    dryRun: true,
  };
  t.is(
    describeResult(result, true),
    [
      'Network net0 192.168.122.0/24: 192.168.122.100 - 192.168.122.254',
      'Would create n0 52:54:00:00:00:01 192.168.122.100',
      'Would create n1 52:54:00:00:00:02 192.168.122.101',
      'Dry run: nothing was changed',
      '',
    ].join('\n'),
  );
  t.is(
    describeResult({ nets: [], created: [], updated: [{ name: 'n1', mac: '52:54:00:00:00:09', ip: '10.0.0.2' }], unchanged: 1 }, false),
    'Updated n1 52:54:00:00:00:09 10.0.0.2\n1 node is already as the file says\n',
  );
  t.is(describeResult({ nets: [], created: [] }, false), 'No nodes in the file\n');
});
