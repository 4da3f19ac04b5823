import { applianceHealth, networkOf, storageOf, type HealthSummary } from '../appliance.js';
import type { CommandContext } from '../context.js';
import type { ContainerDetails } from '../engine/engine.js';
import { describeEngine } from '../engine/identify.js';
import { renderTable } from '../format.js';

export interface StatusOptions {
  /** Only this container. */
  name?: string | undefined;
}

/** `http 80/tcp, https 443/tcp, ssh 2200/tcp, tftp 69/udp, dhcp 67/udp, dns 53/udp+tcp` from the container's environment. */
export function portsOf(container: ContainerDetails): string {
  const env = container.env;
  return [
    `http ${env.CW_HTTP_PORT ?? '80'}/tcp`,
    `https ${env.CW_HTTPS_PORT ?? '443'}/tcp`,
    `ssh ${env.CW_SSH_PORT ?? '2200'}/tcp`,
    `tftp ${env.CW_TFTP_PORT ?? '69'}/udp`,
    'dhcp 67/udp',
    // Containers of older releases have no DNS server.
    ...(env.CW_DNS_PORT ? [`dns ${env.CW_DNS_PORT}/udp+tcp`] : []),
  ].join(', ');
}

/** The health column: the supervisor's own answer when running, else the engine's status. */
export function healthColumn(container: ContainerDetails, report: HealthSummary | undefined): string {
  if (!container.running) return '-';
  return report?.status ?? container.health ?? 'unknown';
}

/** `cw-containerctl status`: every cw-headnode container (any state) with health and per-service states. */
export async function status(options: StatusOptions, ctx: CommandContext): Promise<void> {
  const engine = await ctx.engine();
  // On stderr, so the table on stdout stays the same for scripts.
  ctx.stderr.write(`${describeEngine(engine.identity)}\n`);
  const summaries = (await engine.listApplianceContainers()).filter((c) => !options.name || c.name === options.name);
  if (summaries.length === 0) {
    ctx.stdout.write('No cw-headnode containers.\n');
    return;
  }
  const rows: string[][] = [];
  const services: { name: string; report: HealthSummary }[] = [];
  for (const summary of summaries.sort((a, b) => a.name.localeCompare(b.name))) {
    const details = await engine.inspectContainer(summary.id);
    if (!details) continue;
    const report = details.running ? await applianceHealth(engine, details) : undefined;
    if (report && report.services.length > 0) services.push({ name: details.name, report });
    const network = networkOf(details);
    rows.push([details.name, details.image, details.state, healthColumn(details, report), storageOf(details), network, portsOf(details)]);
  }
  ctx.stdout.write(renderTable(['NAME', 'IMAGE', 'STATE', 'HEALTH', 'STORAGE', 'NETWORK', 'PORTS'], rows));
  for (const { name, report } of services) {
    ctx.stdout.write(`\nServices of ${name}:\n`);
    ctx.stdout.write(
      renderTable(
        ['SERVICE', 'STATE', 'RESTARTS'],
        report.services.map((s) => [s.name, s.state, s.restarts === undefined ? '-' : String(s.restarts)]),
      ),
    );
  }
}
