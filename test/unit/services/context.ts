import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { servicePaths, type CommandRunner, type ServiceContext } from '../../../src/appliance/services/context.js';

export const BUILTIN_TEMPLATES = fileURLToPath(new URL('../../../rootfs/etc/cw/templates', import.meta.url));

export interface TestContext {
  ctx: ServiceContext;
  logs: string[];
  runs: Array<{ command: string; args: readonly string[] }>;
  cleanup(): Promise<void>;
}

/** A service context over a fresh temporary storage directory; helper commands are recorded, not run. */
export async function testContext(options: { run?: CommandRunner; storage?: string } = {}): Promise<TestContext> {
  const root = await mkdtemp(path.join(tmpdir(), 'cw-services-'));
  const storage = options.storage ?? path.join(root, 'storage');
  const logs: string[] = [];
  const runs: Array<{ command: string; args: readonly string[] }> = [];
  const ctx: ServiceContext = {
    paths: servicePaths({
      storage,
      runDir: path.join(root, 'run'),
      builtinTemplates: BUILTIN_TEMPLATES,
      controlSocket: path.join(root, 'run', 'supervisor.sock'),
      syslogSocket: path.join(root, 'log.sock'),
    }),
    ports: { http: 18080, https: 18443, ssh: 12200, tftp: 16969, dns: 15353 },
    dhcpInterfaces: null,
    headAddress: null,
    etcdMember: null,
    bins: {
      node: process.execPath,
      apiMain: '/opt/cw/dist/appliance/api/main.js',
      nginx: '/usr/sbin/nginx',
      sshd: '/usr/sbin/sshd',
      sshKeygen: '/usr/bin/ssh-keygen',
      openssl: '/usr/bin/openssl',
      tftpd: '/usr/sbin/in.tftpd',
      dhcpd: '/usr/sbin/dhcpd',
      dnsmasq: '/usr/sbin/dnsmasq',
      ipxeDir: path.join(root, 'ipxe'),
      etcd: '/usr/bin/etcd',
    },
    baseEnv: { PATH: process.env.PATH },
    log: (source, line) => logs.push(`[${source}] ${line}`),
    run: async (command, args) => {
      runs.push({ command, args });
      return options.run ? options.run(command, args) : { exitCode: 0, output: '' };
    },
  };
  return { ctx, logs, runs, cleanup: () => rm(root, { recursive: true, force: true }) };
}
