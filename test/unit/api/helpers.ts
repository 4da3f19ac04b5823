import { request } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { buildApi, type ApiOptions } from '../../../src/appliance/api/app.js';
import { openSqliteStore } from '../../../src/appliance/db/sqlite/store.js';
import type { StoreHandle } from '../../../src/appliance/db/store.js';
import type { SupervisorHealthReport } from '../../../src/appliance/api/supervisor-client.js';
import { storagePaths, type StoragePaths } from '../../../src/lib/storage-layout.js';
import sshpk from 'sshpk';
import { challengeMessage } from '../../../src/lib/auth-challenge.js';
import { parsePublicKey } from '../../../src/lib/sshkey.js';
import { generateKey, tempDir } from '../lib/keys.js';

/** A real (SQLite) store in a fresh temporary storage directory, removed again by `close()`. */
export function tempStore(): StoreHandle & { paths: StoragePaths } {
  const { dir, cleanup } = tempDir('cw-api-store-');
  const paths = storagePaths(dir);
  const store = openSqliteStore(paths.dbFile);
  const close = store.close.bind(store);
  return Object.assign(store, {
    paths,
    close: async () => {
      await close();
      cleanup();
    },
  });
}

/** An API over a temporary store that is removed when the API closes. */
export function apiWithTempStore(options: Omit<ApiOptions, 'store'>): { api: FastifyInstance; store: StoreHandle & { paths: StoragePaths } } {
  const store = tempStore();
  const api = buildApi({ paths: store.paths, ...options, store });
  api.addHook('onClose', async () => store.close());
  return { api, store };
}

export const healthyReport: SupervisorHealthReport = {
  status: 'healthy',
  services: {
    api: { state: 'ready', pid: 101, restarts: 0, since: '2025-01-01T00:00:00.000Z', lastExit: null },
    dhcpd: { state: 'ready', pid: 102, restarts: 1, since: '2025-01-01T00:00:01.000Z', lastExit: { code: 1, signal: null } },
  },
};

export const fatalReport: SupervisorHealthReport = {
  status: 'unhealthy',
  services: {
    ...healthyReport.services,
    tftpd: { state: 'fatal', pid: null, restarts: 5, since: '2025-01-01T00:00:02.000Z', lastExit: { code: 1, signal: null } },
  },
};

/** The key the `tester` admin of every session logs in with (signed in-process; auth.test.ts uses a real agent). */
const testerKey = generateKey('ed25519', { comment: 'tester@test' });

/** Signs a challenge the way ssh-agent would: the SSH signature blob, base64. */
export function signChallenge(privateText: string, message: Buffer): string {
  const key = sshpk.parsePrivateKey(privateText, 'ssh');
  const signer = key.createSign('sha512');
  signer.update(message);
  return signer.sign().toBuffer('ssh').toString('base64');
}

export interface Reply {
  status: number;
  body: any;
  headers: Record<string, unknown>;
}

export interface Session {
  api: FastifyInstance;
  store: StoreHandle & { paths: StoragePaths };
  /** `Authorization` header of the logged-in `tester` admin. */
  auth: Record<string, string>;
  /** An authenticated JSON request under /api/v1. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply>;
}

/** An API over a fresh store, with an admin `tester` logged in through the challenge/token flow. */
export async function session(
  t: { teardown(fn: () => unknown): void },
  options: Partial<Omit<ApiOptions, 'store'>> = {},
): Promise<Session> {
  const { api, store } = apiWithTempStore({ supervisorHealth: async () => healthyReport, ...options });
  t.teardown(() => api.close());
  const info = parsePublicKey(testerKey.publicLine);
  await store.addAdmin({ name: 'tester', keyType: info.type, keyLine: info.line, fingerprint: info.fingerprint, comment: info.comment });
  const challenge = await api.inject({ method: 'POST', url: '/api/v1/auth/challenge', payload: { user: 'tester' } });
  const { nonce } = challenge.json().data as { nonce: string };
  const signature = signChallenge(testerKey.privateText, challengeMessage('tester', nonce, 'http://localhost'));
  const res = await api.inject({
    method: 'POST',
    url: '/api/v1/auth/token',
    payload: { user: 'tester', nonce, publicKey: testerKey.publicLine, signature },
  });
  if (res.statusCode !== 200) throw new Error(`test login failed: ${res.body}`);
  const auth = { authorization: `Bearer ${res.json().data.token as string}` };
  return {
    api,
    store,
    auth,
    async call(method, path, body, headers = {}) {
      const res = await api.inject({
        method: method as 'GET',
        url: `/api/v1${path}`,
        headers: { ...auth, ...headers },
        ...(body === undefined ? {} : { payload: body as string }),
      });
      const text = res.body;
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // raw bytes (downloads)
      }
      return { status: res.statusCode, body: parsed, headers: res.headers };
    },
  };
}

/** GET `rawPath` over a real socket, exactly as written (no client-side normalisation of `..` or `%2e`). */
export function rawGet(port: number, rawPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: rawPath, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

