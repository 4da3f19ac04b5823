// cw-mkramfs: builds the node initramfs from an image's kernel and modules and (with --update) uploads
// kernel + initramfs to a boot config; the head node reads the release from the kernel.
//
//   cw-mkramfs --kver 6.1.0-18-cloud-amd64 --update DefaultBoot [--image DefaultImage]
//   cw-mkramfs --root /srv/roots/img --output /tmp/initramfs.img
import { execa } from 'execa';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitramfs, InitramfsError, type InitramfsResult } from '../../images/initramfs/build.js';
import { readCwsquashLayout } from '../../images/cwsquash/index.js';
import { Workspace, exists } from '../../images/workspace.js';
import { ApiError } from '../common/client/api-client.js';
import { ExitError, errorMessage } from '../../lib/errors.js';
import { loadSettings } from '../common/client/settings.js';
import { isObject, type ApiObject } from '../common/collection.js';
import type { ToolContext, ToolIo } from '../common/context.js';
import { openLocalFile, resolveLocalPath } from '../../lib/local-files.js';
import { runTool, type ToolSpec } from '../common/run.js';

export interface MakeRamfsOptions {
  /** Kernel release; default: the image's newest. */
  kver?: string;
  /** Image name in the workspace (default: the boot config's image). */
  image?: string;
  /** An unpacked root instead of a workspace image. */
  root?: string;
  /** Boot config to upload kernel + initramfs to. */
  update?: string;
  /** Also keep the initramfs here. */
  output?: string;
  busybox?: string;
  /** Extra modules to include and load. */
  modules?: string[];
}

export interface MakeRamfsResult {
  build: InitramfsResult;
  /** The boot config as the API returned it after the uploads. */
  bootconfig?: ApiObject;
}

export const MKRAMFS: ToolSpec = {
  name: 'cw-mkramfs',
  synopsis: [
    '--update BOOTCONFIG [--kver KVER] [--image NAME]  build from the image and upload kernel + initramfs',
    '--root DIR --output FILE [--kver KVER]           build from an unpacked root into a local file',
  ],
  options: [
    { long: 'kver', value: true, help: 'kernel release in the image (default: its newest)' },
    { long: 'update', value: true, help: 'boot config to upload the kernel and initramfs to' },
    { long: 'image', value: true, help: 'image in the workspace (default: the boot config\'s image)' },
    { long: 'root', value: true, help: 'an unpacked image root to take the kernel from instead' },
    { long: 'output', value: true, help: 'also write the initramfs to this file' },
    { long: 'busybox', value: true, help: 'static busybox to ship (default /bin/busybox, Debian busybox-static)' },
    { long: 'modules', value: true, help: 'extra kernel modules to include and load, comma-separated' },
  ],
  defaultAction: 'build',
  actions: {
    build: async (ctx, words) => {
      if (words.length > 0) throw new ExitError(`unexpected argument "${words[0]}" (cw-mkramfs --help)`);
      const opt = (k: string): string | undefined => {
        const v = ctx.args.options.get(k);
        return typeof v === 'string' ? v : undefined;
      };
      const opts: MakeRamfsOptions = {};
      for (const [key, name] of [['kver', 'kver'], ['image', 'image'], ['root', 'root'], ['update', 'update'], ['output', 'output'], ['busybox', 'busybox']] as const) {
        const v = opt(name);
        if (v !== undefined) opts[key] = v;
      }
      const mods = opt('modules');
      if (mods !== undefined) opts.modules = mods.split(',').map((m) => m.trim()).filter((m) => m !== '');
      if (!opts.update && !opts.output) throw new ExitError('give --update BOOTCONFIG (upload) or --output FILE (keep locally)');
      if (opts.root && opts.image) throw new ExitError('use either --root or --image, not both');
      await makeRamfs(ctx, opts);
    },
  },
};

/** `cw-mkramfs ARGS...` without the process boundary. */
export function mkramfs(argv: readonly string[], io?: ToolIo): Promise<void> {
  return runTool(MKRAMFS, argv, io);
}

/** Builds the initramfs and, with `update`, uploads kernel + initramfs. Prints what it did. */
export async function makeRamfs(ctx: ToolContext, opts: MakeRamfsOptions): Promise<MakeRamfsResult> {
  let bootconfig: ApiObject | undefined;
  if (opts.update) bootconfig = await getObject(ctx, 'bootconfig', opts.update, 'boot config');
  let imageName = opts.image;
  if (!opts.root && !imageName) {
    const img = bootconfig?.image;
    if (typeof img !== 'string' || img === '') {
      throw new ExitError(`boot config ${opts.update} names no image; give --image NAME or --root DIR`);
    }
    imageName = img;
  }
  const source = opts.root
    ? { root: resolveLocalPath(opts.root, { cwd: ctx.cwd, home: ctx.home }), cleanup: async () => {} }
    : await imageRoot(ctx, imageName as string);
  const scratch = await mkdtemp(join(tmpdir(), 'cw-mkramfs-'));
  try {
    const out = opts.output ? resolveLocalPath(opts.output, { cwd: ctx.cwd, home: ctx.home }) : join(scratch, 'initramfs');
    let build: InitramfsResult;
    try {
      build = await buildInitramfs({
        rootDir: source.root,
        ...(opts.kver !== undefined && { kver: opts.kver }),
        ...(opts.busybox !== undefined && { busybox: resolveLocalPath(opts.busybox, { cwd: ctx.cwd, home: ctx.home }) }),
        ...(opts.modules !== undefined && { extraModules: opts.modules }),
        out,
        onProgress: (line) => ctx.err(`${line}\n`),
      });
    } catch (err) {
      if (err instanceof InitramfsError) throw new ExitError(err.message);
      throw err;
    }
    ctx.out(`Built initramfs for ${build.kver}: ${build.size} bytes, modules: ${build.modules.join(' ')}\n`);
    if (opts.output) ctx.out(`Wrote ${out}\n`);
    if (bootconfig) {
      const id = encodeURIComponent(String(bootconfig.uid ?? opts.update));
      bootconfig = await uploadFile(ctx, `/bootconfig/${id}/kernel`, build.kernel, `vmlinuz-${build.kver}`);
      bootconfig = await uploadFile(ctx, `/bootconfig/${id}/initramfs`, out, `initramfs-${build.kver}.img`);
      ctx.out(`Updated boot config ${String(bootconfig.name ?? opts.update)}: kernel and initramfs of ${String(bootconfig.release ?? build.kver)}\n`);
    }
    return bootconfig ? { build, bootconfig } : { build };
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await source.cleanup();
  }
}

async function uploadFile(ctx: ToolContext, path: string, file: string, filename: string): Promise<ApiObject> {
  const local = await openLocalFile(file, { cwd: ctx.cwd, home: ctx.home });
  try {
    const answer = await ctx.api().upload<unknown>(path, { open: () => local.stream(), size: local.size }, { filename });
    if (!isObject(answer)) throw new ExitError(`the head node did not return the boot config after uploading ${filename}`);
    return answer as ApiObject;
  } finally {
    await local.close().catch(() => {});
  }
}

/** One object by name or uid; a 404 becomes `no such boot config: X`. */
export async function getObject(ctx: ToolContext, singular: string, id: string, noun: string): Promise<ApiObject> {
  const found = await findObject(ctx, singular, id);
  if (!found) throw new ExitError(`no such ${noun}: ${id}`);
  return found;
}

/** One object by name or uid, or undefined when the head node has none. */
export async function findObject(ctx: ToolContext, singular: string, id: string): Promise<ApiObject | undefined> {
  try {
    const obj = await ctx.api().get<unknown>(`/${singular}/${encodeURIComponent(id)}`);
    return isObject(obj) ? (obj as ApiObject) : undefined;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/** The workspace's unpacked root and cwsquash file of image `name`, those that exist. */
export async function localCopy(ctx: ToolContext, name: string): Promise<{ workspaceDir: string; root?: string; file?: string }> {
  let workspaceDir: string;
  try {
    workspaceDir = loadSettings({ home: ctx.home, env: ctx.env }).workspace;
  } catch (err) {
    throw new ExitError(errorMessage(err));
  }
  const ws = new Workspace(workspaceDir);
  const entry = await ws.entry(name);
  const found: { workspaceDir: string; root?: string; file?: string } = { workspaceDir };
  if (entry?.root && (await exists(ws.abs(entry.root)))) found.root = ws.abs(entry.root);
  if (entry?.file && (await exists(ws.abs(entry.file)))) found.file = ws.abs(entry.file);
  return found;
}

/**
 * The root to take the kernel from: the workspace's unpacked root of the image, else its kernel and
 * modules unpacked from the workspace's cwsquash copy into a scratch directory.
 */
export async function imageRoot(ctx: ToolContext, name: string): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const { workspaceDir, root, file } = await localCopy(ctx, name);
  if (root) return { root, cleanup: async () => {} };
  if (file) return extractBootFiles(file);
  throw new ExitError(`image ${name} is not in the workspace ${workspaceDir}; run cw-modimg -i ${name} --query first to fetch it, or give --root DIR`);
}

/** Unpacks only boot/ and the modules directories of a cwsquash file (what the initramfs needs). */
async function extractBootFiles(file: string): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const layout = await readCwsquashLayout(file).catch((err: unknown) => {
    throw new ExitError(`${file}: ${errorMessage(err)}`);
  });
  const scratch = await mkdtemp(join(tmpdir(), 'cw-kernel-'));
  const root = join(scratch, 'root');
  const cleanup = () => rm(scratch, { recursive: true, force: true });
  try {
    await execa('unsquashfs', ['-no-progress', '-o', String(layout.offset), '-d', root, '-f', file, 'boot', 'lib', 'usr/lib/modules'], { stdin: 'ignore' });
    if ((await readdir(root).catch(() => [])).length === 0) throw new ExitError(`${file} holds no boot/ or lib/modules/`);
  } catch (err) {
    await cleanup();
    if (err instanceof ExitError) throw err;
    const e = err as { stderr?: unknown };
    const detail = typeof e.stderr === 'string' && e.stderr.trim() ? e.stderr.trim().split('\n').slice(-1)[0] : errorMessage(err);
    throw new ExitError(`cannot unpack the kernel from ${file}: ${detail} (install squashfs-tools)`);
  }
  return { root, cleanup };
}
