// Where this head's cluster database is: SQLite in the storage directory (one head node, the default),
// etcd with a member on this head (several heads: `--etcd-member`, `--join`), or an outside etcd cluster
// (`--etcd ENDPOINTS`). Chosen by the container's environment at the first start and remembered in
// STORAGE/etcd/config.json, so a later start without the options keeps the head what it is.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { readIfExistsSync } from '../lib/optional-file.js';
import * as path from 'node:path';
import { parseEndpoints } from './db/etcd/client.js';
import type { OpenStoreOptions } from './db/index.js';
import { etcdMemberFromEnv, type EtcdMember } from './services/etcd/index.js';
import { etcdPkiFiles } from './services/etcd/pki.js';

export type ClusterDb = { kind: 'sqlite' } | { kind: 'member'; member: EtcdMember } | { kind: 'external'; endpoints: string[] };

export const clusterDbFile = (storage: string): string => path.join(storage, 'etcd', 'config.json');

/** Client certificate files for an outside etcd (optional; copied there by `cw-containerctl start --etcd-*`). */
export function externalEtcdTlsFiles(secretsDir: string): { ca: string; cert: string; key: string } {
  const dir = etcdPkiFiles(secretsDir).dir;
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'client.crt'), key: path.join(dir, 'client.key') };
}

function fromEnv(env: NodeJS.ProcessEnv): ClusterDb | null {
  const member = etcdMemberFromEnv(env);
  const endpoints = (env.CW_ETCD_ENDPOINTS ?? '').split(',').map((e) => e.trim()).filter(Boolean);
  if (member && endpoints.length > 0) throw new Error('CW_ETCD_ENDPOINTS (an outside etcd) and CW_ETCD_MEMBER (a member on this head) exclude each other');
  if (member) return { kind: 'member', member };
  if (endpoints.length > 0) return { kind: 'external', endpoints: parseEndpoints(endpoints) };
  return null;
}

function fromFile(file: string): ClusterDb | null {
  const text = readIfExistsSync(file);
  if (text === undefined) return null;
  const data = JSON.parse(text.toString('utf8')) as { kind?: unknown; name?: unknown; address?: unknown; endpoints?: unknown };
  if (data.kind === 'member') {
    const member = etcdMemberFromEnv({ CW_ETCD_MEMBER: String(data.name ?? ''), CW_ETCD_ADDRESS: String(data.address ?? '') });
    if (member) return { kind: 'member', member };
  }
  if (data.kind === 'external' && Array.isArray(data.endpoints)) return { kind: 'external', endpoints: parseEndpoints(data.endpoints.map(String)) };
  throw new Error(`${file} is not a cluster database setting (kind member or external)`);
}

/**
 * The database this head uses: the environment's choice (checked against what the storage directory was
 * before: a member keeps its name, an etcd head never falls back to SQLite silently) or the remembered one.
 */
export function resolveClusterDb(env: NodeJS.ProcessEnv, storage: string): ClusterDb {
  const file = clusterDbFile(storage);
  const wanted = fromEnv(env);
  const known = fromFile(file);
  if (wanted === null) return known ?? { kind: 'sqlite' };
  if (known?.kind === 'member' && wanted.kind === 'member' && known.member.name !== wanted.member.name) {
    throw new Error(`this storage directory is etcd member ${known.member.name}; it cannot start as ${wanted.member.name} (use another storage directory)`);
  }
  if (known !== null && known.kind !== wanted.kind) {
    throw new Error(`this storage directory's head uses ${describe(known)}; it cannot start with ${describe(wanted)} (use another storage directory)`);
  }
  return wanted;
}

export function describe(db: ClusterDb): string {
  if (db.kind === 'member') return `etcd, member ${db.member.name} on this head (${db.member.address})`;
  if (db.kind === 'external') return `an outside etcd (${db.endpoints.join(', ')})`;
  return 'SQLite';
}

/** Remembers the choice (etcd only; SQLite is what a storage directory without the file means). */
export async function rememberClusterDb(storage: string, db: ClusterDb): Promise<void> {
  if (db.kind === 'sqlite') return;
  const file = clusterDbFile(storage);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const data = db.kind === 'member' ? { kind: 'member', name: db.member.name, address: db.member.address } : { kind: 'external', endpoints: db.endpoints };
  await writeFile(`${file}.new`, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
  await rename(`${file}.new`, file);
}

/** How the API opens the store for this database (the member's own certificate is its client certificate). */
export function storeOptionsOf(db: ClusterDb, secretsDir: string, sqliteFile?: string): Pick<OpenStoreOptions, 'backend' | 'etcd'> {
  if (db.kind === 'sqlite') return { backend: 'sqlite' };
  // This head's SQLite database, if it had one: its data becomes the cluster's when etcd holds none yet
  // (the first head of a cluster, started on a storage directory that was one head).
  const seed = sqliteFile !== undefined && existsSync(sqliteFile) ? { seed: sqliteFile } : {};
  if (db.kind === 'member') {
    const pki = etcdPkiFiles(secretsDir);
    return {
      backend: 'etcd',
      etcd: { endpoints: ['https://127.0.0.1:2379'], tls: { ca: readFileSync(pki.caCert), cert: readFileSync(pki.memberCert), key: readFileSync(pki.memberKey) }, ...seed },
    };
  }
  const files = externalEtcdTlsFiles(secretsDir);
  const tls = { ca: readIfExistsSync(files.ca), cert: readIfExistsSync(files.cert), key: readIfExistsSync(files.key) };
  return { backend: 'etcd', etcd: { endpoints: db.endpoints, tls, ...seed } };
}
