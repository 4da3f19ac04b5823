// The command line shared by every cw-*ctl tool, after the ClusterWare tools:
//
//   cw-nodectl [-i IDS | -a] [--json | --pretty] [--human] [--show-uids] [--base-url URL] ACTION [-l | -L] [WORDS...]
//
// Options may come before or after the action (`cw-nodectl -i n0 ls -l` and `cw-nodectl ls -i n0 -l`).
// Words are the action (and, for cw-clusterctl, the collection before it) followed by its arguments:
// `key=value` assignments, attribute names or ids. `--` ends the options. Commander parses the options
// (scanArgv); this module only maps them onto the ClusterWare conventions and their one-line errors.
import { Command, CommanderError, Option } from 'commander';
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

/** The commander Option of a spec: `-i, --ids <value>`, `--dry-run`. */
function toOption(spec: OptionSpec): Option {
  const flags = `${spec.short ? `-${spec.short}, ` : ''}--${spec.long}${spec.value ? ' <value>' : ''}`;
  return new Option(flags, spec.help);
}

export interface ScannedArgv {
  /** The command holding the option values (`getOptionValue(option.attributeName())`). */
  command: Command;
  /** Non-option words in order; everything after `--` included. */
  operands: string[];
}

/**
 * Runs commander's option parser over argv, with options anywhere between the words: bundled short
 * flags (`-al`), attached short values (`-in0`), `--name=value`, `--` ending the options, and a lone `-`
 * or a negative number (`-5`) kept as a word. Commander's own help and error output are off: every
 * problem is one ExitError (`unknown option --frob (see --help)`, `option -i needs a value`,
 * `option --json takes no value`), `seeHelp` naming where the options are listed.
 */
export function scanArgv(argv: readonly string[], options: readonly Option[], seeHelp = 'see --help'): ScannedArgv {
  const command = new Command()
    .helpOption(false)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
  for (const option of options) command.addOption(option);
  let scanned: { operands: string[]; unknown: string[] };
  try {
    scanned = command.parseOptions([...argv]);
  } catch (err) {
    // A value option can only lack its value when it ends the line (`ls -i`, `-ai`, `--ids`).
    if (err instanceof CommanderError && err.code === 'commander.optionMissingArgument') {
      const last = argv[argv.length - 1] ?? '';
      throw new ExitError(`option ${last.startsWith('--') ? last : `-${last.slice(-1)}`} needs a value`);
    }
    throw err;
  }
  // Commander keeps the first option it does not know, and everything after it, aside.
  const first = scanned.unknown[0];
  if (first !== undefined) {
    if (first.startsWith('--')) {
      const eq = first.indexOf('=');
      const name = eq === -1 ? first : first.slice(0, eq);
      if (eq !== -1 && options.some((o) => o.long === name)) throw new ExitError(`option ${name} takes no value`);
      throw new ExitError(`unknown option ${clip(name)} (${seeHelp})`);
    }
    throw new ExitError(`unknown option ${clip(first.slice(0, 2))} (${seeHelp})`);
  }
  return { command, operands: scanned.operands };
}

/**
 * Splits argv into the common options, the tool's extra options and the words.
 * Throws ExitError for unknown options or a missing value.
 * `parseArgs(['-i', 'n[0-1]', 'set', '_boot_config=X'])` -> ids `n[0-1]`, words `['set', '_boot_config=X']`.
 */
export function parseArgs(argv: readonly string[], extra: readonly OptionSpec[] = []): ParsedArgs {
  const specs = [...COMMON_OPTIONS, ...extra];
  const options = specs.map((spec) => {
    const option = toOption(spec);
    // Every -i counts: `-i n0 -i n5` is `n0,n5`.
    if (spec.long === 'ids') option.argParser((value: string, previous: string[] = []) => [...previous, value]);
    return option;
  });
  const { command, operands } = scanArgv(argv, options);
  const value = (spec: OptionSpec): unknown => command.getOptionValue(toOption(spec).attributeName());
  const flag = (long: string): boolean => specs.some((s) => s.long === long && value(s) === true);

  const format = flag('pretty') ? 'pretty' : flag('json') ? 'json' : 'plain';
  const detail = flag('long-long') ? 2 : flag('long') ? 1 : 0;
  const common: CommonOptions = {
    all: flag('all'),
    detail,
    format,
    human: flag('human'),
    showUids: flag('show-uids'),
    help: flag('help'),
  };
  const ids = value(COMMON_OPTIONS.find((s) => s.long === 'ids') as OptionSpec) as string[] | undefined;
  if (ids !== undefined) common.ids = ids.join(',');
  const baseUrl = value(COMMON_OPTIONS.find((s) => s.long === 'base-url') as OptionSpec);
  if (typeof baseUrl === 'string') common.baseUrl = baseUrl;
  const own = new Map<string, string | true>();
  for (const spec of extra) {
    const v = value(spec);
    if (typeof v === 'string' || v === true) own.set(spec.long, v);
  }
  if (common.all && common.ids !== undefined) throw new ExitError('use either -a/--all or -i/--ids, not both');
  return { common, options: own, words: operands };
}

/**
 * argv with `--` put before the command of a command-taking action (`exec`), so the command's own
 * options stay its own: `-i n0 exec --collate uname -r` -> `-i n0 exec --collate -- uname -r`. Options
 * before the command's first word are still the tool's. Unchanged when the action is absent or `--`
 * already ends the options. With `chains`, the action may also follow `then` (`reboot then exec uptime`).
 */
export function protectCommand(argv: readonly string[], extra: readonly OptionSpec[], actions: readonly string[], chains = false): string[] {
  const specs = [...COMMON_OPTIONS, ...extra];
  const takesValue = (word: string): boolean => {
    if (word.startsWith('--')) return !word.includes('=') && specs.some((s) => s.value && `--${s.long}` === word);
    // A bundle of short flags takes the next word when its last letter is a value option without a value attached.
    const letters = word.slice(1);
    for (let i = 0; i < letters.length; i++) {
      const spec = specs.find((s) => s.short === letters[i]);
      if (spec?.value) return i === letters.length - 1;
    }
    return false;
  };
  let seenAction = false;
  let actionPosition = true;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === '--') return [...argv];
    if (word.startsWith('-') && word !== '-' && !/^-[0-9]/.test(word)) {
      if (takesValue(word)) i++;
      continue;
    }
    if (seenAction) return [...argv.slice(0, i), '--', ...argv.slice(i)];
    if (actionPosition && actions.includes(word)) {
      seenAction = true;
      continue;
    }
    // Only the first word can be the action (or, in a chain, the first after `then`).
    if (!chains) return [...argv];
    actionPosition = word === CHAIN_WORD;
  }
  return [...argv];
}

/** The word between the actions of a chain: `cw-nodectl -i n[0-3] reboot then waitfor up then exec uptime`. */
export const CHAIN_WORD = 'then';

/**
 * A chain's actions: the words split at `then`. A command-taking action (`exec`) takes every word after
 * it, `then` included, so it can only come last. Example:
 * `splitChain(['reboot', 'then', 'waitfor', 'up'], ['exec'])` -> `[['reboot'], ['waitfor', 'up']]`.
 */
export function splitChain(words: readonly string[], commandActions: readonly string[] = []): string[][] {
  const segments: string[][] = [[]];
  for (const word of words) {
    const current = segments.at(-1) as string[];
    const action = current[0];
    if (word === CHAIN_WORD && !(action !== undefined && commandActions.includes(action))) segments.push([]);
    else current.push(word);
  }
  return segments;
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
