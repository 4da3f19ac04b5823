import type { Database } from 'better-sqlite3';
import type { Migration } from '../migrations/index.js';

/** Checks that versions are positive integers in strictly increasing order. */
export function checkMigrationOrder(migrations: readonly Migration[]): void {
  let previous = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version <= previous) {
      throw new Error(`migration "${m.name}": version ${m.version} must be an integer above ${previous}`);
    }
    previous = m.version;
  }
}

/** The highest applied schema version, 0 for a new database. */
export function schemaVersion(db: Database): number {
  const row = db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

/**
 * Applies the migrations the database has not seen, each in its own transaction together with its
 * `schema_migrations` row, so a crash leaves the schema at a whole version. Safe to call on every open and
 * from several processes at once. Returns the versions applied now.
 */
export function applyMigrations(db: Database, migrations: readonly Migration[], now: () => Date = () => new Date()): number[] {
  checkMigrationOrder(migrations);
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL) STRICT');
  const latest = migrations.at(-1)?.version ?? 0;
  const current = schemaVersion(db);
  if (current > latest) {
    throw new Error(`database schema version ${current} is newer than this cw-headnode knows (${latest}); use a newer image`);
  }
  const isApplied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').pluck();
  const record = db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
  const applied: number[] = [];
  for (const m of migrations) {
    if (m.version <= current) continue;
    // IMMEDIATE takes the write lock first, so a second process waits, then sees the row and skips.
    const step = db.transaction(() => {
      if (isApplied.get(m.version) !== undefined) return false;
      db.exec(m.sql);
      record.run(m.version, now().toISOString());
      return true;
    });
    try {
      if (step.immediate()) applied.push(m.version);
    } catch (err) {
      throw new Error(`migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
    }
  }
  return applied;
}
