// The behaviour every store backend must have, registered once per backend: store.test.ts runs it on
// SQLite, etcd-store.test.ts on a real etcd. Each test gets an empty store location from `fresh`.
import type { ExecutionContext } from 'ava';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
  type CommitInfo,
  type NewAdmin,
  type NodeInput,
  type StoreHandle,
} from '../../../src/appliance/db/index.js';
import { parseClusterConf } from '../../../src/lib/clusterconf.js';

/** Opens a store on the location `fresh` made (again and again: each call is a new handle on the same data). */
export type OpenStore = (options?: { now?: () => Date }) => Promise<StoreHandle>;
/** Makes an empty store location for one test (removed at its teardown). */
export type FreshBackend = (t: ExecutionContext) => Promise<OpenStore>;
/** ava's `test`, or a requireTools test function. */
export type RegisterTest = (title: string, implementation: (t: ExecutionContext) => Promise<void> | void) => void;

const fixedNow = () => new Date('2025-01-02T03:04:05.000Z');

export function admin(name: string, n = name): NewAdmin {
  return {
    name,
    keyType: 'ssh-ed25519',
    keyLine: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${n} ${name}@host`,
    fingerprint: `SHA256:${n}`,
    comment: `${name}@host`,
  };
}

export const mac = (i: number) =>
  `52:54:03:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

/** Registers the shared store tests with `test`, each on a store from `fresh`. */
export function storeContract(test: RegisterTest, fresh: FreshBackend): void {
  const opened = async (t: ExecutionContext): Promise<StoreHandle> => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close().catch(() => undefined));
    return store;
  };

  test('admins: add, get, list in name order, remove', async (t) => {
    const open = await fresh(t);
    const store = await open({ now: fixedNow });
    t.teardown(() => store.close());
    const bob = await store.addAdmin(admin('bob'));
    t.deepEqual(bob, { ...admin('bob'), addedAt: '2025-01-02T03:04:05.000Z' });
    await store.addAdmin(admin('alice'));
    t.deepEqual(
      (await store.listAdmins()).map((a) => a.name),
      ['alice', 'bob'],
    );
    t.deepEqual(await store.getAdmin('bob'), bob);
    t.is(await store.getAdmin('carol'), undefined);
    t.true(await store.removeAdmin('bob'));
    t.false(await store.removeAdmin('bob'));
    t.deepEqual(
      (await store.listAdmins()).map((a) => a.name),
      ['alice'],
    );
  });

  test('admins: a duplicate name is refused unless replacing', async (t) => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close());
    await store.addAdmin(admin('alice', 'one'));
    const err = await t.throwsAsync(store.addAdmin(admin('alice', 'two')), { message: 'admin alice already exists' });
    t.true(err instanceof ConflictError);
    t.is((await store.getAdmin('alice'))?.fingerprint, 'SHA256:one');
    await store.addAdmin(admin('alice', 'two'), { replace: true });
    t.is((await store.getAdmin('alice'))?.fingerprint, 'SHA256:two');
    t.is((await store.listAdmins()).length, 1);
  });

  test('admins: one key cannot belong to two admins', async (t) => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close());
    await store.addAdmin(admin('alice', 'k'));
    await t.throwsAsync(store.addAdmin(admin('bob', 'k')), {
      instanceOf: ConflictError,
      message: 'key SHA256:k is already registered for admin alice',
    });
    // Re-adding the same key under the same name with replace is fine.
    await t.notThrowsAsync(store.addAdmin(admin('alice', 'k'), { replace: true }));
  });

  test('admins: names and key fields that could break authorized_keys are refused', async (t) => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close());
    for (const name of ['Alice', '0day', 'a b', 'a\nb', '', 'x'.repeat(33), 'al;ce']) {
      await t.throwsAsync(store.addAdmin(admin(name, 'n')), { instanceOf: ValidationError }, JSON.stringify(name));
    }
    await t.throwsAsync(store.addAdmin({ ...admin('eve'), keyLine: 'ssh-ed25519 AAAA x\nssh-rsa BBBB' }), {
      instanceOf: ValidationError,
    });
    t.deepEqual(await store.listAdmins(), []);
  });

  test('settings: get, set, overwrite, delete', async (t) => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close());
    t.is(await store.getSetting('cluster_id'), undefined);
    await store.setSetting('cluster_id', 'first-token');
    await store.setSetting('cluster_id', 'second-token');
    t.is(await store.getSetting('cluster_id'), 'second-token');
    t.true(await store.deleteSetting('cluster_id'));
    t.false(await store.deleteSetting('cluster_id'));
    t.is(await store.getSetting('cluster_id'), undefined);
  });

  test('data survives closing and reopening', async (t) => {
    const open = await fresh(t);
    const first = await open();
    await first.addAdmin(admin('alice'));
    await first.setSetting('cluster_id', 'persisted-token');
    await first.close();
    const second = await open();
    t.teardown(() => second.close());
    t.is((await second.getAdmin('alice'))?.name, 'alice');
    t.is(await second.getSetting('cluster_id'), 'persisted-token');
  });

  test('transaction: changes are committed together', async (t) => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close());
    const result = await store.transaction(async (tx) => {
      await tx.addAdmin(admin('alice'));
      await tx.setSetting('cluster_id', 'tx-token-1');
      return 'done';
    });
    t.is(result, 'done');
    t.is((await store.listAdmins()).length, 1);
    t.is(await store.getSetting('cluster_id'), 'tx-token-1');
  });

  test('transaction: a throw rolls everything back and is re-thrown', async (t) => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close());
    await store.setSetting('cluster_id', 'before');
    await t.throwsAsync(
      store.transaction(async (tx) => {
        await tx.addAdmin(admin('alice'));
        await tx.setSetting('cluster_id', 'during');
        await new Promise((r) => setTimeout(r, 5));
        throw new Error('render failed');
      }),
      { message: 'render failed' },
    );
    t.deepEqual(await store.listAdmins(), []);
    t.is(await store.getSetting('cluster_id'), 'before');
    // The store is usable afterwards.
    await store.addAdmin(admin('bob'));
    t.is((await store.listAdmins()).length, 1);
  });

  test('transaction: a failed inner transaction is undone alone when caught', async (t) => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close());
    await store.transaction(async (tx) => {
      await tx.addAdmin(admin('alice'));
      await tx
        .transaction(async (inner) => {
          await inner.addAdmin(admin('bob'));
          throw new Error('inner');
        })
        .catch(() => undefined);
      await tx.addAdmin(admin('carol'));
    });
    t.deepEqual(
      (await store.listAdmins()).map((a) => a.name),
      ['alice', 'carol'],
    );
  });

  test('transaction: other callers wait until it is finished', async (t) => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close());
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tx = store.transaction(async (view) => {
      await view.addAdmin(admin('alice'));
      await gate;
    });
    const seen = store.listAdmins();
    await new Promise((r) => setTimeout(r, 10));
    release();
    await tx;
    // Queued behind the transaction, the read sees its committed result, never a half state.
    t.deepEqual(
      (await seen).map((a) => a.name),
      ['alice'],
    );
  });

  test('transaction: using the store instead of the transaction view is an error, not a deadlock', async (t) => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close());
    await t.throwsAsync(
      store.transaction(async () => {
        await store.listAdmins();
      }),
      { message: /use the transaction argument/ },
    );
    // A timer created inside a transaction may use the store once the transaction is over.
    let later: Promise<unknown> | undefined;
    await store.transaction(async () => {
      later = new Promise((resolve, reject) => setTimeout(() => store.listAdmins().then(resolve, reject), 10));
    });
    await t.notThrowsAsync(later!);
  });

  test('transaction: the view cannot be used after the transaction ended', async (t) => {
    const open = await fresh(t);
    const store = await open();
    t.teardown(() => store.close());
    const leaked = await store.transaction(async (tx) => tx);
    await t.throwsAsync(leaked.listAdmins(), { message: /transaction already finished/ });
  });

  test('a closed store refuses further use', async (t) => {
    const open = await fresh(t);
    const store = await open();
    await store.close();
    await store.close();
    await t.throwsAsync(store.listAdmins(), { message: /store is closed/ });
  });

  test('the model survives closing and reopening', async (t) => {
    const open = await fresh(t);
    const store = await open();
    await store.create('attribs', { name: 'gpu', attributes: { a: 'b' } });
    await store.create('images', { name: 'img' });
    await store.create('bootconfigs', { name: 'boot', image: 'img', frozen: true });
    await store.createNode({ mac: mac(1), groups: ['gpu'] });
    await store.close();
    const again = await open();
    t.teardown(() => again.close());
    t.like(await again.getNode('n0'), { mac: mac(1), groups: ['gpu'] });
    t.like(await again.get('bootconfigs', 'boot'), { image: 'img', frozen: true });
  });

  test('the store checks every input itself, not only the API', async (t) => {
    const store = await opened(t);
    const refused: Array<[NodeInput, RegExp]> = [
      [{ mac: 'zz' } as NodeInput, /^mac: invalid MAC/],
      [{ attributes: { a: 'x;y' } }, /^attributes\.a: invalid value/],
      [{ attributes: { a: 5 as unknown as string } }, /^attributes\.a: must be a string/],
      [{ name: 'n5' } as unknown as NodeInput, /unknown field "name" for node/],
      [{ status: {} } as unknown as NodeInput, /^status: read-only field of node/],
      [{ ip: '1.2.3.4.5' }, /^ip: invalid IP address/],
      [{ index: 1.5 }, /^index: must be an integer/],
      [{ groups: ['missing'] }, /^groups: no attribute group "missing"/],
    ];
    for (const [input, error] of refused) {
      await t.throwsAsync(store.createNode(input), { instanceOf: ValidationError, message: error }, JSON.stringify(input));
    }
    await t.throwsAsync(store.create('bootconfigs', { name: 'b', cmdline: 'x\ny' }), { instanceOf: ValidationError });
    await t.throwsAsync(store.create('repos', { name: 'r;m' }), { instanceOf: ValidationError });
    t.deepEqual(await store.listNodes(), []);
  });

  test('frozen objects refuse changes in the store; only {frozen} passes', async (t) => {
    const store = await opened(t);
    await store.create('images', { name: 'img', frozen: true });
    await t.throwsAsync(store.update('images', 'img', { description: 'x' }), { instanceOf: ForbiddenError, message: 'image img is frozen; PATCH {"frozen": false} first' });
    await t.throwsAsync(store.replace('images', 'img', { name: 'img' }), { instanceOf: ForbiddenError });
    await t.throwsAsync(store.remove('images', 'img'), { instanceOf: ForbiddenError });
    await t.throwsAsync(store.setImageContent('img', { size: 1, checksum: `sha256:${'0'.repeat(64)}` }), { instanceOf: ForbiddenError });
    await store.update('images', 'img', { frozen: false });
    t.is((await store.remove('images', 'img')).name, 'img');
    await t.throwsAsync(store.remove('images', 'img'), { instanceOf: NotFoundError, message: 'no such image: img' });
  });

  test('inheritance: DefaultAttribs comes last, once, and may be absent', async (t) => {
    const store = await opened(t);
    await store.update('attribs', 'DefaultAttribs', { attributes: { a: 'default', b: 'default' } });
    await store.create('attribs', { name: 'g', attributes: { a: 'g' } });
    await store.createNode({ groups: ['DefaultAttribs', 'g'] });
    t.deepEqual(await store.resolveAttributes('n0'), {
      a: { value: 'default', from: 'group', group: 'DefaultAttribs' },
      b: { value: 'default', from: 'group', group: 'DefaultAttribs' },
    });
    await store.createNode({ groups: ['g'] });
    const n1 = await store.getNode('n1');
    t.deepEqual(await store.resolveAttributes(n1!), {
      a: { value: 'g', from: 'group', group: 'g' },
      b: { value: 'default', from: 'group', group: 'DefaultAttribs' },
    });
    await store.remove('attribs', 'DefaultAttribs').catch(() => undefined);
    await store.updateNode('n0', { groups: ['g'] });
    await store.remove('attribs', 'DefaultAttribs');
    t.deepEqual(await store.resolveAttributes('n1'), { a: { value: 'g', from: 'group', group: 'g' } });
  });

  test('onCommit hears committed DHCP changes after the commit, once per transaction, never rolled-back ones', async (t) => {
    const store = await opened(t);
    const heard: CommitInfo[] = [];
    let inside = false;
    const off = store.onCommit((change) => {
      t.false(inside, 'not inside the transaction');
      heard.push(change);
    });
    await store.transaction(async (tx) => {
      inside = true;
      await tx.createNode({ mac: mac(1) });
      await tx.createNode({ mac: mac(2) });
      await tx.create('nets', { name: 'n', first: '10.0.0.1', prefix: 24 });
      inside = false;
    });
    t.deepEqual(heard, [{ dhcp: true }]);
    await t.throwsAsync(
      store.transaction(async (tx) => {
        await tx.createNode({ mac: mac(3) });
        throw new Error('changed my mind');
      }),
    );
    await t.throwsAsync(store.createNodes([{ mac: mac(4) }, { mac: 'bad' }]));
    await store.create('attribs', { name: 'g' });
    await store.updateNode('n0', { attributes: { a: 'b' } });
    t.is(heard.length, 1, 'rollbacks and non-DHCP changes are silent');
    await store.removeNode('n1');
    t.is(heard.length, 2);
    off();
    await store.removeNode('n0');
    t.is(heard.length, 2, 'after unsubscribing');
  });

  test('10,000 nodes in one createNodes: all, or none when one is bad', async (t) => {
    const store = await opened(t);
    const inputs: NodeInput[] = Array.from({ length: 10_000 }, (_, i) => ({ mac: mac(i), ip: `10.9.${i >> 8}.${i & 255}` }));
    await t.throwsAsync(store.createNodes([...inputs, { mac: mac(17) }]), { instanceOf: ValidationError, message: /^\[10000\] mac: .* is given twice \(also in entry \[17\]\)$/ });
    t.deepEqual(await store.listNodes(), []);
    const start = performance.now();
    const created = await store.createNodes(inputs);
    t.log(`store.createNodes of 10,000 nodes: ${(performance.now() - start).toFixed(0)} ms`);
    t.is(created.length, 10_000);
    await t.throwsAsync(store.createNodes([{ mac: mac(10_001) }, { mac: mac(5) }]), { instanceOf: ConflictError, message: `[1] mac: ${mac(5)} already belongs to node n5` });
    t.is((await store.listNodes()).length, 10_000);
  });

  test('a cluster.conf and other changes in one transaction are undone together', async (t) => {
    const store = await opened(t);
    await t.throwsAsync(
      store.transaction(async (tx) => {
        await tx.applyClusterConf(parseClusterConf('iprange 10.1.0.10/24\nnodes 3\n'));
        t.is((await tx.listNodes()).length, 3);
        throw new Error('abort');
      }),
    );
    t.deepEqual(await store.listNodes(), []);
    t.deepEqual(await store.list('nets'), []);
  });
}
