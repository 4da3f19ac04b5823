// The real dnsmasq, configured by the dns service, in a network namespace of its own (lo only), asked by
// the real dig: node names, full names and reverse lookups; a rewritten hosts file is served without a
// reload (inotify); a new domain after SIGHUP. Needs root, ip, dnsmasq and dig (requireTools).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { dnsFiles, writeIfChanged } from '../../../src/appliance/dns/files.js';
import { renderDns, type DnsModel } from '../../../src/appliance/dns/render.js';
import { dnsService } from '../../../src/appliance/services/dns/index.js';
import { runCommandLine } from '../../../src/appliance/services/run.js';
import { requireTools, toolPath } from '../../helpers/tools.js';
import { testContext } from '../services/context.js';

const run = promisify(execFile);
const IP = toolPath('ip');
const DIG = toolPath('dig');
const DNSMASQ = toolPath('dnsmasq');
const labTest = requireTools('root', 'ip', 'dnsmasq', 'dig');

labTest('dnsmasq answers n0, n0.DOMAIN and the reverse name, follows a rewritten hosts file within a second, and a new domain after SIGHUP', async (t) => {
  const ns = `cwdns${process.pid % 100000}`;
  const { ctx, logs, cleanup } = await testContext({ run: runCommandLine });
  ctx.bins.dnsmasq = DNSMASQ;
  let daemon: ChildProcess | undefined;
  t.teardown(async () => {
    daemon?.kill('SIGTERM');
    await run(IP, ['netns', 'del', ns]).catch(() => undefined);
    await cleanup();
  });
  await run(IP, ['netns', 'add', ns]);
  await run(IP, ['-n', ns, 'link', 'set', 'lo', 'up']);
  // The storage directory is read by dnsmasq's unprivileged user.
  await chmod(path.dirname(ctx.paths.storage), 0o755);

  const spec = dnsService(ctx);
  await spec.prepare?.();
  const files = dnsFiles(ctx.paths);
  const write = async (model: DnsModel) => {
    const r = renderDns(model);
    const zones = await writeIfChanged(files.zonesFile, r.zones);
    await writeIfChanged(files.hostsFile, r.hosts);
    return zones;
  };
  const nets = [{ name: 'cluster', network: '10.213.20.0', prefix: 24 }];
  await write({ domain: 'cluster.internal', nets, hosts: [{ name: 'n0', ip: '10.213.20.100' }] });
  const command = await spec.command();
  daemon = spawn(IP, ['netns', 'exec', ns, command.command, ...command.args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  daemon.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  daemon.stderr?.on('data', (d: Buffer) => (output += d.toString()));

  const dig = async (...args: string[]): Promise<string> => {
    const r = await run(IP, ['netns', 'exec', ns, DIG, '+time=1', '+tries=1', '+short', '-p', String(ctx.ports.dns), '@127.0.0.1', ...args]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    return r.stdout.trim();
  };
  const status = async (...args: string[]): Promise<string> => {
    const r = await run(IP, ['netns', 'exec', ns, DIG, '+time=1', '+tries=1', '-p', String(ctx.ports.dns), '@127.0.0.1', ...args]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    return /status: (\w+)/.exec(r.stdout)?.[1] ?? 'no answer';
  };
  const until = async (probe: () => Promise<boolean>, ms: number): Promise<number> => {
    const start = Date.now();
    while (!(await probe())) {
      if (Date.now() - start > ms) throw new Error(`not within ${ms} ms; dnsmasq said:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return Date.now() - start;
  };
  await until(async () => (await dig('n0')) === '10.213.20.100', 5000);
  t.is(await dig('n0.cluster.internal'), '10.213.20.100');
  t.is(await dig('-x', '10.213.20.100'), 'n0.cluster.internal.');
  // Unknown names of the cluster's zones are answered here, not forwarded (there is no upstream at all).
  t.is(await status('n9.cluster.internal'), 'NXDOMAIN');
  t.is(await status('-x', '10.213.20.99'), 'NXDOMAIN');

  await write({ domain: 'cluster.internal', nets, hosts: [{ name: 'n0', ip: '10.213.20.150' }] });
  const ms = await until(async () => (await dig('n0')) === '10.213.20.150', 1000);
  t.log(`new address answered ${ms} ms after the file was replaced`);
  // Only the new address: the writer's temporary file (a dotfile) was never read as a hosts file.
  t.is(await dig('n0.cluster.internal'), '10.213.20.150');
  t.is(await dig('-x', '10.213.20.100'), '');

  t.true(await write({ domain: 'hpc.example.org', nets, hosts: [{ name: 'n0', ip: '10.213.20.150' }] }));
  daemon.kill('SIGHUP');
  await until(async () => (await dig('n0.hpc.example.org')) === '10.213.20.150', 2000);
  t.is(await status('n9.hpc.example.org'), 'NXDOMAIN');
  t.is(await dig('-x', '10.213.20.150'), 'n0.hpc.example.org.');
  t.deepEqual(logs, []);
});
