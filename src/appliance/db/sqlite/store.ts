import Database from 'better-sqlite3';
import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensurePrivateDir } from '../../../lib/storage-layout.js';
import type { ClusterConf } from '../../../lib/clusterconf.js';
import { ipToInt } from '../../../lib/ipv4.js';
import {
  COLLECTIONS,
  type BootConfig,
  type BootFile,
  type CollectionInputs,
  type CollectionName,
  type CollectionSpec,
  type CollectionTypes,
  type Image,
  type RecordContext,
  type StoredRecord,
} from '../collections.js';
import { BusyError, ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { parseRelease, quote, type RefKind } from '../fields.js';
import { MIGRATIONS, type Migration } from '../migrations/index.js';
import { validateAdminName } from '../model.js';
import { NODE_SPEC, type Node, type NodeInput, type ResolvedAttributes } from '../nodes.js';
import type {
  AddAdminOptions,
  Admin,
  ClusterConfResult,
  CommitInfo,
  NewAdmin,
  SettingKey,
  Store,
  StoreHandle,
} from '../store.js';
import { applyClusterConf, currentClusterConf } from './clusterconf.js';
import { SqlCollection } from './crud.js';
import { applyMigrations } from './migrate.js';
import { Mutex } from '../../../lib/mutex.js';
import { SqlNodeSecrets } from './node-secrets.js';
import { SqlNodes, type NetRange } from './nodes.js';
import { ReadCache } from './read-cache.js';
import { SqlContext, SqlRefs, resolveNodeAttributes } from './refs.js';

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
  readonly #dataVersion;
  #model: ClusterModel | undefined;

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
    this.#dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
  }

  /** The cluster model's queries, prepared on first use (admin commands never need them). */
  get model(): ClusterModel {
    this.#model ??= new ClusterModel(this.#db);
    return this.#model;
  }

  /** Whether the model was used; an untouched model has nothing to report. */
  get modelLoaded(): boolean {
    return this.#model !== undefined;
  }

  listAdmins(): Admin[] {
    return this.#listAdmins.all().map(toAdmin);
  }

  getAdmin(name: string): Admin | undefined {
    const row = this.#getAdmin.get(name);
    return row && toAdmin(row);
  }

  /** SQLite's `PRAGMA data_version`: moves whenever another connection commits a change. */
  dataVersion(): number {
    return this.#dataVersion.get() as number;
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
    if (key === 'domain') this.model.dhcpTouched = true;
  }

  deleteSetting(key: SettingKey): boolean {
    const deleted = this.#deleteSetting.run(key).changes > 0;
    if (deleted && key === 'domain') this.model.dhcpTouched = true;
    return deleted;
  }
}

const isFileInfo = (f: BootFile): boolean =>
  typeof f === 'object' && f !== null && typeof f.filename === 'string' && Number.isSafeInteger(f.size) && f.size >= 0 &&
  /^sha256:[0-9a-f]{64}$/.test(f.checksum) && typeof f.uploaded_at === 'string';


/** The store operations over `Queries`, each run through `guard` (a lock, or a transaction liveness check). */
abstract class QueryStore implements Store {
  readonly backend = 'sqlite';
  /** Runs `op` alone on the connection; `touched` names the one object it changed, if that is all it did. */
  protected abstract guard<T>(op: () => T | Promise<T>, touched?: (result: T) => string): Promise<T>;
  /** A synchronous query that writes nothing: like `guard`, but may run at once when nothing else holds the store. */
  protected read<T>(op: () => T): Promise<T> {
    return this.guard(op);
  }
  /** A read of one object by key that may be answered from a cache (`space` names the kind of key). */
  protected readOne<T>(_space: string, _key: string, op: () => T, _tagOf?: (value: T) => string | undefined): Promise<T> {
    return this.read(op);
  }
  protected abstract readonly q: Queries;

  listAdmins(): Promise<Admin[]> {
    return this.read(() => this.q.listAdmins());
  }
  getAdmin(name: string): Promise<Admin | undefined> {
    return this.readOne('admin', name, () => this.q.getAdmin(name));
  }
  addAdmin(admin: NewAdmin, options: AddAdminOptions = {}): Promise<Admin> {
    return this.guard(() => this.q.addAdmin(admin, options));
  }
  removeAdmin(name: string): Promise<boolean> {
    return this.guard(() => this.q.removeAdmin(name));
  }
  getSetting(key: SettingKey): Promise<string | undefined> {
    return this.read(() => this.q.getSetting(key));
  }
  setSetting(key: SettingKey, value: string): Promise<void> {
    return this.guard(() => this.q.setSetting(key, value));
  }
  deleteSetting(key: SettingKey): Promise<boolean> {
    return this.guard(() => this.q.deleteSetting(key));
  }

  list<K extends CollectionName>(kind: K): Promise<Array<CollectionTypes[K]>> {
    return this.read(() => this.q.model.collection(kind).list() as unknown as Array<CollectionTypes[K]>);
  }
  get<K extends CollectionName>(kind: K, id: string): Promise<CollectionTypes[K] | undefined> {
    return this.read(() => {
      const c = this.q.model.collection(kind);
      const record = c.find(id);
      return record && (c.show(record) as unknown as CollectionTypes[K]);
    });
  }
  create<K extends CollectionName>(kind: K, input: CollectionInputs[K]): Promise<CollectionTypes[K]> {
    return this.guard(() => this.q.model.atomic(() => this.q.model.collection(kind).create(input) as unknown as CollectionTypes[K]));
  }
  replace<K extends CollectionName>(kind: K, id: string, input: CollectionInputs[K]): Promise<CollectionTypes[K]> {
    return this.guard(() => this.q.model.atomic(() => this.q.model.collection(kind).replace(id, input) as unknown as CollectionTypes[K]));
  }
  update<K extends CollectionName>(kind: K, id: string, patch: CollectionInputs[K]): Promise<CollectionTypes[K]> {
    return this.guard(() => this.q.model.atomic(() => this.q.model.collection(kind).update(id, patch) as unknown as CollectionTypes[K]));
  }
  remove<K extends CollectionName>(kind: K, id: string): Promise<CollectionTypes[K]> {
    return this.guard(() => this.q.model.atomic(() => this.q.model.collection(kind).remove(id) as unknown as CollectionTypes[K]));
  }
  attachBootFile(id: string, which: 'kernel' | 'initramfs', file: BootFile, release?: string | null): Promise<BootConfig> {
    return this.guard(() => {
      if (which !== 'kernel' && which !== 'initramfs') throw new ValidationError(`unknown boot file ${JSON.stringify(which)}`);
      if (!isFileInfo(file)) throw new ValidationError(`${which}: malformed file record`);
      const values: Record<string, unknown> = { [which]: file };
      if (release !== undefined && release !== null) values.release = parseRelease(release);
      return this.q.model.atomic(() => this.q.model.collection('bootconfigs').setSystemFields(id, values) as unknown as BootConfig);
    });
  }
  setImageContent(id: string, content: { size: number; checksum: string }): Promise<Image> {
    return this.guard(() => {
      if (!Number.isSafeInteger(content.size) || content.size < 0 || !/^sha256:[0-9a-f]{64}$/.test(content.checksum)) {
        throw new ValidationError('image content needs a size and a sha256:<hex> checksum');
      }
      return this.q.model.atomic(
        () => this.q.model.collection('images').setSystemFields(id, { size: content.size, checksum: content.checksum }) as unknown as Image,
      );
    });
  }

  listNodes(): Promise<Node[]> {
    return this.read(() => this.q.model.nodes.list());
  }
  getNode(id: string): Promise<Node | undefined> {
    return this.readOne(
      'node',
      id,
      () => {
        const record = this.q.model.nodes.find(id);
        return record && this.q.model.nodes.show(record);
      },
      (node) => node?.uid,
    );
  }
  selectNodes(ids: string | readonly string[]): Promise<Node[]> {
    return this.read(() => {
      const nodes = this.q.model.nodes;
      const records = nodes.select(ids);
      return records.map((r) => nodes.show(r));
    });
  }
  createNodes(inputs: readonly NodeInput[]): Promise<Node[]> {
    return this.guard(() => {
      if (!Array.isArray(inputs)) throw new ValidationError('expected a list of nodes');
      return this.q.model.createNodes(inputs);
    });
  }
  async createNode(input: NodeInput): Promise<Node> {
    const [node] = await this.createNodes([input]);
    return node as Node;
  }
  replaceNode(id: string, input: NodeInput): Promise<Node> {
    return this.guard(() => this.q.model.atomic(() => this.q.model.nodes.show(this.q.model.nodes.replace(id, input))));
  }
  updateNode(id: string, patch: NodeInput): Promise<Node> {
    return this.guard(() => this.q.model.atomic(() => this.q.model.nodes.show(this.q.model.nodes.update(id, patch))));
  }
  updateNodeAttributes(ids: string | readonly string[], change: { set?: Record<string, string>; unset?: readonly string[] }): Promise<Node[]> {
    return this.guard(() =>
      this.q.model.atomic(() => {
        const nodes = this.q.model.nodes;
        return nodes.updateAttributes(ids, change).map((r) => nodes.show(r));
      }),
    );
  }
  removeNode(id: string): Promise<Node> {
    return this.guard(() =>
      this.q.model.atomic(() => {
        const nodes = this.q.model.nodes;
        return nodes.show(nodes.remove(id));
      }),
    );
  }
  removeNodes(ids: string | readonly string[]): Promise<Node[]> {
    return this.guard(() =>
      this.q.model.atomic(() => {
        const nodes = this.q.model.nodes;
        const ctx = this.q.model.context(NODE_SPEC);
        return nodes.select(ids).map((r) => nodes.show(nodes.remove(r.uid), ctx));
      }),
    );
  }
  setNodeStatus(id: string, status: Record<string, unknown>, seenAt: Date): Promise<Node> {
    // The most frequent write (every node reports every 10 s): it changes that node alone.
    return this.guard(
      () => this.q.model.nodes.show(this.q.model.nodes.setStatus(id, status, seenAt)),
      (node) => node.uid,
    );
  }
  setNodeSecretHash(id: string, hash: string, issuedAt: Date): Promise<void> {
    // Touches no node record (its own table): nothing cached needs forgetting.
    return this.guard(
      () => {
        const record = this.q.model.nodes.find(id);
        if (!record) throw new NotFoundError(`no such node: ${id}`);
        this.q.model.nodeSecrets.set(record.uid as string, hash, issuedAt);
        return record.uid as string;
      },
      (uid) => uid,
    ).then(() => undefined);
  }
  nodeSecretHash(id: string): Promise<string | undefined> {
    return this.read(() => {
      const record = this.q.model.nodes.find(id);
      return record ? this.q.model.nodeSecrets.hashOf(record.uid as string) : undefined;
    });
  }
  resolveAttributes(node: Node | string): Promise<ResolvedAttributes> {
    return this.read(() => this.q.model.resolveAttributes(typeof node === 'string' ? node : node.uid));
  }
  applyClusterConf(conf: ClusterConf, options: { dryRun?: boolean } = {}): Promise<ClusterConfResult> {
    return this.guard(() => applyClusterConf(this.q.model, conf, options.dryRun === true));
  }
  clusterConf(): Promise<ClusterConf> {
    return this.read(() => currentClusterConf(this.q.model));
  }
  abstract onCommit(listener: (change: CommitInfo) => void): () => void;
  abstract transaction<T>(fn: (tx: Store) => Promise<T> | T): Promise<T>;
}

/** The view handed to a transaction body: runs directly on the connection the transaction holds. */
class TransactionView extends QueryStore {
  protected readonly q: Queries;
  readonly #db: Db;
  readonly #depth: number;
  readonly #listeners: CommitListeners;
  #open = true;

  constructor(db: Db, q: Queries, depth: number, listeners: CommitListeners) {
    super();
    this.#db = db;
    this.q = q;
    this.#depth = depth;
    this.#listeners = listeners;
  }

  onCommit(listener: (change: CommitInfo) => void): () => void {
    return this.#listeners.add(listener);
  }

  protected async guard<T>(op: () => T | Promise<T>): Promise<T> {
    if (!this.#open) throw new Error('transaction already finished; use the store, not the transaction view');
    return translated(op);
  }

  async transaction<T>(fn: (tx: Store) => Promise<T> | T): Promise<T> {
    return this.guard(() => runInTransaction(this.#db, this.q, fn, this.#depth + 1, this.#listeners));
  }

  finish(): void {
    this.#open = false;
  }
}

// Depth 0 is a real transaction, deeper levels are savepoints, so a failing inner block can be caught
// by its caller without losing the outer work.
async function runInTransaction<T>(
  db: Db,
  q: Queries,
  fn: (tx: Store) => Promise<T> | T,
  depth: number,
  listeners: CommitListeners,
): Promise<T> {
  const savepoint = `cw_tx_${depth}`;
  db.exec(depth === 0 ? 'BEGIN IMMEDIATE' : `SAVEPOINT ${savepoint}`);
  const view = new TransactionView(db, q, depth, listeners);
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

/** Who hears about committed changes. */
class CommitListeners {
  readonly #listeners = new Set<(change: CommitInfo) => void>();

  add(listener: (change: CommitInfo) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  emit(change: CommitInfo): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch {
        // A listener's failure must not turn a committed change into an error for its caller.
      }
    }
  }
}

/** The SQLite store: one connection, operations serialized so an open transaction owns it alone. */
export class SqliteStore extends QueryStore implements StoreHandle {
  protected readonly q: Queries;
  readonly #db: Db;
  readonly #mutex = new Mutex();
  readonly #listeners = new CommitListeners();
  // Set while a transaction body runs, to turn a use of the store instead of `tx` (a deadlock) into an error.
  readonly #insideTransaction = new AsyncLocalStorage<{ active: boolean }>();
  readonly #cache: ReadCache;
  readonly file: string;

  constructor(db: Db, file: string, now: () => Date) {
    super();
    this.#db = db;
    this.file = file;
    const q = new Queries(db, now);
    this.q = q;
    this.#cache = new ReadCache({ dataVersion: () => q.dataVersion() });
  }

  /**
   * Reads are the bulk of the API's work (every request checks its caller, most then read one object):
   * with no operation running or queued they cannot interleave with a transaction, so they run at once,
   * without a turn through the lock.
   */
  protected override read<T>(op: () => T): Promise<T> {
    if (!this.#canReadNow()) return this.guard(op);
    try {
      return Promise.resolve(op());
    } catch (err) {
      return Promise.reject(translateError(err));
    }
  }

  /**
   * As `read`, through the cache of single objects (every request looks up its caller, most then one node).
   * A read that has to wait for the lock runs while a transaction may be changing things: it goes to the
   * database, never to the cache.
   */
  protected override readOne<T>(space: string, key: string, op: () => T, tagOf?: (value: T) => string | undefined): Promise<T> {
    return this.read(() => (this.#canReadNow() ? this.#cache.get(space, key, op, tagOf) : op()));
  }

  #canReadNow(): boolean {
    return this.#mutex.idle && this.#db.open && !this.#insideTransaction.getStore()?.active;
  }

  protected guard<T>(op: () => T | Promise<T>, touched?: (result: T) => string): Promise<T> {
    if (this.#insideTransaction.getStore()?.active) {
      return Promise.reject(new Error('store used inside its own transaction; use the transaction argument'));
    }
    return this.#mutex.run(async () => {
      if (!this.#db.open) throw new Error('store is closed');
      let result: T;
      try {
        result = await translated(op);
      } catch (err) {
        this.#cache.invalidate();
        // Whatever failed was rolled back: nothing to report.
        if (this.q.modelLoaded) this.q.model.dhcpTouched = false;
        throw err;
      }
      // Outside any transaction now, so every change made by `op` is committed.
      if (touched) this.#cache.forget(touched(result));
      else this.#cache.invalidate();
      if (this.q.modelLoaded && this.q.model.dhcpTouched) {
        this.q.model.dhcpTouched = false;
        this.#listeners.emit({ dhcp: true });
      }
      return result;
    });
  }

  onCommit(listener: (change: CommitInfo) => void): () => void {
    return this.#listeners.add(listener);
  }

  transaction<T>(fn: (tx: Store) => Promise<T> | T): Promise<T> {
    return this.guard(async () => {
      // A mutable flag, not mere presence: timers created in the body inherit the context and outlive it.
      const context = { active: true };
      try {
        return await this.#insideTransaction.run(context, () => runInTransaction(this.#db, this.q, fn, 0, this.#listeners));
      } finally {
        context.active = false;
      }
    });
  }

  /**
   * Runs `fn` on the connection alone, outside any transaction, then forgets cached reads. Only for a
   * backend that keeps this store as its local replica (etcd/store.ts) and copies others' changes in.
   */
  exclusive<T>(fn: (db: Db) => T): Promise<T> {
    return this.guard(() => fn(this.#db));
  }

  /** Waits for running operations, then closes the connection (checkpointing the WAL). */
  /**
   * A copy of the whole database in the SQLite file `dest` (which must not exist), between two
   * transactions of this store: `VACUUM INTO`, one committed state (the etcd store's backups).
   */
  vacuumInto(dest: string): Promise<void> {
    return this.guard(() => {
      // A bound parameter: the path never becomes SQL text.
      this.#db.prepare('VACUUM INTO ?').run(dest);
    });
  }

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

/**
 * A store in memory, with every migration applied: the local replica a replicated backend (etcd) runs
 * its queries on, so that both backends share one implementation of the model's rules.
 */
export function openMemorySqliteStore(options: Pick<SqliteStoreOptions, 'now'> = {}): SqliteStore {
  const now = options.now ?? (() => new Date());
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  applyMigrations(db, MIGRATIONS, now);
  return new SqliteStore(db, ':memory:', now);
}

/**
 * The cluster model of one connection, composed of the collection tables (crud.ts), the nodes (nodes.ts)
 * and reference resolution (refs.ts); it also notes whether DHCP-relevant data changed.
 */
export class ClusterModel {
  /** Set by every write that changes what dhcpd.conf is rendered from; the store reports and clears it. */
  dhcpTouched = false;
  readonly nodes: SqlNodes;
  readonly nodeSecrets: SqlNodeSecrets;
  readonly #db: Db;
  readonly #collections: Record<CollectionName, SqlCollection>;
  readonly #getSetting;
  readonly #refs: SqlRefs;

  constructor(db: Db) {
    this.#db = db;
    this.#collections = Object.fromEntries(
      Object.entries(COLLECTIONS).map(([kind, spec]) => [kind, new SqlCollection(db, this, spec)]),
    ) as Record<CollectionName, SqlCollection>;
    this.nodes = new SqlNodes(db, this);
    this.nodeSecrets = new SqlNodeSecrets(db);
    this.#refs = new SqlRefs(db);
    this.#getSetting = db.prepare<[string], string>('SELECT value FROM settings WHERE key = ?').pluck();
  }

  collection(kind: CollectionName): SqlCollection {
    const c = this.#collections[kind];
    if (!c) throw new ValidationError(`unknown collection ${quote(kind)}`);
    return c;
  }

  context(spec: CollectionSpec, exclude?: string): RecordContext {
    return new SqlContext(this, spec, exclude);
  }

  /** Runs `fn` atomically: a transaction of its own, or a savepoint inside the caller's. */
  atomic<T>(fn: () => T): T {
    // IMMEDIATE: take the write lock up front, so another process's writer makes us wait, not fail.
    return this.#db.transaction(fn).immediate();
  }

  /** Runs `fn` and rolls everything back, returning its result (dry runs). */
  rehearse<T>(fn: () => T): T {
    const dhcp = this.dhcpTouched;
    const rollback = Symbol('rollback');
    let result: T | undefined;
    try {
      this.#db
        .transaction(() => {
          result = fn();
          throw rollback;
        })
        .immediate();
    } catch (err) {
      if (err !== rollback) throw err;
    } finally {
      this.dhcpTouched = dhcp;
    }
    return result as T;
  }

  setting(key: string): string | undefined {
    return this.#getSetting.get(key);
  }

  nameMap(kind: RefKind): Map<string, string> {
    return this.#refs.nameMap(kind);
  }

  netRanges(): NetRange[] {
    return this.collection('nets')
      .all()
      .map((r) => ({
        name: r.name as string,
        first: ipToInt(r.first as string),
        last: ipToInt(r.last as string),
        text: `${r.first as string}-${r.last as string}`,
      }));
  }

  /** ConflictError while any object (or node) still refers to `record` of `spec`. */
  checkUnreferenced(spec: CollectionSpec, record: StoredRecord): void {
    this.#refs.checkUnreferenced(spec, record);
  }

  resolveAttributes(id: string): ResolvedAttributes {
    return resolveNodeAttributes(this, id);
  }

  /** Creates nodes atomically and shows them. */
  createNodes(inputs: readonly NodeInput[]): Node[] {
    return this.atomic(() => {
      const records = this.nodes.create(inputs);
      const ctx = this.context(NODE_SPEC);
      return records.map((r) => this.nodes.show(r, ctx));
    });
  }
}
