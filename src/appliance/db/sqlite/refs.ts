// Reference resolution on SQLite: names and uids of referable objects (attribs, images, repos,
// distros) for one operation, the check that nothing still refers to an object before it goes, and a
// node's attributes resolved through its groups and the defaults.
// Everything here is synchronous; the store wraps it in its lock and transactions.
import type Database from 'better-sqlite3';
import { compressNames } from '../../../lib/noderange.js';
import { COLLECTIONS, DEFAULT_ATTRIBS, listNames, type CollectionSpec, type RecordContext, type StoredRecord } from '../collections.js';
import { ConflictError } from '../errors.js';
import { UID_RE, type RefKind } from '../fields.js';
import { NODE_SPEC, resolveAttributes, type ResolvedAttributes } from '../nodes.js';
import type { Db } from './crud.js';
import { clip } from './nodes.js';
import type { ClusterModel } from './store.js';

const REF_TABLES: Record<RefKind, string> = { attribs: 'attribs', images: 'images', repos: 'repos', distros: 'distros' };

/** Lookups for one operation, cached: references by name or uid, and uid -> name. */
export class SqlContext implements RecordContext {
  readonly #model: ClusterModel;
  readonly #spec: CollectionSpec;
  readonly #exclude: string | undefined;
  readonly #names = new Map<RefKind, Map<string, string>>();

  constructor(model: ClusterModel, spec: CollectionSpec, exclude?: string) {
    this.#model = model;
    this.#spec = spec;
    this.#exclude = exclude;
  }

  #nameMap(kind: RefKind): Map<string, string> {
    let map = this.#names.get(kind);
    if (!map) {
      map = this.#model.nameMap(kind);
      this.#names.set(kind, map);
    }
    return map;
  }

  resolve(kind: RefKind, id: string): string | undefined {
    const map = this.#nameMap(kind);
    if (UID_RE.test(id)) return map.has(id) ? id : undefined;
    for (const [uid, name] of map) if (name === id) return uid;
    return undefined;
  }

  nameOf(kind: RefKind, uid: string): string {
    return this.#nameMap(kind).get(uid) ?? uid;
  }

  others(): StoredRecord[] {
    if (this.#spec.kind === 'nodes') throw new Error('others() is not available for nodes');
    return this.#model.collection(this.#spec.kind).all().filter((r) => r.uid !== this.#exclude);
  }

  nodeAddresses(): Array<{ name: string; ip: string }> {
    return this.#model.nodes.addresses();
  }

  defaultDistro(): string | undefined {
    return this.#model.setting('default_distro');
  }
}

/** Which objects refer to which: names by uid, and the referrers of an object about to be removed. */
export class SqlRefs {
  readonly #db: Db;
  readonly #refQueries = new Map<string, Database.Statement<[string], string>>();

  constructor(db: Db) {
    this.#db = db;
  }

  nameMap(kind: RefKind): Map<string, string> {
    const rows = this.#db.prepare<[], { uid: string; name: string }>(`SELECT uid, name FROM ${REF_TABLES[kind]}`).all();
    return new Map(rows.map((r) => [r.uid, r.name]));
  }

  /** ConflictError while any object (or node) still refers to `record` of `spec`. */
  checkUnreferenced(spec: CollectionSpec, record: StoredRecord): void {
    for (const holder of [...Object.values(COLLECTIONS), NODE_SPEC]) {
      for (const [fieldName, field] of Object.entries(holder.fields)) {
        if (field.ref?.kind !== spec.kind) continue;
        const users = this.#referrers(holder, field.column ?? fieldName, field.ref.many).all(record.uid);
        if (users.length === 0) continue;
        const list = holder.kind === 'nodes' ? clip(compressNames(users)) : listNames(users);
        const what = `${holder.singular}${users.length === 1 ? '' : 's'}`;
        throw new ConflictError(`${spec.singular} ${record.name as string} is used by ${what} ${list} (${fieldName}); change those first`);
      }
    }
  }

  #referrers(holder: CollectionSpec, column: string, many: boolean): Database.Statement<[string], string> {
    const key = `${holder.table}.${column}`;
    let stmt = this.#refQueries.get(key);
    if (!stmt) {
      const name = holder.kind === 'nodes' ? "'n' || idx" : 'name';
      const where = many ? `EXISTS (SELECT 1 FROM json_each(${holder.table}.${column}) WHERE value = ?)` : `${column} = ?`;
      stmt = this.#db.prepare<[string], string>(`SELECT ${name} FROM ${holder.table} WHERE ${where} ORDER BY ${name}`).pluck();
      this.#refQueries.set(key, stmt);
    }
    return stmt;
  }
}

/** A node's attributes resolved through its groups and the cluster's defaults (see resolveAttributes). */
export function resolveNodeAttributes(model: ClusterModel, id: string): ResolvedAttributes {
  const record = model.nodes.require(id);
  const attribs = model.collection('attribs');
  const groups = (record.groups as string[])
    .map((uid) => attribs.find(uid))
    .filter((g): g is StoredRecord => g !== undefined)
    .map((g) => ({ name: g.name as string, attributes: g.attributes as Record<string, string> }));
  const defaults = attribs.find(DEFAULT_ATTRIBS);
  return resolveAttributes(
    record.attributes as Record<string, string>,
    groups,
    defaults && { name: defaults.name as string, attributes: defaults.attributes as Record<string, string> },
  );
}
