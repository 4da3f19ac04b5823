// The node's shell scripts: syntax under busybox sh, and the helpers /init relies on, run for real.
import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
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

type Teardown = { teardown(fn: () => unknown): void };

/**
 * A head node stand-in: records each request (method, url, headers, body) and answers `answer`, on
 * `host` (another loopback address stands for another head node) and `port` (0: any).
 */
async function fakeHead(t: Teardown, answer: (url: string) => string, host = '127.0.0.1', port = 0) {
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
  return { seen, url: await listen(t, server, host, port) };
}

/** A head node that goes wrong: `misbehave` gets each raw connection once the request has arrived. */
async function brokenHead(t: Teardown, misbehave: (socket: Socket) => void, host = '127.0.0.1', port = 0) {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => misbehave(socket));
  });
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  return { url: await listen(t, server, host, port) };
}

async function listen(t: Teardown, server: Server | NetServer, host: string, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://${host}:${(server.address() as AddressInfo).port}`;
}

const portOf = (url: string): number => Number(new URL(url).port);

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

bbTest('cw_is_ipv4 and cw_head_at: the head node that answered DHCP, on the port of cw.head', async (t) => {
  for (const good of ['10.0.0.2', '192.168.100.254', '0.0.0.0']) t.is((await run('cw_is_ipv4 "$1"', [good])).exitCode, 0, good);
  for (const bad of ['', '10.0.0', '10.0.0.256', '10.0.0.1.2', '10..0.1', '.10.0.0.1', '10.0.0.1.', '1000.0.0.1', 'a.b.c.d', '10.0.0.1;reboot', '10.0.0.1 x']) {
    t.not((await run('cw_is_ipv4 "$1"', [bad])).exitCode, 0, bad);
  }
  const at = async (address: string, head: string) => (await run('cw_head_at "$1" "$2"', [address, head])).stdout;
  t.is(await at('10.0.0.2', 'http://10.0.0.1:8080'), 'http://10.0.0.2:8080');
  t.is(await at('10.0.0.2', 'http://10.0.0.1'), 'http://10.0.0.2');
  t.is(await at('10.0.0.2', 'http://head.example:81/'), 'http://10.0.0.2:81');
  t.is(await at('10.0.0.2', 'http://[fd00::1]'), 'http://10.0.0.2');
  t.is(await at('10.0.0.2', 'http://[fd00::1]:8080'), 'http://10.0.0.2:8080');
  t.is(await at('', 'http://10.0.0.1:8080'), '');
  t.is(await at('10.0.0.2', 'http://10.0.0.1:80x'), '');
  t.not((await run('cw_head_at "$1" "$2"', ['10.0.0.2/x', 'http://10.0.0.1'])).exitCode, 0);
});

bbTest('cw_pick_head keeps a head node that answers and goes on with the one that answered DHCP when it does not', async (t) => {
  // Two head nodes on one port: 127.0.0.2 answers, nothing listens on 127.0.0.1 (or it never answers).
  const other = await fakeHead(t, () => 'ssh-ed25519 AAAA cw-appliance\n', '127.0.0.2');
  const dead = `http://127.0.0.1:${portOf(other.url)}`;
  const pick = (head: string, dhcp: string) => run(`CW_HEAD=$1; CW_HEAD_PROBE_SECONDS=1; cw_pick_head "$2"; echo "CW_HEAD=$CW_HEAD"`, [head, dhcp]);
  const gone = await pick(dead, other.url);
  t.is(gone.stdout, `cw-init: head ${dead} does not answer; going on with ${other.url}, which answered DHCP\nCW_HEAD=${other.url}`);
  t.is(other.seen.length, 0, 'switched to without a request');

  // A head node that answers is kept, even when another one answered DHCP (a floating head address).
  const kept = await pick(other.url, dead);
  t.is(kept.stdout, `CW_HEAD=${other.url}`);
  t.deepEqual(other.seen.map((r) => [r.method, r.url]), [['GET', '/api/v1/boot/authorized-keys']]);

  // No other head node: said, and the one from cw.head is tried anyway.
  t.is((await pick(dead, '')).stdout, `cw-init: warning: head ${dead} does not answer and no other head node answered DHCP; trying it anyway\nCW_HEAD=${dead}`);
  t.is((await pick(dead, dead)).stdout.split('\n').at(-1), `CW_HEAD=${dead}`);

  // Accepting the connection is not answering: the probe gives up after CW_HEAD_PROBE_SECONDS.
  const silent = await brokenHead(t, () => {});
  const started = Date.now();
  t.is((await pick(silent.url, other.url)).stdout.split('\n').at(-1), `CW_HEAD=${other.url}`);
  t.true(Date.now() - started < 4000, 'gave up after about a second');
});

bbTest('cw_fetch_image: a download that breaks off or stalls is tried once more from the head node that answered DHCP', async (t) => {
  const image = Buffer.alloc(256 * 1024, 7);
  const good = await fakeHead(t, () => image.toString('latin1'), '127.0.0.2');
  const dir = mkdtempSync(join(tmpdir(), 'cw-fetch-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'image.img');
  const fetch = (head: string, other: string) => run(`CW_HEAD=$1; CW_IMAGE=/images/x.img; CW_STALL_SECONDS=2; cw_fetch_image "$3" "$2"; echo "rc=$? CW_HEAD=$CW_HEAD"`, [head, other, file]);
  const sendHalf = (socket: Socket): void => void socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${image.length}\r\n\r\n${'x'.repeat(1000)}`);

  // The head node goes away part-way (its process killed: the connection is closed).
  const breaking = await brokenHead(t, (socket) => {
    sendHalf(socket);
    setTimeout(() => socket.destroy(), 100);
  });
  const broke = await fetch(breaking.url, `http://127.0.0.2:${portOf(good.url)}`);
  t.is(broke.stdout, `cw-init: download from ${breaking.url} failed; trying once more from ${good.url}, which answered DHCP\nrc=0 CW_HEAD=${good.url}`);
  t.deepEqual(readFileSync(file), image);
  t.deepEqual(good.seen.map((r) => r.url), ['/images/x.img']);

  // Its host went down: no more data and no reset either.
  rmSync(file);
  const stalling = await brokenHead(t, sendHalf);
  const stalled = await fetch(stalling.url, good.url);
  t.regex(stalled.stdout, new RegExp(`^cw-init: no data from ${stalling.url}/images/x.img for 2 s\ncw-init: download from ${stalling.url} failed; trying once more`));
  t.deepEqual(readFileSync(file), image);

  // Without another head node, or when that one fails too, the failure is the caller's.
  t.is((await fetch(breaking.url, '')).stdout, `rc=1 CW_HEAD=${breaking.url}`);
  t.is((await fetch(breaking.url, breaking.url)).stdout, `rc=1 CW_HEAD=${breaking.url}`);
  t.regex((await fetch(breaking.url, stalling.url)).stdout, new RegExp(`rc=1 CW_HEAD=${stalling.url}$`));
  // A head node that answers is asked once.
  t.is((await fetch(good.url, breaking.url)).stdout, `rc=0 CW_HEAD=${good.url}`);
});

bbTest('cw_other_heads: the head nodes for node.conf\'s CW_HEADS, without the current one, each once', async (t) => {
  const others = async (...urls: string[]) => (await run('cw_other_heads "$@"', urls)).stdout;
  t.is(await others('http://a', 'http://a', 'http://b'), 'http://b');
  t.is(await others('http://b', 'http://a', 'http://b'), 'http://a');
  t.is(await others('http://a', 'http://b', '', 'http://c', 'http://b'), 'http://b http://c');
  t.is(await others('http://a', 'http://a', ''), '');
});

test('/init checks the head node after DHCP and hands the others to the node agent', (t) => {
  const init = readFileSync(join(NODE_SCRIPTS_DIR, 'init'), 'utf8');
  t.regex(init, /CW_DHCP_HEAD=\$\(cw_head_at "\$\{dhcp_server:-\}" "\$CW_HEAD"\)/);
  t.regex(init, /cw_fetch_image "\$IMG" "\$CW_DHCP_HEAD" \|\| cw_fail /);
  t.regex(init, /^CW_HEADS=\$CW_HEADS$/m);
  // The head node is picked before anything is asked of it.
  t.true(init.indexOf('cw_pick_head') > init.indexOf('. "$CW_RUN/lease"'));
  t.true(init.indexOf('cw_pick_head') < init.indexOf('cw_trade_secret'));
});

bbTest('cw-node-agent reports to the first of CW_HEADS that answers when CW_HEAD does not, and says so once', async (t) => {
  const head = await fakeHead(t, () => '{"success":true}', '127.0.0.2');
  const dead = await brokenHead(t, (socket) => socket.destroy());
  const dir = mkdtempSync(join(tmpdir(), 'cw-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'node.conf'), `CW_HEAD=${dead.url}\nCW_HEADS=ftp://not-a-head ${dead.url} ${head.url}\nCW_NODE=n0\nCW_MAC=52:54:00:00:00:01\n`);
  writeFileSync(join(dir, 'node-secret'), `${SECRET}\n`, { mode: 0o600 });
  const agent = execa(BUSYBOX, ['sh', join(NODE_SCRIPTS_DIR, 'cw-node-agent')], {
    reject: false,
    env: { CW_NODE_CONF: join(dir, 'node.conf'), CW_NODE_SECRET: join(dir, 'node-secret'), CW_SSH_HOST_KEY: join(dir, 'none'), CW_INTERVAL: '1', TMPDIR: dir },
  });
  try {
    const deadline = Date.now() + 15_000;
    while (head.seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    t.true(head.seen.length >= 2, 'the agent reported, twice');
    t.is(head.seen[0]?.url, '/api/v1/boot/status/52:54:00:00:00:01');
    t.is(head.seen[0]?.headers['x-cw-node-secret'], SECRET);
  } finally {
    agent.kill('SIGTERM');
  }
  const { stderr } = await agent;
  t.is(stderr.split('\n').filter((l) => l.includes('reporting to')).length, 1, stderr);
  t.regex(stderr, new RegExp(`^cw-node-agent: reporting to ${head.url} now \\(head nodes: ${dead.url} ftp://not-a-head ${dead.url} ${head.url}\\)$`, 'm'));
  t.notRegex(stderr, /curl/, 'curl\'s complaints about the head node stood in for are not shown');
});
