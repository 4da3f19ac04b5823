// cw-modimg's command line. Unlike the *ctl tools it is a list of steps, some taking several words:
//
//   cw-modimg --create [DISTRO] --set-name NAME [--install PKG...] [--chroot] [--no-discard] [--upload]
//   cw-modimg -i NAME [--copyin SRC DEST]... [--install PKG...] [--exec CMD]... [--query [PKG...]]
//             [--chroot] [--overwrite] [--upload] [--freshen]
//   cw-modimg --import docker-archive:FILE|IMAGE --set-name NAME [--upload]
//   cw-modimg -i NAME --delete | --all --delete | ls
//
// Steps run in a fixed order whatever the order on the line: make or fetch the root, copy in, install,
// exec, chroot, query, then pack and upload.
import { ExitError } from '../../lib/errors.js';
import { clip } from '../common/args.js';

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

/** Parses argv; throws ExitError naming the problem. */
export function parseModimgArgs(argv: readonly string[]): ModimgArgs {
  const a: ModimgArgs = {
    help: false,
    ls: false,
    copyin: [],
    install: [],
    exec: [],
    chroot: false,
    upload: false,
    overwrite: false,
    noDiscard: false,
    freshen: false,
    delete: false,
    all: false,
  };
  const isWord = (w: string | undefined): w is string => w !== undefined && !w.startsWith('-');
  let i = 0;
  const value = (opt: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    const v = argv[i + 1];
    if (v === undefined || (v.startsWith('-') && v !== '-')) throw new ExitError(`option ${opt} needs a value`);
    i++;
    return v;
  };
  /** The words following an option up to the next option. */
  const words = (): string[] => {
    const out: string[] = [];
    while (isWord(argv[i + 1])) out.push(argv[++i] as string);
    return out;
  };
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const noValue = () => {
      if (inline !== undefined) throw new ExitError(`option ${name} takes no value`);
    };
    switch (name) {
      case '-h':
      case '--help':
        a.help = true;
        break;
      case '-i':
      case '--ids':
      case '--image':
        a.image = value(name, inline);
        break;
      case '--set-name':
        a.setName = value(name, inline);
        break;
      case '--create': {
        if (inline !== undefined) a.create = { distro: inline };
        else {
          const next = argv[i + 1];
          a.create = isWord(next) && next !== 'ls' ? { distro: argv[++i] as string } : {};
        }
        break;
      }
      case '--import':
        a.importFrom = value(name, inline);
        break;
      case '--copyin': {
        noValue();
        const src = argv[i + 1];
        const dest = argv[i + 2];
        if (src === undefined || dest === undefined || dest.startsWith('--')) throw new ExitError('--copyin needs SRC and DEST, e.g. --copyin ./prod-install.sh /root');
        a.copyin.push({ src, dest });
        i += 2;
        break;
      }
      case '--install': {
        const pkgs = inline !== undefined ? [inline, ...words()] : words();
        if (pkgs.length === 0) throw new ExitError('--install needs package names, e.g. --install hello');
        a.install.push(...pkgs);
        break;
      }
      case '--exec':
        a.exec.push(value(name, inline));
        break;
      case '--chroot':
        noValue();
        a.chroot = true;
        break;
      case '--query':
        a.query = [...(a.query ?? []), ...(inline !== undefined ? [inline] : []), ...words()];
        break;
      case '--upload':
        noValue();
        a.upload = true;
        break;
      case '--overwrite':
        noValue();
        a.overwrite = true;
        break;
      case '--no-discard':
        noValue();
        a.noDiscard = true;
        break;
      case '--freshen':
        noValue();
        a.freshen = true;
        break;
      case '--delete':
        noValue();
        a.delete = true;
        break;
      case '-a':
      case '--all':
        noValue();
        a.all = true;
        break;
      case '--compression': {
        const c = value(name, inline);
        if (c !== 'xz' && c !== 'zstd') throw new ExitError(`--compression must be xz or zstd, not "${clip(c)}"`);
        a.compression = c;
        break;
      }
      case '--base-url':
        a.baseUrl = value(name, inline);
        break;
      case 'ls':
      case 'list':
        a.ls = true;
        break;
      default:
        if (arg.startsWith('-')) throw new ExitError(`unknown option ${clip(name)} (see cw-modimg --help)`);
        throw new ExitError(`unexpected argument "${clip(arg)}" (see cw-modimg --help)`);
    }
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
