// cw-modimg's command line. Unlike the *ctl tools it is a list of steps, some taking several words:
//
//   cw-modimg --create [DISTRO] --set-name NAME [--install PKG...] [--chroot] [--no-discard] [--upload]
//   cw-modimg -i NAME [--copyin SRC DEST]... [--install PKG...] [--exec CMD]... [--query [PKG...]]
//             [--chroot] [--overwrite] [--upload] [--freshen]
//   cw-modimg --import docker-archive:FILE|IMAGE --set-name NAME [--upload]
//   cw-modimg -i NAME --delete | --all --delete | ls
//
// Steps run in a fixed order whatever the order on the line: make or fetch the root, copy in, install,
// exec, chroot, query, then pack and upload. Commander parses the options (through the tools' scanArgv).
import { ExitError } from '../../lib/errors.js';
import { Option } from 'commander';
import { clip, scanArgv } from '../common/args.js';

export interface ModimgArgs {
  help: boolean;
  ls: boolean;
  /** `-i NAME`: the image to work on. */
  image?: string;
  /** `--set-name NAME`: the name of a created or imported image. */
  setName?: string;
  /** `--create [DISTRO]`: `distro` is undefined for the cluster's default. */
  create?: { distro?: string };
  /** `--import SPEC`. */
  importFrom?: string;
  copyin: Array<{ src: string; dest: string }>;
  install: string[];
  exec: string[];
  chroot: boolean;
  /** `--query [PKG...]`: an empty list lists every package. */
  query?: string[];
  upload: boolean;
  overwrite: boolean;
  noDiscard: boolean;
  freshen: boolean;
  delete: boolean;
  all: boolean;
  compression?: 'xz' | 'zstd';
  baseUrl?: string;
}

export const MODIMG_USAGE = `Usage:
  cw-modimg --create [DISTRO] --set-name NAME [STEPS...]   build an image from a distro (default: the cluster's)
  cw-modimg --import docker-archive:FILE|IMAGE --set-name NAME [STEPS...]
                                                          make an image from a container image
  cw-modimg -i NAME STEPS...                              change a local copy of an image
  cw-modimg -i NAME --delete | --all --delete             remove local copies (not the head node's)
  cw-modimg ls                                            local and head node images

Steps (run in this order):
  --copyin SRC DEST      copy a host file or directory into the image
  --install PKG...       install packages (apt-get or dnf inside the image)
  --exec CMD             run CMD with /bin/sh -c inside the image (repeatable)
  --chroot               an interactive shell inside the image
  --query [PKG...]       show installed package versions (all without PKG)
  --overwrite            replace the local image file (and, with --upload, the head node's content)
  --upload               pack the image and upload it to the head node (creates the image if missing)
  --no-discard           keep changes without asking
  --freshen              drop the local copy and download the head node's first

Options:
  --compression xz|zstd  squashfs compression when packing (default zstd)
  --base-url URL         CW API URL (default: client.base_url in ~/.cw/settings.ini)
  -h, --help             show this help

Runs as root. Work happens in modimg.workspace (default ~/.cw/workspace).`;

/** Collects every value of an option given several times; an option given without a value adds none. */
const collect = (value: string, previous: string[] = []): string[] => (value === NO_VALUE ? previous : [...previous, value]);
const NO_VALUE = '';

/** The options as commander declares them; `[X...]` options take the words up to the next option. */
function modimgOptions(): Option[] {
  const words = (flags: string, help: string) => new Option(flags, help).preset(NO_VALUE).argParser(collect);
  return [
    new Option('-h, --help', 'show this help'),
    new Option('-i, --ids <name>', 'the image to work on'),
    new Option('--image <name>', 'the image to work on').hideHelp(),
    new Option('--set-name <name>', 'the name of a created or imported image'),
    new Option('--create [distro]', 'build an image from a distro'),
    new Option('--import <spec>', 'make an image from a container image'),
    words('--copyin [paths...]', 'copy SRC to DEST inside the image'),
    words('--install [packages...]', 'install packages'),
    new Option('--exec <command>', 'run a command inside the image').argParser((cmd: string, previous: string[] = []) => [...previous, cmd]),
    new Option('--chroot', 'an interactive shell inside the image'),
    words('--query [packages...]', 'show installed package versions'),
    new Option('--upload', 'pack and upload'),
    new Option('--overwrite', 'replace the local image file'),
    new Option('--no-discard', 'keep changes without asking'),
    new Option('--freshen', 'download the head node\'s copy first'),
    new Option('--delete', 'remove local copies'),
    new Option('-a, --all', 'every local copy (with --delete)'),
    new Option('--compression <kind>', 'squashfs compression'),
    new Option('--base-url <url>', 'CW API URL'),
  ];
}

/** Parses argv; throws ExitError naming the problem. */
export function parseModimgArgs(argv: readonly string[]): ModimgArgs {
  const { command, operands } = scanArgv(argv, modimgOptions(), 'see cw-modimg --help');
  const o = command.opts<Record<string, unknown>>();
  const text = (key: string, shown: string): string | undefined => {
    const v = o[key];
    if (typeof v !== 'string') return undefined;
    // A value is a word: `-i --upload` lacks the image name rather than naming an image "--upload".
    if (v.startsWith('-') && v !== '-') throw new ExitError(`option ${shown} needs a value`);
    return v;
  };
  const list = (key: string): string[] | undefined => (Array.isArray(o[key]) ? (o[key] as string[]) : undefined);
  const a: ModimgArgs = {
    help: o.help === true,
    ls: false,
    copyin: [],
    install: list('install') ?? [],
    exec: list('exec') ?? [],
    chroot: o.chroot === true,
    upload: o.upload === true,
    overwrite: o.overwrite === true,
    noDiscard: o.discard === false,
    freshen: o.freshen === true,
    delete: o.delete === true,
    all: o.all === true,
  };
  const image = text('image', '--image') ?? text('ids', '-i');
  if (image !== undefined) a.image = image;
  const setName = text('setName', '--set-name');
  if (setName !== undefined) a.setName = setName;
  const importFrom = text('import', '--import');
  if (importFrom !== undefined) a.importFrom = importFrom;
  const baseUrl = text('baseUrl', '--base-url');
  if (baseUrl !== undefined) a.baseUrl = baseUrl;
  for (const cmd of a.exec) if (cmd.startsWith('-') && cmd !== '-') throw new ExitError('option --exec needs a value');
  const words = [...operands];
  if (o.create !== undefined) {
    // `--create ls` is the ls action after a bare --create, not a distro named "ls".
    if (o.create === 'ls') words.unshift('ls');
    a.create = typeof o.create === 'string' && o.create !== 'ls' ? { distro: o.create } : {};
  }
  if (o.install !== undefined && a.install.length === 0) throw new ExitError('--install needs package names, e.g. --install hello');
  const query = list('query');
  if (query) a.query = query;
  const copyin = list('copyin');
  if (copyin) {
    if (copyin.length === 0 || copyin.length % 2 !== 0) throw new ExitError('--copyin needs SRC and DEST, e.g. --copyin ./prod-install.sh /root');
    for (let i = 0; i < copyin.length; i += 2) a.copyin.push({ src: copyin[i] as string, dest: copyin[i + 1] as string });
  }
  const compression = text('compression', '--compression');
  if (compression !== undefined) {
    if (compression !== 'xz' && compression !== 'zstd') throw new ExitError(`--compression must be xz or zstd, not "${clip(compression)}"`);
    a.compression = compression;
  }
  for (const word of words) {
    if (word !== 'ls' && word !== 'list') throw new ExitError(`unexpected argument "${clip(word)}" (see cw-modimg --help)`);
    a.ls = true;
  }
  if (!a.help) checkCombination(a);
  return a;
}

function checkCombination(a: ModimgArgs): void {
  const steps = a.copyin.length > 0 || a.install.length > 0 || a.exec.length > 0 || a.chroot || a.query !== undefined || a.upload || a.overwrite;
  if (a.ls) {
    if (a.image || a.create || a.importFrom || steps || a.delete) throw new ExitError('ls takes no other steps');
    return;
  }
  if (a.create && a.importFrom) throw new ExitError('--create and --import cannot be combined');
  if (a.create || a.importFrom) {
    const what = a.create ? '--create' : '--import';
    if (a.image) throw new ExitError(`${what} makes a new image: name it with --set-name, not -i`);
    if (!a.setName) throw new ExitError(`${what} needs --set-name NAME`);
    if (a.delete || a.freshen || a.all) throw new ExitError(`${what} cannot be combined with --delete, --freshen or --all`);
    return;
  }
  if (a.setName) throw new ExitError('--set-name names a new image made with --create or --import');
  if (a.delete) {
    if (a.all && a.image) throw new ExitError('--delete takes -i NAME or --all, not both');
    if (!a.all && !a.image) throw new ExitError('--delete needs -i NAME or --all');
    if (steps || a.freshen) throw new ExitError('--delete cannot be combined with other steps');
    return;
  }
  if (a.all) throw new ExitError('--all is only for --all --delete');
  if (!a.image) throw new ExitError('nothing to do: give -i NAME, --create, --import or ls (see cw-modimg --help)');
  if (!steps && !a.freshen) throw new ExitError(`nothing to do with image ${a.image}: add a step such as --install, --query or --upload`);
}
