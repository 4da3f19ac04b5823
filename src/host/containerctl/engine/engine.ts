import type { Readable, Writable } from 'node:stream';
import type { EngineIdentity } from './identify.js';

/** An image as cw-containerctl sees it (engine-neutral). */
export interface ImageInfo {
  /** Full id, `sha256:...`. */
  id: string;
  /** Repository tags exactly as the engine names them (Podman: `localhost/NAME:TAG`). */
  repoTags: string[];
  /** Creation time, milliseconds since the epoch. */
  created: number;
  /** Bytes. */
  size: number;
  labels: Record<string, string>;
}

export interface ContainerSummary {
  id: string;
  name: string;
  /** The image reference the container was created from. */
  image: string;
  /** `running`, `exited`, `created`, `restarting`, ... */
  state: string;
  labels: Record<string, string>;
}

export interface ContainerDetails extends ContainerSummary {
  imageId: string;
  running: boolean;
  restarting: boolean;
  restartCount: number;
  exitCode: number;
  /** The engine's health status (`starting`, `healthy`, `unhealthy`), or undefined without a healthcheck. */
  health: string | undefined;
  env: Record<string, string>;
  /** `host` or a network name. */
  networkMode: string;
  /** IPv4 address per attached network. */
  networks: Record<string, string>;
  /** Fixed IPv4 addresses that were asked for at creation, per network. */
  fixedIps: Record<string, string>;
  /** Host paths bound into the container, by container path. */
  mounts: Record<string, string>;
}

/** Everything `start` decides about the container; the adapter only translates it to the engine's API. */
export interface ContainerSpec {
  name: string;
  image: string;
  env: string[];
  labels: Record<string, string>;
  /** `HOST:CONTAINER[:options]` bind mounts. */
  binds: string[];
  /** `host` or a network name. */
  network: string;
  /** Fixed IPv4 address on a named network. */
  ip?: string | undefined;
  /** A second network (the service network of BMCs and switches), attached before the container starts. */
  serviceNetwork?: { network: string; ip?: string | undefined } | undefined;
  capAdd: string[];
  /** Seconds between the stop signal and KILL. */
  stopTimeout: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: string[];
  /** When true (the default), a non-zero exit becomes an ExitError carrying the command's `ERROR:` line. */
  check?: boolean;
  /** Give up waiting for the command's output after this long (the command itself is left to finish). */
  timeoutMs?: number;
}

export interface LogOptions {
  follow: boolean;
  /** Number of lines from the end; all when undefined. */
  tail?: number | undefined;
}

export type StopOutcome = 'stopped' | 'already-stopped';

/** Progress of an upload to the engine, in bytes. */
export type UploadProgress = (sentBytes: number) => void;

/** The one place that talks to Docker or Podman. Every engine quirk lives behind this interface. */
export interface Engine {
  readonly identity: EngineIdentity;

  /** Images carrying the appliance label. */
  listApplianceImages(): Promise<ImageInfo[]>;
  /** Ids of every image in the engine (to tell a fresh load from an image that was already there). */
  listImageIds(): Promise<Set<string>>;
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  /** Streams a `docker save` archive to the engine and returns the names it reports as loaded. */
  loadImage(archive: Readable): Promise<string[]>;
  removeImage(ref: string): Promise<void>;

  /** Containers carrying the appliance label, in any state. */
  listApplianceContainers(): Promise<ContainerSummary[]>;
  inspectContainer(nameOrId: string): Promise<ContainerDetails | undefined>;
  createContainer(spec: ContainerSpec): Promise<string>;
  startContainer(id: string): Promise<void>;
  stopContainer(id: string, timeoutSeconds: number): Promise<StopOutcome>;
  removeContainer(id: string): Promise<void>;

  /** Runs a command in a running container and collects its output. */
  exec(id: string, cmd: string[], options?: ExecOptions): Promise<ExecResult>;
  /** Copies the container's log (demultiplexed) to the given streams; with follow, until the container stops. */
  streamLogs(id: string, options: LogOptions, stdout: Writable, stderr: Writable): Promise<void>;
  /** The last `lines` lines of the container's log, stdout and stderr interleaved. */
  tailLogs(id: string, lines: number): Promise<string>;
}
