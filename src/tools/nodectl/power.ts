// `cw-nodectl -i NODES power on|off|cycle|reset|status|boot|soft`: one line per node as the answers
// arrive (`n3: on`, `n7: ERROR: BMC 10.1.15.7 did not answer within 10 s`), at most --fanout nodes at
// once, and with --stagger N/SECONDS no more than N nodes started every SECONDS (a rack's breaker). The
// head node does the fan-out and the stagger: the tool sends one streaming request.
import { ExitError } from '../../lib/errors.js';
import { compressNames } from '../../lib/noderange.js';
import { labelOf, NODES } from '../common/collection.js';
import type { ToolContext } from '../common/context.js';
import { renderJson, safeText, type JsonObject } from '../common/format.js';
import { selectObjects } from '../common/select.js';
import { streamAnswers } from './stream.js';

/** What `power` accepts; `boot` is on when off, reset when on; `soft` asks the OS to shut down. */
export const POWER_WORDS = ['status', 'on', 'off', 'cycle', 'reset', 'boot', 'soft'] as const;
export type PowerWord = (typeof POWER_WORDS)[number];

export const DEFAULT_FANOUT = 64;
export const MAX_FANOUT = 1024;
export const DEFAULT_TIMEOUT_S = 10;
/** The API's longest per-node deadline (answers are streamed, so no client deadline bounds it). */
export const MAX_TIMEOUT_S = 600;

/** One node's answer as the API gives it. */
export interface NodePowerAnswer {
  name: string;
  ok: boolean;
  state?: string;
  result?: string;
  error?: string;
}

export interface Stagger {
  count: number;
  seconds: number;
}

/** `40/2` -> 40 nodes every 2 s. */
export function parseStagger(text: string): Stagger {
  const m = /^([0-9]{1,6})\/([0-9]{1,5}(?:\.[0-9]{1,3})?)$/.exec(text);
  const count = m ? Number(m[1]) : 0;
  const seconds = m ? Number(m[2]) : 0;
  if (!m || count < 1 || seconds <= 0 || seconds > 3600) {
    throw new ExitError(`--stagger takes NODES/SECONDS, e.g. --stagger 40/2 (40 nodes every 2 s), not "${text.slice(0, 20)}"`);
  }
  return { count, seconds };
}

export function numberOption(ctx: ToolContext, name: string, fallback: number, min: number, max: number, integer: boolean): number {
  const text = ctx.args.options.get(name);
  if (text === undefined) return fallback;
  const n = typeof text === 'string' && /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max) || (integer && !Number.isInteger(n))) {
    throw new ExitError(`--${name} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}, not "${String(text).slice(0, 20)}"`);
  }
  return n;
}

/** The text after `n3: `. */
export function answerText(a: NodePowerAnswer): string {
  if (!a.ok) return `ERROR: ${safeText(a.error ?? 'failed')}`;
  return safeText(a.result ?? a.state ?? 'ok');
}

/**
 * `-i IDS power ACTION [--fanout N] [--stagger N/SECONDS] [--timeout SECONDS]`: one streaming
 * `POST /nodes/power` for all nodes; the head node works on --fanout nodes at once, starts at most N
 * nodes every SECONDS with --stagger, and sends each node's answer as it comes, printed at once.
 * ExitError naming the failed nodes when any failed.
 */
export async function nodePower(ctx: ToolContext, words: readonly string[]): Promise<void> {
  const [action, ...rest] = words;
  if (action === undefined || !(POWER_WORDS as readonly string[]).includes(action)) {
    throw new ExitError(`power needs one of ${POWER_WORDS.join(', ')} (e.g. cw-nodectl -i n[0-3] power status)`);
  }
  if (rest.length > 0) throw new ExitError(`power takes one action, not "${rest.join(' ').slice(0, 40)}"`);
  const fanout = numberOption(ctx, 'fanout', DEFAULT_FANOUT, 1, MAX_FANOUT, true);
  const timeout = numberOption(ctx, 'timeout', DEFAULT_TIMEOUT_S, 0.001, MAX_TIMEOUT_S, false);
  const staggerText = ctx.args.options.get('stagger');
  if (staggerText === true) throw new ExitError('--stagger takes NODES/SECONDS, e.g. --stagger 40/2');
  const stagger = staggerText === undefined ? undefined : parseStagger(staggerText);

  const nodes = await selectObjects(ctx, NODES, { action: 'power', required: true });
  const names = nodes.map(labelOf);
  const json = ctx.args.common.format !== 'plain';
  const answers = await streamAnswers<NodePowerAnswer>(ctx, '/nodes/power', names, {
    body: { action, fanout, timeout, ...(stagger ? { stagger: { nodes: stagger.count, seconds: stagger.seconds } } : {}) },
    normalize: (line) => line as unknown as NodePowerAnswer,
    missing: (name, error) => ({ name, ok: false, error }),
    onAnswer: (answer) => {
      if (!json) ctx.out(`${safeText(answer.name)}: ${answerText(answer)}\n`);
    },
  });

  if (json) {
    const doc: JsonObject = {};
    for (const name of names) {
      const { name: _n, ...fields } = answers.get(name) as NodePowerAnswer;
      doc[name] = fields as JsonObject;
    }
    ctx.out(renderJson(doc, ctx.args.common.format));
  }
  const failed = names.filter((n) => answers.get(n)?.ok !== true);
  if (failed.length > 0) {
    throw new ExitError(`power ${action} failed on ${failed.length} of ${names.length} node${names.length === 1 ? '' : 's'}: ${compressNames(failed)}`);
  }
}
