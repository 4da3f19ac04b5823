// iPXE script rendering: per node and its inherited attributes, boot style choice, refusals, and values
// that could change what iPXE does never reaching a script.
import test from 'ava';
import { resolveAttributes as resolveChain, type ResolvedAttributes } from '../../../src/appliance/db/nodes.js';
import {
  cmdlineArgs,
  echoText,
  headUrlOf,
  IpxeValueError,
  nextServerUrl,
  renderBootstrapScript,
  renderNodeScript,
  renderRetryScript,
  type NodeScriptInput,
} from '../../../src/appliance/boot/ipxe/script.js';
import { resolveBootStyle } from '../../../src/appliance/boot/ipxe/style.js';
import { tempStore } from '../api/helpers.js';

const NODE_UID = 'a'.repeat(32);
const BOOT_UID = 'b'.repeat(32);
const IMAGE_UID = 'c'.repeat(32);
const HEAD = 'http://10.0.0.1:8080';
const SHA = 'd'.repeat(64);
const KERNEL_SHA = 'e'.repeat(64);
const INITRAMFS_SHA = 'f'.repeat(64);
const bootFile = (hex: string) => ({ filename: 'f', size: 1, checksum: `sha256:${hex}`, uploaded_at: '2026-01-01T00:00:00.000Z' });
const BOOT_FILES = { kernel: bootFile(KERNEL_SHA), initramfs: bootFile(INITRAMFS_SHA) };
const SECRET = 'q3V9-xN_0aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567';

function input(over: Partial<NodeScriptInput> = {}, attrs: Record<string, string> = {}): NodeScriptInput {
  return {
    node: { uid: NODE_UID, name: 'n0', mac: '52:54:00:00:00:01' },
    resolvedAttributes: Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, { value: v, from: 'node' as const }])),
    bootConfig: { ...BOOT_FILES, uid: BOOT_UID, name: 'DefaultBoot', cmdline: '', boot_style: 'rwram' },
    image: { uid: IMAGE_UID, name: 'DefaultImage', checksum: `sha256:${SHA}` },
    headUrl: HEAD,
    ...over,
  };
}

const kernelLine = (text: string): string => text.split('\n').find((l) => l.startsWith('kernel ')) ?? '';

/** The lines every script ends with, for a script of HEAD at /api/v1/boot/ipxe + `rest`. */
const failoverLines = (rest: string): string[] => [
  ':failover',
  `echo cw-headnode: no script from ${HEAD}, asking DHCP for a head node that answers`,
  ':failover_dhcp',
  'dhcp netX || goto failover_wait',
  'echo cw-headnode: asking head node ${netX/next-server}',
  `chain --replace --autofree http://\${netX/next-server}:8080/api/v1/boot/ipxe${rest} || goto failover_wait`,
  ':failover_wait',
  'echo cw-headnode: no script from any head node, asking DHCP again in 30 s',
  'sleep 30',
  'goto failover_dhcp',
];

test('the per-node script: kernel with initrd=initramfs and the cw.* parameters, initramfs, boot', (t) => {
  const script = renderNodeScript(input({ bootConfig: { ...BOOT_FILES, uid: BOOT_UID, name: 'DefaultBoot', cmdline: 'net.ifnames=0  quiet', boot_style: 'rwram' }, secret: SECRET }, { _cmdline: 'loglevel=3' }));
  t.is(script.refused, null);
  t.is(script.style, 'rwram');
  t.is(
    script.text,
    [
      '#!ipxe',
      'echo cw-headnode: n0 boots DefaultBoot (rwram)',
      `kernel --timeout 60000 ${HEAD}/blobs/${KERNEL_SHA} initrd=initramfs cw.node=n0 cw.uid=${NODE_UID} cw.mac=52:54:00:00:00:01 cw.head=${HEAD} cw.image=/blobs/${SHA} ` +
        `cw.sha256=${SHA} cw.style=rwram cw.rw=overlayfs cw.secret=${SECRET} console=tty0 console=ttyS0,115200 net.ifnames=0 quiet loglevel=3 || goto failed`,
      `initrd --name initramfs --timeout 60000 ${HEAD}/blobs/${INITRAMFS_SHA} || goto failed`,
      'boot || goto failed',
      ':failed',
      'echo cw-headnode: n0 could not load or start the kernel of DefaultBoot, asking again in 30 s',
      'sleep 30',
      `chain --replace --autofree ${HEAD}/api/v1/boot/ipxe/52:54:00:00:00:01 || goto failover`,
      ...failoverLines('/52:54:00:00:00:01'),
      '',
    ].join('\n'),
  );
  // A node booting from another of its NICs is asked again at the URL it used, by any head node.
  t.true(renderNodeScript(input({ mac: '52-54-00-00-00-0A' })).text.endsWith(`chain --replace --autofree ${HEAD}/api/v1/boot/ipxe/52:54:00:00:00:0a || goto failover\n${[...failoverLines('/52:54:00:00:00:0a'), ''].join('\n')}`));
});

test('the node secret goes on the kernel command line after the cw.* parameters; without one the script says so', (t) => {
  const withSecret = renderNodeScript(input({ secret: SECRET }));
  t.is(withSecret.refused, null);
  t.regex(kernelLine(withSecret.text), new RegExp(` cw\\.sha256=${SHA} cw\\.style=rwram cw\\.rw=overlayfs cw\\.secret=${SECRET} console=tty0 `));
  t.false(withSecret.text.includes('no node secret'));
  const without = renderNodeScript(input({ secret: null }));
  t.false(without.text.includes('cw.secret'));
  t.regex(without.text, /^echo cw-headnode: no node secret: this script was not asked for from the address of n0, so its reports will be refused$/m);
});

test('boot style: _boot_style (node > groups > DefaultAttribs) wins over the boot config, rwram by default', async (t) => {
  const store = tempStore();
  t.teardown(() => store.close());
  await store.update('attribs', 'DefaultAttribs', { attributes: { _boot_style: 'roram', _cmdline: 'from=default' } });
  await store.create('attribs', { name: 'gpu', attributes: { _boot_style: 'rwram', _boot_rw_layer: 'overlayfs' } });
  await store.create('attribs', { name: 'later', attributes: { _boot_style: 'roram', _cmdline: 'from=later' } });
  const plain = await store.createNode({ mac: '52:54:00:00:00:01' });
  const grouped = await store.createNode({ mac: '52:54:00:00:00:02', groups: ['gpu', 'later'] });
  const own = await store.createNode({ mac: '52:54:00:00:00:03', groups: ['gpu'], attributes: { _boot_style: 'roram', _cmdline: 'from=node' } });

  const scriptOf = async (node: typeof plain, bootStyle: 'rwram' | 'roram' = 'rwram') =>
    renderNodeScript({ ...input(), node, resolvedAttributes: await store.resolveAttributes(node), bootConfig: { ...BOOT_FILES, uid: BOOT_UID, name: 'B', cmdline: '', boot_style: bootStyle } });

  const p = await scriptOf(plain);
  t.regex(kernelLine(p.text), / cw\.node=n0 .* cw\.style=roram cw\.rw=overlayfs .* from=default \|\| goto failed$/, 'DefaultAttribs');
  const g = await scriptOf(grouped);
  t.regex(kernelLine(g.text), / cw\.style=rwram .* from=later \|\| goto failed$/, 'the first group that sets it; _cmdline from a later group');
  const o = await scriptOf(own);
  t.regex(kernelLine(o.text), / cw\.style=roram .* from=node \|\| goto failed$/, 'the node\'s own');

  await store.update('attribs', 'DefaultAttribs', { attributes: { _boot_style: null } });
  t.regex(kernelLine((await scriptOf(plain, 'roram')).text), / cw\.style=roram /, 'the boot config when no attribute says');
  t.regex(kernelLine((await scriptOf(plain)).text), / cw\.style=rwram /);
  t.deepEqual(resolveBootStyle({}, null), { ok: true, style: 'rwram', rw: 'overlayfs', from: 'the default' });
});

test('inheritance as the store resolves it feeds the script unchanged', (t) => {
  const attrs: ResolvedAttributes = resolveChain({}, [{ name: 'g', attributes: { _boot_rw_layer: 'rwtab' } }], { name: 'DefaultAttribs', attributes: { _boot_style: 'rwram' } });
  const script = renderNodeScript({ ...input(), resolvedAttributes: attrs });
  t.regex(kernelLine(script.text), / cw\.style=rwram cw\.rw=rwtab /, 'rwtab with rwram is passed on (the root is writable anyway)');
});

test('styles not yet supported, and roram with rwtab, get a script that says so and asks again', (t) => {
  for (const style of ['iscsi', 'disked', 'live', 'next', 'sanboot'] as const) {
    const byAttr = renderNodeScript(input({}, { _boot_style: style }));
    t.is(byAttr.refused, `n0: boot style ${style} is not yet supported`);
    t.is(
      byAttr.text,
      [
        '#!ipxe',
        `echo cw-headnode: n0: boot style ${style} is not yet supported`,
        'echo cw-headnode: asking again in 30 s',
        'sleep 30',
        `chain --replace --autofree ${HEAD}/api/v1/boot/ipxe/52:54:00:00:00:01 || goto failover`,
        ...failoverLines('/52:54:00:00:00:01'),
        '',
      ].join('\n'),
    );
    const byConfig = renderNodeScript(input({ bootConfig: { ...BOOT_FILES, uid: BOOT_UID, name: 'B', cmdline: '', boot_style: style } }));
    t.is(byConfig.refused, `n0: boot style ${style} is not yet supported`);
    t.false(byConfig.text.includes('kernel '));
  }
  const rwtab = renderNodeScript(input({}, { _boot_style: 'roram', _boot_rw_layer: 'rwtab' }));
  t.is(rwtab.refused, 'n0: boot style roram with _boot_rw_layer=rwtab is not yet supported');
  t.false(rwtab.text.includes('kernel '));
});

test('hostile values never reach a script: the node is told why and asked again', (t) => {
  const hostile = [
    'quiet || shell',
    'quiet && goto x',
    'root=${net0/ip}',
    'a=1 # comment',
    'quiet\nshell',
    'quiet"',
    "quiet'",
    'quiet;reboot',
    'x{y}',
    'back\\slash',
    `a${'\u202e'}b`,
    'x'.repeat(3000),
  ];
  for (const cmdline of hostile) {
    const viaConfig = renderNodeScript(input({ bootConfig: { ...BOOT_FILES, uid: BOOT_UID, name: 'B', cmdline, boot_style: 'rwram' } }));
    t.regex(viaConfig.refused ?? '', /^n0 cannot boot: boot config B cmdline: /, JSON.stringify(cmdline));
    const viaAttr = renderNodeScript(input({}, { _cmdline: cmdline }));
    t.regex(viaAttr.refused ?? '', /^n0 cannot boot: _cmdline attribute of n0: /, JSON.stringify(cmdline));
    for (const script of [viaConfig.text, viaAttr.text]) {
      t.false(script.includes('kernel '));
      const lines = script.split('\n');
      t.is(lines.length, 6 + failoverLines('').length, 'no line smuggled in');
      t.notRegex(lines[1] ?? '', /[$|&#"'\\;{}]/, 'the echo line is inert');
    }
  }
  const badValues: Array<Partial<NodeScriptInput>> = [
    { node: { uid: NODE_UID, name: 'n0 || shell', mac: '52:54:00:00:00:01' } },
    { node: { uid: 'not-a-uid', name: 'n0', mac: '52:54:00:00:00:01' } },
    { bootConfig: { ...BOOT_FILES, uid: BOOT_UID, name: 'B${x}', cmdline: '', boot_style: 'rwram' } },
    { bootConfig: { ...BOOT_FILES, uid: `${BOOT_UID}/../x`, name: 'B', cmdline: '', boot_style: 'rwram' } },
    { bootConfig: { ...BOOT_FILES, kernel: null, uid: BOOT_UID, name: 'B', cmdline: '', boot_style: 'rwram' } },
    { bootConfig: { ...BOOT_FILES, initramfs: { ...bootFile(INITRAMFS_SHA), checksum: `sha256:${INITRAMFS_SHA}/../x` }, uid: BOOT_UID, name: 'B', cmdline: '', boot_style: 'rwram' } },
    { image: { uid: 'C'.repeat(32), name: 'i', checksum: `sha256:${SHA}` } },
    { image: { uid: IMAGE_UID, name: 'i', checksum: null } },
    { image: { uid: IMAGE_UID, name: 'i', checksum: `md5:${'0'.repeat(32)}` } },
    { image: { uid: IMAGE_UID, name: 'i', checksum: `sha256:${SHA} quiet` } },
    { secret: 'short' },
    { secret: `${SECRET.slice(0, 42)}$` },
    { secret: `${SECRET.slice(0, 40)} x=` },
  ];
  for (const bad of badValues) {
    const script = renderNodeScript(input(bad));
    t.truthy(script.refused, JSON.stringify(bad));
    t.false(/^kernel /m.test(script.text), script.text);
  }
  t.throws(() => renderNodeScript(input({ headUrl: 'http://x y' })), { instanceOf: IpxeValueError });
  t.throws(() => renderNodeScript(input({ headUrl: 'http://10.0.0.1/${x}' })), { instanceOf: IpxeValueError });
  t.throws(() => renderNodeScript(input({ mac: 'zz' })), { instanceOf: IpxeValueError });
  t.is(cmdlineArgs('  console=ttyS1,115200n8   quiet ', 'x'), 'console=ttyS1,115200n8 quiet');
  t.is(echoText('a "b" $c | d & e # f\n'), 'a b ?c ? d ? e ? f?');
});

test('head URL from the Host header: host[:port] only', (t) => {
  t.is(headUrlOf('10.0.0.1'), 'http://10.0.0.1');
  t.is(headUrlOf('10.0.0.1:8080'), 'http://10.0.0.1:8080');
  t.is(headUrlOf('Head.Example'), 'http://head.example');
  t.is(headUrlOf('[fd00::1]:80'), 'http://[fd00::1]:80');
  for (const bad of [undefined, '', 'a b', 'a/b', 'x:0', 'x:65536', 'x:8080:1', 'x${y}', 'user@x', 'x;y', '-x', 'x'.repeat(300)]) {
    t.is(headUrlOf(bad), null, String(bad));
  }
});

test('bootstrap and retry scripts', (t) => {
  // Without a port in the head URL, none for the head node that answers DHCP either.
  const failover = (rest: string): string =>
    ':failover\necho cw-headnode: no script from http://10.0.0.1, asking DHCP for a head node that answers\n:failover_dhcp\ndhcp netX || goto failover_wait\n' +
    `echo cw-headnode: asking head node \${netX/next-server}\nchain --replace --autofree http://\${netX/next-server}/api/v1/boot/ipxe${rest} || goto failover_wait\n` +
    ':failover_wait\necho cw-headnode: no script from any head node, asking DHCP again in 30 s\nsleep 30\ngoto failover_dhcp\n';
  t.is(
    renderBootstrapScript('http://10.0.0.1'),
    `#!ipxe\necho cw-headnode: asking for the boot script of \${netX/mac}\nchain --replace --autofree http://10.0.0.1/api/v1/boot/ipxe/\${netX/mac} || goto failover\n${failover('/${netX/mac}')}`,
  );
  t.throws(() => renderBootstrapScript('http://10.0.0.1/x'), { instanceOf: IpxeValueError });
  const retry = renderRetryScript('unknown MAC 52:54:00:00:00:09', 'http://10.0.0.1/api/v1/boot/ipxe/52-54-00-00-00-09');
  t.is(
    retry,
    '#!ipxe\necho cw-headnode: unknown MAC 52:54:00:00:00:09\necho cw-headnode: asking again in 30 s\nsleep 30\n' +
      `chain --replace --autofree http://10.0.0.1/api/v1/boot/ipxe/52:54:00:00:00:09 || goto failover\n${failover('/52:54:00:00:00:09')}`,
  );
  t.true(renderRetryScript('x', 'http://10.0.0.1/api/v1/boot/ipxe').endsWith(`chain --replace --autofree http://10.0.0.1/api/v1/boot/ipxe || goto failover\n${failover('')}`));
  for (const url of ['http://10.0.0.1/other', 'http://10.0.0.1/api/v1/boot/ipxe/zz', 'http://a b/api/v1/boot/ipxe', 'ftp://x/api/v1/boot/ipxe']) {
    t.throws(() => renderRetryScript('x', url), { instanceOf: IpxeValueError }, url);
  }
});

test('failover: the head node that answers DHCP is asked on the port of the one that went away', (t) => {
  t.is(nextServerUrl('http://10.0.0.1'), 'http://${netX/next-server}');
  t.is(nextServerUrl('http://10.0.0.1:8080'), 'http://${netX/next-server}:8080');
  t.is(nextServerUrl('http://head.example:80'), 'http://${netX/next-server}:80');
  t.is(nextServerUrl('http://[fd00::1]:8080'), 'http://${netX/next-server}:8080');
  for (const bad of ['http://10.0.0.1/x', 'http://x:8080:1', 'ftp://10.0.0.1', 'http://x${y}']) t.throws(() => nextServerUrl(bad), { instanceOf: IpxeValueError }, bad);
  // Every script that chains ends in the loop: it never stops while no head node answers.
  const scripts = [renderBootstrapScript(HEAD), renderRetryScript('x', `${HEAD}/api/v1/boot/ipxe`), renderNodeScript(input()).text, renderNodeScript(input({}, { _boot_style: 'iscsi' })).text];
  for (const text of scripts) {
    const lines = text.trimEnd().split('\n');
    t.deepEqual(lines.slice(-failoverLines('').length).map((l) => l.replace(/(ipxe)\S*( \|\| goto failover_wait)$/, '$1$2')), failoverLines(''), text);
    t.is(lines.filter((l) => l.startsWith('chain ')).length, 2, text);
    t.true(lines.filter((l) => l.startsWith('chain ')).every((l) => / \|\| goto failover(?:_wait)?$/.test(l)), text);
  }
});

test('a refused command line is named on the console too, although echo cannot show the character', (t) => {
  const script = renderNodeScript(input({ bootConfig: { ...BOOT_FILES, uid: BOOT_UID, name: 'B', cmdline: 'quiet # note', boot_style: 'rwram' } }));
  t.is(script.refused, 'n0 cannot boot: boot config B cmdline: command line contains "#" (hash), which iPXE would interpret');
  t.true(script.text.includes('echo cw-headnode: n0 cannot boot: boot config B cmdline: command line contains ? (hash), which iPXE would interpret\n'), script.text);
});
