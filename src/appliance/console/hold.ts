// An interactive console session (`cw-appliance console n0`) holds the node's console while it runs: a
// file `<dir>/<node>.held` with its pid. The node's log worker sees it and stays away until it is gone
// (or its process is), so the two never fight over the BMC's single SOL session.
import { constants } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `/run/cw/consoles` (`CW_RUN_DIR` moves /run/cw): not persistent, so a reboot leaves no hold behind. */
export function consoleHoldDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.CW_RUN_DIR || '/run/cw', 'consoles');
}

export function holdFile(dir: string, node: string): string {
  return join(dir, `${node}.held`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid holding `node`'s console, when a live process does. */
export function holderOf(dir: string, node: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(holdFile(dir, node), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

/**
 * Takes the console of `node` for process `pid`; throws when another live process holds it. A file left
 * by a process that died is taken over. Returns the function that gives it back.
 */
export async function holdConsole(dir: string, node: string, pid: number = process.pid): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = holdFile(dir, node);
  for (let tries = 0; tries < 2; tries++) {
    try {
      const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      await handle.writeFile(`${pid}\n`);
      await handle.close();
      return async () => {
        const now = await readFile(file, 'utf8').catch(() => '');
        if (now.trim() === String(pid)) await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = holderOf(dir, node);
      if (holder !== undefined) throw new Error(`an interactive console session (pid ${holder}) is already attached to ${node}`);
      await rm(file, { force: true });
    }
  }
  throw new Error(`cannot take the console of ${node}`);
}
