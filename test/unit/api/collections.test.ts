import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fakeBzImage, fakeCpio, fakeInitramfs, fakeVmlinux } from '../lib/boot-file-fixtures.js';
import { session, type Session } from './helpers.js';

interface Case {
  plural: string;
  singular: string;
  /** A valid create body (name `one`). */
  create: Record<string, unknown>;
  /** What a GET shows after creating it (besides uid). */
  shown: Record<string, unknown>;
  /** A PATCH and the fields it changes. */
  patch: Record<string, unknown>;
  patched: Record<string, unknown>;
  /** Bodies refused with 400, and the message pattern. */
  bad: Array<[Record<string, unknown>, RegExp]>;
  /** Creates what `create` refers to. */
  setup?: (s: Session) => Promise<void>;
}

const cases: Case[] = [
  {
    plural: 'attribs',
    singular: 'attrib',
    create: { name: 'one', description: 'GPU nodes', attributes: { _boot_config: 'gpuBoot', cuda: '12' } },
    shown: { name: 'one', description: 'GPU nodes', attributes: { _boot_config: 'gpuBoot', cuda: '12' }, priority: 0 },
    patch: { attributes: { cuda: null, mig: 'on' }, priority: 5 },
    patched: { attributes: { _boot_config: 'gpuBoot', mig: 'on' }, priority: 5 },
    bad: [
      [{ name: 'one', attributes: { k: 'v;reboot' } }, /attributes\.k: invalid value/],
      [{ name: 'one', priority: 1.5 }, /priority must be an integer/],
    ],
  },
  {
    plural: 'nets',
    singular: 'net',
    create: { name: 'one', first: '10.20.0.100', prefix: 16, gateway: '10.20.0.1' },
    shown: {
      name: 'one',
      first: '10.20.0.100',
      last: '10.20.255.254',
      prefix: 16,
      network: '10.20.0.0',
      netmask: '255.255.0.0',
      gateway: '10.20.0.1',
      dynamic: false,
    },
    patch: { last: '10.20.0.199', dynamic: true },
    patched: { last: '10.20.0.199', dynamic: true },
    bad: [
      [{ name: 'one', first: '10.20.0.0', prefix: 16 }, /first: 10.20.0.0 is the network address of 10.20.0.0\/16/],
      [{ name: 'one', first: '10.20.0.100', prefix: 16, last: '10.21.0.1' }, /last: 10.21.0.1 is outside 10.20.0.0\/16/],
      [{ name: 'one', first: '10.20.0.100', prefix: 16, last: '10.20.0.50' }, /last: 10.20.0.50 comes before first/],
      [{ name: 'one', first: '10.20.0.100', prefix: 16, gateway: '10.20.0.150' }, /gateway: 10.20.0.150 lies in the node range/],
      [{ name: 'one', first: '10.20.0.100', prefix: 16, gateway: '10.99.0.1' }, /gateway: 10.99.0.1 is not a host address/],
      [{ name: 'one', first: '10.20.0.100', prefix: 33 }, /prefix must be <= 30/],
      [{ name: 'one', first: '10.20.0.100', prefix: 16, dynamic: 'yes' }, /body\/dynamic must be a boolean/],
      [{ name: 'one', first: '10.1.0.1', prefix: 8, dynamic: true }, /last: the dynamic node range 10.1.0.1-10.255.255.254 holds 16711678 addresses; dhcpd loads at most 1048576/],
      [{ name: 'one', first: '10.20.0.100' }, /must have required property 'prefix'/],
    ],
  },
  {
    plural: 'images',
    singular: 'image',
    create: { name: 'one', description: 'base image' },
    shown: { name: 'one', description: 'base image', size: 0, checksum: null, frozen: false },
    patch: { description: 'changed' },
    patched: { description: 'changed' },
    bad: [
      [{ name: 'one', size: 5 }, /unknown field "size"/],
      [{ name: 'one', checksum: 'x' }, /unknown field "checksum"/],
    ],
  },
  {
    plural: 'bootconfigs',
    singular: 'bootconfig',
    setup: async (s) => {
      await s.call('POST', '/images', { name: 'img' });
    },
    create: { name: 'one', image: 'img', cmdline: 'enforcing=0 console=ttyS1,115200' },
    shown: {
      name: 'one',
      description: '',
      kernel: null,
      initramfs: null,
      cmdline: 'enforcing=0 console=ttyS1,115200',
      release: null,
      boot_style: 'rwram',
      image: 'img',
      frozen: false,
    },
    patch: { boot_style: 'roram', release: '6.1.0-18-amd64' },
    patched: { boot_style: 'roram', release: '6.1.0-18-amd64' },
    bad: [
      [{ name: 'one', cmdline: 'quiet; reboot' }, /cmdline: invalid command line: command line contains ";"/],
      [{ name: 'one', cmdline: 'a {b}' }, /command line contains "\{"/],
      [{ name: 'one', cmdline: 'root="x"' }, /command line contains '"'/],
      [{ name: 'one', cmdline: "root='x'" }, /command line contains "'"/],
      [{ name: 'one', cmdline: 'quiet\nchain http://evil' }, /cmdline: invalid command line/],
      [{ name: 'one', cmdline: 'a`id`' }, /command line contains "`"/],
      [{ name: 'one', image: 'missing' }, /image: no image "missing"/],
      [{ name: 'one', boot_style: 'floppy' }, /boot_style must be one of/],
      [{ name: 'one', release: '6.1 evil' }, /release: invalid release/],
      [{ name: 'one', kernel: 'vmlinuz' }, /unknown field "kernel"/],
    ],
  },
  {
    plural: 'repos',
    singular: 'repo',
    create: { name: 'one', urls: ['http://mirror.centos.org/centos/$releasever/os/$basearch/'], keys: [] },
    shown: {
      name: 'one',
      urls: ['http://mirror.centos.org/centos/$releasever/os/$basearch/'],
      keys: [],
      iso: null,
      description: '',
    },
    patch: { iso: '/srv/iso/CentOS-7-x86_64-DVD-2009.iso', keys: ['https://example.org/RPM-GPG-KEY'] },
    patched: { iso: '/srv/iso/CentOS-7-x86_64-DVD-2009.iso', keys: ['https://example.org/RPM-GPG-KEY'] },
    bad: [
      [{ name: 'one', urls: ['http://x/ y'] }, /urls\[0\]: invalid URL/],
      [{ name: 'one', urls: ['http://x/";rm'] }, /urls\[0\]: invalid URL .*contains/],
      [{ name: 'one', urls: ['gopher://x/'] }, /urls\[0\]: invalid URL/],
      [{ name: 'one', urls: ['http://a/', 'http://a/'] }, /urls: lists "http:\/\/a\/" twice/],
      [{ name: 'one', iso: '/x y.iso' }, /iso: invalid ISO location/],
    ],
  },
  {
    plural: 'distros',
    singular: 'distro',
    setup: async (s) => {
      await s.call('POST', '/repos', { name: 'CentOS_base', urls: ['http://mirror.centos.org/centos/$releasever/os/$basearch/'] });
      await s.call('POST', '/repos', { name: 'extras', urls: ['http://mirror.centos.org/extras/'] });
    },
    create: { name: 'one', package_manager: 'yum', release: '7', repos: ['CentOS_base'] },
    shown: { name: 'one', package_manager: 'yum', release: '7', repos: ['CentOS_base'] },
    patch: { repos: ['extras', 'CentOS_base'], package_manager: null },
    patched: { repos: ['extras', 'CentOS_base'], package_manager: null },
    bad: [
      [{ name: 'one', package_manager: 'pacman' }, /package_manager must be one of/],
      [{ name: 'one', repos: ['nope'] }, /repos: no repo "nope"/],
      [{ name: 'one', repos: ['CentOS_base', 'CentOS_base'] }, /repos: lists "CentOS_base" twice/],
    ],
  },
];

const names: Array<[string, RegExp]> = [
  ['a;b', /name: invalid name "a;b": name contains ";"/],
  ['x{', /name contains "\{"/],
  ['x}', /name contains "\}"/],
  ['a"b', /name contains '"'/],
  ["a'b", /name contains "'"/],
  ['a\nb', /name contains U\+000A \(newline\)/],
  ['-lead', /name must start with a letter or digit/],
  ['../etc', /name must start with a letter or digit/],
  ['a/b', /name contains "\/"/],
  ['x'.repeat(64), /body\/name must NOT have more than 63 characters/],
  ['0123456789abcdef0123456789ABCDEF', /would read as a uid/],
  ['', /must NOT have fewer than 1 characters/],
];

for (const c of cases) {
  test(`${c.plural}: create, address by uid and name, list, patch, put, delete`, async (t) => {
    const s = await session(t);
    await c.setup?.(s);
    const created = await s.call('POST', `/${c.plural}`, c.create);
    t.is(created.status, 201, JSON.stringify(created.body));
    t.like(created.body.data, c.shown);
    const uid = created.body.data.uid as string;
    t.regex(uid, /^[0-9a-f]{32}$/);
    t.deepEqual((await s.call('GET', `/${c.singular}/${uid}`)).body.data, created.body.data);
    t.deepEqual((await s.call('GET', `/${c.singular}/one`)).body.data, created.body.data);
    t.true((await s.call('GET', `/${c.plural}`)).body.data.some((o: { uid: string }) => o.uid === uid));

    const patched = await s.call('PATCH', `/${c.singular}/one`, c.patch);
    t.is(patched.status, 200, JSON.stringify(patched.body));
    t.like(patched.body.data, { ...c.shown, ...c.patched });
    t.deepEqual((await s.call('GET', `/${c.singular}/one`)).body.data, patched.body.data, 'stored as answered');

    const dup = await s.call('POST', `/${c.plural}`, c.create);
    t.is(dup.status, 409);
    t.is(dup.body.error, `${c.singular} one already exists`);

    const replaced = await s.call('PUT', `/${c.singular}/${uid}`, { ...c.create, name: 'renamed' });
    t.is(replaced.status, 200, JSON.stringify(replaced.body));
    t.like(replaced.body.data, { ...c.shown, name: 'renamed' });
    t.deepEqual((await s.call('GET', `/${c.singular}/renamed`)).body.data, replaced.body.data, 'stored as answered');
    t.is((await s.call('GET', `/${c.singular}/one`)).status, 404);

    const removed = await s.call('DELETE', `/${c.singular}/renamed`);
    t.is(removed.status, 200);
    t.is(removed.body.data.uid, uid);
    const gone = await s.call('GET', `/${c.singular}/${uid}`);
    t.is(gone.status, 404);
    t.is(gone.body.error, `no such ${c.singular}: ${uid}`);
    t.is((await s.call('DELETE', `/${c.singular}/renamed`)).status, 404);
    t.is((await s.call('PATCH', `/${c.singular}/renamed`, {})).status, 404);
  });

  test(`${c.plural}: bad fields, hostile names and unknown fields are 400 and nothing is written`, async (t) => {
    const s = await session(t);
    await c.setup?.(s);
    const before = (await s.call('GET', `/${c.plural}`)).body.data;
    const bodies: Array<[Record<string, unknown>, RegExp]> = [
      ...c.bad,
      ...names.map(([name, re]): [Record<string, unknown>, RegExp] => [{ ...c.create, name }, re]),
      [{ ...c.create, color: 'blue' }, /body has unknown field "color"/],
      [{ ...c.create, uid: '0'.repeat(32) }, /body has unknown field "uid"/],
    ];
    for (const [body, error] of bodies) {
      const res = await s.call('POST', `/${c.plural}`, body);
      t.is(res.status, 400, JSON.stringify(body));
      t.regex(res.body.error, error, JSON.stringify(body));
    }
    t.deepEqual((await s.call('GET', `/${c.plural}`)).body.data, before);
    await s.call('POST', `/${c.plural}`, c.create);
    const one = (await s.call('GET', `/${c.singular}/one`)).body.data;
    for (const [body, error] of bodies) {
      const { name: _name, ...rest } = body;
      // Bodies that only lack a required field are fine as a PATCH.
      if (Object.keys(rest).length === 0 || error.source.includes('required property')) continue;
      t.is((await s.call('PATCH', `/${c.singular}/one`, body)).status, 400, `PATCH ${JSON.stringify(body)}`);
    }
    t.deepEqual((await s.call('GET', `/${c.singular}/one`)).body.data, one);
  });
}

test('DefaultAttribs exists from the start', async (t) => {
  const s = await session(t);
  const list = (await s.call('GET', '/attribs')).body.data;
  t.is(list.length, 1);
  t.like(list[0], { name: 'DefaultAttribs', attributes: {}, priority: 0 });
});

test('attribute groups are listed by priority, then name', async (t) => {
  const s = await session(t);
  await s.call('POST', '/attribs', { name: 'b', priority: 1 });
  await s.call('POST', '/attribs', { name: 'a', priority: 1 });
  await s.call('POST', '/attribs', { name: 'z', priority: -1 });
  t.deepEqual((await s.call('GET', '/attribs')).body.data.map((g: { name: string }) => g.name), ['z', 'DefaultAttribs', 'a', 'b']);
});

for (const kind of ['bootconfig', 'image'] as const) {
  test(`a frozen ${kind} refuses every change and deletion until unfrozen`, async (t) => {
    const s = await session(t);
    await s.call('POST', `/${kind}s`, { name: 'gold', frozen: true });
    const frozen = `${kind} gold is frozen; PATCH {"frozen": false} first`;
    const attempts: Array<[string, string, unknown]> = [
      ['PATCH', `/${kind}/gold`, { description: 'x' }],
      ['PATCH', `/${kind}/gold`, { description: 'x', frozen: false }],
      ['PATCH', `/${kind}/gold`, { name: 'other' }],
      ['PUT', `/${kind}/gold`, { name: 'gold', frozen: true }],
      ['DELETE', `/${kind}/gold`, undefined],
    ];
    for (const [method, url, body] of attempts) {
      const res = await s.call(method, url, body);
      t.is(res.status, 403, `${method} ${JSON.stringify(body)}`);
      t.deepEqual(res.body, { success: false, error: frozen });
    }
    const upload = await s.call(
      'PUT',
      kind === 'bootconfig' ? '/bootconfig/gold/kernel' : '/image/gold/content',
      Buffer.from('data'),
      { 'content-type': 'application/octet-stream' },
    );
    t.is(upload.status, 403);
    t.is((await s.call('PATCH', `/${kind}/gold`, { frozen: true })).status, 200, 'freezing again changes nothing');
    const thawed = await s.call('PATCH', `/${kind}/gold`, { frozen: false });
    t.is(thawed.status, 200);
    t.false(thawed.body.data.frozen);
    t.is((await s.call('PATCH', `/${kind}/gold`, { description: 'x' })).status, 200);
    t.is((await s.call('DELETE', `/${kind}/gold`)).status, 200);
  });
}

test('an image used by a boot config cannot be deleted; a repo used by a distro neither', async (t) => {
  const s = await session(t);
  await s.call('POST', '/images', { name: 'img' });
  await s.call('POST', '/bootconfigs', { name: 'boot', image: 'img' });
  const res = await s.call('DELETE', '/image/img');
  t.is(res.status, 409);
  t.is(res.body.error, 'image img is used by bootconfig boot (image); change those first');
  await s.call('PATCH', '/bootconfig/boot', { image: null });
  t.is((await s.call('DELETE', '/image/img')).status, 200);

  await s.call('POST', '/repos', { name: 'base', urls: ['http://x/'] });
  await s.call('POST', '/distros', { name: 'd', repos: ['base'] });
  t.is((await s.call('DELETE', '/repo/base')).status, 409);
  // References follow renames.
  await s.call('PATCH', '/repo/base', { name: 'renamed' });
  t.deepEqual((await s.call('GET', '/distro/d')).body.data.repos, ['renamed']);
});

test('one net per subnet, and a net holding node addresses cannot go or shrink past them', async (t) => {
  const s = await session(t);
  t.is((await s.call('POST', '/nets', { name: 'a', first: '10.0.0.100', prefix: 24, last: '10.0.0.199' })).status, 201);
  const same = await s.call('POST', '/nets', { name: 'b', first: '10.0.0.200', prefix: 24, last: '10.0.0.250' });
  t.is(same.status, 409);
  t.is(same.body.error, 'net b: 10.0.0.0/24 is the subnet 10.0.0.0/24 of net a; one net per subnet');
  const wider = await s.call('POST', '/nets', { name: 'b', first: '10.0.0.10', prefix: 16 });
  t.is(wider.status, 409);
  t.regex(wider.body.error, /10.0.0.0\/16 overlaps the subnet 10.0.0.0\/24 of net a/);
  t.is((await s.call('POST', '/nets', { name: 'b', first: '10.0.1.10', prefix: 24 })).status, 201, 'the next subnet');

  await s.call('POST', '/nodes', { ip: '10.0.0.150' });
  const del = await s.call('DELETE', '/net/a');
  t.is(del.status, 409);
  t.is(del.body.error, 'net a still holds the addresses of n0; move or delete those nodes first');
  const shrink = await s.call('PATCH', '/net/a', { last: '10.0.0.120' });
  t.is(shrink.status, 409);
  t.regex(shrink.body.error, /would leave n0 outside every net/);
  t.is((await s.call('PATCH', '/net/a', { last: '10.0.0.160' })).status, 200);
});

const octet = { 'content-type': 'application/octet-stream' };

test('kernel upload: stored under boot/<uid>/, release from the bzImage header, downloadable', async (t) => {
  const s = await session(t);
  const boot = (await s.call('POST', '/bootconfigs', { name: 'boot' })).body.data;
  const kernel = fakeBzImage('6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC');
  const res = await s.call('PUT', '/bootconfig/boot/kernel', kernel, octet);
  t.is(res.status, 200, JSON.stringify(res.body));
  t.is(res.body.data.release, '6.1.0-18-amd64');
  t.like(res.body.data.kernel, { filename: 'vmlinuz-6.1.0-18-amd64', size: kernel.length });
  t.regex(res.body.data.kernel.checksum, /^sha256:[0-9a-f]{64}$/);
  const file = `${s.store.paths.bootDir}/${boot.uid}/kernel`;
  t.deepEqual(readFileSync(file), kernel);

  const initrd = fakeCpio();
  const ir = await s.call('PUT', '/bootconfig/boot/initramfs?filename=initramfs-custom.img', initrd, octet);
  t.is(ir.status, 200);
  t.like(ir.body.data.initramfs, { filename: 'initramfs-custom.img', size: initrd.length });
  t.is(ir.body.data.release, '6.1.0-18-amd64', 'an initramfs does not change the release');

  const down = await s.api.inject({ url: '/api/v1/bootconfig/boot/kernel', headers: s.auth });
  t.is(down.statusCode, 200);
  t.deepEqual(down.rawPayload, kernel);

  // A kernel without a bzImage header (an ELF vmlinux) keeps the release that was set.
  const plain = await s.call('PUT', '/bootconfig/boot/kernel', fakeVmlinux('6.9.9-other'), octet);
  t.is(plain.status, 200, JSON.stringify(plain.body));
  t.is(plain.body.data.release, '6.1.0-18-amd64');

  t.is((await s.call('DELETE', '/bootconfig/boot')).status, 200);
  t.false(existsSync(`${s.store.paths.bootDir}/${boot.uid}`));
});

test('uploads must be what they claim: a kernel is a bzImage or an ELF vmlinux, an initramfs a cpio archive', async (t) => {
  const s = await session(t);
  const boot = (await s.call('POST', '/bootconfigs', { name: 'boot', release: '1.0' })).body.data;
  const dir = `${s.store.paths.bootDir}/${boot.uid}`;
  const refusedKernels: Array<[Buffer, RegExp]> = [
    [Buffer.from('#!/bin/sh\necho this is not a kernel\n'), /^kernel: not a Linux kernel \(no bzImage header, not an ELF vmlinux\); nothing was stored$/],
    [Buffer.alloc(100_000, 0x41), /^kernel: not a Linux kernel/],
    [fakeCpio(), /^kernel: not a Linux kernel/],
    [(() => { const k = fakeBzImage('6.1.0'); k.writeUInt16LE(0, 0x20e); return k; })(), /^kernel: a bzImage header without a kernel version string/],
    [Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(70_000)]), /^kernel: an ELF file without a "Linux version " string, not a vmlinux/],
  ];
  for (const [bytes, error] of refusedKernels) {
    const res = await s.call('PUT', '/bootconfig/boot/kernel', bytes, octet);
    t.is(res.status, 400, bytes.subarray(0, 16).toString('hex'));
    t.regex(res.body.error, error);
  }
  const refusedInitramfs: Array<[Buffer, RegExp]> = [
    [Buffer.from('initramfs contents'), /^initramfs: not a cpio archive \("070701" newc\), nor gzip, xz, zstd or lz4 compressed; nothing was stored$/],
    [fakeBzImage('6.1.0'), /^initramfs: not a cpio archive/],
    [gzipSync(Buffer.from('plain text, gzipped')), /^initramfs: gzip data that is not a cpio archive/],
  ];
  for (const [bytes, error] of refusedInitramfs) {
    const res = await s.call('PUT', '/bootconfig/boot/initramfs', bytes, octet);
    t.is(res.status, 400);
    t.regex(res.body.error, error);
  }
  const after = (await s.call('GET', '/bootconfig/boot')).body.data;
  t.like(after, { kernel: null, initramfs: null, release: '1.0' }, 'the boot config is unchanged');
  t.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [], 'no file, no temporary file');

  t.is((await s.call('PUT', '/bootconfig/boot/kernel', fakeVmlinux('6.1.0-elf'), octet)).status, 200, 'an ELF vmlinux');
  for (const initramfs of [
    fakeCpio(),
    fakeInitramfs(),
    Buffer.concat([fakeCpio('kernel/x86/microcode/GenuineIntel.bin', 'ucode'), fakeInitramfs()]),
    Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(64)]),
    Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64)]),
    Buffer.concat([Buffer.from([0x02, 0x21, 0x4c, 0x18]), Buffer.alloc(64)]),
    Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18]), Buffer.alloc(64)]),
  ]) {
    t.is((await s.call('PUT', '/bootconfig/boot/initramfs', initramfs, octet)).status, 200, initramfs.subarray(0, 6).toString('hex'));
  }
  t.deepEqual(readdirSync(dir).sort(), ['initramfs', 'kernel']);
});

test('uploads: too large is 413, empty is 400, unknown target 404, bad filename 400; nothing is left behind', async (t) => {
  const s = await session(t, { uploadLimitBytes: 1024 });
  const boot = (await s.call('POST', '/bootconfigs', { name: 'boot' })).body.data;
  const big = await s.call('PUT', '/bootconfig/boot/kernel', Buffer.alloc(2048), octet);
  t.is(big.status, 413);
  t.is((await s.call('PUT', '/bootconfig/boot/kernel', Buffer.alloc(0), octet)).status, 400);
  t.is((await s.call('PUT', '/bootconfig/nope/kernel', Buffer.alloc(10), octet)).status, 404);
  t.is((await s.call('PUT', '/bootconfig/boot/kernel?filename=../x', Buffer.alloc(10), octet)).status, 400);
  t.is((await s.call('PUT', '/bootconfig/boot/kernel', { x: 1 })).status, 415, 'JSON is not an upload');
  t.is((await s.call('GET', '/bootconfig/boot')).body.data.kernel, null);
  const dir = `${s.store.paths.bootDir}/${boot.uid}`;
  t.deepEqual(existsSync(dir) ? (await import('node:fs')).readdirSync(dir) : [], []);
});

test('image content upload sets size and checksum', async (t) => {
  const s = await session(t);
  await s.call('POST', '/images', { name: 'img' });
  const content = Buffer.alloc(4096, 7);
  const res = await s.call('PUT', '/image/img/content', content, octet);
  t.is(res.status, 200);
  t.is(res.body.data.size, 4096);
  t.regex(res.body.data.checksum, /^sha256:[0-9a-f]{64}$/);
  const down = await s.api.inject({ url: '/api/v1/image/img/content', headers: s.auth });
  t.deepEqual(down.rawPayload, content);
});

test('clone copies a frozen boot config unfrozen, with its files; overrides apply', async (t) => {
  const s = await session(t);
  await s.call('POST', '/images', { name: 'img' });
  await s.call('POST', '/bootconfigs', { name: 'gold', image: 'img', cmdline: 'quiet' });
  const kernel = fakeBzImage('5.14.0-362.24.1.el9_3.x86_64 (mockbuild@x) #1 SMP');
  await s.call('PUT', '/bootconfig/gold/kernel', kernel, octet);
  await s.call('PATCH', '/bootconfig/gold', { frozen: true });
  const clone = await s.call('POST', '/bootconfig/gold/clone', { name: 'copy', cmdline: 'quiet console=ttyS1,115200' });
  t.is(clone.status, 201, JSON.stringify(clone.body));
  t.like(clone.body.data, {
    name: 'copy',
    image: 'img',
    cmdline: 'quiet console=ttyS1,115200',
    release: '5.14.0-362.24.1.el9_3.x86_64',
    frozen: false,
  });
  t.is(clone.body.data.kernel.checksum, (await s.call('GET', '/bootconfig/gold')).body.data.kernel.checksum);
  t.deepEqual(readFileSync(`${s.store.paths.bootDir}/${clone.body.data.uid}/kernel`), kernel);
  t.is((await s.call('POST', '/bootconfig/gold/clone', { name: 'copy' })).status, 409);
  t.is((await s.call('POST', '/bootconfig/gold/clone', {})).status, 400);
  t.is((await s.call('POST', '/attrib/DefaultAttribs/clone', { name: 'copy' })).status, 201);
});

test('what cannot boot is refused when written: cmdlines and _cmdline attributes with characters iPXE would interpret', async (t) => {
  const s = await session(t);
  await s.call('POST', '/bootconfigs', { name: 'boot', cmdline: 'quiet' });
  await s.call('POST', '/attribs', { name: 'gpu' });
  await s.call('POST', '/nodes', { mac: '52:54:00:00:00:01' });
  const cases: Array<[string, string]> = [
    ['quiet # note', '"#" (hash), which iPXE would interpret'],
    ['quiet loglevel=$level', '"$" (dollar), which iPXE would interpret'],
    ['quiet && rescue', '"&" (ampersand), which iPXE would interpret'],
    ['quiet || shell', '"|" (pipe), which iPXE would interpret'],
    ['quiet > x', '">" (greater-than), which iPXE would interpret'],
    ['quiet `reboot`', '"`" (backquote)'],
    ['quiet\u0007bell', '\\x07'],
    ['quiet\tx', '\\x09 (tab)'],
  ];
  for (const [cmdline, reason] of cases) {
    const boot = await s.call('PATCH', '/bootconfig/boot', { cmdline });
    t.is(boot.status, 400, cmdline);
    t.is(boot.body.error, `cmdline: invalid command line: command line contains ${reason}`);
    for (const [url, field] of [['/attrib/gpu', 'attributes._cmdline'], ['/node/n0', 'attributes._cmdline']] as const) {
      const res = await s.call('PATCH', url, { attributes: { _cmdline: cmdline } });
      t.is(res.status, 400, `${url} ${cmdline}`);
      // Attribute values refuse control characters themselves; the cmdline check names the rest.
      if (!/[\x00-\x1f]/.test(cmdline)) t.regex(res.body.error, new RegExp(`^${field.replace('.', '\\.')}: invalid value .*: command line contains ${reason.replace(/[$|()\\]/g, '\\$&')}$`));
    }
    const bulk = await s.call('PATCH', '/nodes', { ids: 'n0', set: { _cmdline: cmdline } });
    t.is(bulk.status, 400);
  }
  t.is((await s.call('GET', '/bootconfig/boot')).body.data.cmdline, 'quiet', 'nothing written');
  t.deepEqual((await s.call('GET', '/attrib/gpu')).body.data.attributes, {});
  t.deepEqual((await s.call('GET', '/node/n0')).body.data.attributes, {});
  t.is((await s.call('PATCH', '/node/n0', { attributes: { _cmdline: 'console=ttyS1,115200n8 quiet rd.break=pre-mount' } })).status, 200);
});
