import { Command, Option, type ParseOptionsResult } from 'commander';
import { ExitError } from '../../lib/errors.js';
import { supervisorHealthClient, type SupervisorHealth } from '../api/supervisor-client.js';
import { StoreError } from '../db/errors.js';
import { CONTAINER_STORAGE, storagePaths } from '../../lib/storage-layout.js';
import { runtimePaths } from '../storage.js';
import type { CommandContext } from './context.js';

export const USAGE = `usage: cw-appliance COMMAND [ARGS]

  health                      print the supervisor's health JSON; exit 0 only when healthy
  admin-add NAME KEY          add an admin with one OpenSSH public key line (--replace to change a key)
  admin-rm NAME               remove an admin (its ssh key and API tokens stop working at once)
  admin-ls                    list the admins as JSON
  root-pass                   store the root password hash given in env CW_ROOT_HASH
  root-status                 show whether a root password is set
  tls-info                    show the HTTPS certificate (fingerprint, names, validity) as JSON
  cluster-id [TOKEN]          set the cluster id (from env CW_CLUSTER_ID, or TOKEN), or print it
  console NODE                attach this terminal to the node's serial-over-LAN console (leave with ~.)
  backup [--output NAME]      write a backup (database snapshot, settings, secrets) to STORAGE/backup/NAME`;

export interface CliIo {
  env?: NodeJS.ProcessEnv;
  /** Receives stdout text, one line per call (without the newline). */
  out?: (line: string) => void;
  supervisorHealth?: SupervisorHealth;
}

/** Only option-shaped words are options: a pasted private key ("-----BEGIN ...") is an argument, refused
 * by its own check, and never echoed back in a usage error. */
const OPTION_SHAPE = /^--[a-z][a-z-]{0,30}$/;

/**
 * A command of cw-appliance. Commander sets aside the first word it does not know as an option, and the
 * words after it; here they stay arguments (in their order, `--` dropped) and only the first option-shaped
 * one before `--` is remembered, to be refused with the command's usage.
 */
class ApplianceCommand extends Command {
  strayOption: string | undefined;

  override parseOptions(argv: string[]): ParseOptionsResult {
    const { operands, unknown } = super.parseOptions(argv);
    const end = unknown.indexOf('--');
    const options = end === -1 ? unknown : unknown.slice(0, end);
    this.strayOption = options.find((word) => OPTION_SHAPE.test(word));
    return { operands: [...operands, ...options, ...(end === -1 ? [] : unknown.slice(end + 1))], unknown: [] };
  }
}

/** Commander parses; every problem is an ExitError for the process boundary, nothing is printed here. */
function quiet<T extends Command>(command: T): T {
  command
    .helpOption(false)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
  return command;
}

/**
 * One command: `usage` is its synopsis (`admin-add NAME KEY [--replace]`), its first word the command's
 * name; `count` the least and most arguments.
 */
function command(
  usage: string,
  count: [min: number, max: number],
  run: (args: string[], options: Record<string, unknown>) => Promise<void>,
  options: readonly Option[] = [],
): Command {
  const cmd = quiet(new ApplianceCommand(usage.split(' ')[0]));
  for (const option of options) cmd.addOption(option);
  return cmd
    .argument('[args...]')
    .allowExcessArguments()
    .action(async (args: string[]) => {
      if (cmd.strayOption !== undefined) throw new ExitError(`unknown option ${cmd.strayOption} (usage: cw-appliance ${usage})`);
      if (args.length < count[0] || args.length > count[1]) throw new ExitError(`wrong number of arguments (usage: cw-appliance ${usage})`);
      await run(args, cmd.opts());
    });
}

function buildProgram(ctx: CommandContext): Command {
  // Options before the command belong to no command: `cw-appliance --help` and `-h` are words here.
  const program = quiet(new Command('cw-appliance'))
    .enablePositionalOptions()
    .helpCommand(false)
    .allowUnknownOption()
    .argument('[words...]')
    .action((words: string[]) => {
      const [name = ''] = words;
      if (name === 'help' || name === '--help' || name === '-h') return ctx.out(USAGE);
      if (name === '') throw new ExitError('no command given (cw-appliance --help lists them)');
      throw new ExitError(`unknown command "${name}" (cw-appliance --help lists them)`);
    });
  program.addCommand(
    command('health', [0, 0], async () => {
      const { health } = await import('./commands/health.js');
      return health(ctx);
    }),
  );
  program.addCommand(
    command(
      'admin-add NAME KEY [--replace]',
      [2, 2],
      async ([name, key], o) => {
        const { adminAdd } = await import('./commands/admin-add.js');
        return adminAdd(ctx, { name: name!, key: key!, replace: o.replace === true });
      },
      [new Option('--replace', "change the admin's key")],
    ),
  );
  program.addCommand(
    command('admin-rm NAME', [1, 1], async ([name]) => {
      const { adminRm } = await import('./commands/admin-rm.js');
      return adminRm(ctx, name!);
    }),
  );
  program.addCommand(
    command('admin-ls', [0, 0], async () => {
      const { adminLs } = await import('./commands/admin-ls.js');
      return adminLs(ctx);
    }),
  );
  program.addCommand(
    command('root-pass (hash in env CW_ROOT_HASH)', [0, 0], async () => {
      const { rootPass } = await import('./commands/root-pass.js');
      return rootPass(ctx);
    }),
  );
  program.addCommand(
    command('root-status', [0, 0], async () => {
      const { rootStatus } = await import('./commands/root-status.js');
      return rootStatus(ctx);
    }),
  );
  program.addCommand(
    command('tls-info', [0, 0], async () => {
      const { tlsInfo } = await import('./commands/tls-info.js');
      return tlsInfo(ctx);
    }),
  );
  program.addCommand(
    command('cluster-id [TOKEN]', [0, 1], async ([token]) => {
      const { clusterId } = await import('./commands/cluster-id.js');
      return clusterId(ctx, token);
    }),
  );
  program.addCommand(
    command('console NODE', [1, 1], async ([node]) => {
      const { consoleAttach } = await import('./commands/console.js');
      return consoleAttach(ctx, node!);
    }),
  );
  program.addCommand(
    command(
      'backup [--output NAME]',
      [0, 0],
      async (_args, o) => {
        const { backup } = await import('./commands/backup.js');
        return backup(ctx, typeof o.output === 'string' ? o.output : undefined);
      },
      [new Option('--output <name>', 'file name in the backup directory')],
    ),
  );
  return program;
}

/**
 * The `cw-appliance` command without the process boundary: throws ExitError for every expected failure.
 * Example: `await cwAppliance(['cluster-id', token], { env: { CW_STORAGE: dir }, out: (l) => lines.push(l) })`.
 */
export async function cwAppliance(argv: readonly string[], io: CliIo = {}): Promise<void> {
  const env = io.env ?? process.env;
  const ctx: CommandContext = {
    paths: storagePaths(env.CW_STORAGE || CONTAINER_STORAGE),
    env,
    out: io.out ?? ((line) => process.stdout.write(`${line}\n`)),
    supervisorHealth: io.supervisorHealth ?? supervisorHealthClient(runtimePaths(env).supervisorSocket),
  };
  try {
    await buildProgram(ctx).parseAsync([...argv], { from: 'user' });
  } catch (err) {
    // Store rules (bad name, duplicate admin, ...) are the user's mistake, not a crash.
    if (err instanceof StoreError) throw new ExitError(err.message);
    throw err;
  }
}
