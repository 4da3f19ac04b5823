import { open, rm } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import * as path from 'node:path';
import { udpBoundProbe } from '../../supervisor/probes.js';
import type { ChildServiceSpec, WaitFor } from '../../supervisor/types.js';
import { DAEMON_RESTART, type ServiceContext } from '../context.js';
import { installConfig } from '../files.js';
import { tail } from '../run.js';
import { lines, renderTemplateFile, type SafeText } from '../template.js';
import { renderSubnets, selectDhcpNetworks, type DhcpNetwork, type InterfaceTable } from './networks.js';

export const DHCP_SERVER_PORT = 67;

export interface DhcpdFiles {
  config: string;
  leases: string;
  pidFile: string;
}

export function dhcpdFiles(ctx: ServiceContext): DhcpdFiles {
  return {
    config: path.join(ctx.paths.generatedDir, 'dhcpd.conf'),
    leases: path.join(ctx.paths.dhcpDir, 'dhcpd.leases'),
    pidFile: path.join(ctx.paths.runDir, 'dhcpd.pid'),
  };
}

/** Renders dhcpd.conf for the given networks; `hosts` is the block a later cluster model fills. */
export async function renderDhcpdConf(ctx: ServiceContext, networks: readonly DhcpNetwork[], hosts: SafeText = lines([])): Promise<string> {
  const { text } = await renderTemplateFile('dhcpd.conf.template', ctx.paths.templates, {
    subnets: renderSubnets(networks),
    hosts,
  });
  return text;
}

/**
 * ISC dhcpd in the foreground on the cluster interfaces. With no usable interface it waits (and is
 * rechecked) instead of crash-looping; a config that `dhcpd -t` rejects keeps the last good one.
 */
export function dhcpdService(ctx: ServiceContext, interfaces: () => InterfaceTable = networkInterfaces): ChildServiceSpec {
  const files = dhcpdFiles(ctx);
  let listenOn: string[] = [];
  return {
    kind: 'child',
    name: 'dhcpd',
    dependsOn: [],
    essential: true,
    async prepare(): Promise<void | WaitFor> {
      const { networks, notes } = selectDhcpNetworks(interfaces(), ctx.dhcpInterfaces);
      if (networks.length === 0) {
        return { wait: `no cluster network interface${notes.length > 0 ? ` (${notes.join('; ')})` : ''}` };
      }
      for (const note of notes) ctx.log('dhcpd', `skipping ${note}`);
      const text = await renderDhcpdConf(ctx, networks);
      const result = await installConfig(files.config, text, async (candidate) => {
        const check = await ctx.run(ctx.bins.dhcpd, ['-t', '-4', '-q', '-cf', candidate]);
        if (check.exitCode !== 0) throw new Error(tail(check.output, 5) || `dhcpd -t exited with ${check.exitCode}`);
      });
      if (result.refused) ctx.log('dhcpd', `new dhcpd.conf rejected, keeping the last good one: ${result.refused}`);
      else listenOn = networks.map((n) => n.iface);
      if (listenOn.length === 0) listenOn = networks.map((n) => n.iface);
      // dhcpd refuses to start without a leases file, and trusts a stale pid file from a previous run.
      await (await open(files.leases, 'a')).close();
      await rm(files.pidFile, { force: true });
    },
    command: () => ({
      command: ctx.bins.dhcpd,
      args: ['-f', '-d', '-4', '-cf', files.config, '-lf', files.leases, '-pf', files.pidFile, ...listenOn],
      env: ctx.baseEnv,
    }),
    readiness: { probe: udpBoundProbe(DHCP_SERVER_PORT), intervalMs: 100, timeoutMs: 15_000 },
    restart: DAEMON_RESTART,
    reload: { kind: 'restart' },
    stopDeadlineMs: 3000,
    waitRecheckMs: 10_000,
  };
}
