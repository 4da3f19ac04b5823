// Keeps the DNS server following the cluster model: after a committed change of nodes, nets or the
// domain, the API rewrites the hosts file (dnsmasq notices it through inotify, within milliseconds) and,
// when the zones changed (a new domain or network), the servers file and asks the supervisor to reload
// the dns service (SIGHUP). Bursts coalesce: at most one write in flight and one queued, each from the
// latest state.
import { DEFAULT_DOMAIN } from '../../lib/validate.js';
import type { Store } from '../db/store.js';
import { dnsFiles, writeIfChanged } from '../dns/files.js';
import { renderDns, type DnsHost, type DnsModel } from '../dns/render.js';
import { coalesce } from './supervisor-client.js';

/** The DNS view of the store: the domain, every net, and every node that has an address. */
export async function dnsModelOf(store: Store): Promise<DnsModel> {
  // One transaction, so nets, nodes and the domain are read from the same state.
  const [nets, nodes, domain] = await store.transaction(async (tx) => [await tx.list('nets'), await tx.listNodes(), await tx.getSetting('domain')] as const);
  const hosts: DnsHost[] = [];
  for (const node of nodes) if (node.ip !== null) hosts.push({ name: node.name, ip: node.ip });
  return { domain: domain ?? DEFAULT_DOMAIN, nets: nets.map((n) => ({ name: n.name, network: n.network, prefix: n.prefix })), hosts };
}

export interface DnsSyncOptions {
  store: Store;
  paths: { generatedDir: string };
  /** Asks the supervisor to reload the dns service (POST /reload/dns). */
  reload: () => Promise<void>;
  log: (line: string) => void;
}

/** The hook the API calls after each change that may affect the names: a trigger that rewrites the DNS files. */
export function dnsSync(options: DnsSyncOptions): () => void {
  const files = dnsFiles(options.paths);
  let lastSkipped = '';
  // A reload that failed (supervisor busy or restarting) is retried with the next change.
  let reloadOwed = false;
  return coalesce(
    async () => {
      const rendered = renderDns(await dnsModelOf(options.store));
      const skipped = rendered.skipped.join('; ');
      if (skipped !== lastSkipped && skipped !== '') options.log(`DNS names left out: ${skipped.slice(0, 400)}`);
      lastSkipped = skipped;
      // The zones first: a new domain must be local before names in it appear.
      if (await writeIfChanged(files.zonesFile, rendered.zones)) reloadOwed = true;
      await writeIfChanged(files.hostsFile, rendered.hosts);
      if (reloadOwed) {
        await options.reload();
        reloadOwed = false;
      }
    },
    (err) => options.log(`updating DNS names: ${err instanceof Error ? err.message : String(err)}`),
  );
}
