import test from 'ava';
import { readFileSync } from 'node:fs';
import { isNotableRequest, SLOW_REQUEST_MS } from '../../../src/appliance/api/app.js';
import { HttpError } from '../../../src/appliance/api/errors.js';
import { SupervisorError, type SupervisorHealth } from '../../../src/appliance/api/supervisor-client.js';
import { BusyError, ConflictError, ValidationError } from '../../../src/appliance/db/errors.js';
import { apiWithTempStore, fatalReport, healthyReport, session } from './helpers.js';

function app(supervisorHealth: SupervisorHealth = async () => healthyReport, log?: (line: string) => void) {
  return apiWithTempStore({ supervisorHealth, log }).api;
}

test('GET /api/v1/health is 200 with every service when healthy, for an admin', async (t) => {
  const s = await session(t);
  const res = await s.api.inject({ method: 'GET', url: '/api/v1/health', headers: s.auth });
  t.is(res.statusCode, 200);
  t.regex(res.headers['content-type'] as string, /^application\/json/);
  t.deepEqual(res.json(), { success: true, data: healthyReport });
});

test('GET /api/v1/health shows an anonymous caller the status alone: no pids, restarts or exit codes', async (t) => {
  const api = app(async () => fatalReport);
  t.teardown(() => api.close());
  const res = await api.inject('/api/v1/health');
  t.is(res.statusCode, 503);
  t.deepEqual(res.json(), { success: true, data: { status: 'unhealthy' } });
  t.notRegex(res.body, /pid|exit|restart|tftpd/);
});

test('GET /api/v1/health with credentials that are not accepted is a 401, not the details', async (t) => {
  const api = app();
  t.teardown(() => api.close());
  const res = await api.inject({ method: 'GET', url: '/api/v1/health', headers: { authorization: 'Bearer nope' } });
  t.is(res.statusCode, 401);
  t.notRegex(res.body, /services/);
});

test('GET /api/v1/health is 503 when an essential service is fatal', async (t) => {
  const s = await session(t, { supervisorHealth: async () => fatalReport });
  const res = await s.api.inject({ method: 'GET', url: '/api/v1/health', headers: s.auth });
  t.is(res.statusCode, 503);
  t.is(res.json().success, true);
  t.is(res.json().data.status, 'unhealthy');
  t.is(res.json().data.services.tftpd.state, 'fatal');
});

test('GET /api/v1/health is 503 while the appliance is starting', async (t) => {
  const api = app(async () => ({ status: 'starting', services: {} }));
  t.teardown(() => api.close());
  const res = await api.inject('/api/v1/health');
  t.is(res.statusCode, 503);
  t.is(res.json().data.status, 'starting');
});

test('GET /api/v1/health is 503 "unknown" when the supervisor cannot be reached', async (t) => {
  const lines: string[] = [];
  const api = app(
    async () => {
      throw new SupervisorError('supervisor not reachable at /run/cw/supervisor.sock: ENOENT');
    },
    (line) => lines.push(line),
  );
  t.teardown(() => api.close());
  const res = await api.inject('/api/v1/health');
  t.is(res.statusCode, 503);
  t.deepEqual(res.json(), { success: true, data: { status: 'unknown' } });
  t.true(lines.some((l) => l.includes('supervisor not reachable')));
});

test('GET /api/v1/version names the product, its version, the API and Node', async (t) => {
  const api = app();
  t.teardown(() => api.close());
  const res = await api.inject('/api/v1/version');
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  t.is(res.statusCode, 200);
  t.deepEqual(res.json(), {
    success: true,
    data: { name: 'cw-headnode', version: pkg.version, api: 'v1', node: process.version },
  });
});

test('an unknown path is a 404 envelope', async (t) => {
  const api = app();
  t.teardown(() => api.close());
  for (const url of ['/api/v1/nope', '/', '/api/v2/version', '/api/v1/health/x']) {
    const res = await api.inject(url);
    t.is(res.statusCode, 404, url);
    t.is(res.json().success, false);
    t.regex(res.json().error, /^no such endpoint: GET \//);
  }
  const post = await api.inject({ method: 'POST', url: '/api/v1/version' });
  t.is(post.statusCode, 404);
  t.is(post.json().error, 'no such endpoint: POST /api/v1/version');
});

test('errors become envelopes with their status; unexpected ones hide their details', async (t) => {
  const lines: string[] = [];
  const api = app(undefined, (line) => lines.push(line));
  t.teardown(() => api.close());
  const anonymous = { config: { anonymous: true } };
  api.get('/t/http', anonymous, async () => {
    throw HttpError.conflict('node n3 is frozen');
  });
  api.get('/t/validation', anonymous, async () => {
    throw new ValidationError('invalid admin name');
  });
  api.get('/t/conflict', anonymous, async () => {
    throw new ConflictError('admin alice already exists');
  });
  api.get('/t/busy', anonymous, async () => {
    throw new BusyError('database is busy');
  });
  api.get('/t/bug', anonymous, async () => {
    throw new TypeError('cannot read properties of undefined (secret internals)');
  });
  api.post('/t/echo', { ...anonymous, schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } }, async (req) => req.body);

  const expect = async (url: string, status: number, error: string | RegExp, method: 'GET' | 'POST' = 'GET', payload?: string) => {
    const res = await api.inject({ method, url, payload, headers: payload ? { 'content-type': 'application/json' } : {} });
    t.is(res.statusCode, status, url);
    t.is(res.json().success, false, url);
    if (typeof error === 'string') t.is(res.json().error, error, url);
    else t.regex(res.json().error, error, url);
  };
  await expect('/t/http', 409, 'node n3 is frozen');
  await expect('/t/validation', 400, 'invalid admin name');
  await expect('/t/conflict', 409, 'admin alice already exists');
  await expect('/t/busy', 503, 'database is busy');
  await expect('/t/bug', 500, 'internal server error');
  await expect('/t/echo', 400, /JSON/, 'POST', '{"name": ');
  await expect('/t/echo', 400, /must have required property 'name'/, 'POST', '{}');
  t.true(lines.some((l) => l.includes('secret internals')), 'the bug is logged for the operator');
});

test('with the access log every request is logged in one line', async (t) => {
  const lines: string[] = [];
  const { api } = apiWithTempStore({ supervisorHealth: async () => healthyReport, log: (line) => lines.push(line), accessLog: true });
  t.teardown(() => api.close());
  await api.inject('/api/v1/version?x=1');
  t.is(lines.length, 1);
  t.regex(lines[0]!, /^GET \/api\/v1\/version\?x=1 200 \d+\.\dms$/);
});

test('without the access log only failures, refused credentials and slow requests are logged', async (t) => {
  const lines: string[] = [];
  const api = app(undefined, (line) => lines.push(line));
  t.teardown(() => api.close());
  await api.inject('/api/v1/version');
  await api.inject('/api/v1/no-such-thing');
  t.deepEqual(lines, [], 'successes and plain 404s stay quiet');
  const refused = await api.inject('/api/v1/nodes');
  t.is(refused.statusCode, 401);
  t.is(lines.length, 1);
  t.regex(lines[0]!, /^GET \/api\/v1\/nodes 401 \d+\.\dms$/);
  t.true(isNotableRequest(500, 3));
  t.true(isNotableRequest(429, 3));
  t.true(isNotableRequest(200, SLOW_REQUEST_MS));
  t.false(isNotableRequest(200, SLOW_REQUEST_MS - 1));
  t.false(isNotableRequest(404, 3));
});
