// The head nodes of a cluster whose database is etcd: its members (`cw-clusterctl heads ls`), a new head
// admitted (`cw-containerctl start --join HEAD` asks an existing head for this), and a head removed
// (`heads rm`, refused when the rest would lose the quorum). Spoken through etcd's JSON gateway with the
// head's own member certificate, like the store.
import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { EtcdClient, type EtcdTls } from '../db/etcd/client.js';
import { ETCD_CLIENT_PORT, ETCD_PEER_PORT, MEMBER_NAME_RE, parseInitialCluster } from '../services/etcd/index.js';
import type { EtcdPkiFiles } from '../services/etcd/pki.js';

export class HeadsError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 404 | 409 | 503,
  ) {
    super(message);
  }
}

export interface Head {
  /** etcd's member id (hex). */
  id: string;
  name: string;
  peer_urls: string[];
  client_urls: string[];
  /** Answered a status request just now. */
  healthy: boolean;
  leader: boolean;
  /** etcd's version on that head; null when it did not answer. */
  version: string | null;
  db_size: number | null;
  /** Added but not started yet (it has no name until it first runs). */
  started: boolean;
  /** Why it did not answer. */
  error?: string;
}

/** What a new head needs to start its member: every member's peer URL and the heads' CA (key included). */
export interface JoinBundle {
  name: string;
  address: string;
  initial_cluster: string;
  ca_cert: string;
  ca_key: string;
}

interface RawMember {
  ID?: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
}

const hexId = (id: string | undefined): string => (id ? BigInt(id).toString(16) : '0');

/** How long a new member is asked for while the cluster settles after the last join. */
const ADD_RETRY_MS = 20_000;

/** How long one member gets to say how it is, so `heads ls` answers quickly with a member down. */
const STATUS_TIMEOUT_MS = 1500;

export class Heads {
  readonly #client: EtcdClient;
  readonly #tls: EtcdTls;
  readonly #pki: EtcdPkiFiles | null;

  /** `pki`: the CA files, on heads that run their member (an outside etcd's members are not ours to add). */
  constructor(options: { endpoints: readonly string[]; tls: EtcdTls; pki: EtcdPkiFiles | null }) {
    this.#client = new EtcdClient({ endpoints: options.endpoints, tls: options.tls, timeoutMs: 5000 });
    this.#tls = options.tls;
    this.#pki = options.pki;
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  async #members(): Promise<RawMember[]> {
    const res = await this.#client.call<{ members?: RawMember[] }>('/v3/cluster/member/list', {});
    return res.members ?? [];
  }

  /** Every member with its health: each is asked for its status on its own client URL, all at once. */
  async list(): Promise<Head[]> {
    const members = await this.#members();
    const heads = await Promise.all(
      members.map(async (m): Promise<Head> => {
        const base: Head = {
          id: hexId(m.ID),
          name: m.name ?? '',
          peer_urls: m.peerURLs ?? [],
          client_urls: m.clientURLs ?? [],
          healthy: false,
          leader: false,
          version: null,
          db_size: null,
          started: (m.clientURLs ?? []).length > 0,
        };
        if (!base.started) return { ...base, error: 'added, not started yet' };
        const one = new EtcdClient({ endpoints: base.client_urls, tls: this.#tls, timeoutMs: STATUS_TIMEOUT_MS });
        try {
          const status = await one.call<{ header?: { member_id?: string }; version?: string; dbSize?: string; leader?: string }>('/v3/maintenance/status', {});
          return { ...base, healthy: true, leader: status.leader !== undefined && status.leader === status.header?.member_id, version: status.version ?? null, db_size: Number(status.dbSize ?? 0) };
        } catch (err) {
          return { ...base, error: (err as Error).message };
        } finally {
          await one.close();
        }
      }),
    );
    return heads.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The other heads' addresses (the hosts of their members' client URLs): where to copy boot files from. */
  async otherAddresses(self: string): Promise<string[]> {
    const hosts = (await this.#members()).flatMap((m) => (m.clientURLs ?? []).slice(0, 1)).map((url) => new URL(url).hostname);
    return [...new Set(hosts)].filter((host) => host !== self && host !== `[${self}]`);
  }

  /**
   * Adds a member for a new head at `address` and returns what it needs to start. The new member counts
   * towards the quorum at once: a cluster of one head waits for the second one's first start.
   */
  async add(name: string, address: string): Promise<JoinBundle> {
    if (!this.#pki) throw new HeadsError('the heads do not run this etcd cluster (an outside etcd): add its members with etcdctl', 409);
    if (!MEMBER_NAME_RE.test(name)) throw new HeadsError(`name: ${JSON.stringify(name.slice(0, 70))} is not a head name (a-z, 0-9, -; up to 63)`, 400);
    if (!isIPv4(address)) throw new HeadsError(`address: ${JSON.stringify(address.slice(0, 40))} is not an IPv4 address`, 400);
    const members = await this.#members();
    const peerUrl = `https://${address}:${ETCD_PEER_PORT}`;
    if (members.some((m) => m.name === name)) throw new HeadsError(`there is a head named ${name} already`, 409);
    if (members.some((m) => (m.peerURLs ?? []).includes(peerUrl))) throw new HeadsError(`a head at ${address} is a member already`, 409);
    const unstarted = members.filter((m) => !m.name);
    if (unstarted.length > 0) throw new HeadsError(`a head added before has not started yet (${(unstarted[0]!.peerURLs ?? []).join(', ')}): start it, or remove it, first`, 409);
    const [caCert, caKey] = await Promise.all([readFile(this.#pki.caCert, 'utf8'), readFile(this.#pki.caKey, 'utf8')]);
    const res = await this.#addMember(peerUrl);
    const all = (res.members ?? []).map((m) => `${m.name || name}=${(m.peerURLs ?? [])[0] ?? ''}`);
    return { name, address, initial_cluster: parseInitialCluster(all.join(',')), ca_cert: caCert, ca_key: caKey };
  }

  /**
   * etcd refuses a new member until every member has been connected for a few seconds ("unhealthy
   * cluster": a head that just joined): asked again for up to ADD_RETRY_MS.
   */
  async #addMember(peerUrl: string): Promise<{ members?: RawMember[] }> {
    const until = Date.now() + ADD_RETRY_MS;
    for (;;) {
      try {
        return await this.#client.call<{ members?: RawMember[] }>('/v3/cluster/member/add', { peerURLs: [peerUrl] });
      } catch (err) {
        if (!/unhealthy cluster/.test((err as Error).message) || Date.now() > until) throw err;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  /**
   * Removes head `name`. Refused when it is the last one, or when the heads left would be fewer healthy
   * ones than their quorum (a majority of them): then the cluster would stop taking writes.
   */
  async remove(name: string, self: string | null): Promise<Head> {
    const heads = await this.list();
    const target = heads.find((h) => h.name === name || (!h.started && h.peer_urls.some((u) => u === `https://${name}:${ETCD_PEER_PORT}`)));
    if (!target) throw new HeadsError(`no head named ${name}`, 404);
    if (heads.length === 1) throw new HeadsError(`${name} is the only head: removing it would remove the cluster's database`, 409);
    if (self !== null && target.name === self) throw new HeadsError(`${name} is this head: remove it from another one`, 409);
    const left = heads.filter((h) => h !== target);
    const quorum = Math.floor(left.length / 2) + 1;
    const healthy = left.filter((h) => h.healthy).length;
    if (healthy < quorum) {
      throw new HeadsError(`removing ${name} would leave ${healthy} healthy of ${left.length} heads, fewer than their quorum of ${quorum}: bring the others back first`, 409);
    }
    await this.#client.call('/v3/cluster/member/remove', { ID: BigInt(`0x${target.id}`).toString() });
    return target;
  }
}

/** The client URL of a head at `address`. */
export const clientUrlOf = (address: string): string => `https://${address}:${ETCD_CLIENT_PORT}`;
