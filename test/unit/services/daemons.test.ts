import test from 'ava';
import { closeSync, readFileSync } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { apiReadyProbe, apiService } from '../../../src/appliance/services/api/index.js';
import { httpdService, nginxConfPath, renderNginxConf } from '../../../src/appliance/services/httpd/index.js';
import { buildServiceTable } from '../../../src/appliance/services/index.js';
import { runCommandLine } from '../../../src/appliance/services/run.js';
import { openPrivateFifo } from '../../../src/appliance/services/syslog/index.js';
import { renderSshdConfig, sshdFiles, strictModesProblems } from '../../../src/appliance/services/sshd/index.js';
import { installIpxeFiles, IPXE_FILES, tftpdService, tftpUser } from '../../../src/appliance/services/tftpd/index.js';
import { requireTools, toolPath } from '../../helpers/tools.js';
import { testContext } from './context.js';

const has = (file: string): Promise<boolean> => access(file).then(() => true, () => false);
const nginxTest = requireTools('nginx');
const sshdTest = requireTools('sshd', 'ssh-keygen', 'root');

test('nginx.conf serves boot files and images, proxies /api/ to the API socket', async (t) => {
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  const text = await renderNginxConf(ctx, ctx.paths.accessLogFifo);
  t.regex(text, /^\s+listen 18080 default_server;$/m);
  t.regex(text, new RegExp(`location /boot/ \\{\\s+alias ${ctx.paths.bootDir}/;`));
  t.regex(text, new RegExp(`location /images/ \\{\\s+alias ${ctx.paths.imagesDir}/;`));
  // Blobs: this head's, else the API's redirect to another head; /blobs/here/ never redirects.
  t.regex(text, new RegExp(`location ~ "\\^/blobs/\\(\\[0-9a-f\\]\\{64\\}\\)\\$" \\{\\s+root ${ctx.paths.blobsDir};\\s+try_files /\\$1 @blob_elsewhere;`));
  t.regex(text, new RegExp(`location ~ "\\^/blobs/here/\\(\\[0-9a-f\\]\\{64\\}\\)\\$" \\{\\s+root ${ctx.paths.blobsDir};\\s+try_files /\\$1 =404;`));
  t.regex(text, /location @blob_elsewhere \{\s+rewrite "\^\/blobs\/\(\[0-9a-f\]\{64\}\)\$" \/api\/v1\/boot\/blob\/\$1 break;\s+proxy_pass http:\/\/cw_api;/);
  t.true(text.includes(`server unix:${ctx.paths.apiSocket};`));
  t.regex(text, /upstream cw_api \{[^}]*keepalive 32;/);
  t.regex(text, /location \/api\/ \{[^}]*access_log off;[^}]*proxy_pass http:\/\/cw_api;[^}]*proxy_set_header Connection "";/);
  t.regex(text, /^user www-data;$/m);
  t.regex(text, /^\s+sendfile on;$/m);
  t.true(text.includes(`pid ${ctx.paths.runDir}/nginx.pid;`));
  t.regex(text, /^error_log stderr notice;$/m);
  t.true(text.includes(`    access_log ${ctx.paths.accessLogFifo};\n`));
  t.notRegex(text, /syslog:server=/);
  t.regex(await renderNginxConf(ctx, null), /^\s+access_log off;$/m);
  t.notRegex(text, /\{\{/);
});

test('nginx.conf sets the client address for the API itself and bounds bodies and login requests', async (t) => {
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  const text = await renderNginxConf(ctx, null);
  const api = /location \/api\/ \{[\s\S]*?\n {8}\}/.exec(text)?.[0] ?? '';
  // Whatever the client sent is replaced: the API trusts X-Real-IP on its socket.
  t.regex(api, /^\s+proxy_set_header X-Real-IP \$remote_addr;$/m);
  t.regex(api, /^\s+proxy_set_header X-Forwarded-For \$remote_addr;$/m);
  t.notRegex(text, /proxy_add_x_forwarded_for/);
  // JSON routes at the API's own limit; 512m only where the API takes uploads.
  t.regex(api, /^ {12}client_max_body_size 64m;$/m);
  t.notRegex(api, /^ {12}client_max_body_size 512m;$/m);
  const uploads = /location ~ \^\/api\/v1\/\(\?:bootconfig\/\[\^\/\]\+\/\(\?:kernel\|initramfs\)\|image\/\[\^\/\]\+\/content\)\$ \{[^}]*\}/.exec(api)?.[0] ?? '';
  t.regex(uploads, /proxy_pass http:\/\/cw_api;/);
  t.regex(uploads, /client_max_body_size 512m;/);
  t.is(text.match(/client_max_body_size 512m;/g)?.length, 1);
  t.notRegex(text, /client_max_body_size 0;/);
  const auth = /location \/api\/v1\/auth\/ \{[^}]*\}/.exec(api)?.[0] ?? '';
  t.regex(auth, /proxy_pass http:\/\/cw_api;/);
  t.regex(auth, /client_max_body_size 16k;/);
  t.regex(auth, /limit_req zone=cw_auth burst=\d+ nodelay;/);
  t.regex(auth, /limit_req_status 429;/);
  t.regex(text, /^\s+limit_req_zone \$binary_remote_addr zone=cw_auth:1m rate=\d+r\/s;$/m);
  // nginx's own refusals keep the API's envelope.
  t.regex(auth, /error_page 429 @api_too_many;/);
  t.regex(text, /location @api_too_large \{[^}]*return 413 '\{"success":false,"error":"request body too large"\}\\n';/);
});

test('a storage path nginx could misread is refused instead of rendered', async (t) => {
  const { ctx, cleanup } = await testContext({ storage: '/tmp/cw storage; evil' });
  t.teardown(cleanup);
  await t.throwsAsync(renderNginxConf({ ...ctx, paths: { ...ctx.paths, bootDir: '/tmp/cw storage; evil/boot' } }, null), { message: /unsafe path/ });
});

nginxTest('nginx -t accepts the rendered config', async (t) => {
  const { ctx, logs, cleanup } = await testContext({ run: runCommandLine });
  ctx.bins.nginx = toolPath('nginx');
  t.teardown(cleanup);
  // nginx -t opens the access log like nginx does: the supervisor's FIFO, held open for reading.
  const fd = await openPrivateFifo(ctx.paths.accessLogFifo);
  t.teardown(() => closeSync(fd));
  await t.notThrowsAsync(httpdService(ctx, () => ctx.paths.accessLogFifo).prepare?.() as Promise<void>);
  t.true(await has(nginxConfPath(ctx)));
  t.true(readFileSync(nginxConfPath(ctx), 'utf8').includes(`access_log ${ctx.paths.accessLogFifo};`));
  t.deepEqual(logs.filter((l) => l.includes('rejected')), []);
});

test('sshd_config: key-only root login, host keys and authorized_keys in storage', async (t) => {
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  const text = await renderSshdConfig(ctx, true);
  const files = sshdFiles(ctx);
  t.regex(text, /^Port 12200$/m);
  t.true(text.includes(`HostKey ${files.hostKeys[0]}\nHostKey ${files.hostKeys[1]}`));
  t.regex(text, /^PasswordAuthentication no$/m);
  t.regex(text, /^PermitRootLogin prohibit-password$/m);
  t.true(text.includes(`AuthorizedKeysFile ${ctx.paths.adminsDir}/authorized_keys`));
  t.true(text.includes(`PidFile ${ctx.paths.runDir}/sshd.pid`));
  t.regex(text, /^StrictModes yes$/m);
  t.regex(await renderSshdConfig(ctx, false), /^StrictModes no$/m);
});

sshdTest('sshd prepare generates host keys (0600) and an empty authorized_keys, and sshd -t accepts the config', async (t) => {
  const { ctx, logs, cleanup } = await testContext({ run: runCommandLine });
  ctx.bins.sshd = toolPath('sshd');
  ctx.bins.sshKeygen = toolPath('ssh-keygen');
  t.teardown(cleanup);
  const { sshdService } = await import('../../../src/appliance/services/sshd/index.js');
  await mkdir(ctx.paths.storage, { recursive: true, mode: 0o775 });
  await chmod(ctx.paths.storage, 0o775);
  await sshdService(ctx).prepare?.();
  const files = sshdFiles(ctx);
  for (const key of files.hostKeys) t.is((await stat(key)).mode & 0o777, 0o600);
  t.is((await stat(files.authorizedKeys)).mode & 0o777, 0o600);
  t.is(await readFile(files.authorizedKeys, 'utf8'), '');
  t.true(logs.includes('[sshd] generated host keys: ed25519, rsa'));
  t.is((await stat(ctx.paths.storage)).mode & 0o022, 0, 'group write removed for StrictModes');
  const problems = await strictModesProblems(files.authorizedKeys);
  const inStorage = problems.filter((p) => p.path.startsWith(ctx.paths.storage));
  t.deepEqual(inStorage, []);
  t.regex(await readFile(files.config, 'utf8'), new RegExp(`StrictModes ${problems.length === 0 ? 'yes' : 'no'}`));
  const keysBefore = await readFile(files.hostKeys[0] as string, 'utf8');
  await sshdService(ctx).prepare?.();
  t.is(await readFile(files.hostKeys[0] as string, 'utf8'), keysBefore, 'existing keys are kept');
});

test('StrictModes problems name the offending path', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-strict-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o777);
  await writeFile(path.join(dir, 'authorized_keys'), '', { mode: 0o600 });
  const problems = await strictModesProblems(path.join(dir, 'authorized_keys'));
  t.true(problems.some((p) => p.path === dir && /group\/world-writable/.test(p.problem)));
});

test('tftpd: iPXE binaries copied into the boot directory when missing or changed', async (t) => {
  const { ctx, logs, cleanup } = await testContext();
  t.teardown(cleanup);
  await mkdir(ctx.bins.ipxeDir, { recursive: true });
  await mkdir(ctx.paths.bootDir, { recursive: true });
  await writeFile(path.join(ctx.bins.ipxeDir, 'undionly.kpxe'), 'bios v1');
  await writeFile(path.join(ctx.bins.ipxeDir, 'ipxe.efi'), 'efi v1');
  t.deepEqual(await installIpxeFiles(ctx.bins.ipxeDir, ctx.paths.bootDir), { copied: ['undionly.kpxe', 'ipxe.efi'], missing: ['snponly.efi'] });
  t.deepEqual((await installIpxeFiles(ctx.bins.ipxeDir, ctx.paths.bootDir)).copied, []);
  await writeFile(path.join(ctx.bins.ipxeDir, 'ipxe.efi'), 'efi v2');
  t.deepEqual((await installIpxeFiles(ctx.bins.ipxeDir, ctx.paths.bootDir)).copied, ['ipxe.efi']);
  t.is(await readFile(path.join(ctx.paths.bootDir, 'ipxe.efi'), 'utf8'), 'efi v2');
  t.is((await stat(path.join(ctx.paths.bootDir, 'ipxe.efi'))).mode & 0o777, 0o644);
  t.deepEqual([...IPXE_FILES], ['undionly.kpxe', 'ipxe.efi', 'snponly.efi']);

  const spec = tftpdService(ctx);
  await spec.prepare?.();
  t.true(logs.some((l) => l.startsWith('[tftpd] iPXE binaries not found')));
  const command = await spec.command();
  t.is(command.command, '/usr/sbin/in.tftpd');
  t.deepEqual(command.args.slice(0, 3), ['--foreground', '--secure', '--verbose']);
  t.true(command.args.includes('0.0.0.0:16969'));
  t.is(command.args[command.args.length - 1], ctx.paths.bootDir);
  t.deepEqual(spec.dependsOn, ['syslog']);
});

test('tftpd runs as Debian\'s tftp user when it exists', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-passwd-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'with'), 'root:x:0:0::/root:/bin/sh\ntftp:x:101:102::/srv/tftp:/usr/sbin/nologin\n');
  await writeFile(path.join(dir, 'without'), 'root:x:0:0::/root:/bin/sh\n');
  t.is(await tftpUser(path.join(dir, 'with')), 'tftp');
  t.is(await tftpUser(path.join(dir, 'without')), 'nobody');
});

test('the service table follows ARCHITECTURE.md; CW_FAIL_SERVICE turns one service into /bin/false', async (t) => {
  const { ctx, logs, cleanup } = await testContext();
  t.teardown(cleanup);
  const table = buildServiceTable(ctx);
  t.deepEqual(
    table.map((s) => [s.name, s.kind, [...s.dependsOn], s.essential]),
    [
      ['syslog', 'internal', [], true],
      ['api', 'child', [], true],
      ['httpd', 'child', ['api', 'syslog'], true],
      ['tftpd', 'child', ['syslog'], true],
      ['dhcpd', 'child', [], true],
      ['dns', 'child', [], true],
      ['sshd', 'child', [], true],
    ],
  );
  const api = apiService(ctx);
  const command = await api.command();
  t.deepEqual([command.command, ...command.args], [process.execPath, '/opt/cw/dist/appliance/api/main.js']);
  t.like(command.env, { CW_HTTP_PORT: '18080' });
  t.like(command.env, { CW_API_SOCKET: ctx.paths.apiSocket, CW_API_SOCKET_GROUP: 'www-data', CW_SUPERVISOR_SOCKET: ctx.paths.controlSocket, CW_STORAGE: ctx.paths.storage });

  const failing = buildServiceTable(ctx, { failService: 'dhcpd' }).find((s) => s.name === 'dhcpd');
  t.is(failing?.kind, 'child');
  if (failing?.kind !== 'child') return;
  t.is(failing.prepare, undefined);
  t.is((await failing.command()).command, '/bin/false');
  t.true(logs.includes('[supervisor] test hook CW_FAIL_SERVICE: dhcpd will always fail'));
});

test('api readiness: without the proxy group the socket is never opened to everyone, and the probe says why', async (t) => {
  const { createServer } = await import('node:http');
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-api-probe-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'api.sock');
  const groupFile = path.join(dir, 'group');
  await writeFile(groupFile, 'root:x:0:\n');
  const server = createServer((_req, res) => res.end('{}'));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.teardown(() => server.close());
  await chmod(socketPath, 0o600);
  const probe = apiReadyProbe(socketPath, 'www-data', groupFile);
  await t.throwsAsync(probe({ pid: process.pid }), { message: `group www-data is missing from ${groupFile}: nginx cannot reach the API socket ${socketPath}, which stays closed to other users` });
  t.is((await stat(socketPath)).mode & 0o777, 0o600, 'not 0666');
  await writeFile(groupFile, 'root:x:0:\nwww-data:x:33:\n');
  if (process.getuid?.() === 0) {
    t.true(await probe({ pid: process.pid }));
    t.is((await stat(socketPath)).mode & 0o777, 0o660);
    t.is((await stat(socketPath)).gid, 33);
  }
});
