// `cw-nodectl -i NODES exec CMD ARGS...`: the command as root on every node over ssh (through the API),
// each node's lines as it answers, stdout to stdout and stderr to stderr, every line prefixed `n3: `.
// `--collate` waits for all and prints identical outputs once under a node range (`n[0-7,9]: ...`).
// `--stdin @FILE` gives the file to the command on every node. Exit status non-zero when any node
// failed, the last line naming them. One streaming `POST /nodes/exec` for all nodes: the head node does
// the fan-out (--fanout) under the per-node deadline (--timeout).
import { ExitError } from '../../lib/errors.js';
import { MAX_INLINE_BYTES, readLocalText } from '../../lib/local-files.js';
import { compressNames } from '../../lib/noderange.js';
import { labelOf, NODES } from '../common/collection.js';
import type { ToolContext } from '../common/context.js';
import { renderJson, safeText, type JsonObject } from '../common/format.js';
import { selectObjects } from '../common/select.js';
import { DEFAULT_FANOUT, MAX_FANOUT, numberOption } from './power.js';
import { streamAnswers } from './stream.js';

export const DEFAULT_EXEC_TIMEOUT_S = 60;
/** The API's limit (below nginx's read timeout). */
export const MAX_EXEC_TIMEOUT_S = 540;
/** Extra time the API gets beyond the node's deadline to answer (a head node that does not stream). */
const ANSWER_MARGIN_MS = 15_000;
/** Longest streamed line: up to 1 MiB of stdout and of stderr, JSON-escaped. */
export const MAX_EXEC_LINE_BYTES = 16 * 1024 * 1024;

/** One node's answer as the API gives it. */
export interface NodeExecAnswer {
  name: string;
  ok: boolean;
  exit_code?: number;
  stdout: string;
  stderr: string;
  error?: string;
}

/** Lines of an output: the final newline ends the last line, it does not start an empty one. */
export function linesOf(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Every line of `text` prefixed `LABEL: `, each ending in a newline. `prefixLines('n3', 'a\nb\n')` -> `n3: a\nn3: b\n`. */
export function prefixLines(label: string, text: string): string {
  return linesOf(text)
    .map((l) => `${label}: ${l}\n`)
    .join('');
}

/** Nodes with the same text, in the order each text was first seen. */
export interface Collated {
  names: string[];
  text: string;
}

/**
 * Groups nodes by identical text (empty texts left out), in node order.
 * `collate([{name:'n0',text:'x'},{name:'n1',text:'y'},{name:'n2',text:'x'}])` -> `[{names:['n0','n2'],text:'x'}, {names:['n1'],text:'y'}]`.
 */
export function collate(outputs: ReadonlyArray<{ name: string; text: string }>): Collated[] {
  const groups = new Map<string, Collated>();
  for (const { name, text } of outputs) {
    if (text === '') continue;
    const group = groups.get(text);
    if (group) group.names.push(name);
    else groups.set(text, { names: [name], text });
  }
  return [...groups.values()];
}

/** The collated form of many texts: `n[0-7,9]: Linux 6.1.0`. */
export function renderCollated(outputs: ReadonlyArray<{ name: string; text: string }>): string {
  return collate(outputs)
    .map((g) => prefixLines(safeText(compressNames(g.names)), g.text))
    .join('');
}

/** The one-line error of a failed node (`ERROR: exit status 2`), or '' when it did not fail. */
export function errorLine(a: NodeExecAnswer): string {
  return a.ok ? '' : `ERROR: ${safeText(a.error ?? 'failed')}\n`;
}

/** The ExitError naming the failed nodes, or undefined when none failed. */
export function failure(what: string, names: readonly string[], failed: readonly string[]): ExitError | undefined {
  if (failed.length === 0) return undefined;
  return new ExitError(`${what} failed on ${failed.length} of ${names.length} node${names.length === 1 ? '' : 's'}: ${compressNames(failed)}`);
}

/** `-i IDS exec [--collate] [--stdin @FILE] [--fanout N] [--timeout S] CMD ARGS...`. */
export async function nodeExec(ctx: ToolContext, words: readonly string[]): Promise<void> {
  if (words.length === 0) throw new ExitError('exec needs a command, e.g. cw-nodectl -i n[0-3] exec uname -r');
  const fanout = numberOption(ctx, 'fanout', DEFAULT_FANOUT, 1, MAX_FANOUT, true);
  const timeout = numberOption(ctx, 'timeout', DEFAULT_EXEC_TIMEOUT_S, 0.001, MAX_EXEC_TIMEOUT_S, false);
  const collated = ctx.args.options.get('collate') === true;
  const stdinOption = ctx.args.options.get('stdin');
  let stdin: string | undefined;
  if (stdinOption !== undefined) {
    if (stdinOption === true || !stdinOption.startsWith('@')) throw new ExitError('--stdin takes @FILE, e.g. --stdin @job.sh');
    stdin = await readLocalText(stdinOption.slice(1), ctx, { label: `--stdin ${stdinOption.slice(0, 60)}`, keepNewline: true, maxBytes: MAX_INLINE_BYTES });
  }

  const nodes = await selectObjects(ctx, NODES, { action: 'exec', required: true });
  const names = nodes.map(labelOf);
  const json = ctx.args.common.format !== 'plain';
  const answers = await streamAnswers<NodeExecAnswer>(ctx, '/nodes/exec', names, {
    body: { command: [...words], fanout, timeout, ...(stdin === undefined ? {} : { stdin }) },
    timeoutMs: timeout * 1000 + ANSWER_MARGIN_MS,
    maxLineBytes: MAX_EXEC_LINE_BYTES,
    normalize: (line) => ({
      ...(line as unknown as NodeExecAnswer),
      stdout: typeof line.stdout === 'string' ? line.stdout : '',
      stderr: typeof line.stderr === 'string' ? line.stderr : '',
    }),
    missing: (name, error) => ({ name, ok: false, stdout: '', stderr: '', error }),
    onAnswer: (a) => {
      if (json || collated) return;
      const label = safeText(a.name);
      ctx.out(prefixLines(label, a.stdout));
      ctx.err(prefixLines(label, a.stderr) + (a.ok ? '' : `${label}: ${errorLine(a)}`));
    },
  });

  const all = names.map((n) => answers.get(n) as NodeExecAnswer);
  if (json) {
    const doc: JsonObject = {};
    for (const { name: _n, ...fields } of all) doc[_n] = fields as JsonObject;
    ctx.out(renderJson(doc, ctx.args.common.format));
  } else if (collated) {
    ctx.out(renderCollated(all.map((a) => ({ name: a.name, text: a.stdout }))));
    ctx.err(renderCollated(all.map((a) => ({ name: a.name, text: a.stderr + errorLine(a) }))));
  }
  const failed = all.filter((a) => !a.ok).map((a) => a.name);
  const error = failure('exec', names, failed);
  if (error) throw error;
}
