// The command line shared by every cw-*ctl tool, after the ClusterWare tools:
//
//   cw-nodectl [-i IDS | -a] [--json | --pretty] [--human] [--show-uids] [--base-url URL] ACTION [-l | -L] [WORDS...]
//
// Options may come before or after the action (`cw-nodectl -i n0 ls -l` and `cw-nodectl ls -i n0 -l`).
// Words are the action (and, for cw-clusterctl, the collection before it) followed by its arguments:
// `key=value` assignments, attribute names or ids. `--` ends the options.
import { ExitError } from '../../lib/errors.js';

/** One option a tool accepts besides the common ones. */
export interface OptionSpec {
  /** Long name without dashes, e.g. `dry-run`. */
  long: string;
  short?: string;
  /** Takes a value (`--name X`, `--name=X`, `-nX`). */
  value?: boolean;
  help: string;
}

/** The options every tool takes. */
export const COMMON_OPTIONS: readonly OptionSpec[] = [
  { long: 'all', short: 'a', help: 'act on every object' },
  { long: 'ids', short: 'i', value: true, help: 'objects to act on: names, ranges like n[0-15], MACs, IPs or UIDs, comma-separated' },
  { long: 'long', short: 'l', help: 'ls: show the main fields of each object' },
  { long: 'long-long', short: 'L', help: 'ls: show every field of each object' },
  { long: 'json', help: 'print JSON' },
  { long: 'pretty', help: 'print indented JSON' },
  { long: 'human', help: 'show sizes and times in human units' },
  { long: 'show-uids', help: 'show object UIDs beside their names' },
  { long: 'base-url', value: true, help: 'CW API URL, e.g. http://head/api/v1 (default: client.base_url in ~/.cw/settings.ini)' },
  { long: 'help', short: 'h', help: 'show this help' },
];

export interface CommonOptions {
  all: boolean;
  /** Every `-i` given, joined with commas; undefined when none. */
  ids?: string;
  /** 0 = names only, 1 = `-l`, 2 = `-L`. */
  detail: 0 | 1 | 2;
  format: 'plain' | 'json' | 'pretty';
  human: boolean;
  showUids: boolean;
  baseUrl?: string;
  help: boolean;
}

export interface ParsedArgs {
  common: CommonOptions;
  /** The tool's own options by long name: `true` for flags, the value (last one wins) otherwise. */
  options: Map<string, string | true>;
  /** Non-option words in order: the action first. */
  words: string[];
}

/**
 * Splits argv into the common options, the tool's extra options and the words.
 * Throws ExitError for unknown options or a missing value.
 * `parseArgs(['-i', 'n[0-1]', 'set', '_boot_config=X'])` -> ids `n[0-1]`, words `['set', '_boot_config=X']`.
 */
export function parseArgs(argv: readonly string[], extra: readonly OptionSpec[] = []): ParsedArgs {
  const specs = [...COMMON_OPTIONS, ...extra];
  const byLong = new Map(specs.map((s) => [s.long, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const values = new Map<string, string | true>();
  const ids: string[] = [];
  const words: string[] = [];
  const flags = new Set<string>();

  const take = (spec: OptionSpec, value: string | undefined, shown: string): void => {
    if (spec.value) {
      if (value === undefined) throw new ExitError(`option ${shown} needs a value`);
      if (spec.long === 'ids') ids.push(value);
      else values.set(spec.long, value);
    } else {
      if (value !== undefined) throw new ExitError(`option ${shown} takes no value`);
      flags.add(spec.long);
      values.set(spec.long, true);
    }
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      const spec = byLong.get(name);
      if (!spec) throw new ExitError(`unknown option --${clip(name)} (see --help)`);
      let value = eq === -1 ? undefined : arg.slice(eq + 1);
      if (spec.value && value === undefined) {
        value = argv[i + 1];
        if (value !== undefined) i++;
      }
      take(spec, value, `--${name}`);
      continue;
    }
    // A lone "-" and negative-looking words such as "-5" are words, not options.
    if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      // Bundled short flags: -lL, -ai n0 is not allowed, but -in0 is `-i n0`.
      for (let j = 1; j < arg.length; j++) {
        const ch = arg[j] as string;
        const spec = byShort.get(ch);
        if (!spec) throw new ExitError(`unknown option -${clip(ch)} (see --help)`);
        if (spec.value) {
          let value: string | undefined = arg.slice(j + 1);
          if (value === '') {
            value = argv[i + 1];
            if (value !== undefined) i++;
          }
          take(spec, value, `-${ch}`);
          break;
        }
        take(spec, undefined, `-${ch}`);
      }
      continue;
    }
    words.push(arg);
  }

  const format = flags.has('pretty') ? 'pretty' : flags.has('json') ? 'json' : 'plain';
  const detail = flags.has('long-long') ? 2 : flags.has('long') ? 1 : 0;
  const common: CommonOptions = {
    all: flags.has('all'),
    detail,
    format,
    human: flags.has('human'),
    showUids: flags.has('show-uids'),
    help: flags.has('help'),
  };
  if (ids.length > 0) common.ids = ids.join(',');
  const baseUrl = values.get('base-url');
  if (typeof baseUrl === 'string') common.baseUrl = baseUrl;
  for (const s of COMMON_OPTIONS) values.delete(s.long);
  if (common.all && common.ids !== undefined) throw new ExitError('use either -a/--all or -i/--ids, not both');
  return { common, options: values, words };
}

/** `key=value` words split at the first `=`; the key must be non-empty. */
export interface Assignment {
  key: string;
  value: string;
}

/** Parses `key=value` words; `what` names the action for messages (`update`). */
export function parseAssignments(words: readonly string[], what: string): Assignment[] {
  const out: Assignment[] = [];
  const seen = new Set<string>();
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new ExitError(`${what} takes key=value arguments, not "${clip(word)}"`);
    const key = word.slice(0, eq);
    if (seen.has(key)) throw new ExitError(`${what}: "${clip(key)}" is given twice`);
    seen.add(key);
    out.push({ key, value: word.slice(eq + 1) });
  }
  return out;
}

/** Usage text of a tool: its synopsis lines and every option. */
export function usageText(tool: string, synopsis: readonly string[], extra: readonly OptionSpec[] = []): string {
  const lines = [`usage: ${tool} [options] ACTION [ARGS]`, '', 'actions:'];
  for (const s of synopsis) lines.push(`  ${s}`);
  lines.push('', 'options:');
  for (const o of [...COMMON_OPTIONS, ...extra]) {
    const names = `${o.short ? `-${o.short}, ` : '    '}--${o.long}${o.value ? ' VALUE' : ''}`;
    lines.push(`  ${names.padEnd(24)} ${o.help}`);
  }
  lines.push('', 'Values beginning with @ are read from a local file (kernel=@/boot/vmlinuz-... uploads the file).');
  return lines.join('\n');
}

export function clip(s: string, max = 60): string {
  const flat = s.replace(/[\0-\x1f\x7f]/g, '?');
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}
