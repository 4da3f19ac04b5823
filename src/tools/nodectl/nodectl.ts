// cw-nodectl: compute nodes. `cw-nodectl -i n[0-15] set _boot_config=mpiBoot`, `cw-nodectl ls -l`.
import { ExitError } from '../../lib/errors.js';
import {
  attributeNames,
  createAction,
  printListing,
  report,
  updateAction,
} from '../common/actions.js';
import { asObjectList, labelOf, NODES, type ApiObject } from '../common/collection.js';
import type { ToolContext, ToolIo } from '../common/context.js';
import { renderJson } from '../common/format.js';
import { runTool, type ToolSpec } from '../common/run.js';
import { idSpec, selectObjects } from '../common/select.js';
import { contentOption, resolveAttributes } from '../common/values.js';
import { nodeConsole } from './console.js';
import { nodeExec } from './exec.js';
import { nodePower } from './power.js';
import { nodeReboot } from './reboot.js';
import { renderStatusTable, stateOf, statusDocument, waitFor } from './status.js';

/** `create mac=... [index=N] [ip=...]`, or many at once with `--content @nodes.json` (an array). */
async function nodeCreate(ctx: ToolContext, words: string[]): Promise<void> {
  const content = await contentOption(ctx, true);
  if (!Array.isArray(content)) return createAction(ctx, NODES, words);
  if (words.length > 0) throw new ExitError('give either key=value arguments or an array in --content, not both');
  const created = asObjectList(await ctx.api().post('/nodes', content));
  report(ctx, 'Created', NODES, created);
}

/** `-i IDS set k=v...`: one PATCH /nodes for the whole selection, applied in one transaction. */
async function nodeSet(ctx: ToolContext, words: string[]): Promise<void> {
  const attrs = await resolveAttributes(ctx, words);
  const { ids, objects } = await confirmedSelection(ctx, 'set');
  const changed = asObjectList(await ctx.api().patch('/nodes', { ids, set: attrs }));
  report(ctx, `Set ${Object.keys(attrs).join(', ')} on`, NODES, changed.length > 0 ? changed : objects);
}

/** `-i IDS unset k...`. */
async function nodeUnset(ctx: ToolContext, words: string[]): Promise<void> {
  const keys = attributeNames(words);
  const { ids, objects } = await confirmedSelection(ctx, 'unset');
  const changed = asObjectList(await ctx.api().patch('/nodes', { ids, unset: keys }));
  report(ctx, `Unset ${keys.join(', ')} on`, NODES, changed.length > 0 ? changed : objects);
}

/** The `-i` spec, once it is known to name existing nodes, and those nodes. */
async function confirmedSelection(ctx: ToolContext, action: string): Promise<{ ids: string; objects: ApiObject[] }> {
  const objects = await selectObjects(ctx, NODES, { action, required: true });
  return { ids: idSpec(ctx) as string, objects };
}

/** `-i IDS rm`: every selected node in one request and one transaction, all or none. */
async function nodeRemove(ctx: ToolContext, words: string[]): Promise<void> {
  const objects = await selectObjects(ctx, NODES, { action: 'rm', required: true, words });
  const removed = asObjectList(await ctx.api().delete('/nodes', { query: { ids: idSpec(ctx, words) } }));
  report(ctx, 'Deleted', NODES, removed.length > 0 ? removed : objects);
}

/** `ls [-l] [IDS]`: as for every collection, with each node's state and last contact under -l. */
async function nodeList(ctx: ToolContext, words: string[]): Promise<void> {
  const nodes = await selectObjects(ctx, NODES, { action: 'ls', required: false, words });
  if (ctx.args.common.detail !== 1) return printListing(ctx, NODES, nodes);
  const spec = { ...NODES, long: [...NODES.long, 'last_seen', 'state'].sort() };
  const never = ctx.args.common.format === 'plain' ? 'never' : null;
  printListing(ctx, spec, nodes.map((n) => ({ ...n, state: stateOf(n), last_seen: n.last_seen ?? never })));
}

/** `status [IDS]`: a table of state, boot stage, IP, kernel, uptime and last contact; -l/-L list the fields. */
async function nodeStatus(ctx: ToolContext, words: string[]): Promise<void> {
  const nodes = await selectObjects(ctx, NODES, { action: 'status', required: false, words });
  const { detail, format } = ctx.args.common;
  if (detail > 0) {
    const slim: ApiObject[] = nodes.map((n) => ({
      name: labelOf(n),
      ...statusDocument(n),
      ...(detail === 2 ? { uid: n.uid ?? null, status: n.status ?? null } : {}),
    }));
    printListing(ctx, NODES, slim, 2);
    return;
  }
  if (format !== 'plain') {
    ctx.out(renderJson(Object.fromEntries(nodes.map((n) => [labelOf(n), statusDocument(n)])), format));
    return;
  }
  ctx.out(renderStatusTable(nodes));
}

export const NODECTL: ToolSpec = {
  name: 'cw-nodectl',
  synopsis: [
    'ls|list [-l|-L] [IDS]             list nodes (-l main fields, -L every field)',
    'create mac=MAC [index=N] [ip=IP]  add a node (--content @nodes.json adds an array of nodes)',
    'update key=value...               change fields of the selected nodes (mac, ip, index, groups, power_uri)',
    'set attr=value...                 set attributes on the selected nodes, e.g. -i n[0-15] set _boot_config=X',
    'unset attr...                     remove attributes from the selected nodes',
    'status [-l|-L] [IDS]              state, boot stage, IP, kernel, uptime and last contact of each node',
    'waitfor up|down|booting|error|new wait until every selected node is in that state (--timeout SECONDS, default 300)',
    'power status|on|off|cycle|reset|boot|soft  power control through each node\'s power_uri, one line per node (boot: on if off, reset if on)',
    'exec CMD [ARGS...]                run CMD as root on each node over ssh, lines prefixed n3: (--collate folds identical output)',
    'reboot|shutdown [--soft|--hard]   soft: ssh and run /usr/sbin/reboot (shutdown -h now); hard: power_uri; neither: soft, then hard if still up after --timeout',
    'console [--log [--lines N] [--follow]]  one node\'s serial console over ssh to the appliance (leave with ~.); --log: the appliance\'s log of it',
    'rm|delete                         delete the selected nodes',
    'ACTION then ACTION ...            run actions one after another on the same nodes, stopping at the first failure, e.g. reboot then waitfor up then exec uptime (exec can only be last)',
  ],
  options: [
    { long: 'content', value: true, help: 'create: fields as JSON, or @file.json' },
    { long: 'timeout', value: true, help: 'waitfor: give up after this many seconds (default 300); power: per-node deadline (default 10); exec: per-node deadline (default 60); reboot/shutdown: seconds a node may stay up after the soft action (default 60)' },
    { long: 'fanout', value: true, help: 'power, exec, reboot, shutdown: nodes at once (default 64)' },
    { long: 'collate', help: 'exec: print identical outputs once, under a node range' },
    { long: 'stdin', value: true, help: 'exec: give @FILE to the command on standard input' },
    { long: 'soft', help: 'reboot/shutdown: only over ssh on the node' },
    { long: 'hard', help: 'reboot/shutdown: only through the power_uri (reset/off)' },
    { long: 'stagger', value: true, help: 'power: start at most N nodes every SECONDS, e.g. --stagger 40/2' },
    { long: 'log', help: 'console: print the console log the appliance keeps (nodes with _console_log=yes)' },
    { long: 'lines', value: true, help: `console --log: the last N lines (default 100)` },
    { long: 'follow', help: 'console --log: keep printing new lines until interrupted' },
    { long: 'ssh-port', value: true, help: 'console: the appliance\'s ssh port (default: what the head node says)' },
  ],
  commandActions: ['exec'],
  chains: true,
  actions: {
    ls: nodeList,
    list: nodeList,
    create: nodeCreate,
    update: (ctx, words) => updateAction(ctx, NODES, words),
    set: nodeSet,
    unset: nodeUnset,
    status: nodeStatus,
    waitfor: (ctx, words) => waitFor(ctx, words),
    power: (ctx, words) => nodePower(ctx, words),
    exec: (ctx, words) => nodeExec(ctx, words),
    console: (ctx, words) => nodeConsole(ctx, words),
    reboot: (ctx, words) => nodeReboot(ctx, 'reboot', words),
    shutdown: (ctx, words) => nodeReboot(ctx, 'shutdown', words),
    rm: nodeRemove,
    delete: nodeRemove,
  },
};

/** `cw-nodectl ARGS...` without the process boundary. */
export function nodectl(argv: readonly string[], io?: ToolIo): Promise<void> {
  return runTool(NODECTL, argv, io);
}
