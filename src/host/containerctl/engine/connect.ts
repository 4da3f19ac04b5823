import { access, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ExitError, errorMessage } from '../../../lib/errors.js';
import { DockerodeEngine } from './dockerode-engine.js';
import { candidateEndpoints, ROOTFUL_DOCKER_SOCKET, ROOTFUL_PODMAN_SOCKET, type EngineEndpoint } from './endpoint.js';
import type { Engine } from './engine.js';
import {
  endpointText,
  engineName,
  identifyEngine,
  rootlessRefusal,
  type EngineKind,
  type InfoReply,
  type VersionReply,
} from './identify.js';

export interface ConnectOptions {
  env?: NodeJS.ProcessEnv;
  uid?: number;
  /** Whether a socket path exists (injected so strategy order can be tested without sockets). */
  exists?: (path: string) => Promise<boolean>;
  /** Per-probe timeout for `/_ping`, `/version` and `/info`. */
  probeTimeoutMs?: number;
  /** Only this engine (`--engine`; `wantedEngineKind` also reads CW_ENGINE). */
  kind?: EngineKind | undefined;
  /** Probes one endpoint (injected so the choice can be tested without sockets). */
  probe?: (endpoint: EngineEndpoint, env: NodeJS.ProcessEnv, timeoutMs: number) => Promise<ProbeResult>;
}

function pathExists(path: string): Promise<boolean> {
  return new Promise((resolve) => access(path, (err) => resolve(!err)));
}

/** A dockerode client bound to exactly this endpoint (never to whatever DOCKER_HOST the process has). */
export function clientFor(endpoint: EngineEndpoint, env: NodeJS.ProcessEnv = {}): Docker {
  if (endpoint.transport === 'unix') {
    return new Docker({ socketPath: endpoint.socketPath, host: undefined, port: undefined, protocol: 'http' });
  }
  const options: Docker.DockerOptions = { host: endpoint.host, port: endpoint.port, protocol: endpoint.tls ? 'https' : 'http' };
  if (endpoint.tls && env.DOCKER_CERT_PATH) {
    try {
      options.ca = readFileSync(join(env.DOCKER_CERT_PATH, 'ca.pem'));
      options.cert = readFileSync(join(env.DOCKER_CERT_PATH, 'cert.pem'));
      options.key = readFileSync(join(env.DOCKER_CERT_PATH, 'key.pem'));
    } catch (err) {
      throw new ExitError(`cannot read TLS files from DOCKER_CERT_PATH=${env.DOCKER_CERT_PATH}: ${errorMessage(err)}`);
    }
  }
  return new Docker(options);
}

interface ProbeClient {
  ping(options: { abortSignal: AbortSignal }): Promise<unknown>;
  version(options: { abortSignal: AbortSignal }): Promise<unknown>;
  info(options: { abortSignal: AbortSignal }): Promise<unknown>;
}

/** The outcome of probing one endpoint. */
export type ProbeResult =
  | { ok: true; engine: Engine }
  | { ok: false; reason: 'unreachable' | 'permission'; detail: string };

/** Pings an endpoint and asks who it is; refuses a rootless engine. */
export async function probeEndpoint(endpoint: EngineEndpoint, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ProbeResult> {
  const docker = clientFor(endpoint, env);
  // dockerode accepts an abort signal on these calls, though its type declarations omit the argument.
  const probe = docker as unknown as ProbeClient;
  let version: VersionReply;
  let info: InfoReply;
  try {
    await probe.ping({ abortSignal: AbortSignal.timeout(timeoutMs) });
    version = (await probe.version({ abortSignal: AbortSignal.timeout(timeoutMs) })) as VersionReply;
    info = (await probe.info({ abortSignal: AbortSignal.timeout(timeoutMs) })) as InfoReply;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const detail = code === 'ABORT_ERR' || (err as Error).name === 'AbortError' ? 'no answer' : errorMessage(err);
    return { ok: false, reason: code === 'EACCES' ? 'permission' : 'unreachable', detail };
  }
  const identity = identifyEngine(version, info, endpoint);
  if (identity.rootless) throw rootlessRefusal(identity);
  return { ok: true, engine: new DockerodeEngine(docker, identity) };
}

/** What to run to get an engine of this kind going (systemd hosts; scripts/quickstart.sh does it for you). */
function startHint(kind: EngineKind | undefined): string {
  if (kind === 'docker') return 'start Docker (sudo systemctl enable --now docker)';
  if (kind === 'podman') return 'start rootful Podman (sudo systemctl enable --now podman.socket)';
  return 'start Docker (sudo systemctl enable --now docker) or rootful Podman (sudo systemctl enable --now podman.socket)';
}

/**
 * Finds the container engine by the strategy list (see candidateEndpoints): an explicit DOCKER_HOST or
 * CONTAINER_HOST must answer; otherwise the first well-known socket that exists and answers wins
 * (Docker's before Podman's). With a wanted kind, an engine of the other kind is passed over, or refused
 * when a variable names it.
 */
export async function connectEngine(options: ConnectOptions = {}): Promise<Engine> {
  const env = options.env ?? process.env;
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const exists = options.exists ?? pathExists;
  const probe = options.probe ?? probeEndpoint;
  const timeoutMs = options.probeTimeoutMs ?? 5000;
  const kind = options.kind;
  const candidates = candidateEndpoints({ env, uid, kind });
  const denied: string[] = [];
  const otherKind: string[] = [];
  for (const endpoint of candidates) {
    const explicit = endpoint.source === 'DOCKER_HOST' || endpoint.source === 'CONTAINER_HOST';
    if (!explicit && endpoint.transport === 'unix' && !(await exists(endpoint.socketPath))) continue;
    const result = await probe(endpoint, env, timeoutMs);
    if (result.ok) {
      const found = result.engine.identity;
      if (!kind || found.kind === kind) return result.engine;
      const what = `${endpointText(endpoint)} is ${engineName(found.kind)} ${found.version}`;
      if (explicit) {
        throw new ExitError(`${what}, but ${engineName(kind)} was asked for (--engine or CW_ENGINE): unset ${endpoint.source} or use --engine ${found.kind}`);
      }
      otherKind.push(what);
      continue;
    }
    if (explicit) {
      const hint = result.reason === 'permission' ? ' (permission denied: run cw-containerctl as root, e.g. with sudo)' : '';
      throw new ExitError(`cannot reach the container engine at ${endpoint.display} (${endpoint.source}): ${result.detail}${hint}`);
    }
    if (result.reason === 'permission') denied.push(endpoint.display);
  }
  if (denied.length > 0) {
    throw new ExitError(`permission denied on ${denied.join(' and ')}: run cw-containerctl as root (e.g. with sudo)`);
  }
  if (kind) {
    const seen = otherKind.length > 0 ? ` (${otherKind.join('; ')})` : '';
    throw new ExitError(`no ${engineName(kind)} engine found${seen}: ${startHint(kind)}, or choose the other engine with --engine`);
  }
  throw new ExitError(`no container engine found: ${startHint(undefined)}, or set DOCKER_HOST`);
}

/**
 * The engines on this host's other well-known rootful socket (the kind not in use), for hints such as
 * "the image is in Podman, not Docker". Never throws: an engine that does not answer is left out.
 */
export async function otherEngines(current: Engine, options: Omit<ConnectOptions, 'kind'> = {}): Promise<Engine[]> {
  const env = options.env ?? process.env;
  const exists = options.exists ?? pathExists;
  const probe = options.probe ?? probeEndpoint;
  const timeoutMs = options.probeTimeoutMs ?? 2000;
  const found: Engine[] = [];
  const sockets: [string, EngineKind][] = [
    [ROOTFUL_DOCKER_SOCKET, 'docker'],
    [ROOTFUL_PODMAN_SOCKET, 'podman'],
  ];
  for (const [socketPath, kind] of sockets) {
    const here = current.identity.endpoint;
    if (kind === current.identity.kind || (here.transport === 'unix' && here.socketPath === socketPath)) continue;
    if (!(await exists(socketPath))) continue;
    const endpoint: EngineEndpoint = { transport: 'unix', socketPath, source: `${kind}-rootful`, display: `unix://${socketPath}` };
    try {
      const result = await probe(endpoint, env, timeoutMs);
      if (result.ok && result.engine.identity.kind !== current.identity.kind) found.push(result.engine);
    } catch {
      // A rootless or odd engine there is no help for a hint.
    }
  }
  return found;
}
