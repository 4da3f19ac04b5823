import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { APPLIANCE_CAPABILITIES, buildContainerSpec } from '../../../src/host/containerctl/start/container-spec.js';
import { start } from '../../../src/host/containerctl/start/start.js';
import { prepareStorage } from '../../../src/lib/storage-layout.js';
import { MemoryEngine, testContext } from './memory-engine.js';

const noPortsBusy = async () => undefined;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'cw-start-'));
}

test('storage path that is a file: one-line error, engine never asked, nothing created', async (t) => {
  const dir = tempDir();
  try {
    const file = join(dir, 'cw_container_storage');
    writeFileSync(file, 'not a dir');
    const ctx = testContext(new MemoryEngine());
    await t.throwsAsync(start({}, ctx, { cwd: dir, findPortInUse: noPortsBusy }), {
      message: `storage path ${file} exists and is not a directory; nothing changed`,
    });
    t.is(ctx.engineCalls, 0);
    t.true(statSync(file).isFile());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('defaults: ./cw_container_storage made absolute, newest image, host network, ARCHITECTURE env and labels', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine();
    engine.addImage('cw-headnode:0.1.0', 1000);
    engine.addImage('cw-headnode:0.2.0', 2000);
    const ctx = testContext(engine);
    await start({}, ctx, { cwd: dir, findPortInUse: noPortsBusy });
    const storage = join(dir, 'cw_container_storage');
    const spec = engine.created[0]!;
    t.is(spec.image, 'cw-headnode:0.2.0');
    t.is(spec.name, 'cw-headnode');
    t.is(spec.network, 'host');
    t.deepEqual(spec.binds, [`${storage}:/var/lib/cw`]);
    t.deepEqual(spec.env, ['CW_STORAGE=/var/lib/cw', 'CW_HTTP_PORT=80', 'CW_HTTPS_PORT=443', 'CW_SSH_PORT=2200', 'CW_TFTP_PORT=69', 'CW_DNS_PORT=53', 'CW_DHCP_INTERFACES=']);
    t.deepEqual(spec.labels, {
      'org.opencontainers.image.title': 'cw-headnode',
      'io.cw-headnode.appliance': 'true',
      'io.cw-headnode.storage': storage,
    });
    t.is(spec.stopTimeout, 10);
    t.true(statSync(storagePaths(storage).generatedDir).isDirectory());
    t.is(statSync(storagePaths(storage).secretsDir).mode & 0o777, 0o700);
    t.regex(ctx.out.text, new RegExp(`cw-headnode is running: container cw-headnode, image cw-headnode:0.2.0, storage ${storage}\\n`));
    t.regex(ctx.out.text, /Ports: http 80\/tcp, https 443\/tcp, ssh 2200\/tcp, tftp 69\/udp, dhcp 67\/udp \(interfaces: auto\), dns 53\/udp\+tcp/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('options reach the container: ports, DHCP interfaces, extra env; Podman relabels the bind mount', (t) => {
  const spec = buildContainerSpec({
    name: 'hn',
    image: 'localhost/cw-headnode:0.1.0',
    storageDir: '/srv/cw',
    engineKind: 'podman',
    network: 'cwnet',
    ip: '10.10.24.2',
    httpPort: 8080,
    httpsPort: 8443,
    sshPort: 2222,
    tftpPort: 6969,
    dnsPort: 5353,
    dhcpInterfaces: ['eth1', 'eth2'],
    extraEnv: ['CW_FAIL_SERVICE=dhcpd'],
    headAddress: '10.10.24.3',
    serviceNetwork: 'svcnet',
    serviceIp: '10.10.25.2',
  });
  t.deepEqual(spec.binds, ['/srv/cw:/var/lib/cw:z']);
  t.true(spec.env.includes('CW_HEAD_ADDRESS=10.10.24.3'));
  t.deepEqual(spec.serviceNetwork, { network: 'svcnet', ip: '10.10.25.2' });
  t.true(spec.env.includes('CW_DHCP_INTERFACES=eth1 eth2'));
  t.true(spec.env.includes('CW_HTTP_PORT=8080'));
  t.true(spec.env.includes('CW_HTTPS_PORT=8443'));
  t.true(spec.env.includes('CW_DNS_PORT=5353'));
  t.true(spec.env.includes('CW_FAIL_SERVICE=dhcpd'));
  t.is(spec.ip, '10.10.24.2');
  t.deepEqual(spec.capAdd, [...APPLIANCE_CAPABILITIES]);
  t.true(spec.capAdd.includes('NET_RAW') && spec.capAdd.includes('NET_BIND_SERVICE') && !spec.capAdd.includes('SYS_ADMIN'));
});

test('a second start while one runs is refused before anything changes', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine();
    engine.addImage('cw-headnode:0.1.0', 1000);
    engine.addContainer({ name: 'cw-headnode', labels: { 'io.cw-headnode.appliance': 'true', 'io.cw-headnode.storage': '/srv/cw' } });
    const ctx = testContext(engine);
    await t.throwsAsync(start({ storageDir: 'st' }, ctx, { cwd: dir, findPortInUse: noPortsBusy }), {
      message: 'cw-headnode is already running (container cw-headnode, storage /srv/cw); stop it first',
    });
    t.deepEqual(engine.created, []);
    t.false(existsSync(join(dir, 'st')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a stopped container of the same name is replaced', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine();
    engine.addImage('cw-headnode:0.1.0', 1000);
    engine.addContainer({ name: 'cw-headnode', state: 'exited', running: false });
    await start({}, testContext(engine), { cwd: dir, findPortInUse: noPortsBusy });
    const removeAt = engine.calls.indexOf('remove id-cw-headnode');
    t.true(removeAt >= 0);
    t.true(engine.calls.indexOf('create cw-headnode') > removeAt);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a port in use under host networking: one line naming the option', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine();
    engine.addImage('cw-headnode:0.1.0', 1000);
    const busy = async () => ({ port: 80, protocol: 'tcp' as const, hint: 'use --http-port' });
    await t.throwsAsync(start({}, testContext(engine), { cwd: dir, findPortInUse: busy }), {
      message: 'port 80/tcp is already in use on this host (use --http-port)',
    });
    t.deepEqual(engine.created, []);
    t.false(existsSync(join(dir, 'cw_container_storage')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no image loaded, or a foreign image named', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine();
    await t.throwsAsync(start({}, testContext(engine), { cwd: dir, findPortInUse: noPortsBusy }), {
      message: /^no cw-headnode image is loaded/,
    });
    engine.addImage('debian:bookworm-slim', 1, {});
    await t.throwsAsync(start({ image: 'debian:bookworm-slim' }, testContext(engine), { cwd: dir, findPortInUse: noPortsBusy }), {
      message: 'image debian:bookworm-slim is not a cw-headnode image',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a FATAL service fails the start with the log tail; the container is left running', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine();
    engine.addImage('cw-headnode:0.1.0', 1000);
    engine.log = '[dhcpd] exited 1\n[supervisor] dhcpd FATAL\n';
    engine.healthAfterStart = 'starting';
    engine.onExec = () => ({
      exitCode: 1,
      stdout: '{"status":"unhealthy","services":{"dhcpd":{"state":"FATAL"},"api":{"state":"RUNNING"}}}',
      stderr: 'ERROR: unhealthy\n',
    });
    const ctx = testContext(engine);
    await t.throwsAsync(start({ env: ['CW_FAIL_SERVICE=dhcpd'] }, ctx, { cwd: dir, findPortInUse: noPortsBusy }), {
      message: /^cw-headnode did not become healthy: service dhcpd failed \(FATAL\)/,
    });
    t.true(ctx.err.text.includes('[supervisor] dhcpd FATAL'));
    t.false(engine.calls.some((c) => c.startsWith('stop')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('health wait times out with what is still pending', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine();
    engine.addImage('cw-headnode:0.1.0', 1000);
    engine.healthAfterStart = 'starting';
    engine.onExec = () => ({ exitCode: 1, stdout: '{"status":"starting","services":{"api":{"state":"STARTING"}}}', stderr: '' });
    await t.throwsAsync(start({ timeout: 3 }, testContext(engine), { cwd: dir, findPortInUse: noPortsBusy }), {
      message: /not healthy after 3 s \(health: starting; waiting for api STARTING\)/,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('invalid options are refused before anything is touched', async (t) => {
  const ctx = testContext(new MemoryEngine());
  await t.throwsAsync(start({ ip: '10.0.0.2' }, ctx), { message: /^--ip needs --network NAME/ });
  await t.throwsAsync(start({ httpPort: 70000 }, ctx), { message: /^--http-port must be a port number/ });
  await t.throwsAsync(start({ env: ['NOEQUALS'] }, ctx), { message: /invalid --env "NOEQUALS"/ });
  await t.throwsAsync(start({ headAddress: '10.0.0.256' }, ctx), { message: '--head-address must be an IPv4 address, not "10.0.0.256"' });
  await t.throwsAsync(start({ serviceNetwork: 'svc' }, ctx), { message: /^--service-network needs --network NAME/ });
  await t.throwsAsync(start({ network: 'mgt', serviceNetwork: 'mgt' }, ctx), { message: '--service-network and --network are both mgt' });
  await t.throwsAsync(start({ network: 'mgt', serviceIp: '10.0.1.2' }, ctx), { message: '--service-ip needs --service-network NAME' });
  await t.throwsAsync(start({ network: 'mgt', serviceNetwork: 'svc', serviceIp: '10.0.1' }, ctx), { message: /^--service-ip must be an IPv4 address/ });
  await t.throwsAsync(start({ network: 'mgt', serviceNetwork: 'svc;rm', serviceIp: '10.0.1.2' }, ctx), { message: /^invalid --service-network/ });
  await t.throwsAsync(start({ etcdMember: true }, ctx), { message: /^--etcd-address IP is needed/ });
  await t.throwsAsync(start({ etcdMember: true, etcdAddress: '10.0.0.300' }, ctx), { message: /^--etcd-address must be an IPv4 address/ });
  await t.throwsAsync(start({ name: 'Head_1', etcdMember: true, etcdAddress: '10.0.0.3' }, ctx), { message: /the container name "Head_1" is not a head name .*give --etcd-name/ });
  await t.throwsAsync(start({ etcdMember: true, etcdAddress: '10.0.0.3', etcd: 'https://10.0.0.9:2379' }, ctx), { message: /^--etcd \(an outside etcd\) excludes/ });
  await t.throwsAsync(start({ etcd: 'https://10.0.0.9:2379 --x' }, ctx), { message: /is not a client URL/ });
  await t.throwsAsync(start({ etcdName: 'head-a' }, ctx), { message: /^--etcd-name and --etcd-address go with --etcd-member or --join/ });
  t.is(ctx.engineCalls, 0);
});

test('storage layout keeps existing content and tightens secrets/', async (t) => {
  const dir = tempDir();
  try {
    const layout = storagePaths(dir);
    await prepareStorage(dir);
    writeFileSync(join(layout.dbDir, 'marker'), 'x');
    await prepareStorage(dir);
    t.true(existsSync(join(layout.dbDir, 'marker')));
    t.is(statSync(layout.secretsDir).mode & 0o777, 0o700);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('start IMAGE:TAG alone: the argument is the image, storage stays the default', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine();
    engine.addImage('cw-headnode:0.1.0', 1000);
    engine.addImage('cw-headnode:0.2.0', 2000);
    await start({ storageDir: 'cw-headnode:0.1.0' }, testContext(engine), { cwd: dir, findPortInUse: noPortsBusy });
    t.is(engine.created[0]!.image, 'cw-headnode:0.1.0');
    t.deepEqual(engine.created[0]!.binds, [`${join(dir, 'cw_container_storage')}:/var/lib/cw`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Docker: start returns only once the engine itself says healthy', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine('docker');
    engine.addImage('cw-headnode:0.1.0', 1000);
    engine.healthAfterStart = 'starting';
    let polls = 0;
    engine.onExec = () => {
      // The engine's own check catches up on the third poll.
      if (++polls === 3) engine.containers.at(-1)!.health = 'healthy';
      return { exitCode: 0, stdout: '{"status":"healthy","services":{}}', stderr: '' };
    };
    const ctx = testContext(engine);
    await start({}, ctx, { cwd: dir, findPortInUse: noPortsBusy });
    t.is(polls, 3);
    t.regex(ctx.out.text, /Healthy after 1\.5 s/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Podman: the supervisor\'s answer is enough (its healthchecks need systemd timers)', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine('podman');
    engine.addImage('localhost/cw-headnode:0.1.0', 1000);
    engine.healthAfterStart = 'starting';
    const ctx = testContext(engine);
    await start({}, ctx, { cwd: dir, findPortInUse: noPortsBusy });
    t.regex(ctx.out.text, /cw-headnode is running: container cw-headnode, image localhost\/cw-headnode:0\.1\.0/);
    t.deepEqual(engine.created[0]!.binds, [`${join(dir, 'cw_container_storage')}:/var/lib/cw:z`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--etcd-member puts the member name and address in the environment; --etcd the outside endpoints', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine();
    engine.addImage('cw-headnode:0.1.0', 1000);
    const ctx = testContext(engine);
    await start({ name: 'head-a', network: 'cwnet', ip: '10.0.0.11', etcdMember: true }, ctx, { cwd: dir, findPortInUse: noPortsBusy });
    const env = engine.created[0]!.env;
    t.true(env.includes('CW_ETCD_MEMBER=head-a'));
    t.true(env.includes('CW_ETCD_ADDRESS=10.0.0.11'));

    const other = new MemoryEngine();
    other.addImage('cw-headnode:0.1.0', 1000);
    await start({ storageDir: join(dir, 's2'), etcd: 'https://10.0.0.5:2379,https://10.0.0.6:2379' }, testContext(other), { cwd: dir, findPortInUse: noPortsBusy });
    t.true(other.created[0]!.env.includes('CW_ETCD_ENDPOINTS=https://10.0.0.5:2379,https://10.0.0.6:2379'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('start --restore: --force alone is refused; a bad archive stops the start before storage or container exist', async (t) => {
  const dir = tempDir();
  try {
    const engine = new MemoryEngine();
    engine.addImage('cw-headnode:0.1.0', 1000);
    const ctx = testContext(engine);
    await t.throwsAsync(start({ force: true }, ctx, { cwd: dir, findPortInUse: noPortsBusy }), { message: '--force goes with --restore FILE only' });
    t.is(ctx.engineCalls, 0);
    writeFileSync(join(dir, 'bad.tar.gz'), 'not an archive');
    await t.throwsAsync(start({ restore: 'bad.tar.gz' }, ctx, { cwd: dir, findPortInUse: noPortsBusy }), {
      message: /bad\.tar\.gz cannot be restored: .*; nothing was changed$/,
    });
    t.false(existsSync(join(dir, 'cw_container_storage')));
    t.deepEqual(engine.created, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
