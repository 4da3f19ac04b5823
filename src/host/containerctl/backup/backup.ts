// `cw-containerctl backup [FILE]`: the appliance makes the archive itself (`cw-appliance backup`, through
// the engine's exec), so the database snapshot is taken by the code that owns the database and no secret
// crosses a command line or a log. The archive lands in STORAGE/backup/; a FILE elsewhere gets a copy.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { formatBytes } from '../../../lib/bytes.js';
import { writeStreamAtomic } from '../../../lib/atomic-write.js';
import { ExitError } from '../../../lib/errors.js';
import { findRunningAppliance, runAppliance, storageOf } from '../appliance.js';
import type { CommandContext } from '../context.js';

export interface BackupOptions {
  /** Where the archive goes (default STORAGE/backup/cw-backup-TIMESTAMP.tar.gz). */
  file?: string | undefined;
  name?: string | undefined;
}

interface ApplianceBackup {
  file: string;
  size: number;
  schemaVersion: number;
  productVersion: string;
  members: string[];
}

function parseReport(stdout: string): ApplianceBackup {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    const value = JSON.parse(line) as ApplianceBackup;
    if (typeof value.file === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value.file)) return value;
  } catch {
    // fall through
  }
  throw new ExitError(`the appliance answered the backup with something unexpected: ${JSON.stringify(line.slice(0, 120))}`);
}

/**
 * `cw-containerctl backup [FILE] [--name NAME]`: FILE is refused when it exists; the archive is 0600 and
 * appears under its final name only when complete.
 */
export async function backup(options: BackupOptions, ctx: CommandContext, cwd: string = process.cwd()): Promise<void> {
  const engine = await ctx.engine();
  const container = await findRunningAppliance(engine, options.name);
  const storage = storageOf(container);
  const backupDir = join(storage, 'backup');
  const target = options.file === undefined ? undefined : resolve(cwd, options.file);
  if (target !== undefined) {
    if (await stat(target).then(() => true, () => false)) throw new ExitError(`${target} exists; choose another file name`);
    if (!(await stat(dirname(target)).then((s) => s.isDirectory(), () => false))) throw new ExitError(`directory ${dirname(target)} does not exist`);
  }
  const inBackupDir = target !== undefined && dirname(target) === backupDir;
  // A FILE outside the storage is written in backup/ under a temporary name first, then copied out.
  const output = target === undefined ? undefined : inBackupDir ? basename(target) : `cw-export-${randomBytes(6).toString('hex')}.tmp`;
  if (output !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(output)) {
    throw new ExitError(`a backup in ${backupDir} needs a plain file name (letters, digits, . _ -), not ${JSON.stringify(output)}`);
  }
  const started = ctx.clock.now();
  const result = parseReport((await runAppliance(engine, container, ['backup', ...(output ? ['--output', output] : [])])).stdout);
  let written = join(backupDir, result.file);
  if (target !== undefined && !inBackupDir) {
    try {
      await copyPrivate(written, target);
    } finally {
      await rm(written, { force: true });
    }
    written = target;
  }
  const seconds = ((ctx.clock.now() - started) / 1000).toFixed(1);
  ctx.stdout.write(`Backup written to ${written} (${formatBytes(result.size)}, schema ${result.schemaVersion}, cw-headnode ${result.productVersion}) in ${seconds} s\n`);
  ctx.stdout.write(`Holds: ${result.members.join(' ')}\n`);
  ctx.stdout.write(`Restore it into an empty storage directory with:\n    cw-containerctl start --restore ${written} NEW_STORAGE\n`);
}

/** Copies `from` to `to` (0600): `to` appears only once the whole copy is written and flushed. */
async function copyPrivate(from: string, to: string): Promise<void> {
  try {
    await writeStreamAtomic(to, createReadStream(from), { mode: 0o600 });
  } catch (err) {
    throw new ExitError(`cannot write ${to}: ${(err as Error).message}`);
  }
}
