import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import type { DatabaseSnapshotter } from '../snapshot.js';
import { schemaVersion } from './migrate.js';

// How long the snapshot waits for a lock (a checkpoint of another connection); a read needs none otherwise.
const BUSY_TIMEOUT_MS = 30_000;

/**
 * SQLite's `VACUUM INTO`: one read transaction over the whole database, so the copy is exactly one
 * committed state (WAL readers see a snapshot; writers in other processes are not blocked). Never a copy
 * of the files: the WAL would make that a mix of states.
 */
export function sqliteSnapshotter(dbFile: string): DatabaseSnapshotter {
  return {
    backend: 'sqlite',
    async snapshot(dest: string) {
      if (existsSync(dest)) throw new Error(`snapshot destination ${dest} exists`);
      const source = new Database(dbFile, { fileMustExist: true });
      try {
        source.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
        // A bound parameter: the path never becomes SQL text.
        source.prepare('VACUUM INTO ?').run(dest);
      } finally {
        source.close();
      }
      return { schemaVersion: schemaVersionOfFile(dest) };
    },
  };
}

/** The schema version (last migration) of the SQLite file `file`. */
export function schemaVersionOfFile(file: string): number {
  const copy = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return schemaVersion(copy);
  } finally {
    copy.close();
  }
}
