// Boot files and images by content among heads: each head's blobs on disk, copies pulled from a peer
// over HTTP with size and sha256 checked before a blob appears, the object's files linked to it, and
// the redirect route that sends a node to a head that holds what this one lacks. Peers here are real
// HTTP servers serving a directory as nginx's /blobs/here/ does (the appliance's own nginx is checked
// in the multi-head integration suite).
import test from 'ava';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdir, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { LocalBlobs } from '../../../src/appliance/blobs/local.js';
import { BlobReplicator, HERE_PATH } from '../../../src/appliance/blobs/replicator.js';
import { apiWithTempStore, healthyReport, tempStore } from '../api/helpers.js';

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** An HTTP server answering `/blobs/here/<hex>` from `dir` (404 otherwise); `tamper` changes what it sends. */
async function peer(dir: string, tamper?: (data: Buffer) => Buffer): Promise<{ url: string; server: Server; asked: string[] }> {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    asked.push(`${req.method} ${req.url}`);
    const m = new RegExp(`^${HERE_PATH}/([0-9a-f]{64})$`).exec(req.url ?? '');
    const file = m ? path.join(dir, m[1] as string) : '';
    if (!m || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    if (tamper) {
      void readFile(file).then((data) => res.writeHead(200, { 'content-length': data.length }).end(tamper(data)));
      return;
    }
    res.writeHead(200, { 'content-length': statSync(file).size });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, asked };
}

/** A store with one image whose content is `content` (the file itself nowhere yet). */
async function storeWithImage(t: { teardown: (fn: () => Promise<void>) => void }, content: Buffer) {
  const store = tempStore();
  t.teardown(() => store.close());
  const image = await store.create('images', { name: 'Rocky' });
  await store.setImageContent(image.uid, { size: content.length, checksum: `sha256:${sha256(content)}` });
  return { store, image, file: path.join(store.paths.imagesDir, `${image.uid}.img`) };
}

test('a head that lacks an image copies it from a peer that holds it (one down, one without it), verifies it and links it under the image file', async (t) => {
  const content = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  const { store, file } = await storeWithImage(t, content);
  const other = tempStore();
  t.teardown(() => other.close());
  await mkdir(other.paths.blobsDir, { recursive: true });
  await writeFile(path.join(other.paths.blobsDir, sha256(content)), content);
  const lacking = await peer(path.join(other.paths.root, 'empty'));
  const holding = await peer(other.paths.blobsDir);
  t.teardown(() => {
    lacking.server.close();
    holding.server.close();
  });
  const lines: string[] = [];
  const replicator = new BlobReplicator({ store, dirs: store.paths, peers: async () => ['http://127.0.0.1:1', lacking.url, holding.url], log: (l) => lines.push(l) });
  const result = await replicator.reconcile();
  t.deepEqual(result, { pulled: [sha256(content)], missing: [], removed: [] });
  t.deepEqual(await readFile(file), content);
  t.is(statSync(file).ino, statSync(path.join(store.paths.blobsDir, sha256(content))).ino, 'one inode: no second copy');
  t.regex(lines.join('\n'), /copying image Rocky \(3\.0 MiB, sha256 [0-9a-f]{12}…\) from http:\/\/127\.0\.0\.1:\d+/);
  t.regex(lines.join('\n'), /image Rocky copied from http:\/\/127\.0\.0\.1:\d+ and verified/);
  // Nothing left over, and a second look copies nothing.
  t.deepEqual((await readdir(store.paths.blobsDir)).sort(), [sha256(content)]);
  t.deepEqual((await replicator.reconcile()).pulled, []);
  t.true(await replicator.reconcile().then(() => true));
  await replicator.stop();
});

test('wrong bytes from a peer are never kept: the blob stays missing and the next peer is asked', async (t) => {
  const content = Buffer.from('the real image\n');
  const { store, file } = await storeWithImage(t, content);
  const other = tempStore();
  t.teardown(() => other.close());
  await mkdir(other.paths.blobsDir, { recursive: true });
  await writeFile(path.join(other.paths.blobsDir, sha256(content)), content);
  const liar = await peer(other.paths.blobsDir, (data) => Buffer.from(data.toString().replace('real', 'fake')));
  t.teardown(() => void liar.server.close());
  const lines: string[] = [];
  const replicator = new BlobReplicator({ store, dirs: store.paths, peers: async () => [liar.url], log: (l) => lines.push(l) });
  t.deepEqual(await replicator.reconcile(), { pulled: [], missing: [sha256(content)], removed: [] });
  t.false(existsSync(file));
  t.deepEqual(await readdir(store.paths.blobsDir).catch(() => []), [], 'no blob and no temporary file');
  t.regex(lines.join('\n'), /image Rocky from http:\/\/127\.0\.0\.1:\d+: sent bytes with sha256 [0-9a-f]{64}, not [0-9a-f]{64}: not kept/);

  const honest = await peer(other.paths.blobsDir);
  t.teardown(() => void honest.server.close());
  const second = new BlobReplicator({ store, dirs: store.paths, peers: async () => [liar.url, honest.url], log: () => {} });
  t.deepEqual((await second.reconcile()).pulled, [sha256(content)]);
  t.deepEqual(await readFile(file), content);
});

test('files from before blobs are adopted when their content matches; a re-upload elsewhere replaces the file in one rename', async (t) => {
  const old = Buffer.from('kernel v1');
  const { store, image, file } = await storeWithImage(t, old);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, old);
  const replicator = new BlobReplicator({ store, dirs: store.paths, peers: async () => [], log: () => {} });
  t.deepEqual(await replicator.reconcile(), { pulled: [], missing: [], removed: [] });
  t.true(existsSync(path.join(store.paths.blobsDir, sha256(old))));
  // Another head took a new upload: the store names new bytes, a peer has them.
  const fresh = Buffer.from('kernel v2, longer');
  await store.setImageContent(image.uid, { size: fresh.length, checksum: `sha256:${sha256(fresh)}` });
  const other = tempStore();
  t.teardown(() => other.close());
  await mkdir(other.paths.blobsDir, { recursive: true });
  await writeFile(path.join(other.paths.blobsDir, sha256(fresh)), fresh);
  const holding = await peer(other.paths.blobsDir);
  t.teardown(() => void holding.server.close());
  const withPeer = new BlobReplicator({ store, dirs: store.paths, peers: async () => [holding.url], log: () => {}, graceMs: 0 });
  const result = await withPeer.reconcile();
  t.deepEqual(result.pulled, [sha256(fresh)]);
  t.deepEqual(result.removed, [sha256(old)], 'the old bytes go once nothing names them');
  t.deepEqual(await readFile(file), fresh);
});

test('a file whose content does not match is not adopted, and is hashed once per version', async (t) => {
  const { store, file } = await storeWithImage(t, Buffer.from('abcd'));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, 'abce');
  const blobs = new LocalBlobs(store.paths.blobsDir);
  t.false(await blobs.adopt(sha256('abcd'), 4, [file]));
  t.false(await blobs.adopt(sha256('abcd'), 4, [file]));
  await writeFile(file, 'abcd');
  await utimes(file, new Date(), new Date(Date.now() + 5000));
  t.true(await blobs.adopt(sha256('abcd'), 4, [file]), 'a changed file is looked at again');
});

test('GET /boot/blob/SHA: a blob held elsewhere is redirected there; unknown or held nowhere is a clear 404', async (t) => {
  const content = Buffer.from('initramfs bytes');
  const holders: string[] = [];
  const { api, store } = apiWithTempStore({
    supervisorHealth: async () => healthyReport,
    blobs: {
      hasPeers: () => true,
      holder: async (hex) => {
        holders.push(hex);
        return hex === sha256(content) ? `http://10.0.0.2${HERE_PATH}/${hex}` : null;
      },
    },
  });
  t.teardown(() => api.close());
  const image = await store.create('images', { name: 'Tiny' });
  await store.setImageContent(image.uid, { size: content.length, checksum: `sha256:${sha256(content)}` });
  const ask = (hex: string) => api.inject({ method: 'GET', url: `/api/v1/boot/blob/${hex}` });

  const there = await ask(sha256(content));
  t.is(there.statusCode, 302);
  t.is(there.headers.location, `http://10.0.0.2/blobs/here/${sha256(content)}`);

  const unknown = await ask('0'.repeat(64));
  t.is(unknown.statusCode, 404);
  t.is(unknown.body, `no image or boot file has sha256 ${'0'.repeat(64)}\n`);
  t.deepEqual(holders, [sha256(content)], 'no head is asked for a blob nothing names');

  t.is((await ask('../../etc/passwd')).statusCode, 404);
  t.is((await ask('A'.repeat(64))).statusCode, 404);

  // Held here after all (copied since nginx looked): this head's own copy.
  await new LocalBlobs(store.paths.blobsDir).keep(await writeTemp(store.paths.root, content), sha256(content));
  const here = await ask(sha256(content));
  t.is(here.statusCode, 302);
  t.is(here.headers.location, `/blobs/here/${sha256(content)}`);
});

test('GET /boot/blob/SHA: named but held by no head that answers', async (t) => {
  const { api, store } = apiWithTempStore({ supervisorHealth: async () => healthyReport, blobs: { hasPeers: () => true, holder: async () => null } });
  t.teardown(() => api.close());
  const image = await store.create('images', { name: 'Lost' });
  await store.setImageContent(image.uid, { size: 3, checksum: `sha256:${sha256('abc')}` });
  const res = await api.inject({ method: 'GET', url: `/api/v1/boot/blob/${sha256('abc')}` });
  t.is(res.statusCode, 404);
  t.is(res.body, `image Lost (sha256 ${sha256('abc').slice(0, 12)}…) is on no head node that answers; upload it again\n`);
});

async function writeTemp(dir: string, content: Buffer): Promise<string> {
  const file = path.join(dir, 'upload.tmp');
  await writeFile(file, content);
  return file;
}

test('files of images and boot configs removed through another head go once old enough; nothing else there is touched', async (t) => {
  const content = Buffer.from('kept image');
  const { store, image, file } = await storeWithImage(t, content);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  const goneImage = path.join(store.paths.imagesDir, `${'a'.repeat(32)}.img`);
  const goneBoot = path.join(store.paths.bootDir, 'b'.repeat(32));
  await writeFile(goneImage, 'removed elsewhere');
  await mkdir(goneBoot, { recursive: true });
  await writeFile(path.join(goneBoot, 'kernel'), 'old kernel');
  const others = [path.join(store.paths.bootDir, 'undionly.kpxe'), path.join(store.paths.imagesDir, 'notes.txt')];
  for (const other of others) await writeFile(other, 'mine');
  const lines: string[] = [];
  // Within the grace period nothing goes (an upload on another head may be committing).
  await new BlobReplicator({ store, dirs: store.paths, peers: async () => [], log: (l) => lines.push(l) }).reconcile();
  t.true(existsSync(goneImage));
  const replicator = new BlobReplicator({ store, dirs: store.paths, peers: async () => [], log: (l) => lines.push(l), graceMs: 0 });
  await replicator.reconcile();
  t.false(existsSync(goneImage));
  t.false(existsSync(goneBoot));
  for (const other of others) t.true(existsSync(other), other);
  t.deepEqual(await readFile(file), content, `image ${image.name} is kept`);
  t.true(lines.includes(`blobs: removed images/${'a'.repeat(32)}.img, whose image no longer exists`), lines.join('\n'));
  t.true(lines.includes(`blobs: removed boot/${'b'.repeat(32)}, whose boot config no longer exists`), lines.join('\n'));
});
