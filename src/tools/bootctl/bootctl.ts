// cw-bootctl: boot configurations. `cw-bootctl -i DefaultBoot update kernel=@/boot/vmlinuz-...`.
import { cloneAction, createAction, freezeAction, listAction, removeAction, updateAction } from '../common/actions.js';
import { BOOTCONFIGS } from '../common/collection.js';
import type { ToolIo } from '../common/context.js';
import { runTool, type ToolSpec } from '../common/run.js';

export const BOOTCTL: ToolSpec = {
  name: 'cw-bootctl',
  synopsis: [
    'ls|list [-l|-L] [IDS]                      list boot configs',
    'create name=NAME [kernel=@FILE] [initramfs=@FILE] [cmdline=...] [image=IMG] [boot_style=rwram]',
    'update key=value...                        change the selected boot configs (kernel=@FILE uploads it)',
    'clone name=NEW [key=value...]              copy the selected boot config',
    'freeze | unfreeze                          block or allow changes (same as update frozen=true|false)',
    'rm|delete                                  delete the selected boot configs',
  ],
  options: [{ long: 'content', value: true, help: 'create/update: fields as JSON, or @file.json' }],
  actions: {
    ls: (ctx, words) => listAction(ctx, BOOTCONFIGS, words),
    list: (ctx, words) => listAction(ctx, BOOTCONFIGS, words),
    create: (ctx, words) => createAction(ctx, BOOTCONFIGS, words),
    update: (ctx, words) => updateAction(ctx, BOOTCONFIGS, words),
    clone: (ctx, words) => cloneAction(ctx, BOOTCONFIGS, words),
    freeze: (ctx, words) => freezeAction(ctx, BOOTCONFIGS, words, true),
    unfreeze: (ctx, words) => freezeAction(ctx, BOOTCONFIGS, words, false),
    rm: (ctx, words) => removeAction(ctx, BOOTCONFIGS, words),
    delete: (ctx, words) => removeAction(ctx, BOOTCONFIGS, words),
  },
};

/** `cw-bootctl ARGS...` without the process boundary. */
export function bootctl(argv: readonly string[], io?: ToolIo): Promise<void> {
  return runTool(BOOTCTL, argv, io);
}
