// Node names through the real appliance: a DHCP client in a namespace on the test bridge is handed the
// head node as its DNS server and the cluster's domain, and asks that server (the real dig) for n0,
// n0.DOMAIN and the reverse name; an address changed with cw-nodectl is answered within a second; a
// domain changed with cw-clusterctl is answered and handed out. status and tool-config show the server.
import test from 'ava';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireTools } from '../helpers/tools.js';
import { AdminSession, TestHost, ctl, sh, startOnTestBridge, tempDir, waitFor } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwdns0';
const SUBNET = '10.213.53.0/24';
const HEAD_IP = '10.213.53.10';
const NAME = 'cwit-dns';
const N0_MAC = '52:54:00:7d:00:01';
const node = new TestHost('cwdnsn0', NET, '', N0_MAC);
const storage = join(tempDir('cwdns'), 'cw_container_storage');
const home = tempDir('cwdns-home');
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`);
const tool = (name: string, args: string[]) => admin.tool(name, args);
const dnsTest = requireTools('root', 'ip', 'busybox', 'dig');
let script = '';

async function cleanup(): Promise<void> {
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  await node.destroy();
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

interface Lease {
  ip: string;
  dns: string;
  domain: string;
  search: string;
}

/** One DHCP exchange with busybox udhcpc: the address, name servers and domain it was handed. */
async function lease(): Promise<Lease | undefined> {
  const r = await node.exec(['busybox', 'udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '3', '-T', '1', '-O', 'search', '-s', script], { reject: false, timeout: 30_000 });
  const m = /^LEASE ip=(\S*) dns=(.*) domain=(.*) search=(.*)$/m.exec(r.stdout);
  return m ? { ip: m[1]!, dns: m[2]!.trim(), domain: m[3]!.trim(), search: m[4]!.trim() } : undefined;
}

/** `dig +short` from the node's namespace at the server it was handed. */
async function dig(server: string, ...args: string[]): Promise<string> {
  const r = await node.exec(['dig', '+time=1', '+tries=1', '+short', `@${server}`, ...args], { reject: false, timeout: 10_000 });
  return r.stdout.trim();
}

test.before(async () => {
  await cleanup();
  await startOnTestBridge({ name: NAME, net: NET, subnet: SUBNET, headIp: HEAD_IP, storage, admin });
  await node.create();
  script = join(home, 'udhcpc-dns.sh');
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE ip=$ip dns=$dns domain=$domain search=$search"\nexit 0\n');
  chmodSync(script, 0o755);
});

test.after.always(cleanup);

dnsTest('n0 and n0.DOMAIN resolve through the server dhcpd hands out, reverse too, and a new address is answered within 1 s', async (t) => {
  const conf = join(home, 'cluster.conf');
  writeFileSync(conf, `iprange 10.213.53.100/24\nnode ${N0_MAC}\n`);
  const load = await tool('cluster-conf', ['load', conf]);
  t.is(load.exitCode, 0, load.all);

  const { value: got } = await waitFor(() => lease(), 20_000, 200);
  t.deepEqual(got, { ip: '10.213.53.100', dns: HEAD_IP, domain: 'cluster.internal', search: 'cluster.internal' });
  await node.exec(['ip', 'addr', 'add', `${got.ip}/24`, 'dev', 'eth0']);

  await waitFor(async () => (await dig(got.dns, 'n0')) === '10.213.53.100', 10_000, 100);
  t.is(await dig(got.dns, `n0.${got.domain}`), '10.213.53.100');
  t.is(await dig(got.dns, '-x', '10.213.53.100'), 'n0.cluster.internal.');
  const missing = await node.exec(['dig', '+time=1', '+tries=1', `@${got.dns}`, 'n7.cluster.internal'], { reject: false });
  t.regex(missing.stdout, /status: NXDOMAIN/);

  const update = await tool('nodectl', ['-i', 'n0', 'update', 'ip=10.213.53.120']);
  t.is(update.exitCode, 0, update.all);
  const changed = Date.now();
  await waitFor(async () => (await dig(got.dns, 'n0')) === '10.213.53.120', 5000, 0);
  const ms = Date.now() - changed;
  t.log(`n0's new address answered ${ms} ms after cw-nodectl update returned`);
  t.true(ms <= 1000, `answered after ${ms} ms`);
  t.is(await dig(got.dns, '-x', '10.213.53.120'), 'n0.cluster.internal.');
  t.is(await dig(got.dns, '-x', '10.213.53.100'), '');
});

dnsTest('a new domain set with cw-clusterctl is answered and handed out by dhcpd', async (t) => {
  const set = await tool('clusterctl', ['--set-domain', 'hpc.example.org']);
  t.is(set.exitCode, 0, set.all);
  t.is(set.stdout.trim(), 'Domain: hpc.example.org');
  await waitFor(async () => (await dig(HEAD_IP, 'n0.hpc.example.org')) === '10.213.53.120', 5000, 50);
  t.is(await dig(HEAD_IP, '-x', '10.213.53.120'), 'n0.hpc.example.org.');
  await node.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
  const { value: got } = await waitFor(async () => {
    const l = await lease();
    return l?.domain === 'hpc.example.org' ? l : undefined;
  }, 20_000, 200);
  t.like(got, { ip: '10.213.53.120', dns: HEAD_IP, search: 'hpc.example.org' });
});

dnsTest('status and tool-config show the DNS server', async (t) => {
  const status = await ctl(['status', '--name', NAME]);
  t.is(status.exitCode, 0, status.all);
  t.regex(status.stdout, /dns 53\/udp\+tcp/);
  t.regex(status.stdout, /^\s*dns\s+\S+/m);
  const config = await ctl(['tool-config', '--name', NAME]);
  t.is(config.exitCode, 0, config.all);
  t.regex(config.stdout, new RegExp(`answered by the head node's DNS server at ${HEAD_IP.replaceAll('.', '\\.')}: dig @`));
});
