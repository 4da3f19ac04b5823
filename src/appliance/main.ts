// The container's main process (under tini) and the one composition root: reads the environment, builds
// the service context and the service table, and runs them under the supervisor.
import { mkdir } from 'node:fs/promises';
import { errorMessage, runCommand } from '../lib/errors.js';
import { prepareStorage, storagePaths } from '../lib/storage-layout.js';
import { installBundledClientPackages } from './clientpkgs/bundled.js';
import { describe as describeClusterDb, rememberClusterDb } from './cluster-db.js';
import { loadSupervisorConfig, serviceContext } from './environment.js';
import { buildServiceTable } from './services/index.js';
import { closeControl, serveControl } from './supervisor/control.js';
import { logFanOut } from './supervisor/fanout.js';
import { openLogFiles } from './supervisor/log-files.js';
import { realClock, realSpawner } from './supervisor/spawner.js';
import { Supervisor } from './supervisor/supervisor.js';

/** The appliance's PID-1 child (under tini): prepares storage, runs the services, serves /run/cw/supervisor.sock. */
export async function runSupervisor(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadSupervisorConfig(env);
  // A closed stdout (log driver gone) must not take the daemons down; the files still get every line.
  process.stdout.on('error', () => undefined);
  const created = await prepareStorage(config.storage);
  await mkdir(config.runDir, { recursive: true, mode: 0o755 });
  const files = openLogFiles(storagePaths(config.storage).logsDir);
  const sink = logFanOut(files);
  // Lines still collected when the process ends (an error below) go out with it; stdout is a pipe, written synchronously.
  process.on('exit', () => sink.flush());
  sink.write('supervisor', `cw-headnode supervisor (pid ${process.pid}, node ${process.version}), storage ${config.storage}`);
  if (created.length > 0) sink.write('supervisor', `created storage directories: ${created.join(', ')}`);
  await rememberClusterDb(config.storage, config.clusterDb);
  sink.write('supervisor', `cluster database: ${describeClusterDb(config.clusterDb)}`);
  try {
    const added = await installBundledClientPackages(config.clientPkgsBundle, storagePaths(config.storage));
    if (added.length > 0) sink.write('supervisor', `added client packages: ${added.join(', ')}`);
  } catch (err) {
    // The appliance still works without them; the diskful-node downloads will say what is missing.
    sink.write('supervisor', `cannot add the bundled client packages: ${errorMessage(err)}`);
  }

  const ctx = serviceContext(config, (source, line) => sink.write(source, line), env);
  const supervisor = new Supervisor(buildServiceTable(ctx, { failService: config.failService }), {
    clock: realClock,
    spawner: realSpawner,
    sink,
  });

  let control;
  try {
    control = await serveControl(supervisor, config.controlSocket);
  } catch (err) {
    sink.write('supervisor', `cannot serve ${config.controlSocket}: ${errorMessage(err)}`);
    sink.flush();
    await files.close();
    throw err;
  }

  const stopped = new Promise<string>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        sink.write('supervisor', `${signal} received again; still stopping`);
        return;
      }
      stopping = true;
      sink.write('supervisor', `${signal} received; stopping`);
      void supervisor.stopAll().then(() => resolve(signal));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // A stray hangup must not kill the supervisor (and orphan its daemons).
    process.on('SIGHUP', () => sink.write('supervisor', 'SIGHUP ignored (use POST /reload/NAME)'));
  });

  supervisor.start();
  await stopped;
  await closeControl(control, config.controlSocket);
  sink.write('supervisor', 'bye');
  sink.flush();
  await files.close();
}

await runCommand(() => runSupervisor());
// Exit at once: everything is stopped, nothing may keep the container around.
process.exit();
