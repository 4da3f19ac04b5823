// An in-memory Engine for command tests: records what the commands ask for, answers from plain data.
import type { Writable } from 'node:stream';
import { ExitError } from '../../../src/lib/errors.js';
import type { CommandContext, Output } from '../../../src/host/containerctl/context.js';
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
} from '../../../src/host/containerctl/engine/engine.js';
import type { EngineIdentity, EngineKind } from '../../../src/host/containerctl/engine/identify.js';

export type ExecHandler = (cmd: string[], env: string[]) => ExecResult;

export class MemoryEngine implements Engine {
  readonly identity: EngineIdentity;
  images: ImageInfo[] = [];
  containers: ContainerDetails[] = [];
  created: ContainerSpec[] = [];
  calls: string[] = [];
  execs: { id: string; cmd: string[]; env: string[] }[] = [];
  onExec: ExecHandler = () => ({ exitCode: 0, stdout: '{"status":"healthy","services":{}}\n', stderr: '' });
  log = '[supervisor] started\n';
  /** The engine's health status a started container reports. */
  healthAfterStart: string | undefined = 'healthy';

  constructor(kind: EngineKind = 'docker') {
    this.identity = {
      kind,
      version: kind === 'podman' ? '4.3.1' : '20.10.24',
      apiVersion: '1.41',
      rootless: false,
      endpoint: { transport: 'unix', socketPath: '/var/run/docker.sock', source: 'docker-rootful', display: 'unix:///var/run/docker.sock' },
    };
  }

  addImage(tag: string, created: number, labels: Record<string, string> = { 'io.cw-headnode.appliance': 'true' }): ImageInfo {
    const image: ImageInfo = { id: `sha256:${String(this.images.length + 1).repeat(64).slice(0, 64)}`, repoTags: [tag], created, size: 250e6, labels };
    this.images.push(image);
    return image;
  }

  addContainer(partial: Partial<ContainerDetails> & { name: string }): ContainerDetails {
    const container: ContainerDetails = {
      id: `id-${partial.name}`,
      image: 'cw-headnode:1.0',
      imageId: this.images[0]?.id ?? 'sha256:none',
      state: 'running',
      running: true,
      restarting: false,
      restartCount: 0,
      exitCode: 0,
      health: 'healthy',
      env: { CW_HTTP_PORT: '80', CW_SSH_PORT: '2200', CW_TFTP_PORT: '69', CW_DHCP_INTERFACES: '' },
      labels: { 'io.cw-headnode.appliance': 'true', 'io.cw-headnode.storage': '/srv/cw' },
      networkMode: 'host',
      networks: {},
      fixedIps: {},
      mounts: { '/var/lib/cw': '/srv/cw' },
      ...partial,
    };
    this.containers.push(container);
    return container;
  }

  private find(ref: string): ContainerDetails | undefined {
    return this.containers.find((c) => c.id === ref || c.name === ref);
  }

  async listApplianceImages(): Promise<ImageInfo[]> {
    this.calls.push('listApplianceImages');
    return this.images.filter((i) => i.labels['io.cw-headnode.appliance'] === 'true');
  }
  async listImageIds(): Promise<Set<string>> {
    return new Set(this.images.map((i) => i.id));
  }
  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    return this.images.find((i) => i.id === ref || i.repoTags.includes(ref));
  }
  async loadImage(): Promise<string[]> {
    this.calls.push('loadImage');
    return [];
  }
  async removeImage(ref: string): Promise<void> {
    this.calls.push(`removeImage ${ref}`);
  }
  async listApplianceContainers(): Promise<ContainerSummary[]> {
    this.calls.push('listApplianceContainers');
    return this.containers
      .filter((c) => c.labels['io.cw-headnode.appliance'] === 'true')
      .map(({ id, name, image, state, labels }) => ({ id, name, image, state, labels }));
  }
  async inspectContainer(ref: string): Promise<ContainerDetails | undefined> {
    return this.find(ref);
  }
  async createContainer(spec: ContainerSpec): Promise<string> {
    this.calls.push(`create ${spec.name}`);
    this.created.push(spec);
    const env = Object.fromEntries(spec.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    this.addContainer({
      name: spec.name,
      id: `id-${spec.name}-${this.created.length}`,
      image: spec.image,
      state: 'created',
      running: false,
      health: 'starting',
      env,
      labels: spec.labels,
      networkMode: spec.network,
    });
    return `id-${spec.name}-${this.created.length}`;
  }
  async startContainer(id: string): Promise<void> {
    this.calls.push(`start ${id}`);
    const c = this.find(id);
    if (c) Object.assign(c, { state: 'running', running: true, health: this.healthAfterStart });
  }
  async stopContainer(id: string, timeoutSeconds: number): Promise<StopOutcome> {
    this.calls.push(`stop ${id} t=${timeoutSeconds}`);
    const c = this.find(id);
    if (!c?.running) return 'already-stopped';
    Object.assign(c, { state: 'exited', running: false });
    return 'stopped';
  }
  async removeContainer(id: string): Promise<void> {
    this.calls.push(`remove ${id}`);
    this.containers = this.containers.filter((c) => c.id !== id);
  }
  async exec(id: string, cmd: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const env = options.env ?? [];
    this.execs.push({ id, cmd, env });
    const result = this.onExec(cmd, env);
    if ((options.check ?? true) && result.exitCode !== 0) {
      const line = result.stderr.split('\n').find((l) => l.startsWith('ERROR:'));
      throw new ExitError(line ? line.slice(6).trim() : `exit ${result.exitCode}`);
    }
    return result;
  }
  async streamLogs(_id: string, _options: LogOptions, stdout: Writable): Promise<void> {
    stdout.write(this.log);
  }
  async tailLogs(): Promise<string> {
    return this.log;
  }
}

/** Collects everything written. */
export class TextSink implements Output {
  text = '';
  isTTY = false;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

export interface TestContext extends CommandContext {
  out: TextSink;
  err: TextSink;
  engineCalls: number;
}

/** A command context around an engine, with captured output and a clock that advances on sleep. */
export function testContext(engine: Engine | undefined, env: NodeJS.ProcessEnv = {}): TestContext {
  const out = new TextSink();
  const err = new TextSink();
  let now = Date.parse('2026-01-01T00:00:00Z');
  const ctx: TestContext = {
    out,
    err,
    engineCalls: 0,
    stdout: out,
    stderr: err,
    env,
    clock: {
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
    },
    engine: async () => {
      ctx.engineCalls++;
      if (!engine) throw new Error('no engine in this test');
      return engine;
    },
  };
  return ctx;
}
