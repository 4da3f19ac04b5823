// `cw-nodectl -i NODES reboot|shutdown [--soft|--hard] [--timeout 60]` (seed 003): --soft runs the node's
// /usr/sbin/reboot or `/usr/sbin/shutdown -h now` over ssh; --hard is the power_uri's reset or off;
// neither is soft when the node is up and answers, then hard when it is still up after --timeout.
// One line per node as it answers: `n3: soft reboot`, `n4: hard reset (not up)`, from one streaming
// `POST /nodes/reboot|shutdown` (the head node does the fan-out).
import { ExitError } from '../../lib/errors.js';
import { labelOf, NODES } from '../common/collection.js';
import type { ToolContext } from '../common/context.js';
import { renderJson, safeText, type JsonObject } from '../common/format.js';
import { selectObjects } from '../common/select.js';
import { failure } from './exec.js';
import { DEFAULT_FANOUT, MAX_FANOUT, numberOption } from './power.js';
import { streamAnswers } from './stream.js';

export const DEFAULT_DOWN_TIMEOUT_S = 60;
export const MAX_DOWN_TIMEOUT_S = 540;
/** Time a head node that does not stream may take beyond --timeout: the soft command (15 s), the power action (10 s), slack. */
const ANSWER_MARGIN_MS = 40_000;

export interface NodeRebootAnswer {
  name: string;
  ok: boolean;
  result?: string;
  note?: string;
  error?: string;
}

/** The text after `n3: `: `soft reboot`, `hard off (still up 60 s after the soft shutdown)`, `ERROR: ...`. */
export function rebootText(action: 'reboot' | 'shutdown', a: NodeRebootAnswer): string {
  if (!a.ok) return `ERROR: ${safeText(a.error ?? 'failed')}`;
  const what = a.result === 'hard' ? `hard ${action === 'reboot' ? 'reset' : 'off'}` : `soft ${action}`;
  return a.note ? `${what} (${safeText(a.note)})` : what;
}

/** `-i IDS reboot|shutdown [--soft|--hard] [--timeout S] [--fanout N]`. */
export async function nodeReboot(ctx: ToolContext, action: 'reboot' | 'shutdown', words: readonly string[]): Promise<void> {
  if (words.length > 0) throw new ExitError(`${action} takes no arguments, not "${words.join(' ').slice(0, 40)}" (use --soft or --hard)`);
  const soft = ctx.args.options.get('soft') === true;
  const hard = ctx.args.options.get('hard') === true;
  if (soft && hard) throw new ExitError('use either --soft or --hard, not both');
  const mode = soft ? 'soft' : hard ? 'hard' : 'auto';
  const fanout = numberOption(ctx, 'fanout', DEFAULT_FANOUT, 1, MAX_FANOUT, true);
  const timeout = numberOption(ctx, 'timeout', DEFAULT_DOWN_TIMEOUT_S, 0.001, MAX_DOWN_TIMEOUT_S, false);

  const nodes = await selectObjects(ctx, NODES, { action, required: true });
  const names = nodes.map(labelOf);
  const json = ctx.args.common.format !== 'plain';
  const answers = await streamAnswers<NodeRebootAnswer>(ctx, `/nodes/${action}`, names, {
    body: { mode, fanout, timeout },
    timeoutMs: timeout * 1000 + ANSWER_MARGIN_MS,
    normalize: (line) => line as unknown as NodeRebootAnswer,
    missing: (name, error) => ({ name, ok: false, error }),
    onAnswer: (a) => {
      if (!json) ctx.out(`${safeText(a.name)}: ${rebootText(action, a)}\n`);
    },
  });
  if (json) {
    const doc: JsonObject = {};
    for (const name of names) {
      const { name: _n, ...fields } = answers.get(name) as NodeRebootAnswer;
      doc[name] = fields as JsonObject;
    }
    ctx.out(renderJson(doc, ctx.args.common.format));
  }
  const error = failure(action, names, names.filter((n) => answers.get(n)?.ok !== true));
  if (error) throw error;
}
