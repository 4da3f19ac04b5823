import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { connectEngine } from '../../../src/host/containerctl/engine/connect.js';
import type { Engine } from '../../../src/host/containerctl/engine/engine.js';
import { startFakeEngine, type FakeEngine, type FakeRoute } from './fake-engine.js';

function reply(status: number, body: unknown, type = 'application/json'): FakeRoute {
  return (_req, res) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': type });
    res.end(text);
  };
}

type Body = (engine: Engine, fake: FakeEngine) => Promise<void>;

async function withEngine(t: ExecutionContext, kind: 'docker' | 'podman', routes: Record<string, FakeRoute>, body: Body) {
  const fake = await startFakeEngine({ kind, routes });
  try {
    await body(await connectEngine({ env: { DOCKER_HOST: fake.dockerHost }, uid: 0 }), fake);
  } finally {
    await fake.close();
  }
  t.pass();
}

test('image load: an error inside a 200 reply is thrown, not mistaken for success', async (t) => {
  const stream = '{"stream":"Loading layer"}\n{"errorDetail":{"message":"Error processing tar file(exit status 1): unexpected EOF"},"error":"Error processing tar file(exit status 1): unexpected EOF"}\n';
  await withEngine(t, 'docker', { 'POST /images/load': reply(200, stream) }, async (engine) => {
    await t.throwsAsync(engine.loadImage(Readable.from([Buffer.from('tar bytes')])), {
      message: 'the engine could not load the image: Error processing tar file(exit status 1): unexpected EOF',
    });
  });
});

test('image load: Podman names come back as it reports them', async (t) => {
  let uploaded = 0;
  const load: FakeRoute = (req, res, body) => {
    uploaded = body.length;
    reply(200, '{"stream":"Loaded image: localhost/cw-headnode:0.1.0"}')(req, res, body);
  };
  await withEngine(t, 'podman', { 'POST /images/load': load }, async (engine) => {
    t.deepEqual(await engine.loadImage(Readable.from([Buffer.alloc(5000)])), ['localhost/cw-headnode:0.1.0']);
    t.is(uploaded, 5000);
  });
});

test('image load: a 500 from the engine becomes one line', async (t) => {
  const message = 'failed to load image: payload does not match any of the supported image formats:\n * oci: ...';
  await withEngine(t, 'podman', { 'POST /images/load': reply(500, { cause: 'x', message, response: 500 }) }, async (engine) => {
    await t.throwsAsync(engine.loadImage(Readable.from([Buffer.from('junk')])), {
      message: 'the engine could not load the image: failed to load image: payload does not match any of the supported image formats',
    });
  });
});

test('stop: 304 means already stopped; the timeout is always sent', async (t) => {
  const notModified: FakeRoute = (_req, res) => {
    res.writeHead(304);
    res.end();
  };
  await withEngine(t, 'docker', { 'POST /containers/cw-headnode/stop': notModified }, async (engine, fake) => {
    t.is(await engine.stopContainer('cw-headnode', 10), 'already-stopped');
    t.deepEqual(fake.requests.at(-1), { method: 'POST', path: '/containers/cw-headnode/stop', query: '?t=10' });
  });
});

test('create: capabilities, stop timeout, restart policy, no engine init, fixed IP', async (t) => {
  let sent: Record<string, unknown> = {};
  const create: FakeRoute = (req, res, body) => {
    sent = JSON.parse(body.toString()) as Record<string, unknown>;
    reply(201, { Id: 'abc123', Warnings: [] })(req, res, body);
  };
  await withEngine(t, 'docker', { 'POST /containers/create': create }, async (engine) => {
    const id = await engine.createContainer({
      name: 'cw-headnode',
      image: 'cw-headnode:0.1.0',
      env: ['CW_STORAGE=/var/lib/cw'],
      labels: { 'io.cw-headnode.appliance': 'true' },
      binds: ['/srv/cw:/var/lib/cw'],
      network: 'cwnet',
      ip: '10.10.24.2',
      capAdd: ['NET_RAW'],
      stopTimeout: 10,
    });
    t.is(id, 'abc123');
  });
  t.like(sent, {
    Image: 'cw-headnode:0.1.0',
    StopTimeout: 10,
    HostConfig: { CapDrop: ['ALL'], CapAdd: ['NET_RAW'], RestartPolicy: { Name: 'unless-stopped' }, Init: false, NetworkMode: 'cwnet', Binds: ['/srv/cw:/var/lib/cw'] },
    NetworkingConfig: { EndpointsConfig: { cwnet: { IPAMConfig: { IPv4Address: '10.10.24.2' } } } },
  });
});

test('listing images asks the engine for the appliance label', async (t) => {
  let query = '';
  const list: FakeRoute = (req, res, body) => {
    query = new URL(req.url ?? '/', 'http://x').searchParams.get('filters') ?? '';
    reply(200, [
      { Id: 'sha256:aa', RepoTags: ['localhost/cw-headnode:0.1.0'], Created: 1700000000, Size: 1, Labels: { 'io.cw-headnode.appliance': 'true' } },
      { Id: 'sha256:bb', RepoTags: ['<none>:<none>'], Created: 1700000001, Size: 1, Labels: null },
    ])(req, res, body);
  };
  await withEngine(t, 'podman', { 'GET /images/json': list }, async (engine) => {
    const images = await engine.listApplianceImages();
    t.deepEqual(JSON.parse(query), { label: ['io.cw-headnode.appliance=true'] });
    t.deepEqual(images.map((i) => [i.id, i.repoTags, i.created]), [['sha256:aa', ['localhost/cw-headnode:0.1.0'], 1700000000000]]);
  });
});

test('inspecting something that does not exist is undefined, not an error', async (t) => {
  await withEngine(t, 'docker', {}, async (engine) => {
    t.is(await engine.inspectContainer('nope'), undefined);
    t.is(await engine.inspectImage('nope:1'), undefined);
  });
});
