import test from 'ava';
import { readDhcpModel } from '../../../src/appliance/dhcp/model-file.js';
import { dhcpModelOf, dhcpSync } from '../../../src/appliance/api/dhcp-sync.js';
import { tempStore } from './helpers.js';

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('the DHCP model has every net and one host per MAC of every node (a node given no IP takes a free one)', async (t) => {
  const store = tempStore();
  t.teardown(() => store.close());
  await store.create('nets', { name: 'cluster', first: '10.0.0.100', prefix: 24, last: '10.0.0.199', gateway: '10.0.0.1', dynamic: true });
  await store.createNodes([
    { mac: '52:54:00:00:00:01', macs: ['52:54:00:00:01:01'], ip: '10.0.0.100' },
    { mac: '52:54:00:00:00:02' },
    { ip: '10.0.0.102' },
  ]);
  t.deepEqual(await dhcpModelOf(store, 7), {
    version: 7,
    nets: [
      {
        name: 'cluster',
        network: '10.0.0.0',
        prefix: 24,
        netmask: '255.255.255.0',
        first: '10.0.0.100',
        last: '10.0.0.199',
        gateway: '10.0.0.1',
        dynamic: true,
      },
    ],
    hosts: [
      { name: 'n0', mac: '52:54:00:00:00:01', ip: '10.0.0.100' },
      { name: 'n0', mac: '52:54:00:00:01:01', ip: '10.0.0.100' },
      { name: 'n1', mac: '52:54:00:00:00:02', ip: '10.0.0.101' },
    ],
    domain: 'cluster.internal',
  });
});

test('each change writes the model and reloads dhcpd; a burst coalesces to the latest state', async (t) => {
  const store = tempStore();
  t.teardown(() => store.close());
  let reloads = 0;
  let release: (() => void) | undefined;
  const sync = dhcpSync({
    store,
    paths: store.paths,
    log: (line) => t.log(line),
    reload: () =>
      new Promise<void>((resolve) => {
        reloads++;
        release = resolve;
      }),
  });
  const off = store.onCommit((c) => c.dhcp && sync());
  t.teardown(off);
  await store.createNode({ mac: '52:54:00:00:00:01', ip: '10.0.0.1' });
  await until(() => reloads === 1);
  t.deepEqual((await readDhcpModel(store.paths))?.hosts, [{ name: 'n0', mac: '52:54:00:00:00:01', ip: '10.0.0.1' }]);
  // While that reload is in flight, 20 more changes queue one more round.
  for (let i = 2; i <= 21; i++) await store.createNode({ mac: `52:54:00:00:00:${i.toString(16).padStart(2, '0')}`, ip: `10.0.0.${i}` });
  release?.();
  await until(() => reloads === 2);
  release?.();
  await new Promise((r) => setTimeout(r, 50));
  t.is(reloads, 2);
  const model = await readDhcpModel(store.paths);
  t.is(model?.hosts.length, 21);
  t.true((model?.version ?? 0) > 0);
});
