// `cw-nodectl -i n0 console`: the node's serial console, interactively, through the appliance's sshd
// (`ssh -t -p SSH_PORT root@HEAD cw-appliance console n0`; ipmitool's `~.` ends it). With --log, the
// appliance's log of that console instead: the last --lines lines, and with --follow each new line.
import { execa } from 'execa';
import { ExitError } from '../../lib/errors.js';
import { isObject, labelOf, NODES } from '../common/collection.js';
import type { ToolContext } from '../common/context.js';
import { safeText } from '../common/format.js';
import { selectObjects } from '../common/select.js';
import { numberOption } from './power.js';

export const DEFAULT_LOG_LINES = 100;
export const MAX_LOG_LINES = 100_000;

/**
 * The ssh command of an interactive console, as an argument array.
 * Example: `consoleSshArgv('https://head.example/api/v1', 2200, 'n0')`
 * -> `['-t', '-p', '2200', '--', 'root@head.example', 'cw-appliance', 'console', 'n0']`.
 */
export function consoleSshArgv(baseUrl: string, port: number, node: string): string[] {
  let host = new URL(baseUrl).hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  // The node name is a checked name (letters, digits, - _ .), so the remote shell sees one plain word.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(node)) throw new ExitError(`not a node name: ${safeText(node)}`);
  if (!/^[A-Za-z0-9:.-]+$/.test(host) || host.startsWith('-')) throw new ExitError(`cannot ssh to the head node's host ${safeText(host)}`);
  return ['-t', '-p', String(port), '--', `root@${host}`, 'cw-appliance', 'console', node];
}

/** Runs ssh with the terminal handed over; resolves with its exit status. */
export type InteractiveRunner = (file: string, args: string[]) => Promise<number>;

const runInteractive: InteractiveRunner = async (file, args) => {
  const result = await execa(file, args, { stdio: 'inherit', reject: false });
  if ((result as { code?: unknown }).code === 'ENOENT') throw new ExitError(`${file} is not installed: it is needed for interactive consoles`);
  return typeof result.exitCode === 'number' ? result.exitCode : 1;
};

/** `-i n0 console [--log [--lines N] [--follow]] [--ssh-port P]`. */
export async function nodeConsole(ctx: ToolContext, words: readonly string[], run: InteractiveRunner = runInteractive): Promise<void> {
  if (words.length > 0) throw new ExitError(`console takes no arguments, not "${safeText(words.join(' ').slice(0, 40))}"`);
  const nodes = await selectObjects(ctx, NODES, { action: 'console', required: true });
  if (nodes.length !== 1) throw new ExitError(`console works on one node at a time; -i selects ${nodes.length}`);
  const name = labelOf(nodes[0] as (typeof nodes)[number]);
  const path = `/node/${encodeURIComponent(name)}/console`;
  const log = ctx.args.options.get('log') === true;
  const follow = ctx.args.options.get('follow') === true;
  if (!log) {
    if (follow || ctx.args.options.has('lines')) throw new ExitError('--lines and --follow go with --log');
    const given = ctx.args.options.get('ssh-port');
    let port: number;
    if (given !== undefined) port = numberOption(ctx, 'ssh-port', 22, 1, 65535, true);
    else {
      const info = await ctx.api().get<unknown>(path);
      port = isObject(info) && typeof info.ssh_port === 'number' ? info.ssh_port : 22;
    }
    const argv = consoleSshArgv(ctx.api().baseUrl, port, name);
    ctx.err(`Attaching to the serial console of ${name}; type ~. at the start of a line to leave (~~. through a nested ssh)\n`);
    const status = await run('ssh', argv);
    if (status !== 0) throw new ExitError(`the console session of ${name} ended with status ${status}`, status);
    return;
  }
  const lines = numberOption(ctx, 'lines', DEFAULT_LOG_LINES, 0, MAX_LOG_LINES, true);
  if (!follow) {
    const answer = await ctx.api().get<unknown>(`${path}/log`, { query: { lines } });
    const got = isObject(answer) && Array.isArray(answer.lines) ? answer.lines : [];
    ctx.out(got.map((l) => `${safeText(String(l))}\n`).join(''));
    return;
  }
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  try {
    let partial = '';
    await ctx.api().streamText(
      `${path}/log`,
      { lines, follow: 1 },
      (text) => {
        const all = partial + text;
        const end = all.lastIndexOf('\n') + 1;
        partial = all.slice(end);
        if (end > 0) ctx.out(all.slice(0, end).split('\n').slice(0, -1).map((l) => `${safeText(l)}\n`).join(''));
      },
      controller.signal,
    );
  } finally {
    process.off('SIGINT', stop);
  }
}
