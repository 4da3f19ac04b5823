// A generic collection table on SQLite (attribs, nets, images, ...), driven by its spec in
// ../collections.ts: rows to records and back, lookups by uid or name, and create/replace/update/remove.
// Everything here is synchronous; the store wraps it in its lock and transactions.
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { buildRecord, checkFrozen, mergeRecord, showRecord, type CollectionSpec, type RecordContext, type StoredRecord } from '../collections.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { UID_RE, type Storage } from '../fields.js';
import type { ClusterModel } from './store.js';

export type Db = Database.Database;
export type Row = Record<string, unknown>;

export interface Column {
  field: string;
  column: string;
  storage: Storage;
}

export function columnsOf(spec: CollectionSpec, skip: readonly string[] = []): Column[] {
  return Object.entries(spec.fields)
    .filter(([name]) => !skip.includes(name))
    .map(([name, f]) => ({ field: name, column: f.column ?? name, storage: f.storage }));
}

function decodeValue(storage: Storage, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (storage) {
    case 'bool':
      return value === 1;
    case 'json':
      return JSON.parse(value as string);
    default:
      return value;
  }
}

function encodeValue(storage: Storage, value: unknown): unknown {
  if (value === null || value === undefined) return storage === 'bool' ? 0 : null;
  switch (storage) {
    case 'bool':
      return value ? 1 : 0;
    case 'json':
      return JSON.stringify(value);
    default:
      return value;
  }
}

export function decodeRow(columns: readonly Column[], row: Row): StoredRecord {
  const record: StoredRecord = { uid: row.uid as string };
  for (const c of columns) record[c.field] = decodeValue(c.storage, row[c.column]);
  return record;
}

export function encodeRecord(columns: readonly Column[], record: StoredRecord): Row {
  const row: Row = { uid: record.uid };
  for (const c of columns) row[c.column] = encodeValue(c.storage, record[c.field]);
  return row;
}

/** 32 random hex digits. */
export function newUid(): string {
  return randomBytes(16).toString('hex');
}

/** One collection (attribs, nets, ...) as described by its spec. */
export class SqlCollection {
  readonly spec: CollectionSpec;
  readonly #model: ClusterModel;
  readonly #columns: Column[];
  readonly #all;
  readonly #byUid;
  readonly #byName;
  readonly #insert;
  readonly #update;
  readonly #delete;

  constructor(db: Db, model: ClusterModel, spec: CollectionSpec) {
    this.spec = spec;
    this.#model = model;
    this.#columns = columnsOf(spec);
    const cols = this.#columns.map((c) => c.column);
    const order = spec.orderBy.map((f) => spec.fields[f]?.column ?? f).join(', ');
    this.#all = db.prepare<[], Row>(`SELECT * FROM ${spec.table} ORDER BY ${order}`);
    this.#byUid = db.prepare<[string], Row>(`SELECT * FROM ${spec.table} WHERE uid = ?`);
    this.#byName = db.prepare<[string], Row>(`SELECT * FROM ${spec.table} WHERE name = ?`);
    this.#insert = db.prepare<[Row]>(
      `INSERT INTO ${spec.table} (uid, ${cols.join(', ')}) VALUES (@uid, ${cols.map((c) => `@${c}`).join(', ')})`,
    );
    this.#update = db.prepare<[Row]>(`UPDATE ${spec.table} SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE uid = @uid`);
    this.#delete = db.prepare<[string]>(`DELETE FROM ${spec.table} WHERE uid = ?`);
  }

  all(): StoredRecord[] {
    return this.#all.all().map((row) => decodeRow(this.#columns, row));
  }

  find(id: string): StoredRecord | undefined {
    const row = UID_RE.test(id) ? this.#byUid.get(id) : this.#byName.get(id);
    return row && decodeRow(this.#columns, row);
  }

  require(id: string): StoredRecord {
    const record = this.find(id);
    if (!record) throw new NotFoundError(`no such ${this.spec.singular}: ${id}`);
    return record;
  }

  show(record: StoredRecord, ctx: RecordContext = this.#model.context(this.spec)): Record<string, unknown> {
    return showRecord(this.spec, record, ctx);
  }

  list(): Array<Record<string, unknown>> {
    const ctx = this.#model.context(this.spec);
    return this.all().map((r) => this.show(r, ctx));
  }

  create(input: unknown): Record<string, unknown> {
    this.#checkNameFree({ uid: '', name: (input as { name?: unknown } | null)?.name });
    const uid = newUid();
    const ctx = this.#model.context(this.spec, uid);
    const record = buildRecord(this.spec, uid, input, undefined, ctx);
    this.#checkNameFree(record);
    this.#insert.run(encodeRecord(this.#columns, record));
    this.#touched();
    return this.show(record, ctx);
  }

  replace(id: string, input: unknown): Record<string, unknown> {
    const previous = this.require(id);
    checkFrozen(this.spec, previous, null);
    this.#checkNameFree({ uid: previous.uid, name: (input as { name?: unknown } | null)?.name });
    const ctx = this.#model.context(this.spec, previous.uid);
    return this.#write(buildRecord(this.spec, previous.uid, input, previous, ctx), ctx);
  }

  update(id: string, patch: unknown): Record<string, unknown> {
    const previous = this.require(id);
    checkFrozen(this.spec, previous, typeof patch === 'object' && patch !== null ? (patch as Record<string, unknown>) : {});
    this.#checkNameFree({ uid: previous.uid, name: (patch as { name?: unknown } | null)?.name });
    const ctx = this.#model.context(this.spec, previous.uid);
    return this.#write(mergeRecord(this.spec, previous, patch, ctx), ctx);
  }

  /** Sets read-only fields (uploads); refused while frozen like any change. */
  setSystemFields(id: string, values: Record<string, unknown>): Record<string, unknown> {
    const previous = this.require(id);
    checkFrozen(this.spec, previous, null);
    const ctx = this.#model.context(this.spec, previous.uid);
    return this.#write({ ...previous, ...values, uid: previous.uid }, ctx);
  }

  remove(id: string): Record<string, unknown> {
    const previous = this.require(id);
    checkFrozen(this.spec, previous, null);
    const ctx = this.#model.context(this.spec, previous.uid);
    this.spec.beforeRemove?.(previous, ctx);
    this.#model.checkUnreferenced(this.spec, previous);
    const shown = this.show(previous, ctx);
    this.#delete.run(previous.uid);
    this.#touched();
    return shown;
  }

  #write(record: StoredRecord, ctx: RecordContext): Record<string, unknown> {
    this.#checkNameFree(record);
    this.#update.run(encodeRecord(this.#columns, record));
    this.#touched();
    return this.show(record, ctx);
  }

  // Checked before the other rules too, so a taken name is reported as such rather than as an overlap.
  #checkNameFree(record: { uid: string; name?: unknown }): void {
    if (typeof record.name !== 'string') return;
    const holder = this.#byName.get(record.name);
    if (holder && holder.uid !== record.uid) throw new ConflictError(`${this.spec.singular} ${record.name} already exists`);
  }

  #touched(): void {
    if (this.spec.affectsDhcp) this.#model.dhcpTouched = true;
  }
}
