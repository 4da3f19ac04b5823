#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { runCommand } from '../../lib/errors.js';
import { processContext } from './context.js';

// Each command module is imported only when its command runs, so `--help` and small commands stay fast.

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
const toNumber = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('not a number.');
  return n;
};
const nameOption = () => new Option('--name <container>', 'the cw-headnode container (default: the running one)');

export function buildProgram(): Command {
  let program: Command;
  const ctx = processContext(() => program.opts<{ engine?: string }>().engine);
  program = new Command('cw-containerctl')
    .description('Run a cw-headnode appliance (a whole cluster head node in one container) under Docker or Podman.')
    .version(packageVersion())
    .addOption(
      new Option('--engine <kind>', 'use this engine (default: $CW_ENGINE, else DOCKER_HOST, else Docker\'s socket, then Podman\'s)').choices([
        'docker',
        'podman',
      ]),
    )
    .exitOverride()
    // Usage errors follow the one-line `ERROR: ...` convention too (commander's hint joins the line).
    .configureOutput({
      outputError: (text, write) => write(`${text.trim().replace(/^error: /, 'ERROR: ').replace(/\s*\n\s*/g, ' ')}\n`),
    });

  program
    .command('img-load')
    .description('load a cw-headnode image archive (verifies FILE.sha256 when present)')
    .argument('<file>', 'image archive made by "docker save"')
    .action((file: string) =>
      runCommand(async () => {
        const { imgLoad } = await import('./img-load/img-load.js');
        await imgLoad({ file }, ctx);
      }),
    );

  program
    .command('img-ls')
    .description('list the loaded cw-headnode images, newest first')
    .action(() =>
      runCommand(async () => {
        const { imgLs } = await import('./img-ls/img-ls.js');
        await imgLs({}, ctx);
      }),
    );

  program
    .command('start')
    .description('create the storage directory and the container, start it and wait until healthy')
    .argument('[storage_dir]', 'storage directory (default ./cw_container_storage)')
    .argument('[image]', 'IMAGE:TAG (default: the newest loaded cw-headnode image)')
    .option('--name <container>', 'container name', 'cw-headnode')
    .option('--network <name>', 'join this engine network instead of the host network')
    .option('--ip <address>', 'fixed IPv4 address on --network')
    .option('--head-address <address>', 'tell nodes this address of the head (e.g. a floating IP) in its cluster network')
    .option('--service-network <name>', 'also join this engine network, for BMCs and switches (needs --network)')
    .option('--service-ip <address>', 'fixed IPv4 address on --service-network')
    .option('--etcd-member', "keep the cluster database in etcd, with a member on this head: a new cluster (the first head)")
    .option('--join <head>', 'join the cluster of the head at this address (as the admin in your tool settings); this head runs a member too')
    .option('--etcd-name <name>', 'this head\'s member name (default: the container name)')
    .option('--etcd-address <ip>', 'the address the other heads reach this one at (default: --ip)')
    .option('--etcd <endpoints>', 'keep the cluster database in an outside etcd cluster (its client URLs, comma-separated)')
    .option('--http-port <port>', 'HTTP port (boot files, images, node reports)', toNumber, 80)
    .option('--https-port <port>', 'HTTPS port (the API for admins and tools; also boot files)', toNumber, 443)
    .option('--tls-cert <file>', 'your own HTTPS certificate (PEM, chain after it) instead of the self-signed one')
    .option('--tls-key <file>', 'its private key (PEM, unencrypted); stored 0600 in the storage directory')
    .option('--ssh-port <port>', "appliance sshd port (the host's sshd keeps 22)", toNumber, 2200)
    .option('--tftp-port <port>', 'TFTP port', toNumber, 69)
    .option('--dns-port <port>', 'DNS port (udp and tcp; nodes are told of the server only on 53)', toNumber, 53)
    .option('--dhcp-interface <iface>', 'serve DHCP on this interface (repeatable; default: auto)', collect)
    .option('--env <key=value>', 'extra container environment (repeatable)', collect)
    .option('--timeout <seconds>', 'how long to wait for health', toNumber, 120)
    .option('--restore <file>', 'first restore this backup (cw-containerctl backup) into the storage directory, which must hold no database')
    .option('--force', 'with --restore: restore over an existing database (the old one is kept aside as db.before-restore-TIME)')
    .action((storageDir: string | undefined, image: string | undefined, o: Record<string, unknown>) =>
      runCommand(async () => {
        const { start } = await import('./start/start.js');
        await start(
          {
            storageDir,
            image,
            name: o.name as string,
            network: o.network as string | undefined,
            ip: o.ip as string | undefined,
            headAddress: o.headAddress as string | undefined,
            serviceNetwork: o.serviceNetwork as string | undefined,
            serviceIp: o.serviceIp as string | undefined,
            etcdMember: o.etcdMember as boolean | undefined,
            join: o.join as string | undefined,
            etcdName: o.etcdName as string | undefined,
            etcdAddress: o.etcdAddress as string | undefined,
            etcd: o.etcd as string | undefined,
            httpPort: o.httpPort as number,
            httpsPort: o.httpsPort as number,
            tlsCert: o.tlsCert as string | undefined,
            tlsKey: o.tlsKey as string | undefined,
            sshPort: o.sshPort as number,
            tftpPort: o.tftpPort as number,
            dnsPort: o.dnsPort as number,
            dhcpInterfaces: (o.dhcpInterface as string[] | undefined) ?? [],
            env: (o.env as string[] | undefined) ?? [],
            timeout: o.timeout as number,
            restore: o.restore as string | undefined,
            force: o.force === true,
          },
          ctx,
        );
      }),
    );

  program
    .command('backup')
    .description('write a backup of the running appliance (database snapshot, settings, secrets; not images) to FILE')
    .argument('[file]', 'archive to write, mode 0600 (default STORAGE/backup/cw-backup-TIMESTAMP.tar.gz)')
    .addOption(nameOption())
    .action((file: string | undefined, o: { name?: string }) =>
      runCommand(async () => {
        const { backup } = await import('./backup/backup.js');
        await backup({ file, name: o.name }, ctx);
      }),
    );

  program
    .command('status')
    .description('show the cw-headnode containers, their health and services')
    .addOption(new Option('--name <container>', 'only this container'))
    .action((o: { name?: string }) =>
      runCommand(async () => {
        const { status } = await import('./status/status.js');
        await status({ name: o.name }, ctx);
      }),
    );

  program
    .command('stop')
    .description('stop the appliance and print the command that starts it again')
    .addOption(nameOption())
    .option('--timeout <seconds>', 'seconds before the engine kills it', toNumber, 10)
    .action((o: { name?: string; timeout: number }) =>
      runCommand(async () => {
        const { stop } = await import('./stop/stop.js');
        await stop({ name: o.name, timeout: o.timeout }, ctx);
      }),
    );

  program
    .command('add-admin')
    .description('add an admin by ssh public key')
    .argument('<admin>', 'admin user name')
    .argument('<key>', "public key line in quotes, or @FILE (e.g. @~/.ssh/id_ed25519.pub)")
    .addOption(nameOption())
    .action((admin: string, key: string, o: { name?: string }) =>
      runCommand(async () => {
        const { addAdmin } = await import('./add-admin/add-admin.js');
        await addAdmin({ admin, key, name: o.name }, ctx);
      }),
    );

  program
    .command('rm-admin')
    .description('remove an admin: its ssh key and API tokens stop working at once')
    .argument('<admin>', 'admin user name')
    .addOption(nameOption())
    .action((admin: string, o: { name?: string }) =>
      runCommand(async () => {
        const { rmAdmin } = await import('./rm-admin/rm-admin.js');
        await rmAdmin({ admin, name: o.name }, ctx);
      }),
    );

  program
    .command('root-pass')
    .description('set the root password (prompts twice; or reads it from stdin)')
    .addOption(nameOption())
    .action((o: { name?: string }) =>
      runCommand(async () => {
        const { rootPass } = await import('./root-pass/root-pass.js');
        await rootPass({ name: o.name }, ctx);
      }),
    );

  program
    .command('cluster-id')
    .description('set the cluster authentication token from stdin (-, or piped) or a file (@FILE); with nothing piped: show it')
    .argument('[token]', '"-" (stdin) or @FILE; a token given here is visible in the process list (accepted with a warning)')
    .addOption(nameOption())
    .action((token: string | undefined, o: { name?: string }) =>
      runCommand(async () => {
        const { clusterId } = await import('./cluster-id/cluster-id.js');
        await clusterId({ token, name: o.name }, ctx);
      }),
    );

  program
    .command('tool-config')
    .description('print ssh-agent advice and a proposed ~/.cw/settings.ini')
    .addOption(nameOption())
    .action((o: { name?: string }) =>
      runCommand(async () => {
        const { toolConfig } = await import('./tool-config/tool-config.js');
        await toolConfig({ name: o.name }, ctx);
      }),
    );

  program
    .command('engine')
    .description('print the engine every command uses (and why); --kind prints only docker or podman')
    .option('--kind', 'print only the engine kind (for scripts)')
    .action((o: { kind?: boolean }) =>
      runCommand(async () => {
        const { engineCommand } = await import('./engine-command/engine-command.js');
        await engineCommand({ kind: o.kind }, ctx);
      }),
    );

  program
    .command('install-ocf')
    .description('install the Pacemaker resource agent (ocf:cw:headnode) on this host')
    .option('--dir <dir>', 'provider directory', '/usr/lib/ocf/resource.d/cw')
    .action((o: { dir: string }) =>
      runCommand(async () => {
        const { installOcf } = await import('./install-ocf/install-ocf.js');
        await installOcf({ dir: o.dir }, { stdout: process.stdout });
      }),
    );

  program
    .command('logs')
    .description("print the container's log")
    .option('-f, --follow', 'keep printing new lines')
    .option('--tail <lines>', 'only the last N lines', toNumber)
    .addOption(nameOption())
    .action((o: { follow?: boolean; tail?: number; name?: string }) =>
      runCommand(async () => {
        const { logs } = await import('./logs/logs.js');
        await logs({ follow: o.follow, tail: o.tail, name: o.name }, ctx);
      }),
    );

  program
    .command('shell')
    .description('open an interactive shell in the appliance (or run COMMAND)')
    .argument('[command...]', 'command to run instead of /bin/bash (after --)')
    .addOption(nameOption())
    .action((command: string[], o: { name?: string }) =>
      runCommand(async () => {
        const { shell } = await import('./shell/shell.js');
        const code = await shell({ name: o.name, command }, ctx);
        // The session's own exit status, like `docker exec`.
        if (code !== 0) process.exitCode = code;
      }),
    );

  return program;
}

// A reader that goes away early (`cw-containerctl logs | head`) is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  // Usage errors were already printed by commander (as `ERROR: ...`); help and --version end here too.
  if (err instanceof CommanderError) process.exitCode = err.exitCode;
  else throw err;
}
