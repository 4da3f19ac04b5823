import { request } from 'node:http';

/** One service as reported by the supervisor. */
export interface ServiceHealth {
  state: string;
  pid?: number | null;
  restarts?: number;
  since?: string | null;
  lastExit?: unknown;
  [field: string]: unknown;
}

export type HealthStatus = 'healthy' | 'unhealthy' | 'starting' | 'unknown';

export interface SupervisorHealthReport {
  status: HealthStatus;
  services: Record<string, ServiceHealth>;
}

/** Asks the supervisor for its health; rejects with SupervisorError when it cannot be asked. */
export type SupervisorHealth = () => Promise<SupervisorHealthReport>;

/** The supervisor's socket is missing, refuses, times out, or answers something unexpected. */
export class SupervisorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SupervisorError';
  }
}

const KNOWN_STATUSES: readonly string[] = ['healthy', 'unhealthy', 'starting'];
const MAX_BODY = 1024 * 1024;

/** A SupervisorHealth asking `GET /health` on the supervisor's unix socket, e.g. `supervisorHealthClient('/run/cw/supervisor.sock')`. */
export function supervisorHealthClient(socketPath: string, timeoutMs = 3000): SupervisorHealth {
  return () => getSupervisorHealth(socketPath, timeoutMs);
}

/** `GET /health` on the supervisor socket; both 200 (healthy) and 503 (not healthy) carry a report. */
export function getSupervisorHealth(socketPath: string, timeoutMs = 3000): Promise<SupervisorHealthReport> {
  return new Promise((resolve, reject) => {
    const fail = (message: string): void => reject(new SupervisorError(message));
    const req = request({ socketPath, path: '/health', method: 'GET', headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY) {
          req.destroy();
          fail('supervisor health answer too large');
        } else chunks.push(chunk);
      });
      res.on('error', (err) => fail(`supervisor health answer broken: ${err.message}`));
      res.on('end', () => {
        if (res.statusCode !== 200 && res.statusCode !== 503) {
          fail(`supervisor answered HTTP ${res.statusCode} to GET /health`);
          return;
        }
        try {
          resolve(parseHealthReport(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
        } catch (err) {
          fail(err instanceof SupervisorError ? err.message : 'supervisor health answer is not JSON');
        }
      });
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      fail(`supervisor did not answer within ${timeoutMs} ms`);
    });
    req.on('error', (err: NodeJS.ErrnoException) => fail(`supervisor not reachable at ${socketPath}: ${err.code ?? err.message}`));
    req.end();
  });
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks the shape of the supervisor's health document; an unrecognized status becomes `unknown`. */
export function parseHealthReport(body: unknown): SupervisorHealthReport {
  if (!isRecord(body) || typeof body.status !== 'string' || !isRecord(body.services)) {
    throw new SupervisorError('unexpected supervisor health answer (want {status, services})');
  }
  const services: Record<string, ServiceHealth> = {};
  for (const [name, service] of Object.entries(body.services)) {
    if (!isRecord(service) || typeof service.state !== 'string') {
      throw new SupervisorError(`unexpected supervisor health answer for service ${JSON.stringify(name)}`);
    }
    services[name] = { ...service, state: service.state };
  }
  const status = KNOWN_STATUSES.includes(body.status) ? (body.status as HealthStatus) : 'unknown';
  return { status, services };
}

/** `POST /reload/NAME` on the supervisor socket; rejects with SupervisorError unless it answers 200. */
export function reloadService(socketPath: string, name: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (message: string): void => reject(new SupervisorError(message));
    const req = request({ socketPath, path: `/reload/${encodeURIComponent(name)}`, method: 'POST' }, (res) => {
      res.resume();
      res.on('error', (err) => fail(`supervisor reload answer broken: ${err.message}`));
      res.on('end', () => (res.statusCode === 200 ? resolve() : fail(`supervisor answered HTTP ${res.statusCode} to POST /reload/${name}`)));
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      fail(`supervisor did not answer POST /reload/${name} within ${timeoutMs} ms`);
    });
    req.on('error', (err: NodeJS.ErrnoException) => fail(`supervisor not reachable at ${socketPath}: ${err.code ?? err.message}`));
    req.end();
  });
}

/**
 * Turns an async action into a trigger that coalesces bursts: at most one run in flight and at most one
 * more queued behind it, however often it is triggered meanwhile. Failures go to `onError`.
 * Example: `const reloadDhcp = coalesce(() => reloadService(sock, 'dhcpd'), log)`.
 */
export function coalesce(action: () => Promise<void>, onError: (err: unknown) => void = () => {}): () => void {
  let running = false;
  let pending = false;
  const run = (): void => {
    running = true;
    pending = false;
    action()
      .catch(onError)
      .finally(() => {
        running = false;
        if (pending) run();
      });
  };
  return () => {
    if (running) pending = true;
    else run();
  };
}
