// `cw-clusterctl heads ls` and `heads rm NAME`: the cluster's head nodes (GET /heads) — with etcd its
// members, each with its health, whether it leads, etcd's version and database size — and the removal
// of one (DELETE /head/NAME), which the head node refuses when the others would lose their quorum.
import { ExitError } from '../../lib/errors.js';
import { clip } from '../common/args.js';
import { isObject } from '../common/collection.js';
import type { ToolContext } from '../common/context.js';
import { columns, renderJson, safeText } from '../common/format.js';
import type { Action } from '../common/run.js';

const COLUMNS = ['NAME', 'HEALTH', 'LEADER', 'VERSION', 'DB', 'PEER'];

function size(bytes: unknown): string {
  if (typeof bytes !== 'number') return '-';
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The plain table of `GET /heads`, one row per head, then why the unhealthy ones did not answer. */
export function renderHeads(rows: readonly unknown[]): string {
  const notes: string[] = [];
  const cells = rows.filter(isObject).map((r) => {
    const text = (v: unknown): string => (typeof v === 'string' && v !== '' ? safeText(v) : '-');
    const name = r.name === '' ? '(not started)' : text(r.name);
    const health = r.healthy === true ? 'healthy' : r.started === false ? 'added' : 'DOWN';
    if (r.healthy !== true && typeof r.error === 'string') notes.push(`${name}: ${safeText(r.error)}`);
    const peers = Array.isArray(r.peer_urls) ? r.peer_urls.filter((u): u is string => typeof u === 'string').map(safeText).join(',') : '';
    return [name, health, r.leader === true ? '*' : '', text(r.version), size(r.db_size), peers || '-'];
  });
  return `${[...columns(COLUMNS, cells), ...notes].join('\n')}\n`;
}

async function headsList(ctx: ToolContext, words: string[]): Promise<void> {
  if (words.length > 0) throw new ExitError(`heads ls takes no arguments (got "${clip(words[0] as string)}")`);
  const rows = await ctx.api().get<unknown>('/heads');
  if (!Array.isArray(rows)) throw new ExitError('the head node sent no list of heads');
  const { format } = ctx.args.common;
  ctx.out(format === 'plain' ? renderHeads(rows) : renderJson(rows, format));
}

async function headsRemove(ctx: ToolContext, words: string[]): Promise<void> {
  if (words.length !== 1) throw new ExitError('heads rm takes one head name, e.g. cw-clusterctl heads rm head-c');
  const name = words[0] as string;
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) throw new ExitError(`"${clip(name)}" is not a head name`);
  await ctx.api().delete<unknown>(`/head/${encodeURIComponent(name)}`);
  ctx.out(`Removed head ${name} from the cluster\n`);
}

/** `heads ACTION`. */
export const headsActions: Record<string, Action> = { ls: headsList, list: headsList, rm: headsRemove, delete: headsRemove };
