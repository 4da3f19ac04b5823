// Auth against a real OpenSSH ssh-agent started for this file (and killed at the end): the signatures the
// API checks are made by the agent, through the same client the tools use.
import test from 'ava';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { challengeMessage } from '../../../src/lib/auth-challenge.js';
import { hashPassword } from '../../../src/lib/password.js';
import { parsePublicKey } from '../../../src/lib/sshkey.js';
import { SshAgentClient } from '../../../src/tools/common/client/ssh-agent.js';
import { startSshAgent } from '../../helpers/ssh-agent.js';
import type { ApiOptions } from '../../../src/appliance/api/app.js';
import { openSqliteStore } from '../../../src/appliance/db/sqlite/store.js';
import type { StoreHandle } from '../../../src/appliance/db/store.js';
import type { StoragePaths } from '../../../src/lib/storage-layout.js';
import { apiWithTempStore, healthyReport } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'cw-api-auth-'));
let agentProcess: ChildProcess | undefined;
let agent: SshAgentClient;

interface KeyFiles {
  privatePath: string;
  publicLine: string;
}

function keygen(name: string, type: string, bits?: number): KeyFiles {
  const privatePath = join(dir, name);
  const args = ['-q', '-t', type, '-N', '', '-f', privatePath, '-C', `${name}@test`];
  if (bits) args.push('-b', String(bits));
  execFileSync('ssh-keygen', args, { stdio: 'pipe' });
  return { privatePath, publicLine: readFileSync(`${privatePath}.pub`, 'utf8').trim() };
}

const alice = keygen('alice', 'ed25519');
const bob = keygen('bob', 'rsa', 3072);
const stranger = keygen('stranger', 'ed25519');

test.before(async () => {
  const sock = join(dir, 'agent.sock');
  agentProcess = await startSshAgent(sock, [alice, bob, stranger].map((k) => k.privatePath));
  // Every test of the file signs through this one agent at once; on a loaded 2-core CI machine a
  // sign can wait behind the others longer than the tools' 10 s, which is not what these tests are about.
  agent = new SshAgentClient({ socketPath: sock, timeoutMs: 60_000 });
});

test.after.always(async () => {
  if (agentProcess && agentProcess.exitCode === null) {
    const exited = new Promise((r) => agentProcess?.once('exit', r));
    agentProcess.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

const START = Date.parse('2025-06-01T12:00:00.000Z');

interface Fixture {
  api: FastifyInstance;
  store: StoreHandle & { paths: StoragePaths };
  clock: { now: number };
}

async function fixture(t: { teardown(fn: () => unknown): void }, options: Partial<ApiOptions> = {}): Promise<Fixture> {
  const clock = { now: START };
  const { api, store } = apiWithTempStore({ supervisorHealth: async () => healthyReport, clock: () => clock.now, ...options });
  t.teardown(() => api.close());
  for (const [name, key] of [['alice', alice], ['bob', bob]] as const) {
    const info = parsePublicKey(key.publicLine);
    await store.addAdmin({ name, keyType: info.type, keyLine: info.line, fingerprint: info.fingerprint, comment: info.comment });
  }
  return { api, store, clock };
}

async function challenge(api: FastifyInstance, user: string): Promise<string> {
  const res = await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user } });
  if (res.statusCode !== 200) throw new Error(`challenge: ${res.body}`);
  return res.json().data.nonce as string;
}

/** Signs with the agent and asks for a token; resolves with the raw response. */
async function tokenRequest(
  api: FastifyInstance,
  user: string,
  nonce: string,
  signWith: KeyFiles,
  opts: { present?: KeyFiles; audience?: string; host?: string } = {},
) {
  const message = challengeMessage(user, nonce, opts.audience ?? 'http://localhost');
  const signature = (await agent.sign(signWith.publicLine, message)).toString('base64');
  return api.inject({
    method: 'POST',
    url: '/api/v1/auth/token',
    headers: opts.host ? { host: opts.host } : {},
    payload: { user, nonce, publicKey: (opts.present ?? signWith).publicLine, signature },
  });
}

async function login(api: FastifyInstance, user: string, key: KeyFiles): Promise<string> {
  const res = await tokenRequest(api, user, await challenge(api, user), key);
  if (res.statusCode !== 200) throw new Error(`login: ${res.body}`);
  return res.json().data.token as string;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const FAILED = 'authentication failed: user, key or signature not accepted';

test('without credentials every model route is 401, reads included, and the body is never looked at', async (t) => {
  const { api } = await fixture(t);
  for (const [method, url] of [
    ['GET', '/api/v1/nodes'],
    ['GET', '/api/v1/node/n0'],
    ['GET', '/api/v1/attribs'],
    ['GET', '/api/v1/cluster'],
    ['GET', '/api/v1/admins'],
    ['DELETE', '/api/v1/node/n0'],
  ] as const) {
    const res = await api.inject({ method, url });
    t.is(res.statusCode, 401, `${method} ${url}`);
    t.is(res.json().success, false);
    t.regex(res.headers['www-authenticate'] as string, /Bearer/);
  }
  // Malformed JSON and unknown fields would be 400 for an admin; a stranger learns nothing.
  const bad = await api.inject({ method: 'POST', url: '/api/v1/nodes', headers: { 'content-type': 'application/json' }, payload: '{"mac": ' });
  t.is(bad.statusCode, 401);
  const upload = await api.inject({
    method: 'PUT',
    url: '/api/v1/bootconfig/x/kernel',
    headers: { 'content-type': 'application/octet-stream' },
    payload: Buffer.alloc(1024),
  });
  t.is(upload.statusCode, 401);
});

test('anonymous routes answer without credentials', async (t) => {
  const { api } = await fixture(t);
  t.is((await api.inject('/api/v1/version')).statusCode, 200);
  t.is((await api.inject('/api/v1/health')).statusCode, 200);
  t.is((await api.inject('/api/v1/openapi.json')).statusCode, 200);
  t.is((await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user: 'alice' } })).statusCode, 200);
});

test('an admin signing the challenge with ssh-agent gets a token that opens the API', async (t) => {
  const { api } = await fixture(t);
  const nonce = await challenge(api, 'alice');
  t.regex(nonce, /^[A-Za-z0-9_-]{43}$/);
  const res = await tokenRequest(api, 'alice', nonce, alice);
  t.is(res.statusCode, 200);
  const data = res.json().data;
  t.regex(data.token, /^[A-Za-z0-9_-]{43}$/);
  t.is(data.expiresAt, new Date(START + 3600_000).toISOString());
  const nodes = await api.inject({ url: '/api/v1/nodes', headers: bearer(data.token) });
  t.is(nodes.statusCode, 200);
  t.deepEqual(nodes.json(), { success: true, data: [] });
});

test('an RSA admin key signs with SHA-2 through the agent and is accepted', async (t) => {
  const { api } = await fixture(t);
  const token = await login(api, 'bob', bob);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(token) })).statusCode, 200);
});

test('a key not registered for the user is refused, with the same answer as an unknown user', async (t) => {
  const { api } = await fixture(t);
  const strangerKey = await tokenRequest(api, 'alice', await challenge(api, 'alice'), stranger);
  const othersKey = await tokenRequest(api, 'alice', await challenge(api, 'alice'), bob);
  const unknownUser = await tokenRequest(api, 'mallory', await challenge(api, 'mallory'), stranger);
  const unknownWithAdminKey = await tokenRequest(api, 'mallory', await challenge(api, 'mallory'), alice);
  for (const res of [strangerKey, othersKey, unknownUser, unknownWithAdminKey]) {
    t.is(res.statusCode, 401);
    t.deepEqual(res.json(), { success: false, error: FAILED });
  }
});

test('claiming the registered key but signing with another is refused', async (t) => {
  const { api } = await fixture(t);
  const res = await tokenRequest(api, 'alice', await challenge(api, 'alice'), stranger, { present: alice });
  t.is(res.statusCode, 401);
  t.is(res.json().error, FAILED);
});

test('a nonce works once: replaying a successful or a failed exchange is refused', async (t) => {
  const { api } = await fixture(t);
  const nonce = await challenge(api, 'alice');
  t.is((await tokenRequest(api, 'alice', nonce, alice)).statusCode, 200);
  const replay = await tokenRequest(api, 'alice', nonce, alice);
  t.is(replay.statusCode, 401);
  t.regex(replay.json().error, /challenge unknown, already used or expired/);

  const other = await challenge(api, 'alice');
  t.is((await tokenRequest(api, 'alice', other, stranger, { present: alice })).statusCode, 401);
  t.is((await tokenRequest(api, 'alice', other, alice)).statusCode, 401, 'the failed attempt used the nonce up');
});

test('a nonce the server never issued is refused', async (t) => {
  const { api } = await fixture(t);
  const res = await tokenRequest(api, 'alice', 'A'.repeat(43), alice);
  t.is(res.statusCode, 401);
});

test('a challenge expires after 60 s', async (t) => {
  const { api, clock } = await fixture(t);
  const nonce = await challenge(api, 'alice');
  clock.now += 61_000;
  const res = await tokenRequest(api, 'alice', nonce, alice);
  t.is(res.statusCode, 401);
  t.regex(res.json().error, /expired/);
});

test('a token works until its lifetime is over, then is 401', async (t) => {
  const { api, clock } = await fixture(t);
  const token = await login(api, 'alice', alice);
  clock.now += 3600_000 - 1;
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(token) })).statusCode, 200);
  clock.now += 1;
  const expired = await api.inject({ url: '/api/v1/nodes', headers: bearer(token) });
  t.is(expired.statusCode, 401);
  t.is(expired.json().error, 'invalid or expired token; log in again');
});

test('the token lifetime is configurable', async (t) => {
  const { api, clock } = await fixture(t, { auth: { tokenTtlMs: 5_000 } });
  const res = await tokenRequest(api, 'alice', await challenge(api, 'alice'), alice);
  t.is(res.json().data.expiresAt, new Date(START + 5_000).toISOString());
  clock.now += 5_000;
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(res.json().data.token) })).statusCode, 401);
});

test('unknown, empty and malformed credentials are 401', async (t) => {
  const { api } = await fixture(t);
  for (const authorization of ['Bearer ', 'Bearer nope', `Bearer ${'x'.repeat(43)}`, 'Token abc', 'Basic', 'Basic !!!', 'Bearer']) {
    const res = await api.inject({ url: '/api/v1/nodes', headers: { authorization } });
    t.is(res.statusCode, 401, authorization);
  }
});

test('a signature made for another server (audience) is refused', async (t) => {
  const { api } = await fixture(t);
  const res = await tokenRequest(api, 'alice', await challenge(api, 'alice'), alice, { audience: 'https://evil.example' });
  t.is(res.statusCode, 401);
});

test('the audience does not follow the Host header: only the head node\'s own URLs are accepted', async (t) => {
  const { api } = await fixture(t);
  const viaHost = await tokenRequest(api, 'alice', await challenge(api, 'alice'), alice, {
    audience: 'https://head.cluster:8443',
    host: 'head.cluster:8443',
  });
  t.is(viaHost.statusCode, 401);
  const wrongHost = await tokenRequest(api, 'alice', await challenge(api, 'alice'), alice, {
    audience: 'http://head.cluster',
    host: 'other.cluster',
  });
  t.is(wrongHost.statusCode, 401);
});

test('configured audiences replace the Host header', async (t) => {
  const { api } = await fixture(t, { auth: { audiences: ['http://head.example:8080'] } });
  const ok = await tokenRequest(api, 'alice', await challenge(api, 'alice'), alice, { audience: 'http://head.example:8080', host: 'x' });
  t.is(ok.statusCode, 200);
  const byHost = await tokenRequest(api, 'alice', await challenge(api, 'alice'), alice, { audience: 'http://localhost' });
  t.is(byHost.statusCode, 401);
});

test('removing an admin ends its sessions at once', async (t) => {
  const { api, store } = await fixture(t);
  const token = await login(api, 'alice', alice);
  await store.removeAdmin('alice');
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(token) })).statusCode, 401);
});

const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const rootHash = hashPassword('correct horse');

/** A second connection to the fixture's database file, as `cw-appliance` (another process) opens it. */
function otherProcess(t: { teardown(fn: () => unknown): void }, store: { paths: StoragePaths }): StoreHandle {
  const other = openSqliteStore(store.paths.dbFile);
  t.teardown(() => other.close());
  return other;
}

/** Longer than the store's check for other processes' commits (PRAGMA data_version, at most every 1 ms). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

const adminOf = (name: string, key: KeyFiles) => {
  const info = parsePublicKey(key.publicLine);
  return { name, keyType: info.type, keyLine: info.line, fingerprint: info.fingerprint, comment: info.comment };
};

test('an admin removed by another process on the same database loses its token at once; others keep theirs', async (t) => {
  const { api, store } = await fixture(t);
  const aliceToken = await login(api, 'alice', alice);
  const bobToken = await login(api, 'bob', bob);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(aliceToken) })).statusCode, 200);
  t.true(await otherProcess(t, store).removeAdmin('alice'));
  await settle();
  const refused = await api.inject({ url: '/api/v1/nodes', headers: bearer(aliceToken) });
  t.is(refused.statusCode, 401);
  t.is(refused.json().error, 'invalid or expired token; log in again');
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(bobToken) })).statusCode, 200);
});

test("replacing an admin's key ends the sessions opened with the old key at once; the new key logs in", async (t) => {
  const { api, store } = await fixture(t);
  const oldToken = await login(api, 'alice', alice);
  const bobToken = await login(api, 'bob', bob);
  await otherProcess(t, store).addAdmin(adminOf('alice', stranger), { replace: true });
  await settle();
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(oldToken) })).statusCode, 401);
  t.is((await tokenRequest(api, 'alice', await challenge(api, 'alice'), alice)).statusCode, 401, 'the old key no longer logs in');
  const newToken = await login(api, 'alice', stranger);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(newToken) })).statusCode, 200);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(bobToken) })).statusCode, 200);
});

test('removing an admin and adding it again later with its old key does not bring back the old tokens', async (t) => {
  const { api, store } = await fixture(t);
  const token = await login(api, 'alice', alice);
  const other = otherProcess(t, store);
  await other.removeAdmin('alice');
  await settle();
  await other.addAdmin(adminOf('alice', alice));
  await settle();
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(token) })).statusCode, 401);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(await login(api, 'alice', alice)) })).statusCode, 200);
});

test('DELETE /admin/NAME: root only; removes the admin, its tokens and its authorized_keys line', async (t) => {
  const { api, store } = await fixture(t);
  await store.setSetting('root_password_hash', await rootHash);
  const root = basic('root', 'correct horse');
  const aliceToken = await login(api, 'alice', alice);
  const bobToken = await login(api, 'bob', bob);
  const byAdmin = await api.inject({ method: 'DELETE', url: '/api/v1/admin/bob', headers: bearer(aliceToken) });
  t.is(byAdmin.statusCode, 403);
  t.regex(byAdmin.json().error, /only root/);
  t.truthy(await store.getAdmin('bob'));

  const removed = await api.inject({ method: 'DELETE', url: '/api/v1/admin/alice', headers: root });
  t.is(removed.statusCode, 200, removed.body);
  t.like(removed.json().data, { name: 'alice', fingerprint: parsePublicKey(alice.publicLine).fingerprint });
  t.is(await store.getAdmin('alice'), undefined);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(aliceToken) })).statusCode, 401);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: bearer(bobToken) })).statusCode, 200);
  t.is(readFileSync(store.paths.authorizedKeysFile, 'utf8'), `# cw admin bob\n${parsePublicKey(bob.publicLine).line}\n`);

  const again = await api.inject({ method: 'DELETE', url: '/api/v1/admin/alice', headers: root });
  t.is(again.statusCode, 404);
  t.is(again.json().error, 'no such admin: alice');
  t.is((await api.inject({ method: 'DELETE', url: '/api/v1/admin/Bad%2Fname', headers: root })).statusCode, 400);
});

test('token requests with unknown fields or missing ones are 400', async (t) => {
  const { api } = await fixture(t);
  const res = await api.inject({ method: 'POST', url: '/api/v1/auth/token', payload: { user: 'alice', nonce: 'x' } });
  t.is(res.statusCode, 400);
  const extra = await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user: 'alice', admin: true } });
  t.is(extra.statusCode, 400);
  t.regex(extra.json().error, /unknown field "admin"/);
});


test('root basic auth with the root password works; a wrong password or user does not', async (t) => {
  const { api, store } = await fixture(t);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: basic('root', 'correct horse') })).statusCode, 401, 'no root password set yet');
  await store.setSetting('root_password_hash', await rootHash);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: basic('root', 'correct horse') })).statusCode, 200);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: basic('root', 'correct horse') })).statusCode, 200, 'again');
  const wrong = await api.inject({ url: '/api/v1/nodes', headers: basic('root', 'wrong') });
  t.is(wrong.statusCode, 401);
  t.is(wrong.json().error, 'authentication failed: wrong user or password');
  t.is((await api.inject({ url: '/api/v1/nodes', headers: basic('alice', 'correct horse') })).statusCode, 401);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: basic('root', '') })).statusCode, 401);
});

test('five failed root logins in a minute lock the source out with 429 until the minute is over', async (t) => {
  const { api, store, clock } = await fixture(t, { auth: { plainHttpFrom: 'anywhere' } });
  await store.setSetting('root_password_hash', await rootHash);
  for (let i = 0; i < 5; i++) {
    t.is((await api.inject({ url: '/api/v1/nodes', headers: basic('root', `guess${i}`) })).statusCode, 401);
  }
  const locked = await api.inject({ url: '/api/v1/nodes', headers: basic('root', 'correct horse') });
  t.is(locked.statusCode, 429);
  t.regex(locked.json().error, /too many failed logins; try again in \d+ s/);
  // Another source behind nginx is not affected.
  const other = await api.inject({ url: '/api/v1/nodes', headers: basic('root', 'correct horse'), remoteAddress: '10.9.9.9' });
  t.is(other.statusCode, 200);
  clock.now += 60_001;
  t.is((await api.inject({ url: '/api/v1/nodes', headers: basic('root', 'correct horse') })).statusCode, 200);
});

test('changing the root password stops the old one at once', async (t) => {
  const { api, store } = await fixture(t);
  await store.setSetting('root_password_hash', await rootHash);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: basic('root', 'correct horse') })).statusCode, 200);
  await store.setSetting('root_password_hash', await hashPassword('new password'));
  t.is((await api.inject({ url: '/api/v1/nodes', headers: basic('root', 'correct horse') })).statusCode, 401);
  t.is((await api.inject({ url: '/api/v1/nodes', headers: basic('root', 'new password') })).statusCode, 200);
});
