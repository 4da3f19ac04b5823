import test from 'ava';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DhcpModelError, validateDhcpModel, type DhcpModel } from '../../../src/appliance/dhcp/model.js';
import { dhcpModelPath, readDhcpModel, writeDhcpModel } from '../../../src/appliance/dhcp/model-file.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';

const MODEL: DhcpModel = {
  version: 12,
  nets: [{ name: 'cluster', network: '192.168.122.0', prefix: 24, netmask: '255.255.255.0', first: '192.168.122.100', last: '192.168.122.199', gateway: '192.168.122.1' }],
  hosts: [
    { name: 'n1', mac: '52-54-00-00-00-02', ip: '192.168.122.101' },
    { name: 'n0', mac: '52:54:00:00:00:01', ip: '192.168.122.100' },
  ],
};

async function storage(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'cw-dhcp-model-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

test('written by the API, read by dhcpd: STORAGE/etc/generated/dhcp-model.json, 0644, normalized', async (t) => {
  const paths = storagePaths(await storage(t));
  t.is(dhcpModelPath(paths), path.join(paths.root, 'etc', 'generated', 'dhcp-model.json'));
  t.is(await readDhcpModel(paths), null, 'no model yet');
  await writeDhcpModel(paths, MODEL);
  t.is((await stat(dhcpModelPath(paths))).mode & 0o777, 0o644);
  t.deepEqual(await readDhcpModel(paths), {
    version: 12,
    nets: [{ ...MODEL.nets[0]!, dynamic: false }],
    hosts: [
      { name: 'n0', mac: '52:54:00:00:00:01', ip: '192.168.122.100' },
      { name: 'n1', mac: '52:54:00:00:00:02', ip: '192.168.122.101' },
    ],
  });
  const text = await readFile(dhcpModelPath(paths), 'utf8');
  t.is(text.split('\n').filter((l) => l.startsWith('{"name":"n')).length, 2, 'one host per line');
  t.deepEqual(await readdir(paths.generatedDir), ['dhcp-model.json'], 'no temporary file left behind');
});

test('a bad model is refused before anything is written', async (t) => {
  const paths = storagePaths(await storage(t));
  await writeDhcpModel(paths, MODEL);
  const before = await readFile(dhcpModelPath(paths), 'utf8');
  const hostile = { ...MODEL, hosts: [...MODEL.hosts, { name: 'n2', mac: '52:54:00:00:00:03', ip: '192.168.122.102"; }' }] };
  const error = await t.throwsAsync(writeDhcpModel(paths, hostile), { instanceOf: DhcpModelError });
  t.regex(error?.message ?? '', /hosts\[2\] "n2": ip .*expected a dotted IPv4 address/);
  t.is(await readFile(dhcpModelPath(paths), 'utf8'), before);
  await t.throwsAsync(writeDhcpModel(paths, { ...MODEL, version: -1 }), { message: /version -1: expected a non-negative integer/ });
  await t.throwsAsync(writeDhcpModel(paths, { ...MODEL, version: 1.5 }), { message: /version 1\.5/ });
});

test('a file that is not a valid model is reported with its path and every problem', async (t) => {
  const paths = storagePaths(await storage(t));
  await mkdir(paths.generatedDir, { recursive: true });
  const file = dhcpModelPath(paths);
  await writeFile(file, '{"version": 1, "nets": [');
  await t.throwsAsync(readDhcpModel(paths), { instanceOf: DhcpModelError, message: new RegExp(`^invalid ${file}: not JSON`) });
  await writeFile(file, JSON.stringify({ version: 1, nets: {}, hosts: [{ name: 'n0', mac: 'x', ip: '1.2.3.4' }] }));
  const error = await t.throwsAsync(readDhcpModel(paths), { instanceOf: DhcpModelError });
  t.deepEqual(error?.problems, ['nets: expected an array', 'hosts[0] "n0": mac "x": expected six hex pairs like 52:54:00:00:00:01']);
  await writeFile(file, '[]');
  await t.throwsAsync(readDhcpModel(paths), { message: /expected an object \{version, nets, hosts\}/ });
});

test('unknown fields are dropped, so the API may add its own without breaking dhcpd', (t) => {
  const model = validateDhcpModel({ ...MODEL, extra: 1, hosts: [{ ...MODEL.hosts[1], uid: 'abc', index: 0 }] });
  t.deepEqual(model.hosts, [{ name: 'n0', mac: '52:54:00:00:00:01', ip: '192.168.122.100' }]);
  t.false('extra' in model);
});

test('many problems: the message lists ten and counts the rest', (t) => {
  const hosts = Array.from({ length: 15 }, (_, i) => ({ name: `n${i};`, mac: `52:54:00:00:00:${String(10 + i)}`, ip: `192.168.122.${100 + i}` }));
  const error = t.throws(() => validateDhcpModel({ ...MODEL, hosts }), { instanceOf: DhcpModelError });
  t.is(error?.problems.length, 15);
  t.regex(error?.message ?? '', /; and 5 more$/);
});
