// The store on a real etcd (started by the test, default limits): every shared store test of
// store-contract.ts, then what only a replicated store has — atomicity beyond one etcd request, writers on
// several heads, the watch, and an etcd that goes away.
import test from 'ava';
import { ConflictError, type CommitInfo, type Node } from '../../../src/appliance/db/index.js';
import { prefixEnd } from '../../../src/appliance/db/etcd/client.js';
import { EtcdUnavailableError, openEtcdStore, type EtcdStore, type StoreChange } from '../../../src/appliance/db/etcd/store.js';
import { parseClusterConf } from '../../../src/lib/clusterconf.js';
import { freePort, startTestEtcd, startTestEtcdCluster, type TestEtcd } from '../../helpers/etcd.js';
import { makeCertificate } from '../../helpers/tls.js';
import { requireTools } from '../../helpers/tools.js';
import { tempDir } from '../lib/keys.js';
import { admin, mac, storeContract } from './store-contract.js';
import { writeFileSync } from 'node:fs';
import { openSnapshotter } from '../../../src/appliance/db/snapshot.js';
import { openSqliteStore } from '../../../src/appliance/db/sqlite/store.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { join } from 'node:path';

const etcdTest = requireTools('etcd');
let etcd: TestEtcd | undefined;
let prefixes = 0;

etcdTest.before(async () => {
  etcd = await startTestEtcd();
});
test.after.always(async () => {
  await etcd?.destroy();
});

/** A key prefix of its own for each test: the tests share one etcd, not their data. */
const newPrefix = () => `/cwtest/${process.pid}-${++prefixes}/`;

async function openOn(t: { teardown(fn: () => unknown): void }, prefix: string, options: { timeoutMs?: number; endpoint?: string } = {}): Promise<EtcdStore> {
  const store = await openEtcdStore({ endpoints: [options.endpoint ?? etcd!.endpoint], prefix, timeoutMs: options.timeoutMs });
  t.teardown(() => store.close());
  return store;
}

storeContract(etcdTest, async () => {
  const prefix = newPrefix();
  return (options = {}) => openEtcdStore({ endpoints: [etcd!.endpoint], prefix, now: options.now });
});

/** A cluster.conf of `count` nodes with MACs, in /16 ranges. */
function bigConf(count: number): string {
  const lines = ['iprange 10.20.0.1/16'];
  for (let i = 0; i < count; i++) lines.push(`node ${mac(i)}`);
  return `${lines.join('\n')}\n`;
}

/** The generations stored under a store's prefix (one, once a write has settled). */
async function generations(store: EtcdStore): Promise<string[]> {
  const { kvs } = await store.client.range(`${store.prefix}g/`, { rangeEnd: prefixEnd(`${store.prefix}g/`) });
  return [...new Set(kvs.map((kv) => kv.key.slice(`${store.prefix}g/`.length).split('/')[0]!))];
}

etcdTest('a 10,000-node applyClusterConf on an etcd with default limits is all or nothing, and no reader sees half of it', async (t) => {
  const prefix = newPrefix();
  const a = await openOn(t, prefix);
  const b = await openOn(t, prefix);
  const conf = parseClusterConf(bigConf(10_000));
  // A node elsewhere holds one of the file's MACs: the whole file is refused and nothing is written.
  await a.createNode({ index: 50_000, mac: mac(6789) });
  await t.throwsAsync(a.applyClusterConf(conf), { instanceOf: ConflictError, message: /52:54:03:00:1a:85/ });
  t.is((await b.listNodes()).length, 1);
  t.deepEqual(await b.list('nets'), []);
  t.is((await generations(a)).length, 1, 'nothing staged is left behind');

  await a.removeNode('n50000');
  const heard: CommitInfo[] = [];
  b.onCommit((c) => heard.push(c));
  const seen = new Set<number>();
  let watching = true;
  const reader = (async () => {
    while (watching) seen.add((await b.listNodes()).length);
  })();
  const start = performance.now();
  const result = await a.applyClusterConf(conf);
  const ms = performance.now() - start;
  watching = false;
  await reader;
  t.log(`applyClusterConf of 10,000 nodes on etcd: ${ms.toFixed(0)} ms; counts another store saw meanwhile: ${[...seen].join(', ')}`);
  t.is(result.created.length, 10_000);
  t.true([...seen].every((n) => n === 0 || n === 10_000), `a reader saw ${[...seen].join(', ')}`);
  t.is((await b.listNodes()).length, 10_000);
  t.like(await b.getNode(mac(9999)), { name: 'n9999', ip: '10.20.39.16' });
  t.deepEqual(await b.clusterConf(), await a.clusterConf());
  t.is((await generations(a)).length, 1, 'the replaced generation is deleted');
  t.true(heard.length > 0, 'the other store reports the switch as a DHCP change');

  // Rows changed after the switch lie over the generation's packs, deletions included.
  await a.removeNode('n5');
  await a.updateNode('n6', { attributes: { rack: '7' } });
  const c = await openOn(t, prefix);
  for (const store of [b, c]) {
    t.is(await store.getNode('n5'), undefined);
    t.is((await store.getNode('n6'))?.attributes.rack, '7');
    t.is((await store.listNodes()).length, 9_999);
  }
});

etcdTest('writers on two stores never give one MAC to two nodes', async (t) => {
  const prefix = newPrefix();
  const a = await openOn(t, prefix);
  const b = await openOn(t, prefix);
  const macs = Array.from({ length: 15 }, (_, i) => mac(100 + i));
  const attempts = macs.flatMap((m) => [a.createNode({ mac: m }), b.createNode({ mac: m })]);
  const outcomes = await Promise.allSettled(attempts);
  const created = outcomes.filter((o): o is PromiseFulfilledResult<Node> => o.status === 'fulfilled').map((o) => o.value);
  const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as Error);
  t.is(created.length, macs.length, 'each MAC went to exactly one node');
  t.true(refused.every((e) => e instanceof ConflictError && /already belongs to node/.test(e.message)), refused.map((e) => e.message).join('; '));
  for (const store of [a, b]) {
    const nodes = await store.listNodes();
    t.deepEqual(nodes.map((n) => n.mac).sort(), [...macs].sort());
    t.is(new Set(nodes.map((n) => n.name)).size, macs.length, 'and indexes are unique');
  }
});

// Serial (run first, alone): the 10,000-node tests would hold the event loop the latency is measured on.
etcdTest.serial('a change through one store reaches a watcher on another within 1 s', async (t) => {
  const prefix = newPrefix();
  const a = await openOn(t, prefix);
  const b = await openOn(t, prefix);
  const dhcp: CommitInfo[] = [];
  b.onCommit((c) => dhcp.push(c));
  const heard = new Promise<{ change: StoreChange; at: number }>((resolve) => {
    const off = b.watch((change) => {
      if (change.origin === 'remote' && change.tables.includes('nodes')) {
        off();
        resolve({ change, at: performance.now() });
      }
    });
  });
  const start = performance.now();
  await a.createNode({ mac: mac(7) });
  const { change, at } = await heard;
  t.log(`write on one store -> watch on the other: ${(at - start).toFixed(1)} ms`);
  t.true(at - start < 1000);
  t.true(change.dhcp);
  t.deepEqual(dhcp, [{ dhcp: true }], 'onCommit hears DHCP changes of other heads too');
  t.is((await b.getNode(mac(7)))?.name, 'n0');
  // A change that does not touch dhcpd.conf is watched, but not a DHCP commit.
  await a.updateNode('n0', { attributes: { rack: '3' } });
  t.is((await b.getNode('n0'))?.attributes.rack, '3');
  t.is(dhcp.length, 1);
  await a.removeNode('n0');
  t.is(await b.getNode('n0'), undefined);
  t.is(dhcp.length, 2);
});

etcdTest.serial('a lost etcd: reads answer from the copy, writes are a clear error naming the endpoints within the deadline, and the store recovers', async (t) => {
  const own = await startTestEtcd();
  t.teardown(() => own.destroy());
  const store = await openOn(t, newPrefix(), { timeoutMs: 1500, endpoint: own.endpoint });
  await store.createNode({ mac: mac(1) });
  await own.stop();
  const endpointRe = own.endpoint.replaceAll('.', '\\.');
  t.deepEqual((await store.listNodes()).map((n) => n.mac), [mac(1)]);
  // Answers from the copy still go through the event loop: a loop of reads lets timers and I/O run.
  let ticked = false;
  setTimeout(() => (ticked = true), 0);
  for (let i = 0; i < 1000 && !ticked; i++) await store.getNode(mac(1));
  t.true(ticked, 'a loop of reads starves the event loop');
  const start = performance.now();
  await t.throwsAsync(store.createNode({ mac: mac(2) }), {
    instanceOf: EtcdUnavailableError,
    message: new RegExp(`^etcd unavailable \\(endpoints ${endpointRe}\\): .*; this head takes no changes until etcd answers again`),
  });
  t.true(performance.now() - start < 4000, 'bounded by the deadline');
  await own.restart();
  await store.createNode({ mac: mac(2) });
  t.deepEqual((await store.listNodes()).map((n) => n.mac), [mac(1), mac(2)]);
});

/** How long `op` takes, in milliseconds, with its result. */
async function timed<T>(op: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await op();
  return { value, ms: performance.now() - start };
}

// A head cut off from the others sees its own etcd member up but without a quorum: a linearizable read
// there waits for etcd's own request timeout (7 s). Three members; the store of "head A" talks to the first.
etcdTest.serial('a head whose member lost its quorum answers reads from its copy within 1.5 s and refuses writes quickly; once back, every head has the same data', async (t) => {
  const members = await startTestEtcdCluster(3);
  t.teardown(() => Promise.all(members.map((m) => m.destroy())));
  const [m0, m1, m2] = members as [TestEtcd, TestEtcd, TestEtcd];
  const prefix = newPrefix();
  const a = await openOn(t, prefix, { endpoint: m0.endpoint });
  const b = await openOn(t, prefix, { endpoint: m1.endpoint });
  await a.createNode({ mac: mac(1) });
  await b.updateNode('n0', { attributes: { rack: '1' } });
  t.is((await a.getNode('n0'))?.attributes.rack, '1');

  // The other two members gone: A's member answers, but can agree on nothing.
  await Promise.all([m1.stop(), m2.stop()]);
  const first = await timed(() => a.listNodes());
  t.deepEqual(first.value.map((n) => [n.mac, n.attributes.rack]), [[mac(1), '1']], 'the data of before the cut');
  t.true(first.ms < 2000, `first read took ${first.ms.toFixed(0)} ms`);
  const next: number[] = [];
  for (let i = 0; i < 5; i++) next.push((await timed(() => a.getNode(mac(1)))).ms);
  t.true(next.every((ms) => ms < 200), `later reads at once: ${next.map((ms) => ms.toFixed(0)).join(', ')} ms`);
  const refusal = new RegExp(`^etcd unavailable \\(endpoints ${m0.endpoint.replaceAll('.', '\\.')}\\): .*; this head takes no changes until etcd answers again`);
  const writes: number[] = [];
  // What a boot writes, too: the node's secret and its status.
  const uid = first.value[0]!.uid;
  for (const write of [() => a.createNode({ mac: mac(2) }), () => a.setNodeSecretHash(uid, 'x'.repeat(64), new Date()), () => a.setNodeStatus(uid, { stage: 'ipxe' }, new Date())]) {
    const start = performance.now();
    await t.throwsAsync(write(), { instanceOf: EtcdUnavailableError, message: refusal });
    writes.push(performance.now() - start);
  }
  t.true(writes.every((ms) => ms < 2000), `writes refused in ${writes.map((ms) => ms.toFixed(0)).join(', ')} ms`);
  t.log(`cut off: first read ${first.ms.toFixed(0)} ms, next reads ${next.map((ms) => ms.toFixed(0)).join(', ')} ms, writes refused in ${writes.map((ms) => ms.toFixed(0)).join(', ')} ms`);

  // The others carry on without A's member (it is away too now), and B writes.
  await m0.stop();
  await Promise.all([m1.restart(), m2.restart()]);
  await b.updateNode('n0', { attributes: { rack: '2' } });
  await b.createNode({ mac: mac(3) });
  t.is((await a.getNode('n0'))?.attributes.rack, '1', 'A still answers with what it had');

  // A's member is back: A catches up, takes writes again, and every head has the same data.
  await m0.restart();
  const back = performance.now();
  await waitUntil(async () => (await a.getNode('n0'))?.attributes.rack === '2', 10_000);
  t.log(`A current again ${(performance.now() - back).toFixed(0)} ms after its member restarted`);
  await a.createNode({ mac: mac(4) });
  await waitUntil(async () => (await b.listNodes()).length === 3, 5000);
  t.deepEqual(await a.clusterConf(), await b.clusterConf());
  t.deepEqual((await b.listNodes()).map((n) => n.mac), [mac(1), mac(3), mac(4)]);
});

/** Polls `check` every 50 ms until it holds, failing after `timeoutMs`. */
async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

etcdTest('opening on an address where no etcd listens fails with the endpoint in the message', async (t) => {
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  await t.throwsAsync(openEtcdStore({ endpoints: [endpoint], timeoutMs: 1000 }), {
    instanceOf: EtcdUnavailableError,
    message: new RegExp(`endpoints ${endpoint.replaceAll('.', '\\.')}`),
  });
});

test('endpoints must be plain http(s) URLs', async (t) => {
  await t.throwsAsync(openEtcdStore({ endpoints: ['10.0.0.1:2379'] }), { message: /invalid etcd endpoint "10.0.0.1:2379"/ });
  await t.throwsAsync(openEtcdStore({ endpoints: ['http://u:p@10.0.0.1:2379'] }), { message: /expected http\(s\):\/\/HOST:PORT/ });
  await t.throwsAsync(openEtcdStore({ endpoints: [] }), { message: /no etcd endpoints/ });
});

requireTools('etcd', 'openssl')('over TLS with client certificates: the store opens with its TLS options, and without a client certificate it is refused', async (t) => {
  const { dir, cleanup } = tempDir('cw-etcd-tls-');
  t.teardown(cleanup);
  const server = makeCertificate(dir, 'etcd');
  const head = makeCertificate(dir, 'head', ['DNS:head']);
  const trustedCaFile = join(dir, 'trusted.pem');
  writeFileSync(trustedCaFile, server.certPem + head.certPem);
  const tls = { ca: server.certPem, cert: head.certPem, key: head.keyPem };
  const own = await startTestEtcd({ tls: { certFile: server.certFile, keyFile: server.keyFile, trustedCaFile, client: tls } });
  t.teardown(() => own.destroy());
  t.regex(own.endpoint, /^https:/);
  const store = await openEtcdStore({ endpoints: [own.endpoint], tls });
  t.teardown(() => store.close());
  await store.addAdmin(admin('alice'));
  t.deepEqual((await store.listAdmins()).map((a) => a.name), ['alice']);
  const refused = await t.throwsAsync(openEtcdStore({ endpoints: [own.endpoint], tls: { ca: server.certPem }, timeoutMs: 2000 }), {
    instanceOf: EtcdUnavailableError,
    message: new RegExp(`^etcd unavailable \\(endpoints ${own.endpoint.replaceAll('.', '\\.')}\\): `),
  });
  t.log(refused?.message);
});

etcdTest('what an onCommit listener starts may use the store: it waits for the write, it is not taken for a nested use', async (t) => {
  const store = await openOn(t, newPrefix());
  const seen: number[] = [];
  const errors: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  store.onCommit(() => {
    // As the API's dhcpd sync does: read the model in a transaction of its own, later.
    void store
      .transaction(async (tx) => (await tx.listNodes()).length)
      .then((n) => seen.push(n), (err: Error) => errors.push(err.message))
      .finally(done);
  });
  await store.applyClusterConf(parseClusterConf(bigConf(150)));
  await finished;
  t.deepEqual(errors, []);
  t.deepEqual(seen, [150]);
});

etcdTest('a backup snapshot of an etcd head is the cluster data, as of the last write on any head, in one SQLite file', async (t) => {
  const prefix = newPrefix();
  const a = await openOn(t, prefix);
  const b = await openOn(t, prefix);
  await a.applyClusterConf(parseClusterConf(bigConf(300)));
  await a.setSetting('backup_keep', '3');
  const { dir, cleanup } = tempDir('cw-etcd-snap-');
  t.teardown(cleanup);
  // Taken through the other store right after the write: a linearizable read first, so it has it.
  const file = join(dir, 'cw.sqlite');
  const snap = await openSnapshotter(storagePaths(dir), 'etcd', b).snapshot(file);
  t.true(snap.schemaVersion > 0);
  await t.throwsAsync(openSnapshotter(storagePaths(dir), 'etcd', b).snapshot(file), { message: /exists/ });
  const copy = openSqliteStore(file);
  t.teardown(() => copy.close());
  t.deepEqual(await copy.clusterConf(), await a.clusterConf());
  t.is((await copy.listNodes()).length, 300);
  t.is(await copy.getSetting('backup_keep'), '3');
});

etcdTest('a head SQLite database seeds an empty etcd; once etcd holds data another seed is ignored', async (t) => {
  const prefix = newPrefix();
  const { dir, cleanup } = tempDir('cw-etcd-seed-');
  t.teardown(cleanup);
  const seedFile = join(dir, 'cw.sqlite');
  const sqlite = openSqliteStore(seedFile);
  await sqlite.applyClusterConf(parseClusterConf(bigConf(120)));
  await sqlite.setSetting('backup_keep', '5');
  const before = await sqlite.clusterConf();
  await sqlite.close();

  const first = await openEtcdStore({ endpoints: [etcd!.endpoint], prefix, seed: seedFile });
  t.teardown(() => first.close());
  t.true((first.seeded ?? 0) > 120, `seeded ${String(first.seeded)} rows`);
  t.deepEqual(await first.clusterConf(), before);
  t.is(await first.getSetting('backup_keep'), '5');

  // A second head with a database of its own: etcd's data wins, its file is not looked at.
  const otherFile = join(dir, 'other.sqlite');
  const other = openSqliteStore(otherFile);
  await other.applyClusterConf(parseClusterConf('iprange 10.99.0.1/24\nnode 52:54:09:00:00:01\n'));
  await other.close();
  const second = await openEtcdStore({ endpoints: [etcd!.endpoint], prefix, seed: otherFile });
  t.teardown(() => second.close());
  t.is(second.seeded, null);
  t.deepEqual(await second.clusterConf(), before);
});
