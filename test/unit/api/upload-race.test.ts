// Two uploads of one object at once: whichever finishes last wins both the file on disk and the
// checksum in the store, so the two never disagree.
import test from 'ava';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { imageFilePath } from '../../../src/appliance/api/routes/uploads.js';
import { session } from './helpers.js';

const octet = { 'content-type': 'application/octet-stream' };
const sum = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('two concurrent PUTs of one image leave the stored file matching the recorded checksum', async (t) => {
  const s = await session(t);
  const img = (await s.call('POST', '/images', { name: 'img' })).body.data as { uid: string };
  // The first record to be written returns late, as a slow store would: without serializing record
  // and rename per image, the other upload records and renames in between, and this one's rename
  // then puts its file under the other's checksum.
  const setImageContent = s.store.setImageContent.bind(s.store);
  let calls = 0;
  s.store.setImageContent = async (id, content) => {
    const recorded = await setImageContent(id, content);
    if (calls++ === 0) await sleep(100);
    return recorded;
  };
  const a = Buffer.alloc(64 * 1024, 0xaa);
  const b = Buffer.alloc(48 * 1024, 0xbb);
  const [ra, rb] = await Promise.all([s.call('PUT', '/image/img/content', a, octet), s.call('PUT', '/image/img/content', b, octet)]);
  t.is(ra.status, 200, JSON.stringify(ra.body));
  t.is(rb.status, 200, JSON.stringify(rb.body));
  t.is(calls, 2);

  const record = (await s.call('GET', '/image/img')).body.data as { checksum: string; size: number };
  const onDisk = readFileSync(imageFilePath(s.store.paths, img.uid));
  t.is(sum(onDisk), record.checksum, 'the file on disk is the one the store describes');
  t.is(onDisk.length, record.size);
  t.true([sum(a), sum(b)].includes(record.checksum));
  t.deepEqual(readdirSync(s.store.paths.imagesDir), [`${img.uid}.img`], 'no temporary file is left');
});
