// Our own client packages (cw-node as RPM and DEB), built into the image (/opt/cw/clientpkgs) by scripts/build-client-pkgs.sh,
// are put into STORAGE/clientpkgs at every start, like the iPXE binaries into the boot directory. A file
// already there is never replaced: an admin's own build of the same name wins, and an upgrade only adds
// the new version's files (older versions stay until an admin removes them; downloads pick the newest).
import { copyFile, constants, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClientPackageDirs } from './repository.js';

/** Copies the bundled packages missing from clientpkgs/{rpm,deb}; returns the names copied. */
export async function installBundledClientPackages(bundleDir: string, dirs: Pick<ClientPackageDirs, 'clientRpmDir' | 'clientDebDir'>): Promise<string[]> {
  const copied: string[] = [];
  for (const [type, target] of [['rpm', dirs.clientRpmDir], ['deb', dirs.clientDebDir]] as const) {
    const names = await readdir(join(bundleDir, type)).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith(`.${type}`) && !n.startsWith('.')).sort()) {
      try {
        // COPYFILE_EXCL: never over a file that is there, even one appearing meanwhile.
        await copyFile(join(bundleDir, type, name), join(target, name), constants.COPYFILE_EXCL);
        copied.push(`${type}/${name}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }
  return copied;
}
