// The anonymous edge of the API as an attacker on the cluster network sees it: forged client addresses,
// password guesses in bulk, signatures replayed from another server, oversized bodies, challenge floods.
import test from 'ava';
import type { FastifyInstance } from 'fastify';
import { request as httpRequest } from 'node:http';
import type { NetworkInterfaceInfo } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { challengeMessage } from '../../../src/lib/auth-challenge.js';
import { hashPassword } from '../../../src/lib/password.js';
import { parsePublicKey } from '../../../src/lib/sshkey.js';
import type { ApiOptions } from '../../../src/appliance/api/app.js';
import type { StoreHandle } from '../../../src/appliance/db/store.js';
import { generateKey, tempDir } from '../lib/keys.js';
import { apiWithTempStore, healthyReport, signChallenge } from './helpers.js';

const aliceKey = generateKey('ed25519', { comment: 'alice@test' });
const rootHash = hashPassword('correct horse');

/**
 * The API with alice and a root password. Remote clients are played with inject, which cannot speak TLS,
 * so credentials over plain HTTP are accepted from anywhere unless `options.auth.plainHttpFrom` says otherwise.
 */
async function fixture(t: { teardown(fn: () => unknown): void }, options: Partial<ApiOptions> = {}): Promise<{ api: FastifyInstance; store: StoreHandle }> {
  const { api, store } = apiWithTempStore({ supervisorHealth: async () => healthyReport, ...options, auth: { plainHttpFrom: 'anywhere', ...options.auth } });
  t.teardown(() => api.close());
  const info = parsePublicKey(aliceKey.publicLine);
  await store.addAdmin({ name: 'alice', keyType: info.type, keyLine: info.line, fingerprint: info.fingerprint, comment: info.comment });
  await store.setSetting('root_password_hash', await rootHash);
  return { api, store };
}

const basic = (password: string) => `Basic ${Buffer.from(`root:${password}`).toString('base64')}`;

/** A request over the API's unix socket, as nginx sends them: no TCP peer address. */
function overSocket(socketPath: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path: '/api/v1/nodes', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function listening(t: { teardown(fn: () => unknown): void }, options: Partial<ApiOptions> = {}): Promise<string> {
  const { api } = await fixture(t, options);
  const { dir, cleanup } = tempDir('cw-api-sock-');
  t.teardown(cleanup);
  const socketPath = join(dir, 'api.sock');
  await api.listen({ path: socketPath });
  return socketPath;
}

// --- 1. the lockout keys on a trustworthy address -------------------------------------------------

test('on the socket, a forged X-Forwarded-For per guess without X-Real-IP is one shared source and is locked out', async (t) => {
  const socketPath = await listening(t);
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) {
    const res = await overSocket(socketPath, { authorization: basic(`guess${i}`), 'x-forwarded-for': `10.66.0.${i + 1}` });
    statuses.push(res.status);
  }
  t.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429]);
});

test('on the socket, the lockout keys on X-Real-IP (set by nginx), not on a forged X-Forwarded-For', async (t) => {
  const socketPath = await listening(t);
  for (let i = 0; i < 5; i++) {
    const res = await overSocket(socketPath, { authorization: basic(`guess${i}`), 'x-real-ip': '10.1.1.1', 'x-forwarded-for': `10.66.0.${i + 1}` });
    t.is(res.status, 401);
  }
  const locked = await overSocket(socketPath, { authorization: basic('correct horse'), 'x-real-ip': '10.1.1.1', 'x-forwarded-for': '10.99.99.99' });
  t.is(locked.status, 429);
  t.regex(JSON.parse(locked.body).error, /too many failed logins/);
  const other = await overSocket(socketPath, { authorization: basic('correct horse'), 'x-real-ip': '10.2.2.2' });
  t.is(other.status, 200, 'another client address is not locked out');
});

test('on a TCP socket the peer address counts, whatever X-Real-IP or X-Forwarded-For claim', async (t) => {
  const { api } = await fixture(t);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await api.inject({
      url: '/api/v1/nodes',
      remoteAddress: '10.5.5.5',
      headers: { authorization: basic(`guess${i}`), 'x-real-ip': `10.66.1.${i + 1}`, 'x-forwarded-for': `10.66.2.${i + 1}` },
    });
    statuses.push(res.statusCode);
  }
  t.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
});

test('at most two password checks run at once; a burst beyond the queue is refused with 503 at once', async (t) => {
  let running = 0;
  let most = 0;
  let calls = 0;
  const verifyPassword = async (): Promise<boolean> => {
    calls++;
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, 20));
    running--;
    return false;
  };
  const { api } = await fixture(t, { auth: { verifyPassword } });
  // Twenty sources, so the per-source lockout does not hold anyone back.
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => api.inject({ url: '/api/v1/nodes', remoteAddress: `10.7.0.${i + 1}`, headers: { authorization: basic('wrong') } })),
  );
  const statuses = answers.map((res) => res.statusCode);
  t.is(most, 2);
  t.is(calls, 10, 'two running and eight waiting');
  t.is(statuses.filter((s) => s === 401).length, 10);
  const refused = answers.filter((res) => res.statusCode === 503);
  t.is(refused.length, 10);
  t.is(refused[0]?.headers['retry-after'], '1');
  t.regex(refused[0]?.json().error, /too many password checks at once/);
});

test('parallel guesses from one source stop at the lockout limit instead of all being checked', async (t) => {
  let calls = 0;
  const verifyPassword = async (): Promise<boolean> => {
    calls++;
    await new Promise((resolve) => setTimeout(resolve, 5));
    return false;
  };
  const { api } = await fixture(t, { auth: { verifyPassword, passwordChecks: { concurrent: 2, queue: 100 } } });
  const answers = await Promise.all(Array.from({ length: 20 }, () => api.inject({ url: '/api/v1/nodes', headers: { authorization: basic('wrong') } })));
  t.is(calls, 5);
  t.is(answers.filter((res) => res.statusCode === 429).length, 15);
});

// --- 3. signed audiences are the head node's own URLs ----------------------------------------------

const eth0 = (address: string): NodeJS.Dict<NetworkInterfaceInfo[]> => ({
  eth0: [{ address, netmask: '255.255.255.0', family: 'IPv4', mac: '52:54:00:00:00:01', internal: false, cidr: `${address}/24` }],
});

async function tokenFor(api: FastifyInstance, audience: string, host?: string, remoteAddress?: string) {
  const challenge = await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user: 'alice' }, ...(remoteAddress ? { remoteAddress } : {}) });
  const { nonce } = challenge.json().data as { nonce: string };
  const signature = signChallenge(aliceKey.privateText, challengeMessage('alice', nonce, audience));
  return api.inject({
    method: 'POST',
    url: '/api/v1/auth/token',
    headers: host ? { host } : {},
    ...(remoteAddress ? { remoteAddress } : {}),
    payload: { user: 'alice', nonce, publicKey: aliceKey.publicLine, signature },
  });
}

test('a signature made for another server is refused even with that server\'s Host header', async (t) => {
  const { api } = await fixture(t, { auth: { interfaces: () => eth0('10.1.2.3'), hostname: 'head1' } });
  t.is((await tokenFor(api, 'http://head2.cluster', 'head2.cluster')).statusCode, 401);
  t.is((await tokenFor(api, 'https://head2.cluster:8443', 'head2.cluster:8443')).statusCode, 401);
  t.is((await tokenFor(api, 'http://10.9.9.9', '10.9.9.9')).statusCode, 401);
});

test('signatures for the head node\'s own addresses, localhost and host name are accepted, whatever the Host header', async (t) => {
  const { api } = await fixture(t, { auth: { interfaces: () => eth0('10.1.2.3'), hostname: 'head1', httpPort: 8080 } });
  for (const audience of ['http://10.1.2.3:8080', 'http://127.0.0.1:8080', 'http://localhost:8080', 'http://head1:8080']) {
    t.is((await tokenFor(api, audience, 'anything.example')).statusCode, 200, audience);
  }
  t.is((await tokenFor(api, 'http://10.1.2.3')).statusCode, 401, 'another port is another server');
});

test('by default the machine\'s real addresses are audiences on port 80; CW_API_AUDIENCES names are added', async (t) => {
  const { api } = await fixture(t, { auth: { extraAudiences: ['head.example', 'https://head.example:8443'] } });
  t.is((await tokenFor(api, 'http://127.0.0.1')).statusCode, 200);
  t.is((await tokenFor(api, 'http://head.example')).statusCode, 200);
  t.is((await tokenFor(api, 'https://head.example:8443')).statusCode, 200);
  t.is((await tokenFor(api, 'http://other.example', 'other.example')).statusCode, 401);
});

// --- 2. admin credentials only over HTTPS (or from this machine) -----------------------------------

test('admin credentials over plain HTTP from another machine are refused with 403 naming https; loopback may', async (t) => {
  const { api } = await fixture(t, { auth: { plainHttpFrom: 'loopback', httpsPort: 8443 } });
  const remote = await api.inject({ url: '/api/v1/nodes', remoteAddress: '10.5.5.5', headers: { authorization: basic('correct horse') } });
  t.is(remote.statusCode, 403);
  t.regex(remote.json().error, /refused over plain HTTP from another machine: use https:\/\/HEAD:8443\/api\/v1/);
  // Refused whether or not the credentials are right: no guessing over HTTP either, and no lockout counted.
  const guess = await api.inject({ url: '/api/v1/nodes', remoteAddress: '10.5.5.5', headers: { authorization: basic('wrong') } });
  t.is(guess.statusCode, 403);
  t.is((await api.inject({ url: '/api/v1/nodes', remoteAddress: '10.5.5.5', headers: { authorization: 'Bearer x' } })).statusCode, 403);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: { authorization: basic('correct horse') } })).statusCode, 200, 'loopback');
  t.is((await api.inject({ url: '/api/v1/nodes', remoteAddress: '::1', headers: { authorization: basic('correct horse') } })).statusCode, 200);
  // Anonymous routes stay open over HTTP (the nodes use them).
  t.is((await api.inject({ url: '/api/v1/version', remoteAddress: '10.5.5.5' })).statusCode, 200);
});

test('a signed challenge sent over plain HTTP from another machine is refused before its nonce is spent', async (t) => {
  const { api } = await fixture(t, { auth: { plainHttpFrom: 'loopback' } });
  const challenge = await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user: 'alice' }, remoteAddress: '10.5.5.5' });
  t.is(challenge.statusCode, 200, 'a challenge carries no secret');
  const { nonce } = challenge.json().data as { nonce: string };
  const payload = { user: 'alice', nonce, publicKey: aliceKey.publicLine, signature: signChallenge(aliceKey.privateText, challengeMessage('alice', nonce, 'http://localhost')) };
  const remote = await api.inject({ method: 'POST', url: '/api/v1/auth/token', remoteAddress: '10.5.5.5', payload });
  t.is(remote.statusCode, 403);
  t.regex(remote.json().error, /plain HTTP/);
  t.is((await api.inject({ method: 'POST', url: '/api/v1/auth/token', payload })).statusCode, 200, 'the nonce was not used up');
});

test('behind nginx: X-Forwarded-Proto http from another address is refused, https accepted; a local socket caller may', async (t) => {
  const socketPath = await listening(t, { auth: { plainHttpFrom: 'loopback' } });
  const auth = { authorization: basic('correct horse') };
  const plain = await overSocket(socketPath, { ...auth, 'x-real-ip': '10.1.1.1', 'x-forwarded-proto': 'http' });
  t.is(plain.status, 403);
  t.regex(JSON.parse(plain.body).error, /use https:\/\/HEAD\/api\/v1/);
  t.is((await overSocket(socketPath, { ...auth, 'x-real-ip': '10.1.1.1', 'x-forwarded-proto': 'https' })).status, 200);
  t.is((await overSocket(socketPath, { ...auth, 'x-real-ip': '127.0.0.1', 'x-forwarded-proto': 'http' })).status, 200, 'nginx reached from the machine itself');
  t.is((await overSocket(socketPath, { ...auth, 'x-real-ip': '10.1.1.1', 'x-forwarded-proto': 'gopher' })).status, 403, 'an unknown scheme counts as plain');
  t.is((await overSocket(socketPath, auth)).status, 200, 'cw-appliance on the socket itself');
});

// --- 4. bounded anonymous routes ---------------------------------------------------------------------

test('a 60 MB anonymous body is refused with 413 before it is read', async (t) => {
  const { api } = await fixture(t);
  for (const url of ['/api/v1/auth/challenge', '/api/v1/auth/token']) {
    let sent = 0;
    const total = 60 * 1024 * 1024;
    const body = new Readable({
      read() {
        if (sent >= total) return this.push(null);
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        sent += chunk.length;
        this.push(chunk);
      },
    });
    const res = await api.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', 'content-length': String(total) }, payload: body });
    t.is(res.statusCode, 413, url);
    t.true(sent < 4 * 1024 * 1024, `${url}: read ${sent} bytes`);
  }
});

test('a small body over the route limit is 413 too', async (t) => {
  const { api } = await fixture(t);
  const res = await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user: 'a'.repeat(5000) } });
  t.is(res.statusCode, 413);
});

test('a flood of challenges from one source gets 429 with Retry-After; another source\'s challenge stays valid', async (t) => {
  // A still clock: the bucket refills only by the test's word, however slow the machine.
  const { api } = await fixture(t, { clock: () => Date.parse('2026-01-01T00:00:00Z'), auth: { anonymousRate: { burst: 10, perSecond: 0.5 } } });
  const victim = await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user: 'alice' }, remoteAddress: '10.0.0.2' });
  const { nonce } = victim.json().data as { nonce: string };
  const flood = [];
  for (let i = 0; i < 30; i++) flood.push(await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user: 'alice' }, remoteAddress: '10.0.0.66' }));
  t.is(flood.filter((res) => res.statusCode === 200).length, 10);
  const limited = flood.filter((res) => res.statusCode === 429);
  t.is(limited.length, 20);
  t.regex(limited[0]?.headers['retry-after'] as string, /^\d+$/);
  t.regex(limited[0]?.json().error, /too many requests/);
  // The token route counts against the same budget.
  t.is((await api.inject({ method: 'POST', url: '/api/v1/auth/token', payload: {}, remoteAddress: '10.0.0.66' })).statusCode, 429);
  const signature = signChallenge(aliceKey.privateText, challengeMessage('alice', nonce, 'http://localhost'));
  const res = await api.inject({
    method: 'POST',
    url: '/api/v1/auth/token',
    remoteAddress: '10.0.0.2',
    payload: { user: 'alice', nonce, publicKey: aliceKey.publicLine, signature },
  });
  t.is(res.statusCode, 200);
});

test('one source\'s outstanding challenges are capped, so a flood cannot push out another source\'s', async (t) => {
  const { api } = await fixture(t, { auth: { anonymousRate: { burst: 100_000, perSecond: 1000 }, challengesPerSource: 8 } });
  const first = await tokenForLater(api, '10.0.0.2');
  for (let i = 0; i < 12_000; i++) await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user: 'x' }, remoteAddress: '10.0.0.66' });
  t.is((await first()).statusCode, 200);
});

/** Asks for a challenge now; the returned function answers it. */
async function tokenForLater(api: FastifyInstance, remoteAddress: string) {
  const challenge = await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user: 'alice' }, remoteAddress });
  const { nonce } = challenge.json().data as { nonce: string };
  return () =>
    api.inject({
      method: 'POST',
      url: '/api/v1/auth/token',
      remoteAddress,
      payload: { user: 'alice', nonce, publicKey: aliceKey.publicLine, signature: signChallenge(aliceKey.privateText, challengeMessage('alice', nonce, 'http://localhost')) },
    });
}

test('ownAudiences: every address of the machine with the port (none for 80), loopback, names; never link-local IPv6', async (t) => {
  const { ownAudiences, audiencesFromEnv } = await import('../../../src/appliance/api/auth/audiences.js');
  const interfaces = (): NodeJS.Dict<NetworkInterfaceInfo[]> => ({
    ...eth0('10.1.2.3'),
    eth1: [
      { address: 'fd00::5', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '52:54:00:00:00:02', internal: false, cidr: 'fd00::5/64', scopeid: 0 },
      { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '52:54:00:00:00:02', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    ],
  });
  t.deepEqual(ownAudiences({ httpPort: 80, hostname: 'Head1', interfaces }).sort(), [
    'http://10.1.2.3',
    'http://127.0.0.1',
    'http://[fd00::5]',
    'http://head1',
    'http://localhost',
    'https://10.1.2.3',
    'https://127.0.0.1',
    'https://[fd00::5]',
    'https://head1',
    'https://localhost',
  ]);
  const ports = ownAudiences({ httpPort: 8080, httpsPort: 8443, hostname: 'head1', interfaces, extra: ['head.example'] });
  t.true(ports.includes('http://head.example:8080') && ports.includes('https://head.example:8443') && ports.includes('https://10.1.2.3:8443'));
  t.false(ports.includes('https://10.1.2.3'), 'the HTTPS port is the configured one');
  t.true(ownAudiences({ httpPort: 8080, hostname: 'head1', interfaces, extra: ['head.example', 'https://head.example'] }).includes('http://head.example:8080'));
  t.true(ownAudiences({ httpPort: 8080, hostname: 'head1', interfaces, extra: ['https://head.example'] }).includes('https://head.example'));
  t.deepEqual(audiencesFromEnv(' head.example , https://h:8443 '), ['head.example', 'https://h:8443']);
  t.deepEqual(audiencesFromEnv(undefined), []);
  t.throws(() => audiencesFromEnv('head/evil'), { message: 'CW_API_AUDIENCES: invalid origin or host name "head/evil"' });
  t.throws(() => audiencesFromEnv('ftp://x'), { message: /invalid origin/ });
});
