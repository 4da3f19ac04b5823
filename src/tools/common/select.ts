// Which objects an action works on: `-i IDS`, `-a`, or ids given as words (`cw-imgctl ls DefaultImage`).
// Every id is resolved before anything is changed, so a typo in a list changes nothing.
import { ExitError, errorMessage } from '../../lib/errors.js';
import { expandIds, needsNodeList } from '../../lib/noderange.js';
import { ApiError } from './client/api-client.js';
import { clip } from './args.js';
import { asObjectList, isObject, labelOf, sortObjects, type ApiObject, type CollectionSpec } from './collection.js';
import type { ToolContext } from './context.js';

export interface SelectOptions {
  /** The action, for messages (`rm`). */
  action: string;
  /** Without -i/-a/ids: true refuses, false selects every object. */
  required: boolean;
  /** Ids given as words after the action (joined like one `-i`). */
  words?: readonly string[];
}

/** The `-i` spec in force: `-i`, else the words, else undefined (`-a` gives `all`). */
export function idSpec(ctx: ToolContext, words: readonly string[] = []): string | undefined {
  const { ids, all } = ctx.args.common;
  if (words.length > 0) {
    if (ids !== undefined || all) throw new ExitError(`give the ids either with -i/-a or as arguments, not both ("${clip(words.join(' '))}")`);
    return words.join(',');
  }
  if (all) return 'all';
  return ids;
}

/**
 * The selected objects in listing order; throws `No NODES found, nothing was done` when there are none
 * and `No NODE found for ID=x` for ids that name nothing.
 */
export async function selectObjects(ctx: ToolContext, spec: CollectionSpec, opts: SelectOptions): Promise<ApiObject[]> {
  const ids = idSpec(ctx, opts.words);
  if (ids === undefined && opts.required) {
    throw new ExitError(`${opts.action} needs the ${spec.nouns} to act on: -i IDS or -a/--all`);
  }
  const api = ctx.api();
  let found: ApiObject[];
  if (ids === undefined || ids === 'all') {
    found = asObjectList(await api.get(`/${spec.plural}`));
  } else if (spec.nodeRange) {
    found = asObjectList(await api.get(`/${spec.plural}`, { query: { ids } }));
    if (!needsNodeList(ids)) missing(spec, expand(ids), found);
  } else if (needsNodeList(ids)) {
    const every = asObjectList(await api.get(`/${spec.plural}`));
    const wanted = new Set(expand(ids, every.map(labelOf)));
    found = every.filter((o) => wanted.has(labelOf(o)));
  } else {
    found = [];
    const absent: string[] = [];
    for (const id of expand(ids)) {
      try {
        const one = await api.get(`/${spec.singular}/${encodeURIComponent(id)}`);
        if (isObject(one)) found.push(one as ApiObject);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) absent.push(id);
        else throw err;
      }
    }
    if (absent.length > 0) throw notFound(spec, absent);
    found = dedupe(found);
  }
  if (found.length === 0) throw new ExitError(`No ${spec.nouns} found, nothing was done`);
  return sortObjects(spec, found);
}

function expand(spec: string, all?: readonly string[]): string[] {
  try {
    return expandIds(spec, all ? { all } : {});
  } catch (err) {
    throw new ExitError(errorMessage(err));
  }
}

/** Refuses when an id of a plain list (no `all`, `@group`, `/re`) matched no object. */
function missing(spec: CollectionSpec, ids: string[], found: ApiObject[]): void {
  const known = new Set<string>();
  for (const o of found) {
    for (const key of ['uid', 'name', 'mac', 'ip'] as const) {
      const v = o[key];
      if (typeof v === 'string') known.add(v.toLowerCase());
    }
    if (Array.isArray(o.macs)) for (const m of o.macs) if (typeof m === 'string') known.add(m.toLowerCase());
  }
  const absent = ids.filter((id) => !known.has(id.toLowerCase()));
  if (absent.length > 0) throw notFound(spec, absent);
}

function notFound(spec: CollectionSpec, absent: string[]): ExitError {
  const shown = absent.slice(0, 5).join(', ') + (absent.length > 5 ? ` and ${absent.length - 5} more` : '');
  return new ExitError(`No ${spec.noun} found for ID=${shown}, nothing was done`);
}

function dedupe(objects: ApiObject[]): ApiObject[] {
  const seen = new Set<string>();
  return objects.filter((o) => {
    const key = typeof o.uid === 'string' ? o.uid : labelOf(o);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
