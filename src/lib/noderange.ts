// The `-i/--ids` grammar shared by every tool, after xCAT's noderange:
//   n0,n3               names (comma list)
//   n[0-15]  n[0-3,7]   numeric ranges; n[00-15] keeps the zero padding; r[1-2]n[0-3] multiplies
//   52:54:00:AB:CD:EF   MACs (also with "-"), normalized to lowercase colon form
//   0123...cdef         UIDs (32 hex digits), lowercased
//   10.0.0.5            IPv4 addresses
//   all  @group  /re    every node, an attribute group's nodes, names fully matching a regex
//   -n5  -n[0-3]        removes what follows from the ids collected so far (`all,-n5`)
import { isSafeName, isValidMac, looksLikeMac } from './validate.js';
import { isValidIPv4, looksLikeIPv4 } from './ipv4.js';

export type IdKind = 'name' | 'mac' | 'uid' | 'ip';

export interface ExpandOptions {
  /** Every node name, in display order: enables `all` and `/regex`. */
  all?: readonly string[];
  /** Members of an attribute group, or undefined for an unknown group: enables `@group`. */
  groups?: (name: string) => readonly string[] | undefined;
  /** Most ids one spec may produce (default MAX_IDS). */
  limit?: number;
}

/** Refuse specs producing more ids than this: a typo like n[0-1000000] should not hang a tool. */
export const MAX_IDS = 100_000;
const MAX_SPEC_CHARS = 4 * 1024 * 1024;
const MAX_REGEX_CHARS = 200;
/** Quantifiers and alternations one regex may hold: each multiplies the backtracking per name. */
const MAX_REGEX_CHOICES = 3;

const UID_RE = /^[0-9a-f]{32}$/i;

/** What kind of id `s` is, or null when it is none of them. MACs and UIDs win over names. */
export function classifyId(s: string): IdKind | null {
  if (looksLikeMac(s)) return isValidMac(s) === true ? 'mac' : null;
  if (UID_RE.test(s)) return 'uid';
  if (looksLikeIPv4(s)) return isValidIPv4(s) === true ? 'ip' : null;
  return isSafeName(s) === true ? 'name' : null;
}

/** Whether a spec uses `all`, `@group` or `/regex`, i.e. needs the node list before `expandIds`. */
export function needsNodeList(spec: string): boolean {
  return splitTopLevel(spec).some((raw) => {
    const item = raw.trim().replace(/^-/, '');
    return item === 'all' || item.startsWith('@') || item.startsWith('/');
  });
}

/**
 * Expands an `-i` spec to the list of ids it names, in order, without duplicates.
 * `expandIds('n[0-2],52-54-00-00-00-0A')` -> `['n0', 'n1', 'n2', '52:54:00:00:00:0a']`.
 * Throws an Error with a one-line message for anything malformed or too large.
 */
export function expandIds(spec: string, opts: ExpandOptions = {}): string[] {
  const limit = opts.limit ?? MAX_IDS;
  if (spec.length > MAX_SPEC_CHARS) throw new Error(`ids list is ${spec.length} characters long (limit ${MAX_SPEC_CHARS})`);
  const out = new Set<string>();
  let sawItem = false;
  for (const raw of splitTopLevel(spec)) {
    let item = raw.trim();
    if (item === '') continue;
    sawItem = true;
    const exclude = item.startsWith('-');
    if (exclude) {
      item = item.slice(1).trim();
      if (item === '') throw new Error('"-" must be followed by the ids to exclude, as in all,-n5');
    }
    const ids = expandItem(item, opts, limit);
    if (exclude) {
      for (const id of ids) out.delete(id);
    } else {
      for (const id of ids) out.add(id);
      if (out.size > limit) throw new Error(`ids list "${shorten(spec)}" names more than ${limit} ids`);
    }
  }
  if (!sawItem) throw new Error('empty ids list');
  return [...out];
}

/** Splits on commas outside brackets. */
function splitTopLevel(spec: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < spec.length; i++) {
    const c = spec.charCodeAt(i);
    if (c === 91 /* [ */) depth++;
    else if (c === 93 /* ] */ && depth > 0) depth--;
    else if (c === 44 /* , */ && depth === 0) {
      parts.push(spec.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(spec.slice(start));
  return parts;
}

function expandItem(item: string, opts: ExpandOptions, limit: number): string[] {
  if (item === 'all') {
    if (!opts.all) throw new Error('"all" cannot be used here');
    return [...opts.all];
  }
  if (item.startsWith('@')) {
    const group = item.slice(1);
    if (isSafeName(group) !== true) throw new Error(`invalid group name "${shorten(group)}"`);
    if (!opts.groups) throw new Error(`groups ("@${group}") cannot be used here`);
    const members = opts.groups(group);
    if (!members) throw new Error(`unknown group "${group}"`);
    return [...members];
  }
  if (item.startsWith('/')) return matchRegex(item.slice(1), opts);
  if (item.includes('[') || item.includes(']')) {
    return expandBrackets(item, limit).map((id) => normalizeId(id, item));
  }
  return [normalizeId(item, item)];
}

function normalizeId(id: string, source: string): string {
  const where = id === source ? '' : ` (from "${shorten(source)}")`;
  if (looksLikeMac(id)) {
    const check = isValidMac(id);
    if (check !== true) throw new Error(`invalid MAC "${id}"${where}: ${check}`);
    return id.toLowerCase().replaceAll('-', ':');
  }
  if (UID_RE.test(id)) return id.toLowerCase();
  if (looksLikeIPv4(id)) {
    const check = isValidIPv4(id);
    if (check !== true) throw new Error(`invalid IP address "${id}"${where}: ${check}`);
    return id;
  }
  const check = isSafeName(id);
  if (check !== true) throw new Error(`invalid id "${shorten(id)}"${where}: ${check}`);
  return id;
}

function matchRegex(body: string, opts: ExpandOptions): string[] {
  if (!opts.all) throw new Error('"/regex" cannot be used here');
  if (body === '') throw new Error('empty regular expression after "/"');
  if (body.length > MAX_REGEX_CHARS) throw new Error(`regular expression is longer than ${MAX_REGEX_CHARS} characters`);
  const unsafe = backtrackingHazard(body);
  if (unsafe) throw new Error(`regular expression "/${shorten(body)}" ${unsafe}`);
  if (opts.all.length > MAX_IDS) throw new Error(`"/regex" can search at most ${MAX_IDS} names`);
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${body})$`);
  } catch (err) {
    // V8's message repeats the pattern (`Invalid regular expression: /^(?:...)$/: reason`): keep the reason.
    const reason = (err as Error).message.replace(/^Invalid regular expression: \/[\s\S]*\/[a-z]*: /, '');
    throw new Error(`invalid regular expression "/${shorten(body)}": ${shorten(reason)}`);
  }
  return opts.all.filter((name) => re.test(name));
}

/**
 * Why a regex could backtrack for long (the API matches on its only thread), or null. JavaScript's engine
 * backtracks, and no linear-time engine is at hand without a native addon, so the risky constructs are
 * refused: backreferences, lookarounds, a repeated group holding a quantifier or `|` (`(a+)+`), and more
 * than MAX_REGEX_CHOICES quantifiers and alternations in all (names are at most 63 characters, so the
 * work per name stays polynomial of a small degree).
 */
function backtrackingHazard(body: string): string | null {
  // For each open group: whether it holds a quantifier or an alternation.
  const groups: boolean[] = [];
  let choices = 0;
  let lastGroupChoosy = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    const next = body[i + 1];
    const quantifier = c === '*' || c === '+' || c === '?' || (c === '{' && /^\{\d+(,\d*)?\}/.test(body.slice(i)));
    if (c === '\\') {
      if (next !== undefined && /[1-9k]/.test(next)) return 'uses a backreference; not allowed here';
      i++;
      lastGroupChoosy = false;
      continue;
    }
    if (c === '[') {
      // A character class is one atom: skip to its closing bracket.
      let j = i + 1;
      if (body[j] === '^') j++;
      if (body[j] === ']') j++;
      while (j < body.length && body[j] !== ']') j += body[j] === '\\' ? 2 : 1;
      i = j;
      lastGroupChoosy = false;
      continue;
    }
    if (c === '(') {
      if (next === '?' && /^\(\?(=|!|<=|<!)/.test(body.slice(i))) return 'uses a lookaround; not allowed here';
      groups.push(false);
      // `(?:` and `(?<name>` open groups too; their `?` is no quantifier.
      const opener = /^\(\?(?::|<[A-Za-z_$][\w$]*>)/.exec(body.slice(i));
      if (opener) i += opener[0].length - 1;
      lastGroupChoosy = false;
      continue;
    }
    if (c === ')') {
      lastGroupChoosy = groups.pop() ?? false;
      if (lastGroupChoosy && groups.length > 0) groups[groups.length - 1] = true;
      continue;
    }
    if (quantifier) {
      // A lazy or possessive marker after a quantifier is part of it.
      if (c === '?' && i > 0 && /[*+?}]/.test(body[i - 1]!)) continue;
      if (lastGroupChoosy) return 'repeats a group that holds a quantifier or "|" (nested quantifiers backtrack exponentially); not allowed here';
      choices++;
      if (groups.length > 0) groups[groups.length - 1] = true;
      if (c === '{') i = body.indexOf('}', i);
      lastGroupChoosy = false;
      continue;
    }
    if (c === '|') {
      choices++;
      if (groups.length > 0) groups[groups.length - 1] = true;
    }
    lastGroupChoosy = false;
  }
  if (choices > MAX_REGEX_CHOICES) return `holds ${choices} quantifiers and alternations (limit ${MAX_REGEX_CHOICES}); not allowed here`;
  return null;
}

/** One bracket group: the numbers it lists and the width to pad them to (0 = no padding). */
interface NumberSet {
  numbers: number[];
  widths: number[];
}

/** `r[1-2]n[00-01]` -> r1n00, r1n01, r2n00, r2n01. */
function expandBrackets(item: string, limit: number): string[] {
  const literals: string[] = [];
  const sets: NumberSet[] = [];
  let pos = 0;
  for (;;) {
    const open = item.indexOf('[', pos);
    const close = item.indexOf(']', pos);
    if (open === -1) {
      if (close !== -1) throw new Error(`unbalanced "]" in "${shorten(item)}"`);
      literals.push(item.slice(pos));
      break;
    }
    if (close !== -1 && close < open) throw new Error(`unbalanced "]" in "${shorten(item)}"`);
    if (close === -1) throw new Error(`unbalanced "[" in "${shorten(item)}"`);
    const body = item.slice(open + 1, close);
    if (body.includes('[')) throw new Error(`nested "[" in "${shorten(item)}"`);
    literals.push(item.slice(pos, open));
    sets.push(parseNumberSet(body, item, limit));
    pos = close + 1;
  }

  let total = 1;
  for (const s of sets) total *= s.numbers.length;
  if (total > limit) throw new Error(`"${shorten(item)}" expands to ${total} ids (limit ${limit})`);

  let acc: string[] = [literals[0] ?? ''];
  sets.forEach((set, i) => {
    const tail = literals[i + 1] ?? '';
    const parts = set.numbers.map((n, j) => String(n).padStart(set.widths[j] ?? 0, '0') + tail);
    const next: string[] = new Array(acc.length * parts.length);
    let k = 0;
    for (const head of acc) for (const part of parts) next[k++] = head + part;
    acc = next;
  });
  return acc;
}

const RANGE_PART_RE = /^(\d{1,15})(?:-(\d{1,15}))?$/;

function parseNumberSet(body: string, item: string, limit: number): NumberSet {
  const numbers: number[] = [];
  const widths: number[] = [];
  for (const rawPart of body.split(',')) {
    const part = rawPart.trim();
    const m = RANGE_PART_RE.exec(part);
    if (!m) {
      throw new Error(`bad range "[${shorten(body)}]" in "${shorten(item)}": expected numbers like [0-15] or [1,3,5-7]`);
    }
    const loText = m[1] as string;
    const hiText = m[2] ?? loText;
    const lo = Number(loText);
    const hi = Number(hiText);
    if (hi < lo) throw new Error(`range "${part}" in "${shorten(item)}" runs backwards`);
    if (numbers.length + (hi - lo + 1) > limit) {
      throw new Error(`"${shorten(item)}" expands to more than ${limit} ids (limit ${limit})`);
    }
    // Zero padding as in bash's {00..15}: a leading zero on either bound pads to the wider bound.
    const padded = (loText.length > 1 && loText[0] === '0') || (hiText.length > 1 && hiText[0] === '0');
    const width = padded ? Math.max(loText.length, hiText.length) : 0;
    for (let n = lo; n <= hi; n++) {
      numbers.push(n);
      widths.push(width);
    }
  }
  return { numbers, widths };
}

/** A spec quoted in a one-line message: clipped, control and separator characters as `?`. */
function shorten(s: string): string {
  const shown = s.replace(/[\p{C}\p{Zl}\p{Zp}]/gu, '?');
  return shown.length > 60 ? `${shown.slice(0, 57)}...` : shown;
}

// ---------------------------------------------------------------------------------------------------
// Display

/** Natural order: `n2` before `n10`; numbers compare by value, text by code unit. */
export function compareNames(a: string, b: string): number {
  const ra = a.match(/\d+|\D+/g) ?? [];
  const rb = b.match(/\d+|\D+/g) ?? [];
  const n = Math.min(ra.length, rb.length);
  for (let i = 0; i < n; i++) {
    const x = ra[i] as string;
    const y = rb[i] as string;
    if (x === y) continue;
    const dx = x.charCodeAt(0) >= 48 && x.charCodeAt(0) <= 57;
    const dy = y.charCodeAt(0) >= 48 && y.charCodeAt(0) <= 57;
    if (dx && dy) {
      const tx = x.replace(/^0+(?=\d)/, '');
      const ty = y.replace(/^0+(?=\d)/, '');
      if (tx.length !== ty.length) return tx.length - ty.length;
      if (tx !== ty) return tx < ty ? -1 : 1;
      return x.length - y.length;
    }
    return x < y ? -1 : 1;
  }
  return ra.length - rb.length;
}

const NUMBERED_RE = /^(.*?)(\d{1,15})(\D*)$/;

interface NameGroup {
  prefix: string;
  suffix: string;
  /** 0 for plain numbers, else the zero-padded width. */
  width: number;
  numbers: Set<number>;
}

/**
 * Compresses names back to the range form for display, sorted naturally:
 * `compressNames(['n0','n1','n2','n3','n7','login'])` -> `'login,n[0-3,7]'`.
 * MACs, UIDs and IPs are listed as they are. `expandIds` of the result gives the same set.
 */
export function compressNames(names: Iterable<string>): string {
  const plain = new Set<string>();
  const groups = new Map<string, NameGroup>();
  const unpadded: Array<{ prefix: string; suffix: string; digits: string }> = [];
  for (const name of new Set(names)) {
    const m = classifyId(name) === 'name' ? NUMBERED_RE.exec(name) : null;
    if (!m) {
      plain.add(name);
      continue;
    }
    const [, prefix = '', digits = '', suffix = ''] = m;
    if (digits.length > 1 && digits[0] === '0') {
      groupFor(groups, prefix, suffix, digits.length).numbers.add(Number(digits));
    } else {
      unpadded.push({ prefix, suffix, digits });
    }
  }
  // A plain number as wide as a padded group of the same stem (n10 beside n08) belongs to that group.
  for (const { prefix, suffix, digits } of unpadded) {
    const padded = groups.get(groupKey(prefix, suffix, digits.length));
    (padded ?? groupFor(groups, prefix, suffix, 0)).numbers.add(Number(digits));
  }

  const entries: Array<{ key: string; text: string }> = [...plain].map((p) => ({ key: p, text: p }));
  for (const g of groups.values()) {
    const sorted = [...g.numbers].sort((a, b) => a - b);
    const fmt = (n: number) => String(n).padStart(g.width, '0');
    const first = `${g.prefix}${fmt(sorted[0] as number)}${g.suffix}`;
    if (sorted.length === 1) {
      entries.push({ key: first, text: first });
      continue;
    }
    const runs: string[] = [];
    for (let i = 0; i < sorted.length; ) {
      let j = i;
      while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
      runs.push(i === j ? fmt(sorted[i] as number) : `${fmt(sorted[i] as number)}-${fmt(sorted[j] as number)}`);
      i = j + 1;
    }
    entries.push({ key: first, text: `${g.prefix}[${runs.join(',')}]${g.suffix}` });
  }
  entries.sort((a, b) => compareNames(a.key, b.key));
  return entries.map((e) => e.text).join(',');
}

function groupKey(prefix: string, suffix: string, width: number): string {
  return `${prefix}\0${suffix}\0${width}`;
}

function groupFor(groups: Map<string, NameGroup>, prefix: string, suffix: string, width: number): NameGroup {
  const key = groupKey(prefix, suffix, width);
  let g = groups.get(key);
  if (!g) {
    g = { prefix, suffix, width, numbers: new Set() };
    groups.set(key, g);
  }
  return g;
}
