// cw-attribctl: attribute groups (DefaultAttribs is the global default). `cw-attribctl -i DefaultAttribs set _boot_config=DefaultBoot`.
import {
  cloneAction,
  createAction,
  listAction,
  removeAction,
  setAttributesAction,
  unsetAttributesAction,
  updateAction,
} from '../common/actions.js';
import { ATTRIBS } from '../common/collection.js';
import type { ToolIo } from '../common/context.js';
import { runTool, type ToolSpec } from '../common/run.js';

export const ATTRIBCTL: ToolSpec = {
  name: 'cw-attribctl',
  synopsis: [
    'ls|list [-l|-L] [IDS]           list attribute groups',
    'create name=NAME [key=value...] add a group (description, priority)',
    'update key=value...             change fields of the selected groups',
    'set attr=value...               set attributes in the selected groups',
    'unset attr...                   remove attributes from the selected groups',
    'clone name=NEW                  copy the selected group',
    'rm|delete                       delete the selected groups',
  ],
  options: [{ long: 'content', value: true, help: 'create/update: fields as JSON, or @file.json' }],
  actions: {
    ls: (ctx, words) => listAction(ctx, ATTRIBS, words),
    list: (ctx, words) => listAction(ctx, ATTRIBS, words),
    create: (ctx, words) => createAction(ctx, ATTRIBS, words),
    update: (ctx, words) => updateAction(ctx, ATTRIBS, words),
    set: (ctx, words) => setAttributesAction(ctx, ATTRIBS, words),
    unset: (ctx, words) => unsetAttributesAction(ctx, ATTRIBS, words),
    clone: (ctx, words) => cloneAction(ctx, ATTRIBS, words),
    rm: (ctx, words) => removeAction(ctx, ATTRIBS, words),
    delete: (ctx, words) => removeAction(ctx, ATTRIBS, words),
  },
};

/** `cw-attribctl ARGS...` without the process boundary. */
export function attribctl(argv: readonly string[], io?: ToolIo): Promise<void> {
  return runTool(ATTRIBCTL, argv, io);
}
