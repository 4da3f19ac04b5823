import { storagePaths, type StoragePaths } from '../../lib/storage-layout.js';
import { openEtcdStore, type EtcdStoreOptions } from './etcd/store.js';
import { openSqliteStore } from './sqlite/store.js';
import type { StoreHandle } from './store.js';

export type {
  AddAdminOptions,
  Admin,
  ClusterConfNodeChange,
  ClusterConfResult,
  CommitInfo,
  NewAdmin,
  SettingKey,
  Store,
  StoreHandle,
} from './store.js';
export { BusyError, ConflictError, ForbiddenError, NotFoundError, StoreError, ValidationError } from './errors.js';
export {
  COLLECTIONS,
  COLLECTION_NAMES,
  DEFAULT_ATTRIBS,
  PACKAGE_MANAGERS,
  type AttribGroup,
  type BootConfig,
  type BootFile,
  type CollectionInputs,
  type CollectionName,
  type CollectionTypes,
  type Distro,
  type Image,
  type Net,
  type Repo,
} from './collections.js';
export { BOOT_STYLES, type BootStyle } from './fields.js';
export { NODE_TYPES, type AttributeOrigin, type Node, type NodeInput, type ResolvedAttributes } from './nodes.js';
export { CLUSTER_ID_RE, validateAdminName, validateClusterId } from './model.js';

export type StoreBackend = 'sqlite' | 'etcd';
export { EtcdUnavailableError, type EtcdStoreOptions, type StoreChange } from './etcd/store.js';

export interface OpenStoreOptions {
  paths?: StoragePaths;
  /** `sqlite` (the default: one head node) or `etcd` (several heads; needs `etcd`). */
  backend?: StoreBackend;
  /** Where the etcd cluster is (endpoints, TLS) when `backend` is `etcd`. */
  etcd?: Omit<EtcdStoreOptions, 'now'>;
  now?: () => Date;
}

/** Opens the cluster store of the storage directory, e.g. `const store = await openStore(); ... await store.close()`. */
export async function openStore(options: OpenStoreOptions = {}): Promise<StoreHandle> {
  const paths = options.paths ?? storagePaths();
  const backend = options.backend ?? 'sqlite';
  switch (backend) {
    case 'sqlite':
      return openSqliteStore(paths.dbFile, { now: options.now });
    case 'etcd':
      if (!options.etcd) throw new Error('the etcd store needs its endpoints');
      return openEtcdStore({ ...options.etcd, now: options.now });
    default:
      throw new Error(`unknown store backend "${String(backend)}"`);
  }
}
