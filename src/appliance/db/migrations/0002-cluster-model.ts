import type { Migration } from './types.js';

// Objects are addressed by a random 32-hex uid; names are unique per collection. References between
// objects hold uids (so renames need no cascade) and are shown by name. JSON columns hold small maps and
// ordered lists. Node names are derived from the index (n<index>), so the index is the name's index.
export const migration0002: Migration = {
  version: 2,
  name: 'cluster model',
  sql: `
    CREATE TABLE attribs (
      uid         TEXT PRIMARY KEY NOT NULL CHECK (length(uid) = 32),
      name        TEXT NOT NULL UNIQUE,
      description TEXT NOT NULL DEFAULT '',
      attributes  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
      priority    INTEGER NOT NULL DEFAULT 0
    ) STRICT;

    INSERT INTO attribs (uid, name, description)
      VALUES (lower(hex(randomblob(16))), 'DefaultAttribs', 'attributes every node inherits last');

    CREATE TABLE nodes (
      uid        TEXT PRIMARY KEY NOT NULL CHECK (length(uid) = 32),
      idx        INTEGER NOT NULL UNIQUE CHECK (idx >= 0),
      mac        TEXT UNIQUE,
      ip         TEXT UNIQUE,
      type       TEXT NOT NULL DEFAULT 'compute',
      groups     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(groups)),
      attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
      power_uri  TEXT,
      status     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(status)),
      last_seen  TEXT
    ) STRICT;

    -- Every MAC of every node (position 0 = nodes.mac), so no MAC can belong to two nodes and a lookup by
    -- MAC is one index probe whichever NIC it is.
    CREATE TABLE node_macs (
      mac      TEXT PRIMARY KEY NOT NULL,
      node_uid TEXT NOT NULL REFERENCES nodes (uid) ON DELETE CASCADE,
      position INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX node_macs_by_node ON node_macs (node_uid, position);

    CREATE TABLE nets (
      uid     TEXT PRIMARY KEY NOT NULL CHECK (length(uid) = 32),
      name    TEXT NOT NULL UNIQUE,
      first   TEXT NOT NULL,
      last    TEXT NOT NULL,
      prefix  INTEGER NOT NULL CHECK (prefix BETWEEN 8 AND 30),
      gateway TEXT,
      dynamic INTEGER NOT NULL DEFAULT 0 CHECK (dynamic IN (0, 1))
    ) STRICT;

    CREATE TABLE images (
      uid         TEXT PRIMARY KEY NOT NULL CHECK (length(uid) = 32),
      name        TEXT NOT NULL UNIQUE,
      description TEXT NOT NULL DEFAULT '',
      size        INTEGER NOT NULL DEFAULT 0,
      checksum    TEXT,
      frozen      INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1))
    ) STRICT;

    CREATE TABLE bootconfigs (
      uid         TEXT PRIMARY KEY NOT NULL CHECK (length(uid) = 32),
      name        TEXT NOT NULL UNIQUE,
      description TEXT NOT NULL DEFAULT '',
      kernel      TEXT CHECK (kernel IS NULL OR json_valid(kernel)),
      initramfs   TEXT CHECK (initramfs IS NULL OR json_valid(initramfs)),
      cmdline     TEXT NOT NULL DEFAULT '',
      release     TEXT,
      boot_style  TEXT NOT NULL DEFAULT 'rwram',
      image_uid   TEXT REFERENCES images (uid) ON DELETE RESTRICT,
      frozen      INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1))
    ) STRICT;
    CREATE INDEX bootconfigs_by_image ON bootconfigs (image_uid);

    CREATE TABLE repos (
      uid         TEXT PRIMARY KEY NOT NULL CHECK (length(uid) = 32),
      name        TEXT NOT NULL UNIQUE,
      urls        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(urls)),
      keys        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(keys)),
      iso         TEXT,
      description TEXT NOT NULL DEFAULT ''
    ) STRICT;

    CREATE TABLE distros (
      uid             TEXT PRIMARY KEY NOT NULL CHECK (length(uid) = 32),
      name            TEXT NOT NULL UNIQUE,
      package_manager TEXT,
      release         TEXT,
      repos           TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(repos))
    ) STRICT;
  `,
};
