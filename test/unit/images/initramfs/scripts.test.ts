// The node's shell scripts: syntax under busybox sh, and the helpers /init relies on, run for real.
import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_SCRIPTS_DIR } from '../../../../src/images/initramfs/build.js';
import { requireTools, toolPath } from '../../../helpers/tools.js';

const BUSYBOX = toolPath('busybox');
const FUNCTIONS = join(NODE_SCRIPTS_DIR, 'init-functions.sh');
const bbTest = requireTools('busybox');

/** Runs a snippet in busybox sh with init-functions.sh sourced. */
async function run(snippet: string, args: string[] = []) {
  return execa(BUSYBOX, ['sh', '-c', `. "${FUNCTIONS}"; ${snippet}`, 'sh', ...args], { reject: false });
}

for (const name of ['init', 'init-functions.sh', 'udhcpc.script', 'cw-node-agent']) {
  bbTest(`${name} parses under busybox sh -n`, async (t) => {
    const r = await execa(BUSYBOX, ['sh', '-n', join(NODE_SCRIPTS_DIR, name)], { reject: false });
    t.is(r.exitCode, 0, r.stderr);
  });
}

test('/init: set -u, switch_root to /sbin/init, every failure through cw_fail with a reboot', (t) => {
  const init = readFileSync(join(NODE_SCRIPTS_DIR, 'init'), 'utf8');
  t.regex(init, /^set -u$/m);
  t.regex(init, /exec switch_root "\$NEWROOT" \/sbin\/init/);
  t.regex(init, /cw_say "ERROR: \$\*"/);
  t.regex(init, /reboot -f/);
  t.regex(init, /_boot_rw_layer=rwtab is not yet supported/);
  t.regex(init, /cw_report initramfs/);
  t.regex(init, /cw_report image/);
  // The NIC must keep its address across switch_root: nothing deconfigures it.
  t.notRegex(init, /ip (-4 )?addr flush|udhcpc[^\n]* -R/);
});

bbTest('cw_squash_offset reads partition 1 of the MBR', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-mbr-'));
  try {
    const img = join(dir, 'x.img');
    const mbr = Buffer.alloc(4096);
    mbr[450] = 0x83;
    mbr.writeUInt32LE(2048, 454);
    mbr.writeUInt32LE(1000, 458);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    writeFileSync(img, mbr);
    t.is((await run('cw_squash_offset "$1"', [img])).stdout, '1048576');
    mbr.writeUInt32LE(0x01020304, 454);
    writeFileSync(img, mbr);
    t.is((await run('cw_squash_offset "$1"', [img])).stdout, String(0x01020304 * 512));
    mbr[511] = 0;
    writeFileSync(img, mbr);
    const bad = await run('cw_squash_offset "$1"', [img]);
    t.not(bad.exitCode, 0);
    t.regex(bad.stderr, /no partition table/);
    mbr[511] = 0xaa;
    mbr[450] = 0;
    writeFileSync(img, mbr);
    t.regex((await run('cw_squash_offset "$1"', [img])).stderr, /partition 1 .* is empty/);
    writeFileSync(img, Buffer.alloc(100));
    t.not((await run('cw_squash_offset "$1"', [img])).exitCode, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

bbTest('cw_cmdline_value and cw_normalize_mac', async (t) => {
  const line = 'console=ttyS0 cw.node=n0 cw.head=http://10.1.0.1:8080 cw.image=/images/abc.img BOOTIF=01-52-54-00-AB-cd-01 cw.node=n7';
  t.is((await run('cw_cmdline_value cw.node "$1"', [line])).stdout, 'n7');
  t.is((await run('cw_cmdline_value cw.head "$1"', [line])).stdout, 'http://10.1.0.1:8080');
  t.is((await run('cw_cmdline_value cw.rw "$1"', [line])).stdout, '');
  t.is((await run('cw_normalize_mac "$(cw_cmdline_value BOOTIF "$1")"', [line])).stdout, '52:54:00:ab:cd:01');
  t.is((await run('cw_normalize_mac 52:54:00:AB:CD:02')).stdout, '52:54:00:ab:cd:02');
  t.is((await run('cw_normalize_mac "52:54:00:ab:cd"')).stdout, '');
  t.is((await run('cw_normalize_mac "x;reboot"')).stdout, '');
});

bbTest('cw_prefix_of and cw_json_escape', async (t) => {
  t.is((await run('cw_prefix_of 255.255.255.0')).stdout, '24');
  t.is((await run('cw_prefix_of 255.255.240.0')).stdout, '20');
  const esc = (await run('cw_json_escape "$1"', ['say "hi"\\ok\nline'])).stdout;
  t.is(JSON.parse(`"${esc}"`), 'say "hi"\\ok line');
});

/** A head node stand-in: records each request (method, url, headers, body) and answers `answer`. */
async function fakeHead(t: { teardown(fn: () => unknown): void }, answer: (url: string) => string) {
  const seen: Array<{ method: string; url: string; headers: Record<string, unknown>; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.setHeader('content-type', 'application/json');
      res.end(answer(req.url ?? ''));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { seen, url: `http://127.0.0.1:${port}` };
}

const SECRET = 'q3V9-xN_0aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567';
const NEW_SECRET = 'Zz9-xN_0aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678';

bbTest('cw_report and cw_trade_secret send the node secret in a header, never in the URL', async (t) => {
  const head = await fakeHead(t, (url) => (url.startsWith('/api/v1/boot/secret/') ? `{"success":true,"data":{"secret":"${NEW_SECRET}"}}` : '{"success":true}'));
  const env = `CW_HEAD=${head.url}; CW_MAC=52:54:00:00:00:01; CW_IP=10.0.0.100; CW_SECRET=${SECRET};`;
  const traded = await run(`${env} cw_trade_secret`);
  t.is(traded.exitCode, 0, traded.stderr);
  t.is(traded.stdout, NEW_SECRET);
  const report = await run(`${env} cw_report error 'image checksum mismatch'`);
  t.is(report.exitCode, 0);
  t.deepEqual(head.seen.map((r) => [r.method, r.url, r.headers['x-cw-node-secret']]), [
    ['POST', '/api/v1/boot/secret/52:54:00:00:00:01', SECRET],
    ['POST', '/api/v1/boot/status/52:54:00:00:00:01', SECRET],
  ]);
  t.deepEqual(JSON.parse(head.seen[1]?.body ?? ''), { stage: 'error', message: 'image checksum mismatch', ip: '10.0.0.100' });
  // Without a secret there is no header (the head node refuses the report), and nothing to trade.
  await run(`CW_HEAD=${head.url}; CW_MAC=52:54:00:00:00:01; cw_report up`);
  t.false('x-cw-node-secret' in (head.seen[2]?.headers ?? {}));
  t.not((await run(`CW_HEAD=${head.url}; CW_MAC=52:54:00:00:00:01; CW_SECRET=; cw_trade_secret`)).exitCode, 0);
  t.is(head.seen.length, 3);
});

bbTest('cw_trade_secret accepts only a well-formed secret back; cw_is_secret; cw_sha256_of', async (t) => {
  const head = await fakeHead(t, () => '{"success":true,"data":{"secret":"short$(id)"}}');
  const r = await run(`CW_HEAD=${head.url}; CW_MAC=52:54:00:00:00:01; CW_SECRET=${SECRET}; cw_trade_secret`);
  t.not(r.exitCode, 0);
  t.is(r.stdout, '');
  t.is((await run('cw_is_secret "$1"', [SECRET])).exitCode, 0);
  for (const bad of ['', SECRET.slice(1), `${SECRET}x`, `${SECRET.slice(1)}$`, `${SECRET.slice(2)} x`]) t.not((await run('cw_is_secret "$1"', [bad])).exitCode, 0, bad);
  const dir = mkdtempSync(join(tmpdir(), 'cw-sha-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'img'), 'image bytes');
  t.is((await run('cw_sha256_of "$1"', [join(dir, 'img')])).stdout, createHash('sha256').update('image bytes').digest('hex'));
});

test('/init checks the image against cw.sha256, trades the secret and leaves it for root alone', (t) => {
  const init = readFileSync(join(NODE_SCRIPTS_DIR, 'init'), 'utf8');
  t.regex(init, /CW_SHA256=\$\(cw_cmdline_value cw\.sha256 "\$CMDLINE"\)/);
  t.regex(init, /cw_fail_after 300 "image checksum mismatch: \$CW_IMAGE has sha256/);
  t.regex(init, /NEW_SECRET=\$\(cw_trade_secret\)/);
  t.regex(init, /\(umask 077 && printf '%s\\n' "\$CW_SECRET" >"\$NEWROOT\/etc\/cw\/node-secret"\)/);
  // The check comes before the image is used.
  t.true(init.indexOf('cw_sha256_of "$IMG"') < init.indexOf('cw_squash_offset "$IMG"'));
});

bbTest('cw-node-agent reports with the secret of /etc/cw/node-secret in a header, not on its command line, and its host key without the comment', async (t) => {
  const head = await fakeHead(t, () => '{"success":true}');
  const dir = mkdtempSync(join(tmpdir(), 'cw-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'node.conf'), `CW_HEAD=${head.url}\nCW_NODE=n0\nCW_MAC=52:54:00:00:00:01\nCW_IFACE=\n`);
  writeFileSync(join(dir, 'node-secret'), `${SECRET}\n`, { mode: 0o600 });
  const hostKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKgf913NsQ6qJxb+F7VfFjukD6JNdAuHxR+tzhIXF6zA';
  writeFileSync(join(dir, 'host_key.pub'), `${hostKey} root@n0\n`);
  const agent = execa(BUSYBOX, ['sh', join(NODE_SCRIPTS_DIR, 'cw-node-agent')], {
    reject: false,
    env: { CW_NODE_CONF: join(dir, 'node.conf'), CW_NODE_SECRET: join(dir, 'node-secret'), CW_SSH_HOST_KEY: join(dir, 'host_key.pub'), CW_INTERVAL: '1', TMPDIR: dir },
  });
  try {
    const deadline = Date.now() + 15_000;
    while (head.seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    t.true(head.seen.length > 0, 'the agent reported');
    const first = head.seen[0];
    t.is(first?.url, '/api/v1/boot/status/52:54:00:00:00:01');
    t.is(first?.headers['x-cw-node-secret'], SECRET);
    t.is(JSON.parse(first?.body ?? '{}').stage, 'up');
    t.is(JSON.parse(first?.body ?? '{}').ssh_host_key, hostKey);
    // The curl config holding the secret is private to the agent's user.
    const conf = readdirSync(dir).find((f) => f.startsWith('cw-node-agent.'));
    t.truthy(conf);
    t.is(statSync(join(dir, conf ?? '')).mode & 0o777, 0o600);
  } finally {
    agent.kill('SIGTERM');
    await agent;
  }
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('cw-node-agent.')), [], 'removed when the agent stops');
});

bbTest('cw_install_head_key writes the head node key for root, keeps the image\'s own lines, replaces an older head key, refuses anything else', async (t) => {
  const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd3b3JkcGxheW5vdHJlYWxseWFrZXlidXRzaGFwZWQx cw-appliance';
  let answer = `${KEY}\n`;
  const head = await fakeHead(t, () => answer);
  const root = mkdtempSync(join(tmpdir(), 'cw-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const keys = join(root, 'root', '.ssh', 'authorized_keys');
  const r = await run(`CW_HEAD=${head.url}; cw_install_head_key "$1"`, [root]);
  t.is(r.exitCode, 0, r.stderr);
  t.is(readFileSync(keys, 'utf8'), `${KEY}\n`);
  t.is(statSync(keys).mode & 0o777, 0o600);
  t.is(statSync(join(root, 'root', '.ssh')).mode & 0o777, 0o700);
  t.is(head.seen[0]?.url, '/api/v1/boot/authorized-keys');

  writeFileSync(keys, 'ssh-ed25519 AAAAadmin admin@site\nssh-ed25519 AAAAold cw-appliance\n');
  t.is((await run(`CW_HEAD=${head.url}; cw_install_head_key "$1"`, [root])).exitCode, 0);
  t.is(readFileSync(keys, 'utf8'), `ssh-ed25519 AAAAadmin admin@site\n${KEY}\n`);

  for (const bad of ['<html>oops</html>', `command="reboot" ${KEY}`, 'ssh-ed25519 AAAA$(id) cw-appliance', 'ssh-rsa AAAAB3 cw-appliance', '']) {
    answer = `${bad}\n`;
    t.not((await run(`CW_HEAD=${head.url}; cw_install_head_key "$1"`, [root])).exitCode, 0, bad);
    t.is(readFileSync(keys, 'utf8'), `ssh-ed25519 AAAAadmin admin@site\n${KEY}\n`, bad);
  }
});
