import { access, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { isIPv4 } from '../../lib/ipv4.js';
import { isValidDomain } from '../../lib/validate.js';

const TOKEN = Symbol('SafeText');

/**
 * Text that may be pasted into a daemon's configuration: produced only by the validators below or by
 * `conf`, never from a raw string, so a user value cannot smuggle `;`, braces or newlines into a config.
 */
export class SafeText {
  readonly text: string;
  constructor(token: typeof TOKEN, text: string) {
    if (token !== TOKEN) throw new Error('SafeText is created by the template validators only');
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

function safe(text: string): SafeText {
  return new SafeText(TOKEN, text);
}

function refuse(what: string, value: unknown): never {
  throw new Error(`unsafe ${what} for a config file: ${JSON.stringify(String(value)).slice(0, 80)}`);
}

/** A TCP/UDP port, 1..65535. */
export function port(value: number): SafeText {
  if (!Number.isInteger(value) || value < 1 || value > 65535) refuse('port', value);
  return safe(String(value));
}

/** An integer within [min, max]. */
export function integer(value: number, min: number, max: number): SafeText {
  if (!Number.isInteger(value) || value < min || value > max) refuse(`integer (${min}..${max})`, value);
  return safe(String(value));
}

/** An absolute, normalized path of plain characters (no spaces, quotes, `;`, braces or `..`). */
export function absPath(value: string): SafeText {
  if (typeof value !== 'string' || !/^\/[A-Za-z0-9._/@+-]{0,4095}$/.test(value)) refuse('path', value);
  if (path.posix.normalize(value) !== value || value.split('/').includes('..')) refuse('path', value);
  return safe(value);
}

/** A dotted-quad IPv4 address. */
export function ipv4(value: string): SafeText {
  if (!isIPv4(value)) refuse('IPv4 address', value);
  return safe(value);
}

/** A short identifier-like word: interface names, user names, keywords. */
export function word(value: string): SafeText {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/.test(value)) refuse('word', value);
  return safe(value);
}

/** One of a fixed set of keywords. */
export function oneOf<T extends string>(value: T, allowed: readonly T[]): SafeText {
  if (!allowed.includes(value)) refuse(`value (expected ${allowed.join('|')})`, value);
  return safe(value);
}

/** A DNS name: a domain (`cluster.internal`), a host label (`n3`) or both (`n3.cluster.internal`), see isValidDomain. */
export function dnsName(value: string): SafeText {
  if (typeof value !== 'string' || isValidDomain(value) !== true) refuse('DNS name', value);
  return safe(value);
}

/** A `#` comment line's text (printable, single line). */
export function comment(value: string): SafeText {
  if (typeof value !== 'string' || !/^[\x20-\x7e]{0,200}$/.test(value)) refuse('comment', value);
  return safe(value);
}


/**
 * Builds a config fragment from literal text and already-safe values only.
 * Example: conf`subnet ${ipv4(net)} netmask ${ipv4(mask)} {}`.
 */
export function conf(strings: TemplateStringsArray, ...values: SafeText[]): SafeText {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    if (!(value instanceof SafeText)) refuse('fragment value', value);
    out += value.text + (strings[i + 1] ?? '');
  });
  return safe(out);
}

/** Joins safe fragments with newlines into one block. */
export function lines(parts: readonly SafeText[]): SafeText {
  for (const part of parts) if (!(part instanceof SafeText)) refuse('block line', part);
  return safe(parts.map((p) => p.text).join('\n'));
}

export type TemplateValues = Readonly<Record<string, SafeText>>;

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * Replaces `{{name}}` placeholders with validated values. Every problem (unknown placeholder,
 * malformed name, a value that is not SafeText) is collected with its line and reported at once:
 * `nginx.conf.template:3: unknown placeholder {{prot}}`.
 */
export function renderTemplate(source: string, values: TemplateValues, fileName = 'template'): string {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (!(value instanceof SafeText)) problems.push(`${fileName}: value for {{${key}}} was not validated`);
  }
  const out = source.split('\n').map((line, index) =>
    line.replace(PLACEHOLDER, (whole, rawName: string) => {
      if (!NAME.test(rawName)) {
        problems.push(`${fileName}:${index + 1}: malformed placeholder ${whole}`);
        return whole;
      }
      const value = Object.hasOwn(values, rawName) ? values[rawName] : undefined;
      if (!value) {
        problems.push(`${fileName}:${index + 1}: unknown placeholder {{${rawName}}}`);
        return whole;
      }
      return value instanceof SafeText ? value.text : whole;
    }),
  );
  if (problems.length > 0) throw new Error(problems.join('; '));
  return out.join('\n');
}

export interface TemplateDirs {
  /** Admin overrides: `STORAGE/etc/templates`. */
  overrideDir: string;
  /** Built-in templates: `/opt/cw/rootfs/etc/cw/templates`. */
  builtinDir: string;
}

/** Reads `NAME` from the override directory when present there, else from the built-in one. */
export async function loadTemplate(name: string, dirs: TemplateDirs): Promise<{ text: string; file: string }> {
  if (!/^[a-z0-9_.-]+\.template$/.test(name)) throw new Error(`invalid template name ${name}`);
  const override = path.join(dirs.overrideDir, name);
  const file = (await exists(override)) ? override : path.join(dirs.builtinDir, name);
  return { text: await readFile(file, 'utf8'), file };
}

/** `loadTemplate` + `renderTemplate`, naming the file that was used in any error. */
export async function renderTemplateFile(name: string, dirs: TemplateDirs, values: TemplateValues): Promise<{ text: string; file: string }> {
  const { text, file } = await loadTemplate(name, dirs);
  return { text: renderTemplate(text, values, file), file };
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
