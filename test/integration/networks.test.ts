// The appliance on a management network plus a service network, each a Linux bridge of the host, without
// host networking or --privileged — once through `cw-containerctl start --network … --service-network …`,
// once through compose.networks.yaml with docker-compose. Each time: healthy; an address on both bridges;
// a real DHCP client on the management bridge gets its node's address; the same MAC on the service bridge
// gets nothing (dhcpd serves the cluster network only); a host on the service bridge reaches the appliance.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireTools } from '../helpers/tools.js';
import { AdminSession, ctl, dhcpLease, imageTarball, repoRoot, sh, TestHost, tempDir, waitFor, writeLeaseScript } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

interface Layout {
  name: string;
  mgtBridge: string;
  svcBridge: string;
  /** First three octets of the management and service /24s. */
  mgt: string;
  svc: string;
  nodeMac: string;
}

const CTL: Layout = { name: 'cwit-nets-ctl', mgtBridge: 'cwmgt1', svcBridge: 'cwsvc1', mgt: '10.213.62', svc: '10.213.63', nodeMac: '52:54:00:6e:01:01' };
const COMPOSE: Layout = { name: 'cwit-nets-compose', mgtBridge: 'cwmgt2', svcBridge: 'cwsvc2', mgt: '10.213.64', svc: '10.213.65', nodeMac: '52:54:00:6e:02:01' };
const PROJECT = 'cwitnets';
const COMPOSE_FILE = join(repoRoot, 'compose.networks.yaml');
const top = tempDir('cwnets');
const netsTest = requireTools('root', 'ip', 'busybox', 'docker-compose');

const hostsOf = (l: Layout) => ({
  node: new TestHost(`${l.mgtBridge}n`, l.mgtBridge, '', l.nodeMac),
  // The node's MAC again, on the service network: dhcpd must not answer it there.
  svcTwin: new TestHost(`${l.svcBridge}n`, l.svcBridge, '', l.nodeMac),
  svcHost: new TestHost(`${l.svcBridge}h`, l.svcBridge, `${l.svc}.50/24`, '52:54:00:6e:0f:01'),
});

function composeEnv(l: Layout, storage: string): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    CW_NAME: l.name,
    CW_STORAGE: storage,
    CW_MGT_BRIDGE: l.mgtBridge,
    CW_MGT_SUBNET: `${l.mgt}.0/24`,
    CW_MGT_IP: `${l.mgt}.10`,
    CW_SVC_BRIDGE: l.svcBridge,
    CW_SVC_SUBNET: `${l.svc}.0/24`,
    CW_SVC_IP: `${l.svc}.10`,
  };
}

const compose = (args: string[], env: Record<string, string>) =>
  execa('docker-compose', ['-p', PROJECT, '-f', COMPOSE_FILE, ...args], { env, reject: false, all: true, stdin: 'ignore', timeout: 300_000 });

async function cleanup(): Promise<void> {
  await compose(['down', '--volumes', '--remove-orphans'], composeEnv(COMPOSE, join(top, 'compose-storage')));
  await sh('docker', ['rm', '-f', CTL.name, COMPOSE.name], { reject: false });
  for (const net of [CTL.mgtBridge, CTL.svcBridge]) await sh('docker', ['network', 'rm', net], { reject: false });
  for (const l of [CTL, COMPOSE]) for (const h of Object.values(hostsOf(l))) await h.destroy();
}

test.before(cleanup);
test.after.always(async () => {
  await cleanup();
  rmSync(top, { recursive: true, force: true });
});

/** What both ways must give: health, both addresses, DHCP on the management bridge only, the service network reachable. */
async function checkServing(t: ExecutionContext, l: Layout, admin: AdminSession): Promise<void> {
  const inspect = JSON.parse((await sh('docker', ['inspect', l.name])).stdout)[0];
  t.is(inspect.HostConfig.NetworkMode === 'host', false);
  t.is(inspect.HostConfig.Privileged, false);
  const addresses = Object.values(inspect.NetworkSettings.Networks as Record<string, { IPAddress: string }>).map((n) => n.IPAddress).sort();
  t.deepEqual(addresses, [`${l.mgt}.10`, `${l.svc}.10`]);

  const hosts = hostsOf(l);
  for (const h of Object.values(hosts)) await h.create();
  const conf = join(admin.home, 'cluster.conf');
  writeFileSync(conf, `iprange ${l.mgt}.100/24\nnode ${l.nodeMac}\n`);
  const load = await admin.tool('cluster-conf', ['load', conf]);
  t.is(load.exitCode, 0, load.all);
  const script = writeLeaseScript(admin.home);
  const { value } = await waitFor(() => dhcpLease(hosts.node, script), 30_000, 200);
  t.is(value, `${l.mgt}.100`);
  t.is(await dhcpLease(hosts.svcTwin, script, 3), undefined, 'no DHCP answer on the service network');
  // The service network reaches the appliance (as a BMC or switch would), on its own address there.
  const http = await hosts.svcHost.exec(['busybox', 'wget', '-q', '-O', '-', `http://${l.svc}.10/api/v1/boot/authorized-keys`], { reject: false, timeout: 20_000 });
  t.regex(http.stdout, /^ssh-ed25519 \S+ cw-appliance/, http.stderr);
  for (const h of Object.values(hosts)) await h.destroy();
}

async function adminFor(l: Layout): Promise<AdminSession> {
  const admin = new AdminSession(tempDir(`cwnets-home-${l.mgtBridge}`), `https://${l.mgt}.10/api/v1`);
  await admin.open();
  const add = await ctl(['add-admin', admin.user, `@${admin.keyFile}.pub`, '--name', l.name]);
  if (add.exitCode !== 0) throw new Error(add.all);
  await admin.adopt(l.name);
  return admin;
}

netsTest.serial('cw-containerctl start --network MGT --ip … --service-network SVC --service-ip …', async (t) => {
  for (const [bridge, prefix] of [
    [CTL.mgtBridge, CTL.mgt],
    [CTL.svcBridge, CTL.svc],
  ] as const) {
    await sh('docker', ['network', 'create', '--subnet', `${prefix}.0/24`, '-o', `com.docker.network.bridge.name=${bridge}`, bridge]);
  }
  const load = await ctl(['img-load', imageTarball()]);
  const imageRef = /Loaded image: (\S+)/.exec(load.stdout)?.[1] ?? '';
  t.truthy(imageRef, load.all);
  const start = await ctl([
    'start', join(top, 'ctl-storage'), imageRef, '--name', CTL.name, '--network', CTL.mgtBridge, '--ip', `${CTL.mgt}.10`,
    '--service-network', CTL.svcBridge, '--service-ip', `${CTL.svc}.10`, '--ssh-port', '22',
  ]);
  t.is(start.exitCode, 0, start.all);
  t.regex(start.stdout, new RegExp(`^Service network: ${CTL.svcBridge} \\(${CTL.svc.replace(/\./g, '\\.')}\\.10\\)$`, 'm'));
  const admin = await adminFor(CTL);
  try {
    await checkServing(t, CTL, admin);
  } finally {
    admin.close();
    rmSync(admin.home, { recursive: true, force: true });
  }
  await sh('docker', ['rm', '-f', CTL.name]);
});

netsTest.serial('compose.networks.yaml with docker-compose: the same appliance on mgtbr and svcbr', async (t) => {
  const storage = join(top, 'compose-storage');
  await execa('mkdir', ['-p', storage]);
  const env = composeEnv(COMPOSE, storage);
  const up = await compose(['up', '-d'], env);
  t.is(up.exitCode, 0, up.all);
  const { ms } = await waitFor(async () => {
    const r = await sh('docker', ['inspect', '-f', '{{.State.Health.Status}}', COMPOSE.name], { reject: false });
    return r.stdout.trim() === 'healthy';
  }, 180_000, 1000);
  t.log(`healthy ${Math.round(ms / 1000)} s after up`);
  const admin = await adminFor(COMPOSE);
  try {
    await checkServing(t, COMPOSE, admin);
  } finally {
    admin.close();
    rmSync(admin.home, { recursive: true, force: true });
  }
  const down = await compose(['down'], env);
  t.is(down.exitCode, 0, down.all);
});
