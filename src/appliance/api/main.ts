import { errorMessage, runCommand } from '../../lib/errors.js';
import { openStore, type StoreChange } from '../db/index.js';
import { resolveClusterDb, storeOptionsOf } from '../cluster-db.js';
import { Heads } from '../heads/heads.js';
import { BlobReplicator } from '../blobs/replicator.js';
import { etcdPkiFiles } from '../services/etcd/pki.js';
import { storagePaths } from '../../lib/storage-layout.js';
import { ensureSecrets, runtimePaths } from '../storage.js';
import { buildApi } from './app.js';
import { listenOnSocket, shutdownSignal } from './server.js';
import { audiencesFromEnv } from './auth/audiences.js';
import { DEFAULT_TOKEN_TTL_MS } from './auth/index.js';
import { dhcpSync } from './dhcp-sync.js';
import { dnsSync } from './dns-sync.js';
import { reloadService, supervisorHealthClient } from './supervisor-client.js';
import { ConsoleManager, followDatabase } from '../console/manager.js';
import { consoleHoldDir } from '../console/hold.js';
import { execaRunner } from '../power/command.js';
import { makeBackup, removeBackupLeftovers } from '../backup/backup.js';
import { BackupSchedule, backupSettings } from '../backup/schedule.js';
import { snapshotterOf } from '../db/snapshot.js';
import { packageInfo } from './package-info.js';

// In-flight requests get this long after SIGTERM; the supervisor's own stop deadline is longer.
const SHUTDOWN_DEADLINE_MS = 4000;

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

await runCommand(async () => {
  const paths = storagePaths();
  const runtime = runtimePaths();
  ensureSecrets(paths);
  const clusterDb = resolveClusterDb(process.env, paths.root);
  const storeOptions = storeOptionsOf(clusterDb, paths.secretsDir, paths.dbFile);
  const store = await openStore({ paths, ...storeOptions });
  const seeded = (store as { seeded?: number | null }).seeded;
  if (typeof seeded === 'number') log(`cluster database: carried ${seeded} rows of ${paths.dbFile} into the empty etcd (the file is kept, and no longer used)`);
  // With etcd, /heads shows (and changes) its members; a head running its member can admit new heads.
  const heads = storeOptions.etcd
    ? new Heads({ endpoints: storeOptions.etcd.endpoints, tls: storeOptions.etcd.tls ?? {}, pki: clusterDb.kind === 'member' ? etcdPkiFiles(paths.secretsDir) : null })
    : undefined;
  // Boot files and images by content; with other heads, what they hold and this head lacks is copied.
  const httpPort = portOf(process.env, 'CW_HTTP_PORT', 80);
  const self = clusterDb.kind === 'member' ? clusterDb.member.address : null;
  const blobs = new BlobReplicator({
    store,
    dirs: paths,
    peers: async () => (heads && self !== null ? (await heads.otherAddresses(self)).map((host) => `http://${host}${httpPort === 80 ? '' : `:${httpPort}`}`) : []),
    log,
  });
  const syncDhcp = dhcpSync({ store, paths, reload: () => reloadService(runtime.supervisorSocket, 'dhcpd'), log });
  const syncDns = dnsSync({ store, paths, reload: () => reloadService(runtime.supervisorSocket, 'dns'), log });
  const syncNames = (): void => {
    syncDhcp();
    syncDns();
  };
  let consoles: ReturnType<typeof followDatabase> | undefined;
  for (const name of await removeBackupLeftovers(paths.backupDir)) log(`backup: removed ${name}, left by an interrupted backup`);
  const snapshotter = snapshotterOf(paths, store);
  const backups = new BackupSchedule({
    dir: paths.backupDir,
    settings: async () => backupSettings({ interval: await store.getSetting('backup_interval'), keep: await store.getSetting('backup_keep') }),
    backup: async (fileName) => {
      await makeBackup({ paths, snapshotter, fileName, productVersion: packageInfo().version });
    },
    log,
  });
  const app = buildApi({
    store,
    supervisorHealth: supervisorHealthClient(runtime.supervisorSocket),
    log,
    paths,
    ...(heads ? { heads } : {}),
    blobs,
    ...(clusterDb.kind === 'member' ? { headName: clusterDb.member.name } : {}),
    auth: authFromEnv(process.env),
    accessLog: isTrue(process.env.CW_API_ACCESS_LOG),
    onDhcpChange: syncNames,
    console: { sshPort: portOf(process.env, 'CW_SSH_PORT', 2200) },
    onChange: () => consoles?.trigger(),
    onBackupSettings: () => void backups.poke().catch((err: unknown) => log(`backup: ${errorMessage(err)}`)),
  });
  try {
    await listenOnSocket(app, runtime.apiSocket, { group: process.env.CW_API_SOCKET_GROUP || undefined });
  } catch (err) {
    await store.close();
    throw err;
  }
  log(`CW API listening on ${runtime.apiSocket} (storage ${paths.root})`);
  // dhcpd and dns may have started before us (or from a model of an older release): hand them the current one.
  syncNames();
  // Changes another head made (etcd): dhcpd and DNS follow them through onCommit (which the etcd store
  // also calls for other heads' commits), console logs through this.
  const unwatch = watchOtherHeads(store, (change) => {
    consoles?.trigger();
    if (change.tables.some((table) => table === 'images' || table === 'bootconfigs')) blobs.poke();
  });
  blobs.start();
  await backups.start().catch((err: unknown) => log(`backup: cannot plan the scheduled backups: ${errorMessage(err)}`));
  // Console logs of the nodes that ask for them (_console_log=yes): looked at again after every change
  // request, and every 30 s for changes made around the API.
  consoles = followDatabase(
    store,
    new ConsoleManager({ dir: paths.consolesDir, holdDir: consoleHoldDir(), run: execaRunner, say: log }),
    { intervalMs: 30_000, say: log },
  );
  const signal = await shutdownSignal();
  log(`${signal}: closing the CW API`);
  const deadline = setTimeout(() => {
    process.stderr.write(`ERROR: CW API did not close within ${SHUTDOWN_DEADLINE_MS} ms\n`);
    process.exit(1);
  }, SHUTDOWN_DEADLINE_MS);
  deadline.unref();
  try {
    await app.close();
  } catch (err) {
    log(`closing the server: ${errorMessage(err)}`);
  }
  unwatch();
  await blobs.stop();
  await heads?.close();
  await consoles.stop().catch((err: unknown) => log(`stopping console logs: ${errorMessage(err)}`));
  await backups.stop();
  await store.close();
  clearTimeout(deadline);
  log('CW API stopped');
});

/** Calls `onChange` for changes that did not come through this API (the etcd store's watch); none with SQLite. */
function watchOtherHeads(store: object, onChange: (change: StoreChange) => void): () => void {
  const watchable = store as { watch?: (listener: (change: StoreChange) => void) => () => void };
  if (typeof watchable.watch !== 'function') return () => {};
  return watchable.watch((change) => {
    if (change.origin !== 'local') onChange(change);
  });
}

/** `1`, `true`, `yes`, `on` (any case). */
function isTrue(value: string | undefined): boolean {
  return /^(1|true|yes|on)$/i.test(value?.trim() ?? '');
}

/**
 * `CW_HTTP_PORT` and `CW_HTTPS_PORT` (the ports of the head node's own audiences), `CW_API_AUDIENCES`
 * (comma-separated origins or host names accepted besides them) and `CW_TOKEN_TTL` (seconds, or with s/m/h).
 */
function authFromEnv(env: NodeJS.ProcessEnv): { extraAudiences: string[]; httpPort: number; httpsPort: number; tokenTtlMs: number } {
  return {
    extraAudiences: audiencesFromEnv(env.CW_API_AUDIENCES),
    httpPort: portOf(env, 'CW_HTTP_PORT', 80),
    httpsPort: portOf(env, 'CW_HTTPS_PORT', 443),
    tokenTtlMs: parseDuration(env.CW_TOKEN_TTL, DEFAULT_TOKEN_TTL_MS),
  };
}

function portOf(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const port = Number(env[name]?.trim() || String(fallback));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name} must be a port number 1-65535 (got ${JSON.stringify(env[name])})`);
  return port;
}

function parseDuration(value: string | undefined, fallbackMs: number): number {
  if (!value?.trim()) return fallbackMs;
  const m = /^(\d{1,7})\s*([smh]?)$/.exec(value.trim());
  if (!m) throw new Error(`CW_TOKEN_TTL: expected seconds (or 30m, 2h), not ${JSON.stringify(value)}`);
  const unit = m[2] === 'h' ? 3_600_000 : m[2] === 'm' ? 60_000 : 1000;
  const ms = Number(m[1]) * unit;
  if (ms <= 0) throw new Error('CW_TOKEN_TTL must be positive');
  return ms;
}
