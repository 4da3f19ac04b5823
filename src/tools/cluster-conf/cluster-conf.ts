// cw-cluster-conf: load a cluster.conf (ipranges and node MACs) into the head node, or save the
// current one. The file is parsed here first, so every bad line is reported with its number before
// anything is sent; the head node parses it again and applies it in one transaction.
import { stat } from 'node:fs/promises';
import { writeFileAtomic } from '../../lib/atomic-write.js';
import { ClusterConfError, MAX_CLUSTERCONF_BYTES, parseClusterConf } from '../../lib/clusterconf.js';
import { ExitError, errorMessage } from '../../lib/errors.js';
import { clip } from '../common/args.js';
import { isObject } from '../common/collection.js';
import type { ToolContext, ToolIo } from '../common/context.js';
import { resolveLocalPath, readLocalText } from '../../lib/local-files.js';
import { renderJson, safeText, type Json } from '../common/format.js';
import { runTool, type ToolSpec } from '../common/run.js';

interface ApplyResult {
  nets?: Json;
  created?: Json;
  updated?: Json;
  unchanged?: Json;
  dryRun?: Json;
}

/** `load FILE [--dry-run]`. */
async function load(ctx: ToolContext, words: string[]): Promise<void> {
  if (words.length !== 1) throw new ExitError('load needs one file: cw-cluster-conf load cluster.conf [--dry-run]');
  const file = words[0] as string;
  const dryRun = ctx.args.options.get('dry-run') === true;
  const text = await readLocalText(file, ctx, { maxBytes: MAX_CLUSTERCONF_BYTES, keepNewline: true, label: file });
  try {
    parseClusterConf(text, { fileName: file });
  } catch (err) {
    if (!(err instanceof ClusterConfError)) throw err;
    if (err.problems.length <= 1) throw new ExitError(err.message);
    for (const p of err.problems) ctx.err(`${safeText(p)}\n`);
    throw new ExitError(`${file}: ${err.problems.length} problems, nothing was done`);
  }
  // The head node names the file in its messages too, when the name is plain enough to send.
  const body: Record<string, unknown> = { text, dryRun };
  if (/^[\x21-\x7e]{1,255}$/.test(file)) body.fileName = file;
  const result = await ctx.api().post<ApplyResult>('/cluster/conf', body);
  const { format } = ctx.args.common;
  if (format !== 'plain') {
    ctx.out(renderJson(result, format));
    return;
  }
  ctx.out(describeResult(result, dryRun));
}

/** Plain lines for the result of `POST /cluster/conf`. */
export function describeResult(result: ApplyResult, dryRun: boolean): string {
  const lines: string[] = [];
  const nets = Array.isArray(result?.nets) ? result.nets : [];
  for (const net of nets) {
    if (!isObject(net)) continue;
    const range = net.first !== undefined && net.last !== undefined ? `${String(net.first)} - ${String(net.last)}` : '';
    const cidr = net.network !== undefined && net.prefix !== undefined ? `${String(net.network)}/${String(net.prefix)}` : '';
    const name = typeof net.name === 'string' ? `${net.name} ` : '';
    lines.push(safeText(`Network ${name}${cidr}${range ? `: ${range}` : ''}`.replace(/\s+$/, '')));
  }
  const created = Array.isArray(result?.created) ? result.created : [];
  const updated = Array.isArray(result?.updated) ? result.updated : [];
  const show = (verb: string, list: Json[]) => {
    for (const node of list) {
      if (!isObject(node)) continue;
      const parts = [node.name, node.mac ?? '(no MAC)', node.ip].filter((p) => p !== undefined && p !== null).map(String);
      lines.push(safeText(`${verb} ${parts.join(' ')}`));
    }
  };
  show(dryRun ? 'Would create' : 'Created', created);
  show(dryRun ? 'Would update' : 'Updated', updated);
  const unchanged = typeof result?.unchanged === 'number' ? result.unchanged : 0;
  if (unchanged > 0) lines.push(`${unchanged} node${unchanged === 1 ? ' is' : 's are'} already as the file says`);
  if (created.length === 0 && updated.length === 0 && unchanged === 0) lines.push('No nodes in the file');
  if (dryRun) lines.push('Dry run: nothing was changed');
  return `${lines.join('\n')}\n`;
}

/** `save [FILE]`: the configuration in cluster.conf form, to FILE (replaced atomically) or stdout. */
async function save(ctx: ToolContext, words: string[]): Promise<void> {
  if (words.length > 1) throw new ExitError('save takes at most one file: cw-cluster-conf save [FILE]');
  const answer = await ctx.api().get<{ text?: unknown }>('/cluster/conf');
  if (!isObject(answer) || typeof answer.text !== 'string') throw new ExitError('the head node did not return a cluster configuration');
  const text = answer.text;
  const target = words[0];
  if (target === undefined || target === '-') {
    ctx.out(text);
    return;
  }
  const path = resolveLocalPath(target, ctx);
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isFile()) throw new ExitError(`${target}: exists and is not a regular file`);
  try {
    await writeFileAtomic(path, text, { mode: 0o644, umask: true });
  } catch (err) {
    throw new ExitError(`cannot write ${clip(target)}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
  }
  const nodes = text.split('\n').filter((l) => /^\s*node\s/.test(l)).length;
  ctx.out(`Saved the cluster configuration to ${safeText(target)} (${nodes} node line${nodes === 1 ? '' : 's'})\n`);
}

export const CLUSTER_CONF: ToolSpec = {
  name: 'cw-cluster-conf',
  synopsis: [
    'load FILE [--dry-run]   add the ipranges and nodes of a cluster.conf (--dry-run shows what would change)',
    'save [FILE]             write the current configuration as cluster.conf (default: stdout)',
  ],
  options: [{ long: 'dry-run', help: 'load: show what would change, change nothing' }],
  actions: { load, save },
};

/** `cw-cluster-conf ARGS...` without the process boundary. */
export function clusterConf(argv: readonly string[], io?: ToolIo): Promise<void> {
  return runTool(CLUSTER_CONF, argv, io);
}
