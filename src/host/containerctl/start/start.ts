import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ExitError } from '../../../lib/errors.js';
import { isIPv4 } from '../../../lib/ipv4.js';
import { prepareStorage } from '../../../lib/storage-layout.js';
import { isActive, isAppliance, storageOf } from '../appliance.js';
import type { CommandContext } from '../context.js';
import type { ContainerDetails, Engine, ImageInfo } from '../engine/engine.js';
import { describeEngine, engineName } from '../engine/identify.js';
import { shortId, withNewline } from '../format.js';
import { newestTagged } from '../images.js';
import { DEFAULT_CONTAINER_NAME, VERSION_LABEL } from '../labels.js';
import { restoreBackup } from '../restore/restore.js';
import { STOP_TIMEOUT_SECONDS, buildContainerSpec, parseEnvPairs } from './container-spec.js';
import { waitUntilHealthy } from './health.js';
import { appliancePorts, findPortInUse, type PortCheck } from './ports.js';
import { checkStorageDir, resolveStorageDir } from './storage.js';
import { installOwnCertificate, readOwnCertificate } from './tls.js';
import { joinCluster, refuseIfHead, type Joined } from './join.js';
import { MEMBER_NAME_RE } from '../../../lib/etcd-members.js';

export interface StartOptions {
  /** Default `./cw_container_storage`. */
  storageDir?: string | undefined;
  /** Default: the newest loaded cw-headnode image. */
  image?: string | undefined;
  name?: string | undefined;
  /** A named engine network instead of the host's network. */
  network?: string | undefined;
  /** A second engine network for BMCs and switches (`--service-network`), with its fixed address. */
  serviceNetwork?: string | undefined;
  serviceIp?: string | undefined;
  ip?: string | undefined;
  /** Run this head's own etcd member: a new cluster (the first head). */
  etcdMember?: boolean | undefined;
  /** Join the cluster of the head at this address (implies a member of its own). */
  join?: string | undefined;
  /** The member's name (default: the container name) and address (default: --ip). */
  etcdName?: string | undefined;
  etcdAddress?: string | undefined;
  /** An outside etcd cluster's client URLs instead of members on the heads. */
  etcd?: string | undefined;
  /** The address nodes are told in its cluster network (a floating IP that moves with the appliance). */
  headAddress?: string | undefined;
  httpPort?: number | undefined;
  httpsPort?: number | undefined;
  sshPort?: number | undefined;
  tftpPort?: number | undefined;
  /** The DNS server's port, udp and tcp (default 53). */
  dnsPort?: number | undefined;
  dhcpInterfaces?: string[] | undefined;
  env?: string[] | undefined;
  /** Seconds to wait for health. */
  timeout?: number | undefined;
  /** The admin's own HTTPS certificate (chain) and key, installed into the storage directory. */
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** A backup archive to restore into the storage directory before the appliance starts. */
  restore?: string | undefined;
  /** With `restore`: restore over an existing database (kept aside, not deleted). */
  force?: boolean | undefined;
}

export interface StartDeps {
  cwd?: string;
  /** Injected for tests; binds the ports in this process by default. */
  findPortInUse?: (checks: PortCheck[]) => Promise<PortCheck | undefined>;
}

interface Resolved {
  name: string;
  storageDir: string;
  network: string;
  ip: string | undefined;
  headAddress: string | undefined;
  serviceNetwork: string | undefined;
  serviceIp: string | undefined;
  /** The cluster database when it is etcd: a member on this head (joining HEAD, or a new cluster), or outside. */
  etcd: { kind: 'member'; name: string; address: string; join: string | undefined } | { kind: 'external'; endpoints: string } | undefined;
  httpPort: number;
  httpsPort: number;
  sshPort: number;
  tftpPort: number;
  dnsPort: number;
  dhcpInterfaces: string[];
  env: string[];
  timeout: number;
}

function checkPort(value: number | undefined, fallback: number, option: string): number {
  const port = value ?? fallback;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ExitError(`${option} must be a port number (1-65535), not "${value}"`);
  return port;
}

/** Validates the options before anything is touched. */
export function resolveStartOptions(options: StartOptions, cwd: string): Resolved {
  const name = options.name ?? DEFAULT_CONTAINER_NAME;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new ExitError(`invalid container name "${name}"`);
  const network = options.network?.trim() || 'host';
  if (options.ip !== undefined) {
    if (network === 'host') throw new ExitError('--ip needs --network NAME (under host networking the appliance uses the host\'s addresses)');
    if (!isIPv4(options.ip)) throw new ExitError(`--ip must be an IPv4 address, not "${options.ip}"`);
  }
  if (options.headAddress !== undefined && !isIPv4(options.headAddress)) {
    throw new ExitError(`--head-address must be an IPv4 address, not "${options.headAddress}"`);
  }
  const serviceNetwork = options.serviceNetwork?.trim() || undefined;
  if (serviceNetwork !== undefined) {
    if (network === 'host') throw new ExitError('--service-network needs --network NAME (the management network); under host networking the host\'s own interfaces are used');
    if (serviceNetwork === network) throw new ExitError(`--service-network and --network are both ${network}`);
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(serviceNetwork)) throw new ExitError(`invalid --service-network "${serviceNetwork}"`);
  }
  if (options.serviceIp !== undefined) {
    if (serviceNetwork === undefined) throw new ExitError('--service-ip needs --service-network NAME');
    if (!isIPv4(options.serviceIp)) throw new ExitError(`--service-ip must be an IPv4 address, not "${options.serviceIp}"`);
    if (options.serviceIp === options.ip) throw new ExitError(`--service-ip and --ip are both ${options.ip}`);
  }
  const httpPort = checkPort(options.httpPort, 80, '--http-port');
  const httpsPort = checkPort(options.httpsPort, 443, '--https-port');
  const sshPort = checkPort(options.sshPort, 2200, '--ssh-port');
  const tftpPort = checkPort(options.tftpPort, 69, '--tftp-port');
  const dnsPort = checkPort(options.dnsPort, 53, '--dns-port');
  const tcp: [string, number][] = [['--http-port', httpPort], ['--https-port', httpsPort], ['--ssh-port', sshPort], ['--dns-port', dnsPort]];
  for (const [i, [option, port]] of tcp.entries()) {
    for (const [other, otherPort] of tcp.slice(i + 1)) if (port === otherPort) throw new ExitError(`${option} and ${other} are both ${port}`);
  }
  if (tftpPort === 67) throw new ExitError('--tftp-port cannot be 67 (DHCP)');
  if (dnsPort === 67) throw new ExitError('--dns-port cannot be 67 (DHCP)');
  if (dnsPort === tftpPort) throw new ExitError(`--dns-port and --tftp-port are both ${dnsPort}`);
  const dhcpInterfaces = (options.dhcpInterfaces ?? []).flatMap((i) => i.split(/[\s,]+/)).filter(Boolean);
  for (const iface of dhcpInterfaces) {
    if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(iface)) throw new ExitError(`invalid --dhcp-interface "${iface}"`);
  }
  const etcd = resolveEtcd(options, name);
  const timeout = options.timeout ?? 120;
  if (!Number.isFinite(timeout) || timeout <= 0) throw new ExitError(`--timeout must be a positive number of seconds, not "${options.timeout}"`);
  parseEnvPairs(options.env ?? []);
  const storageDir = resolveStorageDir(options.storageDir, cwd);
  if (/[:,]/.test(storageDir)) throw new ExitError(`storage path ${storageDir} must not contain ":" or "," (engine bind mount syntax)`);
  return { name, storageDir, network, ip: options.ip, headAddress: options.headAddress, serviceNetwork, serviceIp: options.serviceIp, etcd, httpPort, httpsPort, sshPort, tftpPort, dnsPort, dhcpInterfaces, env: options.env ?? [], timeout };
}

/** `--etcd-member`, `--join`, `--etcd`: which, with what name and address (README, "Several head nodes"). */
function resolveEtcd(options: StartOptions, name: string): Resolved['etcd'] {
  const member = options.etcdMember === true || options.join !== undefined;
  if (options.etcd !== undefined) {
    if (member) throw new ExitError('--etcd (an outside etcd) excludes --etcd-member and --join (a member on this head)');
    const endpoints = options.etcd.split(',').map((e) => e.trim()).filter(Boolean);
    for (const e of endpoints) if (!/^https?:\/\/[A-Za-z0-9.-]+:\d{1,5}$/.test(e)) throw new ExitError(`--etcd: "${e}" is not a client URL like https://10.0.0.1:2379`);
    if (endpoints.length === 0) throw new ExitError('--etcd needs the client URLs of the etcd cluster, e.g. https://10.0.0.1:2379,https://10.0.0.2:2379');
    return { kind: 'external', endpoints: endpoints.join(',') };
  }
  if (!member) {
    if (options.etcdName !== undefined || options.etcdAddress !== undefined) throw new ExitError('--etcd-name and --etcd-address go with --etcd-member or --join');
    return undefined;
  }
  const memberName = options.etcdName ?? name.toLowerCase();
  if (!MEMBER_NAME_RE.test(memberName)) {
    throw new ExitError(`${options.etcdName === undefined ? `the container name "${name}"` : `--etcd-name "${memberName}"`} is not a head name (a-z, 0-9, -; up to 63): give --etcd-name`);
  }
  const address = options.etcdAddress ?? options.ip;
  if (address === undefined) throw new ExitError('--etcd-address IP is needed: the address the other heads reach this one at (with --network, --ip is used)');
  if (!isIPv4(address)) throw new ExitError(`--etcd-address must be an IPv4 address, not "${address}"`);
  if (options.join !== undefined && options.join.trim() === '') throw new ExitError('--join needs the address of a head of the cluster');
  return { kind: 'member', name: memberName, address, join: options.join?.trim() };
}

/** The container environment that tells the appliance where its database is. */
function etcdEnv(etcd: Resolved['etcd']): string[] {
  if (!etcd) return [];
  if (etcd.kind === 'external') return [`CW_ETCD_ENDPOINTS=${etcd.endpoints}`];
  return [`CW_ETCD_MEMBER=${etcd.name}`, `CW_ETCD_ADDRESS=${etcd.address}`];
}

/** A second appliance may not share the name, the storage, or (either of them) the host's network. */
async function refuseIfRunning(engine: Engine, wanted: Resolved): Promise<ContainerDetails | undefined> {
  for (const summary of await engine.listApplianceContainers()) {
    if (!isActive(summary)) continue;
    const other = await engine.inspectContainer(summary.id);
    if (!other) continue;
    const storage = storageOf(other);
    const sameName = other.name === wanted.name;
    const hostNet = other.networkMode === 'host' || wanted.network === 'host';
    if (sameName || storage === wanted.storageDir || hostNet) {
      throw new ExitError(`cw-headnode is already running (container ${other.name}, storage ${storage}); stop it first`);
    }
  }
  const sameName = await engine.inspectContainer(wanted.name);
  if (sameName && !isAppliance(sameName.labels)) {
    throw new ExitError(`a container named ${wanted.name} already exists and is not a cw-headnode container; choose another --name`);
  }
  if (sameName && isActive(sameName)) {
    throw new ExitError(`cw-headnode is already running (container ${sameName.name}, storage ${storageOf(sameName)}); stop it first`);
  }
  return sameName;
}

/** `start IMAGE:TAG` (no storage argument): a lone argument that names no path but looks like an image is the image. */
function imageGivenAlone(options: StartOptions, cwd: string): StartOptions {
  const lone = options.storageDir;
  if (options.image !== undefined || !lone || !/^[\w.\/-]+:[\w.-]+$/.test(lone) || existsSync(resolve(cwd, lone))) return options;
  return { ...options, storageDir: undefined, image: lone };
}

/**
 * When the image is missing here but another engine on this host has it (built or loaded into the other
 * one), the error says so instead of only "not loaded".
 */
async function missingImageError(engine: Engine, ctx: CommandContext, ref: string | undefined, fallback: string): Promise<ExitError> {
  const others = await (ctx.otherEngines?.() ?? Promise.resolve([])).catch(() => []);
  for (const other of others) {
    let found: string | undefined;
    if (ref) {
      const image = await other.inspectImage(ref).catch(() => undefined);
      if (image && isAppliance(image.labels)) found = ref;
    } else {
      found = newestTagged(await other.listApplianceImages().catch(() => []))?.ref;
    }
    if (found) {
      const here = engineName(engine.identity.kind);
      return new ExitError(
        `image ${found} is in ${engineName(other.identity.kind)}, not ${here}: use --engine ${other.identity.kind} or img-load it into ${here}`,
      );
    }
  }
  return new ExitError(fallback);
}

/** The image to run: the one asked for (must be loaded and ours), else the newest tagged one by version. */
async function chooseImage(engine: Engine, ctx: CommandContext, ref: string | undefined): Promise<{ ref: string; image: ImageInfo }> {
  if (ref) {
    const image = await engine.inspectImage(ref);
    if (!image) throw await missingImageError(engine, ctx, ref, `image ${ref} is not loaded (see cw-containerctl img-ls)`);
    if (!isAppliance(image.labels)) throw new ExitError(`image ${ref} is not a cw-headnode image`);
    return { ref, image };
  }
  const images = await engine.listApplianceImages();
  const newest = newestTagged(images);
  if (newest) return newest;
  const leftovers = images.length > 0 ? ` (only untagged leftovers: ${images.map((i) => shortId(i.id)).join(', ')})` : '';
  throw await missingImageError(
    engine,
    ctx,
    undefined,
    `no ${leftovers ? 'tagged ' : ''}cw-headnode image is loaded${leftovers} (load one with cw-containerctl img-load FILE)`,
  );
}

/**
 * `cw-containerctl start [STORAGE_DIR] [IMAGE:TAG]`: creates the storage directory and the container,
 * starts it and waits until it is healthy. Every refusal happens before anything is changed.
 */
export async function start(options: StartOptions, ctx: CommandContext, deps: StartDeps = {}): Promise<void> {
  const cwd = deps.cwd ?? process.cwd();
  options = imageGivenAlone(options, cwd);
  const wanted = resolveStartOptions(options, cwd);
  const ownCertificate = await readOwnCertificate(options.tlsCert, options.tlsKey, cwd);
  if (options.force && !options.restore) throw new ExitError('--force goes with --restore FILE only');
  const storageExists = await checkStorageDir(wanted.storageDir);
  const engine = await ctx.engine();
  const previous = await refuseIfRunning(engine, wanted);
  const { ref: imageRef, image } = await chooseImage(engine, ctx, options.image);
  if (wanted.network === 'host') {
    const busy = await (deps.findPortInUse ?? findPortInUse)(
      appliancePorts({ http: wanted.httpPort, https: wanted.httpsPort, ssh: wanted.sshPort, tftp: wanted.tftpPort, dns: wanted.dnsPort }),
    );
    if (busy) throw new ExitError(`port ${busy.port}/${busy.protocol} is already in use on this host (${busy.hint})`);
  }

  const spec = buildContainerSpec({
    name: wanted.name,
    image: imageRef,
    storageDir: wanted.storageDir,
    engineKind: engine.identity.kind,
    network: wanted.network,
    ip: wanted.ip,
    headAddress: wanted.headAddress,
    serviceNetwork: wanted.serviceNetwork,
    serviceIp: wanted.serviceIp,
    httpPort: wanted.httpPort,
    httpsPort: wanted.httpsPort,
    sshPort: wanted.sshPort,
    tftpPort: wanted.tftpPort,
    dnsPort: wanted.dnsPort,
    dhcpInterfaces: wanted.dhcpInterfaces,
    extraEnv: [...etcdEnv(wanted.etcd), ...wanted.env],
  });

  // Said once every refusal is behind (a refusal stays one ERROR line; those that concern the engine name it).
  ctx.stderr.write(`${describeEngine(engine.identity)}\n`);
  // The same layout and modes the appliance prepares; an older version's 0755 private directories are tightened.
  if (options.restore) {
    const file = resolve(cwd, options.restore);
    const { manifest, keptAside } = await restoreBackup({ file, storageDir: wanted.storageDir, force: options.force === true, imageVersion: image.labels[VERSION_LABEL] });
    for (const dir of keptAside) ctx.stdout.write(`Kept the old ${dir.replace(/\.before-restore-.*$/, '')} aside as ${join(wanted.storageDir, dir)}\n`);
    ctx.stdout.write(`Restored ${file} (made ${manifest.createdAt} by cw-headnode ${manifest.productVersion}, schema ${manifest.schemaVersion}) into ${wanted.storageDir}\n`);
  }
  await prepareStorage(wanted.storageDir);
  if (!storageExists) ctx.stdout.write(`Created storage directory ${wanted.storageDir}\n`);
  if (ownCertificate) {
    await installOwnCertificate(wanted.storageDir, ownCertificate);
    ctx.stdout.write(`Installed the HTTPS certificate ${ownCertificate.pin} (valid until ${ownCertificate.validTo.toISOString().slice(0, 10)})\n`);
  }
  let joined: Joined | undefined;
  if (wanted.etcd?.kind === 'member' && wanted.etcd.join !== undefined) {
    refuseIfHead(wanted.storageDir);
    joined = await joinCluster({ head: wanted.etcd.join, name: wanted.etcd.name, address: wanted.etcd.address, storageDir: wanted.storageDir }, ctx.env);
    ctx.stdout.write(`Joined the cluster of ${wanted.etcd.join} as head ${wanted.etcd.name} (etcd members: ${joined.initialCluster})\n`);
  }
  // The storage directory holds all state, so a stopped container is simply replaced.
  if (previous) await engine.removeContainer(previous.id);
  let id: string;
  try {
    id = await engine.createContainer(spec);
    await engine.startContainer(id);
  } catch (err) {
    // A member that will never start would keep counting towards the others' quorum: take it back out.
    if (joined) await joined.undo().catch((undoErr: unknown) => ctx.stderr.write(`could not remove the member again: ${(undoErr as Error).message}\n`));
    throw err;
  }

  const result = await waitUntilHealthy(engine, id, { timeoutSeconds: wanted.timeout, clock: ctx.clock, out: ctx.stdout });
  if (!result.healthy) {
    const log = await engine.tailLogs(id, 20).catch(() => '');
    if (log.trim()) ctx.stderr.write(`Last log lines of ${wanted.name}:\n${withNewline(log)}`);
    // A container that keeps exiting would be restarted forever by its restart policy: stop it. One that
    // runs but is unhealthy stays up so its state can be inspected (status, logs, shell).
    let outcome = `container ${wanted.name} left running for inspection`;
    if (result.exited) {
      await engine.stopContainer(id, STOP_TIMEOUT_SECONDS).catch(() => undefined);
      outcome = `container ${wanted.name} stopped`;
    }
    throw new ExitError(`cw-headnode did not become healthy: ${result.reason} (${outcome}; see cw-containerctl logs)`);
  }
  ctx.stdout.write(`cw-headnode is running: container ${wanted.name}, image ${imageRef}, storage ${wanted.storageDir}\n`);
  ctx.stdout.write(`Healthy after ${result.seconds} s\n`);
  const network = wanted.network === 'host' ? 'host' : `${wanted.network}${wanted.ip ? ` (${wanted.ip})` : ''}`;
  ctx.stdout.write(`Network: ${network}${wanted.headAddress ? `; nodes are told head address ${wanted.headAddress}` : ''}\n`);
  if (wanted.serviceNetwork) ctx.stdout.write(`Service network: ${wanted.serviceNetwork}${wanted.serviceIp ? ` (${wanted.serviceIp})` : ''}\n`);
  const dhcp = wanted.dhcpInterfaces.length > 0 ? wanted.dhcpInterfaces.join(' ') : 'auto';
  ctx.stdout.write(
    `Ports: http ${wanted.httpPort}/tcp, https ${wanted.httpsPort}/tcp, ssh ${wanted.sshPort}/tcp, tftp ${wanted.tftpPort}/udp, dhcp 67/udp (interfaces: ${dhcp}), dns ${wanted.dnsPort}/udp+tcp\n`,
  );
}
