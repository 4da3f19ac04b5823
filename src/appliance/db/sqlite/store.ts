import Database from 'better-sqlite3';
import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensurePrivateDir } from '../../storage.js';
import { BusyError, ConflictError, ValidationError } from '../errors.js';
import { MIGRATIONS, type Migration } from '../migrations/index.js';
import { validateAdminName } from '../model.js';
import type { AddAdminOptions, Admin, NewAdmin, SettingKey, Store, StoreHandle } from '../store.js';
import { applyMigrations } from './migrate.js';
import { Mutex } from './mutex.js';

type Db = Database.Database;

export interface SqliteStoreOptions {
  /** Milliseconds to wait for another process's write lock before failing. */
  busyTimeoutMs?: number;
  now?: () => Date;
  migrations?: readonly Migration[];
}

interface AdminRow {
  name: string;
  key_type: string;
  key_line: string;
  fingerprint: string;
  comment: string;
  added_at: string;
}

const toAdmin = (r: AdminRow): Admin => ({
  name: r.name,
  keyType: r.key_type,
  keyLine: r.key_line,
  fingerprint: r.fingerprint,
  comment: r.comment,
  addedAt: r.added_at,
});

/** SQLite's lock timeouts become BusyError; everything else passes unchanged. */
function translateError(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
    return new BusyError('database is busy (another process holds its write lock); try again');
  }
  return err;
}

async function translated<T>(op: () => T | Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw translateError(err);
  }
}

/** The synchronous queries; callers decide about locking and transactions. */
class Queries {
  readonly #db: Db;
  readonly #now: () => Date;
  readonly #listAdmins;
  readonly #getAdmin;
  readonly #adminByFingerprint;
  readonly #insertAdmin;
  readonly #deleteAdmin;
  readonly #getSetting;
  readonly #setSetting;
  readonly #deleteSetting;

  constructor(db: Db, now: () => Date) {
    this.#db = db;
    this.#now = now;
    this.#listAdmins = db.prepare<[], AdminRow>('SELECT * FROM admins ORDER BY name');
    this.#getAdmin = db.prepare<[string], AdminRow>('SELECT * FROM admins WHERE name = ?');
    this.#adminByFingerprint = db.prepare<[string], AdminRow>('SELECT * FROM admins WHERE fingerprint = ?');
    this.#insertAdmin = db.prepare<[AdminRow]>(
      `INSERT INTO admins (name, key_type, key_line, fingerprint, comment, added_at)
       VALUES (@name, @key_type, @key_line, @fingerprint, @comment, @added_at)`,
    );
    this.#deleteAdmin = db.prepare<[string]>('DELETE FROM admins WHERE name = ?');
    this.#getSetting = db.prepare<[string], string>('SELECT value FROM settings WHERE key = ?').pluck();
    this.#setSetting = db.prepare<[string, string]>(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.#deleteSetting = db.prepare<[string]>('DELETE FROM settings WHERE key = ?');
  }

  listAdmins(): Admin[] {
    return this.#listAdmins.all().map(toAdmin);
  }

  getAdmin(name: string): Admin | undefined {
    const row = this.#getAdmin.get(name);
    return row && toAdmin(row);
  }

  addAdmin(admin: NewAdmin, options: AddAdminOptions): Admin {
    validateAdminName(admin.name);
    if (/[\0-\x1f\x7f]/.test(admin.keyLine + admin.comment + admin.keyType + admin.fingerprint)) {
      throw new ValidationError('admin key fields must be single-line printable text');
    }
    const row: AdminRow = {
      name: admin.name,
      key_type: admin.keyType,
      key_line: admin.keyLine,
      fingerprint: admin.fingerprint,
      comment: admin.comment,
      added_at: this.#now().toISOString(),
    };
    // A savepoint keeps the check and the write together even when called outside a transaction.
    return this.#db.transaction(() => {
      const sameKey = this.#adminByFingerprint.get(admin.fingerprint);
      if (sameKey && sameKey.name !== admin.name) {
        throw new ConflictError(`key ${admin.fingerprint} is already registered for admin ${sameKey.name}`);
      }
      if (this.#getAdmin.get(admin.name)) {
        if (!options.replace) throw new ConflictError(`admin ${admin.name} already exists`);
        this.#deleteAdmin.run(admin.name);
      }
      this.#insertAdmin.run(row);
      return toAdmin(row);
    })();
  }

  removeAdmin(name: string): boolean {
    return this.#deleteAdmin.run(name).changes > 0;
  }

  getSetting(key: SettingKey): string | undefined {
    return this.#getSetting.get(key);
  }

  setSetting(key: SettingKey, value: string): void {
    if (typeof value !== 'string') throw new ValidationError(`setting ${key} must be a string`);
    this.#setSetting.run(key, value);
  }

  deleteSetting(key: SettingKey): boolean {
    return this.#deleteSetting.run(key).changes > 0;
  }
}

/** The store operations over `Queries`, each run through `guard` (a lock, or a transaction liveness check). */
abstract class QueryStore implements Store {
  readonly backend = 'sqlite';
  protected abstract guard<T>(op: () => T | Promise<T>): Promise<T>;
  protected abstract readonly q: Queries;

  listAdmins(): Promise<Admin[]> {
    return this.guard(() => this.q.listAdmins());
  }
  getAdmin(name: string): Promise<Admin | undefined> {
    return this.guard(() => this.q.getAdmin(name));
  }
  addAdmin(admin: NewAdmin, options: AddAdminOptions = {}): Promise<Admin> {
    return this.guard(() => this.q.addAdmin(admin, options));
  }
  removeAdmin(name: string): Promise<boolean> {
    return this.guard(() => this.q.removeAdmin(name));
  }
  getSetting(key: SettingKey): Promise<string | undefined> {
    return this.guard(() => this.q.getSetting(key));
  }
  setSetting(key: SettingKey, value: string): Promise<void> {
    return this.guard(() => this.q.setSetting(key, value));
  }
  deleteSetting(key: SettingKey): Promise<boolean> {
    return this.guard(() => this.q.deleteSetting(key));
  }
  abstract transaction<T>(fn: (tx: Store) => Promise<T> | T): Promise<T>;
}

/** The view handed to a transaction body: runs directly on the connection the transaction holds. */
class TransactionView extends QueryStore {
  protected readonly q: Queries;
  readonly #db: Db;
  readonly #depth: number;
  #open = true;

  constructor(db: Db, q: Queries, depth: number) {
    super();
    this.#db = db;
    this.q = q;
    this.#depth = depth;
  }

  protected async guard<T>(op: () => T | Promise<T>): Promise<T> {
    if (!this.#open) throw new Error('transaction already finished; use the store, not the transaction view');
    return translated(op);
  }

  async transaction<T>(fn: (tx: Store) => Promise<T> | T): Promise<T> {
    return this.guard(() => runInTransaction(this.#db, this.q, fn, this.#depth + 1));
  }

  finish(): void {
    this.#open = false;
  }
}

// Depth 0 is a real transaction, deeper levels are savepoints, so a failing inner block can be caught
// by its caller without losing the outer work.
async function runInTransaction<T>(db: Db, q: Queries, fn: (tx: Store) => Promise<T> | T, depth: number): Promise<T> {
  const savepoint = `cw_tx_${depth}`;
  db.exec(depth === 0 ? 'BEGIN IMMEDIATE' : `SAVEPOINT ${savepoint}`);
  const view = new TransactionView(db, q, depth);
  try {
    const result = await fn(view);
    view.finish();
    db.exec(depth === 0 ? 'COMMIT' : `RELEASE ${savepoint}`);
    return result;
  } catch (err) {
    view.finish();
    if (db.inTransaction) db.exec(depth === 0 ? 'ROLLBACK' : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
    throw err;
  }
}

/** The SQLite store: one connection, operations serialized so an open transaction owns it alone. */
export class SqliteStore extends QueryStore implements StoreHandle {
  protected readonly q: Queries;
  readonly #db: Db;
  readonly #mutex = new Mutex();
  // Set while a transaction body runs, to turn a use of the store instead of `tx` (a deadlock) into an error.
  readonly #insideTransaction = new AsyncLocalStorage<{ active: boolean }>();
  readonly file: string;

  constructor(db: Db, file: string, now: () => Date) {
    super();
    this.#db = db;
    this.file = file;
    this.q = new Queries(db, now);
  }

  protected guard<T>(op: () => T | Promise<T>): Promise<T> {
    if (this.#insideTransaction.getStore()?.active) {
      return Promise.reject(new Error('store used inside its own transaction; use the transaction argument'));
    }
    return this.#mutex.run(() => {
      if (!this.#db.open) throw new Error('store is closed');
      return translated(op);
    });
  }

  transaction<T>(fn: (tx: Store) => Promise<T> | T): Promise<T> {
    return this.guard(async () => {
      // A mutable flag, not mere presence: timers created in the body inherit the context and outlive it.
      const context = { active: true };
      try {
        return await this.#insideTransaction.run(context, () => runInTransaction(this.#db, this.q, fn, 0));
      } finally {
        context.active = false;
      }
    });
  }

  /** Waits for running operations, then closes the connection (checkpointing the WAL). */
  close(): Promise<void> {
    if (this.#insideTransaction.getStore()?.active) {
      return Promise.reject(new Error('store closed inside its own transaction'));
    }
    return this.#mutex.run(() => {
      if (this.#db.open) this.#db.close();
    });
  }
}

/**
 * Opens (creating if needed) the SQLite database at `file`: mode 0600 in a 0700 directory, WAL journal,
 * foreign keys on, a busy timeout for the other process (API and cw-appliance share the file), and every
 * pending migration applied.
 */
export function openSqliteStore(file: string, options: SqliteStoreOptions = {}): SqliteStore {
  const now = options.now ?? (() => new Date());
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  ensurePrivateDir(dirname(file));
  closeSync(openSync(file, 'a', 0o600));
  if ((statSync(file).mode & 0o777) !== 0o600) chmodSync(file, 0o600);
  let db: Db | undefined;
  try {
    db = new Database(file, { timeout: busyTimeoutMs });
    db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`could not switch to WAL journal (got ${String(mode)})`);
    db.pragma('foreign_keys = ON');
    // FULL: a commit acknowledged to an admin survives a power cut, not only a process crash.
    db.pragma('synchronous = FULL');
    applyMigrations(db, options.migrations ?? MIGRATIONS, now);
    return new SqliteStore(db, file, now);
  } catch (err) {
    db?.close();
    throw new Error(`cannot open database ${file}: ${(err as Error).message}`);
  }
}
