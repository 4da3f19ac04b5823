// The tools' side of HTTPS against a real TLS server: a pinned certificate is accepted and any other refused
// before a byte is sent; a CA file verifies chain and name; credentials never leave over plain HTTP.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, type KeyAgent } from '../../../src/tools/common/client/api-client.js';
import { identityFromBlob } from '../../../src/tools/common/client/ssh-agent.js';
import { wireString } from '../../../src/lib/ssh-wire.js';
import { parseSslVerify } from '../../../src/tools/common/client/settings.js';
import { makeCertificate, type TestCertificate } from '../../helpers/tls.js';
import { requireTools } from '../../helpers/tools.js';

const opensslTest = requireTools('openssl');

const agent: KeyAgent = {
  requireIdentities: async () => [identityFromBlob(Buffer.concat([wireString('ssh-ed25519'), wireString(Buffer.alloc(32, 1))]), 'k')],
  sign: async () => Buffer.from('sig'),
};

/** An HTTPS API answering every request with a token or an empty listing; `seen` lists what reached it. */
async function httpsApi(t: { teardown(fn: () => unknown): void }, cert: TestCertificate): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const data = req.url?.endsWith('/auth/challenge') ? { nonce: 'N'.repeat(43) } : req.url?.endsWith('/auth/token') ? { token: 'tok', expiresAt: new Date(Date.now() + 3_600_000).toISOString() } : [];
      res.end(JSON.stringify({ success: true, data }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`, seen };
}

function certs(t: { teardown(fn: () => unknown): void }): { head: TestCertificate; other: TestCertificate; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cw-tls-client-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { head: makeCertificate(dir, 'head'), other: makeCertificate(dir, 'other'), dir };
}

const client = (baseUrl: string, sslVerify: ConstructorParameters<typeof ApiClient>[0]['sslVerify']) =>
  new ApiClient({ baseUrl, user: 'alice', agent, tokens: new Map(), sslVerify, env: {}, timeoutMs: 10_000 });

opensslTest('the pinned certificate is accepted: login and request go through', async (t) => {
  const { head } = certs(t);
  const { url, seen } = await httpsApi(t, head);
  const api = client(url, head.pin);
  t.teardown(() => api.close());
  t.deepEqual(await api.get('/nodes'), []);
  t.deepEqual(seen, ['POST /api/v1/auth/challenge -', 'POST /api/v1/auth/token -', 'GET /api/v1/nodes Bearer tok']);
});

opensslTest('another certificate than the pinned one is refused before anything is sent, with what to do', async (t) => {
  const { head, other } = certs(t);
  const { url, seen } = await httpsApi(t, other);
  const api = client(url, head.pin);
  t.teardown(() => api.close());
  const err = await t.throwsAsync(api.get('/nodes'));
  t.true(err?.message.includes(`presented certificate ${other.pin}, not ${head.pin} that client.sslverify pins; nothing was sent`), err?.message);
  t.regex(err?.message ?? '', /cw-containerctl tool-config/);
  t.deepEqual(seen, [], 'not even the anonymous challenge');
  // Anonymous requests are refused alike, and so are streams.
  await t.throwsAsync(api.get('/version', { auth: false }), { message: /not .* that client\.sslverify pins/ });
  await t.throwsAsync(
    async () => {
      for await (const _ of api.stream('POST', '/nodes/power', { body: { ids: 'n0', action: 'status' } })) void _;
    },
    { message: /not .* that client\.sslverify pins/ },
  );
  t.deepEqual(seen, []);
});

opensslTest('a stream goes through the pinned certificate like any request', async (t) => {
  const { head } = certs(t);
  const { url, seen } = await httpsApi(t, head);
  const api = client(url, head.pin);
  t.teardown(() => api.close());
  const lines: unknown[] = [];
  for await (const line of api.stream('POST', '/nodes/power', { body: { ids: 'n0', action: 'status' } })) lines.push(line);
  t.deepEqual(lines, []);
  t.deepEqual(seen, ['POST /api/v1/auth/challenge -', 'POST /api/v1/auth/token -', 'POST /api/v1/nodes/power Bearer tok']);
});

opensslTest('a CA file verifies the chain and the name; the system CAs refuse a self-signed head node with a hint', async (t) => {
  const { head, other } = certs(t);
  const { url } = await httpsApi(t, head);
  const viaFile = client(url, head.certFile as `/${string}`);
  t.teardown(() => viaFile.close());
  t.deepEqual(await viaFile.get('/nodes'), []);
  const wrongFile = client(url, other.certFile as `/${string}`);
  t.teardown(() => wrongFile.close());
  await t.throwsAsync(wrongFile.get('/nodes'), { message: /certificate|self.signed/i });
  const system = client(url, 'true');
  t.teardown(() => system.close());
  await t.throwsAsync(system.get('/nodes'), { message: /not trusted: set client\.sslverify .* to its fingerprint/ });
  const missing = client(url, '/nonexistent/ca.pem');
  await t.throwsAsync(missing.get('/nodes'), { message: 'client.sslverify: cannot read the CA file /nonexistent/ca.pem: ENOENT' });
});

test('credentials never go to another machine over plain HTTP; loopback may', async (t) => {
  const api = client('http://10.255.255.1/api/v1', 'true');
  const err = await t.throwsAsync(api.get('/nodes'));
  t.regex(err?.message ?? '', /^client\.base_url http:\/\/10\.255\.255\.1\/api\/v1 is plain HTTP: admin credentials go to another machine only over HTTPS/);
  t.regex(err?.message ?? '', /https:\/\/10\.255\.255\.1\/api\/v1/);
  // Loopback: refused only by the network here (nothing listens on port 1), not by the rule.
  const local = client('http://127.0.0.1:1/api/v1', 'true');
  await t.throwsAsync(local.get('/nodes'), { message: /cannot reach the head node/ });
});

test('client.sslverify values: keywords, pins, CA paths; anything else says what is accepted', (t) => {
  t.is(parseSslVerify('QUIET'), 'quiet');
  t.is(parseSslVerify(`sha256:${'0a'.repeat(32)}`), `sha256:${'0A:'.repeat(31)}0A`);
  t.is(parseSslVerify('~/head.crt', '/home/a'), '/home/a/head.crt');
  t.is(parseSslVerify('/etc/cw/head.crt'), '/etc/cw/head.crt');
  t.deepEqual(parseSslVerify('sha256:abc'), { problem: 'client.sslverify "sha256:abc" is not a SHA-256 certificate fingerprint (sha256: and 32 hex pairs, as cw-containerctl tool-config prints it)' });
  t.regex((parseSslVerify('head.crt') as { problem: string }).problem, /absolute path of a CA certificate file/);
});
