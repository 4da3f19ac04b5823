import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../../../lib/atomic-write.js';
import { errorMessage } from '../../../lib/errors.js';
import type { DhcpModel } from '../../dhcp/model.js';
import { readDhcpModel } from '../../dhcp/model-file.js';
import { declaresArchOption, renderDhcpSections } from '../../dhcp/render.js';
import { udpBoundProbe } from '../../supervisor/probes.js';
import type { ChildServiceSpec, Unchanged, WaitFor } from '../../supervisor/types.js';
import { loadTemplate, renderTemplate } from '../../config/template.js';
import { DAEMON_RESTART, type ServiceContext } from '../context.js';
import { advertisedAddresses, planListening, type InterfaceTable, type ListenPlan } from './networks.js';

export const DHCP_SERVER_PORT = 67;

export interface DhcpdFiles {
  config: string;
  /** A config dhcpd -t refused, kept for the admin to read (the line numbers in the log refer to it). */
  rejected: string;
  leases: string;
  pidFile: string;
}

export function dhcpdFiles(ctx: ServiceContext): DhcpdFiles {
  const config = path.join(ctx.paths.generatedDir, 'dhcpd.conf');
  return {
    config,
    rejected: `${config}.rejected`,
    leases: ctx.paths.dhcpLeasesFile,
    pidFile: path.join(ctx.paths.runDir, 'dhcpd.pid'),
  };
}

const EMPTY_MODEL: DhcpModel = { version: 0, nets: [], hosts: [] };

export interface RenderedDhcpdConf {
  text: string;
  /** Hosts whose IP lies in no cluster network. */
  outsideNets: number;
}

/** dhcpd.conf from `dhcpd.conf.template` (the admin's copy in STORAGE/etc/templates wins) with the model's subnets and hosts. */
export async function renderDhcpdConf(
  ctx: ServiceContext,
  model: DhcpModel,
  plan: Pick<ListenPlan, 'listenOnly' | 'ownAddresses'>,
  advertised: readonly string[] = plan.ownAddresses,
): Promise<RenderedDhcpdConf> {
  const template = await loadTemplate('dhcpd.conf.template', ctx.paths.templates);
  const sections = renderDhcpSections(
    {
      nets: model.nets,
      hosts: model.hosts,
      options: {
        listenOnly: plan.listenOnly,
        reserved: plan.ownAddresses,
        // Nodes boot from the head node's address on their network, over TFTP and then HTTP on CW_HTTP_PORT.
        boot: { headAddresses: [...advertised], httpPort: ctx.ports.http },
        // DHCP names a server by address alone: one on another port than 53 cannot be handed out.
        dns: { domain: model.domain ?? null, serverAddresses: ctx.ports.dns === 53 ? [...advertised] : [] },
      },
    },
    !declaresArchOption(template.text),
  );
  const text = renderTemplate(template.text, { subnets: sections.subnets, hosts: sections.hosts }, template.file);
  return { text: text.endsWith('\n') ? text : `${text}\n`, outsideNets: sections.outsideNets };
}

/**
 * The useful part of `dhcpd -t` output: its complaint with the offending line, without the banner and
 * the bug-report boilerplate, e.g. `dhcpd.conf line 2: unknown option dhcp.routerz | option routerz 1.`.
 */
export function dhcpdCheckReason(output: string, checkedFile: string, shownAs = 'dhcpd.conf'): string {
  const kept = output
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && !/^\s*\^\s*$/.test(l) && !DHCPD_CHATTER.some((re) => re.test(l)))
    .map((l) => l.split(checkedFile).join(shownAs).trim());
  return kept.slice(0, 3).join(' | ').slice(0, 400);
}

const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

const DHCPD_CHATTER = [
  /^Internet Systems Consortium DHCP Server/,
  /^Copyright \d{4}/,
  /^All rights reserved\./,
  /^For info, please visit/,
  /^Configuration file errors encountered/,
  /^If you think you have received this message/,
  /^than a configuration issue please read/,
  /^bugs on either our web page/,
  /^before submitting a bug\./,
  /^process and the information we find helpful/,
  /^exiting\.$/,
  /^(Config|Database|PID) file: /,
  /^ldap_gssapi_principal/,
];

/**
 * ISC dhcpd in the foreground on the interfaces of the cluster networks.
 *
 * Every start and every `POST /reload/dhcpd` renders dhcpd.conf from the cluster model the API wrote
 * (STORAGE/etc/generated/dhcp-model.json) and the template, checks it with `dhcpd -t` and only then
 * renames it over the working file. ISC dhcpd cannot re-read its config, so a changed config means a
 * restart (a 10,000-host config starts in well under a second; leases persist in STORAGE/dhcp); an
 * unchanged one leaves the daemon alone. A template or model that fails keeps the last good config
 * running, logged in one line and shown in the health detail. With no interface to listen on, dhcpd
 * waits (and is rechecked) instead of crash-looping.
 */
export function dhcpdService(ctx: ServiceContext, interfaces: () => InterfaceTable = networkInterfaces): ChildServiceSpec {
  const files = dhcpdFiles(ctx);
  /** Interfaces for the next start. */
  let listenOn: string[] = [];
  /** The working config's content as of the last prepare. */
  let working: string | null = null;
  /** What the running daemon was started with (config text and interfaces). */
  let started: { config: string | null; listen: string } | null = null;
  let rejection: string | null = null;
  let lastNotes = '';
  let lastHeadNote: string | null = null;

  /** Keeps serving the working config after a failed render or check; with none to keep, the start fails. */
  async function keepLastGood(message: string, plan: ListenPlan | null): Promise<Unchanged | void> {
    working = await readFile(files.config, 'utf8').catch(() => null);
    if (working === null) throw new Error(`${message}; no earlier config to keep`);
    ctx.log('dhcpd', `${message}; keeping the last good config`);
    rejection = `${message} (${new Date().toISOString()}); serving the last good config`;
    if (listenOn.length === 0 && plan) listenOn = plan.listen.map((n) => n.iface);
    return { unchanged: true };
  }

  async function prepare(): Promise<void | WaitFor | Unchanged> {
    let plan: ListenPlan | null = null;
    let model: DhcpModel;
    let rendered: RenderedDhcpdConf;
    const renderStart = performance.now();
    try {
      model = (await readDhcpModel(ctx.paths)) ?? EMPTY_MODEL;
      plan = planListening(interfaces(), model.nets, ctx.dhcpInterfaces);
      const notes = plan.notes.join('; ');
      if (notes !== lastNotes && notes !== '') ctx.log('dhcpd', `skipping ${notes}`);
      lastNotes = notes;
      if (plan.wait !== null) return { wait: plan.wait };
      const advertised = advertisedAddresses(plan.ownAddresses, model.nets, ctx.headAddress);
      if (advertised.note !== lastHeadNote && advertised.note !== null) ctx.log('dhcpd', advertised.note);
      lastHeadNote = advertised.note;
      rendered = await renderDhcpdConf(ctx, model, plan, advertised.addresses);
    } catch (err) {
      return keepLastGood(`new config not rendered: ${errorMessage(err)}`, plan);
    }
    const renderMs = performance.now() - renderStart;
    const listen = plan.listen.map((n) => n.iface);
    working = await readFile(files.config, 'utf8').catch(() => null);

    if (rendered.text !== working) {
      const candidate = `${files.config}.new`;
      await mkdir(path.dirname(candidate), { recursive: true });
      await writeFileAtomic(candidate, rendered.text, { mode: 0o644 });
      const checkStart = performance.now();
      const check = await ctx.run(ctx.bins.dhcpd, ['-t', '-4', '-cf', candidate]);
      if (check.exitCode !== 0) {
        await rename(candidate, files.rejected).catch(() => undefined);
        const reason = dhcpdCheckReason(check.output, candidate) || `dhcpd -t exited with ${check.exitCode}`;
        return keepLastGood(`new config rejected by dhcpd -t: ${reason}`, plan);
      }
      await rename(candidate, files.config);
      await rm(files.rejected, { force: true });
      working = rendered.text;
      const outside = rendered.outsideNets > 0 ? `; ${count(rendered.outsideNets, 'host')} outside every cluster network` : '';
      ctx.log(
        'dhcpd',
        `config for model version ${model.version} (${count(model.nets.length, 'network')}, ${count(model.hosts.length, 'host')}${outside}) ` +
          `rendered in ${Math.round(renderMs)} ms, dhcpd -t passed in ${Math.round(performance.now() - checkStart)} ms`,
      );
    }
    rejection = null;
    const unchanged = started !== null && started.config === working && started.listen === listen.join(' ');
    listenOn = listen;
    if (unchanged) return { unchanged: true };
  }

  return {
    kind: 'child',
    name: 'dhcpd',
    dependsOn: [],
    essential: true,
    prepare,
    async command() {
      // dhcpd refuses to start without a leases file, and trusts a stale pid file from a previous run.
      await (await open(files.leases, 'a')).close();
      await rm(files.pidFile, { force: true });
      started = { config: working, listen: listenOn.join(' ') };
      return {
        command: ctx.bins.dhcpd,
        args: ['-f', '-d', '-4', '-cf', files.config, '-lf', files.leases, '-pf', files.pidFile, ...listenOn],
        env: ctx.baseEnv,
      };
    },
    // Polled often: the restart after a node change is on the path of "served within a second".
    readiness: { probe: udpBoundProbe(DHCP_SERVER_PORT), intervalMs: 25, timeoutMs: 15_000 },
    restart: DAEMON_RESTART,
    reload: { kind: 'restart' },
    stopDeadlineMs: 3000,
    waitRecheckMs: 10_000,
    statusDetail: () => rejection,
  };
}
