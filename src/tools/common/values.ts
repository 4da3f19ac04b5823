// `key=value` arguments to request bodies. A value beginning with `@` names a local file: its text is
// sent in place of the value, except for upload fields (kernel, initramfs), whose bytes go to the
// API's upload route. Only the bytes travel; the local path never reaches the head node.
import { BootFileSniffer, type BootFileKind } from '../../lib/boot-files.js';
import { ExitError } from '../../lib/errors.js';
import { clip, parseAssignments, type Assignment } from './args.js';
import { bodyOf, isObject, type CollectionSpec } from './collection.js';
import type { ToolContext } from './context.js';
import { MAX_CONTENT_BYTES, openLocalFile, readLocalText, type LocalFile } from '../../lib/local-files.js';
import type { JsonObject } from './format.js';

export interface Upload {
  field: string;
  file: LocalFile;
}

export interface ResolvedValues {
  body: JsonObject;
  uploads: Upload[];
  /** Closes the upload files. */
  close(): Promise<void>;
}

/**
 * Parses `key=value` words, reads `@file` values and opens upload files, all before any request, so a
 * bad file stops the command with nothing changed. `--content JSON|@file.json` gives fields too
 * (the words win). Throws ExitError.
 */
export async function resolveValues(ctx: ToolContext, spec: CollectionSpec, words: readonly string[], action: string): Promise<ResolvedValues> {
  const assignments = parseAssignments(words, action);
  const uploads: Upload[] = [];
  const close = async () => {
    await Promise.all(uploads.map((u) => u.file.close().catch(() => {})));
  };
  try {
    const texts: Assignment[] = [];
    for (const a of assignments) {
      const isFile = a.value.startsWith('@');
      if (spec.fields[a.key] === 'upload') {
        if (!isFile) throw new ExitError(`${a.key} takes a local file: ${a.key}=@/path/to/file`);
        const file = await openLocalFile(a.value.slice(1), ctx, { label: `${a.key}=${clip(a.value)}` });
        uploads.push({ field: a.key, file });
        if (file.size === 0) throw new ExitError(`${a.key}=${clip(a.value)}: file is empty`);
        if (a.key === 'kernel' || a.key === 'initramfs') await checkBootFile(file, a.key, `${a.key}=${clip(a.value)}`);
        continue;
      }
      const value = isFile ? await readLocalText(a.value.slice(1), ctx, { label: `${a.key}=${clip(a.value)}` }) : a.value;
      // Lists read from a file may put one item per line.
      texts.push({ key: a.key, value: isFile && spec.fields[a.key] === 'list' ? value.split(/\r?\n/).join(',') : value });
    }
    const content = await contentOption(ctx);
    const body = { ...(Array.isArray(content) ? {} : content), ...bodyOf(spec, texts) };
    return { body, uploads, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The head node refuses a kernel or initramfs that is not one; checking first gives the same answer
 * before a large upload. Reads only as much as the check needs.
 */
const READ_CHUNK = 1024 * 1024;

async function checkBootFile(file: LocalFile, kind: BootFileKind, label: string): Promise<void> {
  const sniffer = new BootFileSniffer(kind);
  try {
    for (let offset = 0; offset < file.size && sniffer.wantsMore; offset += READ_CHUNK) {
      sniffer.push(await file.readAt(offset, READ_CHUNK));
    }
  } catch (err) {
    throw new ExitError(`${label}: ${(err as Error).message}`);
  }
  const check = sniffer.check();
  if (check !== true) throw new ExitError(`${label}: ${check}`);
}

/** Attribute assignments for `set`: text values, `@file` read inline. */
export async function resolveAttributes(ctx: ToolContext, words: readonly string[]): Promise<Record<string, string>> {
  if (words.length === 0) throw new ExitError('set needs attribute=value arguments, e.g. set _boot_config=DefaultBoot');
  const out: Record<string, string> = {};
  for (const a of parseAssignments(words, 'set')) {
    out[a.key] = a.value.startsWith('@') ? await readLocalText(a.value.slice(1), ctx, { label: `${a.key}=${clip(a.value)}` }) : a.value;
  }
  return out;
}

/** `--content '{"name":"x"}'` or `--content @file.json`: an object (or, where allowed, an array). */
export async function contentOption(ctx: ToolContext, allowArray = false): Promise<JsonObject | JsonObject[] | undefined> {
  const raw = ctx.args.options.get('content');
  if (raw === undefined || raw === true) return undefined;
  const text = raw.startsWith('@')
    ? await readLocalText(raw.slice(1), ctx, { label: `--content ${clip(raw)}`, maxBytes: MAX_CONTENT_BYTES })
    : raw;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ExitError(`--content is not valid JSON: ${(err as Error).message}`);
  }
  if (isObject(parsed)) return parsed;
  if (allowArray && Array.isArray(parsed) && parsed.every(isObject)) return parsed as JsonObject[];
  throw new ExitError(`--content must be a JSON object${allowArray ? ' or an array of objects' : ''}`);
}
