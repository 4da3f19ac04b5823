// ApiClient.stream() against a real local HTTP server that writes NDJSON lines with pauses: lines are
// yielded as they arrive (the first before the last is written), keep-alives are skipped, a 401 proves the
// key again once, refusals are one-line errors and an endless line is cut off.
import test from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient, type KeyAgent } from '../../../src/tools/common/client/api-client.js';
import { identityFromBlob } from '../../../src/tools/common/client/ssh-agent.js';
import { wireString } from '../../../src/lib/ssh-wire.js';

const agent: KeyAgent = {
  requireIdentities: async () => [identityFromBlob(Buffer.concat([wireString('ssh-ed25519'), wireString(Buffer.alloc(32, 1))]), 'k')],
  sign: async () => Buffer.from('sig'),
};

type StreamHandler = (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>;

/** A server that logs in anyone (tokens tok1, tok2, ...; only those in `valid` pass) and hands other requests to `handler`. */
async function serve(t: { teardown(fn: () => unknown): void }, handler: StreamHandler) {
  const valid = new Set<string>();
  const seen: string[] = [];
  let issued = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'} ${req.headers.accept ?? '-'}`);
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.url === '/api/v1/auth/challenge') return json(200, { success: true, data: { nonce: 'N'.repeat(43) } });
      if (req.url === '/api/v1/auth/token') {
        const token = `tok${++issued}`;
        valid.add(token);
        return json(200, { success: true, data: { token, expiresAt: new Date(Date.now() + 3_600_000).toISOString() } });
      }
      if (!valid.has((req.headers.authorization ?? '').replace(/^Bearer /, ''))) return json(401, { success: false, error: 'invalid or expired token' });
      void handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const api = new ApiClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`, user: 'alice', agent, tokens: new Map(), env: {} });
  t.teardown(() => api.close());
  return { api, valid, seen };
}

const ndjsonHead = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8' });

test('stream() yields each line as it arrives: the first before the server has written the last', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let lastWritten = false;
  const { api, seen } = await serve(t, async (_req, res, body) => {
    t.deepEqual(JSON.parse(body), { ids: 'n[0-1]', action: 'status' });
    ndjsonHead(res);
    res.write('\n'); // keep-alive
    res.write('{"name":"n0","ok":true,"result":"on"}\n{"name"');
    await new Promise((r) => setTimeout(r, 50));
    res.write(':"n2","ok":true}\n\n');
    await gate;
    res.write('{"name":"n1","ok":false,"error":"BMC 10.1.15.1 did not answer within 10 s"}\n');
    lastWritten = true;
    res.end('{"done":true,"count":3,"failed":["n1"]}'); // the last line may lack its newline
  });
  const got: unknown[] = [];
  for await (const line of api.stream('POST', '/nodes/power', { body: { ids: 'n[0-1]', action: 'status' } })) {
    got.push(line);
    if (got.length === 2) {
      t.false(lastWritten, 'the first lines came before the last was written');
      release();
    }
  }
  t.deepEqual(got, [
    { name: 'n0', ok: true, result: 'on' },
    { name: 'n2', ok: true },
    { name: 'n1', ok: false, error: 'BMC 10.1.15.1 did not answer within 10 s' },
    { done: true, count: 3, failed: ['n1'] },
  ]);
  t.true(seen.at(-1)?.endsWith('Bearer tok1 application/x-ndjson'));
});

test('stream(): a 401 proves the key again once; refusals are the server\'s one line; an envelope answer is yielded item by item', async (t) => {
  const { api, valid, seen } = await serve(t, (req, res) => {
    if (req.url === '/api/v1/nodes/power') {
      ndjsonHead(res);
      return void res.end('{"name":"n0","ok":true}\n');
    }
    if (req.url === '/api/v1/old') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ success: true, data: [{ name: 'n0', ok: true }, { name: 'n1', ok: true }] }));
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ success: false, error: 'No nodes found, nothing was done' }));
  });
  const all = async (path: string) => {
    const out: unknown[] = [];
    for await (const line of api.stream('POST', path, { body: {} })) out.push(line);
    return out;
  };
  t.deepEqual(await all('/nodes/power'), [{ name: 'n0', ok: true }]);
  valid.clear(); // the head node restarted
  t.deepEqual(await all('/nodes/power'), [{ name: 'n0', ok: true }]);
  t.deepEqual(
    seen.filter((s) => s.startsWith('POST /api/v1/nodes/power')).map((s) => s.split(' ')[3]),
    ['tok1', 'tok1', 'tok2'],
  );
  t.deepEqual(await all('/old'), [{ name: 'n0', ok: true }, { name: 'n1', ok: true }]);
  await t.throwsAsync(all('/nodes/missing'), { message: 'No nodes found, nothing was done' });
});

test('stream(): a line longer than the bound is refused with a clear error, and the connection dropped', async (t) => {
  let closed = false;
  const { api } = await serve(t, async (_req, res) => {
    ndjsonHead(res);
    res.on('close', () => (closed = true));
    res.write('{"name":"n0","ok":true}\n');
    for (let i = 0; i < 40 && !closed; i++) {
      res.write('x'.repeat(64 * 1024));
      await new Promise((r) => setTimeout(r, 5));
    }
    res.end('\n');
  });
  const got: unknown[] = [];
  await t.throwsAsync(
    async () => {
      for await (const line of api.stream('POST', '/nodes/exec', { body: {}, maxLineBytes: 1024 * 1024 })) got.push(line);
    },
    { message: /sent a line longer than 1048576 bytes; not reading on/ },
  );
  t.deepEqual(got, [{ name: 'n0', ok: true }]);
  await new Promise((r) => setTimeout(r, 100));
  t.true(closed);
});

test('stream(): a line that is not JSON and a connection lost mid-answer are one-line errors', async (t) => {
  const { api } = await serve(t, (req, res) => {
    ndjsonHead(res);
    if (req.url === '/api/v1/garbage') return void res.end('<html>\n');
    res.write('{"name":"n0","ok":true}\n');
    setTimeout(() => res.destroy(), 30);
  });
  const drain = async (path: string) => {
    for await (const _ of api.stream('POST', path)) void _;
  };
  await t.throwsAsync(drain('/garbage'), { message: /sent a line that is not JSON: <html>/ });
  await t.throwsAsync(drain('/cut'), { message: /lost the head node at .* in the middle of its answer/ });
});
