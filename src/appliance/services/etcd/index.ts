// This head's etcd member, when the cluster database lives in etcd with a member on every head
// (`cw-containerctl start --etcd-member` on the first head, `--join HEAD` on the next ones). Data in
// STORAGE/etcd/data; clients and peers over TLS with certificates of the heads' shared CA, and only
// certificates of that CA are let in (`--client-cert-auth`, `--peer-client-cert-auth`).
import { mkdir, stat } from 'node:fs/promises';
import { readTextIfExists } from '../../../lib/optional-file.js';
import { isIPv4 } from 'node:net';
import * as path from 'node:path';
import { ensurePrivateDir } from '../../../lib/storage-layout.js';
import { tcpListeningProbe } from '../../supervisor/probes.js';
import type { ChildServiceSpec } from '../../supervisor/types.js';
import { DAEMON_RESTART, type ServiceContext } from '../context.js';
import { ensureEtcdCa, ensureMemberCertificate, etcdPkiFiles } from './pki.js';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

/** A member name: what etcd shows in `member list` and `cw-clusterctl heads ls`. */
export const MEMBER_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface EtcdMember {
  /** This head's member name (CW_ETCD_MEMBER). */
  name: string;
  /** The address other heads reach it at (CW_ETCD_ADDRESS). */
  address: string;
}

/** How a head that joined was told to start its member (written by `cw-containerctl start --join`). */
export interface EtcdJoin {
  /** `NAME=https://ADDR:2380,...`: every member, this one included. */
  initialCluster: string;
}

export interface EtcdFiles {
  dir: string;
  dataDir: string;
  joinFile: string;
}

export function etcdFiles(storage: string): EtcdFiles {
  const dir = path.join(storage, 'etcd');
  return { dir, dataDir: path.join(dir, 'data'), joinFile: path.join(dir, 'join.json') };
}

/** CW_ETCD_MEMBER and CW_ETCD_ADDRESS, checked; null when this head runs no member. Throws naming the variable. */
export function etcdMemberFromEnv(env: NodeJS.ProcessEnv): EtcdMember | null {
  const name = env.CW_ETCD_MEMBER?.trim() ?? '';
  const address = env.CW_ETCD_ADDRESS?.trim() ?? '';
  if (name === '' && address === '') return null;
  if (!MEMBER_NAME_RE.test(name)) throw new Error(`CW_ETCD_MEMBER must be a member name (a-z, 0-9, -; up to 63), not ${JSON.stringify(name)}`);
  if (!isIPv4(address)) throw new Error(`CW_ETCD_ADDRESS must be this head's IPv4 address, not ${JSON.stringify(address)}`);
  return { name, address };
}

const peerUrl = (address: string): string => `https://${address}:${ETCD_PEER_PORT}`;
const clientUrl = (address: string): string => `https://${address}:${ETCD_CLIENT_PORT}`;

/** One `NAME=https://ADDR:2380` per member, checked (the join file is written by our tools, but it is a file). */
export function parseInitialCluster(value: string): string {
  const entries = value.split(',');
  for (const entry of entries) {
    const m = /^([a-z0-9][a-z0-9-]{0,62})=https:\/\/(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(entry);
    if (!m || !isIPv4(m[2]!)) throw new Error(`not a member NAME=https://ADDRESS:PORT: ${JSON.stringify(entry.slice(0, 80))}`);
  }
  return entries.join(',');
}

async function readJoin(file: string): Promise<EtcdJoin | null> {
  const text = await readTextIfExists(file);
  if (text === null) return null;
  const data = JSON.parse(text) as { initial_cluster?: unknown };
  if (typeof data.initial_cluster !== 'string') throw new Error(`${file}: no initial_cluster`);
  return { initialCluster: parseInitialCluster(data.initial_cluster) };
}

/** Whether the member has its data already (then etcd ignores every --initial-* flag). */
async function hasData(dataDir: string): Promise<boolean> {
  return stat(path.join(dataDir, 'member')).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** etcd's command line for this member: a new one-member cluster, a join, or a restart on its data. */
export async function etcdArgs(files: EtcdFiles, pki: ReturnType<typeof etcdPkiFiles>, member: EtcdMember): Promise<string[]> {
  const args = [
    '--name', member.name,
    '--data-dir', files.dataDir,
    '--listen-peer-urls', peerUrl(member.address),
    '--initial-advertise-peer-urls', peerUrl(member.address),
    '--listen-client-urls', `${clientUrl('127.0.0.1')},${clientUrl(member.address)}`,
    '--advertise-client-urls', clientUrl(member.address),
    '--cert-file', pki.memberCert, '--key-file', pki.memberKey,
    '--trusted-ca-file', pki.caCert, '--client-cert-auth',
    '--peer-cert-file', pki.memberCert, '--peer-key-file', pki.memberKey,
    '--peer-trusted-ca-file', pki.caCert, '--peer-client-cert-auth',
    '--initial-cluster-token', 'cw-headnode',
    // Quick to notice a dead peer on a cluster network (defaults: 100 ms heartbeat, 1 s election).
    '--heartbeat-interval', '100', '--election-timeout', '1000',
    // Old revisions go after an hour: every large change (a 10,000-node load) writes a whole generation.
    '--auto-compaction-mode', 'periodic', '--auto-compaction-retention', '1h',
    '--logger', 'zap', '--log-outputs', 'stderr',
  ];
  if (await hasData(files.dataDir)) return args;
  const join = await readJoin(files.joinFile);
  if (join) return [...args, '--initial-cluster', join.initialCluster, '--initial-cluster-state', 'existing'];
  return [...args, '--initial-cluster', `${member.name}=${peerUrl(member.address)}`, '--initial-cluster-state', 'new'];
}

/** The etcd member service; the API depends on it when it runs. */
export function etcdService(ctx: ServiceContext, member: EtcdMember): ChildServiceSpec {
  const files = etcdFiles(ctx.paths.storage);
  const pki = etcdPkiFiles(ctx.paths.secretsDir);
  return {
    kind: 'child',
    name: 'etcd',
    dependsOn: [],
    essential: true,
    prepare: async () => {
      ensurePrivateDir(files.dir);
      await mkdir(files.dataDir, { recursive: true, mode: 0o700 });
      if (await ensureEtcdCa(pki, ctx.run, ctx.bins.openssl)) ctx.log('etcd', `made the heads' etcd CA ${pki.caCert}`);
      if (await ensureMemberCertificate(pki, { name: member.name, ips: [member.address] }, ctx.run, ctx.bins.openssl)) {
        ctx.log('etcd', `made the member certificate of ${member.name} (${member.address}) ${pki.memberCert}`);
      }
    },
    command: async () => ({ command: ctx.bins.etcd, args: await etcdArgs(files, pki, member), env: { ...ctx.baseEnv } }),
    readiness: { probe: tcpListeningProbe(ETCD_CLIENT_PORT), intervalMs: 100, timeoutMs: 60_000 },
    restart: DAEMON_RESTART,
    reload: { kind: 'restart' },
    stopDeadlineMs: 5000,
  };
}
