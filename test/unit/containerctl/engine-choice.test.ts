// One engine choice for every command: the order, --engine / CW_ENGINE, and what is said when the image
// sits in the other engine. Endpoints are probed through an injected probe: no sockets needed.
import test from 'ava';
import { connectEngine, otherEngines, type ProbeResult } from '../../../src/host/containerctl/engine/connect.js';
import {
  candidateEndpoints,
  ROOTFUL_DOCKER_SOCKET,
  ROOTFUL_PODMAN_SOCKET,
  wantedEngineKind,
  type EngineEndpoint,
} from '../../../src/host/containerctl/engine/endpoint.js';
import { describeEngine, type EngineKind } from '../../../src/host/containerctl/engine/identify.js';
import { MemoryEngine } from './memory-engine.js';

/** A host whose sockets answer as the given engines (socket path → kind). */
function host(sockets: Record<string, EngineKind>) {
  const probed: string[] = [];
  const probe = async (endpoint: EngineEndpoint): Promise<ProbeResult> => {
    const path = endpoint.transport === 'unix' ? endpoint.socketPath : endpoint.display;
    probed.push(path);
    const kind = sockets[path];
    if (!kind) return { ok: false, reason: 'unreachable', detail: 'connect ENOENT' };
    const engine = new MemoryEngine(kind);
    Object.assign(engine.identity, { endpoint });
    return { ok: true, engine };
  };
  const exists = async (path: string) => path in sockets;
  return { probe, exists, probed };
}

const both = { [ROOTFUL_DOCKER_SOCKET]: 'docker', [ROOTFUL_PODMAN_SOCKET]: 'podman' } as const;

test('both engines running, nothing chosen: Docker (what `docker ps` shows)', async (t) => {
  const engine = await connectEngine({ env: {}, uid: 0, ...host(both) });
  t.is(engine.identity.kind, 'docker');
  t.is(describeEngine(engine.identity), 'engine: Docker 20.10.24 at /var/run/docker.sock');
});

test('only Podman\'s socket: Podman, without asking', async (t) => {
  const engine = await connectEngine({ env: {}, uid: 0, ...host({ [ROOTFUL_PODMAN_SOCKET]: 'podman' }) });
  t.is(engine.identity.kind, 'podman');
  t.is(describeEngine(engine.identity), 'engine: Podman 4.3.1 at /run/podman/podman.sock');
});

test('CW_ENGINE=podman and --engine podman choose Podman on a host with both', async (t) => {
  const fromEnv = await connectEngine({ env: { CW_ENGINE: 'podman' }, uid: 0, kind: wantedEngineKind(undefined, { CW_ENGINE: 'podman' }), ...host(both) });
  t.is(fromEnv.identity.kind, 'podman');
  const h = host(both);
  const fromOption = await connectEngine({ env: {}, uid: 0, kind: wantedEngineKind('podman', { CW_ENGINE: 'docker' }), ...h });
  t.is(fromOption.identity.kind, 'podman');
  t.deepEqual(h.probed, [ROOTFUL_PODMAN_SOCKET], 'Docker\'s socket is not even asked');
});

test('wantedEngineKind: the option wins over CW_ENGINE; empty means any; a typo is refused', (t) => {
  t.is(wantedEngineKind('docker', { CW_ENGINE: 'podman' }), 'docker');
  t.is(wantedEngineKind(undefined, { CW_ENGINE: 'Podman' }), 'podman');
  t.is(wantedEngineKind(undefined, { CW_ENGINE: '' }), undefined);
  t.is(wantedEngineKind(undefined, {}), undefined);
  t.throws(() => wantedEngineKind(undefined, { CW_ENGINE: 'dokcer' }), { message: 'CW_ENGINE must be docker or podman, not "dokcer"' });
  t.throws(() => wantedEngineKind('lxc', {}), { message: '--engine must be docker or podman, not "lxc"' });
});

test('a wanted kind lists only its own sockets', (t) => {
  const paths = (kind: EngineKind) => candidateEndpoints({ env: {}, uid: 1000, kind }).map((e) => e.display);
  t.deepEqual(paths('docker'), [`unix://${ROOTFUL_DOCKER_SOCKET}`, 'unix:///run/user/1000/docker.sock']);
  t.deepEqual(paths('podman'), [`unix://${ROOTFUL_PODMAN_SOCKET}`, 'unix:///run/user/1000/podman/podman.sock']);
});

test('DOCKER_HOST still decides the address; a kind that disagrees with it is refused, naming both', async (t) => {
  const env = { DOCKER_HOST: `unix://${ROOTFUL_PODMAN_SOCKET}` };
  const engine = await connectEngine({ env, uid: 0, ...host(both) });
  t.is(engine.identity.kind, 'podman');
  t.is(describeEngine(engine.identity), 'engine: Podman 4.3.1 at /run/podman/podman.sock (DOCKER_HOST)');
  await t.throwsAsync(connectEngine({ env, uid: 0, kind: 'docker', ...host(both) }), {
    message: '/run/podman/podman.sock (DOCKER_HOST) is Podman 4.3.1, but Docker was asked for (--engine or CW_ENGINE): unset DOCKER_HOST or use --engine podman',
  });
});

test('--engine docker where /var/run/docker.sock is Podman (podman-docker): no Docker, and why', async (t) => {
  await t.throwsAsync(connectEngine({ env: {}, uid: 0, kind: 'docker', ...host({ [ROOTFUL_DOCKER_SOCKET]: 'podman' }) }), {
    message: /^no Docker engine found \(\/var\/run\/docker\.sock is Podman 4\.3\.1\): start Docker .*, or choose the other engine with --engine$/,
  });
});

test('otherEngines: the other kind\'s socket, never the engine in use', async (t) => {
  const h = host(both);
  const docker = await connectEngine({ env: {}, uid: 0, ...h });
  const others = await otherEngines(docker, h);
  t.deepEqual(others.map((e) => e.identity.kind), ['podman']);
  const podmanOnly = host({ [ROOTFUL_PODMAN_SOCKET]: 'podman' });
  const podman = await connectEngine({ env: {}, uid: 0, ...podmanOnly });
  t.deepEqual(await otherEngines(podman, podmanOnly), []);
});
