// One runner for every tool: parse the command line, pick the action from the tool's table, run it,
// close the connection. The process boundary (printing `ERROR: ...`, the exit code) is in main.ts.
import { ExitError, runCommand } from '../../lib/errors.js';
import { CHAIN_WORD, clip, parseArgs, protectCommand, splitChain, usageText, type OptionSpec } from './args.js';
import { makeContext, type ToolContext, type ToolIo } from './context.js';

/** An action: gets the words after its name. */
export type Action = (ctx: ToolContext, words: string[]) => Promise<void>;

export interface ToolSpec {
  /** `cw-nodectl`. */
  name: string;
  /** Usage lines, one per action. */
  synopsis: readonly string[];
  /** Options besides the common ones. */
  options?: readonly OptionSpec[];
  /** Actions by name, aliases included (`list` and `ls`). */
  actions: Readonly<Record<string, Action>>;
  /** Runs instead of an action when it returns true (e.g. `cw-clusterctl --get-distro`). */
  before?: (ctx: ToolContext) => Promise<boolean>;
  /** Action used when none is given (default: none, which is an error). */
  defaultAction?: string;
  /** Actions followed by a command whose words are never the tool's options (`exec uname -r`). */
  commandActions?: readonly string[];
  /**
   * Actions may be chained with `then`, each run after the one before succeeded, on the same selection
   * and options: `cw-nodectl -i n[0-3] reboot then waitfor up then exec uptime`.
   */
  chains?: boolean;
}

/**
 * Runs a tool in-process: `await runTool(NODECTL, ['-i', 'n0', 'ls', '-l'], { out })`.
 * Throws ExitError for every expected failure.
 */
export async function runTool(tool: ToolSpec, argv: readonly string[], io: ToolIo = {}): Promise<void> {
  const given = tool.commandActions ? protectCommand(argv, tool.options ?? [], tool.commandActions, tool.chains === true) : argv;
  const args = parseArgs(given, tool.options ?? []);
  const ctx = makeContext(tool.name, args, io);
  if (args.common.help || args.words[0] === 'help') {
    ctx.out(`${usageText(tool.name, tool.synopsis, tool.options ?? [])}\n`);
    return;
  }
  try {
    if (tool.before && (await tool.before(ctx))) return;
    const segments = tool.chains ? splitChain(args.words, tool.commandActions) : [args.words];
    // Every action of a chain is known before the first runs.
    const steps = segments.map((segment, i) => {
      const [name = i === 0 ? tool.defaultAction : undefined, ...rest] = segment;
      if (name === undefined) {
        throw new ExitError(i === 0 ? `no action given (${tool.name} --help lists them)` : `no action after "${CHAIN_WORD}"`);
      }
      const action = Object.hasOwn(tool.actions, name) ? tool.actions[name] : undefined;
      if (!action) throw new ExitError(`unknown action "${clip(name)}" (${tool.name} --help lists them)`);
      return { action, rest };
    });
    for (const { action, rest } of steps) await action(ctx, rest);
  } finally {
    await ctx.close();
  }
}

/**
 * The process boundary of a tool's `main.js`: runs it on `process.argv`, prints `ERROR: ...` and sets the
 * exit code on failure. A closed stdout (`| head`) ends the output quietly.
 */
export async function toolMain(run: (argv: string[]) => Promise<void>): Promise<void> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  await runCommand(() => run(process.argv.slice(2)));
}
