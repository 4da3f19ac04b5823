// `cw-clusterctl clientpkgs ls`: the head node's client packages for diskful nodes (GET
// /install/client/packages) as a table — name, version, type, arch, size, whether an RPM's TAR is
// cached, the file — with files that are not packages marked INVALID and why; --json/--pretty as is.
import { ExitError } from '../../lib/errors.js';
import { clip } from '../common/args.js';
import { isObject } from '../common/collection.js';
import type { ToolContext } from '../common/context.js';
import { columns, renderJson, safeText } from '../common/format.js';
import type { Action } from '../common/run.js';

const COLUMNS = ['NAME', 'VERSION', 'TYPE', 'ARCH', 'SIZE', 'TAR', 'FILE'];

/** The plain table of the listing's rows (as the API sends them). */
export function renderClientPackages(rows: readonly unknown[]): string {
  const problems: string[] = [];
  const cells = rows.filter(isObject).map((r) => {
    const text = (v: unknown): string => (typeof v === 'string' && v !== '' ? safeText(v) : '-');
    const valid = r.valid === true;
    if (!valid) problems.push(`${text(r.type)}/${text(r.file)}: ${text(r.problem)}`);
    return [
      valid ? text(r.name) : 'INVALID',
      text(r.version),
      text(r.type),
      text(r.arch),
      typeof r.size === 'number' ? String(r.size) : '-',
      r.type === 'rpm' && valid ? (r.tar_cached === true ? 'cached' : 'no') : '-',
      text(r.file),
    ];
  });
  if (cells.length === 0) return 'No client packages (put RPMs in clientpkgs/rpm, DEBs in clientpkgs/deb)\n';
  const notes = problems.map((p) => `INVALID ${p}`);
  return `${[...columns(COLUMNS, cells), ...notes].join('\n')}\n`;
}

async function clientPkgsList(ctx: ToolContext, words: string[]): Promise<void> {
  if (words.length > 0) throw new ExitError(`clientpkgs ls takes no arguments (got "${clip(words[0] as string)}")`);
  const rows = await ctx.api().get<unknown>('/install/client/packages');
  if (!Array.isArray(rows)) throw new ExitError('the head node sent no package list');
  const { format } = ctx.args.common;
  ctx.out(format === 'plain' ? renderClientPackages(rows) : renderJson(rows, format));
}

/** `clientpkgs ACTION`. */
export const clientPkgsActions: Record<string, Action> = { ls: clientPkgsList, list: clientPkgsList };
