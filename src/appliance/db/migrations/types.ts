/**
 * One schema change of the SQLite backend. Versions only grow; a migration, once released, never changes
 * (add a new one instead). A replicated backend keeps its own schema handling.
 */
export interface Migration {
  version: number;
  name: string;
  /** SQL run inside the migration's own transaction. */
  sql: string;
}
