// Network boot end to end: the appliance on a test bridge builds DefaultImage and DefaultBoot, and a
// qemu VM (TCG) on a tap in the same bridge powers on, PXE-boots through the appliance's dhcpd, tftpd,
// iPXE scripts and nginx, and reports `up` — BIOS (rwram, then roram), UEFI (OVMF), and an image
// imported from a `docker save` archive. Needs root, qemu-system-x86, ipxe-qemu, ovmf, debootstrap,
// squashfs-tools, busybox-static and network access to deb.debian.org.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AdminSession, ctl, sh, tempDir, waitFor, unmountUnder } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwnb0';
const SUBNET = '10.213.14.0/24';
const HEAD_IP = '10.213.14.10';
const NAME = 'cwit-netboot';
const TAP = 'cwnbtap0';
const N0_MAC = '52:54:00:5b:00:01';
const BASE_IMAGE = 'docker.io/library/debian:bookworm-slim';
const IMPORT_TAG = 'cwit-netboot-kernel:latest';
// Debian's ipxe-qemu installs the NIC boot ROMs (efi-virtio.rom: BIOS and EFI iPXE) outside qemu's data
// directory; without them SeaBIOS has no network boot entry. (romfile=PATH alone does not load it here.)
const ROM_DIRS = ['-L', '/usr/lib/ipxe/qemu', '-L', '/usr/share/qemu'];
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
// Frames between the tap and the appliance cross the docker bridge; docker's FORWARD policy can drop
// them when br_netfilter is loaded, so the test accepts traffic within its own bridge while it runs.
const FORWARD_RULE = ['FORWARD', '-i', NET, '-o', NET, '-m', 'comment', '--comment', 'cwit-netboot', '-j', 'ACCEPT'];

const storage = join(tempDir('cwnb'), 'cw_container_storage');
const home = tempDir('cwnb-home');
const workspace = join(home, 'ws');
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`, { 'modimg.workspace': workspace });
let vm: ResultPromise | undefined;

async function stopVm(): Promise<void> {
  if (!vm) return;
  vm.kill('SIGKILL');
  await vm.catch(() => undefined);
  vm = undefined;
}

async function cleanup(): Promise<void> {
  await stopVm();
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  await sh('ip', ['link', 'del', TAP], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
  while ((await sh('iptables', ['-D', ...FORWARD_RULE], { reject: false })).exitCode === 0);
  admin.close();
  await unmountUnder(workspace);
}

const tool = (name: string, args: string[], timeout = 120_000) => admin.tool(name, args, timeout);

interface Boot {
  log: string;
  /** Power-on to `cw-nodectl waitfor up` returning, in ms. */
  upMs: number;
  serial: () => string;
}

/** Powers on the VM (fresh disks of nothing: it can only boot from the network) and waits for `up`. */
async function bootN0(label: string, firmware: 'bios' | 'uefi'): Promise<Boot> {
  await stopVm();
  const log = join(home, `serial-${label}.log`);
  rmSync(log, { force: true });
  const args = [...ROM_DIRS, '-accel', 'tcg', '-m', '1536', '-smp', '2', '-nographic', '-display', 'none', '-monitor', 'none', '-serial', `file:${log}`, '-no-reboot'];
  if (firmware === 'uefi') {
    const vars = join(home, `OVMF_VARS-${label}.fd`);
    copyFileSync(OVMF_VARS, vars);
    args.push('-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${vars}`);
  }
  args.push(
    '-netdev', `tap,id=n0,ifname=${TAP},script=no,downscript=no`,
    // BIOS: SeaBIOS has no PXE of its own; the NIC's iPXE ROM asks dhcpd as iPXE and gets the HTTP URL.
    // UEFI: no option ROM, so OVMF's own PXE asks with client arch 7 and fetches ipxe.efi over TFTP.
    '-device', `virtio-net-pci,netdev=n0,mac=${N0_MAC}${firmware === 'uefi' ? ',romfile=' : ',bootindex=1'}`,
    '-boot', 'n',
  );
  // The serial marker first: the API may still show n0 `up` from the previous boot for 30 s. With
  // -no-reboot, an initramfs that gives up (reboot -f) ends qemu, and with it the wait.
  const started = Date.now();
  vm = execa('qemu-system-x86_64', args, { reject: false, stdin: 'ignore', all: true });
  const serial = () => (existsSync(log) ? readFileSync(log, 'latin1') : '');
  let exited = '';
  void vm.then((r) => (exited = `qemu exited (${String(r.exitCode)}): ${r.all ?? ''}`));
  const { ms } = await waitFor(async () => {
    // A VM that died ends the wait at once (waitFor keeps polling through a probe's exceptions).
    if (exited) return 'exited';
    return /cw-node-agent: n0 is up/.test(serial());
  }, 420_000, 1000).then((r) => {
    if (exited) throw new Error(exited);
    return r;
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n--- serial (${label}) ---\n${serial().slice(-6000)}`);
  });
  const wait = await tool('nodectl', ['-i', 'n0', 'waitfor', 'up', '--timeout', '300'], 320_000);
  if (wait.exitCode !== 0) throw new Error(`waitfor up: ${wait.all}\n--- serial ---\n${serial().slice(-4000)}`);
  const upMs = Math.max(ms, Date.now() - started);
  // getty prints the login prompt (with the hostname) a moment after the agent's first report.
  await waitFor(async () => /\bn0 login:/.test(serial()), 120_000, 500).catch(() => undefined);
  return { log, upMs, serial };
}

/** The lines the initramfs printed (cw-init: ...), for the log and for checks. */
function initLines(text: string): string[] {
  return text.split(/\r?\n/).filter((l) => l.includes('cw-init:'));
}

test.before(async () => {
  await cleanup();
  await sh('docker', ['network', 'create', '--subnet', SUBNET, '-o', `com.docker.network.bridge.name=${NET}`, NET]);
  await sh('iptables', ['-I', ...FORWARD_RULE]);
  await sh('ip', ['tuntap', 'add', TAP, 'mode', 'tap']);
  await sh('ip', ['link', 'set', TAP, 'master', NET, 'up']);
  await admin.open();
  const images = await sh('docker', ['images', '--filter', 'label=io.cw-headnode.appliance=true', '--format', '{{.Repository}}:{{.Tag}}']);
  const imageRef = images.stdout.split('\n').find((l) => l !== '' && !l.includes('<none>')) ?? '';
  const start = await ctl(['start', storage, imageRef, '--name', NAME, '--network', NET, '--ip', HEAD_IP, '--ssh-port', '22']);
  if (start.exitCode !== 0) throw new Error(start.all);
  const add = await ctl(['add-admin', 'alice', `@${admin.keyFile}.pub`, '--name', NAME]);
  if (add.exitCode !== 0) throw new Error(add.all);
  await admin.adopt(NAME);
});

test.after.always(async () => {
  await cleanup();
  await sh('docker', ['rmi', '-f', IMPORT_TAG], { reject: false });
  rmSync(home, { recursive: true, force: true });
  rmSync(dirname(storage), { recursive: true, force: true });
});

test.serial('cw-add-boot-config --make-defaults and cw-cluster-conf load set up n0', async (t) => {
  t.timeout(900_000);
  const started = Date.now();
  const r = await tool('add-boot-config', ['--make-defaults'], 900_000);
  t.is(r.exitCode, 0, r.all);
  t.log(`--make-defaults (debootstrap + pack + upload + initramfs): ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.regex(r.stdout, /Set _boot_config=DefaultBoot in DefaultAttribs/);

  const conf = join(home, 'cluster.conf');
  writeFileSync(conf, `iprange 10.213.14.100/24\nnode ${N0_MAC}\n`);
  const load = await tool('cluster-conf', ['load', conf]);
  t.is(load.exitCode, 0, load.all);

  const script = await execa('curl', ['-sS', `http://${HEAD_IP}/api/v1/boot/ipxe/${N0_MAC}`]);
  t.regex(script.stdout, /^#!ipxe/);
  t.regex(script.stdout, /n0 boots DefaultBoot \(rwram\)/);
  t.regex(script.stdout, /kernel --timeout 60000 http:\/\/10\.213\.14\.10\/blobs\/[0-9a-f]{64} initrd=initramfs cw\.node=n0 /);
});

test.serial('BIOS: n0 PXE-boots DefaultBoot (rwram) and reports up', async (t) => {
  t.timeout(600_000);
  t.is((await tool('nodectl', ['-i', 'n0', 'unset', '_boot_style'])).exitCode, 0);
  const boot = await bootN0('bios', 'bios');
  t.log(`BIOS rwram: power-on -> up in ${(boot.upMs / 1000).toFixed(1)} s`);
  const serial = boot.serial();
  t.regex(serial, /cw-init: node n0 .* style rwram/);
  // The node got its secret (asked from its own address), traded it and checked the image.
  t.regex(serial, /cw-init: node secret of this boot received/);
  t.regex(serial, /cw-init: image checksum verified \(sha256 [0-9a-f]{64}\)/);
  t.regex(serial, /copying the image into RAM \(rwram\)/);
  t.regex(serial, /\bn0 login:/, 'the hostname is n0');
  t.log(initLines(serial).join('\n'));
  const status = await tool('nodectl', ['-i', 'n0', 'status']);
  t.is(status.exitCode, 0, status.all);
  t.regex(status.stdout, /n0\s+up\s+up\s+10\.213\.14\.100/);
  await stopVm();
});

test.serial('BIOS: n0 with _boot_style=roram boots the image read-only under a RAM overlay', async (t) => {
  t.timeout(600_000);
  const set = await tool('nodectl', ['-i', 'n0', 'set', '_boot_style=roram']);
  t.is(set.exitCode, 0, set.all);
  const script = await execa('curl', ['-sS', `http://${HEAD_IP}/api/v1/boot/ipxe/${N0_MAC}`]);
  t.regex(script.stdout, /cw\.style=roram/);
  const boot = await bootN0('roram', 'bios');
  t.log(`BIOS roram: power-on -> up in ${(boot.upMs / 1000).toFixed(1)} s`);
  const serial = boot.serial();
  t.regex(serial, /cw-init: node n0 .* style roram/);
  t.regex(serial, /mounting the image read-only with a RAM overlay \(roram\)/);
  t.regex(serial, /\bn0 login:/);
  await stopVm();
  const unset = await tool('nodectl', ['-i', 'n0', 'unset', '_boot_style']);
  t.is(unset.exitCode, 0, unset.all);
});

test.serial('UEFI (OVMF): n0 PXE-boots through ipxe.efi and reports up', async (t) => {
  t.timeout(600_000);
  // Each boot test sets what it needs: a failed assertion ends a test before its own clean-up.
  t.is((await tool('nodectl', ['-i', 'n0', 'unset', '_boot_style'])).exitCode, 0);
  const boot = await bootN0('uefi', 'uefi');
  t.log(`UEFI rwram: power-on -> up in ${(boot.upMs / 1000).toFixed(1)} s`);
  const serial = boot.serial();
  t.regex(serial, /NBP filename is ipxe\.efi/, 'OVMF fetched ipxe.efi over TFTP');
  t.regex(serial, /cw-init: node n0 .* style rwram/);
  t.regex(serial, /\bn0 login:/);
  await stopVm();
});

test.serial('BIOS: a tampered image file is not booted: the console says why and n0 reports the error', async (t) => {
  t.timeout(600_000);
  t.is((await tool('nodectl', ['-i', 'n0', 'unset', '_boot_style'])).exitCode, 0);
  const script = await execa('curl', ['-sS', `http://${HEAD_IP}/api/v1/boot/ipxe/${N0_MAC}`]);
  const blob = / cw\.image=\/blobs\/([0-9a-f]{64}) /.exec(script.stdout)?.[1];
  t.truthy(blob, script.stdout);
  // The image's file and its blob are one inode: the bytes every boot gets.
  const file = join(storage, 'blobs', String(blob));
  const original = readFileSync(file);
  try {
    // One byte changed, size and everything else kept: only the checksum can tell.
    const tampered = Buffer.from(original);
    tampered[tampered.length - 1] = (tampered.at(-1) ?? 0) ^ 0xff;
    writeFileSync(file, tampered);
    await stopVm();
    const log = join(home, 'serial-tampered.log');
    rmSync(log, { force: true });
    vm = execa('qemu-system-x86_64', [
      ...ROM_DIRS, '-accel', 'tcg', '-m', '1536', '-smp', '2', '-nographic', '-display', 'none', '-monitor', 'none', '-serial', `file:${log}`, '-no-reboot',
      '-netdev', `tap,id=n0,ifname=${TAP},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${N0_MAC},bootindex=1`, '-boot', 'n',
    ], { reject: false, stdin: 'ignore', all: true });
    const serial = () => (existsSync(log) ? readFileSync(log, 'latin1') : '');
    await waitFor(async () => /rebooting in 300 s/.test(serial()), 420_000, 1000).catch((err: Error) => {
      throw new Error(`${err.message}\n--- serial ---\n${serial().slice(-6000)}`);
    });
    t.regex(serial(), /cw-init: ERROR: image checksum mismatch: \/blobs\/[0-9a-f]{64} has sha256 [0-9a-f]{64}, expected [0-9a-f]{64}; not booting it/);
    t.notRegex(serial(), /copying the image into RAM|switching to the image/);
    const status = await tool('nodectl', ['-i', 'n0', 'status', '-L']);
    t.regex(status.stdout, /error/, status.all);
    t.regex(status.stdout, /image checksum mismatch/, status.all);
    t.log(initLines(serial()).join('\n'));
  } finally {
    await stopVm();
    writeFileSync(file, original);
  }
});

test.serial('bad input: a boot config without an image file, or pointing at a missing image, is explained', async (t) => {
  // An image object without content.
  t.is((await tool('imgctl', ['create', 'name=Empty'])).exitCode, 0);
  const add = await tool('add-boot-config', ['--image', 'Empty', '--boot-config', 'EmptyBoot']);
  t.is(add.exitCode, 1, add.all);
  const last = add.stderr.trim().split('\n').at(-1) ?? '';
  t.is(last, 'ERROR: image Empty has no content on the head node and is not in the workspace; build and upload it first (cw-modimg -i Empty --upload), or give --root DIR');
  t.log(`cw-add-boot-config on an empty image: ${last}`);

  const missing = await tool('add-boot-config', ['--image', 'NoSuchImage', '--boot-config', 'NoBoot']);
  t.is(missing.exitCode, 1, missing.all);
  t.is(missing.stderr.trim(), 'ERROR: no such image: NoSuchImage (create it with cw-modimg --create --set-name NoSuchImage --upload)');

  // A boot config with a kernel and an initramfs (taken from DefaultImage's root) whose image has no
  // content: the node is told why.
  const mk = await tool('add-boot-config', ['--image', 'Empty', '--boot-config', 'HollowBoot', '--root', join(workspace, 'roots/DefaultImage')], 300_000);
  t.is(mk.exitCode, 0, mk.all);
  t.regex(mk.stderr, /WARNING: image Empty has no content on the head node yet/);
  const set = await tool('nodectl', ['-i', 'n0', 'set', '_boot_config=HollowBoot']);
  t.is(set.exitCode, 0, set.all);
  const script = await execa('curl', ['-sS', `http://${HEAD_IP}/api/v1/boot/ipxe/${N0_MAC}`]);
  t.regex(script.stdout, /^#!ipxe/);
  t.regex(script.stdout, /^echo .*image Empty/m);
  t.regex(script.stdout, /^sleep 30$/m);
  t.regex(script.stdout, /^chain /m);
  t.log(script.stdout.split('\n').filter((l) => l.startsWith('echo')).join('\n'));

  const unknown = await execa('curl', ['-sS', '-w', '\n%{http_code}', `http://${HEAD_IP}/api/v1/boot/ipxe/52:54:00:5b:00:99`]);
  t.regex(unknown.stdout, /^#!ipxe/);
  t.regex(unknown.stdout, /200$/);
  t.is((await tool('nodectl', ['-i', 'n0', 'unset', '_boot_config'])).exitCode, 0);
});

test.serial('--import of a docker save with a kernel and systemd is bootable', async (t) => {
  t.timeout(900_000);
  const ctx = join(home, 'kernel-image');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(
    join(ctx, 'Containerfile'),
    `FROM ${BASE_IMAGE}\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd-sysv linux-image-cloud-amd64 iproute2 curl kmod udev && rm -rf /var/lib/apt/lists/*\n`,
  );
  let started = Date.now();
  await sh('docker', ['build', '--network', 'host', '-t', IMPORT_TAG, '-f', join(ctx, 'Containerfile'), ctx], { timeout: 600_000 });
  const archive = join(home, 'kernel-image.tar');
  await sh('docker', ['save', '-o', archive, IMPORT_TAG], { timeout: 300_000 });
  t.log(`docker build + save: ${((Date.now() - started) / 1000).toFixed(1)} s`);

  started = Date.now();
  const imp = await tool('modimg', ['--import', `docker-archive:${archive}`, '--set-name', 'Imported', '--upload'], 600_000);
  t.is(imp.exitCode, 0, imp.all);
  const add = await tool('add-boot-config', ['--image', 'Imported', '--boot-config', 'ImportedBoot'], 300_000);
  t.is(add.exitCode, 0, add.all);
  t.log(`--import + upload + add-boot-config: ${((Date.now() - started) / 1000).toFixed(1)} s`);

  t.is((await tool('nodectl', ['-i', 'n0', 'set', '_boot_config=ImportedBoot'])).exitCode, 0);
  const boot = await bootN0('imported', 'bios');
  t.log(`BIOS imported image: power-on -> up in ${(boot.upMs / 1000).toFixed(1)} s`);
  t.regex(boot.serial(), /\bn0 login:/);
  await stopVm();
});
