import { ExitError } from '../../../lib/errors.js';
import { findRunningAppliance, networkOf, storageOf } from '../appliance.js';
import type { CommandContext } from '../context.js';
import type { ContainerDetails, ImageInfo } from '../engine/engine.js';
import { shellQuote } from '../../../lib/shell-quote.js';
import { DEFAULT_CONTAINER_NAME, FIXED_IP_LABEL, VERSION_LABEL } from '../labels.js';
import { STOP_TIMEOUT_SECONDS } from '../start/container-spec.js';

export interface StopOptions {
  name?: string | undefined;
  /** Seconds the engine waits after SIGTERM before killing (default 10). */
  timeout?: number | undefined;
}

/** The name to restart from: the reference the container was created with if it still names the image. */
export function restartImageRef(container: ContainerDetails, image: ImageInfo | undefined): string {
  if (!image) return container.image;
  if (image.repoTags.includes(container.image)) return container.image;
  // Podman resolves short names to localhost/...; keep the engine's full name then.
  const qualified = image.repoTags.find((t) => t.endsWith(`/${container.image}`));
  return qualified ?? image.repoTags[0] ?? container.image;
}

/** The options `start` needs to recreate this container as it was (only those that differ from the defaults). */
export function restartOptions(container: ContainerDetails): string[] {
  const options: string[] = [];
  if (container.name !== DEFAULT_CONTAINER_NAME) options.push('--name', container.name);
  const network = networkOf(container);
  if (network !== 'host') options.push('--network', network);
  const ip = container.fixedIps[network] ?? container.labels[FIXED_IP_LABEL];
  if (network !== 'host' && ip) options.push('--ip', ip);
  const ports: [string, string, string][] = [
    ['CW_HTTP_PORT', '80', '--http-port'],
    ['CW_HTTPS_PORT', '443', '--https-port'],
    ['CW_SSH_PORT', '2200', '--ssh-port'],
    ['CW_TFTP_PORT', '69', '--tftp-port'],
    ['CW_DNS_PORT', '53', '--dns-port'],
  ];
  for (const [key, fallback, option] of ports) {
    const value = container.env[key];
    if (value && value !== fallback) options.push(option, value);
  }
  if (container.env.CW_HEAD_ADDRESS) options.push('--head-address', container.env.CW_HEAD_ADDRESS);
  for (const iface of (container.env.CW_DHCP_INTERFACES ?? '').split(/\s+/).filter(Boolean)) options.push('--dhcp-interface', iface);
  return options;
}

/** The exact command that starts the same appliance again on the same storage. */
export function restartCommand(storageDir: string, imageRef: string, options: string[] = []): string {
  return ['cw-containerctl', 'start', storageDir, imageRef, ...options].map(shellQuote).join(' ');
}

/** `cw-containerctl stop`: stops the running appliance and says how to start it again without data loss. */
export async function stop(options: StopOptions, ctx: CommandContext): Promise<void> {
  const timeout = options.timeout ?? STOP_TIMEOUT_SECONDS;
  if (!Number.isFinite(timeout) || timeout < 0) throw new ExitError(`--timeout must be a number of seconds, not "${options.timeout}"`);
  const engine = await ctx.engine();
  const container = await findRunningAppliance(engine, options.name);
  const image = await engine.inspectImage(container.imageId);
  const began = ctx.clock.now();
  await engine.stopContainer(container.id, timeout);
  const seconds = ((ctx.clock.now() - began) / 1000).toFixed(1);
  const storage = storageOf(container);
  const imageRef = restartImageRef(container, image);
  const version = image?.labels[VERSION_LABEL];
  ctx.stdout.write(`Stopped cw-headnode (container ${container.name}) in ${seconds} s\n`);
  ctx.stdout.write(`Storage directory: ${storage}\n`);
  ctx.stdout.write(`Image: ${imageRef}${version ? ` (version ${version})` : ''}\n`);
  ctx.stdout.write('To start it again with the same data:\n');
  ctx.stdout.write(`    ${restartCommand(storage, imageRef, restartOptions(container))}\n`);
}
