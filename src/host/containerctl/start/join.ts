// `cw-containerctl start --join HEAD`: this new head asks an existing one (as the admin whose key is in
// the ssh-agent, over HTTPS trusted as the admin's tool settings say) to admit it. The answer — every
// member and the heads' CA — is written into the new storage directory, and the appliance's etcd member
// joins with it at its first start.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ExitError } from '../../../lib/errors.js';
import { ensurePrivateDir, storagePaths } from '../../../lib/storage-layout.js';
import { ApiClient } from '../../../tools/common/client/api-client.js';
import { loadSettings, normalizeBaseUrl } from '../../../tools/common/client/settings.js';
import { parseInitialCluster } from '../../../appliance/services/etcd/index.js';
import { etcdPkiFiles } from '../../../appliance/services/etcd/pki.js';

export interface JoinRequest {
  /** The existing head: an address or name (its API is https://HEAD/api/v1), or the API's URL. */
  head: string;
  name: string;
  address: string;
  storageDir: string;
}

export interface Joined {
  initialCluster: string;
  /** Takes the member back out when this head does not come up after all. */
  undo(): Promise<void>;
}

/** The API base URL of `head`: `10.0.0.1` → `https://10.0.0.1/api/v1`; a URL is taken as it is. */
export function joinBaseUrl(head: string): string {
  const raw = head.includes('://') ? head : `https://${head}/api/v1`;
  const normalized = normalizeBaseUrl(raw);
  if (!normalized.ok) throw new ExitError(`--join ${head}: ${normalized.reason}`);
  if (!normalized.value.startsWith('https://')) throw new ExitError(`--join ${head}: the heads' CA key travels in the answer: use https://`);
  return normalized.value;
}

/** Refuses a storage directory that already belongs to a head of some cluster. */
export function refuseIfHead(storageDir: string): void {
  for (const marker of [path.join(storageDir, 'etcd', 'config.json'), path.join(storageDir, 'etcd', 'data', 'member')]) {
    if (existsSync(marker)) throw new ExitError(`${storageDir} belongs to a head already (${marker}); --join needs a new storage directory`);
  }
}

async function writePrivate(file: string, text: string): Promise<void> {
  await writeFile(`${file}.new`, text, { mode: 0o600 });
  await rename(`${file}.new`, file);
}

/** Asks `head` to admit this one, checks the answer and writes it into the storage directory. */
export async function joinCluster(request: JoinRequest, env: NodeJS.ProcessEnv): Promise<Joined> {
  const baseUrl = joinBaseUrl(request.head);
  let settings;
  try {
    settings = loadSettings({ env, ...(env.HOME ? { home: env.HOME } : {}) });
  } catch (err) {
    throw new ExitError(`cannot read the admin's tool settings: ${(err as Error).message}`);
  }
  // The admin's settings say how to trust that head (its certificate's pin): only when they are about it.
  if (new URL(settings.baseUrl).host !== new URL(baseUrl).host) {
    throw new ExitError(
      `--join ${request.head}: ${settings.path} is about ${settings.baseUrl}, not ${baseUrl}; point client.base_url and client.sslverify at the head to join (cw-containerctl tool-config on it) first`,
    );
  }
  const api = new ApiClient({ baseUrl, user: settings.authUser, sslVerify: settings.sslVerify, env });
  const answer = await api.post<Record<string, unknown>>('/heads', { name: request.name, address: request.address });
  const initialCluster = parseInitialCluster(String(answer.initial_cluster ?? ''));
  const caCert = String(answer.ca_cert ?? '');
  const caKey = String(answer.ca_key ?? '');
  try {
    if (!new X509Certificate(caCert).ca) throw new Error('not a CA certificate');
    createPrivateKey(caKey);
  } catch (err) {
    await api.delete(`/head/${encodeURIComponent(request.name)}`).catch(() => undefined);
    throw new ExitError(`${request.head} answered with an unusable CA (${(err as Error).message}); nothing was joined`);
  }
  const pki = etcdPkiFiles(storagePaths(request.storageDir).secretsDir);
  ensurePrivateDir(pki.dir);
  await writePrivate(pki.caCert, caCert);
  await writePrivate(pki.caKey, caKey);
  const etcdDir = path.join(request.storageDir, 'etcd');
  await mkdir(etcdDir, { recursive: true, mode: 0o700 });
  await writePrivate(path.join(etcdDir, 'join.json'), `${JSON.stringify({ initial_cluster: initialCluster }, null, 2)}\n`);
  return {
    initialCluster,
    undo: async () => {
      await api.delete(`/head/${encodeURIComponent(request.name)}`);
    },
  };
}
