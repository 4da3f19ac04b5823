import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../../lib/atomic-write.js';
import { ExitError } from '../../../lib/errors.js';
import type { Output } from '../context.js';

/** Where Pacemaker looks for provider `cw`'s agents: `ocf:cw:headnode`. */
export const OCF_PROVIDER_DIR = '/usr/lib/ocf/resource.d/cw';
/** The agent's name inside the provider directory. */
export const OCF_AGENT_NAME = 'headnode';

/** The agent as shipped: packaging/ocf/cw-headnode beside dist/ (or src/) in a checkout and in cw-tools. */
export function shippedAgentPath(): string {
  return fileURLToPath(new URL('../../../../packaging/ocf/cw-headnode', import.meta.url));
}

export interface InstallOcfOptions {
  /** The provider directory (default /usr/lib/ocf/resource.d/cw). */
  dir?: string | undefined;
}

export interface InstallOcfDeps {
  cwd?: string;
  stdout: Output;
  /** The agent file to install (default: the shipped one). */
  source?: string;
}

/**
 * `cw-containerctl install-ocf [--dir DIR]`: installs the Pacemaker resource agent as DIR/headnode
 * (mode 0755, replaced atomically so a monitor running at that moment sees the old or the new file).
 */
export async function installOcf(options: InstallOcfOptions, deps: InstallOcfDeps): Promise<string> {
  const dir = resolve(deps.cwd ?? process.cwd(), options.dir ?? OCF_PROVIDER_DIR);
  if (options.dir !== undefined && options.dir.trim() === '') throw new ExitError('--dir must name a directory');
  const source = deps.source ?? shippedAgentPath();
  let agent: string;
  try {
    agent = await readFile(source, 'utf8');
  } catch {
    throw new ExitError(`the resource agent is missing from this installation (${source})`);
  }
  const target = join(dir, OCF_AGENT_NAME);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await writeFileAtomic(target, agent, { mode: 0o755 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ExitError(`cannot write ${target}${code === 'EACCES' || code === 'EPERM' ? ' (run as root)' : ` (${code ?? String(err)})`}`);
  }
  const name = dir === OCF_PROVIDER_DIR ? '; Pacemaker calls it ocf:cw:headnode' : '';
  deps.stdout.write(`Installed the resource agent ${target}${name}\n`);
  return target;
}
