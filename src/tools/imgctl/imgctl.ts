// cw-imgctl: node images (their content is made by cw-modimg). `cw-imgctl -i DefaultImage clone name=mpiImage`.
import { cloneAction, createAction, freezeAction, listAction, removeAction, updateAction } from '../common/actions.js';
import { IMAGES } from '../common/collection.js';
import type { ToolIo } from '../common/context.js';
import { runTool, type ToolSpec } from '../common/run.js';

export const IMGCTL: ToolSpec = {
  name: 'cw-imgctl',
  synopsis: [
    'ls|list [-l|-L] [IDS]          list images',
    'create name=NAME [description=...] [content=@FILE]  add an image (content=@FILE uploads it)',
    'update key=value...            change the selected images (name, description, frozen, content=@FILE)',
    'clone name=NEW                 copy the selected image',
    'freeze | unfreeze              block or allow changes (same as update frozen=true|false)',
    'rm|delete                      delete the selected images',
    'export FILE                    write the selected image (content + metadata) to an archive for another head node',
    'import FILE [--name NEW]       add the image of an archive made by export (checksum verified)',
  ],
  options: [
    { long: 'content', value: true, help: 'create/update: fields as JSON, or @file.json' },
    { long: 'name', value: true, help: 'import: the new image\'s name (default: the name in the archive)' },
  ],
  actions: {
    ls: (ctx, words) => listAction(ctx, IMAGES, words),
    list: (ctx, words) => listAction(ctx, IMAGES, words),
    create: (ctx, words) => createAction(ctx, IMAGES, words),
    update: (ctx, words) => updateAction(ctx, IMAGES, words),
    clone: (ctx, words) => cloneAction(ctx, IMAGES, words),
    freeze: (ctx, words) => freezeAction(ctx, IMAGES, words, true),
    unfreeze: (ctx, words) => freezeAction(ctx, IMAGES, words, false),
    rm: (ctx, words) => removeAction(ctx, IMAGES, words),
    delete: (ctx, words) => removeAction(ctx, IMAGES, words),
    export: async (ctx, words) => (await import('./transfer.js')).exportAction(ctx, words),
    import: async (ctx, words) => (await import('./transfer.js')).importAction(ctx, words),
  },
};

/** `cw-imgctl ARGS...` without the process boundary. */
export function imgctl(argv: readonly string[], io?: ToolIo): Promise<void> {
  return runTool(IMGCTL, argv, io);
}
