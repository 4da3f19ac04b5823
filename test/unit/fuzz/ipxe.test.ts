// Fuzzing the iPXE script renderer: arbitrary Host headers, names, uids, MACs, command lines, boot
// styles and refusal reasons. With the head URL and MAC the route hands it (headUrlOf, normalizeMac)
// the renderer never throws, and no input character reaches a script where iPXE would interpret it:
// the only `$`, `|`, `&` and `#` in a script are the renderer's own (`#!ipxe`, `|| goto failed` and the
// failover labels, `${netX/mac}`, `${netX/next-server}`), there are no quotes, braces, backslashes, `;`,
// `<`, `>` or control characters, and every line is one of the commands the renderer writes.
import test from 'ava';
import fc from 'fast-check';
import { headUrlOf, IpxeValueError, renderBootstrapScript, renderNodeScript, renderRetryScript, nodeScriptUrl, bootstrapUrl, type NodeScriptInput } from '../../../src/appliance/boot/ipxe/script.js';
import { normalizeMac } from '../../../src/lib/validate.js';
import { budget, nastyText, timed } from './budget.js';

const junk = fc.oneof(nastyText(40), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('${root-path}', 'a || shell', 'x && y', '#x', 'quiet\nshell', 'a"b', '`id`'));
/** A `sha256:<hex>` checksum, or junk, or none. */
const checksum = () =>
  fc.oneof(
    { arbitrary: fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }).map((h) => `sha256:${h}`), weight: 4 },
    { arbitrary: fc.option(junk, { nil: null }), weight: 1 },
  );
const name = fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/) }, { weight: 1, arbitrary: junk });
const uid = fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[0-9a-f]{32}$/) }, { weight: 1, arbitrary: junk });
const cmdline = fc.oneof(fc.stringMatching(/^[\x20-\x7e]{0,60}$/), fc.constantFrom('', 'quiet  loglevel=3', 'console=ttyS0,115200'), junk);
const style = fc.oneof(fc.constantFrom('rwram', 'roram', 'rwram', 'roram', 'iscsi', 'next', 'overlayfs', 'rwtab'), junk);
const hexPair = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const mac = fc.oneof(fc.tuple(fc.array(hexPair, { minLength: 6, maxLength: 6 }), fc.constantFrom(':', '-')).map(([p, sep]) => p.join(sep)), junk);
const host = fc.oneof(
  fc.tuple(fc.ipV4(), fc.option(fc.integer({ min: 0, max: 70000 }), { nil: undefined })).map(([ip, port]) => (port === undefined ? ip : `${ip}:${port}`)),
  fc.domain(),
  fc.constantFrom('[fe80::1]:8080', 'head', 'HEAD.example:80', 'a b', 'x${y}', ''),
  junk,
);
const attr = (value: fc.Arbitrary<string>) => fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.tuple(value, fc.constantFrom('node', 'group'), name).map(([v, from, group]) => (from === 'node' ? { value: v, from: 'node' as const } : { value: v, from: 'group' as const, group })) });

/** The renderer's own uses of iPXE's special characters, removed before looking for any other. */
const OWN_TOKENS = [/^#!ipxe\n/, / \|\| goto (?:failed|failover|failover_wait)$/gm, /\$\{netX\/mac\}/g, /\$\{netX\/next-server\}/g];
const FORBIDDEN = /[$|&#<>"'`;{}\\]|[^\x20-\x7e\n]/;
const LINE_RE =
  /^(?:#!ipxe|echo cw-headnode: .*|(?:kernel --timeout \d+ \S+ .*|initrd --name initramfs --timeout \d+ \S+|boot) \|\| goto failed|:failed|sleep \d+|chain --replace --autofree \S+ \|\| goto failover(?:_wait)?|:failover(?:_dhcp|_wait)?|dhcp netX \|\| goto failover_wait|goto failover_dhcp)$/;

function checkScript(text: string): void {
  let rest = text;
  for (const token of OWN_TOKENS) rest = rest.replace(token, '');
  const bad = FORBIDDEN.exec(rest);
  if (bad) throw new Error(`script holds ${JSON.stringify(bad[0])}:\n${text}`);
  if (!text.startsWith('#!ipxe\n') || !text.endsWith('\n')) throw new Error(`not an iPXE script:\n${text}`);
  for (const line of text.slice(0, -1).split('\n')) if (!LINE_RE.test(line)) throw new Error(`unexpected line ${JSON.stringify(line)}`);
}

test('iPXE fuzz: scripts never throw for the route\'s head URL and MAC, and carry no character iPXE would interpret', (t) => {
  let booting = 0;
  let refused = 0;
  fc.assert(
    fc.property(
      host,
      mac,
      fc.record({ uid, name, mac: fc.option(mac, { nil: null }) }),
      fc.record({
        uid,
        name,
        cmdline: fc.option(cmdline, { nil: null }),
        boot_style: fc.option(style, { nil: null }),
        kernel: fc.option(fc.record({ filename: name, size: fc.nat(), checksum: checksum(), uploaded_at: fc.constant('2026-01-01T00:00:00.000Z') }), { nil: null, freq: 8 }),
        initramfs: fc.option(fc.record({ filename: name, size: fc.nat(), checksum: checksum(), uploaded_at: fc.constant('2026-01-01T00:00:00.000Z') }), { nil: null, freq: 8 }),
      }),
      fc.record({ uid, name, checksum: checksum() }),
      fc.record({ _cmdline: attr(cmdline), _boot_style: attr(style), _boot_rw_layer: attr(fc.oneof(fc.constantFrom('overlayfs', 'rwtab'), junk)) }),
      junk,
      fc.option(fc.oneof(fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), minLength: 43, maxLength: 43 }), junk), { nil: null }),
      (hostHeader, rawMac, node, bootConfig, image, attrs, reason, secret) => {
        const headUrl = headUrlOf(hostHeader);
        if (headUrl === null) return;
        checkScript(timed('renderBootstrapScript', () => renderBootstrapScript(headUrl)));
        checkScript(renderRetryScript(reason, bootstrapUrl(headUrl)));
        const mac = normalizeMac(rawMac);
        if (mac === null) return;
        checkScript(renderRetryScript(reason, nodeScriptUrl(headUrl, mac)));
        const resolvedAttributes = Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined)) as NodeScriptInput['resolvedAttributes'];
        const script = timed('renderNodeScript', () => renderNodeScript({ node, bootConfig, image, resolvedAttributes, headUrl, mac, secret } as NodeScriptInput));
        checkScript(script.text);
        if (script.refused === null) booting++;
        else refused++;
      },
    ),
    budget(0.1, 5000),
  );
  t.log(`${booting} scripts boot, ${refused} refuse`);
  t.true(booting > 0);
});

test('iPXE fuzz: any head URL or MAC is either usable or an IpxeValueError', (t) => {
  fc.assert(
    fc.property(fc.oneof(host.map((h) => `http://${h}`), junk), mac, junk, (headUrl, rawMac, reason) => {
      for (const render of [() => renderBootstrapScript(headUrl), () => renderRetryScript(reason, `${headUrl}/api/v1/boot/ipxe/${rawMac}`)]) {
        try {
          checkScript(render());
        } catch (err) {
          if (!(err instanceof IpxeValueError)) throw err;
        }
      }
    }),
    budget(0.04, 3000),
  );
  t.pass();
});
