// Fuzzing the dhcpd.conf renderer through its model checker: arbitrary values in names, MACs and
// addresses, beside valid-looking networks and hosts. A model is either refused with a DhcpModelError or
// rendered into a config that the real `dhcpd -t` accepts (checked on a sample, to bound the time).
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { DhcpModelError, type DhcpHost, type DhcpNet } from '../../../src/appliance/dhcp/model.js';
import { renderDhcpSections, type DhcpRenderOptions } from '../../../src/appliance/dhcp/render.js';
import { intToIp, ipToInt, networkOf, prefixToNetmask } from '../../../src/lib/ipv4.js';
import { requireTools, toolPath } from '../../helpers/tools.js';
import { budget, nastyText, timed } from './budget.js';

const dhcpdTest = requireTools('dhcpd');
const DHCPD = toolPath('dhcpd');
/** Rendered configs handed to `dhcpd -t` per run (each check takes a few tens of milliseconds). */
const DHCPD_SAMPLE = 40;

const junk = fc.oneof(nastyText(40), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('', ' ', 'x; }', '"', '10.0.0.1; deny booting', '}{', '#', '\n'));
/** Names dhcpd could misread, yet valid for the cluster: dots, leading digits, keywords. */
const name = fc.oneof(
  { weight: 40, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/) },
  { weight: 20, arbitrary: fc.constantFrom('subnet', 'host', 'option', 'deny', 'a..b', 'n0.', '9-', 'x.-y', '0x1f', '123', 'a'.repeat(63), 'n0') },
  { weight: 1, arbitrary: junk },
);
const hexPair = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const mac = fc.oneof(
  // Mostly unicast (the low bit of the first byte clear), now and then multicast or all-zero.
  { weight: 60, arbitrary: fc.tuple(fc.integer({ min: 0, max: 127 }).map((n) => (n * 2).toString(16).padStart(2, '0')), fc.array(hexPair, { minLength: 5, maxLength: 5 }), fc.constantFrom(':', '-'), fc.boolean()).map(([first, p, sep, up]) => { const text = [first, ...p].join(sep); return up ? text.toUpperCase() : text; }) },
  { weight: 1, arbitrary: fc.constantFrom('01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00', '52:54:00:00:00:01') },
  { weight: 1, arbitrary: junk },
);

/** undefined mostly, a value from `arb` now and then (fc.option's freq is the chance of the nil side). */
function rarely<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: 25, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
}

interface NetPlan {
  net: DhcpNet;
  /** Addresses usable for hosts, the head node and the gateway. */
  pick: (n: number) => string;
}

/** A valid-looking network (then spoiled in a field now and then) and a way to pick addresses in it. */
const net: fc.Arbitrary<NetPlan> = fc
  .tuple(
    fc.ipV4(),
    fc.integer({ min: 8, max: 30 }),
    fc.nat(),
    fc.nat(),
    name,
    fc.boolean(),
    fc.option(fc.nat(), { nil: undefined }),
    rarely(fc.constantFrom<[keyof DhcpNet, unknown]>(['network', '10.0.0.1'], ['netmask', '255.0.255.0'], ['first', 'x'], ['last', '999.1.1.1'], ['prefix', 33], ['prefix', 0.5], ['dynamic', 'yes'], ['gateway', '1.1.1.1'], ['first', '10.0.0.0; }'])),
  )
  .map(([ip, prefix, a, b, netName, dynamic, gw, spoil]) => {
    const network = networkOf(ip, prefix);
    const size = 2 ** (32 - prefix) - 2;
    const at = (n: number) => intToIp(network + 1 + (n % size));
    const [lo, hi] = [a % size, b % size].sort((x, y) => x - y) as [number, number];
    const base: DhcpNet = {
      name: netName,
      network: intToIp(network),
      prefix,
      netmask: prefixToNetmask(prefix),
      first: at(lo),
      last: at(hi),
      dynamic,
      ...(gw !== undefined ? { gateway: at(gw) } : {}),
    };
    const spoiled = spoil ? ({ ...base, [spoil[0]]: spoil[1] } as DhcpNet) : base;
    return { net: spoiled, pick: at };
  });

const model = fc
  .tuple(
    fc.array(net, { minLength: 0, maxLength: 3 }),
    fc.array(fc.tuple(name, mac, fc.nat(), fc.nat(), rarely(junk)), { maxLength: 25 }),
    fc.nat(),
    fc.oneof({ weight: 30, arbitrary: fc.integer({ min: 1, max: 65535 }) }, { weight: 1, arbitrary: fc.constantFrom(80, 0, 70000, 80.5) }),
    fc.boolean(),
  )
  .map(([plans, rawHosts, headAt, httpPort, listen]) => {
    const hosts: DhcpHost[] = rawHosts.map(([n, m, which, at, badIp]) => {
      const plan = plans[which % Math.max(1, plans.length)];
      return { name: n, mac: m, ip: badIp ?? (plan ? plan.pick(at) : intToIp(at >>> 0)) };
    });
    const heads = plans.map((p) => p.pick(headAt));
    const options: DhcpRenderOptions = {
      boot: { headAddresses: heads, httpPort },
      reserved: heads,
      ...(listen ? { listenOnly: [{ network: '192.168.77.0', prefix: 24, note: 'eth9 192.168.77.1/24' }] } : {}),
    };
    return { nets: plans.map((p) => p.net), hosts, options };
  });

const CONTROL_RE = /[\0-\x09\x0b-\x1f\x7f]/;

dhcpdTest('dhcpd fuzz: a model is refused with a DhcpModelError or rendered into a config dhcpd -t accepts', async (t) => {
  const template = await readFile(new URL('../../../rootfs/etc/cw/templates/dhcpd.conf.template', import.meta.url), 'utf8');
  const sample: string[] = [];
  let accepted = 0;
  let refused = 0;
  fc.assert(
    fc.property(model, fc.boolean(), (input, declareArch) => {
      let sections;
      try {
        sections = timed('renderDhcpSections', () => renderDhcpSections(input, declareArch));
      } catch (err) {
        if (!(err instanceof DhcpModelError)) throw err;
        refused++;
        return;
      }
      const text = template
        .replace('option arch code 93 = unsigned integer 16;', declareArch ? '' : 'option arch code 93 = unsigned integer 16;')
        .replace('{{subnets}}', sections.subnets.text)
        .replace('{{hosts}}', sections.hosts.text);
      if (CONTROL_RE.test(text)) throw new Error('control character in the rendered config');
      if (/[^\x20-\x7e\n]/.test(sections.subnets.text + sections.hosts.text)) throw new Error('non-ASCII character in the generated part');
      accepted++;
      // Reservoir sample: every accepted model has the same chance to be checked by dhcpd.
      if (sample.length < DHCPD_SAMPLE) sample.push(text);
      else {
        const k = Math.floor(Math.random() * accepted);
        if (k < DHCPD_SAMPLE) sample[k] = text;
      }
    }),
    budget(0.2, 4000),
  );
  t.log(`${accepted} models rendered, ${refused} refused; dhcpd -t checks ${sample.length}`);
  t.true(sample.length > 0, 'some models were rendered');

  const dir = await mkdtemp(path.join(tmpdir(), 'cw-fuzz-dhcpd-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = promisify(execFile);
  const failures: string[] = [];
  for (const [i, text] of sample.entries()) {
    const file = path.join(dir, `dhcpd-${i}.conf`);
    await writeFile(file, text);
    await run(DHCPD, ['-t', '-4', '-cf', file], { timeout: 20_000 }).catch((err: { stderr?: string }) => {
      failures.push(`${file}:\n${err.stderr ?? String(err)}\n${text}`);
    });
  }
  t.deepEqual(failures, []);
});
