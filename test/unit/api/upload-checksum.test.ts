// BOOT.md "Image metadata": the server recomputes the checksum of an upload and refuses a mismatch
// against the client's X-Checksum header, storing nothing.
import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { session } from './helpers.js';

const octet = { 'content-type': 'application/octet-stream' };
const sum = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('a matching X-Checksum is accepted and recorded', async (t) => {
  const s = await session(t);
  await s.call('POST', '/images', { name: 'img' });
  const content = Buffer.alloc(8192, 3);
  const res = await s.call('PUT', '/image/img/content', content, { ...octet, 'x-checksum': sum(content).toUpperCase().replace('SHA256', 'sha256') });
  t.is(res.status, 200, JSON.stringify(res.body));
  t.is(res.body.data.checksum, sum(content));
  t.is(res.body.data.size, 8192);
});

test('a mismatching X-Checksum is refused and nothing is stored', async (t) => {
  const s = await session(t);
  const img = (await s.call('POST', '/images', { name: 'img' })).body.data;
  const content = Buffer.alloc(8192, 3);
  const wrong = sum(Buffer.from('other'));
  const res = await s.call('PUT', '/image/img/content', content, { ...octet, 'x-checksum': wrong });
  t.is(res.status, 400);
  t.regex(res.body.error, new RegExp(`checksum mismatch: received 8192 bytes with ${sum(content)} but X-Checksum says ${wrong}`));
  const after = (await s.call('GET', '/image/img')).body.data;
  t.is(after.checksum, null);
  t.is(after.size, 0);
  const dir = s.store.paths.imagesDir;
  t.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [], `no ${img.uid}.img nor temporary file`);
});

test('a malformed X-Checksum is a 400 naming the form', async (t) => {
  const s = await session(t);
  await s.call('POST', '/images', { name: 'img' });
  const res = await s.call('PUT', '/image/img/content', Buffer.alloc(10), { ...octet, 'x-checksum': 'md5:abc' });
  t.is(res.status, 400);
  t.is(res.body.error, 'X-Checksum must be sha256:<64 hex digits>');
});
