import type { Migration } from './types.js';

// The secret of a node's current boot (docs/BOOT.md, "Node secrets"): only its SHA-256, never the secret.
// A table of its own, not a column of nodes, so that no listing or export of nodes can ever carry it.
// A new boot replaces the row; removing the node removes it.
export const migration0003: Migration = {
  version: 3,
  name: 'node boot secrets',
  sql: `
    CREATE TABLE node_secrets (
      node_uid  TEXT PRIMARY KEY NOT NULL REFERENCES nodes (uid) ON DELETE CASCADE,
      hash      TEXT NOT NULL CHECK (length(hash) = 64),
      issued_at TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
  `,
};
