// Where a head's cluster database is: the environment's choice at the first start, remembered in the
// storage directory, and never silently another one at a later start.
import test from 'ava';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterDbFile, rememberClusterDb, resolveClusterDb, storeOptionsOf } from '../../../src/appliance/cluster-db.js';
import { renderHeads } from '../../../src/tools/clusterctl/heads.js';

async function storage(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cw-cluster-db-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('SQLite without any setting; a member or an outside etcd from the environment, remembered 0600', async (t) => {
  const dir = await storage(t);
  t.deepEqual(resolveClusterDb({}, dir), { kind: 'sqlite' });
  const member = resolveClusterDb({ CW_ETCD_MEMBER: 'head-a', CW_ETCD_ADDRESS: '10.0.0.1' }, dir);
  t.deepEqual(member, { kind: 'member', member: { name: 'head-a', address: '10.0.0.1' } });
  await rememberClusterDb(dir, member);
  t.is((await stat(clusterDbFile(dir))).mode & 0o777, 0o600);
  t.deepEqual(JSON.parse(await readFile(clusterDbFile(dir), 'utf8')), { kind: 'member', name: 'head-a', address: '10.0.0.1' });
  // A later start without the environment stays a member.
  t.deepEqual(resolveClusterDb({}, dir), member);
  t.deepEqual(resolveClusterDb({ CW_ETCD_MEMBER: 'head-a', CW_ETCD_ADDRESS: '10.0.0.9' }, dir), { kind: 'member', member: { name: 'head-a', address: '10.0.0.9' } });

  const other = await storage(t);
  const external = resolveClusterDb({ CW_ETCD_ENDPOINTS: 'https://10.0.0.5:2379, https://10.0.0.6:2379' }, other);
  t.deepEqual(external, { kind: 'external', endpoints: ['https://10.0.0.5:2379', 'https://10.0.0.6:2379'] });
  t.deepEqual(storeOptionsOf(external, join(other, 'secrets')), {
    backend: 'etcd',
    etcd: { endpoints: ['https://10.0.0.5:2379', 'https://10.0.0.6:2379'], tls: { ca: undefined, cert: undefined, key: undefined } },
  });
  t.deepEqual(storeOptionsOf({ kind: 'sqlite' }, join(other, 'secrets')), { backend: 'sqlite' });
});

test('a storage directory does not change what it is: another member name or another kind is refused', async (t) => {
  const dir = await storage(t);
  await rememberClusterDb(dir, { kind: 'member', member: { name: 'head-a', address: '10.0.0.1' } });
  t.throws(() => resolveClusterDb({ CW_ETCD_MEMBER: 'head-b', CW_ETCD_ADDRESS: '10.0.0.1' }, dir), { message: /is etcd member head-a; it cannot start as head-b/ });
  t.throws(() => resolveClusterDb({ CW_ETCD_ENDPOINTS: 'https://10.0.0.5:2379' }, dir), { message: /uses etcd, member head-a .*cannot start with an outside etcd/ });
  t.throws(() => resolveClusterDb({ CW_ETCD_MEMBER: 'head-a', CW_ETCD_ADDRESS: '10.0.0.1', CW_ETCD_ENDPOINTS: 'https://10.0.0.5:2379' }, dir), {
    message: /exclude each other/,
  });
  const fresh = await storage(t);
  t.throws(() => resolveClusterDb({ CW_ETCD_ENDPOINTS: 'ftp://x' }, fresh), { message: /invalid etcd endpoint/ });
});

test('heads ls: one row per head, the leader starred, why a head is down under the table', (t) => {
  const out = renderHeads([
    { name: 'head-a', healthy: true, leader: true, version: '3.4.23', db_size: 2 * 1024 * 1024, peer_urls: ['https://10.0.0.1:2380'], started: true },
    { name: 'head-b', healthy: false, leader: false, version: null, db_size: null, peer_urls: ['https://10.0.0.2:2380'], started: true, error: 'etcd unavailable (endpoints https://10.0.0.2:2379): no answer within 1500 ms' },
    { name: '', healthy: false, leader: false, version: null, db_size: null, peer_urls: ['https://10.0.0.3:2380'], started: false, error: 'added, not started yet' },
  ]);
  t.is(
    out,
    [
      'NAME           HEALTH   LEADER  VERSION  DB       PEER',
      'head-a         healthy  *       3.4.23   2.0 MiB  https://10.0.0.1:2380',
      'head-b         DOWN             -        -        https://10.0.0.2:2380',
      '(not started)  added            -        -        https://10.0.0.3:2380',
      'head-b: etcd unavailable (endpoints https://10.0.0.2:2379): no answer within 1500 ms',
      '(not started): added, not started yet',
      '',
    ].join('\n'),
  );
});
