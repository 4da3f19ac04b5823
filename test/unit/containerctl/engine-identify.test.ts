import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { connectEngine } from '../../../src/host/containerctl/engine/connect.js';
import { identifyEngine, isPodmanVersion, isRootlessInfo } from '../../../src/host/containerctl/engine/identify.js';
import { infoReply, startFakeEngine, versionReply } from './fake-engine.js';

const endpoint = { transport: 'unix' as const, socketPath: '/var/run/docker.sock', source: 'docker-rootful' as const, display: 'unix:///var/run/docker.sock' };

test('Podman is recognised from /version, whatever the socket is called', (t) => {
  t.true(isPodmanVersion(versionReply('podman')));
  t.false(isPodmanVersion(versionReply('docker')));
  t.true(isPodmanVersion({ Platform: { Name: 'Podman Engine' }, Components: [] }));
  t.false(isPodmanVersion({}));
  const id = identifyEngine(versionReply('podman'), infoReply('podman', false), endpoint);
  t.like(id, { kind: 'podman', version: '4.3.1', rootless: false });
});

test('rootless is read from SecurityOptions and from libpod\'s host.security.rootless', (t) => {
  t.true(isRootlessInfo(infoReply('docker', true)));
  t.true(isRootlessInfo({ SecurityOptions: ['name=seccomp,profile=default', 'name=rootless'] }));
  t.true(isRootlessInfo({ host: { security: { rootless: true } } }));
  t.false(isRootlessInfo(infoReply('podman', false)));
  t.false(isRootlessInfo({}));
});

test('a rootless engine is refused with the one-line explanation', async (t) => {
  const engine = await startFakeEngine({ kind: 'podman', rootless: true });
  try {
    const err = await t.throwsAsync(connectEngine({ env: { DOCKER_HOST: engine.dockerHost }, uid: 1000 }));
    t.notRegex(err!.message, /\n/);
    t.regex(err!.message, /^rootless Podman at unix:\/\/.* cannot run cw-headnode: DHCP needs raw sockets and ports below 1024/);
    t.true(err!.message.includes('sudo systemctl enable --now podman.socket'));
    t.true(err!.message.includes('echo net.ipv4.ip_unprivileged_port_start = 53 | sudo tee /etc/sysctl.d/90-unprivileged_port_start.conf'));
    t.deepEqual(
      engine.requests.map((r) => r.path),
      ['/_ping', '/version', '/info'],
    );
  } finally {
    await engine.close();
  }
});

test('a rootful fake Podman is accepted and identified', async (t) => {
  const fake = await startFakeEngine({ kind: 'podman' });
  try {
    const engine = await connectEngine({ env: { DOCKER_HOST: fake.dockerHost }, uid: 0 });
    t.like(engine.identity, { kind: 'podman', rootless: false });
    t.deepEqual(await engine.listApplianceImages(), []);
  } finally {
    await fake.close();
  }
});

test('CONTAINER_HOST reaches the engine too', async (t) => {
  const fake = await startFakeEngine({ kind: 'docker' });
  try {
    const engine = await connectEngine({ env: { CONTAINER_HOST: fake.dockerHost }, uid: 0 });
    t.is(engine.identity.kind, 'docker');
    t.is(engine.identity.endpoint.source, 'CONTAINER_HOST');
  } finally {
    await fake.close();
  }
});

test('the default strategy skips missing sockets and ends with the user\'s rootless socket, refused', async (t) => {
  const runtimeDir = mkdtempSync(join(tmpdir(), 'cw-runtime-'));
  const fake = await startFakeEngine({ kind: 'docker', rootless: true, socketPath: join(runtimeDir, 'docker.sock') });
  try {
    const seen: string[] = [];
    // The rootful sockets are reported missing so the real engines of this machine stay out of it.
    const exists = async (p: string) => {
      seen.push(p);
      return p.startsWith(runtimeDir) && existsSync(p);
    };
    await t.throwsAsync(connectEngine({ env: { XDG_RUNTIME_DIR: runtimeDir }, uid: 1000, exists }), {
      message: /^rootless Docker at unix:\/\/.*docker\.sock cannot run cw-headnode/,
    });
    t.deepEqual(seen.slice(0, 3), ['/var/run/docker.sock', '/run/podman/podman.sock', join(runtimeDir, 'docker.sock')]);
  } finally {
    await fake.close();
    rmSync(runtimeDir, { recursive: true, force: true });
  }
});
