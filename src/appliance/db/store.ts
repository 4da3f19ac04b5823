/**
 * The store interface: everything the API and the admin command may ask of the database.
 * Backends (SQLite now, a replicated one such as etcd later) implement it; callers never see SQL.
 * Every method is async so that a networked backend fits the same shape.
 */

/** An administrator allowed to log in with an ssh key (sshd) and, later, to use the API. */
export interface Admin {
  name: string;
  /** OpenSSH algorithm, e.g. `ssh-ed25519`. */
  keyType: string;
  /** The normalized public key line `TYPE BASE64 [COMMENT]`. */
  keyLine: string;
  /** `SHA256:...` as printed by `ssh-keygen -lf`. */
  fingerprint: string;
  comment: string;
  /** ISO 8601 UTC timestamp. */
  addedAt: string;
}

export type NewAdmin = Omit<Admin, 'addedAt'>;

export interface AddAdminOptions {
  /** Replace an admin of the same name instead of refusing. */
  replace?: boolean;
}

/** Cluster-wide settings, stored as strings. */
export type SettingKey = 'cluster_id' | 'root_password_hash' | 'default_distro';

export interface Store {
  /** Backend name, e.g. `sqlite`. */
  readonly backend: string;

  /** All admins ordered by name. */
  listAdmins(): Promise<Admin[]>;
  getAdmin(name: string): Promise<Admin | undefined>;
  /**
   * Adds an admin; throws ConflictError if the name exists (unless `replace`) or the key is already
   * registered for another admin. Throws ValidationError for a name or key line that is not acceptable.
   */
  addAdmin(admin: NewAdmin, options?: AddAdminOptions): Promise<Admin>;
  /** Removes an admin; false when there was none of that name. */
  removeAdmin(name: string): Promise<boolean>;

  getSetting(key: SettingKey): Promise<string | undefined>;
  setSetting(key: SettingKey, value: string): Promise<void>;
  /** Removes a setting; false when it was not set. */
  deleteSetting(key: SettingKey): Promise<boolean>;

  /**
   * Runs `fn` with a view of the store whose changes are committed together when `fn` resolves and
   * discarded when it throws (the error is re-thrown). Calls may nest. Use only `tx` inside `fn`.
   * Example: `await store.transaction(async (tx) => { await tx.addAdmin(a); await tx.setSetting(k, v); })`
   */
  transaction<T>(fn: (tx: Store) => Promise<T> | T): Promise<T>;
}

/** A store as returned by openStore: the owner closes it. */
export interface StoreHandle extends Store {
  close(): Promise<void>;
}
