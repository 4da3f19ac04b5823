// README's "Failover with Pacemaker" recipe, as far as it runs without a cluster: every `pcs -f cw.xml`
// line of it on a CIB file (pcs checks each agent's parameters against its meta-data, ours included),
// crm_verify on the result, and fence_ipmilan called as Pacemaker's fencer calls it (options on stdin,
// the password from a password script) against a real IPMI BMC, OpenIPMI's ipmi_sim.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IpmiSim, eventually, stopAllIpmiSims } from '../helpers/ipmi-sim.js';
import { requireTools } from '../helpers/tools.js';
import { ctl, repoRoot, tempDir } from './helpers.js';

const pcsTest = requireTools('pcs', 'cibadmin', 'crm_verify', 'root');
const fenceTest = requireTools('fence_ipmilan', 'ipmi_sim', 'ipmitool');
const work = tempDir('cw-pcs');
// Where pcs and crm_resource find ocf:cw:headnode (not configurable in Pacemaker 2.1).
const PROVIDER_DIR = '/usr/lib/ocf/resource.d/cw';
const agentWasInstalled = existsSync(join(PROVIDER_DIR, 'headnode'));
const providerWasThere = existsSync(PROVIDER_DIR);
const PASSWORD = `fence-${Math.random().toString(16).slice(2, 10)}`;
const bmc = new IpmiSim({ dir: join(work, 'bmc'), addr: '127.0.17.1', port: 6237, password: PASSWORD });

test.after.always(async () => {
  await stopAllIpmiSims();
  if (!agentWasInstalled) rmSync(providerWasThere ? join(PROVIDER_DIR, 'headnode') : PROVIDER_DIR, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/** The shell lines of README's block after the `pcs-recipe` marker. */
function recipeLines(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const block = /<!-- pcs-recipe[^>]*-->\n```sh\n([\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('README.md has no pcs-recipe block');
  return block[1]!.split('\n').filter((l) => l.trim() !== '');
}

/** A recipe line as argv: plain words only (the recipe quotes nothing, so a quote here is an error). */
function words(line: string): string[] {
  if (/["'\\$`;|&<>]/.test(line)) throw new Error(`recipe line needs a shell: ${line}`);
  return line.trim().split(/\s+/);
}

pcsTest.serial('every pcs -f line of the README recipe is accepted and crm_verify passes', async (t) => {
  const install = await ctl(['install-ocf']);
  t.is(install.exitCode, 0, install.all);
  const cib = join(work, 'cw.xml');
  // `pcs cluster cib cw.xml` needs a running cluster; an empty CIB stands in for the new cluster's.
  writeFileSync(cib, (await execa('cibadmin', ['--empty'])).stdout);
  const lines = recipeLines();
  const offline = lines.filter((l) => l.startsWith('pcs -f cw.xml ') || l.startsWith('crm_verify '));
  t.true(offline.length >= 9, lines.join('\n'));
  for (const line of offline) {
    const [file, ...args] = words(line);
    const r = await execa(file!, args, { cwd: work, reject: false, all: true });
    t.is(r.exitCode, 0, `${line}\n${r.all}`);
  }
  const xml = readFileSync(cib, 'utf8');
  // One group, members in the order they start: storage, address, appliance.
  const group = /<group id="cw">([\s\S]*?)<\/group>/.exec(xml)?.[1] ?? '';
  t.deepEqual([...group.matchAll(/<primitive id="([^"]+)"/g)].map((m) => m[1]), ['cw-storage', 'cw-ip', 'cw-head']);
  t.regex(group, /<primitive id="cw-head" class="ocf" type="headnode" provider="cw">/);
  t.regex(xml, /<primitive id="fence-h1" class="stonith" type="fence_ipmilan">/);
  t.regex(xml, /<rsc_location id="[^"]+" rsc="fence-h1" node="h1" score="-INFINITY"\/>/);
  // The BMC password is nowhere in the CIB, only the script that prints it.
  t.notRegex(xml, /name="password"/);
  t.regex(xml, /name="password_script" value="\/etc\/cw\/fence\/h1"/);
});

fenceTest.before(async () => {
  await bmc.start();
});

/** fence_ipmilan as pacemaker-fenced runs it: one `name=value` per line on stdin. */
function fence(action: string) {
  const script = join(work, 'fence-h1');
  writeFileSync(join(work, 'fence-h1.pass'), PASSWORD, { mode: 0o600 });
  writeFileSync(script, `#!/bin/sh\nexec cat '${join(work, 'fence-h1.pass')}'\n`, { mode: 0o700 });
  const options = {
    ip: bmc.addr,
    ipport: String(bmc.port),
    username: bmc.user,
    password_script: script,
    lanplus: '1',
    // Cipher suite 3, as every ipmi_sim test here uses (ipmitool warns about its default with ipmi_sim).
    cipher: '3',
    action,
  };
  const input = Object.entries(options).map(([k, v]) => `${k}=${v}\n`).join('');
  return execa('fence_ipmilan', [], { input, reject: false, all: true, timeout: 60_000 });
}

fenceTest.serial('fence_ipmilan reads, powers on and fences a real BMC with the password from a script', async (t) => {
  const off = await fence('status');
  t.regex(off.all ?? '', /Status: OFF/);
  // The fence agents' status convention: 0 on, 2 off.
  t.is(off.exitCode, 2, off.all);
  const on = await fence('on');
  t.is(on.exitCode, 0, on.all);
  t.true(await eventually(() => bmc.machineRunning()));
  const status = await fence('status');
  t.is(status.exitCode, 0, status.all);
  t.regex(status.all ?? '', /Status: ON/);
  // What Pacemaker does to a failed head with pcmk_reboot_action=off, or the first half of a reboot.
  const fenced = await fence('off');
  t.is(fenced.exitCode, 0, fenced.all);
  t.true(await eventually(() => !bmc.machineRunning()));
  t.regex((await bmc.ipmitool(['chassis', 'power', 'status'])).stdout, /Chassis Power is off/);
});
