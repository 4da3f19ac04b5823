/**
 * The store interface: everything the API and the admin command may ask of the database.
 * Backends (SQLite now, a replicated one such as etcd later) implement it; callers never see SQL.
 * Every method is async so that a networked backend fits the same shape.
 */

import type { ClusterConf } from '../../lib/clusterconf.js';
import type { BootConfig, BootFile, CollectionInputs, CollectionName, CollectionTypes, Image, Net } from './collections.js';
import type { Node, NodeInput, ResolvedAttributes } from './nodes.js';

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
/** `domain`: the cluster's DNS domain (node names resolve as `n3.DOMAIN`); it is in dhcpd.conf too. */
/** `diskful_register`: the attribute group new diskful nodes are created in when they register (unset: off). */
/** `backup_interval`: seconds between the scheduled backups (`0`: none); `backup_keep`: how many of them are kept. */
export type SettingKey = 'cluster_id' | 'root_password_hash' | 'default_distro' | 'domain' | 'diskful_register' | 'backup_interval' | 'backup_keep';

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

  // --- Collections: attribs, nets, bootconfigs, images, distros, repos. `id` is a uid or a name.

  /** Every object of a collection, in its listing order. */
  list<K extends CollectionName>(kind: K): Promise<Array<CollectionTypes[K]>>;
  get<K extends CollectionName>(kind: K, id: string): Promise<CollectionTypes[K] | undefined>;
  /** Creates an object; ValidationError for a bad field, ConflictError for a taken name or an overlap. */
  create<K extends CollectionName>(kind: K, input: CollectionInputs[K]): Promise<CollectionTypes[K]>;
  /** Replaces every writable field (absent ones get their defaults); ForbiddenError when frozen. */
  replace<K extends CollectionName>(kind: K, id: string, input: CollectionInputs[K]): Promise<CollectionTypes[K]>;
  /**
   * Changes the given fields; attribute maps merge and a null value deletes that key. A frozen object
   * accepts only `{frozen}` (ForbiddenError otherwise).
   */
  update<K extends CollectionName>(kind: K, id: string, patch: CollectionInputs[K]): Promise<CollectionTypes[K]>;
  /** Deletes and returns the object; ConflictError while others refer to it, ForbiddenError when frozen. */
  remove<K extends CollectionName>(kind: K, id: string): Promise<CollectionTypes[K]>;
  /** Records an uploaded kernel or initramfs (and, for a kernel, its release when known). */
  attachBootFile(id: string, which: 'kernel' | 'initramfs', file: BootFile, release?: string | null): Promise<BootConfig>;
  /** Records uploaded image content. */
  setImageContent(id: string, content: { size: number; checksum: string }): Promise<Image>;

  // --- Nodes. `id` is a uid, a name (`n3`), a MAC or an IP.

  /** Every node, by index. */
  listNodes(): Promise<Node[]>;
  getNode(id: string): Promise<Node | undefined>;
  /**
   * The nodes an ids spec names (noderange grammar: `n[0-3],@group,all,...`, or a list of ids), in
   * order; NotFoundError naming the ids that match no node.
   */
  selectNodes(ids: string | readonly string[]): Promise<Node[]>;
  /** Creates the nodes in one transaction: all or none. */
  createNodes(inputs: readonly NodeInput[]): Promise<Node[]>;
  createNode(input: NodeInput): Promise<Node>;
  replaceNode(id: string, input: NodeInput): Promise<Node>;
  updateNode(id: string, patch: NodeInput): Promise<Node>;
  /** Sets and unsets attributes on every node `ids` names, in one transaction. */
  updateNodeAttributes(ids: string | readonly string[], change: { set?: Record<string, string>; unset?: readonly string[] }): Promise<Node[]>;
  removeNode(id: string): Promise<Node>;
  /** Deletes every node `ids` names, in one transaction (NotFoundError and nothing deleted for unknown ids). */
  removeNodes(ids: string | readonly string[]): Promise<Node[]>;
  /** Stores what a node's agent reported, and when. */
  setNodeStatus(id: string, status: Record<string, unknown>, seenAt: Date): Promise<Node>;
  /**
   * Replaces the hash (SHA-256, 64 hex digits) of the node's boot secret (docs/BOOT.md, "Node secrets").
   * Kept apart from the node record: no listing or read of nodes ever shows it. NotFoundError for no node.
   */
  setNodeSecretHash(id: string, hash: string, issuedAt: Date): Promise<void>;
  /** The hash of the node's current boot secret, or undefined (no node, or none issued yet). */
  nodeSecretHash(id: string): Promise<string | undefined>;
  /** Effective attributes of a node: its own, then its groups in order, then DefaultAttribs. */
  resolveAttributes(node: Node | string): Promise<ResolvedAttributes>;

  // --- cluster.conf

  /**
   * Applies a parsed cluster.conf in one transaction: nets for its ipranges, nodes from n<first index>
   * up (created, or given the file's MAC and IP). A MAC or IP that belongs to another node is a
   * ConflictError and nothing is written. With `dryRun` nothing is written either way.
   */
  applyClusterConf(conf: ClusterConf, options?: { dryRun?: boolean }): Promise<ClusterConfResult>;
  /** The nets and addressed nodes as a cluster.conf model (for `cw-cluster-conf save`). */
  clusterConf(): Promise<ClusterConf>;

  /**
   * Calls `listener` after each committed change that may affect dhcpd.conf (node MACs, IPs or indexes,
   * nets) — after the commit, never inside a transaction. Returns the function that removes the listener.
   */
  onCommit(listener: (change: CommitInfo) => void): () => void;

  /**
   * Runs `fn` with a view of the store whose changes are committed together when `fn` resolves and
   * discarded when it throws (the error is re-thrown). Calls may nest. Use only `tx` inside `fn`.
   * Example: `await store.transaction(async (tx) => { await tx.addAdmin(a); await tx.setSetting(k, v); })`
   */
  transaction<T>(fn: (tx: Store) => Promise<T> | T): Promise<T>;
}

/** What a committed change touched. */
export interface CommitInfo {
  /** Node MACs, IPs or indexes, nets, or the cluster's domain changed (what dhcpd.conf and the DNS names come from). */
  dhcp: boolean;
}

export interface ClusterConfNodeChange {
  name: string;
  mac: string | null;
  ip: string;
}

export interface ClusterConfResult {
  /** The nets of the file's ipranges, as they are (or would be) after applying. */
  nets: Net[];
  created: ClusterConfNodeChange[];
  /** Existing nodes given the file's MAC or IP. */
  updated: ClusterConfNodeChange[];
  /** Nodes already as the file says. */
  unchanged: number;
  dryRun: boolean;
}

/** A store as returned by openStore: the owner closes it. */
export interface StoreHandle extends Store {
  close(): Promise<void>;
}
