import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { ExitError, errorMessage } from '../../../lib/errors.js';
import { storagePaths } from '../../../lib/storage-layout.js';
import { parsePin, type CertificatePin } from '../../../lib/tls.js';
import { findRunningAppliance, networkOf, runAppliance, storageOf } from '../appliance.js';
import type { CommandContext } from '../context.js';
import type { ContainerDetails, Engine } from '../engine/engine.js';
import { chooseAuthUser, invokingUser, networkAddress, rankHostAddresses, renderToolConfig, type AddressChoice } from './settings.js';

export interface ToolConfigOptions {
  name?: string | undefined;
}

export interface ToolConfigDeps {
  interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/** The admins' names from `cw-appliance admin-ls`; undefined when they cannot be read. */
async function adminNames(engine: Engine, container: ContainerDetails): Promise<string[] | undefined> {
  try {
    const listing = JSON.parse((await runAppliance(engine, container, ['admin-ls'])).stdout) as unknown;
    if (!Array.isArray(listing)) return undefined;
    return listing.map((a) => (a as { name?: unknown })?.name).filter((n): n is string => typeof n === 'string');
  } catch {
    return undefined;
  }
}

/** The pin of the certificate the appliance serves (`cw-appliance tls-info`), or why it is unknown. */
async function certificatePin(engine: Engine, container: ContainerDetails): Promise<{ pin?: CertificatePin; problem?: string }> {
  try {
    const result = await runAppliance(engine, container, ['tls-info']);
    const pin = parsePin(String((JSON.parse(result.stdout) as { pin?: unknown }).pin ?? ''));
    return pin ? { pin } : { problem: 'cw-appliance tls-info gave no fingerprint' };
  } catch (err) {
    return { problem: errorMessage(err) };
  }
}

/** `cw-containerctl tool-config`: prints ssh-agent advice and a proposed `~/.cw/settings.ini`. */
export async function toolConfig(options: ToolConfigOptions, ctx: CommandContext, deps: ToolConfigDeps = {}): Promise<void> {
  const engine = await ctx.engine();
  const container = await findRunningAppliance(engine, options.name);
  const httpsPort = Number(container.env.CW_HTTPS_PORT ?? '443') || 443;
  const network = networkOf(container);
  const hostNetwork = network === 'host';
  let alternatives: { address: string; via: string }[] = [];
  let chosen: AddressChoice | undefined;
  const headAddress = container.env.CW_HEAD_ADDRESS;
  if (hostNetwork) {
    const ranked = rankHostAddresses((deps.interfaces ?? networkInterfaces)());
    // A head address (the floating IP) is where the appliance is, whichever host runs it.
    const head = headAddress ? { address: headAddress, via: 'the head address' } : undefined;
    chosen = head ?? ranked[0];
    alternatives = ranked.filter((a) => a !== chosen && a.address !== headAddress);
  } else {
    chosen = networkAddress(container.networks, network);
  }
  if (!chosen) {
    throw new ExitError(hostNetwork ? 'no usable IPv4 address on this host\'s interfaces' : `container ${container.name} has no IPv4 address on network ${network}`);
  }
  const { user, note } = chooseAuthUser(await adminNames(engine, container), invokingUser(ctx.env));
  const certFile = storagePaths(storageOf(container)).tlsCertFile;
  const { pin, problem } = await certificatePin(engine, container);
  const dnsPort = container.env.CW_DNS_PORT ? Number(container.env.CW_DNS_PORT) || undefined : undefined;
  ctx.stdout.write(renderToolConfig({ address: chosen.address, httpsPort, user, pin }, alternatives, note, { certFile, ...(problem ? { problem } : {}) }, dnsPort));
}
