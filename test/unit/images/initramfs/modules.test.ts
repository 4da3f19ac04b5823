import test from 'ava';
import { moduleClosure, moduleNameOf, parseModulesBuiltin, parseModulesDep } from '../../../../src/images/initramfs/modules.js';

// A slice of a real Debian 6.1 cloud kernel's modules.dep.
const DEP = `kernel/fs/squashfs/squashfs.ko:
kernel/drivers/block/loop.ko:
kernel/fs/overlayfs/overlay.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.xz: kernel/drivers/ptp/ptp.ko.xz kernel/drivers/pps/pps_core.ko.xz
kernel/drivers/ptp/ptp.ko.xz: kernel/drivers/pps/pps_core.ko.xz
kernel/drivers/pps/pps_core.ko.xz:
`;

const names = (c: ReturnType<typeof moduleClosure>) => c.order.map((m) => m.name);

/** Every module comes after all of its dependencies. */
function assertDepsFirst(t: import('ava').ExecutionContext, c: ReturnType<typeof moduleClosure>) {
  const pos = new Map(c.order.map((m, i) => [m.name, i]));
  for (const m of c.order) for (const d of m.deps) t.true((pos.get(d) ?? Infinity) < (pos.get(m.name) as number), `${d} before ${m.name}`);
}

test('module names drop .ko and compression and use underscores', (t) => {
  t.is(moduleNameOf('kernel/fs/squashfs/squashfs.ko'), 'squashfs');
  t.is(moduleNameOf('kernel/drivers/ptp/ptp.ko.xz'), 'ptp');
  t.is(moduleNameOf('kernel/drivers/hid/hid-generic.ko.zst'), 'hid_generic');
});

test('virtio_blk needs virtio and virtio_ring, loaded first', (t) => {
  const c = moduleClosure(DEP, ['virtio_blk']);
  t.deepEqual(names(c).sort(), ['virtio', 'virtio_blk', 'virtio_ring']);
  t.is(names(c).at(-1), 'virtio_blk');
  assertDepsFirst(t, c);
});

test('the boot set: every dependency once, in load order', (t) => {
  const c = moduleClosure(DEP, ['loop', 'squashfs', 'overlay', 'virtio_pci', 'virtio_net', 'e1000e']);
  t.deepEqual(c.missing, []);
  t.deepEqual(c.cycles, []);
  t.is(new Set(names(c)).size, c.order.length);
  t.deepEqual(names(c).sort(), [
    'e1000e', 'failover', 'loop', 'net_failover', 'overlay', 'pps_core', 'ptp', 'squashfs',
    'virtio', 'virtio_net', 'virtio_pci', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_ring',
  ]);
  assertDepsFirst(t, c);
  t.is(c.order.find((m) => m.name === 'ptp')?.path, 'kernel/drivers/ptp/ptp.ko.xz');
});

test('missing wanted modules are reported, not fatal; dashes are accepted', (t) => {
  const c = moduleClosure(DEP, ['e1000', 'virtio-net', 'e1000']);
  t.deepEqual(c.missing, ['e1000']);
  t.true(names(c).includes('virtio_net'));
});

test('a dependency without its own line is reported as dangling', (t) => {
  const c = moduleClosure('kernel/a.ko: kernel/b.ko\n', ['a']);
  t.deepEqual(names(c), ['a']);
  t.deepEqual(c.dangling, ['a -> b']);
});

test('cycles terminate and are reported; each module listed once', (t) => {
  const c = moduleClosure('kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko: kernel/a.ko\n', ['a', 'c']);
  t.deepEqual(names(c).sort(), ['a', 'b', 'c']);
  t.deepEqual(c.cycles, ['a -> b -> c -> a']);
});

test('other lines (depmod -n output sections) are ignored', (t) => {
  const text = `${DEP}# Aliases extracted from modules themselves.\nalias fs-squashfs squashfs\nsoftdep virtio_net pre: foo\n`;
  t.is(parseModulesDep(text).size, 15);
});

test('modules.builtin names', (t) => {
  const b = parseModulesBuiltin('kernel/net/packet/af_packet.ko\nkernel/lib/xz/xz_dec.ko\n');
  t.true(b.has('af_packet'));
  t.true(b.has('xz_dec'));
});
