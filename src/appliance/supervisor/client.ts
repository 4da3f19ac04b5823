import * as http from 'node:http';

export interface SupervisorResponse {
  status: number;
  /** Parsed JSON body (or the raw text when it is not JSON). */
  body: unknown;
}

/** `CW_SUPERVISOR_SOCKET`, else `CW_RUN_DIR/supervisor.sock`, else `/run/cw/supervisor.sock`. */
export function supervisorSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CW_SUPERVISOR_SOCKET) return env.CW_SUPERVISOR_SOCKET;
  return `${env.CW_RUN_DIR || '/run/cw'}/supervisor.sock`;
}

export interface QueryOptions {
  socketPath?: string;
  timeoutMs?: number;
}

/**
 * Asks the supervisor's control socket. Resolves with any HTTP status (503 = unhealthy is an answer);
 * rejects when the supervisor cannot be reached.
 * Example: `const { status, body } = await querySupervisor('/health')`.
 */
export function querySupervisor(path: string, method: 'GET' | 'POST' = 'GET', options: QueryOptions = {}): Promise<SupervisorResponse> {
  const socketPath = options.socketPath ?? supervisorSocketPath();
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`supervisor did not answer within ${timeoutMs / 1000}s (${socketPath})`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A supervisor that is shutting down may accept and drop the connection: that is "not running" too.
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'EPIPE' || err.code === 'ECONNRESET') {
        reject(new Error(`supervisor is not running (cannot connect to ${socketPath})`));
      } else {
        reject(err);
      }
    });
    req.end();
  });
}
