// Cluster figures with 10,000 nodes: `cw-cluster-conf load`, `cw-nodectl ls -l`, API latency at 64
// concurrent single-node GETs, DHCP time from `cw-nodectl create` to the first offer (median of 20), and
// perfdhcp's rate against the appliance's dhcpd vs the same rendered dhcpd.conf run bare.
// Usage: npx tsx bench/cluster.ts [IMAGE:TAG]
//   needs root, Docker with a loaded cw-headnode image, wrk, perfdhcp (Debian kea-admin) and dhcpd
//   (isc-dhcp-server) on the host. Everything runs on bridges and namespaces this script creates (plus
//   one iptables ACCEPT rule for its own bare bridge), all removed at the end. The load average is
//   printed because other work on the machine shifts every figure.
//   CW_BENCH_STORE=etcd: the head's database in etcd (a member on the head) instead of SQLite.
//   CW_BENCH_PARTS: the figures after the load, a comma list of ls, api, dhcp, perfdhcp (default all).
//   CW_BENCH_FIGURES=FILE: the figures as JSON in FILE too (bench/heads.sh puts the stores side by side).
import { execa, type ResultPromise } from 'execa';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { ApiClient, type TokenCache } from '../src/tools/common/client/api-client.js';
import { AdminSession } from '../test/integration/helpers.js';

const repo = resolve(import.meta.dirname, '..');
const containerctl = join(repo, 'dist/host/containerctl/main.js');
const NODES = Number(process.env.CW_BENCH_NODES ?? 10_000);
const ROUNDS = Number(process.env.CW_BENCH_DHCP_ROUNDS ?? 20);
const LS_RUNS = 5;
const CONCURRENCY = 64;
const API_SECONDS = 10;
const PERF_SECONDS = 10;
const PERF_RUNS = 3;
// Offered DORA exchanges/s: above what dhcpd completes here (~7,000/s bare on 2 cores), so the achieved
// rate is the server's capacity under load.
const PERF_RATE = Number(process.env.CW_BENCH_PERFDHCP_RATE ?? 10_000);
const STORE = process.env.CW_BENCH_STORE || 'sqlite';
if (STORE !== 'sqlite' && STORE !== 'etcd') throw new Error(`CW_BENCH_STORE must be sqlite or etcd, not "${STORE}"`);
const ALL_PARTS = ['ls', 'api', 'dhcp', 'perfdhcp'];
const PARTS = new Set((process.env.CW_BENCH_PARTS ?? ALL_PARTS.join(',')).split(',').filter(Boolean));
for (const part of PARTS) if (!ALL_PARTS.includes(part)) throw new Error(`CW_BENCH_PARTS: unknown part "${part}" (known: ${ALL_PARTS.join(', ')})`);
// The issue's targets: 3 s for the load on SQLite, 5 s with the database in etcd.
const LOAD_TARGET = STORE === 'etcd' ? '<= 5 s' : '<= 3 s';

// One /16 for the head, the test clients and 10,000 node addresses (10.220.1.0 up to 10.220.40.15).
const NET = 'cwbn0';
const SUBNET = '10.220.0.0/16';
const HEAD_IP = '10.220.0.10';
const IPRANGE = '10.220.1.0/16';
const NAME = 'cw-bench-cluster';
const BARE_BRIDGE = 'cwbn1';
const ADMIN = 'bench';
// Bridged frames pass the host's iptables FORWARD chain (br_netfilter), whose policy Docker sets to DROP;
// Docker accepts traffic within its own bridges, this rule does the same for the bare dhcpd's bridge.
const BARE_BRIDGE_RULE = ['FORWARD', '-i', BARE_BRIDGE, '-o', BARE_BRIDGE, '-m', 'comment', '--comment', 'cw-bench-cluster', '-j', 'ACCEPT'];

// The figures are Docker's; the CLI would otherwise prefer a running Podman socket.
process.env.DOCKER_HOST ??= 'unix:///var/run/docker.sock';

const hex = (n: number) => n.toString(16).padStart(2, '0');
/** MAC of node i (up to 65,536 nodes). */
const nodeMac = (i: number) => `52:54:01:00:${hex(i >> 8)}:${hex(i & 255)}`;
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) => sorted(xs)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const epochMs = () => performance.timeOrigin + performance.now();
/** Progress on stderr; the figures go to stdout at the end. */
const step = (what: string) => process.stderr.write(`[bench] ${what}\n`);

const work = mkdtempSync(join(tmpdir(), 'cwbn-'));
const storage = join(work, 'storage');
const home = join(work, 'home');
const probeFile = join(work, 'dhcp-probe.mjs');
// Admin traffic is HTTPS (the API refuses credentials over plain HTTP from another machine); the tools
// pin the certificate tool-config proposes, wrk does not check it.
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`, {}, ADMIN);

/** A network namespace whose eth0 is a veth enslaved to `bridge`. */
class Netns {
  constructor(
    readonly name: string,
    readonly bridge: string,
    readonly cidr: string,
    readonly mac: string,
  ) {}
  get hostVeth(): string {
    return `v${this.name}`;
  }
  async create(): Promise<void> {
    await this.destroy();
    await execa('ip', ['netns', 'add', this.name]);
    await execa('ip', ['link', 'add', this.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.name]);
    await execa('ip', ['link', 'set', this.hostVeth, 'master', this.bridge, 'up']);
    await this.exec(['ip', 'link', 'set', 'eth0', 'address', this.mac]);
    await this.exec(['ip', 'link', 'set', 'lo', 'up']);
    await this.exec(['ip', 'link', 'set', 'eth0', 'up']);
    await this.exec(['ip', 'addr', 'add', this.cidr, 'dev', 'eth0']);
    // Limited broadcast (DHCP) needs a route out of eth0; nothing else is sent from here.
    await this.exec(['ip', 'route', 'add', '255.255.255.255/32', 'dev', 'eth0']);
  }
  exec(args: string[]) {
    return execa('ip', ['netns', 'exec', this.name, ...args], { reject: true, timeout: 120_000 });
  }
  spawn(args: string[]): ResultPromise<{ reject: false; all: true; stdin: 'ignore' }> {
    return execa('ip', ['netns', 'exec', this.name, ...args], { reject: false, all: true, stdin: 'ignore' });
  }
  async destroy(): Promise<void> {
    await execa('ip', ['netns', 'del', this.name], { reject: false });
    await execa('ip', ['link', 'del', this.hostVeth], { reject: false });
  }
}

const prober = new Netns('cwbnc', NET, '10.220.0.60/16', '52:54:02:00:00:fe');
const loader = new Netns('cwbnp', NET, '10.220.0.50/16', '52:54:02:00:01:01');
const bareServer = new Netns('cwbns', BARE_BRIDGE, `${HEAD_IP}/16`, '52:54:02:00:02:01');
const bareLoader = new Netns('cwbnq', BARE_BRIDGE, '10.220.0.50/16', '52:54:02:00:01:01');

// A DHCP client that only asks: broadcasts a DISCOVER for MAC every INTERVAL ms (xid fixed) and prints
// the moment the first OFFER for that MAC arrives: "READY", then "OFFER <yiaddr> <epoch ms>" or "TIMEOUT".
const PROBE_SOURCE = String.raw`
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
const [mac, intervalMs, timeoutMs] = process.argv.slice(2);
const chaddr = Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
const xid = randomBytes(4);
const p = Buffer.alloc(300);
p[0] = 1; p[1] = 1; p[2] = 6; xid.copy(p, 4); p.writeUInt16BE(0x8000, 10); chaddr.copy(p, 28);
Buffer.from([99, 130, 83, 99, 53, 1, 1, 61, 7, 1, ...chaddr, 55, 3, 1, 3, 6, 255]).copy(p, 236);
function type(b) {
  for (let i = 240; i + 1 < b.length && b[i] !== 255; i += b[i] === 0 ? 1 : 2 + b[i + 1]) if (b[i] === 53) return b[i + 2];
}
const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
let timer;
const finish = (line) => { process.stdout.write(line + '\n'); clearInterval(timer); sock.close(); };
sock.on('message', (b) => {
  if (b.length < 244 || b[0] !== 2 || !b.subarray(4, 8).equals(xid) || !b.subarray(28, 34).equals(chaddr) || type(b) !== 2) return;
  finish('OFFER ' + [...b.subarray(16, 20)].join('.') + ' ' + (performance.timeOrigin + performance.now()).toFixed(1));
});
sock.bind(68, '0.0.0.0', () => {
  sock.setBroadcast(true);
  const send = () => sock.send(p, 67, '255.255.255.255');
  timer = setInterval(send, Number(intervalMs));
  send();
  process.stdout.write('READY\n');
  setTimeout(() => finish('TIMEOUT'), Number(timeoutMs)).unref();
});
`;

interface Probe {
  ready: Promise<void>;
  /** Epoch ms of the first offer and the address offered, or undefined on timeout. */
  offer: Promise<{ at: number; ip: string } | undefined>;
}

/** Starts DISCOVERs for `mac` from the prober namespace every `intervalMs`. */
function probe(mac: string, timeoutMs: number, intervalMs = 20): Probe {
  const child = prober.spawn(['node', probeFile, mac, String(intervalMs), String(timeoutMs)]);
  let out = '';
  const ready = new Promise<void>((resolveReady, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) resolveReady();
    });
    void child.then((r) => reject(new Error(`probe ended before it was ready: ${r.all}`)));
  });
  const offer = child.then((r) => {
    const m = /^OFFER (\S+) ([\d.]+)$/m.exec(r.stdout);
    if (!m && !/TIMEOUT/.test(r.stdout)) throw new Error(`probe failed: ${r.all}`);
    return m ? { ip: m[1]!, at: Number(m[2]) } : undefined;
  });
  return { ready, offer };
}

/** Runs a cw-* tool as the admin would (HOME with settings.ini, SSH_AUTH_SOCK with the key), timed. */
async function tool(name: string, args: string[]): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  const r = await admin.tool(name, args, 300_000);
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`cw-${name} ${args.join(' ')} failed:\n${r.all}`);
  return { ms, stdout: r.stdout };
}

async function ctl(args: string[]): Promise<void> {
  const r = await execa('node', [containerctl, ...args], { reject: false, all: true, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`cw-containerctl ${args.join(' ')} failed:\n${r.all}`);
}

async function newestImage(): Promise<string> {
  const r = await execa('docker', ['images', '--filter', 'label=io.cw-headnode.appliance=true', '--format', '{{.Repository}}:{{.Tag}}']);
  const ref = r.stdout.split('\n').filter(Boolean)[0];
  if (!ref) throw new Error('no cw-headnode image loaded: run cw-containerctl img-load first');
  return ref;
}

async function cleanup(): Promise<void> {
  await execa('docker', ['rm', '-f', NAME], { reject: false });
  for (const ns of [prober, loader, bareServer, bareLoader]) await ns.destroy(); // also ends dhcpd in cwbns
  await execa('docker', ['network', 'rm', NET], { reject: false });
  await execa('ip', ['link', 'del', BARE_BRIDGE], { reject: false });
  for (let i = 0; i < 5 && (await execa('iptables', ['-D', ...BARE_BRIDGE_RULE], { reject: false })).exitCode === 0; i++);
  admin.close();
}

async function setUp(image: string): Promise<void> {
  mkdirSync(home, { recursive: true });
  writeFileSync(probeFile, PROBE_SOURCE);
  await admin.open();
  await execa('docker', ['network', 'create', '--subnet', SUBNET, '-o', `com.docker.network.bridge.name=${NET}`, NET]);
  // CW_BENCH_STORE=etcd: the same appliance with its database in etcd (a member on the head), for the
  // etcd figures beside SQLite's (bench/heads.sh runs both).
  const store = STORE === 'etcd' ? ['--etcd-member', '--etcd-name', 'bench'] : [];
  await ctl(['start', storage, image, '--name', NAME, '--network', NET, '--ip', HEAD_IP, '--ssh-port', '22', ...store]);
  await ctl(['add-admin', ADMIN, `@${admin.keyFile}.pub`, '--name', NAME]);
  await admin.adopt(NAME);
  await prober.create();
  await loader.create();
}

let pinned: Agent | undefined;
/** HTTPS to the head node, trusting exactly the certificate it made (its addresses are in it). */
function headTls(): Agent {
  pinned ??= new Agent({ connect: { ca: readFileSync(join(storage, 'tls', 'server.crt')) } });
  return pinned;
}

let etcdAgent: Agent | undefined;
/**
 * Range requests etcd has answered so far (its /metrics, asked with the member certificate the head made),
 * or undefined on SQLite: how many times the API went to etcd while it served the GETs.
 */
async function etcdRanges(): Promise<number | undefined> {
  if (STORE !== 'etcd') return undefined;
  const pki = join(storage, 'secrets', 'etcd');
  etcdAgent ??= new Agent({ connect: { ca: readFileSync(join(pki, 'ca.crt')), cert: readFileSync(join(pki, 'member.crt')), key: readFileSync(join(pki, 'member.key')) } });
  const res = await request(`https://${HEAD_IP}:2379/metrics`, { dispatcher: etcdAgent });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`etcd /metrics: ${res.statusCode} ${text.slice(0, 200)}`);
  const counts = [...text.matchAll(/^grpc_server_handled_total\{[^}]*grpc_method="Range"[^}]*\} (\S+)$/gm)].map((m) => Number(m[1]));
  if (counts.length === 0) throw new Error('etcd /metrics has no grpc_server_handled_total for Range');
  return counts.reduce((a, b) => a + b, 0);
}

/** A bearer token for ADMIN, proved once through the shared API client. */
async function bearerToken(): Promise<string> {
  const tokens: TokenCache = new Map();
  const api = new ApiClient({ baseUrl: `https://${HEAD_IP}/api/v1`, user: ADMIN, sslVerify: admin.sslVerify, env: { SSH_AUTH_SOCK: admin.agentSock }, tokens });
  await api.get('/node/n0');
  await api.close();
  const token = [...tokens.values()][0]?.token;
  if (!token) throw new Error('no token cached after an authenticated request');
  return token;
}

interface Latency {
  cpu?: Record<string, number>;
  /** etcd Range requests during the measurement (database in etcd only). */
  etcdRanges?: number;
  count: number;
  errors: number;
  seconds: number;
  p50: number;
  p90?: number;
  p99: number;
  max: number;
}

// wrk (C, no garbage collector of its own to stall the measurement) drives the load through nginx: each
// request GETs a random node; at the end it prints its own figures as one JSON line.
const WRK_SCRIPT = String.raw`
local token = os.getenv("CW_BENCH_TOKEN")
local nodes = tonumber(os.getenv("CW_BENCH_NODES"))
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/v1/node/n" .. math.random(0, nodes - 1), { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/json" })
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"count":%d,"seconds":%.3f,"errors":%d,"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
`;

/** CONCURRENCY connections GET /api/v1/node/n<random> through nginx for `seconds` (after a 3 s warm-up). */
async function apiLatency(token: string, seconds: number): Promise<Latency> {
  const script = join(work, 'api-get.lua');
  writeFileSync(script, WRK_SCRIPT);
  const wrk = (s: number) =>
    execa('wrk', ['-t1', `-c${CONCURRENCY}`, `-d${s}s`, '-s', script, `https://${HEAD_IP}/`], {
      env: { CW_BENCH_TOKEN: token, CW_BENCH_NODES: String(NODES) },
      timeout: (s + 30) * 1000,
    });
  await wrk(3);
  const before = await cpuSeconds();
  const rangesBefore = await etcdRanges();
  const reaped = childCpuSeconds();
  const r = await wrk(seconds);
  const generator = childCpuSeconds() - reaped;
  const rangesAfter = await etcdRanges();
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"count"'));
  if (!line) throw new Error(`wrk printed no figures:\n${r.stdout}\n${r.stderr}`);
  const figures = JSON.parse(line) as Latency & { p90: number };
  const cpu = { ...cpuSpent(before, await cpuSeconds()), '(host) load generator': Number(generator.toFixed(2)) };
  const etcd = rangesBefore === undefined || rangesAfter === undefined ? {} : { etcdRanges: rangesAfter - rangesBefore };
  return { ...figures, cpu, ...etcd };
}

/** CPU seconds of this process's children that have ended (cutime + cstime of /proc/self/stat). */
function childCpuSeconds(): number {
  const stat = readFileSafe('/proc/self/stat');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

// The same load run inside the container straight against the API's unix socket (no nginx).
const DIRECT_SOURCE = String.raw`
const http = require('node:http');
const [token, nodes, conc, seconds] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(conc) });
const get = (i) => new Promise((resolve) => {
  const req = http.request({ socketPath: '/run/cw/api.sock', path: '/api/v1/node/n' + i, agent, headers: { authorization: 'Bearer ' + token, host: 'localhost' } }, (res) => {
    let n = 0; res.on('data', (d) => { n += d.length; }); res.on('end', () => resolve(res.statusCode === 200 && n > 0));
  });
  req.on('error', () => resolve(false)); req.end();
});
(async () => {
  const lat = []; let errors = 0;
  const run = async (ms, rec) => { const end = performance.now() + ms; await Promise.all(Array.from({ length: Number(conc) }, async () => {
    while (performance.now() < end && lat.length < 2000000) { const t = performance.now(); const ok = await get(Math.floor(Math.random() * Number(nodes))); if (rec) { lat.push(performance.now() - t); if (!ok) errors++; } }
  })); };
  await run(2000, false);
  const t0 = performance.now(); await run(Number(seconds) * 1000, true);
  const s = (performance.now() - t0) / 1000; lat.sort((a, b) => a - b);
  console.log(JSON.stringify({ count: lat.length, errors, seconds: s, p50: lat[Math.floor(lat.length / 2)], p99: lat[Math.floor(lat.length * 0.99)], max: lat[lat.length - 1] }));
})();
`;

async function apiLatencyDirect(token: string, seconds: number): Promise<Latency | undefined> {
  const r = await execa('docker', ['exec', NAME, 'node', '-e', DIRECT_SOURCE, token, String(NODES), String(CONCURRENCY), String(seconds)], { reject: false, all: true, timeout: 120_000 });
  if (r.exitCode !== 0) {
    console.error(`(direct API measurement skipped: ${r.all?.split('\n')[0]})`);
    return undefined;
  }
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Latency;
}

/** CPU seconds used so far by each process of the container (by command line), its shim and dockerd. */
async function cpuSeconds(extra: Record<string, number> = {}): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const ticks = (pid: number): { cpu: number; ppid: number } | undefined => {
    const stat = readFileSafe(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return stat ? { cpu: (Number(f[11]) + Number(f[12])) / 100, ppid: Number(f[1]) } : undefined;
  };
  const add = (label: string, pid: number) => {
    const t = ticks(pid);
    if (t) out.set(label, (out.get(label) ?? 0) + t.cpu);
  };
  const top = await execa('docker', ['top', NAME, '-eo', 'pid,args'], { reject: false });
  for (const line of top.stdout.split('\n').slice(1)) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m) add(processLabel(m[2]!), Number(m[1]));
  }
  const init = Number((await execa('docker', ['inspect', '-f', '{{.State.Pid}}', NAME], { reject: false })).stdout);
  const shim = init > 0 ? ticks(init)?.ppid : undefined;
  if (shim) add('(host) containerd-shim', shim);
  for (const pid of (await execa('pgrep', ['-x', 'dockerd'], { reject: false })).stdout.split('\n').filter(Boolean)) add('(host) dockerd', Number(pid));
  for (const [label, pid] of Object.entries(extra)) add(label, pid);
  return out;
}

/** `node /opt/cw/dist/appliance/api/main.js` -> `node api/main.js`; `nginx: worker process` -> `nginx worker`. */
function processLabel(args: string): string {
  const words = args.trim().split(/\s+/);
  const exe = words[0]!.split('/').at(-1)!;
  if (exe === 'node' && words[1] === '-e') return 'node -e (load generator)';
  if (exe === 'node' && words[1]) return `node ${words[1].split('/').slice(-2).join('/')}`;
  if (exe === 'nginx:') return `nginx ${words[1] ?? ''}`.trim();
  return exe;
}

/** The CPU seconds each process spent between two `cpuSeconds` snapshots, largest first (>= 0.05 s). */
function cpuSpent(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const spent = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, v]) => v >= 0.05);
  return Object.fromEntries(spent.sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Number(v.toFixed(2))]));
}

const topCpu = (spent: Record<string, number>, n = 4) =>
  Object.entries(spent)
    .slice(0, n)
    .map(([k, v]) => `${k.replace(/^\(host\) /, '')} ${v.toFixed(1)}`)
    .join(', ');

function generatedDhcpdConf(): string {
  return readFileSync(join(storage, 'etc/generated/dhcpd.conf'), 'utf8');
}

async function waitUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Create -> first offer for a fresh MAC, ROUNDS times; the node is deleted after each round. */
async function createToOffer(): Promise<{ offerMs: number[]; createMs: number[]; ips: string[] }> {
  const offerMs: number[] = [];
  const createMs: number[] = [];
  const ips: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const mac = `52:54:02:00:10:${hex(round)}`;
    const p = probe(mac, 10_000);
    await p.ready;
    await sleep(100); // a few unanswered DISCOVERs first: the server is asked before the node exists
    const t0 = epochMs();
    const created = await tool('nodectl', ['create', `mac=${mac}`]);
    const offer = await p.offer;
    if (!offer) throw new Error(`no offer for ${mac} within 10 s of create`);
    offerMs.push(offer.at - t0);
    createMs.push(created.ms);
    ips.push(offer.ip);
    await tool('nodectl', ['-i', mac, 'rm']);
    await waitUntil(`${mac} to leave dhcpd.conf`, () => !generatedDhcpdConf().includes(mac), 10_000);
    await sleep(300); // the reload that follows the rewrite
  }
  return { offerMs, createMs, ips };
}

interface PerfResult {
  rate: number;
  sent: number;
  received: number;
  drops: string;
  output: string;
}

/** perfdhcp from `ns` for PERF_SECONDS at PERF_RATE DORA exchanges/s, MACs drawn from the cluster's. */
async function perfdhcp(ns: Netns, macFile: string): Promise<PerfResult> {
  const r = await execa('ip', ['netns', 'exec', ns.name, 'perfdhcp', '-4', '-l', 'eth0', '-r', String(PERF_RATE), '-p', String(PERF_SECONDS), '-M', macFile], {
    reject: false,
    all: true,
    timeout: (PERF_SECONDS + 60) * 1000,
  });
  const out = r.all ?? '';
  const rate = /Rate:\s*([\d.]+)/.exec(out);
  if (!rate) throw new Error(`perfdhcp gave no rate (exit ${r.exitCode}):\n${out}`);
  const sent = [...out.matchAll(/sent packets:\s*(\d+)/g)].map((m) => Number(m[1]));
  const received = [...out.matchAll(/received packets:\s*(\d+)/g)].map((m) => Number(m[1]));
  const drops = [...out.matchAll(/drops:\s*(\d+)/g)].map((m) => m[1]).join('/');
  return { rate: Number(rate[1]), sent: sent.reduce((a, b) => a + b, 0), received: received.reduce((a, b) => a + b, 0), drops, output: out };
}

/** The bare dhcpd while it runs, stopped at the end whatever happens. */
let bareDhcpd: ResultPromise | undefined;

/** The appliance's rendered dhcpd.conf run by dhcpd itself in a namespace with the head's address. */
async function startBareDhcpd(conf: string): Promise<{ child: ResultPromise }> {
  await execa('ip', ['link', 'del', BARE_BRIDGE], { reject: false });
  await execa('ip', ['link', 'add', BARE_BRIDGE, 'type', 'bridge']);
  await execa('ip', ['link', 'set', BARE_BRIDGE, 'up']);
  await execa('iptables', ['-I', ...BARE_BRIDGE_RULE]);
  await bareServer.create();
  await bareLoader.create();
  const dir = join(work, 'bare');
  mkdirSync(dir, { recursive: true });
  copyFileSync(conf, join(dir, 'dhcpd.conf'));
  writeFileSync(join(dir, 'dhcpd.leases'), '');
  // The appliance's arguments (foreground, log to stderr), with stderr going to a file instead of the supervisor.
  const args = ['-f', '-d', '-4', '-cf', join(dir, 'dhcpd.conf'), '-lf', join(dir, 'dhcpd.leases'), '-pf', join(dir, 'dhcpd.pid'), 'eth0'];
  const child = execa('ip', ['netns', 'exec', bareServer.name, 'dhcpd', ...args], { reject: false, stdin: 'ignore', stdout: { file: join(dir, 'dhcpd.log') }, stderr: { file: join(dir, 'dhcpd.log') } });
  await waitUntil('bare dhcpd to start', () => /Server starting service|Sending on/.test(readFileSafe(join(dir, 'dhcpd.log'))), 30_000).catch((err: unknown) => {
    throw new Error(`${String(err)}:\n${readFileSafe(join(dir, 'dhcpd.log'))}`);
  });
  return { child }; // wrapped: awaiting the child itself would wait for dhcpd to exit
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function main(): Promise<void> {
  const image = process.argv[2] ?? (await newestImage());
  await cleanup();
  const figures: Record<string, unknown> = { image, store: STORE, nodes: NODES, cores: availableParallelism() };
  const rows: Rows = [];
  // Other work on the machine skews every figure: say how busy it was.
  figures.loadavgBefore = loadavg().map((x) => Number(x.toFixed(2)));
  try {
    step('starting the appliance');
    await setUp(image);

    // 1. cluster-conf load of NODES nodes.
    const conf = join(work, 'cluster.conf');
    writeFileSync(conf, `iprange ${IPRANGE}\n${Array.from({ length: NODES }, (_, i) => `node ${nodeMac(i)}\n`).join('')}`);
    step(`cw-cluster-conf load (${NODES} nodes)`);
    const load = await tool('cluster-conf', ['load', conf]);
    const loadedAt = epochMs();
    rows.push([`cluster-conf load, ${NODES} nodes`, `${(load.ms / 1000).toFixed(2)} s`, LOAD_TARGET]);
    figures.loadMs = Math.round(load.ms);

    // The last node of the file answered by dhcpd: the whole load has reached the running server.
    const last = await probe(nodeMac(NODES - 1), 60_000).offer;
    if (!last) throw new Error(`dhcpd never offered an address to ${nodeMac(NODES - 1)}`);
    rows.push(['load returned -> last node offered', `${((last.at - loadedAt) / 1000).toFixed(2)} s`, '(<= 1 s)']);
    figures.loadToLastOfferMs = Math.round(last.at - loadedAt);

    const token = await bearerToken();
    if (PARTS.has('ls')) await lsFigures(token, rows, figures);
    if (PARTS.has('api')) await apiFigures(token, rows, figures);
    if (PARTS.has('dhcp')) await dhcpFigures(rows, figures);
    if (PARTS.has('perfdhcp')) await perfdhcpFigures(rows, figures);
  } finally {
    bareDhcpd?.kill('SIGTERM');
    await cleanup();
    await Promise.all([pinned?.close(), etcdAgent?.close()]);
    rmSync(work, { recursive: true, force: true });
  }
  figures.loadavgAfter = loadavg().map((x) => Number(x.toFixed(2)));
  const la = figures.loadavgBefore as number[];
  console.log(`cw-headnode cluster benchmark: ${image}, database in ${STORE}, ${NODES} nodes (load average before: ${la.join(' ')})`);
  for (const [what, value, target] of rows) console.log(`  ${what.padEnd(42)} ${value.padStart(16)}   ${target.startsWith('(') || !target ? target : `target ${target}`}`.trimEnd());
  console.log(JSON.stringify(figures));
  if (process.env.CW_BENCH_FIGURES) writeFileSync(process.env.CW_BENCH_FIGURES, `${JSON.stringify(figures)}\n`);
}

type Rows = Array<[string, string, string]>;
type Figures = Record<string, unknown>;

/** `cw-nodectl ls -l`, and where its time goes: the tool starting (--help) and the listing itself through nginx. */
async function lsFigures(token: string, rows: Rows, figures: Figures): Promise<void> {
  step('cw-nodectl ls -l');
  const ls: number[] = [];
  for (let i = 0; i < LS_RUNS; i++) {
    const r = await tool('nodectl', ['ls', '-l']);
    const lines = r.stdout.split('\n').filter((l) => /\bn\d+\b/.test(l)).length;
    if (lines < NODES) throw new Error(`ls -l showed ${lines} node lines, expected ${NODES}`);
    ls.push(r.ms);
  }
  rows.push([`nodectl ls -l (median of ${LS_RUNS})`, `${(median(ls) / 1000).toFixed(2)} s`, '<= 0.5 s']);
  figures.lsMs = ls.map(Math.round);
  const nodeAlone: number[] = [];
  const startup: number[] = [];
  const listing: number[] = [];
  for (let i = 0; i < LS_RUNS; i++) {
    const n0 = performance.now();
    await execa('node', ['-e', '0']);
    nodeAlone.push(performance.now() - n0);
    startup.push((await tool('nodectl', ['--help'])).ms);
    const t0 = performance.now();
    const res = await request(`https://${HEAD_IP}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` }, dispatcher: headTls() });
    const body = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`GET /nodes: ${res.statusCode} ${body.slice(0, 200)}`);
    listing.push(performance.now() - t0);
    if (i === 0) figures.nodesListingBytes = body.length;
  }
  rows.push(['  nodectl --help / node -e 0 / GET /nodes', [startup, nodeAlone, listing].map((xs) => (median(xs) / 1000).toFixed(2)).join(' / ') + ' s', '']);
  figures.nodeStartMs = nodeAlone.map(Math.round);
  figures.toolStartMs = startup.map(Math.round);
  figures.getNodesMs = listing.map(Math.round);
}

/** CONCURRENCY concurrent GETs of one node each, through nginx (wrk) and straight to the API's socket. */
async function apiFigures(token: string, rows: Rows, figures: Figures): Promise<void> {
  step(`API: ${CONCURRENCY} concurrent GETs for ${API_SECONDS} s, through nginx and straight to the socket`);
  const api = await apiLatency(token, API_SECONDS);
  if (api.errors > 0) throw new Error(`${api.errors} of ${api.count} API GETs failed`);
  rows.push([`API GET /node, ${CONCURRENCY} concurrent: p99`, `${api.p99.toFixed(1)} ms`, '<= 10 ms']);
  rows.push(['  p50 / p90 / max', `${api.p50.toFixed(1)} / ${(api.p90 ?? 0).toFixed(1)} / ${api.max.toFixed(0)} ms`, '']);
  rows.push(['  throughput', `${(api.count / api.seconds).toFixed(0)} req/s`, '']);
  rows.push(['  CPU s in the 10 s', topCpu(api.cpu ?? {}, 5), '']);
  if (api.etcdRanges !== undefined) rows.push(['  etcd Range requests per GET', (api.etcdRanges / api.count).toFixed(2), `(${api.etcdRanges} in the 10 s)`]);
  figures.api = { ...api, rps: Math.round(api.count / api.seconds) };
  const beforeDirect = await cpuSeconds();
  const direct = await apiLatencyDirect(token, API_SECONDS);
  if (direct) {
    direct.cpu = cpuSpent(beforeDirect, await cpuSeconds());
    rows.push(['  same, API socket in container: p99', `${direct.p99.toFixed(1)} ms`, '(no nginx)']);
    rows.push(['    p50 / throughput', `${direct.p50.toFixed(1)} ms / ${(direct.count / direct.seconds).toFixed(0)}/s`, '']);
    rows.push(['    CPU s in the 12 s (with warm-up)', topCpu(direct.cpu, 3), '']);
    figures.apiDirect = { ...direct, rps: Math.round(direct.count / direct.seconds) };
  }
}

/** DHCP: `cw-nodectl create` -> the first offer for the new MAC. */
async function dhcpFigures(rows: Rows, figures: Figures): Promise<void> {
  step(`DHCP: create -> first offer, ${ROUNDS} rounds`);
  const dhcp = await createToOffer();
  rows.push([`create -> first offer (median of ${ROUNDS})`, `${(median(dhcp.offerMs) / 1000).toFixed(3)} s`, '<= 1 s']);
  rows.push(['  max / create command alone (median)', `${(Math.max(...dhcp.offerMs) / 1000).toFixed(3)} / ${(median(dhcp.createMs) / 1000).toFixed(3)} s`, '']);
  figures.createToOfferMs = dhcp.offerMs.map(Math.round);
  figures.createCommandMs = dhcp.createMs.map(Math.round);
}

/** perfdhcp against the appliance's dhcpd and the same config run bare. */
async function perfdhcpFigures(rows: Rows, figures: Figures): Promise<void> {
  const macFile = join(work, 'macs.txt');
  writeFileSync(macFile, Array.from({ length: NODES }, (_, i) => `${nodeMac(i)}\n`).join(''));
  const confCopy = join(work, 'dhcpd.conf');
  copyFileSync(join(storage, 'etc/generated/dhcpd.conf'), confCopy);
  const hosts = (readFileSync(confCopy, 'utf8').match(/hardware ethernet/g) ?? []).length;
  step('perfdhcp: appliance dhcpd vs the same config bare');
  const bare = await startBareDhcpd(confCopy);
  bareDhcpd = bare.child;
  // Alternate the two servers so that drifts of the machine hit both alike; both stay up throughout,
  // each on its own bridge (the idle one costs nothing).
  const inAppliance: PerfResult[] = [];
  const alone: PerfResult[] = [];
  const bareLabel = { '(bare) dhcpd': bare.child.pid ?? 0 };
  const applianceCpu: Array<Record<string, number>> = [];
  const bareCpu: Array<Record<string, number>> = [];
  for (let i = 0; i < PERF_RUNS; i++) {
    let before = await cpuSeconds(bareLabel);
    inAppliance.push(await perfdhcp(loader, macFile));
    let after = await cpuSeconds(bareLabel);
    applianceCpu.push(cpuSpent(before, after));
    before = after;
    alone.push(await perfdhcp(bareLoader, macFile));
    after = await cpuSeconds(bareLabel);
    bareCpu.push(cpuSpent(before, after));
  }
  const applianceRate = median(inAppliance.map((r) => r.rate));
  const bareRate = median(alone.map((r) => r.rate));
  const ratio = applianceRate / bareRate;
  const runs = `median of ${PERF_RUNS} x ${PERF_SECONDS} s`;
  rows.push([`perfdhcp, appliance dhcpd, ${hosts} hosts`, `${applianceRate.toFixed(0)} DORA/s`, `(${runs}, offered ${PERF_RATE}/s)`]);
  rows.push(['perfdhcp, same dhcpd.conf bare', `${bareRate.toFixed(0)} DORA/s`, `(${runs})`]);
  rows.push(['perfdhcp ratio appliance / bare', `${ratio.toFixed(2)}x`, '>= 0.9x']);
  rows.push(['  CPU s per appliance run (first)', topCpu(applianceCpu[0]!), '']);
  rows.push(['  CPU s per bare run (first)', topCpu(bareCpu[0]!, 2), '']);
  figures.perfdhcp = {
    offeredRate: PERF_RATE,
    seconds: PERF_SECONDS,
    hosts,
    appliance: inAppliance.map(strip),
    bare: alone.map(strip),
    ratio: Number(ratio.toFixed(3)),
    cpuSeconds: { appliance: applianceCpu, bare: bareCpu },
  };
}

const strip = ({ output: _output, ...rest }: PerfResult) => rest;

await main();
