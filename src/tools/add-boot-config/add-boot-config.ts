// cw-add-boot-config: a boot config for an image in one step (create it if missing, build the initramfs
// from the image's kernel, upload both). `--make-defaults` sets up a fresh cluster: DefaultImage (Debian
// bookworm), DefaultBoot and `_boot_config=DefaultBoot` in DefaultAttribs. Objects that already exist
// are reported and reused, never duplicated, so running it twice is harmless.
//
//   cw-add-boot-config --image Prod202404 --boot-config ProdBoot
//   cw-add-boot-config --make-defaults
import { DEFAULT_ATTRIBS } from '../../lib/attribs.js';
import { ExitError } from '../../lib/errors.js';
import { idOf, isObject, type ApiObject } from '../common/collection.js';
import type { ToolContext, ToolIo } from '../common/context.js';
import { runTool, type ToolSpec } from '../common/run.js';
import { findObject, localCopy, makeRamfs, type MakeRamfsOptions } from '../mkramfs/mkramfs.js';

export const DEFAULT_IMAGE = 'DefaultImage';
export const DEFAULT_BOOT = 'DefaultBoot';

export interface AddBootConfigOptions {
  image?: string;
  bootConfig?: string;
  makeDefaults?: boolean;
  kver?: string;
  root?: string;
  busybox?: string;
}

export const ADD_BOOT_CONFIG: ToolSpec = {
  name: 'cw-add-boot-config',
  synopsis: [
    '--image IMG --boot-config BOOT [--kver KVER]   create BOOT for IMG (if missing) and upload kernel + initramfs',
    '--make-defaults                               DefaultImage, DefaultBoot and _boot_config=DefaultBoot in DefaultAttribs',
  ],
  options: [
    { long: 'image', value: true, help: 'image the boot config boots (in the workspace)' },
    { long: 'boot-config', value: true, help: 'boot config to create or refresh' },
    { long: 'make-defaults', help: 'create DefaultImage, DefaultBoot and set _boot_config in DefaultAttribs' },
    { long: 'kver', value: true, help: 'kernel release in the image (default: its newest)' },
    { long: 'root', value: true, help: 'an unpacked image root to take the kernel from' },
    { long: 'busybox', value: true, help: 'static busybox to ship (default /bin/busybox)' },
  ],
  defaultAction: 'run',
  actions: {
    run: async (ctx, words) => {
      if (words.length > 0) throw new ExitError(`unexpected argument "${words[0]}" (cw-add-boot-config --help)`);
      const get = (k: string): string | undefined => {
        const v = ctx.args.options.get(k);
        return typeof v === 'string' ? v : undefined;
      };
      const opts: AddBootConfigOptions = { makeDefaults: ctx.args.options.get('make-defaults') === true };
      for (const [key, name] of [['image', 'image'], ['bootConfig', 'boot-config'], ['kver', 'kver'], ['root', 'root'], ['busybox', 'busybox']] as const) {
        const v = get(name);
        if (v !== undefined) opts[key] = v;
      }
      await addBootConfig(ctx, opts);
    },
  },
};

/** `cw-add-boot-config ARGS...` without the process boundary. */
export function addBootConfigTool(argv: readonly string[], io?: ToolIo): Promise<void> {
  return runTool(ADD_BOOT_CONFIG, argv, io);
}

export async function addBootConfig(ctx: ToolContext, opts: AddBootConfigOptions): Promise<void> {
  const image = opts.image ?? (opts.makeDefaults ? DEFAULT_IMAGE : undefined);
  const boot = opts.bootConfig ?? (opts.makeDefaults ? DEFAULT_BOOT : undefined);
  if (!image || !boot) throw new ExitError('give --image IMG and --boot-config BOOT, or --make-defaults');
  const api = ctx.api();

  // 1. The image.
  let imageObj = await findObject(ctx, 'image', image);
  if (imageObj) {
    ctx.out(`Image ${image} exists\n`);
  } else if (opts.makeDefaults && image === DEFAULT_IMAGE) {
    ctx.out(`Creating image ${image} (Debian bookworm)\n`);
    const { modimg } = await import('../modimg/modimg.js');
    await modimg(['--create', '--set-name', image, '--upload'], { env: ctx.env, cwd: ctx.cwd, out: ctx.out, err: ctx.err });
    imageObj = await findObject(ctx, 'image', image);
    if (!imageObj) throw new ExitError(`cw-modimg finished but the head node has no image ${image}`);
  } else {
    throw new ExitError(`no such image: ${image} (create it with cw-modimg --create --set-name ${image} --upload)`);
  }
  if (imageObj.checksum === null || imageObj.checksum === undefined) {
    // Nothing to take a kernel from: say so before a boot config is made, not "fetch it first".
    if (!opts.root) {
      const local = await localCopy(ctx, image);
      if (!local.root && !local.file) {
        throw new ExitError(`image ${image} has no content on the head node and is not in the workspace; build and upload it first (cw-modimg -i ${image} --upload), or give --root DIR`);
      }
    }
    ctx.err(`WARNING: image ${image} has no content on the head node yet; nodes cannot boot it until it is uploaded\n`);
  }

  // 2. The boot config.
  let bootObj = await findObject(ctx, 'bootconfig', boot);
  let created = false;
  if (bootObj) {
    ctx.out(`Boot config ${boot} exists\n`);
    if (bootObj.image !== imageObj.name) {
      throw new ExitError(`boot config ${boot} boots image ${String(bootObj.image ?? 'none')}, not ${image}; change it with cw-bootctl -i ${boot} update image=${image}`);
    }
  } else {
    const answer = await api.post<unknown>('/bootconfigs', { name: boot, image, description: `boots ${image}` });
    if (!isObject(answer)) throw new ExitError(`the head node did not return the new boot config ${boot}`);
    bootObj = answer as ApiObject;
    created = true;
    ctx.out(`Created boot config ${boot}\n`);
  }

  // 3. Kernel + initramfs (a default setup that already has them is left alone).
  const hasFiles = isObject(bootObj.kernel) && isObject(bootObj.initramfs);
  if (opts.makeDefaults && hasFiles && !created) {
    ctx.out(`Boot config ${boot} has a kernel (${String(bootObj.release ?? '?')}) and an initramfs\n`);
  } else {
    const ramfs: MakeRamfsOptions = { update: idOf(bootObj) };
    if (opts.root) ramfs.root = opts.root;
    else ramfs.image = image;
    if (opts.kver) ramfs.kver = opts.kver;
    if (opts.busybox) ramfs.busybox = opts.busybox;
    try {
      await makeRamfs(ctx, ramfs);
    } catch (err) {
      // A boot config made just now without its kernel would boot nothing: leave nothing half made.
      if (created) await api.delete(`/bootconfig/${encodeURIComponent(idOf(bootObj))}`).catch(() => {});
      throw err;
    }
  }

  // 4. The global default.
  if (opts.makeDefaults) {
    const group = await findObject(ctx, 'attrib', DEFAULT_ATTRIBS);
    const attrs = group && isObject(group.attributes) ? group.attributes : {};
    if (attrs._boot_config === boot) {
      ctx.out(`${DEFAULT_ATTRIBS} already has _boot_config=${boot}\n`);
    } else {
      await api.patch<unknown>(`/attrib/${encodeURIComponent(DEFAULT_ATTRIBS)}`, { attributes: { _boot_config: boot } });
      ctx.out(`Set _boot_config=${boot} in ${DEFAULT_ATTRIBS}\n`);
    }
  }
}

