// Which image `start` runs and how `img-ls` orders them: tagged cw-headnode images only, newest by
// version; untagged leftovers of a rebuild are never taken.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { imgLs } from '../../../src/host/containerctl/img-ls/img-ls.js';
import { newestTagged, tagOf } from '../../../src/host/containerctl/images.js';
import { start } from '../../../src/host/containerctl/start/start.js';
import { status } from '../../../src/host/containerctl/status/status.js';
import { MemoryEngine, testContext } from './memory-engine.js';

const noPortsBusy = async () => undefined;

async function inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'cw-choice-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An untagged leftover (what a rebuild leaves behind), newer than everything else. */
function addLeftover(engine: MemoryEngine, created: number) {
  const image = engine.addImage('x', created);
  image.repoTags = [];
  return image;
}

test('tagOf: the tag, not a registry port', (t) => {
  t.is(tagOf('cw-headnode:0.1.0'), '0.1.0');
  t.is(tagOf('localhost:5000/cw-headnode:0.2.0'), '0.2.0');
  t.is(tagOf('localhost:5000/cw-headnode'), undefined);
});

test('start without an image takes the tagged image, not a newer untagged leftover, and shows its tag', async (t) => {
  await inTempDir(async (dir) => {
    const engine = new MemoryEngine();
    engine.addImage('cw-headnode:0.1.0', 1000);
    const leftover = addLeftover(engine, 5000);
    const ctx = testContext(engine);
    await start({}, ctx, { cwd: dir, findPortInUse: noPortsBusy });
    t.is(engine.created[0]!.image, 'cw-headnode:0.1.0');
    t.false(ctx.out.text.includes(leftover.id.slice(7)));
    t.regex(ctx.out.text, /image cw-headnode:0\.1\.0,/);
    const shown = testContext(engine);
    await status({}, shown);
    t.regex(shown.out.text.split('\n')[1]!, /^cw-headnode\s+cw-headnode:0\.1\.0\s+running/);
  });
});

test('newest by version, not by when the engine got it: 0.10.0 beats a re-loaded 0.9.0', (t) => {
  const engine = new MemoryEngine();
  engine.addImage('cw-headnode:0.10.0', 1000);
  engine.addImage('cw-headnode:0.9.0', 9000);
  t.is(newestTagged(engine.images)?.ref, 'cw-headnode:0.10.0');
});

test('an image with several tags is started by its highest version tag', (t) => {
  const engine = new MemoryEngine();
  const image = engine.addImage('cw-headnode:latest', 1000);
  image.repoTags.push('cw-headnode:0.3.0');
  t.is(newestTagged(engine.images)?.ref, 'cw-headnode:0.3.0');
});

test('only untagged leftovers: start refuses and names them', async (t) => {
  await inTempDir(async (dir) => {
    const engine = new MemoryEngine();
    const leftover = addLeftover(engine, 5000);
    await t.throwsAsync(start({}, testContext(engine), { cwd: dir, findPortInUse: noPortsBusy }), {
      message: `no tagged cw-headnode image is loaded (only untagged leftovers: ${leftover.id.slice(7, 19)}) (load one with cw-containerctl img-load FILE)`,
    });
    t.deepEqual(engine.created, []);
  });
});

test('the image is only in the other engine: say which, and what to do', async (t) => {
  await inTempDir(async (dir) => {
    const docker = new MemoryEngine('docker');
    const podman = new MemoryEngine('podman');
    podman.addImage('cw-headnode:0.1.0', 1000);
    const ctx = testContext(docker);
    ctx.otherEngines = async () => [podman];
    const message = 'image cw-headnode:0.1.0 is in Podman, not Docker: use --engine podman or img-load it into Docker';
    await t.throwsAsync(start({}, ctx, { cwd: dir, findPortInUse: noPortsBusy }), { message });
    await t.throwsAsync(start({ image: 'cw-headnode:0.1.0' }, ctx, { cwd: dir, findPortInUse: noPortsBusy }), { message });
    t.deepEqual(docker.created, []);
    // Neither engine has it: the plain message.
    ctx.otherEngines = async () => [];
    await t.throwsAsync(start({ image: 'cw-headnode:0.1.0' }, ctx, { cwd: dir, findPortInUse: noPortsBusy }), {
      message: 'image cw-headnode:0.1.0 is not loaded (see cw-containerctl img-ls)',
    });
  });
});

test('start and status name the engine on stderr', async (t) => {
  await inTempDir(async (dir) => {
    const engine = new MemoryEngine('podman');
    engine.addImage('localhost/cw-headnode:0.1.0', 1000);
    const ctx = testContext(engine);
    await start({}, ctx, { cwd: dir, findPortInUse: noPortsBusy });
    t.is(ctx.err.text.split('\n')[0], 'engine: Podman 4.3.1 at /var/run/docker.sock');
    const shown = testContext(engine);
    await status({}, shown);
    t.is(shown.err.text, 'engine: Podman 4.3.1 at /var/run/docker.sock\n');
  });
});

test('img-ls: tagged images by version, untagged leftovers last', async (t) => {
  const engine = new MemoryEngine();
  addLeftover(engine, Date.parse('2025-12-31T23:59:30Z'));
  engine.addImage('cw-headnode:0.2.0', Date.parse('2025-12-31T20:00:00Z'));
  engine.addImage('cw-headnode:0.1.0', Date.parse('2025-12-31T23:00:00Z'));
  const ctx = testContext(engine);
  await imgLs({}, ctx);
  const tags = ctx.out.text.trim().split('\n').slice(1).map((l) => l.split(/\s{3,}/)[0]);
  t.deepEqual(tags, ['cw-headnode:0.2.0', 'cw-headnode:0.1.0', '<none>:<none>']);
});
