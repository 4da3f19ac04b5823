// cw-modimg --delete: drops local copies from the workspace (never the head node's images).
import { checkImageName } from '../../images/workspace.js';
import { ExitError } from '../../lib/errors.js';
import type { ModimgSession } from './session.js';

/** `cw-modimg -i NAME --delete` or `--delete --all`. */
export async function deleteLocal(session: ModimgSession): Promise<void> {
  if (session.args.all) {
    const names = Object.keys((await session.workspace.load()).images).sort();
    for (const n of names) await session.workspace.remove(n);
    session.ctx.out(names.length === 0 ? 'No local images\n' : `Deleted local images: ${names.join(', ')}\n`);
    return;
  }
  const name = session.args.image as string;
  checkImageName(name);
  if (!(await session.workspace.remove(name))) throw new ExitError(`no local image ${name} in ${session.workspace.dir}`);
  session.ctx.out(`Deleted local image ${name}\n`);
}
