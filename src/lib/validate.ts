// Edge validators shared by the API, the tools and the config renderers. Anything accepted here may end
// up verbatim in dhcpd.conf, an iPXE script or a kernel command line, so each check is strict.

/** `true` when the value is acceptable, otherwise a short reason (`"contains a newline"`). */
export type Check = true | string;

/** Throws `Error("<what>: <reason>")` when a check failed; for call sites that want exceptions. */
export function ensure(check: Check, what: string): void {
  if (check !== true) throw new Error(`${what}: ${check}`);
}

// ---------------------------------------------------------------------------------------------------
// MAC addresses

const MAC_RE = /^[0-9a-f]{2}([:-])[0-9a-f]{2}\1[0-9a-f]{2}\1[0-9a-f]{2}\1[0-9a-f]{2}\1[0-9a-f]{2}$/i;

/** Whether `s` looks like a MAC address (`aa:bb:..` or `aa-bb-..`, any case), without unicast checks. */
export function looksLikeMac(s: string): boolean {
  return MAC_RE.test(s);
}

/**
 * A NIC's MAC address: six hex pairs separated by all `:` or all `-`, any case; not all-zero and not
 * multicast/broadcast (a DHCP host entry for those can never match a booting node).
 */
export function isValidMac(s: string): Check {
  if (!MAC_RE.test(s)) return 'expected six hex pairs like 52:54:00:00:00:01';
  const first = parseInt(s.slice(0, 2), 16);
  if (/^0{2}([:-]0{2}){5}$/.test(s)) return 'all-zero address';
  if (first & 1) return 'multicast or broadcast address, not a NIC';
  return true;
}

/** Lowercase colon form of a valid MAC (`52-54-00-AB-CD-EF` -> `52:54:00:ab:cd:ef`), else null. */
export function normalizeMac(s: string): string | null {
  if (isValidMac(s) !== true) return null;
  return s.toLowerCase().replaceAll('-', ':');
}

// ---------------------------------------------------------------------------------------------------
// Names, attributes, command lines

const ADMIN_NAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * Admin names (the API's users, `client.authuser`): they become Unix-style login names and comment lines
 * in authorized_keys, so `^[a-z_][a-z0-9_-]{0,31}$`.
 */
export function isValidAdminName(s: string): Check {
  return ADMIN_NAME_RE.test(s) ? true : 'use 1-32 of a-z 0-9 _ -, starting with a letter or _';
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Node, group, boot config and image names: `^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`. */
export function isSafeName(s: string): Check {
  if (s.length === 0) return 'empty name';
  if (s.length > 63) return `name is ${s.length} characters long (limit 63)`;
  if (!NAME_RE.test(s)) {
    if (!/^[A-Za-z0-9]/.test(s)) return 'name must start with a letter or digit';
    return `name contains ${describeChar(firstBad(s, /[A-Za-z0-9._-]/))} (allowed: letters, digits, ".", "_", "-")`;
  }
  return true;
}

const ATTR_KEY_RE = /^_?[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** Attribute keys: `^_?[A-Za-z][A-Za-z0-9_.-]{0,63}$` (a leading `_` marks reserved attributes). */
export function isSafeAttrKey(s: string): Check {
  if (s.length === 0) return 'empty attribute name';
  if (ATTR_KEY_RE.test(s)) return true;
  if (!/^_?[A-Za-z]/.test(s)) return 'attribute name must start with a letter (or "_" and a letter)';
  const bad = firstBad(s, /[A-Za-z0-9_.-]/);
  if (bad !== undefined) return `attribute name contains ${describeChar(bad)}`;
  return `attribute name is ${s.length} characters long (limit 64, plus a leading "_")`;
}

// Control, format (bidi overrides), separators, surrogates and unassigned code points.
const UNPRINTABLE_RE = /[\p{C}\p{Zl}\p{Zp}]/u;
const ATTR_VALUE_FORBIDDEN = /[;{}"'\\]/;

/** Attribute values: printable text without `; { } " ' \`, newline or NUL, at most 1024 characters. */
export function isSafeAttrValue(s: string): Check {
  if (s.length > 1024) return `value is ${s.length} characters long (limit 1024)`;
  const bad = ATTR_VALUE_FORBIDDEN.exec(s) ?? UNPRINTABLE_RE.exec(s);
  if (bad) return `value contains ${describeChar(bad[0])}`;
  return true;
}

const CMDLINE_OK_RE = /^[\x20-\x7e]*$/;
const CMDLINE_FORBIDDEN = /["'`;{}\\]/;
/** iPXE expands `${...}`, splits at `||` and `&&`, treats `#` as a comment and `<>` as redirections. */
const CMDLINE_IPXE = /[$|&#<>]/;
const CMDLINE_CHAR_NAMES: Record<string, string> = {
  '"': 'double quote', "'": 'single quote', '`': 'backquote', ';': 'semicolon', '{': 'brace', '}': 'brace',
  '\\': 'backslash', $: 'dollar', '|': 'pipe', '&': 'ampersand', '#': 'hash', '<': 'less-than', '>': 'greater-than',
};

/**
 * Kernel command lines as they go into an iPXE script (the boot path applies this same check): printable
 * ASCII without quotes, backquote, `;`, `{}`, backslash or iPXE's `$ | & # < >`; at most 2048 characters.
 * The reason names the character, also where `echo` would blank it: `command line contains "#" (hash), which iPXE would interpret`.
 */
export function isSafeCmdline(s: string): Check {
  if (s.length > 2048) return `command line is ${s.length} characters long (limit 2048)`;
  const bad = CMDLINE_FORBIDDEN.exec(s);
  if (bad) return `command line contains ${describeCmdlineChar(bad[0])}`;
  const unprintable = firstBad(s, /[\x20-\x7e]/);
  if (!CMDLINE_OK_RE.test(s)) return `command line contains ${describeCmdlineChar(unprintable)}`;
  const special = CMDLINE_IPXE.exec(s);
  if (special) return `command line contains ${describeCmdlineChar(special[0])}, which iPXE would interpret`;
  return true;
}

/** `"#" (hash)`; control characters as `\x0a (newline)`, the rest as `U+00E9`. */
function describeCmdlineChar(ch: string | undefined): string {
  if (ch === undefined) return 'an invalid character';
  const cp = ch.codePointAt(0) ?? 0;
  if (cp < 0x20 || cp === 0x7f) {
    const named: Record<number, string> = { 0: 'NUL', 9: 'tab', 10: 'newline', 13: 'carriage return' };
    const hex = `\\x${cp.toString(16).padStart(2, '0')}`;
    return named[cp] ? `${hex} (${named[cp]})` : hex;
  }
  if (cp > 0x7e) return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  const shown = ch === '"' ? `'"'` : `"${ch}"`;
  const name = CMDLINE_CHAR_NAMES[ch];
  return name ? `${shown} (${name})` : shown;
}

function firstBad(s: string, allowed: RegExp): string | undefined {
  for (const ch of s) if (!allowed.test(ch)) return ch;
  return undefined;
}

/** `";"` for visible characters, `U+000A (newline)` style for the rest. */
function describeChar(ch: string | undefined): string {
  if (ch === undefined) return 'an invalid character';
  const cp = ch.codePointAt(0) ?? 0;
  const named: Record<number, string> = { 0: 'NUL', 9: 'tab', 10: 'newline', 13: 'carriage return', 32: 'space' };
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  if (named[cp]) return `${hex} (${named[cp]})`;
  if (cp < 0x20 || cp === 0x7f || UNPRINTABLE_RE.test(ch)) return hex;
  return ch === '"' ? `'"'` : `"${ch}"`;
}

/**
 * Most addresses of a dynamic pool: dhcpd keeps a lease for each at every start (a 2^20 pool loads in
 * about half a second and 350 MB; a /8 takes many seconds and GBs, longer than the service may take to start).
 */
export const MAX_DYNAMIC_ADDRESSES = 1 << 20;

/** The cluster's DNS domain when none is set: `.internal` is reserved for private use (`.local` belongs to mDNS). */
export const DEFAULT_DOMAIN = 'cluster.internal';

const DOMAIN_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A DNS domain for the cluster's node names (`n3.DOMAIN`): lowercase dot-separated labels of letters,
 * digits and inner hyphens, at most 63 characters each and 253 in all, no trailing dot, not all digits
 * at the end (a top-level label is never numeric). Example: `isValidDomain('hpc.example.org') === true`.
 */
export function isValidDomain(s: string): Check {
  if (s.length === 0) return 'empty domain';
  if (s.length > 253) return `domain is ${s.length} characters long (limit 253)`;
  if (/[A-Z]/.test(s)) return 'domain must be lowercase';
  const labels = s.split('.');
  for (const label of labels) {
    if (label === '') return 'domain has an empty label (two dots, or a dot at either end)';
    if (label.length > 63) return `domain label "${label.slice(0, 16)}..." is ${label.length} characters long (limit 63)`;
    if (!DOMAIN_LABEL_RE.test(label)) {
      const bad = /[^a-z0-9-]/.exec(label);
      if (bad) return `domain contains ${describeChar(bad[0])} (allowed: lowercase letters, digits, "-" and dots between labels)`;
      return `domain label "${label}" must not start or end with "-"`;
    }
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string)) return 'the last label of a domain must not be all digits';
  return true;
}
