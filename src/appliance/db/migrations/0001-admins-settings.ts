import type { Migration } from './types.js';

export const migration0001: Migration = {
  version: 1,
  name: 'admins and cluster settings',
  sql: `
    CREATE TABLE admins (
      name        TEXT PRIMARY KEY NOT NULL,
      key_type    TEXT NOT NULL,
      key_line    TEXT NOT NULL,
      fingerprint TEXT NOT NULL UNIQUE,
      comment     TEXT NOT NULL DEFAULT '',
      added_at    TEXT NOT NULL
    ) STRICT;

    CREATE TABLE settings (
      key   TEXT PRIMARY KEY NOT NULL,
      value TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
  `,
};
