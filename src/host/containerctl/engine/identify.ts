import { ExitError } from '../../../lib/errors.js';
import { isRootlessSocketPath, type EngineEndpoint } from './endpoint.js';

export type EngineKind = 'docker' | 'podman';

/** What the engine says about itself, reduced to what cw-containerctl decides on. */
export interface EngineIdentity {
  kind: EngineKind;
  /** Engine version, e.g. `20.10.24` or `4.3.1`. */
  version: string;
  apiVersion: string;
  rootless: boolean;
  endpoint: EngineEndpoint;
}

interface VersionComponent {
  Name?: unknown;
  Version?: unknown;
}

/** The fields of `GET /version` we read (Docker and Podman's compat API both answer this shape). */
export interface VersionReply {
  Version?: unknown;
  ApiVersion?: unknown;
  Platform?: { Name?: unknown } | null;
  Components?: VersionComponent[] | null;
}

/** The fields of `GET /info` we read: compat `SecurityOptions`, libpod `host.security.rootless`. */
export interface InfoReply {
  SecurityOptions?: unknown;
  host?: { security?: { rootless?: unknown } | null } | null;
}

/** Podman announces itself in `/version`: a component named "Podman Engine" or a platform naming Podman. */
export function isPodmanVersion(reply: VersionReply): boolean {
  const components = Array.isArray(reply.Components) ? reply.Components : [];
  if (components.some((c) => typeof c?.Name === 'string' && /^podman engine$/i.test(c.Name.trim()))) return true;
  const platform = reply.Platform?.Name;
  return typeof platform === 'string' && /podman/i.test(platform);
}

/** Rootless shows as `name=rootless` in SecurityOptions (Docker and Podman compat) or libpod's flag. */
export function isRootlessInfo(reply: InfoReply): boolean {
  const options = Array.isArray(reply.SecurityOptions) ? reply.SecurityOptions : [];
  if (options.some((o) => typeof o === 'string' && o.split(',').includes('name=rootless'))) return true;
  return reply.host?.security?.rootless === true;
}

/** Combines the two replies and the socket location into the engine's identity. */
export function identifyEngine(version: VersionReply, info: InfoReply, endpoint: EngineEndpoint): EngineIdentity {
  const podman = isPodmanVersion(version);
  const podmanComponent = (version.Components ?? []).find((c) => typeof c?.Name === 'string' && /podman/i.test(c.Name));
  const engineVersion = podman && typeof podmanComponent?.Version === 'string' ? podmanComponent.Version : version.Version;
  return {
    kind: podman ? 'podman' : 'docker',
    version: typeof engineVersion === 'string' ? engineVersion : 'unknown',
    apiVersion: typeof version.ApiVersion === 'string' ? version.ApiVersion : 'unknown',
    rootless: isRootlessInfo(info) || isRootlessSocketPath(endpoint),
    endpoint,
  };
}

/** `Docker` or `Podman`. */
export function engineName(kind: EngineKind): string {
  return kind === 'podman' ? 'Podman' : 'Docker';
}

/** Where the engine listens, as users write it: a socket path, or the tcp:// address. */
export function endpointText(endpoint: EngineEndpoint): string {
  const where = endpoint.transport === 'unix' ? endpoint.socketPath : endpoint.display;
  return endpoint.source === 'DOCKER_HOST' || endpoint.source === 'CONTAINER_HOST' ? `${where} (${endpoint.source})` : where;
}

/** The line `start` and `status` print: `engine: Docker 20.10.24 at /var/run/docker.sock`. */
export function describeEngine(identity: EngineIdentity): string {
  return `engine: ${engineName(identity.kind)} ${identity.version} at ${endpointText(identity.endpoint)}`;
}

/** The one-line refusal for rootless engines (see the README's troubleshooting and seed 000's Known Issues). */
export function rootlessRefusal(identity: EngineIdentity): ExitError {
  const name = engineName(identity.kind);
  const rootfulHint =
    identity.kind === 'podman'
      ? 'use the rootful socket (e.g. sudo systemctl enable --now podman.socket, then run cw-containerctl with sudo)'
      : 'use the rootful daemon (e.g. sudo systemctl enable --now docker.socket, then run cw-containerctl with sudo)';
  return new ExitError(
    `rootless ${name} at ${identity.endpoint.display} cannot run cw-headnode: DHCP needs raw sockets and ports below 1024 ` +
      `(67/udp, 69/udp, 80/tcp) on the host network; ${rootfulHint}; ` +
      'if a rootful engine still cannot bind low ports, run: ' +
      'echo net.ipv4.ip_unprivileged_port_start = 53 | sudo tee /etc/sysctl.d/90-unprivileged_port_start.conf (and reboot)',
  );
}
