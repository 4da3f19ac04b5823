// The node side's files (agent, its systemd unit) go into every image built or imported here. They are
// owned by src/images/node-files.ts; when that module is absent (a partial build) the image
// is still made and the caller is told.

type InstallNodeFiles = (rootDir: string) => Promise<unknown> | unknown;

/** Installs the node agent files into `rootDir`; returns false (after `warn`) when there is no installer. */
export async function installNodeFilesInto(rootDir: string, warn: (line: string) => void): Promise<boolean> {
  const spec = './node-files.js';
  let mod: { installNodeFiles?: InstallNodeFiles };
  try {
    mod = (await import(spec)) as { installNodeFiles?: InstallNodeFiles };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if ((e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') && /node-files/.test(e.message)) {
      warn('WARNING: node agent files are not available in this build; the image has no cw-node-agent');
      return false;
    }
    throw err;
  }
  if (typeof mod.installNodeFiles !== 'function') {
    warn('WARNING: node-files module exports no installNodeFiles; the image has no cw-node-agent');
    return false;
  }
  await mod.installNodeFiles(rootDir);
  return true;
}
