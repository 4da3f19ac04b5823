import { createSocket } from 'node:dgram';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../../../lib/atomic-write.js';
import { DEFAULT_DOMAIN } from '../../../lib/validate.js';
import { absPath, port, renderTemplateFile } from '../../config/template.js';
import { dnsFiles, writeIfChanged } from '../../dns/files.js';
import { renderDns } from '../../dns/render.js';
import type { Probe } from '../../supervisor/probes.js';
import type { ChildServiceSpec } from '../../supervisor/types.js';
import { DAEMON_RESTART, type ServiceContext } from '../context.js';
import { tail } from '../run.js';

/** A DNS query for `version.bind` TXT in class CHAOS: dnsmasq answers it itself, never upstream. */
const VERSION_QUERY = Buffer.from([
  0x63, 0x77, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  7, ...Buffer.from('version'), 4, ...Buffer.from('bind'), 0,
  0x00, 0x10, 0x00, 0x03,
]);

/**
 * Ready when the server answers a query on 127.0.0.1:`port`. A socket check cannot tell: dnsmasq drops
 * to its own user, whose sockets the supervisor may not inspect without CAP_SYS_PTRACE.
 */
export function dnsAnswersProbe(port: number, timeoutMs = 500): Probe {
  return () =>
    new Promise((resolve) => {
      const socket = createSocket('udp4');
      const done = (ready: boolean): void => {
        clearTimeout(timer);
        socket.close();
        resolve(ready);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      socket.once('error', () => done(false));
      socket.once('message', (msg) => done(msg.length >= 12 && msg[0] === 0x63 && msg[1] === 0x77));
      socket.send(VERSION_QUERY, port, '127.0.0.1');
    });
}

/** dnsmasq.conf from `dnsmasq.conf.template` (the admin's copy in STORAGE/etc/templates wins). */
export async function renderDnsmasqConf(ctx: ServiceContext): Promise<string> {
  const files = dnsFiles(ctx.paths);
  const { text } = await renderTemplateFile('dnsmasq.conf.template', ctx.paths.templates, {
    port: port(ctx.ports.dns),
    hosts_dir: absPath(files.hostsDir),
    zones_file: absPath(files.zonesFile),
    pid_file: absPath(path.join(ctx.paths.runDir, 'dnsmasq.pid')),
  });
  return text.endsWith('\n') ? text : `${text}\n`;
}

/**
 * The head node's DNS server: dnsmasq in the foreground, DNS only, answering the node names (`n3`,
 * `n3.DOMAIN`, reverse) from the hosts file the CW API keeps current (read again by dnsmasq itself on
 * every change, through inotify) and forwarding other names to the container's resolvers.
 *
 * A start renders dnsmasq.conf and checks it with `dnsmasq --test` first; a refused config keeps the
 * last good one. Until the API has written the names (first start) the files hold none, under the
 * default domain. `POST /reload/dns` (after the domain or a network changed) sends SIGHUP: dnsmasq
 * reads the zones and hosts again.
 */
export function dnsService(ctx: ServiceContext): ChildServiceSpec {
  const files = dnsFiles(ctx.paths);
  let rejection: string | null = null;

  async function prepare(): Promise<void> {
    await mkdir(files.hostsDir, { recursive: true, mode: 0o755 });
    await mkdir(ctx.paths.runDir, { recursive: true });
    // First start: no names yet, but a zones file dnsmasq can read (the API fills both in moments later).
    if ((await readFile(files.zonesFile, 'utf8').catch(() => null)) === null) {
      const empty = renderDns({ domain: DEFAULT_DOMAIN, nets: [], hosts: [] });
      await writeIfChanged(files.zonesFile, empty.zones);
      await writeIfChanged(files.hostsFile, empty.hosts);
    }
    let text: string;
    try {
      text = await renderDnsmasqConf(ctx);
    } catch (err) {
      return keepLastGood(`new config not rendered: ${err instanceof Error ? err.message : String(err)}`);
    }
    const working = await readFile(files.config, 'utf8').catch(() => null);
    if (text === working) {
      rejection = null;
      return;
    }
    const candidate = `${files.config}.new`;
    await writeFileAtomic(candidate, text, { mode: 0o644 });
    const check = await ctx.run(ctx.bins.dnsmasq, ['--test', `--conf-file=${candidate}`]);
    if (check.exitCode !== 0) {
      await rename(candidate, `${files.config}.rejected`).catch(() => undefined);
      return keepLastGood(`new config rejected by dnsmasq --test: ${tail(check.output)}`);
    }
    await rename(candidate, files.config);
    await rm(`${files.config}.rejected`, { force: true });
    rejection = null;
  }

  async function keepLastGood(message: string): Promise<void> {
    if ((await readFile(files.config, 'utf8').catch(() => null)) === null) throw new Error(`${message}; no earlier config to keep`);
    ctx.log('dns', `${message}; keeping the last good config`);
    rejection = `${message} (${new Date().toISOString()}); serving the last good config`;
  }

  return {
    kind: 'child',
    name: 'dns',
    dependsOn: [],
    essential: true,
    prepare,
    command: () => ({ command: ctx.bins.dnsmasq, args: [`--conf-file=${files.config}`], env: ctx.baseEnv }),
    readiness: { probe: dnsAnswersProbe(ctx.ports.dns), intervalMs: 50, timeoutMs: 10_000 },
    restart: DAEMON_RESTART,
    reload: { kind: 'signal', signal: 'SIGHUP' },
    stopDeadlineMs: 2000,
    statusDetail: () => rejection,
  };
}
