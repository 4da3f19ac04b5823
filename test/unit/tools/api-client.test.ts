// The client's protocol handling against a small scripted HTTP server: envelopes, the challenge and
// token exchange, one re-authentication after a 401, and the one-line errors.
import test from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { ApiClient, type KeyAgent } from '../../../src/tools/common/client/api-client.js';
import { CHALLENGE_CONTEXT } from '../../../src/lib/auth-challenge.js';
import { NO_AGENT_MESSAGE, identityFromBlob } from '../../../src/tools/common/client/ssh-agent.js';
import { wireString } from '../../../src/lib/ssh-wire.js';

type Handler = (req: IncomingMessage, body: string) => { status: number; json?: unknown; text?: string };

async function serve(t: { teardown(fn: () => Promise<void> | void): void }, handler: Handler): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
      const r = handler(req, body);
      res.writeHead(r.status, { 'content-type': r.text !== undefined ? 'text/html' : 'application/json' });
      res.end(r.text ?? JSON.stringify(r.json));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`, seen };
}

/** An agent with fake keys whose "signature" is the signed message itself, so the server can check it. */
function fakeAgent(names: string[]): KeyAgent & { signed: string[] } {
  const keys = names.map((n) => identityFromBlob(Buffer.concat([wireString('ssh-ed25519'), wireString(Buffer.alloc(32, n))]), n));
  const signed: string[] = [];
  return {
    signed,
    requireIdentities: async () => keys,
    sign: async (key, data) => {
      signed.push(`${key.comment}:${data.toString()}`);
      return Buffer.from(`${key.comment}|${data.toString()}`);
    },
  };
}

const NONCE = 'A'.repeat(43);
const ok = (data: unknown) => ({ status: 200, json: { success: true, data } });
const fail = (status: number, error: string) => ({ status, json: { success: false, error } });

/** Accepts only key "good"; tokens listed in `valid` are accepted by GET /nodes. */
function authServer(valid: Set<string>, issued: { n: number }): Handler {
  return (req, body) => {
    if (req.url === '/api/v1/auth/challenge') return ok({ nonce: NONCE, issuedAt: '', expiresAt: '' });
    if (req.url === '/api/v1/auth/token') {
      const b = JSON.parse(body) as { user: string; nonce: string; signature: string; publicKey: string };
      const sig = Buffer.from(b.signature, 'base64').toString();
      if (!sig.startsWith('good|')) return fail(401, 'key not registered for admin');
      const token = `tok${++issued.n}`;
      valid.add(token);
      return ok({ token, expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    }
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!valid.has(token)) return fail(401, 'invalid or expired token');
    if (req.url === '/api/v1/nodes') return ok([{ name: 'n0' }]);
    if (req.url === '/api/v1/bad') return fail(400, 'invalid field "x": contains ";"');
    return fail(404, 'no such endpoint');
  };
}

test('signs the challenge for user and audience with each key until one is accepted, then sends the bearer token', async (t) => {
  const valid = new Set<string>();
  const issued = { n: 0 };
  const { url, seen } = await serve(t, authServer(valid, issued));
  const agent = fakeAgent(['stranger', 'good']);
  const api = new ApiClient({ baseUrl: url, user: 'alice', agent, tokens: new Map() });
  t.teardown(() => api.close());
  t.deepEqual(await api.get('/nodes'), [{ name: 'n0' }]);
  const origin = new URL(url).origin;
  t.deepEqual(agent.signed, [
    `stranger:${CHALLENGE_CONTEXT}\nalice\n${NONCE}\n${origin}`,
    `good:${CHALLENGE_CONTEXT}\nalice\n${NONCE}\n${origin}`,
  ]);
  // A second request reuses the token.
  await api.get('/nodes');
  t.is(issued.n, 1);
  t.is(seen.filter((s) => s.startsWith('GET /api/v1/nodes Bearer tok1')).length, 2);
});

test('a 401 with a cached token proves the key again, once', async (t) => {
  const valid = new Set<string>();
  const issued = { n: 0 };
  const { url } = await serve(t, authServer(valid, issued));
  const tokens = new Map();
  const api = new ApiClient({ baseUrl: url, user: 'alice', agent: fakeAgent(['good']), tokens });
  t.teardown(() => api.close());
  await api.get('/nodes');
  valid.clear(); // the server restarted and forgot its tokens
  t.deepEqual(await api.get('/nodes'), [{ name: 'n0' }]);
  t.is(issued.n, 2);
});

test('no accepted key: one line naming the user and the server, and what to do', async (t) => {
  const { url } = await serve(t, authServer(new Set(), { n: 0 }));
  const api = new ApiClient({ baseUrl: url, user: 'alice', agent: fakeAgent(['stranger']), tokens: new Map() });
  t.teardown(() => api.close());
  await t.throwsAsync(api.get('/nodes'), {
    message: `authentication as "alice" failed: the head node at ${url} did not accept the ssh-agent key (key not registered for admin); add your key with cw-containerctl add-admin`,
  });
});

test('the refusal names the setting and file to edit when the client knows them', async (t) => {
  const { url } = await serve(t, authServer(new Set(), { n: 0 }));
  const api = new ApiClient({
    baseUrl: url,
    user: 'root',
    userSetting: 'client.authuser in /root/.cw/settings.ini',
    agent: fakeAgent(['stranger']),
    tokens: new Map(),
  });
  t.teardown(() => api.close());
  await t.throwsAsync(api.get('/nodes'), {
    message: /^authentication as "root" failed: .*; add your key with cw-containerctl add-admin, or set client\.authuser in \/root\/\.cw\/settings\.ini to the admin name your key was added under$/,
  });
});

test('the server\'s error text becomes the error; non-API answers and unreachable hosts are explained', async (t) => {
  const valid = new Set<string>();
  const { url } = await serve(t, (req, body) => {
    if (req.url === '/api/v1/html') return { status: 502, text: '<html>bad gateway</html>' };
    return authServer(valid, { n: 0 })(req, body);
  });
  const api = new ApiClient({ baseUrl: url, user: 'alice', agent: fakeAgent(['good']), tokens: new Map() });
  t.teardown(() => api.close());
  await t.throwsAsync(api.get('/bad'), { message: 'invalid field "x": contains ";"' });
  await t.throwsAsync(api.get('/html'), { message: `the head node at ${url} answered HTTP 502 that is not a CW API response (is base_url right?)` });

  const closed = new ApiClient({ baseUrl: 'http://127.0.0.1:1/api/v1', user: 'alice', agent: fakeAgent(['good']), tokens: new Map() });
  t.teardown(() => closed.close());
  await t.throwsAsync(closed.get('/nodes'), { message: /^cannot reach the head node at http:\/\/127\.0\.0\.1:1\/api\/v1: .*ECONNREFUSED/ });
});

test('the first challenge is asked for while the agent lists its keys; an agent failure is the error reported', async (t) => {
  const valid = new Set<string>();
  const { url, seen } = await serve(t, authServer(valid, { n: 0 }));
  const good = fakeAgent(['good']);
  let challengesBeforeKeys = -1;
  const slowAgent: KeyAgent = {
    requireIdentities: async () => {
      // Long enough for the challenge to reach the server meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 200));
      challengesBeforeKeys = seen.filter((s) => s.startsWith('POST /api/v1/auth/challenge')).length;
      return good.requireIdentities();
    },
    sign: (key, data) => good.sign(key, data),
  };
  const api = new ApiClient({ baseUrl: url, user: 'alice', agent: slowAgent, tokens: new Map() });
  t.teardown(() => api.close());
  t.deepEqual(await api.get('/nodes'), [{ name: 'n0' }]);
  t.is(challengesBeforeKeys, 1);

  const empty: KeyAgent = {
    requireIdentities: async () => {
      throw new Error('the ssh-agent has no keys; add one with ssh-add');
    },
    sign: async () => Buffer.alloc(0),
  };
  const refused = new ApiClient({ baseUrl: 'http://127.0.0.1:1/api/v1', user: 'alice', agent: empty, tokens: new Map() });
  t.teardown(() => refused.close());
  await t.throwsAsync(refused.get('/nodes'), { message: 'the ssh-agent has no keys; add one with ssh-add' });
});

test('without SSH_AUTH_SOCK the error says how to start an agent; anonymous routes still work', async (t) => {
  const { url } = await serve(t, () => ok({ version: '1' }));
  const api = new ApiClient({ baseUrl: url, user: 'alice', env: {}, tokens: new Map() });
  t.teardown(() => api.close());
  await t.throwsAsync(api.get('/nodes'), { message: NO_AGENT_MESSAGE });
  t.deepEqual(await api.get('/version', { auth: false }), { version: '1' });
});

test('sslverify=false warns once for https; quiet does not', async (t) => {
  const warnings: string[] = [];
  const api = new ApiClient({ baseUrl: 'https://127.0.0.1:1/api/v1', user: 'a', sslVerify: 'false', warn: (l) => warnings.push(l), env: {} });
  const quiet = new ApiClient({ baseUrl: 'https://127.0.0.1:1/api/v1', user: 'a', sslVerify: 'quiet', warn: (l) => warnings.push(l), env: {} });
  t.teardown(() => Promise.all([api.close(), quiet.close()]).then(() => {}));
  await t.throwsAsync(api.get('/version', { auth: false }));
  await t.throwsAsync(api.get('/version', { auth: false }));
  await t.throwsAsync(quiet.get('/version', { auth: false }));
  t.deepEqual(warnings, ['WARNING: not verifying the TLS certificate of https://127.0.0.1:1 (client.sslverify = false; "quiet" hides this)']);
});

test('upload streams the source as the body and reports the bytes sent up to the size', async (t) => {
  const valid = new Set<string>();
  const bytes = Buffer.alloc(300_000, 7);
  const { url } = await serve(t, (req, body) => {
    if (req.method === 'PUT' && req.url === '/api/v1/image/u/content' && valid.has((req.headers.authorization ?? '').slice(7))) {
      return ok({ received: Buffer.byteLength(body), checksum: req.headers['x-checksum'] });
    }
    return authServer(valid, { n: 0 })(req, body);
  });
  const api = new ApiClient({ baseUrl: url, user: 'alice', agent: fakeAgent(['good']), tokens: new Map() });
  t.teardown(() => api.close());
  const progress: Array<[number, number]> = [];
  const answer = await api.upload(
    '/image/u/content',
    { size: bytes.length, open: () => Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]), onProgress: (sent, size) => progress.push([sent, size]) },
    undefined,
    { 'x-checksum': 'sha256:x' },
  );
  t.deepEqual(answer, { received: bytes.length, checksum: 'sha256:x' });
  t.true(progress.length >= 2);
  t.deepEqual(progress.at(-1), [bytes.length, bytes.length]);
  t.true(progress.every(([sent], i) => i === 0 || sent > progress[i - 1]![0]));
});

/** A plain file server beside the API: `/images/u.img` (with content-length), anything else 404. */
async function serveFile(t: { teardown(fn: () => Promise<void> | void): void }, content: Buffer): Promise<{ base: string; auth: string[] }> {
  const auth: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    auth.push(req.headers.authorization ?? '-');
    if (req.url !== '/images/u.img') {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(content.length) });
    res.end(content);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, auth };
}

function collect(): { sink: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      chunks.push(chunk);
      done();
    },
  });
  return { sink, bytes: () => Buffer.concat(chunks) };
}

test('download streams a file the head node serves into the sink, reporting bytes and the announced size, without a token', async (t) => {
  const content = Buffer.alloc(1_000_000, 3);
  const { base, auth } = await serveFile(t, content);
  const api = new ApiClient({ baseUrl: `${base}/api/v1`, user: 'alice', agent: fakeAgent(['good']), tokens: new Map() });
  t.teardown(() => api.close());
  const progress: Array<[number, number | undefined]> = [];
  const { sink, bytes } = collect();
  t.is(await api.download(`${base}/images/u.img`, () => sink, { onProgress: (n, total) => progress.push([n, total]) }), content.length);
  t.true(bytes().equals(content));
  t.deepEqual(progress.at(-1), [content.length, content.length]);
  t.true(progress.every(([, total]) => total === content.length));
  t.deepEqual(auth, ['-']);
});

test('download refuses other origins and explains HTTP errors and unreachable hosts in one line', async (t) => {
  const { base } = await serveFile(t, Buffer.from('x'));
  const api = new ApiClient({ baseUrl: `${base}/api/v1`, user: 'alice', env: {}, tokens: new Map() });
  t.teardown(() => api.close());
  await t.throwsAsync(api.download(`${base}/images/gone.img`, () => collect().sink), { message: `cannot download ${base}/images/gone.img: HTTP 404` });
  await t.throwsAsync(api.download('http://example.invalid/images/u.img', () => collect().sink), {
    message: `cannot download http://example.invalid/images/u.img: not on the head node at ${base}/api/v1`,
  });
  const closed = new ApiClient({ baseUrl: 'http://127.0.0.1:1/api/v1', user: 'alice', env: {}, tokens: new Map() });
  t.teardown(() => closed.close());
  await t.throwsAsync(closed.download('http://127.0.0.1:1/images/u.img', () => collect().sink), { message: /^cannot download http:\/\/127\.0\.0\.1:1\/images\/u\.img: .*ECONNREFUSED/ });
});
