import { errorMessage, runCommand } from '../../lib/errors.js';
import { openStore } from '../db/index.js';
import { ensureSecrets, runtimePaths, storagePaths } from '../storage.js';
import { buildApi } from './app.js';
import { listenOnSocket, shutdownSignal } from './server.js';
import { supervisorHealthClient } from './supervisor-client.js';

// In-flight requests get this long after SIGTERM; the supervisor's own stop deadline is longer.
const SHUTDOWN_DEADLINE_MS = 4000;

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

await runCommand(async () => {
  const paths = storagePaths();
  const runtime = runtimePaths();
  ensureSecrets(paths);
  const store = await openStore({ paths });
  const app = buildApi({ store, supervisorHealth: supervisorHealthClient(runtime.supervisorSocket), log });
  try {
    await listenOnSocket(app, runtime.apiSocket, { group: process.env.CW_API_SOCKET_GROUP || undefined });
  } catch (err) {
    await store.close();
    throw err;
  }
  log(`CW API listening on ${runtime.apiSocket} (storage ${paths.root})`);

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
  await store.close();
  clearTimeout(deadline);
  log('CW API stopped');
});
