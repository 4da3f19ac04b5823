// One streaming request for a whole node selection (`POST /nodes/power|exec|reboot|shutdown` with
// `Accept: application/x-ndjson`): the head node does the fan-out under its per-node deadline and sends
// each node's line as it answers; the tool prints it at once. The summary line ends the stream.
import { errorMessage } from '../../lib/errors.js';
import { isObject } from '../common/collection.js';
import type { ToolContext } from '../common/context.js';

export interface NodeAnswer {
  name: string;
  ok: boolean;
  error?: string;
}

export interface StreamAnswersOptions<A extends NodeAnswer> {
  /** The body of the request; `ids` is added (the selected names). */
  body: Record<string, unknown>;
  /** Wait this long for the answer's headers (an older head node answers only at the end). */
  timeoutMs?: number;
  /** Longest line accepted (exec lines carry output). */
  maxLineBytes?: number;
  /** A node's answer from its line (fields checked, defaults filled). */
  normalize(line: Record<string, unknown> & NodeAnswer): A;
  /** A node's answer without its line: the stream broke or the head node left it out. */
  missing(name: string, error: string): A;
  /** Called with each answer as it arrives, in the order the nodes answer. */
  onAnswer(answer: A): void;
}

/**
 * Sends `POST path` for `names` as one stream and gives every node's answer by name. A refusal of the
 * whole request (no such nodes, bad option) throws as any API call; a stream that breaks on the way
 * answers the nodes not yet heard from with the reason.
 * Example: `await streamAnswers(ctx, '/nodes/power', ['n0', 'n1'], { body: { action: 'status' }, ... })`.
 */
export async function streamAnswers<A extends NodeAnswer>(ctx: ToolContext, path: string, names: readonly string[], opts: StreamAnswersOptions<A>): Promise<Map<string, A>> {
  const api = ctx.api();
  const wanted = new Set(names);
  const answers = new Map<string, A>();
  let trouble: string | undefined;
  let started = false;
  try {
    const lines = api.stream<unknown>('POST', path, {
      body: { ids: names.join(','), ...opts.body },
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      ...(opts.maxLineBytes === undefined ? {} : { maxLineBytes: opts.maxLineBytes }),
    });
    for await (const line of lines) {
      started = true;
      if (!isObject(line)) continue;
      if (line.done === true) {
        if (typeof line.error === 'string') trouble = `the head node stopped: ${line.error}`;
        continue;
      }
      if (typeof line.name !== 'string' || typeof line.ok !== 'boolean' || !wanted.has(line.name) || answers.has(line.name)) continue;
      const answer = opts.normalize(line as Record<string, unknown> & NodeAnswer);
      answers.set(answer.name, answer);
      opts.onAnswer(answer);
    }
  } catch (err) {
    if (!started) throw err;
    trouble = errorMessage(err);
  }
  for (const name of names) {
    if (answers.has(name)) continue;
    const answer = opts.missing(name, trouble ?? 'the head node sent no answer for this node');
    answers.set(name, answer);
    opts.onAnswer(answer);
  }
  return answers;
}
