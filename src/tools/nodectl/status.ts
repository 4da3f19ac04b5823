// Node status for cw-nodectl: the `status` table and `waitfor STATE`. The API derives each node's state
// (`status.state`: new, up, down, error, booting:STAGE) when it answers; the tool only shows it.
import { ExitError } from '../../lib/errors.js';
import { compressNames } from '../../lib/noderange.js';
import { asObjectList, isObject, labelOf, NODES, sortObjects, type ApiObject } from '../common/collection.js';
import type { ToolContext } from '../common/context.js';
import { columns, humanAge, safeText, type JsonObject } from '../common/format.js';
import { idSpec } from '../common/select.js';

/** A node not heard from for this long is down (the API's rule, for answers of an older API without `state`). */
const DOWN_AFTER_MS = 30_000;
/** How often `waitfor` asks. */
export const WAITFOR_POLL_MS = 2000;

/** The state the API derived, else one derived here from `last_seen`. */
export function stateOf(node: ApiObject, now: number = Date.now()): string {
  const status = node.status;
  if (isObject(status) && typeof status.state === 'string' && status.state !== '') return status.state;
  const seen = typeof node.last_seen === 'string' ? Date.parse(node.last_seen) : Number.NaN;
  if (!Number.isFinite(seen)) return 'new';
  return now - seen <= DOWN_AFTER_MS ? 'up' : 'down';
}

/** The reported fields `status` shows, as JSON: state first, only what the node reported, last_seen last. */
export function statusDocument(node: ApiObject): JsonObject {
  const status = isObject(node.status) ? node.status : {};
  const doc: JsonObject = { state: stateOf(node) };
  for (const key of ['stage', 'ip', 'kernel', 'uptime', 'load', 'ram_free', 'ram_total', 'message']) {
    if (status[key] !== undefined) doc[key] = status[key] as JsonObject[string];
  }
  doc.last_seen = node.last_seen ?? null;
  return doc;
}

const COLUMNS = ['NAME', 'STATE', 'STAGE', 'IP', 'KERNEL', 'UPTIME', 'LAST SEEN'] as const;

/** The plain `status` table: name, state, stage, ip, kernel, uptime, last seen. */
export function renderStatusTable(nodes: readonly ApiObject[], now: number = Date.now()): string {
  const rows = nodes.map((n) => {
    const status = isObject(n.status) ? n.status : {};
    const seen = typeof n.last_seen === 'string' ? Date.parse(n.last_seen) : Number.NaN;
    const text = (v: unknown): string => (typeof v === 'string' && v !== '' ? safeText(v) : '-');
    return [
      labelOf(n),
      stateOf(n, now),
      text(status.stage),
      text(typeof status.ip === 'string' ? status.ip : n.ip),
      text(status.kernel),
      typeof status.uptime === 'number' ? duration(status.uptime) : '-',
      Number.isFinite(seen) ? humanAge(now - seen) : 'never',
    ];
  });
  return `${columns(COLUMNS, rows).join('\n')}\n`;
}

/** `3725.2` seconds -> `1 h 2 min`. */
export function duration(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 90) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** States `waitfor` accepts; `booting` matches every `booting:STAGE`. */
const WAIT_STATES = ['up', 'down', 'new', 'error', 'booting'];

const matches = (state: string, wanted: string): boolean => state === wanted || (wanted === 'booting' && state.startsWith('booting:'));

/**
 * `-i IDS waitfor STATE [--timeout SECONDS]`: asks every 2 s until every selected node is in STATE;
 * ExitError `timed out after 300 s waiting for n0 to be up (state: down)` when time runs out.
 */
export async function waitFor(ctx: ToolContext, words: readonly string[], sleep: (ms: number) => Promise<void> = delay): Promise<void> {
  const [wanted, ...rest] = words;
  if (wanted === undefined || !WAIT_STATES.includes(wanted)) {
    throw new ExitError(`waitfor needs the state to wait for: ${WAIT_STATES.join(', ')} (e.g. waitfor up --timeout 300)`);
  }
  if (rest.length > 0) throw new ExitError(`waitfor takes one state, not "${rest.join(' ').slice(0, 40)}"`);
  const ids = idSpec(ctx);
  if (ids === undefined) throw new ExitError('waitfor needs the nodes to wait for: -i IDS or -a/--all');
  const timeoutText = ctx.args.options.get('timeout');
  const timeoutS = timeoutText === undefined ? 300 : Number(timeoutText);
  if (typeof timeoutText === 'boolean' || !Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > 7 * 24 * 3600) {
    throw new ExitError(`--timeout must be a number of seconds greater than 0, not "${String(timeoutText).slice(0, 20)}"`);
  }
  const api = ctx.api();
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const nodes = sortObjects(NODES, asObjectList(await (ids === 'all' ? api.get('/nodes') : api.get('/nodes', { query: { ids } }))));
    if (nodes.length === 0) throw new ExitError('No nodes found, nothing was done');
    const pending = nodes.filter((n) => !matches(stateOf(n), wanted));
    if (pending.length === 0) {
      const names = nodes.map(labelOf);
      ctx.out(names.length === 1 ? `${names[0]} is ${wanted}\n` : `${names.length} nodes are ${wanted}: ${compressNames(names)}\n`);
      return;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const states =
        pending.length === 1 ? `state: ${stateOf(pending[0] as ApiObject)}` : `states: ${pending.slice(0, 5).map((n) => `${labelOf(n)} ${stateOf(n)}`).join(', ')}${pending.length > 5 ? ', ...' : ''}`;
      throw new ExitError(`timed out after ${timeoutText ?? timeoutS} s waiting for ${compressNames(pending.map(labelOf))} to be ${wanted} (${states})`);
    }
    await sleep(Math.min(WAITFOR_POLL_MS, left));
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
