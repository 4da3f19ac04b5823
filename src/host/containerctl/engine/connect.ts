import { access, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ExitError, errorMessage } from '../../../lib/errors.js';
import { DockerodeEngine } from './dockerode-engine.js';
import { candidateEndpoints, type EngineEndpoint } from './endpoint.js';
import type { Engine } from './engine.js';
import { identifyEngine, rootlessRefusal, type InfoReply, type VersionReply } from './identify.js';

export interface ConnectOptions {
  env?: NodeJS.ProcessEnv;
  uid?: number;
  /** Whether a socket path exists (injected so strategy order can be tested without sockets). */
  exists?: (path: string) => Promise<boolean>;
  /** Per-probe timeout for `/_ping`, `/version` and `/info`. */
  probeTimeoutMs?: number;
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

/**
 * Finds the container engine by the strategy list (see candidateEndpoints): an explicit DOCKER_HOST or
 * CONTAINER_HOST must answer; otherwise the first well-known socket that exists and answers wins.
 */
export async function connectEngine(options: ConnectOptions = {}): Promise<Engine> {
  const env = options.env ?? process.env;
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const exists = options.exists ?? pathExists;
  const timeoutMs = options.probeTimeoutMs ?? 5000;
  const candidates = candidateEndpoints({ env, uid });
  const denied: string[] = [];
  for (const endpoint of candidates) {
    const explicit = endpoint.source === 'DOCKER_HOST' || endpoint.source === 'CONTAINER_HOST';
    if (!explicit && endpoint.transport === 'unix' && !(await exists(endpoint.socketPath))) continue;
    const result = await probeEndpoint(endpoint, env, timeoutMs);
    if (result.ok) return result.engine;
    if (explicit) {
      const hint = result.reason === 'permission' ? ' (permission denied: run cw-containerctl as root, e.g. with sudo)' : '';
      throw new ExitError(`cannot reach the container engine at ${endpoint.display} (${endpoint.source}): ${result.detail}${hint}`);
    }
    if (result.reason === 'permission') denied.push(endpoint.display);
  }
  if (denied.length > 0) {
    throw new ExitError(`permission denied on ${denied.join(' and ')}: run cw-containerctl as root (e.g. with sudo)`);
  }
  throw new ExitError(
    'no container engine found: start rootful Podman (sudo systemctl enable --now podman.socket) or Docker, or set DOCKER_HOST',
  );
}
