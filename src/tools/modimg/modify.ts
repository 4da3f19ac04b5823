// cw-modimg --copyin, --install, --exec and --chroot: changes to an unpacked root, made in one chroot
// session; an interactive --chroot may discard them afterwards.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { cleanAptCaches } from '../../images/builders/debootstrap.js';
import { withChroot, type ChrootSession } from '../../images/chroot.js';
import { exists, type ManifestEntry } from '../../images/workspace.js';
import { ExitError } from '../../lib/errors.js';
import { clip } from '../common/args.js';
import type { ModimgSession } from './session.js';

/** Runs --copyin, --install, --exec and --chroot in one chroot session; null when changes were discarded. */
export async function modifyImage(session: ModimgSession, name: string, entry: ManifestEntry): Promise<ManifestEntry | null> {
  const root = session.workspace.abs(entry.root as string);
  const changed: ManifestEntry = { ...entry, modified: entry.modified ?? session.workspace.stamp() };
  await session.workspace.put(name, { ...changed, updated: entry.updated });
  const a = session.args;
  await withChroot(root, async (s) => {
    for (const c of a.copyin) await copyIn(session, s, c.src, c.dest);
    if (a.install.length > 0) await install(session, name, s, a.install);
    for (const cmd of a.exec) {
      session.say(`exec in ${name}: ${clip(cmd, 120)}`);
      const code = await s.run(['/bin/sh', '-c', cmd]);
      if (code !== 0) throw new ExitError(`--exec "${clip(cmd, 80)}" exited with ${code} in image ${name} (changes so far are kept; --delete drops them)`);
    }
    if (a.chroot) {
      const shell = (await exists(join(root, 'bin/bash'))) ? '/bin/bash' : '/bin/sh';
      session.say(`entering ${name}; exit the shell to finish`);
      await s.run([shell, '-i'], { stdin: 'inherit', env: { PS1: `[cw-modimg ${name}] \\w# `, TERM: process.env.TERM ?? 'xterm' } });
    }
  });
  if (a.chroot && !a.noDiscard && session.interactive && !(await session.ask(`Keep the changes to ${name}?`, true))) {
    if (entry.file) {
      await rm(root, { recursive: true, force: true });
      const { root: _r, modified: _m, ...rest } = entry;
      await session.workspace.put(name, { ...rest, updated: entry.updated });
    } else {
      await session.workspace.remove(name);
    }
    session.say(`discarded the changes to ${name}`);
    return null;
  }
  return changed;
}

/** Copies a host path into the image; the destination is resolved inside the chroot, not on the host. */
async function copyIn(session: ModimgSession, s: ChrootSession, src: string, dest: string): Promise<void> {
  const from = src.startsWith('/') ? src : join(session.ctx.cwd, src);
  const st = await lstat(from).catch(() => undefined);
  if (!st) throw new ExitError(`--copyin: no such file or directory: ${src}`);
  const stageName = `.cw-copyin-${randomBytes(4).toString('hex')}`;
  const stage = join(s.root, stageName);
  await mkdir(stage, { mode: 0o700 });
  try {
    const cp = await execa('cp', ['-a', '--', from, join(stage, basename(from))], { reject: false, all: true, stdin: 'ignore' });
    if (cp.exitCode !== 0) throw new ExitError(`--copyin ${src}: ${String(cp.all).trim()}`);
    const code = await s.run(['cp', '-a', '--', `/${stageName}/${basename(from)}`, dest]);
    if (code !== 0) throw new ExitError(`--copyin: copying to ${dest} inside the image failed`);
    session.say(`copied ${src} to ${dest}`);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

async function install(session: ModimgSession, name: string, s: ChrootSession, pkgs: readonly string[]): Promise<void> {
  for (const p of pkgs) if (!/^[A-Za-z0-9@+._:=~\/*-]+$/.test(p) || p.startsWith('-')) throw new ExitError(`--install: "${clip(p)}" is not a package name`);
  const pm = await packageManagerOf(s.root);
  if (!pm) throw new ExitError(`image ${name} has neither apt-get nor dnf/yum; install packages with --exec or --chroot`);
  await session.reporter.step(`Installing ${pkgs.join(' ')} into ${name} (${pm})`, async (st) => {
    const run = async (argv: string[], env: Record<string, string> = {}) => {
      const last: string[] = [];
      const code = await s.run(argv, {
        stdout: 'pipe',
        env,
        onLine: (l) => {
          last.push(l);
          if (last.length > 5) last.shift();
          st.line(l);
        },
      });
      if (code !== 0) throw new ExitError(`${argv.slice(0, 2).join(' ')} failed in image ${name} (exit ${code}): ${last.slice(-3).join(' | ')}`);
    };
    if (pm === 'apt') {
      // Services must not start in a chroot: policy-rc.d says "not now" to every invoke-rc.d.
      const policy = join(s.root, 'usr/sbin/policy-rc.d');
      const hadPolicy = await exists(policy);
      if (!hadPolicy) await writeFile(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
      try {
        const env = { DEBIAN_FRONTEND: 'noninteractive' };
        await run(['apt-get', 'update'], env);
        await run(['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs], env);
        await run(['apt-get', 'clean'], env);
      } finally {
        if (!hadPolicy) await rm(policy, { force: true });
      }
      await cleanAptCaches(s.root);
    } else {
      await run([pm, '-y', '--setopt=install_weak_deps=False', 'install', ...pkgs]);
      await run([pm, 'clean', 'all']).catch(() => {});
    }
  });
}

type PackageManager = 'apt' | 'dnf' | 'yum';

/** Which package manager the image itself has. */
async function packageManagerOf(root: string): Promise<PackageManager | null> {
  if (await exists(join(root, 'usr/bin/apt-get'))) return 'apt';
  if (await exists(join(root, 'usr/bin/dnf'))) return 'dnf';
  if (await exists(join(root, 'usr/bin/yum'))) return 'yum';
  return null;
}
