import test from 'ava';
import {
  candidateEndpoints,
  isRootlessSocketPath,
  parseEngineHost,
  ROOTFUL_DOCKER_SOCKET,
  ROOTFUL_PODMAN_SOCKET,
} from '../../../src/host/containerctl/engine/endpoint.js';
import { connectEngine } from '../../../src/host/containerctl/engine/connect.js';

test('without variables, rootful Docker is tried before Podman, then the user\'s rootless sockets', (t) => {
  const paths = candidateEndpoints({ env: {}, uid: 1000 }).map((e) => (e.transport === 'unix' ? e.socketPath : e.host));
  t.deepEqual(paths.slice(0, 2), [ROOTFUL_DOCKER_SOCKET, ROOTFUL_PODMAN_SOCKET]);
  t.true(paths.includes('/run/user/1000/podman/podman.sock'));
  t.true(paths.includes('/run/user/1000/docker.sock'));
  t.true(paths.indexOf('/run/user/1000/podman/podman.sock') > 1);
});

test('root gets only the rootful sockets', (t) => {
  const paths = candidateEndpoints({ env: {}, uid: 0 }).map((e) => e.display);
  t.deepEqual(paths, [`unix://${ROOTFUL_DOCKER_SOCKET}`, `unix://${ROOTFUL_PODMAN_SOCKET}`]);
});

test('DOCKER_HOST is the only candidate when set, and wins over CONTAINER_HOST', (t) => {
  const list = candidateEndpoints({ env: { DOCKER_HOST: 'unix:///tmp/d.sock', CONTAINER_HOST: 'unix:///tmp/c.sock' }, uid: 0 });
  t.is(list.length, 1);
  t.like(list[0], { transport: 'unix', socketPath: '/tmp/d.sock', source: 'DOCKER_HOST' });
});

test('CONTAINER_HOST is accepted like Podman does', (t) => {
  const list = candidateEndpoints({ env: { CONTAINER_HOST: 'unix:///run/podman/podman.sock' }, uid: 0 });
  t.like(list[0], { socketPath: '/run/podman/podman.sock', source: 'CONTAINER_HOST' });
});

test('DOCKER_HOST forms: unix, tcp, bare host:port, TLS port', (t) => {
  t.like(parseEngineHost('unix:///var/run/docker.sock', 'DOCKER_HOST'), { transport: 'unix', socketPath: '/var/run/docker.sock' });
  t.like(parseEngineHost('tcp://10.0.0.5:2375', 'DOCKER_HOST'), { transport: 'tcp', host: '10.0.0.5', port: 2375, tls: false });
  t.like(parseEngineHost('engine.example:4243', 'DOCKER_HOST'), { transport: 'tcp', host: 'engine.example', port: 4243 });
  t.like(parseEngineHost('tcp://engine.example:2376', 'DOCKER_HOST'), { tls: true });
  t.like(parseEngineHost('tcp://engine.example:2375', 'DOCKER_HOST', { DOCKER_TLS_VERIFY: '1' }), { tls: true });
  t.like(parseEngineHost('tcp://[fd00::1]:2375', 'DOCKER_HOST'), { host: 'fd00::1', port: 2375 });
});

test('bad DOCKER_HOST values are refused in one line', (t) => {
  t.throws(() => parseEngineHost('ssh://me@host', 'DOCKER_HOST'), { message: /unsupported scheme "ssh"/ });
  t.throws(() => parseEngineHost('unix://relative.sock', 'DOCKER_HOST'), { message: /absolute path/ });
});

test('a socket under /run/user/UID (not root) is rootless', (t) => {
  const at = (socketPath: string) => ({ transport: 'unix' as const, socketPath, source: 'DOCKER_HOST' as const, display: socketPath });
  t.true(isRootlessSocketPath(at('/run/user/1000/podman/podman.sock')));
  t.false(isRootlessSocketPath(at('/run/user/0/podman/podman.sock')));
  t.false(isRootlessSocketPath(at('/run/podman/podman.sock')));
});

test('no engine anywhere: a clear error naming what to start', async (t) => {
  await t.throwsAsync(connectEngine({ env: {}, uid: 0, exists: async () => false }), {
    message: /^no container engine found: start Docker .* or rootful Podman .*, or set DOCKER_HOST$/,
  });
});

test('an explicit DOCKER_HOST that does not answer is reported, not skipped', async (t) => {
  await t.throwsAsync(connectEngine({ env: { DOCKER_HOST: 'unix:///nonexistent/cw-test.sock' }, uid: 0 }), {
    message: /^cannot reach the container engine at unix:\/\/\/nonexistent\/cw-test\.sock \(DOCKER_HOST\)/,
  });
});
