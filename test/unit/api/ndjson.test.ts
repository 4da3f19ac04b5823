// Streamed answers of the bulk routes, over a real listening socket: the first node's line arrives while
// a slow node is still pending, the last line sums up, a client that goes away stops nothing.
import test from 'ava';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeadlineError } from '../../../src/appliance/power/command.js';
import type { PowerPlugin } from '../../../src/appliance/power/types.js';
import type { PowerTarget } from '../../../src/appliance/power/uri.js';
import type { ExecRunner } from '../../../src/appliance/exec/run.js';
import { session, type Session } from './helpers.js';

/** An IPMI plugin that answers `on` at once, except for BMC 10.1.15.99, which never answers (no datagram leaves). */
const slowIpmi = (target: PowerTarget): PowerPlugin => {
  const answer = async (signal: AbortSignal) => {
    if (target.scheme === 'ipmi' && target.bmc === '10.1.15.99') {
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new DeadlineError()), { once: true }));
    }
  };
  return {
    status: async (signal) => {
      await answer(signal);
      return 'on';
    },
    act: (_action, signal) => answer(signal),
  };
};

async function listen(s: Session): Promise<number> {
  await s.api.listen({ host: '127.0.0.1', port: 0 });
  return (s.api.server.address() as AddressInfo).port;
}

/** Sends a JSON POST and gives the response as it starts (its body is read by the caller). */
function post(port: number, path: string, body: unknown, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: `/api/v1${path}`, method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, resolve);
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Every non-blank line of the body with the ms since `started` it arrived at. */
async function timedLines(res: IncomingMessage, started: number): Promise<Array<{ at: number; value: any }>> {
  const out: Array<{ at: number; value: any }> = [];
  let rest = '';
  for await (const chunk of res) {
    rest += String(chunk);
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line.trim() !== '') out.push({ at: Date.now() - started, value: JSON.parse(line) });
    }
  }
  return out;
}

test('POST /nodes/power with Accept: application/x-ndjson streams each node as it answers, then a summary line', async (t) => {
  const log: string[] = [];
  const s = await session(t, { power: { pluginFor: slowIpmi }, log: (l) => log.push(l) });
  await s.call('POST', '/nodes', [
    { index: 0, power_uri: 'ipmi:///admin:pw@10.1.15.99' },
    { index: 1, power_uri: 'ipmi:///admin:pw@10.1.15.1' },
    { index: 2, power_uri: 'ipmi:///admin:pw@10.1.15.2' },
  ]);
  const port = await listen(s);
  const started = Date.now();
  const res = await post(port, '/nodes/power', { ids: 'n[0-2]', action: 'status', timeout: 1 }, { ...s.auth, accept: 'application/x-ndjson' });
  t.is(res.statusCode, 200);
  t.regex(String(res.headers['content-type']), /^application\/x-ndjson/);
  t.is(res.headers['x-accel-buffering'], 'no');
  const lines = await timedLines(res, started);
  t.deepEqual(
    lines.map((l) => l.value),
    [
      { name: 'n1', ok: true, state: 'on', result: 'on' },
      { name: 'n2', ok: true, state: 'on', result: 'on' },
      { name: 'n0', ok: false, error: 'BMC 10.1.15.99 did not answer within 1 s' },
      { done: true, count: 3, failed: ['n0'] },
    ],
  );
  // n1 arrived long before n0's deadline: it was sent as it came, not with the rest.
  t.true((lines[0]?.at ?? Infinity) < 500, `first line after ${lines[0]?.at} ms`);
  t.true((lines[2]?.at ?? 0) >= 950, `slow line after ${lines[2]?.at} ms`);
  t.true(log.includes('power status n[0-2] by tester: 2 ok, 1 failed (n0)'));

  // Without the Accept header: the envelope, in node order, as before.
  const plain = await s.call('POST', '/nodes/power', { ids: 'n[1-2]', action: 'status' });
  t.deepEqual(plain.body, { success: true, data: [{ name: 'n1', ok: true, state: 'on', result: 'on' }, { name: 'n2', ok: true, state: 'on', result: 'on' }] });
  // Refusals before the run are still envelopes with their status.
  const missing = await s.call('POST', '/nodes/power', { ids: 'n9', action: 'status' }, { accept: 'application/x-ndjson' });
  t.is(missing.status, 404);
  t.is(missing.body.success, false);
});

test('a stream whose client goes away frees it; the nodes are still worked on and logged', async (t) => {
  const log: string[] = [];
  const s = await session(t, { power: { pluginFor: slowIpmi }, log: (l) => log.push(l) });
  await s.call('POST', '/nodes', [
    { index: 0, power_uri: 'ipmi:///admin:pw@10.1.15.1' },
    { index: 1, power_uri: 'ipmi:///admin:pw@10.1.15.99' },
  ]);
  const port = await listen(s);
  const res = await post(port, '/nodes/power', { ids: 'n[0-1]', action: 'off', timeout: 0.5 }, { ...s.auth, accept: 'application/x-ndjson' });
  const first = await new Promise<string>((resolve) => res.on('data', (c) => String(c).trim() !== '' && resolve(String(c))));
  t.regex(first, /"name":"n0"/);
  res.destroy();
  await new Promise((r) => setTimeout(r, 800));
  t.true(log.includes('power off n[0-1] by tester: 1 ok, 1 failed (n1)'), log.join('\n'));
  // The server is still fine.
  t.is((await s.call('GET', '/nodes')).status, 200);
});

test('POST /nodes/exec and /nodes/reboot stream too; the OpenAPI document describes the streams', async (t) => {
  const fakeSsh: ExecRunner = async (_file, args) => {
    const host = args.find((a) => a.startsWith('10.9.0.')) ?? '';
    if (host.endsWith('.2')) await new Promise((r) => setTimeout(r, 400));
    return { exitCode: host.endsWith('.3') ? 3 : 0, stdout: `${host}\n`, stderr: '', canceled: false, notFound: false };
  };
  const s = await session(t, { exec: { run: fakeSsh } });
  await s.call('POST', '/nodes', [1, 2, 3].map((i) => ({ index: i, ip: `10.9.0.${i}` })));
  const port = await listen(s);
  const started = Date.now();
  const res = await post(port, '/nodes/exec', { ids: 'n[1-3]', command: ['hostname'] }, { ...s.auth, accept: 'application/json, application/x-ndjson' });
  const lines = await timedLines(res, started);
  t.deepEqual(
    lines.map((l) => l.value.name ?? 'summary'),
    ['n1', 'n3', 'n2', 'summary'],
  );
  t.true((lines[0]?.at ?? Infinity) < 300, `${lines[0]?.at} ms`);
  t.deepEqual(lines.at(-1)?.value, { done: true, count: 3, failed: ['n3'] });
  t.is(lines[1]?.value.error, 'exit status 3');

  const reboot = await post(port, '/nodes/reboot', { ids: 'n1', mode: 'soft' }, { ...s.auth, accept: 'application/x-ndjson' });
  const rebootLines = (await timedLines(reboot, Date.now())).map((l) => l.value);
  t.deepEqual(rebootLines, [{ name: 'n1', ok: true, result: 'soft' }, { done: true, count: 1, failed: [] }]);

  const doc = (await s.api.inject('/api/v1/openapi.json')).json();
  for (const path of ['/nodes/power', '/nodes/exec', '/nodes/reboot', '/nodes/shutdown']) {
    const content = doc.paths[path].post.responses['200'].content;
    t.truthy(content['application/json'], path);
    t.is(content['application/x-ndjson'].schema.oneOf.length, 2, path);
  }
  t.truthy(doc.paths['/nodes/power'].post.requestBody.content['application/json'].schema.properties.stagger);
});

test('POST /nodes/power with stagger starts at most N nodes every S seconds', async (t) => {
  const s = await session(t, { power: { pluginFor: slowIpmi } });
  await s.call('POST', '/nodes', [1, 2, 3].map((i) => ({ index: i, power_uri: `ipmi:///admin:pw@10.1.15.${i}` })));
  const port = await listen(s);
  const started = Date.now();
  const res = await post(port, '/nodes/power', { ids: 'n[1-3]', action: 'on', stagger: { nodes: 2, seconds: 0.4 } }, { ...s.auth, accept: 'application/x-ndjson' });
  const lines = await timedLines(res, started);
  t.deepEqual(lines.map((l) => l.value.name ?? 'summary'), ['n1', 'n2', 'n3', 'summary']);
  t.true((lines[1]?.at ?? Infinity) < 300, `${lines[1]?.at} ms`);
  t.true((lines[2]?.at ?? 0) >= 390, `${lines[2]?.at} ms`);
  t.is((await s.call('POST', '/nodes/power', { ids: 'n1', action: 'on', stagger: { nodes: 0, seconds: 1 } })).status, 400);
});

test('startNdjson sends a blank line at once and after each silence, then the lines and the summary', async (t) => {
  const { default: Fastify } = await import('fastify');
  const { startNdjson, wantsNdjson } = await import('../../../src/appliance/api/ndjson.js');
  const app = Fastify();
  t.teardown(() => app.close());
  app.get('/s', async (request, reply) => {
    t.true(wantsNdjson(request));
    const sink = startNdjson(reply, 60);
    await new Promise((r) => setTimeout(r, 250));
    sink.line({ name: 'n0', ok: true });
    sink.end({ done: true, count: 1, failed: [] });
    sink.line({ name: 'late', ok: true }); // after the end: dropped
    return reply;
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const res = await fetch(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/s`, { headers: { accept: 'text/plain;q=0.5, application/x-ndjson' } });
  const text = await res.text();
  const lines = text.split('\n');
  t.is(lines[0], '', 'a keep-alive first');
  t.true(lines.filter((l) => l === '').length >= 3, JSON.stringify(text));
  t.deepEqual(lines.filter((l) => l !== '').map((l) => JSON.parse(l)), [{ name: 'n0', ok: true }, { done: true, count: 1, failed: [] }]);
});
