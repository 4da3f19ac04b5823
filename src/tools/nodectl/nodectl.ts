// cw-nodectl: compute nodes. `cw-nodectl -i n[0-15] set _boot_config=mpiBoot`, `cw-nodectl ls -l`.
import { ExitError } from '../../lib/errors.js';
import {
  attributeNames,
  createAction,
  listAction,
  printListing,
  report,
  updateAction,
} from '../common/actions.js';
import { asObjectList, isObject, labelOf, NODES, type ApiObject } from '../common/collection.js';
import type { ToolContext, ToolIo } from '../common/context.js';
import { humanAge, renderJson } from '../common/format.js';
import { runTool, type ToolSpec } from '../common/run.js';
import { idSpec, selectObjects } from '../common/select.js';
import { contentOption, resolveAttributes } from '../common/values.js';

/** A node not heard from for this long is shown as down. */
const DOWN_AFTER_MS = 60_000;

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

/** `status [IDS]`: each node's state and when it was last heard from; -l/-L add the reported fields. */
async function nodeStatus(ctx: ToolContext, words: string[]): Promise<void> {
  const nodes = await selectObjects(ctx, NODES, { action: 'status', required: false, words });
  const { detail, format } = ctx.args.common;
  if (detail > 0) {
    const slim: ApiObject[] = nodes.map((n) => ({
      name: labelOf(n),
      state: stateOf(n),
      last_seen: n.last_seen ?? null,
      ...(detail === 2 ? { uid: n.uid ?? null, status: n.status ?? null } : {}),
    }));
    printListing(ctx, NODES, slim, 2);
    return;
  }
  if (format !== 'plain') {
    const doc = Object.fromEntries(nodes.map((n) => [labelOf(n), { state: stateOf(n), last_seen: n.last_seen ?? null }]));
    ctx.out(renderJson(doc, format));
    return;
  }
  const now = Date.now();
  const lines = nodes.map((n) => {
    const seen = typeof n.last_seen === 'string' && Number.isFinite(Date.parse(n.last_seen))
      ? `last seen ${humanAge(now - Date.parse(n.last_seen))}`
      : 'never seen';
    return `${labelOf(n)}: ${stateOf(n)}, ${seen}`;
  });
  ctx.out(`${lines.join('\n')}\n`);
}

/** The state the API reports, else one derived from how recently the node reported. */
function stateOf(node: ApiObject, now: number = Date.now()): string {
  const status = node.status;
  if (isObject(status)) {
    for (const key of ['state', 'status']) {
      const v = status[key];
      if (typeof v === 'string' && v !== '') return v;
    }
  } else if (typeof status === 'string' && status !== '') {
    return status;
  }
  const seen = typeof node.last_seen === 'string' ? Date.parse(node.last_seen) : Number.NaN;
  if (!Number.isFinite(seen)) return 'new';
  return now - seen < DOWN_AFTER_MS ? 'up' : 'down';
}

export const NODECTL: ToolSpec = {
  name: 'cw-nodectl',
  synopsis: [
    'ls|list [-l|-L] [IDS]             list nodes (-l main fields, -L every field)',
    'create mac=MAC [index=N] [ip=IP]  add a node (--content @nodes.json adds an array of nodes)',
    'update key=value...               change fields of the selected nodes (mac, ip, index, groups, power_uri)',
    'set attr=value...                 set attributes on the selected nodes, e.g. -i n[0-15] set _boot_config=X',
    'unset attr...                     remove attributes from the selected nodes',
    'status [-l|-L] [IDS]              state and last contact of each node',
    'rm|delete                         delete the selected nodes',
  ],
  options: [{ long: 'content', value: true, help: 'create: fields as JSON, or @file.json' }],
  actions: {
    ls: (ctx, words) => listAction(ctx, NODES, words),
    list: (ctx, words) => listAction(ctx, NODES, words),
    create: nodeCreate,
    update: (ctx, words) => updateAction(ctx, NODES, words),
    set: nodeSet,
    unset: nodeUnset,
    status: nodeStatus,
    rm: nodeRemove,
    delete: nodeRemove,
  },
};

/** `cw-nodectl ARGS...` without the process boundary. */
export function nodectl(argv: readonly string[], io?: ToolIo): Promise<void> {
  return runTool(NODECTL, argv, io);
}
