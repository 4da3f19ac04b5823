import { migration0001 } from './0001-admins-settings.js';
import { migration0002 } from './0002-cluster-model.js';
import { migration0003 } from './0003-node-secrets.js';
import type { Migration } from './types.js';

export type { Migration } from './types.js';

/** Every migration of the SQLite schema, oldest first. */
export const MIGRATIONS: readonly Migration[] = [migration0001, migration0002, migration0003];
