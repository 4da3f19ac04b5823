// What the host tools and the appliance agree on about the heads' etcd members: names, ports, the
// `NAME=https://ADDR:2380,...` list a joining head starts with, and where a head keeps the CA and its
// member certificate (STORAGE/secrets/etcd/).
import { isIPv4 } from 'node:net';
import * as path from 'node:path';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

/** A member name: what etcd shows in `member list` and `cw-clusterctl heads ls`. */
export const MEMBER_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** One `NAME=https://ADDR:PORT` per member, checked (the join file is written by our tools, but it is a file). */
export function parseInitialCluster(value: string): string {
  const entries = value.split(',');
  for (const entry of entries) {
    const m = /^([a-z0-9][a-z0-9-]{0,62})=https:\/\/(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(entry);
    if (!m || !isIPv4(m[2]!)) throw new Error(`not a member NAME=https://ADDRESS:PORT: ${JSON.stringify(entry.slice(0, 80))}`);
  }
  return entries.join(',');
}

export interface EtcdPkiFiles {
  dir: string;
  caCert: string;
  caKey: string;
  memberCert: string;
  memberKey: string;
}

/** `STORAGE/secrets/etcd/`: the cluster CA and this head's member certificate (directory 0700, keys 0600). */
export function etcdPkiFiles(secretsDir: string): EtcdPkiFiles {
  const dir = path.join(secretsDir, 'etcd');
  return {
    dir,
    caCert: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    memberCert: path.join(dir, 'member.crt'),
    memberKey: path.join(dir, 'member.key'),
  };
}
