// A real BMC driving a real VM, through the appliance: OpenIPMI's ipmi_sim is the BMC of a qemu (TCG)
// VM — its `startcmd` is the VM, and qemu's `ipmi-bmc-extern` + `isa-ipmi-kcs` connect back to its VM
// channel — on the test bridge of a running appliance. `cw-nodectl power` asks the appliance, whose own
// IPMI client asks ipmi_sim: off; on, and the VM PXE-boots DefaultImage through the appliance to `up`; off
// again, and the VM is gone and the node goes `down`. ipmi_sim listens on the host's address in the
// test's own docker network (its gateway), so the VM it starts can use the host's tap on that bridge.
// The VM's serial port is a socket that ipmi_sim's serial-over-LAN connects to (qemu also copies it to a
// file the test watches); the appliance's console log worker holds the SOL session from before power on,
// so the node's console log gets the boot lines. exec then runs on the VM and on 7 sshds in namespaces.
import test from 'ava';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, IpmiSim, stopAllIpmiSims } from '../helpers/ipmi-sim.js';
import { startNamespacedSshd } from '../helpers/sshd.js';
import { requireTools } from '../helpers/tools.js';
import { AdminSession, sh, startOnTestBridge, TestHost, tempDir, unmountUnder, waitFor } from './helpers.js';
import type { ResultPromise } from 'execa';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const vmTest = requireTools('qemu-system-x86_64', 'ipmi_sim', 'ipmitool', 'ip', 'debootstrap', 'mksquashfs', 'sshd', 'unshare', 'curl');
const NET = 'cwbv0';
const SUBNET = '10.213.41.0/24';
const HEAD_IP = '10.213.41.10';
/** The host's address on the test network (docker gives the bridge the subnet's first address). */
const BMC_IP = '10.213.41.1';
const NAME = 'cwit-bmcvm';
const TAP = 'cwbvtap0';
const N0_MAC = '52:54:00:5b:41:01';
// Frames between the tap and the appliance cross the docker bridge (see netboot.test.ts).
const FORWARD_RULE = ['FORWARD', '-i', NET, '-o', NET, '-m', 'comment', '--comment', 'cwit-bmcvm', '-j', 'ACCEPT'];
const PASSWORD = `Bv${Math.random().toString(16).slice(2, 10)}`;

const work = tempDir('cwbv');
const storage = join(work, 'cw_container_storage');
const home = tempDir('cwbv-home');
const workspace = join(home, 'ws');
const serialLog = join(work, 'serial.log');
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`, { 'modimg.workspace': workspace });
const vmChannel = { addr: '127.0.0.1', port: 9741 };
/** The VM's serial port: qemu listens here (and logs to serialLog), ipmi_sim's SOL connects to it. */
const SERIAL_PORT = 9742;
/** 7 more exec targets: sshds in namespaces on the test bridge, named n1..n7. */
const others = Array.from({ length: 7 }, (_, k) => new TestHost(`cwbvn${k + 1}`, NET, `10.213.41.${201 + k}/24`, `52:54:00:5b:41:${(0x11 + k).toString(16)}`));
const sshds: ResultPromise[] = [];
const bmc = new IpmiSim({
  dir: join(work, 'bmc'),
  addr: BMC_IP,
  password: PASSWORD,
  vm: vmChannel,
  // The NIC boot ROMs of ipxe-qemu live outside qemu's data directory (see netboot.test.ts).
  machine: [
    'qemu-system-x86_64', '-L', '/usr/lib/ipxe/qemu', '-L', '/usr/share/qemu', '-accel', 'tcg', '-m', '1536', '-smp', '2',
    '-nographic', '-display', 'none', '-monitor', 'none',
    '-chardev', `socket,id=ser0,host=127.0.0.1,port=${SERIAL_PORT},server=on,wait=off,logfile=${serialLog}`, '-serial', 'chardev:ser0',
    '-netdev', `tap,id=n0,ifname=${TAP},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${N0_MAC},bootindex=1`, '-boot', 'n',
    ...IpmiSim.qemuArgs(vmChannel),
  ],
  // ipmi_sim connects to the VM's serial socket, retrying every 10 s while no VM runs.
  sol: `tcp:127.0.0.1:${SERIAL_PORT}`,
});
const tool = (name: string, args: string[], timeout = 120_000) => admin.tool(name, args, timeout);
const nodectl = (args: string[], timeout?: number) => tool('nodectl', args, timeout);
const serial = () => (existsSync(serialLog) ? readFileSync(serialLog, 'latin1') : '');

/** Pids of the VMs this suite started (their command line names its own serial log), e.g. left by a crash. */
function ourVms(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline[0] === 'qemu-system-x86_64' && cmdline.some((a) => a.includes(`logfile=${serialLog}`))) pids.push(Number(entry));
    } catch {
      // Ended while we looked.
    }
  }
  return pids;
}

/** Whether a VM has its IPMI channel to ipmi_sim open. */
async function vmConnected(): Promise<boolean> {
  const r = await sh('ss', ['-Htn', 'state', 'established', 'dst', `${vmChannel.addr}:${vmChannel.port}`], { reject: false });
  return r.stdout.trim() !== '';
}

async function cleanup(): Promise<void> {
  // The appliance keeps connections open to the sshds: their sessions hold the sshds' output pipes, so
  // every process in the namespaces ends before the sshd processes are waited for.
  for (const h of others) await h.endProcesses();
  for (const p of sshds.splice(0)) {
    p.kill('SIGTERM');
    await p.catch(() => {});
  }
  for (const h of others) await h.destroy();
  await stopAllIpmiSims();
  for (const pid of ourVms()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  await sh('ip', ['link', 'del', TAP], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
  while ((await sh('iptables', ['-D', ...FORWARD_RULE], { reject: false })).exitCode === 0);
  admin.close();
  await unmountUnder(workspace);
}

vmTest.before(async () => {
  await cleanup();
  await startOnTestBridge({ name: NAME, net: NET, subnet: SUBNET, headIp: HEAD_IP, storage, admin });
  await sh('iptables', ['-I', ...FORWARD_RULE]);
  await sh('ip', ['tuntap', 'add', TAP, 'mode', 'tap']);
  await sh('ip', ['link', 'set', TAP, 'master', NET, 'up']);
  await bmc.start();
});

test.after.always(async () => {
  await cleanup();
  rmSync(work, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

vmTest.serial('ipmi_sim as the BMC of a qemu VM: power on PXE-boots it to up with its boot lines in the console log, exec on it and 7 more, soft reboot, hard fallback without sshd, power off', async (t) => {
  t.timeout(1_500_000);
  let started = Date.now();
  const defaults = await tool('add-boot-config', ['--make-defaults'], 900_000);
  t.is(defaults.exitCode, 0, defaults.all);
  t.log(`--make-defaults: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const conf = join(home, 'cluster.conf');
  writeFileSync(conf, `iprange 10.213.41.100/24\nnode ${N0_MAC}\n`);
  const load = await tool('cluster-conf', ['load', conf]);
  t.is(load.exitCode, 0, load.all);
  const update = await nodectl(['-i', 'n0', 'update', `power_uri=ipmi:///admin:${encodeURIComponent(PASSWORD)}@${BMC_IP}`]);
  t.is(update.exitCode, 0, update.all);
  // The console log worker holds n0's SOL session from now on, while the VM is still off.
  const logged = await nodectl(['-i', 'n0', 'set', '_console_log=yes']);
  t.is(logged.exitCode, 0, logged.all);

  // Off: by the appliance, by the BMC itself, and no VM runs.
  const off = await nodectl(['-i', 'n0', 'power', 'status']);
  t.is(off.exitCode, 0, off.all);
  t.is(off.stdout, 'n0: off');
  t.regex((await bmc.ipmitool(['chassis', 'power', 'status'])).stdout, /Chassis Power is off/);
  t.false(bmc.machineRunning());
  t.regex((await nodectl(['-i', 'n0', 'status'])).stdout, /n0\s+new/);

  // On: ipmi_sim starts the VM, the VM's BMC device connects back, and it boots from the network.
  started = Date.now();
  const on = await nodectl(['-i', 'n0', 'power', 'on']);
  t.is(on.stdout, 'n0: on', on.all);
  t.true(bmc.machineRunning(), 'ipmi_sim started the VM');
  t.true(await eventually(vmConnected, 30_000), "the VM's ipmi-bmc-extern connected to ipmi_sim");
  t.is((await nodectl(['-i', 'n0', 'power', 'status'])).stdout, 'n0: on');
  t.regex((await bmc.ipmitool(['chassis', 'power', 'status'])).stdout, /Chassis Power is on/);
  const { ms } = await waitFor(async () => {
    if (!bmc.machineRunning()) throw new Error('the VM ended');
    return /cw-node-agent: n0 is up/.test(serial());
  }, 600_000, 1000).catch((err: Error) => {
    throw new Error(`${err.message}\n--- serial ---\n${serial().slice(-6000)}`);
  });
  const wait = await nodectl(['-i', 'n0', 'waitfor', 'up', '--timeout', '120'], 140_000);
  t.is(wait.exitCode, 0, `${wait.all}\n--- serial ---\n${serial().slice(-4000)}`);
  t.log(`power on -> up: ${(Math.max(ms, Date.now() - started) / 1000).toFixed(1)} s`);
  t.regex(serial(), /cw-init: node n0 /);
  const up = await nodectl(['-i', 'n0', 'status']);
  t.regex(up.stdout, /n0\s+up\s+up\s+10\.213\.41\.100/, up.all);

  // exec over ssh with the appliance's key, which the initramfs installed for root: the node's own name.
  const name = await nodectl(['-i', 'n0', 'exec', 'hostname'], 120_000);
  t.is(name.stdout, 'n0: n0', name.all);

  // The image carries no ssh host keys: the node made its own at this boot, reported the public one with
  // its node secret, and the appliance pinned it (exec accepts that key only).
  const pins = join(storage, 'ssh', 'known_hosts.nodes');
  const hostKey = async () => {
    const r = await nodectl(['-i', 'n0', 'exec', 'cat', '/etc/ssh/ssh_host_ed25519_key.pub'], 120_000);
    t.is(r.exitCode, 0, r.all);
    return r.stdout.replace(/^n0: /, '').split(' ').slice(0, 2).join(' ');
  };
  const firstKey = await hostKey();
  t.regex(firstKey, /^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
  t.true(readFileSync(pins, 'utf8').includes(`n0 ${firstKey}\n`), readFileSync(pins, 'utf8'));

  // The boot came through serial-over-LAN into the appliance's console log of n0: the kernel's and the
  // initramfs's lines, each stamped with the time it arrived.
  const consoleLog = await nodectl(['-i', 'n0', 'console', '--log', '--lines', '100000']);
  t.is(consoleLog.exitCode, 0, consoleLog.all);
  t.regex(consoleLog.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z .*Linux version /m, consoleLog.stdout.slice(-3000));
  t.regex(consoleLog.stdout, /^\S+Z .*cw-init: node n0 /m);
  t.regex(consoleLog.stdout, /^\S+Z .*cw-node-agent: n0 is up/m);
  t.false(consoleLog.stdout.includes(PASSWORD));

  // exec on 8 targets: the VM and 7 sshds in namespaces with hostnames n1..n7, authorizing the key the
  // appliance serves to booting nodes.
  const key = (await sh('curl', ['-fsS', `http://${HEAD_IP}/api/v1/boot/authorized-keys`])).stdout;
  for (const [k, h] of others.entries()) {
    await h.create();
    sshds.push((await startNamespacedSshd({ ns: h.ns, dir: join(work, `n${k + 1}`), hostname: `n${k + 1}`, key })).sshd);
    const created = await nodectl(['create', `index=${k + 1}`, `ip=${h.cidr.split('/')[0]}`, `mac=${h.mac}`]);
    t.is(created.exitCode, 0, created.all);
  }
  await waitFor(async () => others.every((_, k) => existsSync(join(work, `n${k + 1}`, 'sshd.pid'))) || undefined, 10_000);
  const names = await nodectl(['-i', 'n[0-7]', 'exec', 'hostname'], 120_000);
  t.is(names.exitCode, 0, names.all);
  t.deepEqual(names.stdout.split('\n').sort(), Array.from({ length: 8 }, (_, i) => `n${i}: n${i}`));
  const kernels = await nodectl(['-i', 'n[0-7]', '--collate', 'exec', 'uname', '-s'], 120_000);
  t.is(kernels.stdout, 'n[0-7]: Linux', kernels.all);
  // n5's sshd ends: the run fails, naming n5 on the last line, and the others still answer.
  // Its sessions too: the appliance's kept-open connection to n5 would otherwise still answer.
  await others[4]!.endProcesses();
  await sshds[4];
  const partial = await nodectl(['-i', 'n[0-7]', '--collate', '--timeout', '10', 'exec', 'uname', '-s'], 120_000);
  t.not(partial.exitCode, 0, partial.all);
  t.is(partial.stdout, 'n[0-4,6-7]: Linux', partial.all);
  t.regex(partial.stderr, /^n5: ERROR: /m);
  t.is(partial.stderr.split('\n').at(-1), 'ERROR: exec failed on 1 of 8 nodes: n5');

  /** Waits until the VM has booted once more than `boots` times and reports up again. */
  const bootsSoFar = () => serial().split('cw-init: node n0 ').length - 1;
  const backUp = async (boots: number, what: string) => {
    const t0 = Date.now();
    await waitFor(async () => bootsSoFar() > boots && /cw-node-agent: n0 is up/.test(serial().split('cw-init: node n0 ').at(-1) ?? ''), 600_000, 1000).catch(
      (err: Error) => {
        throw new Error(`${what}: ${err.message}\n--- serial ---\n${serial().slice(-6000)}`);
      },
    );
    const again = await nodectl(['-i', 'n0', 'waitfor', 'up', '--timeout', '120'], 140_000);
    t.is(again.exitCode, 0, again.all);
    t.true(bmc.machineRunning(), `${what}: the same VM, still powered on`);
    t.log(`${what} -> up: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  };

  // reboot --soft: ssh runs /usr/sbin/reboot on the node; it boots through the appliance again.
  let boots = bootsSoFar();
  const soft = await nodectl(['-i', 'n0', 'reboot', '--soft'], 120_000);
  t.is(soft.exitCode, 0, soft.all);
  t.regex(soft.stdout, /^n0: soft reboot/, soft.all);
  await backUp(boots, 'reboot --soft');
  // A new boot, a new host key, pinned in place of the old one.
  const secondKey = await hostKey();
  t.not(secondKey, firstKey);
  t.true(readFileSync(pins, 'utf8').includes(`n0 ${secondKey}\n`));
  t.false(readFileSync(pins, 'utf8').includes(firstKey));

  // With the node's sshd stopped, reboot (no flag) cannot be soft: it falls back to the BMC's reset.
  // Stopping the service leaves running sessions alone (Debian's ssh.service stops only the listener), so
  // the command also ends the sshd process serving it — the appliance's kept-open connection — or the
  // soft reboot would rightly go through that connection. The exec itself then loses its connection.
  await nodectl(['-i', 'n0', 'exec', 'sh', '-c', 'systemctl stop ssh && kill -9 "$PPID"'], 120_000);
  t.true(await eventually(async () => (await nodectl(['-i', 'n0', '--timeout', '5', 'exec', 'true'], 30_000)).exitCode !== 0, 30_000), 'ssh no longer answers');
  boots = bootsSoFar();
  const started2 = Date.now();
  const hard = await nodectl(['-i', 'n0', 'reboot', '--timeout', '20'], 120_000);
  t.is(hard.exitCode, 0, hard.all);
  t.regex(hard.stdout, /^n0: hard reset/, hard.all);
  t.true(Date.now() - started2 < 40_000, `the fallback took ${Date.now() - started2} ms`);
  await backUp(boots, 'reboot falling back to hard');

  // Off: the VM is gone, the BMC and the appliance say off, and the silent node goes down.
  const down = await nodectl(['-i', 'n0', 'power', 'off']);
  t.is(down.stdout, 'n0: off', down.all);
  t.true(await eventually(() => !bmc.machineRunning(), 15_000), 'the VM ended');
  t.true(await eventually(async () => (await nodectl(['-i', 'n0', 'power', 'status'])).stdout === 'n0: off', 15_000));
  t.regex((await bmc.ipmitool(['chassis', 'power', 'status'])).stdout, /Chassis Power is off/);
  t.deepEqual(ourVms(), []);
  const gone = await nodectl(['-i', 'n0', 'waitfor', 'down', '--timeout', '90'], 100_000);
  t.is(gone.exitCode, 0, gone.all);
  t.regex((await nodectl(['-i', 'n0', 'status'])).stdout, /n0\s+down/);
});
