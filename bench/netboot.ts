// Network boot figures.
//   P2: 32 concurrent HTTP downloads of a 256 MiB image file from the appliance's nginx vs a bare nginx
//       (same sendfile settings, same file, same bridge) — aggregate throughput, median of 3 rounds each.
//   P1: a qemu VM (TCG, BIOS) from power-on to "cw-node-agent: n0 is up" on its serial console, booted
//       through the appliance vs a hand-made baseline — dnsmasq (DHCP + TFTP undionly.kpxe) and nginx in
//       a namespace on a bridge of their own, serving the SAME kernel, initramfs and image (downloaded
//       from the appliance) and the same iPXE script — median of 3 boots each.
// Usage: npx tsx bench/netboot.ts [p1] [p2]   (default: both; P2 first)
//   needs root, Docker with a loaded cw-headnode image, nginx and curl; P1 also qemu-system-x86,
//   ipxe-qemu, ipxe, dnsmasq, debootstrap, squashfs-tools and busybox-static. Everything runs on bridges,
//   namespaces and taps this script creates (plus iptables ACCEPT rules for its own bridges), all removed
//   at the end. The load average is printed because other work on the machine shifts every figure.
import { execa, type ResultPromise } from 'execa';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { AdminSession } from '../test/integration/helpers.js';

const repo = resolve(import.meta.dirname, '..');
const containerctl = join(repo, 'dist/host/containerctl/main.js');

const NET = 'cwnb0';
const SUBNET = '10.213.14.0/24';
const HEAD_IP = '10.213.14.10';
const BARE_IP = '10.213.14.20';
const NAME = 'cwbench-netboot';
const N0_MAC = '52:54:00:5b:00:01';
const TAP = 'cwnbtap0';
// The baseline's own bridge, isolated from the appliance's, in a subnet of its own: Docker masquerades
// 10.213.14.0/24 leaving any other bridge (br_netfilter), which would break the VM's TCP there. The
// node's iPXE script is the appliance's with the head's address replaced; the host has no address on it.
const BASE_BRIDGE = 'cwnb1';
const BASE_TAP = 'cwnbtap1';
const BASE_NS = 'cwnbbase';
const BASE_NET = '10.213.141';
const SRV_NS = 'cwnbsrv';
// Debian's ipxe-qemu keeps the NIC boot ROMs outside qemu's data directory.
const ROM_DIRS = ['-L', '/usr/lib/ipxe/qemu', '-L', '/usr/share/qemu'];
const P2_CLIENTS = 32;
const P2_MIB = 256;
const ROUNDS = Number(process.env.CW_BENCH_ROUNDS ?? 3);
const ruleFor = (bridge: string) => ['FORWARD', '-i', bridge, '-o', bridge, '-m', 'comment', '--comment', 'cwbench-netboot', '-j', 'ACCEPT'];

process.env.DOCKER_HOST ??= 'unix:///var/run/docker.sock';

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const step = (what: string) => process.stderr.write(`[bench] ${what}\n`);

const work = mkdtempSync(join(tmpdir(), 'cwnb-bench-'));
const storage = join(work, 'storage');
const home = join(work, 'home');
const admin = new AdminSession(home, `http://${HEAD_IP}/api/v1`, { 'modimg.workspace': join(home, 'ws') }, 'bench');
const daemons: ResultPromise[] = [];

async function run(cmd: string, args: string[], opts: { timeout?: number } = {}) {
  const r = await execa(cmd, args, { reject: false, all: true, stdin: 'ignore', timeout: opts.timeout ?? 120_000 });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.all}`);
  return r;
}
const quiet = (cmd: string, args: string[]) => execa(cmd, args, { reject: false, stdin: 'ignore' });

async function cleanup(): Promise<void> {
  // TERM, not KILL: nginx's master stops its workers on TERM (a killed master leaves them holding the
  // output pipe); KILL only what is still there after 5 s.
  for (const d of daemons.splice(0)) {
    d.kill('SIGTERM');
    const timer = setTimeout(() => d.kill('SIGKILL'), 5000);
    await d.catch(() => undefined);
    clearTimeout(timer);
  }
  await quiet('docker', ['rm', '-f', NAME]);
  for (const ns of [BASE_NS, SRV_NS]) {
    await quiet('ip', ['netns', 'del', ns]);
    await quiet('ip', ['link', 'del', `v${ns}`]);
  }
  for (const l of [TAP, BASE_TAP, BASE_BRIDGE]) await quiet('ip', ['link', 'del', l]);
  await quiet('docker', ['network', 'rm', NET]);
  for (const bridge of [NET, BASE_BRIDGE]) while ((await quiet('iptables', ['-D', ...ruleFor(bridge)])).exitCode === 0);
  admin.close();
  const ws = join(home, 'ws');
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(ws));
  for (const m of mounts.reverse()) await quiet('umount', ['--lazy', m]);
}

/** A namespace whose eth0 (a veth) is enslaved to `bridge`, with `cidr`. */
async function netns(name: string, bridge: string, cidr: string): Promise<void> {
  await run('ip', ['netns', 'add', name]);
  await run('ip', ['link', 'add', `v${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
  await run('ip', ['link', 'set', `v${name}`, 'master', bridge, 'up']);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  await run('ip', ['-n', name, 'addr', 'add', cidr, 'dev', 'eth0']);
  await run('ip', ['-n', name, 'link', 'set', 'eth0', 'up']);
}

function daemon(cmd: string, args: string[]): ResultPromise {
  const d = execa(cmd, args, { reject: false, stdin: 'ignore', all: true });
  daemons.push(d);
  return d;
}

async function tool(name: string, args: string[], timeout = 900_000) {
  const r = await admin.tool(name, args, timeout);
  if (r.exitCode !== 0) throw new Error(`cw-${name} ${args.join(' ')} failed:\n${r.all}`);
  return r;
}

async function startAppliance(): Promise<void> {
  await run('docker', ['network', 'create', '--subnet', SUBNET, '-o', `com.docker.network.bridge.name=${NET}`, NET]);
  await run('iptables', ['-I', ...ruleFor(NET)]);
  const images = await run('docker', ['images', '--filter', 'label=io.cw-headnode.appliance=true', '--format', '{{.Repository}}:{{.Tag}}']);
  const ref = images.stdout.split('\n').find((l) => l !== '' && !l.includes('<none>'));
  if (!ref) throw new Error('no cw-headnode image loaded: run cw-containerctl img-load first');
  await run('node', [containerctl, 'start', storage, ref, '--name', NAME, '--network', NET, '--ip', HEAD_IP, '--ssh-port', '22'], { timeout: 300_000 });
}

/** Wall time of `clients` parallel curls of `url`, as aggregate MiB/s. */
async function parallelDownload(url: string, clients: number, bytes: number): Promise<number> {
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: clients }, () => execa('curl', ['-sS', '-f', '-o', '/dev/null', '-w', '%{size_download}', url], { reject: false, timeout: 600_000 })),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const r of results) {
    if (r.exitCode !== 0 || Number(r.stdout) !== bytes) throw new Error(`download of ${url} failed: ${r.stderr || r.stdout}`);
  }
  return (clients * bytes) / 1048576 / seconds;
}

function bareNginxConf(dir: string, rootDir: string, listen: string): string {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  // The appliance's settings that matter for static files: sendfile, tcp_nopush, 2 workers. Workers run
  // as root only to read the scratch directory (mode 0700) this script made.
  writeFileSync(
    conf,
    `user root;
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
daemon off;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/tmp;
    proxy_temp_path ${dir}/tmp;
    fastcgi_temp_path ${dir}/tmp;
    uwsgi_temp_path ${dir}/tmp;
    scgi_temp_path ${dir}/tmp;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    server {
        listen ${listen} default_server;
        root ${rootDir};
        location /api/v1/boot/status/ { return 200 "{}"; }
    }
}
`,
  );
  return conf;
}

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await quiet('curl', ['-sf', '-o', '/dev/null', url])).exitCode === 0) return;
    await sleep(100);
  }
  throw new Error(`${url} does not answer`);
}

async function p2(): Promise<string> {
  step(`P2: ${P2_CLIENTS} x ${P2_MIB} MiB downloads, appliance nginx vs bare nginx`);
  const file = join(storage, 'images', 'bench-p2.img');
  await run('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${P2_MIB}`, 'status=none']);
  const bytes = P2_MIB * 1048576;
  await netns(SRV_NS, NET, `${BARE_IP}/24`);
  const dir = join(work, 'bare-nginx');
  const conf = bareNginxConf(dir, join(storage, 'images'), '80');
  daemon('ip', ['netns', 'exec', SRV_NS, 'nginx', '-c', conf]);
  const applianceUrl = `http://${HEAD_IP}/images/bench-p2.img`;
  const bareUrl = `http://${BARE_IP}/bench-p2.img`;
  await waitHttp(applianceUrl);
  await waitHttp(bareUrl);
  // Warm the page cache once for both (the same file).
  await parallelDownload(bareUrl, 1, bytes);
  const appliance: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    appliance.push(await parallelDownload(applianceUrl, P2_CLIENTS, bytes));
    bare.push(await parallelDownload(bareUrl, P2_CLIENTS, bytes));
    step(`  round ${i + 1}: appliance ${appliance.at(-1)!.toFixed(0)} MiB/s, bare ${bare.at(-1)!.toFixed(0)} MiB/s`);
  }
  rmSync(file, { force: true });
  const a = median(appliance);
  const b = median(bare);
  return `P2  ${P2_CLIENTS} concurrent downloads of a ${P2_MIB} MiB image: appliance ${a.toFixed(0)} MiB/s, bare nginx ${b.toFixed(0)} MiB/s (medians of ${ROUNDS}); ratio ${(a / b).toFixed(3)} (target >= 0.95)`;
}

/** Power-on to the agent's "is up" line on the serial console, in seconds. */
async function bootVm(tap: string, label: string): Promise<number> {
  const log = join(work, `serial-${label}.log`);
  rmSync(log, { force: true });
  const started = performance.now();
  const vm = execa('qemu-system-x86_64', [
    ...ROM_DIRS,
    '-accel', 'tcg', '-m', '1536', '-smp', '2', '-nographic', '-display', 'none', '-monitor', 'none',
    '-serial', `file:${log}`, '-no-reboot',
    '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=n0,mac=${N0_MAC},bootindex=1`, '-boot', 'n',
  ], { reject: false, stdin: 'ignore', all: true });
  try {
    while (performance.now() - started < 420_000) {
      if (vm.exitCode !== null) throw new Error(`qemu exited: ${(await vm).all}`);
      if (existsSync(log) && readFileSync(log, 'latin1').includes('cw-node-agent: n0 is up')) return (performance.now() - started) / 1000;
      await sleep(250);
    }
    throw new Error(`${label}: no "n0 is up" within 420 s; serial:\n${existsSync(log) ? readFileSync(log, 'latin1').slice(-4000) : ''}`);
  } finally {
    vm.kill('SIGKILL');
    await vm.catch(() => undefined);
  }
}

async function download(url: string, file: string): Promise<void> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`GET ${url}: ${res.status}`);
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(file));
}

async function p1(): Promise<string> {
  step('P1: DefaultImage + DefaultBoot via cw-add-boot-config --make-defaults (debootstrap; a few minutes)');
  await admin.open();
  await run('node', [containerctl, 'add-admin', 'bench', `@${admin.keyFile}.pub`, '--name', NAME]);
  await tool('add-boot-config', ['--make-defaults'], 1_200_000);
  const conf = join(work, 'cluster.conf');
  writeFileSync(conf, `iprange 10.213.14.100/24\nnode ${N0_MAC}\n`);
  await tool('cluster-conf', ['load', conf]);

  // The baseline serves exactly what the appliance serves: the node's iPXE script and its three files.
  const scriptRes = await fetch(`http://${HEAD_IP}/api/v1/boot/ipxe/${N0_MAC}`);
  const script = await scriptRes.text();
  const paths = [...script.matchAll(/http:\/\/10\.213\.14\.10(\/boot\/\S+\/(?:kernel|initramfs))/g)].map((m) => m[1]!);
  const image = /cw\.image=(\S+)/.exec(script)?.[1];
  if (paths.length !== 2 || !image) throw new Error(`unexpected iPXE script:\n${script}`);
  const www = join(work, 'www');
  for (const p of [...paths, image]) {
    mkdirSync(join(www, p, '..'), { recursive: true });
    await download(`http://${HEAD_IP}${p}`, join(www, p));
  }
  writeFileSync(join(www, 'n0.ipxe'), script.replaceAll(HEAD_IP, `${BASE_NET}.10`));
  const tftp = join(work, 'tftp');
  mkdirSync(tftp, { recursive: true });
  writeFileSync(join(tftp, 'undionly.kpxe'), readFileSync('/usr/lib/ipxe/undionly.kpxe'));

  await run('ip', ['link', 'add', BASE_BRIDGE, 'type', 'bridge']);
  await run('ip', ['link', 'set', BASE_BRIDGE, 'up']);
  await run('iptables', ['-I', ...ruleFor(BASE_BRIDGE)]);
  await netns(BASE_NS, BASE_BRIDGE, `${BASE_NET}.10/24`);
  const nginxDir = join(work, 'base-nginx');
  daemon('ip', ['netns', 'exec', BASE_NS, 'nginx', '-c', bareNginxConf(nginxDir, www, '80')]);
  daemon('ip', ['netns', 'exec', BASE_NS, 'dnsmasq', '--keep-in-foreground', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root',
    '--interface=eth0', '--bind-interfaces', `--dhcp-range=${BASE_NET}.100,${BASE_NET}.200,255.255.255.0,1h`,
    `--dhcp-host=${N0_MAC},${BASE_NET}.100,n0`, '--dhcp-userclass=set:ipxe,iPXE',
    `--dhcp-boot=tag:ipxe,http://${BASE_NET}.10/n0.ipxe`, '--dhcp-boot=tag:!ipxe,undionly.kpxe',
    '--enable-tftp', `--tftp-root=${tftp}`, `--dhcp-leasefile=${join(work, 'dnsmasq.leases')}`, '--log-dhcp']);
  for (const [bridge, tap] of [[NET, TAP], [BASE_BRIDGE, BASE_TAP]] as const) {
    await run('ip', ['tuntap', 'add', tap, 'mode', 'tap']);
    await run('ip', ['link', 'set', tap, 'master', bridge, 'up']);
  }
  await sleep(1000);

  const appliance: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    appliance.push(await bootVm(TAP, `appliance-${i}`));
    baseline.push(await bootVm(BASE_TAP, `baseline-${i}`));
    step(`  round ${i + 1}: appliance ${appliance.at(-1)!.toFixed(1)} s, baseline ${baseline.at(-1)!.toFixed(1)} s`);
  }
  const a = median(appliance);
  const b = median(baseline);
  return `P1  VM power-on -> up (BIOS, rwram, TCG): appliance ${a.toFixed(1)} s, dnsmasq + nginx ${b.toFixed(1)} s (medians of ${ROUNDS}: ${appliance.map((x) => x.toFixed(1)).join('/')} vs ${baseline.map((x) => x.toFixed(1)).join('/')}); ratio ${(a / b).toFixed(2)} (target <= 1.2)`;
}

const which = process.argv.slice(2);
const want = (p: string) => which.length === 0 || which.includes(p);
const lines: string[] = [];
// P1's tools, named before anything is set up (Debian packages in brackets).
if (want('p1')) {
  const needed: Array<[string, string]> = [
    ['qemu-system-x86_64', 'qemu-system-x86'],
    ['dnsmasq', 'dnsmasq-base'],
    ['debootstrap', 'debootstrap'],
    ['mksquashfs', 'squashfs-tools'],
  ];
  const missing = [];
  for (const [bin, pkg] of needed) if ((await quiet('sh', ['-c', 'command -v "$1"', 'sh', bin])).exitCode !== 0) missing.push(`${bin} (${pkg})`);
  if (missing.length > 0) {
    console.error(`ERROR: P1 needs ${missing.join(', ')}; or run only P2: bash bench/netboot.sh p2`);
    process.exit(1);
  }
}
try {
  await cleanup();
  mkdirSync(home, { recursive: true });
  step('starting the appliance');
  await startAppliance();
  await waitHttp(`http://${HEAD_IP}/`);
  if (want('p2')) lines.push(await p2());
  if (want('p1')) lines.push(await p1());
} finally {
  await cleanup();
  rmSync(work, { recursive: true, force: true });
}
console.log(lines.join('\n'));
console.log(`(load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})`);
