/**
 * Rows of the local replica (an in-memory SQLite store) as etcd keys, and back.
 *
 * Every replicated table has a one-column primary key, so a row is addressed by `<table>/<key>` (the key
 * URI-encoded) and stored as the JSON object of its columns. Writes are captured by temporary triggers
 * into `temp.cw_changes` (table, key) — inside the write's transaction, so a rollback forgets them too.
 */

import type { Database, Statement } from 'better-sqlite3';

export interface RowChange {
  table: string;
  key: string;
  /** The row after the change; undefined when it was deleted. */
  row: Record<string, unknown> | undefined;
}

interface TableInfo {
  name: string;
  pk: string;
  columns: string[];
  select: Statement;
  remove: Statement;
  insert: Statement;
}

const quoteId = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** The replicated tables of the schema (all but the migration bookkeeping), read from the database itself. */
function replicatedTables(db: Database): Map<string, TableInfo> {
  const names = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name")
    .pluck()
    .all() as string[];
  const tables = new Map<string, TableInfo>();
  for (const name of names) {
    const cols = db.prepare(`PRAGMA table_info(${quoteId(name)})`).all() as Array<{ name: string; pk: number }>;
    const pks = cols.filter((c) => c.pk > 0);
    if (pks.length !== 1) throw new Error(`table ${name} needs a one-column primary key to be replicated`);
    const pk = quoteId(pks[0]!.name);
    const columns = cols.map((c) => c.name);
    tables.set(name, {
      name,
      pk: pks[0]!.name,
      columns,
      select: db.prepare(`SELECT * FROM ${quoteId(name)} WHERE ${pk} = ?`),
      remove: db.prepare(`DELETE FROM ${quoteId(name)} WHERE ${pk} = ?`),
      insert: db.prepare(`INSERT INTO ${quoteId(name)} (${columns.map(quoteId).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`),
    });
  }
  return tables;
}

/** Change capture and row copying on one replica connection. */
export class ReplicaRows {
  readonly #db: Database;
  readonly #tables: Map<string, TableInfo>;

  constructor(db: Database) {
    this.#db = db;
    this.#tables = replicatedTables(db);
    db.exec('CREATE TEMP TABLE IF NOT EXISTS cw_changes (tbl TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID');
    for (const t of this.#tables.values()) {
      // Not INSERT OR IGNORE: inside a trigger the outer statement's conflict policy (an upsert's) would win.
      const record = (ref: 'NEW' | 'OLD') =>
        `INSERT INTO temp.cw_changes SELECT '${t.name}', ${ref}.${quoteId(t.pk)} WHERE NOT EXISTS ` +
        `(SELECT 1 FROM temp.cw_changes WHERE tbl = '${t.name}' AND key = ${ref}.${quoteId(t.pk)});`;
      db.exec(`
        CREATE TEMP TRIGGER IF NOT EXISTS cw_ins_${t.name} AFTER INSERT ON main.${quoteId(t.name)} BEGIN ${record('NEW')} END;
        CREATE TEMP TRIGGER IF NOT EXISTS cw_upd_${t.name} AFTER UPDATE ON main.${quoteId(t.name)} BEGIN ${record('OLD')} ${record('NEW')} END;
        CREATE TEMP TRIGGER IF NOT EXISTS cw_del_${t.name} AFTER DELETE ON main.${quoteId(t.name)} BEGIN ${record('OLD')} END;
      `);
    }
  }

  get tableNames(): string[] {
    return [...this.#tables.keys()];
  }

  /** The rows written since the last call (inside the current transaction), and forgets them. */
  takeChanges(): RowChange[] {
    const changed = this.#db.prepare('SELECT tbl, key FROM temp.cw_changes ORDER BY tbl, key').all() as Array<{ tbl: string; key: string }>;
    this.#db.exec('DELETE FROM temp.cw_changes');
    return changed.map(({ tbl, key }) => ({ table: tbl, key, row: this.#row(tbl, key) }));
  }

  /** Forgets captured changes (after copying rows in from etcd, which are not ours to send). */
  clearChanges(): void {
    this.#db.exec('DELETE FROM temp.cw_changes');
  }

  /** Every row of every replicated table. */
  allRows(): RowChange[] {
    const rows: RowChange[] = [];
    for (const t of this.#tables.values()) {
      for (const row of this.#db.prepare(`SELECT * FROM ${quoteId(t.name)}`).all() as Array<Record<string, unknown>>) {
        rows.push({ table: t.name, key: String(row[t.pk]), row });
      }
    }
    return rows;
  }

  /** The current row of `table` with primary key `key`, or undefined. */
  row(table: string, key: string): Record<string, unknown> | undefined {
    return this.#tables.has(table) ? this.#row(table, key) : undefined;
  }

  #row(table: string, key: string): Record<string, unknown> | undefined {
    return this.#info(table).select.get(key) as Record<string, unknown> | undefined;
  }

  /**
   * Applies changes made elsewhere (already checked by the head that made them) as one local transaction;
   * with `replaceAll`, the tables are emptied first. Deletes go first and foreign keys are off meanwhile, so
   * the order of the changes within one etcd revision does not matter (e.g. two nodes swapping a MAC).
   */
  apply(changes: readonly RowChange[], options: { replaceAll?: boolean } = {}): void {
    this.#db.pragma('foreign_keys = OFF');
    try {
      this.#db.transaction(() => {
        if (options.replaceAll) for (const t of this.#tables.values()) this.#db.exec(`DELETE FROM ${quoteId(t.name)}`);
        for (const c of changes) {
          this.#info(c.table).remove.run(c.key);
        }
        for (const c of changes) {
          if (!c.row) continue;
          const t = this.#info(c.table);
          t.insert.run(t.columns.map((col) => toSqlValue(c.row![col])));
        }
      })();
    } finally {
      this.#db.pragma('foreign_keys = ON');
      this.clearChanges();
    }
  }

  #info(table: string): TableInfo {
    const t = this.#tables.get(table);
    if (!t) throw new Error(`etcd holds a row of unknown table ${JSON.stringify(table)} (written by a newer cw-headnode?)`);
    return t;
  }
}

/** A JSON value back to what SQLite stored (text, integer, real or null: the tables are STRICT, without blobs). */
function toSqlValue(value: unknown): string | number | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'number') return value;
  throw new Error(`unexpected ${typeof value} in a row from etcd`);
}
