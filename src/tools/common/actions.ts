// The actions every collection tool shares: ls, create, update, set, unset, clone, rm, freeze, unfreeze.
// Each takes the tool's context, its collection table and the words after the action.
import { basename } from 'node:path';
import { ExitError, errorMessage } from '../../lib/errors.js';
import { compressNames } from '../../lib/noderange.js';
import { clip } from './args.js';
import { idOf, isObject, labelOf, type ApiObject, type CollectionSpec } from './collection.js';
import type { ToolContext } from './context.js';
import { humanize, renderJson, renderListing, type JsonObject, type ListingEntry } from './format.js';
import { selectObjects } from './select.js';
import { resolveAttributes, resolveValues, type Upload } from './values.js';

/** File names the upload routes accept for display (`vmlinuz-6.1.0-18-amd64`). */
const UPLOAD_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/** `ls [IDS]`: names, or with -l the main fields, with -L every field. */
export async function listAction(ctx: ToolContext, spec: CollectionSpec, words: readonly string[]): Promise<void> {
  const objects = await selectObjects(ctx, spec, { action: 'ls', required: false, words });
  printListing(ctx, spec, objects);
}

/** Prints a listing at the command line's detail level (or `detail` when given). */
export function printListing(ctx: ToolContext, spec: CollectionSpec, objects: readonly ApiObject[], detail = ctx.args.common.detail): void {
  const { format, showUids, human } = ctx.args.common;
  const entries: ListingEntry[] = objects.map((obj) => {
    let fields: JsonObject | undefined;
    if (detail === 2) {
      fields = { ...obj };
    } else if (detail === 1) {
      fields = {};
      for (const key of spec.long) if (key in obj) fields[key] = obj[key] as JsonObject[string];
    }
    if (showUids && obj.uid !== undefined) fields = { ...fields, uid: obj.uid };
    if (fields && human && format === 'plain') fields = humanize(fields);
    return fields ? { label: labelOf(obj), fields } : { label: labelOf(obj) };
  });
  ctx.out(renderListing(spec.title, entries, format));
}

/** Prints what a write did: `Updated boot config X`, or the objects as JSON with --json/--pretty. */
export function report(ctx: ToolContext, verb: string, spec: CollectionSpec, objects: readonly ApiObject[]): void {
  const { format } = ctx.args.common;
  if (format !== 'plain') {
    ctx.out(renderJson(Object.fromEntries(objects.map((o) => [labelOf(o), o])), format));
    return;
  }
  const names = objects.map(labelOf);
  const what = names.length === 1 ? `${spec.noun} ${names[0]}` : `${names.length} ${spec.nouns}: ${compressNames(names)}`;
  ctx.out(`${verb} ${what}\n`);
}

/** `create key=value...`: POST, then upload `@file` kernels/initramfs; a failed upload removes the new object. */
export async function createAction(ctx: ToolContext, spec: CollectionSpec, words: readonly string[]): Promise<void> {
  const values = await resolveValues(ctx, spec, words, 'create');
  try {
    if (Object.keys(values.body).length === 0) {
      throw new ExitError(`create needs key=value arguments${spec.plural === 'nodes' ? ', e.g. create mac=52:54:00:00:00:01' : ', e.g. create name=NAME'}`);
    }
    const api = ctx.api();
    const created = await api.post<unknown>(`/${spec.plural}`, values.body);
    if (!isObject(created)) throw new ExitError(`the head node did not return the new ${spec.noun}`);
    let result = created as ApiObject;
    if (values.uploads.length > 0) {
      try {
        result = await uploadAll(ctx, spec, result, values.uploads);
      } catch (err) {
        // Leave nothing half made: the object without its kernel would boot nothing.
        await api.delete(`/${spec.singular}/${encodeURIComponent(idOf(result))}`).catch(() => {});
        throw err;
      }
    }
    report(ctx, 'Created', spec, [result]);
  } finally {
    await values.close();
  }
}

/** `-i IDS update key=value...`: PATCH each selected object, then upload any files. */
export async function updateAction(ctx: ToolContext, spec: CollectionSpec, words: readonly string[]): Promise<void> {
  if (words.length === 0) throw new ExitError('update needs key=value arguments, e.g. update description="new text"');
  const values = await resolveValues(ctx, spec, words, 'update');
  try {
    const objects = await selectObjects(ctx, spec, { action: 'update', required: true });
    const api = ctx.api();
    const done: ApiObject[] = [];
    for (const obj of objects) {
      let result = obj;
      try {
        if (Object.keys(values.body).length > 0) {
          const patched = await api.patch<unknown>(`/${spec.singular}/${encodeURIComponent(idOf(obj))}`, values.body);
          result = isObject(patched) ? (patched as ApiObject) : obj;
        }
        if (values.uploads.length > 0) result = await uploadAll(ctx, spec, result, values.uploads);
      } catch (err) {
        if (done.length === 0) throw err;
        throw new ExitError(`${errorMessage(err)} (already updated: ${compressNames(done.map(labelOf))})`);
      }
      done.push(result);
    }
    report(ctx, 'Updated', spec, done);
  } finally {
    await values.close();
  }
}

/** Streams each upload to `PUT /singular/:id/FIELD` and returns the object as it is afterwards. */
async function uploadAll(ctx: ToolContext, spec: CollectionSpec, obj: ApiObject, uploads: readonly Upload[]): Promise<ApiObject> {
  const api = ctx.api();
  const id = encodeURIComponent(idOf(obj));
  let result = obj;
  for (const u of uploads) {
    // The file's own name is shown beside the boot config when it is a plain one; the path stays here.
    const name = basename(u.file.path);
    const query = UPLOAD_NAME_RE.test(name) ? { filename: name } : undefined;
    const answer = await api.upload<unknown>(`/${spec.singular}/${id}/${u.field}`, { open: () => u.file.stream(), size: u.file.size }, query);
    if (isObject(answer) && (answer.uid !== undefined || answer.name !== undefined)) result = answer as ApiObject;
  }
  if (result === obj) {
    const fresh = await api.get<unknown>(`/${spec.singular}/${id}`);
    if (isObject(fresh)) result = fresh as ApiObject;
  }
  return result;
}

/** `set k=v...` on attribute groups (nodes have their own, one request for the whole range). */
export async function setAttributesAction(ctx: ToolContext, spec: CollectionSpec, words: readonly string[]): Promise<void> {
  const attrs = await resolveAttributes(ctx, words);
  const objects = await selectObjects(ctx, spec, { action: 'set', required: true });
  const done: ApiObject[] = [];
  for (const obj of objects) {
    const answer = await ctx.api().patch<unknown>(`/${spec.singular}/${encodeURIComponent(idOf(obj))}`, { attributes: attrs });
    done.push(isObject(answer) ? (answer as ApiObject) : obj);
  }
  report(ctx, `Set ${Object.keys(attrs).join(', ')} on`, spec, done);
}

/** `unset k...` on attribute groups: a null value deletes the key (PATCH merge semantics). */
export async function unsetAttributesAction(ctx: ToolContext, spec: CollectionSpec, words: readonly string[]): Promise<void> {
  const keys = attributeNames(words);
  const objects = await selectObjects(ctx, spec, { action: 'unset', required: true });
  const done: ApiObject[] = [];
  for (const obj of objects) {
    const body = { attributes: Object.fromEntries(keys.map((k) => [k, null])) };
    const answer = await ctx.api().patch<unknown>(`/${spec.singular}/${encodeURIComponent(idOf(obj))}`, body);
    done.push(isObject(answer) ? (answer as ApiObject) : obj);
  }
  report(ctx, `Unset ${keys.join(', ')} on`, spec, done);
}

/** The words of `unset`: attribute names, not assignments. */
export function attributeNames(words: readonly string[]): string[] {
  if (words.length === 0) throw new ExitError('unset needs attribute names, e.g. unset _boot_config');
  for (const w of words) {
    if (w.includes('=')) throw new ExitError(`unset takes attribute names without values, not "${clip(w)}"`);
  }
  return [...new Set(words)];
}

/**
 * `-i SOURCE clone name=NEW [key=value...]`: the API copies the object and the files stored beside it
 * (a boot config's kernel and initramfs, an image's content); the other fields given override.
 */
export async function cloneAction(ctx: ToolContext, spec: CollectionSpec, words: readonly string[]): Promise<void> {
  const values = await resolveValues(ctx, spec, words, 'clone');
  try {
    if (typeof values.body.name !== 'string') throw new ExitError('clone needs the new name: clone name=NEW');
    if (values.uploads.length > 0) throw new ExitError('clone copies the files of its source; upload new ones with update after cloning');
    const sources = await selectObjects(ctx, spec, { action: 'clone', required: true });
    if (sources.length !== 1) {
      throw new ExitError(`clone copies one ${spec.noun}, but -i names ${sources.length}: ${compressNames(sources.map(labelOf))}`);
    }
    const source = sources[0] as ApiObject;
    const answer = await ctx.api().post<unknown>(`/${spec.singular}/${encodeURIComponent(idOf(source))}/clone`, values.body);
    const created: ApiObject = isObject(answer) ? (answer as ApiObject) : { name: values.body.name };
    if (ctx.args.common.format === 'plain') ctx.out(`Cloned ${spec.noun} ${labelOf(source)} as ${labelOf(created)}\n`);
    else report(ctx, 'Cloned', spec, [created]);
  } finally {
    await values.close();
  }
}

/** `-i IDS rm`: every selected object is checked first, so one frozen object stops all deletions. */
export async function removeAction(ctx: ToolContext, spec: CollectionSpec, words: readonly string[]): Promise<void> {
  const objects = await selectObjects(ctx, spec, { action: 'rm', required: true, words });
  const frozen = objects.filter((o) => o.frozen === true);
  if (frozen.length > 0 && objects.length > 1) {
    throw new ExitError(`${spec.noun} ${labelOf(frozen[0] as ApiObject)} is frozen, nothing was done (unfreeze it first)`);
  }
  const api = ctx.api();
  const done: ApiObject[] = [];
  for (const obj of objects) {
    try {
      await api.delete(`/${spec.singular}/${encodeURIComponent(idOf(obj))}`);
    } catch (err) {
      if (done.length === 0) throw err;
      throw new ExitError(`${errorMessage(err)} (already deleted: ${compressNames(done.map(labelOf))})`);
    }
    done.push(obj);
  }
  report(ctx, 'Deleted', spec, done);
}

/** `-i IDS freeze` / `unfreeze`: the `frozen` flag alone, as the API requires for unfreezing. */
export async function freezeAction(ctx: ToolContext, spec: CollectionSpec, words: readonly string[], frozen: boolean): Promise<void> {
  const objects = await selectObjects(ctx, spec, { action: frozen ? 'freeze' : 'unfreeze', required: true, words });
  const done: ApiObject[] = [];
  for (const obj of objects) {
    const answer = await ctx.api().patch<unknown>(`/${spec.singular}/${encodeURIComponent(idOf(obj))}`, { frozen });
    done.push(isObject(answer) ? (answer as ApiObject) : obj);
  }
  report(ctx, frozen ? 'Froze' : 'Unfroze', spec, done);
}
