// cw-modimg --query: which packages an image holds, asked of its own dpkg or rpm in a chroot.
import { join } from 'node:path';
import { execa } from 'execa';
import { exists, type ManifestEntry } from '../../images/workspace.js';
import { ExitError } from '../../lib/errors.js';
import type { ModimgSession } from './session.js';

/** `cw-modimg -i NAME --query [PKG...]`: installed packages and versions, read from the image's package database. */
export async function queryImage(session: ModimgSession, name: string, entry: ManifestEntry, pkgs: readonly string[]): Promise<void> {
  const root = session.workspace.abs(entry.root as string);
  const dpkg = await exists(join(root, 'var/lib/dpkg/status'));
  const argv = dpkg
    ? ['dpkg-query', '-W', '-f', '${db:Status-Abbrev}\t${binary:Package}\t${Version}\n', ...pkgs]
    : ['rpm', '-q', '--qf', 'ii \t%{NAME}\t%{VERSION}-%{RELEASE}\n', ...(pkgs.length === 0 ? ['-a'] : pkgs)];
  if (!dpkg && !(await exists(join(root, 'usr/bin/rpm')))) throw new ExitError(`image ${name} has no package database (neither dpkg nor rpm)`);
  const r = await execa('chroot', [root, ...argv], { reject: false, stdin: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' }, extendEnv: false });
  const found = new Map<string, string>();
  for (const line of String(r.stdout).split('\n')) {
    const [status, pkg, version] = line.split('\t');
    if (!status?.startsWith('ii') || !pkg) continue;
    found.set(pkg.replace(/:(amd64|all|i386|arm64)$/, ''), version ?? '');
  }
  const lines = [...found].sort(([x], [y]) => x.localeCompare(y)).map(([p, v]) => `${p} ${v}`);
  if (lines.length > 0) session.ctx.out(`${lines.join('\n')}\n`);
  const missing = pkgs.filter((p) => !found.has(p) && !found.has(p.replace(/:.*$/, '')));
  if (missing.length > 0) throw new ExitError(`not installed in image ${name}: ${missing.join(', ')}`);
  if (pkgs.length === 0 && lines.length === 0) throw new ExitError(`cannot list the packages of image ${name}: ${String(r.stderr).trim().split('\n').at(-1) ?? ''}`);
}
