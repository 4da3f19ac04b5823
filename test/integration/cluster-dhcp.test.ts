// The cluster model through the real appliance: the cw-* tools on the host talk to its API through
// nginx with an ssh-agent key, and its dhcpd answers real DHCP clients in namespaces on the same bridge.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdminSession, TestHost, ctl, dhcpLease, sh, startOnTestBridge, tempDir, waitFor, writeLeaseScript } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwdh0';
const SUBNET = '10.213.10.0/24';
const HEAD_IP = '10.213.10.10';
const NAME = 'cwit-dhcp';
const N0_MAC = '52:54:00:7b:00:01';
const N1_MAC = '52:54:00:7b:00:02';
const NEW_MAC = '52:54:00:7b:00:03';
const STRANGER_MAC = '52:54:00:7b:00:99';
const n0Host = new TestHost('cwdhn0', NET, '', N0_MAC);
const newHost = new TestHost('cwdhn3', NET, '', NEW_MAC);
const stranger = new TestHost('cwdhx', NET, '', STRANGER_MAC);
const storage = join(tempDir('cwdh'), 'cw_container_storage');
const home = tempDir('cwdh-home');
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`);
const tool = (name: string, args: string[]) => admin.tool(name, args);
let imageRef = '';
let udhcpcScript = '';

async function cleanup(): Promise<void> {
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  for (const h of [n0Host, newHost, stranger]) await h.destroy();
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

const lease = (host: TestHost, tries = 1) => dhcpLease(host, udhcpcScript, tries);

test.before(async () => {
  await cleanup();
  imageRef = await startOnTestBridge({ name: NAME, net: NET, subnet: SUBNET, headIp: HEAD_IP, storage, admin });
  for (const h of [n0Host, newHost, stranger]) await h.create();
  udhcpcScript = writeLeaseScript(home);
});

test.after.always(cleanup);

test('seed 000: empty ls, cluster-conf load, ls -l shows n0 and n1 with their addresses', async (t) => {
  const empty = await tool('nodectl', ['ls']);
  t.is(empty.exitCode, 1, empty.all);
  t.is(empty.stderr.trim(), 'ERROR: No nodes found, nothing was done');

  const conf = join(home, 'cluster.conf');
  writeFileSync(conf, `iprange 10.213.10.100/24\nnode ${N0_MAC}\nnode ${N1_MAC}\n`);
  const load = await tool('cluster-conf', ['load', conf]);
  t.is(load.exitCode, 0, load.all);
  const ls = await tool('nodectl', ['ls', '-l']);
  t.is(ls.exitCode, 0, ls.all);
  t.regex(ls.stdout, /n0[\s\S]*10\.213\.10\.100/);
  t.regex(ls.stdout, /n1[\s\S]*10\.213\.10\.101/);
});

test("a real DHCP client with n0's MAC gets exactly n0's address; a stranger gets nothing", async (t) => {
  const { value, ms } = await waitFor(() => lease(n0Host), 20_000, 200);
  t.is(value, '10.213.10.100');
  t.log(`n0 leased ${value} (${ms} ms after the load returned)`);
  t.is(await lease(stranger, 2), undefined);
});

test('a node created with cw-nodectl is answered, and removing it stops the answers', async (t) => {
  const create = await tool('nodectl', ['create', `mac=${NEW_MAC}`]);
  t.is(create.exitCode, 0, create.all);
  const created = Date.now();
  const { value } = await waitFor(() => lease(newHost), 10_000, 0);
  t.log(`new node leased ${value} ${Date.now() - created} ms after create returned`);
  t.is(value, '10.213.10.102');

  const rm = await tool('nodectl', ['-i', 'n2', 'rm']);
  t.is(rm.exitCode, 0, rm.all);
  await waitFor(async () => (await lease(newHost, 2)) === undefined, 10_000, 0);
  t.pass();
});

test('nodes survive stop and the printed start command', async (t) => {
  const stop = await ctl(['stop', '--name', NAME]);
  t.is(stop.exitCode, 0, stop.all);
  const line = stop.stdout.split('\n').find((l) => l.trim().startsWith('cw-containerctl start'))!;
  const again = await ctl(line.trim().split(/\s+/).slice(1));
  t.is(again.exitCode, 0, again.all);
  const ls = await tool('nodectl', ['ls', '-l']);
  t.is(ls.exitCode, 0, ls.all);
  t.regex(ls.stdout, /n1[\s\S]*10\.213\.10\.101/);
  const { value } = await waitFor(() => lease(n0Host), 20_000, 200);
  t.is(value, '10.213.10.100');
});
