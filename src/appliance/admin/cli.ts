import { ExitError } from '../../lib/errors.js';
import { supervisorHealthClient, type SupervisorHealth } from '../api/supervisor-client.js';
import { StoreError } from '../db/errors.js';
import { CONTAINER_STORAGE, storagePaths } from '../../lib/storage-layout.js';
import { runtimePaths } from '../storage.js';
import type { CommandContext } from './context.js';

export const USAGE = `usage: cw-appliance COMMAND [ARGS]

  health                      print the supervisor's health JSON; exit 0 only when healthy
  admin-add NAME KEY          add an admin with one OpenSSH public key line (--replace to change a key)
  admin-ls                    list the admins as JSON
  root-pass                   store the root password hash given in env CW_ROOT_HASH
  root-status                 show whether a root password is set
  cluster-id [TOKEN]          set the cluster id, or print it`;

export interface CliIo {
  env?: NodeJS.ProcessEnv;
  /** Receives stdout text, one line per call (without the newline). */
  out?: (line: string) => void;
  supervisorHealth?: SupervisorHealth;
}

interface Parsed {
  command: string;
  positionals: string[];
  flags: Set<string>;
}

function parseArgs(argv: readonly string[]): Parsed {
  const [command = '', ...rest] = argv;
  const positionals: string[] = [];
  const flags = new Set<string>();
  let onlyPositionals = false;
  for (const arg of rest) {
    if (onlyPositionals) positionals.push(arg);
    else if (arg === '--') onlyPositionals = true;
    // Only option-shaped words are options: a pasted private key ("-----BEGIN ...") is an argument,
    // refused by its own check, and never echoed back in a usage error.
    else if (/^--[a-z][a-z-]{0,30}$/.test(arg)) flags.add(arg);
    else positionals.push(arg);
  }
  return { command, positionals, flags };
}

function expect(parsed: Parsed, min: number, max: number, allowedFlags: readonly string[], usage: string): void {
  const unknown = [...parsed.flags].find((f) => !allowedFlags.includes(f));
  if (unknown) throw new ExitError(`unknown option ${unknown} (usage: cw-appliance ${usage})`);
  const n = parsed.positionals.length;
  if (n < min || n > max) throw new ExitError(`wrong number of arguments (usage: cw-appliance ${usage})`);
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
  const parsed = parseArgs(argv);
  try {
    await dispatch(ctx, parsed);
  } catch (err) {
    // Store rules (bad name, duplicate admin, ...) are the user's mistake, not a crash.
    if (err instanceof StoreError) throw new ExitError(err.message);
    throw err;
  }
}

async function dispatch(ctx: CommandContext, parsed: Parsed): Promise<void> {
  const { positionals: args, flags } = parsed;
  switch (parsed.command) {
    case 'health': {
      expect(parsed, 0, 0, [], 'health');
      const { health } = await import('./commands/health.js');
      return health(ctx);
    }
    case 'admin-add': {
      expect(parsed, 2, 2, ['--replace'], 'admin-add NAME KEY [--replace]');
      const { adminAdd } = await import('./commands/admin-add.js');
      return adminAdd(ctx, { name: args[0]!, key: args[1]!, replace: flags.has('--replace') });
    }
    case 'admin-ls': {
      expect(parsed, 0, 0, [], 'admin-ls');
      const { adminLs } = await import('./commands/admin-ls.js');
      return adminLs(ctx);
    }
    case 'root-pass': {
      expect(parsed, 0, 0, [], 'root-pass (hash in env CW_ROOT_HASH)');
      const { rootPass } = await import('./commands/root-pass.js');
      return rootPass(ctx);
    }
    case 'root-status': {
      expect(parsed, 0, 0, [], 'root-status');
      const { rootStatus } = await import('./commands/root-status.js');
      return rootStatus(ctx);
    }
    case 'cluster-id': {
      expect(parsed, 0, 1, [], 'cluster-id [TOKEN]');
      const { clusterId } = await import('./commands/cluster-id.js');
      return clusterId(ctx, args[0]);
    }
    case 'help':
    case '--help':
    case '-h':
      ctx.out(USAGE);
      return;
    case '':
      throw new ExitError('no command given (cw-appliance --help lists them)');
    default:
      throw new ExitError(`unknown command "${parsed.command}" (cw-appliance --help lists them)`);
  }
}
