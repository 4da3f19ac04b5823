import type { SupervisorHealth } from '../api/supervisor-client.js';
import { resolveClusterDb, storeOptionsOf } from '../cluster-db.js';
import { openStore, type StoreHandle } from '../db/index.js';
import type { StoragePaths } from '../../lib/storage-layout.js';

/** What a cw-appliance command may touch; tests pass a temporary storage dir and collect the output. */
export interface CommandContext {
  paths: StoragePaths;
  env: NodeJS.ProcessEnv;
  /** Prints one line on stdout. */
  out: (line: string) => void;
  /** Asks the supervisor for its health (the real socket client unless a test injects a fake). */
  supervisorHealth: SupervisorHealth;
}

/** Opens the store for one command and always closes it. */
export async function withStore<T>(ctx: CommandContext, body: (store: StoreHandle) => Promise<T>): Promise<T> {
  // The same database the API uses: SQLite, or etcd when this head is one of several.
  const store = await openStore({ paths: ctx.paths, ...storeOptionsOf(resolveClusterDb(ctx.env, ctx.paths.root), ctx.paths.secretsDir, ctx.paths.dbFile) });
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}
