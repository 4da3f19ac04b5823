import { Writable, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { ExitError, errorMessage } from '../../../lib/errors.js';
import { APPLIANCE_LABEL } from '../labels.js';
import type {
  ContainerDetails,
  ContainerSpec,
  ContainerSummary,
  Engine,
  ExecOptions,
  ExecResult,
  ImageInfo,
  LogOptions,
  StopOutcome,
} from './engine.js';
import type { EngineIdentity } from './identify.js';
import { demuxFrames, errorLine, parseLoadReply } from './replies.js';

/** The shape of errors docker-modem rejects with. */
interface ModemError extends Error {
  statusCode?: number;
  json?: unknown;
  code?: string;
}

function statusOf(err: unknown): number | undefined {
  return typeof (err as ModemError)?.statusCode === 'number' ? (err as ModemError).statusCode : undefined;
}

/** The engine's own explanation from an error reply (`{"message": ...}`), first line only. */
function engineReason(err: unknown): string {
  const json = (err as ModemError)?.json;
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return (json as { message: string }).message.split('\n')[0]!.trim();
  }
  if (Buffer.isBuffer(json)) {
    const text = json.toString('utf8').trim();
    if (text) return text.split('\n')[0]!;
  }
  // Stream requests carry the engine's message only in the error text: keep its first line, minus the
  // modem's "(HTTP code 500) server error - " prefix.
  const first = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
  return first.replace(/^\(HTTP code \d+\)\s*(?:[^-]*-\s*)?/, '').replace(/:$/, '') || errorMessage(err);
}

/** Wraps an engine failure as a one-line ExitError naming what was being done. */
function engineFailure(what: string, err: unknown): ExitError {
  if (err instanceof ExitError) return err;
  return new ExitError(`${what}: ${engineReason(err)}`);
}

function labelsOf(value: unknown): Record<string, string> {
  if (!value || typeof value !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (typeof v === 'string') out[k] = v;
  return out;
}

function envMap(list: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(list)) return out;
  for (const item of list) {
    if (typeof item !== 'string') continue;
    const eq = item.indexOf('=');
    if (eq > 0) out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function realTags(tags: unknown): string[] {
  return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string' && t !== '<none>:<none>') : [];
}

/** A Writable that keeps everything written to it. */
class Collector extends Writable {
  private readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    done();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function streamEnded(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve();
    };
    stream.once('end', () => finish());
    stream.once('close', () => finish());
    stream.once('error', (err: Error) => finish(err));
  });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

const APPLIANCE_FILTER = { label: [`${APPLIANCE_LABEL}=true`] };

/** The dockerode-backed Engine for Docker and Podman's Docker-compatible API. */
export class DockerodeEngine implements Engine {
  constructor(
    private readonly docker: Docker,
    readonly identity: EngineIdentity,
  ) {}

  private toImage(raw: {
    Id?: unknown;
    RepoTags?: unknown;
    Created?: unknown;
    Size?: unknown;
    Labels?: unknown;
    Config?: { Labels?: unknown } | null;
  }): ImageInfo {
    // Listings give Created in seconds; inspect gives an RFC 3339 string.
    const created =
      typeof raw.Created === 'number' ? raw.Created * 1000 : typeof raw.Created === 'string' ? Date.parse(raw.Created) : 0;
    return {
      id: typeof raw.Id === 'string' ? raw.Id : '',
      repoTags: realTags(raw.RepoTags),
      created: Number.isFinite(created) ? created : 0,
      size: typeof raw.Size === 'number' ? raw.Size : 0,
      labels: labelsOf(raw.Labels ?? raw.Config?.Labels),
    };
  }

  async listApplianceImages(): Promise<ImageInfo[]> {
    try {
      const images = await this.docker.listImages({ filters: APPLIANCE_FILTER });
      // Podman may omit list labels in old versions; keep the label check on our side too.
      return images.map((i) => this.toImage(i)).filter((i) => i.labels[APPLIANCE_LABEL] === 'true');
    } catch (err) {
      throw engineFailure('cannot list images', err);
    }
  }

  async listImageIds(): Promise<Set<string>> {
    try {
      const images = await this.docker.listImages();
      return new Set(images.map((i) => i.Id));
    } catch (err) {
      throw engineFailure('cannot list images', err);
    }
  }

  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    try {
      return this.toImage(await this.docker.getImage(ref).inspect());
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw engineFailure(`cannot inspect image ${ref}`, err);
    }
  }

  async loadImage(archive: Readable): Promise<string[]> {
    let reply: NodeJS.ReadableStream;
    try {
      // quiet: the per-layer progress Docker would send is useless to us (Podman sends none at all);
      // the caller measures progress from the bytes it uploads.
      reply = await this.docker.loadImage(archive, { quiet: true });
    } catch (err) {
      throw engineFailure('the engine could not load the image', err);
    }
    const parsed = parseLoadReply(await readAll(reply));
    if (parsed.error) throw new ExitError(`the engine could not load the image: ${parsed.error.split('\n')[0]}`);
    if (parsed.loaded.length === 0) throw new ExitError('the engine did not report any loaded image');
    return parsed.loaded;
  }

  async removeImage(ref: string): Promise<void> {
    try {
      await this.docker.getImage(ref).remove({ force: false });
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw engineFailure(`cannot remove image ${ref}`, err);
    }
  }

  async listApplianceContainers(): Promise<ContainerSummary[]> {
    try {
      const list = await this.docker.listContainers({ all: true, filters: APPLIANCE_FILTER });
      return list
        .map((c) => ({
          id: c.Id,
          name: (c.Names?.[0] ?? c.Id).replace(/^\//, ''),
          image: c.Image,
          state: String(c.State ?? '').toLowerCase(),
          labels: labelsOf(c.Labels),
        }))
        .filter((c) => c.labels[APPLIANCE_LABEL] === 'true');
    } catch (err) {
      throw engineFailure('cannot list containers', err);
    }
  }

  async inspectContainer(nameOrId: string): Promise<ContainerDetails | undefined> {
    let raw: Docker.ContainerInspectInfo;
    try {
      raw = await this.docker.getContainer(nameOrId).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw engineFailure(`cannot inspect container ${nameOrId}`, err);
    }
    const state = raw.State ?? ({} as Docker.ContainerInspectInfo['State']);
    const networks: Record<string, string> = {};
    const fixedIps: Record<string, string> = {};
    for (const [name, net] of Object.entries(raw.NetworkSettings?.Networks ?? {})) {
      if (net?.IPAddress) networks[name] = net.IPAddress;
      const fixed = (net?.IPAMConfig as { IPv4Address?: unknown } | null | undefined)?.IPv4Address;
      if (typeof fixed === 'string' && fixed) fixedIps[name] = fixed;
    }
    const mounts: Record<string, string> = {};
    for (const m of raw.Mounts ?? []) if (m.Destination && m.Source) mounts[m.Destination] = m.Source;
    return {
      id: raw.Id,
      name: raw.Name.replace(/^\//, ''),
      image: raw.Config?.Image ?? raw.Image,
      imageId: raw.Image,
      state: String(state.Status ?? '').toLowerCase(),
      running: Boolean(state.Running),
      restarting: Boolean(state.Restarting),
      restartCount: typeof raw.RestartCount === 'number' ? raw.RestartCount : 0,
      exitCode: typeof state.ExitCode === 'number' ? state.ExitCode : 0,
      health: state.Health?.Status ? String(state.Health.Status).toLowerCase() : undefined,
      env: envMap(raw.Config?.Env),
      labels: labelsOf(raw.Config?.Labels),
      networkMode: raw.HostConfig?.NetworkMode ?? '',
      networks,
      fixedIps,
      mounts,
    };
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    const options: Docker.ContainerCreateOptions = {
      name: spec.name,
      Image: spec.image,
      Env: spec.env,
      Labels: spec.labels,
      Tty: false,
      AttachStdin: false,
      OpenStdin: false,
      // Explicit, so the engine's own default (10 s Docker, 10 s Podman, configurable) never decides.
      StopTimeout: spec.stopTimeout,
      HostConfig: {
        Binds: spec.binds,
        NetworkMode: spec.network,
        CapDrop: ['ALL'],
        CapAdd: spec.capAdd,
        RestartPolicy: { Name: 'unless-stopped' },
        // tini is PID 1 inside the image; a second init from the engine would only add a layer.
        Init: false,
      },
    };
    if (spec.network !== 'host' && spec.ip) {
      options.NetworkingConfig = { EndpointsConfig: { [spec.network]: { IPAMConfig: { IPv4Address: spec.ip } } } };
    }
    let id: string;
    try {
      id = (await this.docker.createContainer(options)).id;
    } catch (err) {
      throw engineFailure(`cannot create container ${spec.name}`, err);
    }
    // The engine API takes one network at creation (Docker before API 1.44, Podman's compat API): the
    // service network is connected before the first start, so the appliance boots with both.
    const service = spec.serviceNetwork;
    if (service) {
      try {
        await this.docker.getNetwork(service.network).connect({
          Container: id,
          EndpointConfig: service.ip ? { IPAMConfig: { IPv4Address: service.ip } } : {},
        });
      } catch (err) {
        await this.docker.getContainer(id).remove({ force: true }).catch(() => undefined);
        throw engineFailure(`cannot attach container ${spec.name} to the service network ${service.network}`, err);
      }
    }
    return id;
  }

  async startContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if (statusOf(err) === 304) return;
      throw engineFailure(`cannot start container ${id}`, err);
    }
  }

  async stopContainer(id: string, timeoutSeconds: number): Promise<StopOutcome> {
    try {
      // Always pass t: without it the engine applies its own default rather than ours.
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.round(timeoutSeconds)) });
      return 'stopped';
    } catch (err) {
      // 304 Not Modified: the container was already stopped.
      if (statusOf(err) === 304) return 'already-stopped';
      throw engineFailure(`cannot stop container ${id}`, err);
    }
  }

  async removeContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: false, v: false });
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw engineFailure(`cannot remove container ${id}`, err);
    }
  }

  async exec(id: string, cmd: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const check = options.check ?? true;
    const stdout = new Collector();
    const stderr = new Collector();
    let execId: Docker.Exec;
    try {
      execId = await this.docker.getContainer(id).exec({
        Cmd: cmd,
        Env: options.env ?? [],
        AttachStdin: false,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      const stream = (await execId.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream & { destroy(err?: Error): void };
      const ended = streamEnded(stream);
      this.docker.modem.demuxStream(stream, stdout, stderr);
      const timer = options.timeoutMs
        ? setTimeout(() => stream.destroy(new ExitError(`${cmd.join(' ')} gave no answer within ${options.timeoutMs} ms`)), options.timeoutMs)
        : undefined;
      try {
        await ended;
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      if (statusOf(err) === 409 || statusOf(err) === 500) {
        throw new ExitError(`cannot run ${cmd[0]} in container ${id}: ${engineReason(err)}`);
      }
      throw engineFailure(`cannot run ${cmd[0]} in container ${id}`, err);
    }
    // The output stream may close a moment before the engine records the exit code (seen with Podman).
    let info = await execId.inspect();
    for (let i = 0; i < 100 && info.Running; i++) {
      await sleep(20);
      info = await execId.inspect();
    }
    const result: ExecResult = {
      exitCode: typeof info.ExitCode === 'number' ? info.ExitCode : -1,
      stdout: stdout.text(),
      stderr: stderr.text(),
    };
    if (check && result.exitCode !== 0) {
      // The appliance's `ERROR:` line; else whatever the command (or the engine's runtime) last said.
      const lastLine = (text: string) => text.trim().split('\n').at(-1)?.trim() ?? '';
      const marked = errorLine(result.stderr);
      if (marked) throw new ExitError(marked);
      const said = lastLine(result.stderr) || lastLine(result.stdout);
      throw new ExitError(`${cmd.join(' ')} exited with code ${result.exitCode}${said ? `: ${said}` : ''}`);
    }
    return result;
  }

  async streamLogs(id: string, options: LogOptions, stdout: Writable, stderr: Writable): Promise<void> {
    const container = this.docker.getContainer(id);
    const query = { stdout: true, stderr: true, ...(options.tail !== undefined ? { tail: options.tail } : {}) };
    try {
      if (options.follow) {
        const stream = await container.logs({ ...query, follow: true });
        const ended = streamEnded(stream);
        this.docker.modem.demuxStream(stream, stdout, stderr);
        await ended;
        return;
      }
      const buffer = await container.logs({ ...query, follow: false });
      for (const frame of demuxFrames(Buffer.isBuffer(buffer) ? buffer : Buffer.from(String(buffer)))) {
        (frame.stream === 2 ? stderr : stdout).write(frame.data);
      }
    } catch (err) {
      throw engineFailure(`cannot read the log of container ${id}`, err);
    }
  }

  async tailLogs(id: string, lines: number): Promise<string> {
    const all = new Collector();
    await this.streamLogs(id, { follow: false, tail: lines }, all, all);
    return all.text();
  }
}
