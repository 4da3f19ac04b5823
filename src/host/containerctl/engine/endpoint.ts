import { ExitError } from '../../../lib/errors.js';
import type { EngineKind } from './identify.js';

/** Where a container engine's API listens, and which strategy found it. */
export type EngineEndpoint =
  | { transport: 'unix'; socketPath: string; source: EndpointSource; display: string }
  | { transport: 'tcp'; host: string; port: number; tls: boolean; source: EndpointSource; display: string };

/** How an endpoint was chosen: an explicit variable, a well-known rootful socket, or a rootless one. */
export type EndpointSource = 'DOCKER_HOST' | 'CONTAINER_HOST' | 'podman-rootful' | 'docker-rootful' | 'rootless-socket';

/** The rootful sockets; Docker's is tried first when no variable names an engine (see candidateEndpoints). */
export const ROOTFUL_DOCKER_SOCKET = '/var/run/docker.sock';
export const ROOTFUL_PODMAN_SOCKET = '/run/podman/podman.sock';

/** The engine kinds `--engine` and `CW_ENGINE` accept. */
export const ENGINE_KINDS: readonly EngineKind[] = ['docker', 'podman'];

/**
 * The engine the user asked for: the `--engine` option, else `CW_ENGINE`, else none (any engine).
 * Example: `wantedEngineKind(undefined, { CW_ENGINE: 'podman' })` → `'podman'`.
 */
export function wantedEngineKind(option: string | undefined, env: NodeJS.ProcessEnv): EngineKind | undefined {
  const [value, source] = option?.trim() ? [option.trim(), '--engine'] : [env.CW_ENGINE?.trim() ?? '', 'CW_ENGINE'];
  if (!value) return undefined;
  const kind = value.toLowerCase();
  if (!(ENGINE_KINDS as readonly string[]).includes(kind)) {
    throw new ExitError(`${source} must be docker or podman, not "${value}"`);
  }
  return kind as EngineKind;
}

/**
 * Parses a DOCKER_HOST / CONTAINER_HOST value: `unix:///path`, `tcp://host:port` (or bare `host:port`).
 * Example: `parseEngineHost('tcp://10.0.0.5:2375', 'DOCKER_HOST')` → tcp endpoint on port 2375.
 */
export function parseEngineHost(value: string, source: 'DOCKER_HOST' | 'CONTAINER_HOST', env: NodeJS.ProcessEnv = {}): EngineEndpoint {
  const raw = value.trim();
  if (raw.startsWith('unix://')) {
    const socketPath = raw.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new ExitError(`${source}=${raw}: a unix socket needs an absolute path (unix:///path/to.sock)`);
    return { transport: 'unix', socketPath, source, display: `unix://${socketPath}` };
  }
  if (raw.startsWith('/')) return { transport: 'unix', socketPath: raw, source, display: `unix://${raw}` };
  const withScheme = raw.includes('://') ? raw : `tcp://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ExitError(`${source}=${raw} is not a valid engine address (use unix:///path/to.sock or tcp://HOST:PORT)`);
  }
  if (url.protocol !== 'tcp:' && url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ExitError(`${source}=${raw}: unsupported scheme "${url.protocol.replace(/:$/, '')}" (use unix:// or tcp://)`);
  }
  if (!url.hostname) throw new ExitError(`${source}=${raw}: missing host (use tcp://HOST:PORT)`);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 2376 : 2375;
  const tls = url.protocol === 'https:' || env.DOCKER_TLS_VERIFY === '1' || (env.DOCKER_TLS_VERIFY === undefined && port === 2376);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { transport: 'tcp', host, port, tls, source, display: `tcp://${url.host}` };
}

export interface CandidateOptions {
  env: NodeJS.ProcessEnv;
  /** The invoking user's uid (rootless sockets live under /run/user/UID). */
  uid: number;
  /** Only this engine's well-known sockets (from --engine or CW_ENGINE). */
  kind?: EngineKind | undefined;
}

/**
 * The ordered strategy list. An explicit DOCKER_HOST (then CONTAINER_HOST) is the only candidate when
 * set; otherwise the rootful Docker socket, the rootful Podman socket, and last the invoking user's
 * rootless sockets (tried only so that a rootless-only host gets the rootless explanation, not "no
 * engine"). With a wanted kind only that engine's sockets are listed.
 *
 * Docker comes first because that is the engine users check with: the ClusterWare container guide
 * (and our README) verifies a start with `docker ps` and lists images with `docker image list`, and
 * `scripts/build-image.sh` builds into Docker. Where Podman provides `/var/run/docker.sock` itself
 * (RHEL's podman-docker) the first socket is Podman anyway, and `/version` says so.
 */
export function candidateEndpoints({ env, uid, kind }: CandidateOptions): EngineEndpoint[] {
  if (env.DOCKER_HOST?.trim()) return [parseEngineHost(env.DOCKER_HOST, 'DOCKER_HOST', env)];
  if (env.CONTAINER_HOST?.trim()) return [parseEngineHost(env.CONTAINER_HOST, 'CONTAINER_HOST', env)];
  const unix = (socketPath: string, source: EndpointSource): EngineEndpoint => ({
    transport: 'unix',
    socketPath,
    source,
    display: `unix://${socketPath}`,
  });
  const candidates: EngineEndpoint[] = [];
  if (kind !== 'podman') candidates.push(unix(ROOTFUL_DOCKER_SOCKET, 'docker-rootful'));
  if (kind !== 'docker') candidates.push(unix(ROOTFUL_PODMAN_SOCKET, 'podman-rootful'));
  if (uid !== 0) {
    const runtimeDirs = new Set([env.XDG_RUNTIME_DIR, `/run/user/${uid}`].filter((d): d is string => Boolean(d)));
    for (const dir of runtimeDirs) {
      if (kind !== 'podman') candidates.push(unix(`${dir}/docker.sock`, 'rootless-socket'));
      if (kind !== 'docker') candidates.push(unix(`${dir}/podman/podman.sock`, 'rootless-socket'));
    }
  }
  return candidates;
}

/** True for a unix socket inside a non-root user's runtime directory (`/run/user/UID/...`): a rootless engine. */
export function isRootlessSocketPath(endpoint: EngineEndpoint): boolean {
  return endpoint.transport === 'unix' && /^\/run\/user\/(?!0\/)\d+\//.test(endpoint.socketPath);
}
