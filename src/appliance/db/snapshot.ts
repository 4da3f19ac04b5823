// A consistent copy of the database for backups, behind a small interface so that each backend provides
// it without the backup code knowing how. Both give a SQLite file of the same schema.
import type { StoragePaths } from '../../lib/storage-layout.js';
import { existsSync } from 'node:fs';
import { EtcdStore } from './etcd/store.js';
import { schemaVersionOfFile, sqliteSnapshotter } from './sqlite/snapshot.js';
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

/** What an etcd-backed store offers for backups (EtcdStore.snapshotTo). */
export interface SnapshotSource {
  snapshotTo(dest: string): Promise<void>;
}

/** The snapshotter for the database `store` works on (its storage directory's SQLite file, or etcd). */
export function snapshotterOf(paths: StoragePaths, store: object): DatabaseSnapshotter {
  return store instanceof EtcdStore ? openSnapshotter(paths, 'etcd', store) : openSnapshotter(paths, 'sqlite');
}

/**
 * The snapshotter for the head's database: SQLite's file in the storage directory, or, with etcd, the
 * cluster's data as the store's replica holds it once current (`etcd`: the store that has it).
 */
export function openSnapshotter(paths: StoragePaths, backend: StoreBackend = 'sqlite', etcd?: SnapshotSource): DatabaseSnapshotter {
  switch (backend) {
    case 'sqlite':
      return sqliteSnapshotter(paths.dbFile);
    case 'etcd': {
      if (!etcd) throw new Error('a backup of an etcd-backed head needs its store');
      return {
        backend: 'etcd',
        async snapshot(dest: string) {
          if (existsSync(dest)) throw new Error(`snapshot destination ${dest} exists`);
          await etcd.snapshotTo(dest);
          return { schemaVersion: schemaVersionOfFile(dest) };
        },
      };
    }
    default:
      throw new Error(`unknown store backend "${String(backend)}"`);
  }
}
