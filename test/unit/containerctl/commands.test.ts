import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { addAdmin } from '../../../src/host/containerctl/add-admin/add-admin.js';
import { imgLoad } from '../../../src/host/containerctl/img-load/img-load.js';
import { imgLs } from '../../../src/host/containerctl/img-ls/img-ls.js';
import { shellInvocation } from '../../../src/host/containerctl/shell/shell.js';
import { status } from '../../../src/host/containerctl/status/status.js';
import { rmAdmin } from '../../../src/host/containerctl/rm-admin/rm-admin.js';
import { restartCommand, stop } from '../../../src/host/containerctl/stop/stop.js';
import { toolConfig } from '../../../src/host/containerctl/tool-config/tool-config.js';
import { MemoryEngine, testContext } from './memory-engine.js';

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHQph/rd2JcUbTMm7ImC5GVHClJL1oPjPfBwW6jtbknb admin1@host';

test('stop prints storage, image version and the exact restart command', async (t) => {
  const engine = new MemoryEngine('podman');
  const image = engine.addImage('localhost/cw-headnode:0.1.0', 1000, { 'io.cw-headnode.appliance': 'true', 'org.opencontainers.image.version': '0.1.0' });
  engine.addContainer({ name: 'cw-headnode', image: 'localhost/cw-headnode:0.1.0', imageId: image.id });
  const ctx = testContext(engine);
  await stop({}, ctx);
  t.true(engine.calls.includes('stop id-cw-headnode t=10'));
  t.regex(ctx.out.text, /^Stopped cw-headnode \(container cw-headnode\) in 0\.0 s\n/);
  t.true(ctx.out.text.includes('Storage directory: /srv/cw\n'));
  t.true(ctx.out.text.includes('Image: localhost/cw-headnode:0.1.0 (version 0.1.0)\n'));
  t.true(ctx.out.text.includes('    cw-containerctl start /srv/cw localhost/cw-headnode:0.1.0\n'));
});

test('the restart command keeps non-default options and quotes odd paths', async (t) => {
  t.is(restartCommand('/srv/my storage', 'cw-headnode:0.1.0', ['--http-port', '8080']), "cw-containerctl start '/srv/my storage' cw-headnode:0.1.0 --http-port 8080");
  const engine = new MemoryEngine();
  const image = engine.addImage('cw-headnode:0.1.0', 1000);
  engine.addContainer({
    name: 'hn2',
    image: 'cw-headnode:0.1.0',
    imageId: image.id,
    networkMode: 'cwnet',
    env: { CW_HTTP_PORT: '8080', CW_SSH_PORT: '2200', CW_TFTP_PORT: '69', CW_DNS_PORT: '5353', CW_DHCP_INTERFACES: 'eth1' },
  });
  const ctx = testContext(engine);
  await stop({ name: 'hn2', timeout: 3 }, ctx);
  t.true(engine.calls.includes('stop id-hn2 t=3'));
  t.true(ctx.out.text.includes('cw-containerctl start /srv/cw cw-headnode:0.1.0 --name hn2 --network cwnet --http-port 8080 --dns-port 5353 --dhcp-interface eth1\n'));
});

test('stop with nothing running', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode', state: 'exited', running: false });
  await t.throwsAsync(stop({}, testContext(engine)), { message: 'no running cw-headnode container' });
});

test('status: none', async (t) => {
  const ctx = testContext(new MemoryEngine());
  await status({}, ctx);
  t.is(ctx.out.text, 'No cw-headnode containers.\n');
});

test('status: health, storage, ports from the container env, and services', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode', env: { CW_HTTP_PORT: '8080', CW_SSH_PORT: '2200', CW_TFTP_PORT: '69', CW_DNS_PORT: '53' } });
  engine.addContainer({ name: 'old', state: 'exited', running: false, health: 'unhealthy' });
  engine.onExec = () => ({
    exitCode: 0,
    stdout: JSON.stringify({ status: 'healthy', services: { api: { state: 'RUNNING', restarts: 0 }, dhcpd: { state: 'RUNNING', restarts: 2 } } }),
    stderr: '',
  });
  const ctx = testContext(engine);
  await status({}, ctx);
  const lines = ctx.out.text.split('\n');
  t.regex(lines[0]!, /^NAME\s+IMAGE\s+STATE\s+HEALTH\s+STORAGE\s+NETWORK\s+PORTS$/);
  t.regex(lines[1]!, /^cw-headnode\s+cw-headnode:1\.0\s+running\s+healthy\s+\/srv\/cw\s+host\s+http 8080\/tcp, https 443\/tcp, ssh 2200\/tcp, tftp 69\/udp, dhcp 67\/udp, dns 53\/udp\+tcp$/);
  t.regex(lines[2]!, /^old\s+cw-headnode:1\.0\s+exited\s+-\s+/);
  t.regex(ctx.out.text, /dhcpd\s+RUNNING\s+2/);
  t.deepEqual(engine.execs.map((e) => e.cmd), [['cw-appliance', 'health']]);
});

test('add-admin: an invalid key is refused locally and nothing is sent', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode' });
  const ctx = testContext(engine);
  await t.throwsAsync(addAdmin({ admin: 'admin2', key: 'ssh-rsa AAA..1A2B3C=' }, ctx), { message: /^invalid ssh key: / });
  t.is(ctx.engineCalls, 0);
  t.deepEqual(engine.execs, []);
});

test('add-admin: @FILE with ~ is read, validated and passed as one normalized line', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cw-home-'));
  try {
    writeFileSync(join(home, 'id_ed25519.pub'), `${ED25519}\n`);
    const engine = new MemoryEngine();
    engine.addContainer({ name: 'cw-headnode' });
    engine.onExec = (cmd) => ({ exitCode: 0, stdout: `Added admin ${cmd[2]} (ssh-ed25519 SHA256:x)\n`, stderr: '' });
    const ctx = testContext(engine);
    await addAdmin({ admin: 'admin1', key: '@~/id_ed25519.pub' }, ctx, { homeDir: home });
    t.deepEqual(engine.execs[0]!.cmd, ['cw-appliance', 'admin-add', 'admin1', ED25519]);
    t.is(ctx.out.text, 'Added admin admin1 (ssh-ed25519 SHA256:x)\n');
    await t.throwsAsync(addAdmin({ admin: 'admin1', key: '@~/missing.pub' }, ctx, { homeDir: home }), {
      message: `ssh key file ${join(home, 'missing.pub')} not found`,
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('add-admin: @FILE is checked before it is read: devices, FIFOs and oversized files are refused', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cw-home-'));
  try {
    const big = join(home, 'big.pub');
    writeFileSync(big, '');
    truncateSync(big, 1024 * 1024);
    const engine = new MemoryEngine();
    engine.addContainer({ name: 'cw-headnode' });
    const ctx = testContext(engine);
    await t.throwsAsync(addAdmin({ admin: 'x', key: '@~/big.pub' }, ctx, { homeDir: home }), {
      message: `ssh key file ${big}: file is 1048576 bytes, larger than the 64 KiB limit`,
    });
    await t.throwsAsync(addAdmin({ admin: 'x', key: '@/dev/zero' }, ctx, { homeDir: home }), {
      message: 'ssh key file /dev/zero: is not a regular file (a character device)',
    });
    t.deepEqual(engine.execs, [], 'nothing reached the container');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('add-admin: the appliance\'s ERROR line becomes the error', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode' });
  engine.onExec = () => ({ exitCode: 1, stdout: '', stderr: 'ERROR: admin admin1 already exists\n' });
  await t.throwsAsync(addAdmin({ admin: 'admin1', key: ED25519 }, testContext(engine)), { message: 'admin admin1 already exists' });
});

test('rm-admin runs cw-appliance admin-rm NAME in the running container and prints its answer', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode' });
  engine.onExec = (cmd) => ({ exitCode: 0, stdout: `Removed admin ${cmd[2]} (ssh-ed25519 SHA256:x)\n`, stderr: '' });
  const ctx = testContext(engine);
  await rmAdmin({ admin: 'admin1' }, ctx);
  t.deepEqual(engine.execs.map((e) => e.cmd), [['cw-appliance', 'admin-rm', 'admin1']]);
  t.is(ctx.out.text, 'Removed admin admin1 (ssh-ed25519 SHA256:x)\n');
});

test("rm-admin: an invalid name is refused locally; the appliance's ERROR line becomes the error", async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode' });
  const ctx = testContext(engine);
  await t.throwsAsync(rmAdmin({ admin: '--all' }, ctx), { message: /^invalid admin name "--all": / });
  t.is(ctx.engineCalls, 0);
  engine.onExec = () => ({ exitCode: 1, stdout: '', stderr: 'ERROR: no such admin: admin2 (cw-appliance admin-ls lists them)\n' });
  await t.throwsAsync(rmAdmin({ admin: 'admin2' }, ctx), { message: 'no such admin: admin2 (cw-appliance admin-ls lists them)' });
  await t.throwsAsync(rmAdmin({ admin: 'admin2', name: 'other' }, testContext(engine)), { message: 'no running cw-headnode container named other' });
});

test('img-ls: only ours, newest first, one row per tag', async (t) => {
  const engine = new MemoryEngine();
  engine.addImage('cw-headnode:0.1.0', Date.parse('2025-12-31T22:00:00Z'));
  engine.addImage('debian:bookworm-slim', Date.parse('2025-12-31T23:00:00Z'), {});
  const newest = engine.addImage('localhost/cw-headnode:0.2.0', Date.parse('2025-12-31T23:59:00Z'));
  newest.repoTags.push('localhost/cw-headnode:latest');
  const ctx = testContext(engine);
  await imgLs({}, ctx);
  const rows = ctx.out.text.trim().split('\n').map((l) => l.split(/\s{3,}/));
  t.deepEqual(rows[0], ['REPOSITORY:TAG', 'IMAGE ID', 'CREATED', 'SIZE']);
  t.deepEqual(rows.slice(1).map((r) => r[0]), ['localhost/cw-headnode:0.2.0', 'localhost/cw-headnode:latest', 'cw-headnode:0.1.0']);
  t.deepEqual(rows[1]!.slice(1), ['333333333333', '1 minute ago', '250MB']);
  t.is(rows[3]![2], '2 hours ago');
});

test('img-load: a missing file and a checksum mismatch fail before the engine is touched', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-load-'));
  try {
    const ctx = testContext(new MemoryEngine());
    const missing = join(dir, 'nope.tar');
    await t.throwsAsync(imgLoad({ file: missing }, ctx), { message: `image file ${missing} not found` });
    const file = join(dir, 'image.tar');
    writeFileSync(file, 'abc');
    writeFileSync(`${file}.sha256`, `${'0'.repeat(64)}  image.tar\n`);
    await t.throwsAsync(imgLoad({ file }, ctx), {
      message: `checksum mismatch for ${file} (expected ${'0'.repeat(64)}, got ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad)`,
    });
    rmSync(`${file}.sha256`);
    await t.throwsAsync(imgLoad({ file }, ctx), { message: /is not a container image archive \(not a tar file\)/ });
    t.is(ctx.engineCalls, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('img-load: a foreign image archive is refused before loading', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-load-'));
  try {
    const configName = `${'d'.repeat(64)}.json`;
    writeFileSync(join(dir, configName), JSON.stringify({ config: { Labels: null } }));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: ['debian:bookworm-slim'], Layers: [] }]));
    execFileSync('tar', ['-C', dir, '-cf', join(dir, 'deb.tar'), configName, 'manifest.json']);
    const ctx = testContext(new MemoryEngine());
    await t.throwsAsync(imgLoad({ file: join(dir, 'deb.tar') }, ctx), {
      message: /holds debian:bookworm-slim, which is not a cw-headnode image .*; nothing loaded$/,
    });
    t.is(ctx.engineCalls, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const PIN = `sha256:${'AB:'.repeat(31)}CD`;

/** `cw-appliance tls-info` and `admin-ls` as the appliance answers them. */
function applianceAnswers(engine: MemoryEngine, pin: string | null = PIN): void {
  engine.onExec = (cmd) => {
    if (cmd.includes('tls-info')) {
      return pin === null ? { exitCode: 1, stdout: '', stderr: 'no TLS certificate yet' } : { exitCode: 0, stdout: `${JSON.stringify({ pin })}\n`, stderr: '' };
    }
    if (cmd.includes('admin-ls')) return { exitCode: 0, stdout: '[]\n', stderr: '' };
    return { exitCode: 0, stdout: '{"status":"healthy","services":{}}\n', stderr: '' };
  };
}

test('tool-config: named network uses the container\'s address there, HTTPS port from its env, the certificate pinned', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode', networkMode: 'cwnet', networks: { cwnet: '10.10.24.2' }, env: { CW_HTTP_PORT: '8080', CW_HTTPS_PORT: '8443' } });
  applianceAnswers(engine);
  const ctx = testContext(engine, { SUDO_USER: 'admin1' });
  await toolConfig({}, ctx);
  t.true(ctx.out.text.includes(`client.base_url = https://10.10.24.2:8443/api/v1\nclient.authuser = `), ctx.out.text);
  t.true(ctx.out.text.includes(`client.sslverify = ${PIN}\n`), ctx.out.text);
  t.true(ctx.out.text.includes('/tls/server.crt'), ctx.out.text);
});

test('tool-config: without a readable certificate it proposes system CA checking and says why', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode', networkMode: 'cwnet', networks: { cwnet: '10.10.24.2' } });
  applianceAnswers(engine, null);
  const ctx = testContext(engine, { SUDO_USER: 'admin1' });
  await toolConfig({}, ctx);
  t.true(ctx.out.text.includes('client.base_url = https://10.10.24.2/api/v1\n'), ctx.out.text);
  t.true(ctx.out.text.includes('client.sslverify = true\n'));
  t.regex(ctx.out.text, /certificate could not be read/);
});

test('tool-config: host networking picks the host\'s private address', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode' });
  const ctx = testContext(engine, { USER: 'root' });
  const nic = (address: string) => [{ address, netmask: '255.255.255.0', family: 'IPv4' as const, mac: '', internal: false, cidr: null }];
  applianceAnswers(engine);
  await toolConfig({}, ctx, { interfaces: () => ({ docker0: nic('172.17.0.1'), eth0: nic('10.54.0.123') }) });
  t.true(ctx.out.text.includes('client.base_url = https://10.54.0.123/api/v1\n'));
});

test('tool-config: a head address (floating IP) is proposed over the host\'s own addresses; stop restarts with it', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode', env: { CW_HEAD_ADDRESS: '10.54.0.2' } });
  const ctx = testContext(engine, { USER: 'root' });
  const nic = (...addresses: string[]) => addresses.map((address) => ({ address, netmask: '255.255.0.0', family: 'IPv4' as const, mac: '', internal: false, cidr: null }));
  applianceAnswers(engine);
  await toolConfig({}, ctx, { interfaces: () => ({ eth0: nic('10.54.0.123', '10.54.0.2') }) });
  t.true(ctx.out.text.includes('client.base_url = https://10.54.0.2/api/v1\n'), ctx.out.text);
  t.regex(ctx.out.text, /Other addresses of this host: 10\.54\.0\.123 \(eth0\)\n/);
  const stopped = testContext(engine);
  await stop({}, stopped);
  t.regex(stopped.out.text, / --head-address 10\.54\.0\.2\n/);
});

test('shell uses the CLI of the engine in use, on the same endpoint', (t) => {
  const docker = new MemoryEngine('docker').identity;
  t.deepEqual(shellInvocation(docker, 'cw-headnode', ['/bin/bash'], true, 0), {
    file: 'docker',
    args: ['-H', 'unix:///var/run/docker.sock', 'exec', '-i', '-t', 'cw-headnode', '/bin/bash'],
  });
  const podman = { ...new MemoryEngine('podman').identity };
  podman.endpoint = { transport: 'unix', socketPath: '/run/podman/podman.sock', source: 'podman-rootful', display: 'unix:///run/podman/podman.sock' };
  t.deepEqual(shellInvocation(podman, 'cw-headnode', ['ls'], false, 0), { file: 'podman', args: ['exec', '-i', 'cw-headnode', 'ls'] });
  podman.endpoint = { transport: 'unix', socketPath: '/tmp/p.sock', source: 'DOCKER_HOST', display: 'unix:///tmp/p.sock' };
  t.deepEqual(shellInvocation(podman, 'cw-headnode', ['ls'], false, 0).args.slice(0, 3), ['--remote', '--url', 'unix:///tmp/p.sock']);
});
