/**
 * The store on etcd: several head nodes share one cluster database.
 *
 * How it works: etcd holds the data; each EtcdStore keeps a local replica of it — the SQLite store, in
 * memory — and runs every query and every write's rules (validation, uniqueness of names, MACs and IPs,
 * references, attribute resolution, listing order) there, so the two backends cannot drift apart in
 * behaviour. A write runs as a replica transaction; the rows it changed (captured by triggers, rows.ts)
 * are committed to etcd with a compare-and-swap on the head key's mod revision. If another head wrote
 * first, the compare fails, the local transaction is rolled back, the replica catches up and the write runs
 * again: writers on all heads are serialized, so the replica's checks hold across heads. A watch on the
 * prefix copies other heads' commits into the replica and tells `watch` listeners; every read first asks
 * etcd for the head key (a linearizable read) and waits until the replica has caught up with it.
 * A head cut off from etcd's quorum (its link down) answers reads from the replica as it is, within
 * READ_WAIT_MS, and refuses writes with EtcdUnavailableError (see #syncForRead).
 *
 * Key layout (prefix P, default `/cw/v1/`), values JSON:
 *   P head                        {"gen": GEN, "schema": N}: the current generation of the data and the
 *                                 schema version; its mod revision is the version every write compares.
 *   P g/GEN/pack/NNNNNN           the generation's rows as it was made: [[TABLE, KEY, {column: value}], ...],
 *                                 each pack within one request's size limit.
 *   P g/GEN/row/TABLE/KEY         a row written since: {column: value}, or null once deleted (the packs may
 *                                 still hold it). TABLE is admins, settings, attribs, nodes, node_macs, nets,
 *                                 images, bootconfigs, repos, distros or node_secrets; KEY is the row's
 *                                 primary key, URI-encoded.
 *   A generation's state is its packs with its rows laid over them.
 *
 * Atomicity within etcd's limits, on any etcd (defaults: 128 operations and 1.5 MiB per request): a
 * change that fits (MAX_TXN_OPS rows, MAX_TXN_BYTES) is one txn — compare head, put its rows in GEN, put
 * head. A bigger one (a 10,000-node cluster.conf) writes the whole new state as the packs of a fresh
 * generation P g/NEWGEN/ in as many requests as needed — invisible, nothing points there — and then one
 * small txn compares the head and points it at NEWGEN: all or nothing, and readers never see a half state.
 * The loser of a race deletes its staged generation; the winner deletes the generations before its own.
 * Packs rather than a key per row: 10,000 nodes are 20,000 rows, which as keys would take 200 requests of
 * 100 operations, as packs of 700 KiB about 8.
 * This needs no raised limits, so it works on an external etcd as well as on members we run.
 */

import { randomBytes } from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ClusterConf } from '../../../lib/clusterconf.js';
import type { BootConfig, BootFile, CollectionInputs, CollectionName, CollectionTypes, Image } from '../collections.js';
import { BusyError } from '../errors.js';
import { MIGRATIONS } from '../migrations/index.js';
import type { Node, NodeInput, ResolvedAttributes } from '../nodes.js';
import { openMemorySqliteStore, openSqliteStore, type SqliteStore } from '../sqlite/store.js';
import type { AddAdminOptions, Admin, ClusterConfResult, CommitInfo, NewAdmin, SettingKey, Store, StoreHandle } from '../store.js';
import { EtcdClient, EtcdUnavailableError, prefixEnd, type EtcdTls, type TxnOp, type WatchEvent } from './client.js';
import { ReplicaRows, type RowChange } from './rows.js';

export { EtcdUnavailableError } from './client.js';

/** Rows per transaction, below etcd's default --max-txn-ops of 128 (the head put and margin). */
const MAX_TXN_OPS = 100;
/** Bytes of keys and values per request, well below the default --max-request-bytes of 1.5 MiB after base64. */
const MAX_TXN_BYTES = 700 * 1024;
/** Staging requests in flight at once during a generation switch. */
const STAGING_PARALLEL = 4;
/** Tries of one write when other heads keep committing first. */
const MAX_ATTEMPTS = 50;
/** How long a read waits for the watch to bring the replica up to date before it reloads it from etcd. */
const CATCH_UP_MS = 1000;
/**
 * How long a read waits for etcd to say how new the data is before it answers from the replica as it is.
 * A member without a quorum holds a linearizable read until its own request timeout (7 s), and a node's
 * boot script takes several reads.
 */
const READ_WAIT_MS = 1500;
/**
 * While etcd is away: the deadline of the check a write makes before it tries (so it is refused quickly),
 * and the least time between two checks that reads start in the background.
 */
const PROBE_MS = 1000;

const SCHEMA = MIGRATIONS.at(-1)?.version ?? 0;

export interface EtcdStoreOptions {
  /** Client URLs of the etcd cluster, e.g. `['https://10.0.0.1:2379']`. */
  endpoints: readonly string[];
  tls?: EtcdTls;
  /** Key prefix of this cluster's data (default `/cw/v1/`); must end in `/`. */
  prefix?: string;
  /** Deadline of one etcd call, in milliseconds (default 5000). */
  timeoutMs?: number;
  now?: () => Date;
  /**
   * A SQLite database (a head's `db/cw.sqlite`, or one restored from a backup) whose data becomes the
   * cluster's when this store finds etcd holding none; ignored once etcd has data.
   */
  seed?: string;
}

/** What changed, for `watch` listeners. */
export interface StoreChange {
  /** The etcd revision of the change. */
  revision: number;
  /** `local`: written through this store; `remote`: by another store (another head); `reload`: the replica was reloaded. */
  origin: 'local' | 'remote' | 'reload';
  /** Tables whose rows changed (every one on a reload). */
  tables: string[];
  /** Whether what dhcpd.conf and DNS names come from changed (as CommitInfo.dhcp). */
  dhcp: boolean;
}

interface Head {
  gen: string;
  schema: number;
}

/** The head moved before our compare-and-swap: catch up and run the write again. */
class StaleBase extends Error {}

export class EtcdStore implements StoreHandle {
  readonly backend = 'etcd';
  /** Rows this store carried from its seed database into an empty etcd (null: it found data there, or had no seed). */
  seeded: number | null = null;
  #seed: string | undefined;
  readonly client: EtcdClient;
  readonly prefix: string;
  readonly #replica: SqliteStore;
  readonly #rows: ReplicaRows;
  readonly #headKey: string;
  readonly #insideTransaction = new AsyncLocalStorage<{ active: boolean }>();
  readonly #watchers = new Set<(change: StoreChange) => void>();
  readonly #dhcpListeners = new Set<(change: CommitInfo) => void>();
  /** The head's mod revision the replica reflects, and the generation it holds. */
  #applied = 0;
  #gen = '';
  /** The etcd revision up to which the replica has seen everything. */
  #seen = 0;
  #stopWatch: (() => void) | undefined;
  #watchToken = 0;
  #watchFailures = 0;
  #headInFlight: Promise<number> | undefined;
  #headNext: Promise<number> | undefined;
  /** Why etcd was last found away (no quorum, stopped), until it answers again: reads use the replica as it is. */
  #unreachable: EtcdUnavailableError | undefined;
  #probing: Promise<void> | undefined;
  #lastProbe = -Infinity;
  #applying: Promise<void> = Promise.resolve();
  #reloading: Promise<void> | undefined;
  #caughtUp = new Set<() => void>();
  #closed = false;
  /** The write whose transaction is running: the replica's onCommit marks it DHCP-relevant (for `watch`). */
  #running: { dhcp: boolean } | undefined;

  private constructor(client: EtcdClient, prefix: string, replica: SqliteStore, rows: ReplicaRows) {
    this.client = client;
    this.prefix = prefix;
    this.#replica = replica;
    this.#rows = rows;
    this.#headKey = `${prefix}head`;
    // The replica reports right after its commit, before the next transaction starts: the running write's.
    replica.onCommit(() => {
      if (this.#running) this.#running.dhcp = true;
    });
  }

  /** Connects, loads (or, on an empty etcd, initializes) the data and starts watching. */
  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const prefix = options.prefix ?? '/cw/v1/';
    if (!/^\/[A-Za-z0-9._/-]*\/$/.test(prefix)) throw new Error(`invalid etcd key prefix ${JSON.stringify(prefix)}: use /NAME/.../`);
    const client = new EtcdClient({ endpoints: options.endpoints, tls: options.tls, timeoutMs: options.timeoutMs });
    const replica = openMemorySqliteStore({ now: options.now });
    const rows = await replica.exclusive((db) => new ReplicaRows(db));
    const store = new EtcdStore(client, prefix, replica, rows);
    store.#seed = options.seed;
    try {
      await store.#reload();
      return store;
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  // --- Replication

  #genPrefix(gen: string): string {
    return `${this.prefix}g/${gen}/`;
  }

  #rowKey(gen: string, table: string, key: string): string {
    return `${this.#genPrefix(gen)}row/${table}/${encodeURIComponent(key)}`;
  }

  /** Splits a row key of generation `gen` into table and primary key; undefined for any other key. */
  #parseRowKey(gen: string, key: string): { table: string; key: string } | undefined {
    const rowPrefix = `${this.#genPrefix(gen)}row/`;
    if (!key.startsWith(rowPrefix)) return undefined;
    const rest = key.slice(rowPrefix.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) return undefined;
    return { table: rest.slice(0, slash), key: decodeURIComponent(rest.slice(slash + 1)) };
  }

  /** A row key's value: the row, or undefined for a deleted one (`null`, or the key deleted). */
  #rowValue(value: string | undefined): Record<string, unknown> | undefined {
    if (value === undefined) return undefined;
    return (JSON.parse(value) as Record<string, unknown> | null) ?? undefined;
  }

  /** Puts that write `rows` as packs of generation `gen`, each within one request's limits. */
  #packOps(gen: string, rows: readonly RowChange[]): TxnOp[] {
    const ops: TxnOp[] = [];
    let pack: string[] = [];
    let bytes = 0;
    const flush = () => {
      if (pack.length === 0) return;
      ops.push({ put: { key: `${this.#genPrefix(gen)}pack/${String(ops.length).padStart(6, '0')}`, value: `[${pack.join(',')}]` } });
      pack = [];
      bytes = 0;
    };
    for (const r of rows) {
      const entry = JSON.stringify([r.table, r.key, r.row]);
      const size = Buffer.byteLength(entry) + 1;
      if (bytes + size > MAX_TXN_BYTES) flush();
      pack.push(entry);
      bytes += size;
    }
    flush();
    return ops;
  }

  #parseHead(value: string): Head {
    const head = JSON.parse(value) as Partial<Head>;
    if (typeof head.gen !== 'string' || !/^[0-9a-z-]+$/.test(head.gen) || typeof head.schema !== 'number') {
      throw new Error(`etcd key ${this.#headKey} is not a cw-headnode head record`);
    }
    if (head.schema !== SCHEMA) {
      throw new Error(`the cluster database in etcd has schema version ${head.schema}, this cw-headnode uses ${SCHEMA}: run the same release on every head`);
    }
    return head as Head;
  }

  /** Loads the whole current generation into the replica (initializing an empty etcd), and (re)starts the watch. */
  #reload(): Promise<void> {
    this.#reloading ??= (async () => {
      try {
        for (;;) {
          const { kvs, revision } = await this.client.range(this.#headKey);
          const head = kvs[0];
          if (!head) {
            // Whether ours or another head's initialization won, load what is there now.
            await this.#initialize();
            continue;
          }
          const { gen } = this.#parseHead(head.value);
          const data = await this.client.range(this.#genPrefix(gen), { rangeEnd: prefixEnd(this.#genPrefix(gen)), revision });
          // Packs sort before rows (`pack/` < `row/`): the rows changed since the generation was made win.
          const rows = new Map<string, RowChange>();
          const packPrefix = `${this.#genPrefix(gen)}pack/`;
          for (const kv of data.kvs) {
            if (kv.key.startsWith(packPrefix)) {
              for (const [table, key, row] of JSON.parse(kv.value) as Array<[string, string, Record<string, unknown>]>) {
                rows.set(`${table}\0${key}`, { table, key, row });
              }
              continue;
            }
            const at = this.#parseRowKey(gen, kv.key);
            if (at) rows.set(`${at.table}\0${at.key}`, { ...at, row: this.#rowValue(kv.value) });
          }
          const changes = [...rows.values()].filter((r) => r.row !== undefined);
          await this.#replica.exclusive(() => this.#rows.apply(changes, { replaceAll: true }));
          this.#applied = head.modRevision;
          this.#gen = gen;
          this.#seen = revision;
          this.#startWatch(revision + 1);
          this.#notifyCaughtUp();
          this.#emit({ revision, origin: 'reload', tables: this.#rows.tableNames, dhcp: true });
          this.#emitDhcp();
          return;
        }
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  /**
   * Writes the first generation, unless another head was first: the seed database's rows (migrated to
   * this release's schema first), or else the fresh replica's (DefaultAttribs).
   */
  async #initialize(): Promise<boolean> {
    const gen = newGenId(0);
    const rows = this.#seed === undefined ? await this.#replica.exclusive(() => this.#rows.allRows()) : await rowsOfDatabase(this.#seed);
    const ops = this.#packOps(gen, rows);
    ops.push({ put: { key: this.#headKey, value: JSON.stringify({ gen, schema: SCHEMA } satisfies Head) } });
    const won = (await this.client.txnIfModRevision(this.#headKey, 0, ops)) !== undefined;
    if (won && this.#seed !== undefined) this.seeded = rows.length;
    return won;
  }

  #startWatch(fromRevision: number): void {
    this.#stopWatch?.();
    if (this.#closed) return;
    const token = ++this.#watchToken;
    this.#stopWatch = this.client.watch(
      this.prefix,
      fromRevision,
      (revision, events) => {
        if (token !== this.#watchToken) return;
        this.#watchFailures = 0;
        this.#applying = this.#applying.then(() => this.#applyRemote(revision, events)).catch(() => this.#reload().catch(() => undefined));
      },
      ({ compacted }) => {
        if (token !== this.#watchToken || this.#closed) return;
        // The history we need is gone: start over from a full copy. Otherwise resume where we were, backing
        // off while etcd stays away (reads and writes report that themselves).
        if (compacted) void this.#reload().catch(() => undefined);
        else {
          const delay = Math.min(2000, 100 * 2 ** this.#watchFailures++);
          setTimeout(() => token === this.#watchToken && !this.#closed && this.#startWatch(this.#seen + 1), delay).unref();
        }
      },
    );
  }

  /** Copies one etcd revision made elsewhere into the replica. */
  async #applyRemote(revision: number, events: WatchEvent[]): Promise<void> {
    if (this.#closed) return;
    const headEvent = events.find((e) => e.key === this.#headKey);
    if (headEvent && headEvent.type === 'put') {
      const { gen } = this.#parseHead(headEvent.value);
      // Under the lock: a switch of our own may be committing and set #gen just after etcd answered.
      if (await this.#replica.exclusive(() => gen !== this.#gen && revision > this.#seen)) {
        await this.#reload();
        return;
      }
    }
    const genPrefix = this.#genPrefix(this.#gen);
    if (!headEvent && !events.some((e) => e.key.startsWith(genPrefix))) {
      // Another head staging a generation, or cleaning up: nothing the replica holds.
      this.#seen = Math.max(this.#seen, revision);
      return;
    }
    const changes: RowChange[] = [];
    const gen = this.#gen;
    const outcome = await this.#replica.exclusive(() => {
      // Checked under the replica's lock: a commit of our own may have moved `seen` past this revision.
      if (revision <= this.#seen || gen !== this.#gen) return undefined;
      for (const e of events) {
        const at = this.#parseRowKey(gen, e.key);
        if (at) changes.push({ ...at, row: e.type === 'put' ? this.#rowValue(e.value) : undefined });
      }
      const dhcp = changes.some((c) => touchesDhcp(c, this.#rows.row(c.table, c.key)));
      if (changes.length > 0) this.#rows.apply(changes);
      this.#seen = revision;
      if (headEvent) this.#applied = headEvent.modRevision;
      return { dhcp };
    });
    if (!outcome) return;
    this.#notifyCaughtUp();
    if (changes.length > 0) {
      this.#emit({ revision, origin: 'remote', tables: [...new Set(changes.map((c) => c.table))], dhcp: outcome.dhcp });
      if (outcome.dhcp) this.#emitDhcp();
    }
  }

  #notifyCaughtUp(): void {
    for (const wake of [...this.#caughtUp]) wake();
  }

  /**
   * Makes the replica at least as new as etcd is now (linearizable: one read of the head key), waiting
   * for the watch, or reloading when it does not bring the change within CATCH_UP_MS.
   */
  async #sync(): Promise<void> {
    this.#checkUsable();
    await this.#catchUp(await this.#headRevision());
  }

  #checkUsable(): void {
    if (this.#closed) throw new Error('store is closed');
    if (this.#insideTransaction.getStore()?.active) throw new Error('store used inside its own transaction; use the transaction argument');
  }

  /** Waits until the replica has the head's mod revision `target`, reloading it when the watch does not bring it in time. */
  async #catchUp(target: number): Promise<void> {
    if (target === this.#applied) return;
    if (target > this.#applied) {
      await new Promise<void>((resolve) => {
        const check = () => {
          if (this.#applied >= target || this.#closed) done();
        };
        const done = () => {
          clearTimeout(timer);
          this.#caughtUp.delete(check);
          resolve();
        };
        const timer = setTimeout(done, CATCH_UP_MS);
        this.#caughtUp.add(check);
        check();
      });
      if (this.#applied >= target) return;
    }
    // The watch is late or broken, or etcd went back in time (restored): copy everything again.
    await this.#reload();
  }

  /**
   * The head's mod revision as etcd has it now. Callers that come while a request is out share the next
   * one, which starts after they called (so it still answers "now" for each of them): 64 concurrent reads
   * cost two round trips, not 64.
   */
  #headRevision(): Promise<number> {
    if (!this.#headInFlight) {
      this.#headInFlight = this.client
        .range(this.#headKey)
        .then(({ kvs }) => {
          this.#unreachable = undefined;
          return kvs[0]?.modRevision ?? 0;
        })
        .catch((err: unknown) => {
          if (err instanceof EtcdUnavailableError) this.#unreachable = err;
          throw err;
        })
        .finally(() => {
          this.#headInFlight = undefined;
        });
      return this.#headInFlight;
    }
    this.#headNext ??= this.#headInFlight
      .catch(() => undefined)
      .then(() => {
        this.#headNext = undefined;
        return this.#headRevision();
      });
    return this.#headNext;
  }

  async #read<T>(op: (s: Store) => Promise<T>): Promise<T> {
    await this.#syncForRead();
    return op(this.#replica);
  }

  /**
   * As #sync, as far as etcd can answer within READ_WAIT_MS: when it cannot (this head is cut off from the
   * others and its member has no quorum, or etcd is stopped) the read answers from the replica as it is —
   * everything the watch copied in up to the cut — and, until etcd answers again, later reads do so at once.
   * Stale answers are acceptable here, not wrong ones: a cut-off head keeps booting its nodes and listing
   * what it has instead of refusing everything, and what it serves was the cluster's data a moment ago.
   * Nothing is written from them: every write reads the head linearizably first and commits with a
   * compare-and-swap on the head's mod revision (#write), so a write can neither start from a stale
   * replica nor commit over a newer head; a caller that read stale data and then writes meets the same
   * checks as one that raced another head's write.
   */
  async #syncForRead(): Promise<void> {
    this.#checkUsable();
    if (this.#unreachable) {
      this.#probeLater();
      // Through the event loop all the same: a caller reading in a loop must not starve the I/O (the
      // check above, other heads' changes) that ends this state.
      await new Promise((resolve) => setImmediate(resolve));
      return;
    }
    const head = this.#headRevision();
    const late = readWait(READ_WAIT_MS);
    try {
      const target = await Promise.race([head, late.promise]);
      if (target === undefined) {
        // The request goes on and clears this when it is answered after all.
        this.#unreachable ??= new EtcdUnavailableError(`etcd unavailable (endpoints ${this.client.where}): no answer within ${READ_WAIT_MS} ms`);
        return;
      }
      await this.#catchUp(target);
    } catch (err) {
      if (!(err instanceof EtcdUnavailableError)) throw err;
      this.#unreachable ??= err;
    } finally {
      late.cancel();
    }
  }

  /** Asks etcd again in the background (one check at a time, at most every PROBE_MS), so reads are current again soon after it answers. */
  #probeLater(): void {
    if (this.#probing || performance.now() - this.#lastProbe < PROBE_MS) return;
    this.#probing = this.#probe()
      .catch(() => undefined)
      .finally(() => {
        this.#probing = undefined;
      });
  }

  /** One linearizable read of the head within PROBE_MS: clears `#unreachable` when answered, sets it (and throws) when not. */
  async #probe(): Promise<void> {
    this.#lastProbe = performance.now();
    try {
      await this.client.range(this.#headKey, { timeoutMs: PROBE_MS });
      this.#unreachable = undefined;
    } catch (err) {
      if (err instanceof EtcdUnavailableError) this.#unreachable = err;
      throw err;
    }
  }

  /** Runs `op` on the replica in a transaction and commits its row changes to etcd, again if another head was first. */
  async #write<T>(op: (tx: Store) => Promise<T> | T): Promise<T> {
    try {
      // Known to be away: a short check first, so a cut-off head refuses at once rather than after the full deadline.
      if (this.#unreachable) await this.#probe();
      return await this.#writeOnce(op);
    } catch (err) {
      if (!(err instanceof EtcdUnavailableError)) throw err;
      this.#unreachable ??= err;
      throw new EtcdUnavailableError(`${err.message}; this head takes no changes until etcd answers again (it serves reads from the copy it has)`);
    }
  }

  /** #write's tries, without the refusal while etcd is away. */
  async #writeOnce<T>(op: (tx: Store) => Promise<T> | T): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await this.#sync();
      const state = { dhcp: false };
      let committed: { revision: number; tables: string[]; dhcp: boolean } | undefined;
      try {
        // A mutable flag, not mere presence: timers created in the body inherit the context and outlive it.
        const context = { active: true };
        let result: T;
        try {
          result = await this.#insideTransaction.run(context, () =>
            this.#replica.transaction(async (tx) => {
              this.#running = state;
              // Read under the replica's lock: the revision its data is at, even if a copy-in ran since #sync.
              const base = this.#applied;
              const value = await op(asEtcdView(tx));
              const changes = this.#rows.takeChanges();
              if (changes.length > 0) {
                const revision = await this.#commit(changes, base);
                committed = { revision, tables: [...new Set(changes.map((c) => c.table))], dhcp: false };
              }
              return value;
            }),
          );
        } finally {
          context.active = false;
        }
        if (committed) this.#emit({ ...committed, dhcp: state.dhcp, origin: 'local' });
        return result;
      } catch (err) {
        if (!(err instanceof StaleBase)) throw err;
        if (attempt >= MAX_ATTEMPTS) throw new BusyError(`other head nodes kept writing first (${MAX_ATTEMPTS} tries); try again`);
        await sleep(Math.min(100, 2 * attempt) * Math.random());
      }
    }
  }

  /** Commits captured row changes on top of head revision `base`; StaleBase when the head moved. */
  async #commit(changes: RowChange[], base: number): Promise<number> {
    const gen = this.#gen;
    // A deleted row is `null`, not a deleted key: the generation's packs may still hold it.
    const ops: TxnOp[] = changes.map((c) => ({ put: { key: this.#rowKey(gen, c.table, c.key), value: JSON.stringify(c.row ?? null) } }));
    const head = JSON.stringify({ gen, schema: SCHEMA } satisfies Head);
    if (ops.length <= MAX_TXN_OPS && opBytes(ops) <= MAX_TXN_BYTES) {
      const revision = await this.client.txnIfModRevision(this.#headKey, base, [...ops, { put: { key: this.#headKey, value: head } }]);
      if (revision === undefined) throw new StaleBase();
      this.#seen = this.#applied = revision;
      return revision;
    }
    return this.#switchGeneration(base);
  }

  /** Writes the replica's whole state (with the open transaction's changes) as a new generation and points the head at it. */
  async #switchGeneration(base: number): Promise<number> {
    const gen = newGenId(base);
    const staged = this.#genPrefix(gen);
    const ops = this.#packOps(gen, this.#rows.allRows());
    try {
      const batches = chunk(ops);
      for (let i = 0; i < batches.length; i += STAGING_PARALLEL) {
        await Promise.all(batches.slice(i, i + STAGING_PARALLEL).map((b) => this.client.txn(b)));
      }
      const revision = await this.client.txnIfModRevision(this.#headKey, base, [
        { put: { key: this.#headKey, value: JSON.stringify({ gen, schema: SCHEMA } satisfies Head) } },
      ]);
      if (revision === undefined) throw new StaleBase();
      this.#gen = gen;
      this.#seen = this.#applied = revision;
      // Older generations (the one replaced, any left by a head that died while staging) go; newer ones are
      // being staged by heads that started after this switch and are left alone.
      await this.client.txn([{ deleteRange: { key: `${this.prefix}g/`, rangeEnd: staged } }]).catch(() => undefined);
      return revision;
    } catch (err) {
      if (this.#gen !== gen) await this.client.txn([{ deleteRange: { key: staged, rangeEnd: prefixEnd(staged) } }]).catch(() => undefined);
      throw err;
    }
  }

  #emitDhcp(): void {
    for (const listener of [...this.#dhcpListeners]) safeCall(() => listener({ dhcp: true }));
  }

  #emit(change: StoreChange): void {
    for (const listener of [...this.#watchers]) safeCall(() => listener(change));
  }

  /**
   * Calls `listener` after every change of the data, made through this store or any other on the same
   * etcd (another head), once the replica has it. Returns the function that removes the listener.
   * Example: `const off = store.watch((c) => { if (c.dhcp) renderDhcpd(); })`
   */
  watch(listener: (change: StoreChange) => void): () => void {
    this.#watchers.add(listener);
    return () => {
      this.#watchers.delete(listener);
    };
  }

  // --- Store

  listAdmins(): Promise<Admin[]> {
    return this.#read((s) => s.listAdmins());
  }
  getAdmin(name: string): Promise<Admin | undefined> {
    return this.#read((s) => s.getAdmin(name));
  }
  addAdmin(admin: NewAdmin, options?: AddAdminOptions): Promise<Admin> {
    return this.#write((tx) => tx.addAdmin(admin, options));
  }
  removeAdmin(name: string): Promise<boolean> {
    return this.#write((tx) => tx.removeAdmin(name));
  }
  getSetting(key: SettingKey): Promise<string | undefined> {
    return this.#read((s) => s.getSetting(key));
  }
  setSetting(key: SettingKey, value: string): Promise<void> {
    return this.#write((tx) => tx.setSetting(key, value));
  }
  deleteSetting(key: SettingKey): Promise<boolean> {
    return this.#write((tx) => tx.deleteSetting(key));
  }
  list<K extends CollectionName>(kind: K): Promise<Array<CollectionTypes[K]>> {
    return this.#read((s) => s.list(kind));
  }
  get<K extends CollectionName>(kind: K, id: string): Promise<CollectionTypes[K] | undefined> {
    return this.#read((s) => s.get(kind, id));
  }
  create<K extends CollectionName>(kind: K, input: CollectionInputs[K]): Promise<CollectionTypes[K]> {
    return this.#write((tx) => tx.create(kind, input));
  }
  replace<K extends CollectionName>(kind: K, id: string, input: CollectionInputs[K]): Promise<CollectionTypes[K]> {
    return this.#write((tx) => tx.replace(kind, id, input));
  }
  update<K extends CollectionName>(kind: K, id: string, patch: CollectionInputs[K]): Promise<CollectionTypes[K]> {
    return this.#write((tx) => tx.update(kind, id, patch));
  }
  remove<K extends CollectionName>(kind: K, id: string): Promise<CollectionTypes[K]> {
    return this.#write((tx) => tx.remove(kind, id));
  }
  attachBootFile(id: string, which: 'kernel' | 'initramfs', file: BootFile, release?: string | null): Promise<BootConfig> {
    return this.#write((tx) => tx.attachBootFile(id, which, file, release));
  }
  setImageContent(id: string, content: { size: number; checksum: string }): Promise<Image> {
    return this.#write((tx) => tx.setImageContent(id, content));
  }
  listNodes(): Promise<Node[]> {
    return this.#read((s) => s.listNodes());
  }
  getNode(id: string): Promise<Node | undefined> {
    return this.#read((s) => s.getNode(id));
  }
  selectNodes(ids: string | readonly string[]): Promise<Node[]> {
    return this.#read((s) => s.selectNodes(ids));
  }
  createNodes(inputs: readonly NodeInput[]): Promise<Node[]> {
    return this.#write((tx) => tx.createNodes(inputs));
  }
  createNode(input: NodeInput): Promise<Node> {
    return this.#write((tx) => tx.createNode(input));
  }
  replaceNode(id: string, input: NodeInput): Promise<Node> {
    return this.#write((tx) => tx.replaceNode(id, input));
  }
  updateNode(id: string, patch: NodeInput): Promise<Node> {
    return this.#write((tx) => tx.updateNode(id, patch));
  }
  updateNodeAttributes(ids: string | readonly string[], change: { set?: Record<string, string>; unset?: readonly string[] }): Promise<Node[]> {
    return this.#write((tx) => tx.updateNodeAttributes(ids, change));
  }
  removeNode(id: string): Promise<Node> {
    return this.#write((tx) => tx.removeNode(id));
  }
  removeNodes(ids: string | readonly string[]): Promise<Node[]> {
    return this.#write((tx) => tx.removeNodes(ids));
  }
  setNodeStatus(id: string, status: Record<string, unknown>, seenAt: Date): Promise<Node> {
    return this.#write((tx) => tx.setNodeStatus(id, status, seenAt));
  }
  setNodeSecretHash(id: string, hash: string, issuedAt: Date): Promise<void> {
    return this.#write((tx) => tx.setNodeSecretHash(id, hash, issuedAt));
  }
  nodeSecretHash(id: string): Promise<string | undefined> {
    return this.#read((s) => s.nodeSecretHash(id));
  }
  resolveAttributes(node: Node | string): Promise<ResolvedAttributes> {
    return this.#read((s) => s.resolveAttributes(node));
  }
  applyClusterConf(conf: ClusterConf, options?: { dryRun?: boolean }): Promise<ClusterConfResult> {
    return this.#write((tx) => tx.applyClusterConf(conf, options));
  }
  clusterConf(): Promise<ClusterConf> {
    return this.#read((s) => s.clusterConf());
  }

  /** Hears DHCP-relevant commits made through this store and, once copied in, those of other heads. */
  onCommit(listener: (change: CommitInfo) => void): () => void {
    // The replica calls it as its transaction commits, still inside this store's write: outside that
    // context, so what the listener starts (dhcpd's model, read in a transaction of its own) is not taken
    // for a nested use of the store and waits for the write to end instead.
    const offLocal = this.#replica.onCommit((change) => this.#insideTransaction.exit(() => listener(change)));
    this.#dhcpListeners.add(listener);
    return () => {
      offLocal();
      this.#dhcpListeners.delete(listener);
    };
  }

  /**
   * Runs `fn` as one write (see Store.transaction). When another head commits first, the replica is
   * rolled back and brought up to date and `fn` runs again, so it must not have outside effects it
   * cannot repeat.
   */
  transaction<T>(fn: (tx: Store) => Promise<T> | T): Promise<T> {
    return this.#write(fn);
  }

  /**
   * A backup of the cluster's data: the replica, made current with etcd first (a linearizable read), as
   * one SQLite file `dest` — the same database a SQLite head has, consistent at one etcd revision (no
   * write can land in the replica while it is copied). Refused while etcd is out of reach: the copy the
   * head has may be behind the cluster's.
   */
  async snapshotTo(dest: string): Promise<void> {
    this.#checkUsable();
    await this.#syncForRead();
    if (this.#unreachable) throw new EtcdUnavailableError(`${this.#unreachable.message}; no backup is made from this head's copy, which may be behind the cluster's`);
    await this.#replica.vacuumInto(dest);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watchToken++;
    this.#stopWatch?.();
    this.#notifyCaughtUp();
    await this.#applying.catch(() => undefined);
    await this.#replica.close();
    await this.client.close();
  }
}

/** Opens the store on the etcd cluster at `endpoints`, e.g. `await openEtcdStore({ endpoints: ['https://10.0.0.1:2379'], tls: { ca } })`. */
export function openEtcdStore(options: EtcdStoreOptions): Promise<EtcdStore> {
  return EtcdStore.open(options);
}

/** The replica's transaction view, answering `backend` as the store it stands for. */
function asEtcdView(tx: Store): Store {
  return new Proxy(tx, {
    get(target, property) {
      if (property === 'backend') return 'etcd';
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Whether a row change from another head affects dhcpd.conf or DNS names (as dhcpTouched in the SQLite model). */
function touchesDhcp(change: RowChange, before: Record<string, unknown> | undefined): boolean {
  switch (change.table) {
    case 'nets':
    case 'node_macs':
      return true;
    case 'settings':
      return change.key === 'domain';
    case 'nodes': {
      const after = change.row;
      return ['idx', 'mac', 'ip'].some((col) => before?.[col] !== after?.[col]);
    }
    default:
      return false;
  }
}

/** How often readWait looks at the clock. */
const READ_WAIT_TICK_MS = 100;

/**
 * Resolves (with undefined) once a read has waited `ms` in which an answer could have been heard: time
 * this process's event loop spent blocked (a 10,000-node cluster.conf being parsed) counts for no more
 * than two ticks, so a busy head does not take its own slowness for etcd being away.
 */
function readWait(ms: number): { promise: Promise<undefined>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<undefined>((resolve) => {
    let waited = 0;
    let last = performance.now();
    const tick = () => {
      const now = performance.now();
      waited += Math.min(now - last, 2 * READ_WAIT_TICK_MS);
      last = now;
      if (waited >= ms) resolve(undefined);
      else timer = setTimeout(tick, READ_WAIT_TICK_MS);
    };
    timer = setTimeout(tick, READ_WAIT_TICK_MS);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/** A generation id that sorts by the head revision it was made from. */
function newGenId(base: number): string {
  return `${String(base).padStart(16, '0')}-${randomBytes(4).toString('hex')}`;
}

function opBytes(ops: readonly TxnOp[]): number {
  let bytes = 0;
  for (const op of ops) bytes += 'put' in op ? Buffer.byteLength(op.put.key) + Buffer.byteLength(op.put.value) : Buffer.byteLength(op.deleteRange.key);
  return bytes;
}

/** Splits puts into requests within etcd's default limits. */
function chunk(ops: readonly TxnOp[]): TxnOp[][] {
  const batches: TxnOp[][] = [];
  let current: TxnOp[] = [];
  let bytes = 0;
  for (const op of ops) {
    const size = opBytes([op]);
    if (current.length > 0 && (current.length >= MAX_TXN_OPS || bytes + size > MAX_TXN_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(op);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

function safeCall(fn: () => void): void {
  try {
    fn();
  } catch {
    // A listener's failure must not turn a committed change into an error for its caller.
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every replicated row of the SQLite database `file`, opened (and so migrated) as a head opens its own. */
async function rowsOfDatabase(file: string): Promise<RowChange[]> {
  const seed = openSqliteStore(file);
  try {
    return await seed.exclusive((db) => new ReplicaRows(db).allRows());
  } finally {
    await seed.close();
  }
}
