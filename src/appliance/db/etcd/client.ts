/**
 * A small etcd v3 client over etcd's own JSON gateway (grpc-gateway: `/v3/kv/range`, `/v3/kv/txn`,
 * `/v3/watch`), spoken through undici.
 *
 * Why not an npm etcd client: the one in wide use (`etcd3`) has had no release since 2023, pulls in
 * gRPC, proto loading and a retry/circuit-breaker layer of its own, and hides how long a call may take
 * when the cluster is gone. The gateway is part of every etcd since 3.3 (`/v3/` from 3.4 on, the Debian
 * bookworm version), needs nothing but HTTP, and lets us put one bounded deadline on every call and name
 * the endpoints in the error an admin sees. We use five calls of it; that is all this module is.
 */

import { Agent, request, type Dispatcher } from 'undici';
import { BusyError } from '../errors.js';

/** etcd cannot be reached, or does not answer in time (no quorum, stopped, wrong address). */
export class EtcdUnavailableError extends BusyError {}

/** etcd answered and refused the request (a bad request: asking another member would not help). */
class EtcdRefusedError extends Error {}

export interface EtcdTls {
  /** PEM CA bundle that signed the etcd servers' certificates. */
  ca?: string | Buffer;
  /** PEM client certificate and key, when etcd requires client certificates. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface EtcdClientOptions {
  /** Client URLs, e.g. `['https://10.0.0.1:2379', 'https://10.0.0.2:2379']`; tried in turn. */
  endpoints: readonly string[];
  tls?: EtcdTls;
  /** Deadline of one call across every endpoint, in milliseconds (default 5000). */
  timeoutMs?: number;
}

export interface KeyValue {
  key: string;
  value: string;
  modRevision: number;
}

export type TxnOp = { put: { key: string; value: string } } | { deleteRange: { key: string; rangeEnd?: string } };

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  value: string;
  modRevision: number;
}

interface RawKv {
  key?: string;
  value?: string;
  mod_revision?: string;
}

interface RawHeader {
  revision?: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');
const num = (s: string | undefined): number => (s === undefined ? 0 : Number(s));

/** The end of the range of keys starting with `prefix` (etcd's convention: the prefix with its last byte + 1). */
export function prefixEnd(prefix: string): string {
  // Our prefixes are ASCII and end in `/`, so bumping the last character is bumping the last byte.
  if (!/^[\x20-\x7e]+$/.test(prefix)) throw new Error(`etcd key prefix must be printable ASCII: ${JSON.stringify(prefix)}`);
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** Checks and normalizes the endpoint URLs: http(s), host and port only. */
export function parseEndpoints(endpoints: readonly string[]): string[] {
  if (endpoints.length === 0) throw new Error('no etcd endpoints given');
  return endpoints.map((e) => {
    let url: URL;
    try {
      url = new URL(e);
    } catch {
      throw new Error(`invalid etcd endpoint ${JSON.stringify(e)}: expected a URL such as https://10.0.0.1:2379`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || (url.pathname !== '/' && url.pathname !== '') || url.search) {
      throw new Error(`invalid etcd endpoint ${JSON.stringify(e)}: expected http(s)://HOST:PORT`);
    }
    return url.origin;
  });
}

export class EtcdClient {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  readonly #agent: Agent;
  /** The endpoint that answered last: tried first next time. */
  #preferred = 0;
  #closed = false;

  constructor(options: EtcdClientOptions) {
    this.endpoints = parseEndpoints(options.endpoints);
    this.timeoutMs = options.timeoutMs ?? 5000;
    const tls = options.tls ?? {};
    this.#agent = new Agent({
      connect: { ca: tls.ca, cert: tls.cert, key: tls.key, timeout: Math.min(this.timeoutMs, 3000) },
      keepAliveTimeout: 30_000,
    });
  }

  /** `endpoints` joined for messages. */
  get where(): string {
    return this.endpoints.join(', ');
  }

  /** One unary gateway call, trying each endpoint until one answers, within `timeoutMs` overall (default: the client's). */
  async call<T>(path: string, body: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    if (this.#closed) throw new Error('etcd client is closed');
    const deadline = AbortSignal.timeout(timeoutMs);
    const payload = JSON.stringify(body);
    let lastError: unknown;
    for (let i = 0; i < this.endpoints.length; i++) {
      const index = (this.#preferred + i) % this.endpoints.length;
      try {
        const res = await request(`${this.endpoints[index]}${path}`, {
          method: 'POST',
          body: payload,
          headers: { 'content-type': 'application/json' },
          dispatcher: this.#agent,
          signal: deadline,
        });
        const text = await res.body.text();
        if (res.statusCode !== 200) {
          const message = (safeJson(text) as { message?: string; error?: string } | undefined)?.message ?? text.slice(0, 200);
          // etcd answered but could not serve (e.g. no leader): another member may.
          if (res.statusCode >= 500) {
            lastError = new Error(`${this.endpoints[index]}: ${message}`);
            continue;
          }
          throw new EtcdRefusedError(`etcd refused ${path}: ${message}`);
        }
        this.#preferred = index;
        return JSON.parse(text) as T;
      } catch (err) {
        if (err instanceof EtcdRefusedError) throw err;
        lastError = err;
        if (deadline.aborted) break;
      }
    }
    const cause = deadline.aborted ? `no answer within ${timeoutMs} ms` : ((lastError as Error)?.message ?? String(lastError));
    throw new EtcdUnavailableError(`etcd unavailable (endpoints ${this.where}): ${cause}`);
  }

  /**
   * Keys from `key` up to `rangeEnd` (or `key` alone), at `revision` (0: the latest); paged, so any size.
   * `timeoutMs` bounds each page's call (default: the client's deadline).
   */
  async range(key: string, options: { rangeEnd?: string; revision?: number; pageSize?: number; timeoutMs?: number } = {}): Promise<{ kvs: KeyValue[]; revision: number }> {
    const kvs: KeyValue[] = [];
    let from = key;
    let revision = options.revision ?? 0;
    for (;;) {
      const res = await this.call<{ header?: RawHeader; kvs?: RawKv[]; more?: boolean }>('/v3/kv/range', {
        key: b64(from),
        ...(options.rangeEnd !== undefined ? { range_end: b64(options.rangeEnd) } : {}),
        ...(revision ? { revision: String(revision) } : {}),
        ...(options.rangeEnd !== undefined ? { limit: String(options.pageSize ?? 2000) } : {}),
      }, options.timeoutMs);
      // Every page is read at the first page's revision: one consistent snapshot.
      revision ||= num(res.header?.revision);
      for (const kv of res.kvs ?? []) kvs.push({ key: unb64(kv.key), value: unb64(kv.value), modRevision: num(kv.mod_revision) });
      if (!res.more || !res.kvs?.length) return { kvs, revision };
      from = `${kvs.at(-1)!.key}\0`;
    }
  }

  /**
   * One transaction: when `key`'s mod revision equals `modRevision` (0: the key does not exist), apply
   * `ops` and return the new revision; otherwise apply nothing and return undefined.
   */
  async txnIfModRevision(key: string, modRevision: number, ops: readonly TxnOp[]): Promise<number | undefined> {
    const res = await this.call<{ header?: RawHeader; succeeded?: boolean }>('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(modRevision) }],
      success: ops.map(rawOp),
    });
    return res.succeeded ? num(res.header?.revision) : undefined;
  }

  /** Applies `ops` unconditionally in one transaction; returns the new revision. */
  async txn(ops: readonly TxnOp[]): Promise<number> {
    const res = await this.call<{ header?: RawHeader }>('/v3/kv/txn', { success: ops.map(rawOp) });
    return num(res.header?.revision);
  }

  /**
   * Watches keys under `prefix` from `startRevision` on. `onEvents` gets each revision's events together,
   * in order; `onEnd` is called once when the stream ends for any reason (`compacted` when the history
   * asked for is gone). Returns the function that stops watching.
   */
  watch(
    prefix: string,
    startRevision: number,
    onEvents: (revision: number, events: WatchEvent[]) => void,
    onEnd: (reason: { compacted: boolean; error?: unknown }) => void,
  ): () => void {
    const abort = new AbortController();
    let ended = false;
    const end = (reason: { compacted: boolean; error?: unknown }) => {
      if (ended) return;
      ended = true;
      onEnd(reason);
    };
    void (async () => {
      const endpoint = this.endpoints[this.#preferred]!;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(`${endpoint}/v3/watch`, {
          method: 'POST',
          body: JSON.stringify({ create_request: { key: b64(prefix), range_end: b64(prefixEnd(prefix)), start_revision: String(startRevision) } }),
          headers: { 'content-type': 'application/json' },
          dispatcher: this.#agent,
          signal: abort.signal,
          bodyTimeout: 0,
          headersTimeout: this.timeoutMs,
        });
      } catch (error) {
        this.#preferred = (this.#preferred + 1) % this.endpoints.length;
        end({ compacted: false, error });
        return;
      }
      let buffered = '';
      try {
        for await (const chunk of res.body) {
          buffered += (chunk as Buffer).toString('utf8');
          let newline: number;
          while ((newline = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (line === '') continue;
            const message = safeJson(line) as { result?: WatchResult; error?: { message?: string } } | undefined;
            const result = message?.result;
            if (!result) {
              end({ compacted: false, error: new Error(message?.error?.message ?? 'watch stream broken') });
              abort.abort();
              return;
            }
            if (result.compact_revision && num(result.compact_revision) > 0) {
              end({ compacted: true });
              abort.abort();
              return;
            }
            if (result.canceled) {
              end({ compacted: false, error: new Error(result.cancel_reason ?? 'watch canceled') });
              abort.abort();
              return;
            }
            deliver(result, onEvents);
          }
        }
        end({ compacted: false });
      } catch (error) {
        end({ compacted: false, error });
      }
    })();
    return () => {
      ended = true;
      abort.abort();
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#agent.destroy();
  }
}

interface WatchResult {
  header?: RawHeader;
  events?: Array<{ type?: string; kv?: RawKv }>;
  compact_revision?: string;
  canceled?: boolean;
  cancel_reason?: string;
}

/** Groups a watch response's events by revision (one etcd transaction each), in order. */
function deliver(result: WatchResult, onEvents: (revision: number, events: WatchEvent[]) => void): void {
  let revision = 0;
  let group: WatchEvent[] = [];
  for (const e of result.events ?? []) {
    const event: WatchEvent = {
      type: e.type === 'DELETE' ? 'delete' : 'put',
      key: unb64(e.kv?.key),
      value: unb64(e.kv?.value),
      modRevision: num(e.kv?.mod_revision),
    };
    if (event.modRevision !== revision && group.length > 0) {
      onEvents(revision, group);
      group = [];
    }
    revision = event.modRevision;
    group.push(event);
  }
  if (group.length > 0) onEvents(revision, group);
}

function rawOp(op: TxnOp): unknown {
  if ('put' in op) return { request_put: { key: b64(op.put.key), value: b64(op.put.value) } };
  return {
    request_delete_range: {
      key: b64(op.deleteRange.key),
      ...(op.deleteRange.rangeEnd !== undefined ? { range_end: b64(op.deleteRange.rangeEnd) } : {}),
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
