// The hashed boot secrets of nodes (migration 0003): one row per node, replaced by each boot.
import type Database from 'better-sqlite3';
import { ValidationError } from '../errors.js';

const HASH_RE = /^[0-9a-f]{64}$/;

export class SqlNodeSecrets {
  readonly #set;
  readonly #get;

  constructor(db: Database.Database) {
    this.#set = db.prepare<[string, string, string]>(
      `INSERT INTO node_secrets (node_uid, hash, issued_at) VALUES (?, ?, ?)
       ON CONFLICT (node_uid) DO UPDATE SET hash = excluded.hash, issued_at = excluded.issued_at`,
    );
    this.#get = db.prepare<[string], string>('SELECT hash FROM node_secrets WHERE node_uid = ?').pluck();
  }

  /** Stores `hash` (64 hex digits) as the node's secret hash, replacing the previous one. */
  set(nodeUid: string, hash: string, issuedAt: Date): void {
    if (!HASH_RE.test(hash)) throw new ValidationError('a node secret hash is 64 hex digits');
    this.#set.run(nodeUid, hash, issuedAt.toISOString());
  }

  /** The node's secret hash, or undefined when none was issued. */
  hashOf(nodeUid: string): string | undefined {
    return this.#get.get(nodeUid);
  }
}
