// cw-modimg: make and change node images on the admin's host, in the workspace, then upload them.
// `cw-modimg --create --set-name mpiImage --install openmpi --upload`.
// This module reads the command line and runs the steps, one module each: list, delete, create,
// import, open (download and unpack), modify, query, pack, upload.
import { createInterface } from 'node:readline/promises';
import { Workspace, checkImageName } from '../../images/workspace.js';
import { ExitError, errorMessage } from '../../lib/errors.js';
import { loadSettings } from '../common/client/settings.js';
import type { ParsedArgs } from '../common/args.js';
import { makeContext, type ToolIo } from '../common/context.js';
import { MODIMG_USAGE, parseModimgArgs } from './args.js';
import { createImage } from './create.js';
import { deleteLocal } from './delete.js';
import { importImage } from './import.js';
import { evictStale, listImages } from './list.js';
import { modifyImage } from './modify.js';
import { openImage } from './open.js';
import { packIfWanted } from './pack.js';
import { queryImage } from './query.js';
import { createReporter } from './report.js';
import { createSession, type ModimgSession } from './session.js';
import { uploadImage } from './upload.js';

export interface ModimgIo extends ToolIo {
  /** Effective uid (default process.getuid()): cw-modimg needs root. */
  uid?: number;
  /** Whether questions may be asked and progress drawn in place (default: stdin and stderr are terminals). */
  interactive?: boolean;
  /** Answers a yes/no question (default: read a line from the terminal). */
  ask?: (question: string, defaultYes: boolean) => Promise<boolean>;
}

/** `cw-modimg ARGS...` without the process boundary. */
export async function modimg(argv: readonly string[], io: ModimgIo = {}): Promise<void> {
  const args = parseModimgArgs(argv);
  const out = io.out ?? ((text: string) => void process.stdout.write(text));
  if (args.help) {
    out(`${MODIMG_USAGE}\n`);
    return;
  }
  const uid = io.uid ?? process.getuid?.() ?? 0;
  if (uid !== 0) throw new ExitError('cw-modimg must run as root: it mounts, chroots and keeps file ownership inside images (try sudo)');
  const parsed: ParsedArgs = {
    common: { all: args.all, detail: 0, format: 'plain', human: false, showUids: false, help: false, ...(args.baseUrl ? { baseUrl: args.baseUrl } : {}) },
    options: new Map(),
    words: [],
  };
  const ctx = makeContext('cw-modimg', parsed, io);
  let settings;
  try {
    settings = loadSettings({ home: ctx.home, env: ctx.env });
  } catch (err) {
    throw new ExitError(errorMessage(err));
  }
  const interactive = io.interactive ?? Boolean(process.stdin.isTTY && process.stderr.isTTY);
  const session = createSession(ctx, new Workspace(settings.workspace), args, {
    interactive,
    ask: io.ask ?? askOnTerminal,
    reporter: createReporter({ write: ctx.err, isTTY: interactive }),
  });
  try {
    await session.workspace.ensure();
    await session.workspace.withLock(() => execute(session));
  } finally {
    await ctx.close();
  }
}

async function askOnTerminal(question: string, defaultYes: boolean): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`${question} ${defaultYes ? '[Y/n]' : '[y/N]'} `)).trim().toLowerCase();
    return answer === '' ? defaultYes : answer.startsWith('y');
  } finally {
    rl.close();
  }
}

/** The steps of one command line, in their fixed order. */
async function execute(session: ModimgSession): Promise<void> {
  const a = session.args;
  if (a.ls) return listImages(session);
  if (a.delete) return deleteLocal(session);
  let name: string;
  if (a.create || a.importFrom) {
    name = a.setName as string;
    checkImageName(name);
    if (a.create) await createImage(session, name, a.create.distro);
    else await importImage(session, name, a.importFrom as string);
  } else {
    name = a.image as string;
    checkImageName(name);
    await evictStale(session);
    if (a.freshen) {
      const had = await session.workspace.entry(name);
      if (had) {
        await session.workspace.remove(name);
        session.say(`dropped the local copy of ${name}${had.modified ? ' and its unpacked changes' : ''} (--freshen)`);
      }
    }
  }
  const modifies = a.copyin.length > 0 || a.install.length > 0 || a.exec.length > 0 || a.chroot;
  const needRoot = modifies || a.query !== undefined;
  let entry = await openImage(session, name, needRoot);
  if (modifies) {
    const kept = await modifyImage(session, name, entry);
    if (!kept) return;
    entry = kept;
  }
  if (a.query !== undefined) await queryImage(session, name, entry, a.query);
  entry = await packIfWanted(session, name, entry);
  if (a.upload) await uploadImage(session, name, entry);
}
