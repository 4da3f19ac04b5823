// A consistent copy of the database for backups, behind a small interface so that another backend (an
// etcd snapshot) can provide the same without the backup code knowing how.
import type { StoragePaths } from '../../lib/storage-layout.js';
import { sqliteSnapshotter } from './sqlite/snapshot.js';
import type { StoreBackend } from './index.js';

export interface DatabaseSnapshot {
  /** The schema version of the copy (the last migration applied). */
  schemaVersion: number;
}

export interface DatabaseSnapshotter {
  /** The backend name written into the backup's manifest, e.g. `sqlite`. */
  readonly backend: string;
  /** Writes a consistent copy of the whole database to `dest` (which must not exist) while writers go on. */
  snapshot(dest: string): Promise<DatabaseSnapshot>;
}

/** The snapshotter for the storage directory's database. */
export function openSnapshotter(paths: StoragePaths, backend: StoreBackend = 'sqlite'): DatabaseSnapshotter {
  switch (backend) {
    case 'sqlite':
      return sqliteSnapshotter(paths.dbFile);
    case 'etcd':
      // An etcd snapshot (the maintenance API's Snapshot) fits here; until then say so instead of
      // backing up the wrong database.
      return {
        backend: 'etcd',
        snapshot: () => Promise.reject(new Error('backups of an etcd-backed head node are not supported yet (etcd snapshot)')),
      };
    default:
      throw new Error(`unknown store backend "${String(backend)}"`);
  }
}
