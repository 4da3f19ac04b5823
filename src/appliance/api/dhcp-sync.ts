// Keeps dhcpd following the cluster model: after a committed change that affects DHCP, the API writes
// the DHCP model file (nets and one host per node MAC) and asks the supervisor to reload dhcpd.
// Bursts coalesce: at most one write+reload in flight and one queued, each from the latest state.
import { writeDhcpModel, type DhcpModelPaths } from '../dhcp/model-file.js';
import { dhcpNetOf, type DhcpHost, type DhcpModel } from '../dhcp/model.js';
import { DEFAULT_DOMAIN } from '../../lib/validate.js';
import type { Store } from '../db/store.js';
import { coalesce } from './supervisor-client.js';

/** The DHCP view of the store: every net, every MAC of every node that has an IP, and the cluster's domain. */
export async function dhcpModelOf(store: Store, version: number): Promise<DhcpModel> {
  // One transaction, so nets and nodes are read from the same state.
  const [nets, nodes, domain] = await store.transaction(async (tx) => [await tx.list('nets'), await tx.listNodes(), await tx.getSetting('domain')] as const);
  const dhcpNets = nets.map(dhcpNetOf);
  const hosts: DhcpHost[] = [];
  for (const node of nodes) {
    if (node.ip === null) continue;
    for (const mac of node.mac === null ? node.macs : [node.mac, ...node.macs]) hosts.push({ name: node.name, mac, ip: node.ip });
  }
  return { version, nets: dhcpNets, hosts, domain: domain ?? DEFAULT_DOMAIN };
}

export interface DhcpSyncOptions {
  store: Store;
  paths: DhcpModelPaths;
  /** Asks the supervisor to reload dhcpd (POST /reload/dhcpd). */
  reload: () => Promise<void>;
  log: (line: string) => void;
  /** ms clock for model versions (default Date.now). */
  now?: () => number;
}

/**
 * The `onDhcpChange` hook of the real API: a trigger that rewrites the model and reloads dhcpd.
 * Model versions only grow (ms timestamps, or the last one plus one).
 */
export function dhcpSync(options: DhcpSyncOptions): () => void {
  const now = options.now ?? Date.now;
  let version = 0;
  return coalesce(
    async () => {
      version = Math.max(version + 1, now());
      await writeDhcpModel(options.paths, await dhcpModelOf(options.store, version));
      await options.reload();
    },
    (err) => options.log(`updating dhcpd: ${err instanceof Error ? err.message : String(err)}`),
  );
}
