import { spawn, type ChildProcess } from 'node:child_process';
import { errorMessage } from '../../lib/errors.js';
import { LineSplitter } from './lines.js';
import type { ChildHandle, Clock, ExitInfo, OutputStream, SpawnRequest, Spawner } from './types.js';

/** Wall-clock time and Node's timers. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Starts children with Node's child_process: each in its own session and process group
 * (`detached`), stdin closed, stdout/stderr split into lines. Signals go to the group.
 */
export const realSpawner: Spawner = {
  spawn: (request) => spawnChild(request),
};

function spawnChild(request: SpawnRequest): ChildHandle {
  let exitCallback: ((exit: ExitInfo) => void) | null = null;
  let pendingExit: ExitInfo | null = null;
  let finished = false;
  const finish = (exit: ExitInfo): void => {
    if (finished) return;
    finished = true;
    if (exitCallback) exitCallback(exit);
    else pendingExit = exit;
  };

  let child: ChildProcess;
  try {
    child = spawn(request.command, [...request.args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: definedOnly(request.env),
      ...(request.cwd !== undefined ? { cwd: request.cwd } : {}),
    });
  } catch (err) {
    queueMicrotask(() => finish({ code: null, signal: null, error: errorMessage(err) }));
    return handle(null);
  }

  const pid = child.pid ?? null;
  const pipes: Array<[OutputStream, NodeJS.ReadableStream | null]> = [
    ['stdout', child.stdout],
    ['stderr', child.stderr],
  ];
  for (const [name, stream] of pipes) {
    if (!stream) continue;
    const splitter = new LineSplitter((line) => request.onLine(line, name));
    stream.on('data', (chunk: Buffer) => splitter.push(chunk));
    stream.on('end', () => splitter.end());
    stream.on('error', () => undefined);
  }
  // `exit`, not `close`: grandchildren may hold the pipes open long after the leader is gone.
  child.on('exit', (code, signal) => finish({ code, signal }));
  child.on('error', (err) => {
    if (pid === null) finish({ code: null, signal: null, error: err.message });
  });
  return handle(pid);

  function handle(childPid: number | null): ChildHandle {
    return {
      pid: childPid,
      onExit(callback) {
        exitCallback = callback;
        if (pendingExit) {
          const exit = pendingExit;
          pendingExit = null;
          callback(exit);
        }
      },
      kill(signal, target = 'group') {
        if (childPid === null) return;
        try {
          process.kill(target === 'group' ? -childPid : childPid, signal);
        } catch {
          // ESRCH: already gone.
        }
      },
    };
  }
}

function definedOnly(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  return out;
}
