// Output shared by every tool. A listing is one document rendered three ways:
//
//   plain (default)          --json                         --pretty
//   Nodes                    {"n0":{"index":0,...},...}      {
//     n0                                                       "n0": {
//       index: 0                                                 "index": 0,
//       ip: 10.0.0.100
//
// Plain output sorts fields by name, shows lists item by item and an empty list as `[]`, as the
// ClusterWare tools do. Text from the server is shown with control characters escaped, so a stored
// value cannot move the cursor or rewrite the terminal.

import { formatBytes } from '../../lib/bytes.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export type OutputFormat = 'plain' | 'json' | 'pretty';

/** One object in a listing: its heading and, for `-l`/`-L`, its fields. */
export interface ListingEntry {
  label: string;
  fields?: JsonObject;
}

/**
 * Renders a listing. Plain: the title, then each label indented by two, then (with fields) each field
 * by four. JSON: an array of labels when no entry has fields, else an object label -> fields.
 */
export function renderListing(title: string, entries: readonly ListingEntry[], format: OutputFormat): string {
  const withFields = entries.some((e) => e.fields !== undefined);
  if (format !== 'plain') {
    const doc: Json = withFields
      ? Object.fromEntries(entries.map((e) => [e.label, e.fields ?? {}]))
      : entries.map((e) => e.label);
    return renderJson(doc, format);
  }
  const lines: string[] = [title];
  for (const e of entries) {
    lines.push(`  ${safeText(e.label)}`);
    if (e.fields) renderFields(e.fields, 4, lines);
  }
  return `${lines.join('\n')}\n`;
}

/** JSON text with a trailing newline: one line for `json`, two-space indents for `pretty`. */
/**
 * A plain table: the header and rows in columns two spaces apart, each as wide as its widest cell (the
 * last one not padded). `columns(['A', 'NAME'], [['x', 'y']])` → `['A  NAME', 'x  y']`.
 */
export function columns(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)];
}

export function renderJson(value: unknown, format: OutputFormat): string {
  return `${JSON.stringify(value, null, format === 'pretty' ? 2 : undefined)}\n`;
}

/** Plain lines of an object's fields at `indent` spaces, sorted by name, appended to `lines`. */
export function renderFields(obj: JsonObject, indent: number, lines: string[]): void {
  const pad = ' '.repeat(indent);
  for (const key of Object.keys(obj).sort(compareKeys)) {
    const value = obj[key] as Json;
    const k = safeText(key);
    if (value === null) {
      lines.push(`${pad}${k}: none`);
    } else if (Array.isArray(value)) {
      if (value.length === 0) {
        lines.push(`${pad}${k}: []`);
        continue;
      }
      lines.push(`${pad}${k}`);
      value.forEach((item, i) => {
        if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
          lines.push(`${pad}  ${i}`);
          renderFields(item, indent + 4, lines);
        } else {
          lines.push(`${pad}  ${scalarText(item, indent + 2)}`);
        }
      });
    } else if (typeof value === 'object') {
      if (Object.keys(value).length === 0) {
        lines.push(`${pad}${k}: {}`);
        continue;
      }
      lines.push(`${pad}${k}`);
      renderFields(value, indent + 2, lines);
    } else {
      lines.push(`${pad}${k}: ${scalarText(value, indent + 2)}`);
    }
  }
}

function scalarText(value: Json, indent: number): string {
  if (value === null) return 'none';
  if (Array.isArray(value) || typeof value === 'object') return safeText(JSON.stringify(value));
  const text = String(value);
  if (!text.includes('\n')) return safeText(text);
  // Multi-line text (a description read from a file) continues under its key.
  return text
    .split(/\r?\n/)
    .map((l) => safeText(l))
    .join(`\n${' '.repeat(indent)}`);
}

const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/;

/** Escapes control characters (ESC, CR, bidi overrides, ...) as `\xNN` / `\u{...}`. */
export function safeText(s: string): string {
  // Nearly every value is printable ASCII: one cheap scan instead of the Unicode replace.
  if (!NOT_PRINTABLE_ASCII.test(s)) return s;
  return s.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, (ch) => {
    const cp = ch.codePointAt(0) as number;
    return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
  });
}

/** Fields in plain code-unit order, as the ClusterWare tools list them. */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------
// --human

const SIZE_KEYS = /^(size|bytes|.*_size|.*_bytes)$/;
const TIME_KEYS = /^(last_seen|.*_at|.*At|last_modified|date_.*|.*_time)$/;

/** `2025-01-01T12:00:00Z` -> `2025-01-01 12:00:00 UTC (3 min ago)`. */
export function humanTime(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const stamp = new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
  return `${stamp} (${humanAge(now - t)})`;
}

/** `12_000` -> `12 s ago`; future times say `in ...`. */
export function humanAge(ms: number): string {
  const future = ms < 0;
  let s = Math.round(Math.abs(ms) / 1000);
  let text: string;
  if (s < 90) text = `${s} s`;
  else if ((s = Math.round(s / 60)) < 90) text = `${s} min`;
  else if ((s = Math.round(s / 60)) < 48) text = `${s} h`;
  else text = `${Math.round(s / 24)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

/** A copy of `obj` with sizes and timestamps in human units (for plain output only). */
export function humanize(obj: JsonObject, now: number = Date.now()): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(obj)) {
    if (typeof value === 'number' && SIZE_KEYS.test(key)) out[key] = formatBytes(value);
    else if (typeof value === 'string' && TIME_KEYS.test(key)) out[key] = humanTime(value, now);
    else if (value !== null && typeof value === 'object' && !Array.isArray(value)) out[key] = humanize(value, now);
    else out[key] = value;
  }
  return out;
}
