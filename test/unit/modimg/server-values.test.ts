// cw-modimg runs as root and names workspace files after what the head node says: every value from the
// server is checked where it is parsed, and every workspace path must stay inside the workspace. A fake
// head node (an API client stand-in) answers with spoofed values; nothing may be written anywhere.
import test from 'ava';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Workspace, parseRemoteImage } from '../../../src/images/workspace.js';
import { ApiError, type ApiClient } from '../../../src/tools/common/client/api-client.js';
import type { ToolContext } from '../../../src/tools/common/context.js';
import { parseModimgArgs } from '../../../src/tools/modimg/args.js';
import { downloadImage } from '../../../src/tools/modimg/download.js';
import { listImages } from '../../../src/tools/modimg/list.js';
import { createReporter } from '../../../src/tools/modimg/report.js';
import { createSession, type ModimgSession } from '../../../src/tools/modimg/session.js';
import { uploadImage } from '../../../src/tools/modimg/upload.js';

const UID = '0123456789abcdef0123456789abcdef';
const SUM = `sha256:${'ab'.repeat(32)}`;
const good = { uid: UID, name: 'slim', description: '', size: 4096, checksum: SUM, frozen: false };

/** Spoofed values and what the error must say about them. */
const spoofs: Array<[string, Record<string, unknown>, RegExp]> = [
  ['a uid climbing out', { uid: '../../etc/x' }, /an invalid uid "\.\.\/\.\.\/etc\/x"/],
  ['a uid with a slash', { uid: `${UID.slice(0, 16)}/${UID.slice(16)}` }, /an invalid uid/],
  ['a uid with NUL', { uid: `${UID}\0` }, /an invalid uid "0123456789abcdef0123456789abcdef\\u0000"/],
  ['an over-long uid', { uid: 'a'.repeat(100_000) }, /an invalid uid "a{40}"\.\.\.: expected 32 hex digits/],
  ['an absolute uid', { uid: '/etc/shadow' }, /an invalid uid/],
  ['a uid that is not a string', { uid: 42 }, /an invalid uid 42/],
  ['a bad checksum', { checksum: 'sha256:xyz' }, /an invalid checksum "sha256:xyz".*sha256:<64 hex digits>/],
  ['a checksum of another kind', { checksum: `md5:${'a'.repeat(32)}` }, /an invalid checksum/],
  ['a name climbing out', { name: '../../root' }, /an invalid name "\.\.\/\.\.\/root"/],
  ['a negative size', { size: -1 }, /an invalid size -1/],
];

for (const [what, change, message] of spoofs) {
  test(`parseRemoteImage refuses ${what}`, (t) => {
    t.throws(() => parseRemoteImage({ ...good, ...change }, 'GET /image/slim'), { message: new RegExp(`^the head node sent an image with ${message.source}.*\\(GET /image/slim\\)`) });
  });
}

test('parseRemoteImage accepts the API\'s image object and a missing checksum', (t) => {
  t.deepEqual(parseRemoteImage(good, 'x'), { uid: UID, name: 'slim', checksum: SUM, size: 4096 });
  t.deepEqual(parseRemoteImage({ ...good, checksum: null }, 'x'), { uid: UID, name: 'slim', checksum: null, size: 4096 });
  t.throws(() => parseRemoteImage('nonsense', 'GET /images'), { message: /^the head node sent an image that is not an object \(GET \/images\)/ });
});

test('workspace paths stay inside the workspace', (t) => {
  const ws = new Workspace('/srv/ws');
  t.is(ws.inside('roots/slim'), '/srv/ws/roots/slim');
  t.is(ws.inside(`${UID}.img`), `/srv/ws/${UID}.img`);
  for (const rel of ['../x.img', 'roots/../../etc/passwd', '../../etc/x.img', '..', 'a\0b']) {
    t.throws(() => ws.inside(rel), { message: /^refusing the workspace path .* outside the workspace \/srv\/ws|contains NUL/ }, rel);
  }
  t.throws(() => ws.abs('../../etc/x.img'), { message: /outside the workspace/ });
  t.throws(() => ws.fileName('slim', '../../etc/x'), { message: /invalid image uid "\.\.\/\.\.\/etc\/x"/ });
  t.is(ws.fileName('slim', UID), `${UID}.img`);
});

interface FakeHead {
  image?: unknown;
  images?: unknown;
  created?: unknown;
  stored?: unknown;
}

/** A session whose head node answers with `head`'s values; records every request and every file opened. */
function fakeSession(t: { teardown(fn: () => void): void }, head: FakeHead, argv: string[] = ['-i', 'slim', '--query']) {
  const root = mkdtempSync(join(tmpdir(), 'cw-modimg-spoof-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const wsDir = join(root, 'a', 'b', 'ws');
  const calls: string[] = [];
  const api = {
    baseUrl: 'http://head.test/api/v1',
    async get(path: string) {
      calls.push(`GET ${path}`);
      if (path === '/images') return head.images;
      if (head.image === undefined) throw new ApiError(404, 'no such image');
      return head.image;
    },
    async post(path: string) {
      calls.push(`POST ${path}`);
      return head.created;
    },
    async upload(path: string) {
      calls.push(`PUT ${path}`);
      return head.stored;
    },
    async delete(path: string) {
      calls.push(`DELETE ${path}`);
    },
    async download(url: string, openSink: () => Writable) {
      calls.push(`DOWNLOAD ${url}`);
      const sink = openSink();
      await new Promise<void>((resolve, reject) => sink.end(Buffer.from('image bytes'), (err?: Error | null) => (err ? reject(err) : resolve())));
      return 11;
    },
  } as unknown as ApiClient;
  const out: string[] = [];
  const ctx = { tool: 'cw-modimg', cwd: root, home: root, env: {}, out: (s: string) => out.push(s), err: (s: string) => out.push(s), api: () => api } as unknown as ToolContext;
  const workspace = new Workspace(wsDir);
  const reporter = createReporter({ write: () => {}, isTTY: false });
  const session: ModimgSession = createSession(ctx, workspace, parseModimgArgs(argv), { interactive: false, ask: async () => false, reporter });
  /** Every file under the test's directory, relative to it. */
  const files = (): string[] => (readdirSync(root, { recursive: true }) as string[]).sort();
  return { session, workspace, calls, root, files };
}

test('download: a spoofed uid is refused before anything is fetched or written', async (t) => {
  for (const uid of ['../../x', `../../../${'a'.repeat(26)}`, `a/${UID.slice(2)}`, `${UID}\0`]) {
    const f = fakeSession(t, { image: { ...good, uid } });
    await f.session.workspace.ensure();
    await t.throwsAsync(downloadImage(f.session, 'slim'), { message: /^the head node sent an image with an invalid uid .*\(GET \/image\/slim\)$/ });
    t.deepEqual(f.calls, ['GET /image/slim']);
    t.deepEqual(f.files(), ['a', 'a/b', 'a/b/ws', 'a/b/ws/roots'], 'nothing written, inside or outside the workspace');
  }
});

test('download: a bad checksum from the head node is refused before the download', async (t) => {
  const f = fakeSession(t, { image: { ...good, checksum: 'sha256:../../x' } });
  await f.session.workspace.ensure();
  await t.throwsAsync(downloadImage(f.session, 'slim'), { message: /invalid checksum "sha256:\.\.\/\.\.\/x"/ });
  t.deepEqual(f.calls, ['GET /image/slim']);
});

test('download: a well-formed answer still lands at WORKSPACE/<uid>.img (the checksum is then checked)', async (t) => {
  const f = fakeSession(t, { image: good });
  await f.session.workspace.ensure();
  await t.throwsAsync(downloadImage(f.session, 'slim'), { message: /^downloaded image slim has checksum sha256:[0-9a-f]{64} but the head node says / });
  t.deepEqual(f.calls, ['GET /image/slim', `DOWNLOAD http://head.test/images/${UID}.img`]);
  t.deepEqual(f.files(), ['a', 'a/b', 'a/b/ws', 'a/b/ws/roots'], 'the partial file is removed');
});

test('ls: a spoofed image in the list is a clear error', async (t) => {
  const f = fakeSession(t, { images: [good, { ...good, name: 'evil', uid: '../../etc/x' }] }, ['ls']);
  await t.throwsAsync(listImages(f.session), { message: /^the head node sent an image with an invalid uid "\.\.\/\.\.\/etc\/x".*\(GET \/images\)$/ });
  const g = fakeSession(t, { images: { not: 'a list' } }, ['ls']);
  await t.throwsAsync(listImages(g.session), { message: /^the head node sent an image list that is not a list \(GET \/images\)$/ });
});

test('upload: a spoofed uid in the created image is refused; nothing is renamed out of the workspace', async (t) => {
  // Were it taken, the upload would "succeed" and the packed file be renamed to WORKSPACE/../../x.img.
  const f = fakeSession(t, { image: undefined, created: { ...good, checksum: null, uid: '../../x' }, stored: good }, ['-i', 'slim', '--upload']);
  await f.workspace.ensure();
  const { writeFile } = await import('node:fs/promises');
  await writeFile(f.workspace.abs('slim.local.img'), 'image bytes');
  const entry = await f.workspace.put('slim', { uid: null, checksum: SUM, file: 'slim.local.img' });
  await t.throwsAsync(uploadImage(f.session, 'slim', entry), { message: /^the head node sent an image with an invalid uid "\.\.\/\.\.\/x".*\(POST \/images\)$/ });
  t.deepEqual(f.calls, ['GET /image/slim', 'POST /images']);
  t.deepEqual(f.files(), ['a', 'a/b', 'a/b/ws', 'a/b/ws/manifest.json', 'a/b/ws/roots', 'a/b/ws/slim.local.img']);
});

test('upload: a spoofed uid in the stored answer is refused before the file is renamed after it', async (t) => {
  const f = fakeSession(t, { image: { ...good, checksum: null }, stored: { ...good, uid: '../../x' } }, ['-i', 'slim', '--upload']);
  await f.workspace.ensure();
  const { writeFile } = await import('node:fs/promises');
  await writeFile(f.workspace.abs('slim.local.img'), 'image bytes');
  const entry = await f.workspace.put('slim', { uid: null, checksum: SUM, file: 'slim.local.img' });
  await t.throwsAsync(uploadImage(f.session, 'slim', entry), { message: new RegExp(`invalid uid "\\.\\./\\.\\./x".*\\(PUT /image/${UID}/content\\)$`) });
  t.deepEqual(f.files(), ['a', 'a/b', 'a/b/ws', 'a/b/ws/manifest.json', 'a/b/ws/roots', 'a/b/ws/slim.local.img']);
});
