// The one CW API client used by every admin tool (cw-nodectl, cw-bootctl, ...).
//
// Authentication follows docs/API.md: POST /auth/challenge -> sign challengeMessage(user, nonce,
// audience) with an ssh-agent key -> POST /auth/token -> `Authorization: Bearer TOKEN`. The agent may
// hold several keys; each try costs a fresh nonce (a nonce is consumed by the first attempt).
//
// Tokens live in memory only (per process, per base URL and user). A token file would save two small
// requests and one agent signature per command, but would leave a bearer credential on disk that any
// process of the user (or a backup) could replay for an hour; the proof itself takes milliseconds.
//
// undici is loaded on the first request, not at import: `--help`, argument errors and local-only
// actions start without it.
import { Transform, pipeline, type Readable, type Writable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import type { Dispatcher } from 'undici';
import { audienceOf, challengeMessage } from '../../../lib/auth-challenge.js';
import { ExitError, errorMessage } from '../../../lib/errors.js';
import { parsePin, type CertificatePin } from '../../../lib/tls.js';
import type { SslVerify } from './settings.js';
import { NO_AGENT_MESSAGE, SshAgentClient, type AgentIdentity } from './ssh-agent.js';

/** undici through its public entry point, imported on the first request and kept for the process. */
let undiciModule: Promise<typeof import('undici')> | undefined;
const loadUndici = (): Promise<typeof import('undici')> => (undiciModule ??= import('undici'));

/** What the client needs from an ssh-agent (SshAgentClient fits). */
export interface KeyAgent {
  readonly socketPath?: string;
  requireIdentities(): Promise<AgentIdentity[]>;
  sign(key: AgentIdentity, data: Buffer): Promise<Buffer>;
}

export interface CachedToken {
  token: string;
  /** ms since the epoch after which the token is not used again. */
  expiresAt: number;
}

/** Tokens by `baseUrl + user`; the default is one map for the whole process. */
export type TokenCache = Map<string, CachedToken>;

const processTokens: TokenCache = new Map();

/** Forgets every token cached by this process. */
export function forgetTokens(): void {
  processTokens.clear();
}

export interface ApiClientOptions {
  /** Normalized API base, e.g. `https://head/api/v1` (see normalizeBaseUrl in settings.ts). */
  baseUrl: string;
  /** The admin name to authenticate as (settings' `client.authuser`). */
  user: string;
  /**
   * Where that name was set, for the refusal's advice, e.g. `client.authuser in /root/.cw/settings.ini`
   * or `CW_AUTHUSER`.
   */
  userSetting?: string;
  /**
   * `sha256:…` accepts only the certificate with that fingerprint; a path verifies against that CA file;
   * `true` (default) against the system's CAs; `false` does not verify and warns once; `quiet` silently.
   */
  sslVerify?: SslVerify;
  /** Key agent for the proof; default: the one at `env.SSH_AUTH_SOCK`, connected on first need. */
  agent?: KeyAgent;
  env?: NodeJS.ProcessEnv;
  /** Receives warnings (one line each, without newline); default stderr. */
  warn?: (line: string) => void;
  tokens?: TokenCache;
  /** Deadline for connecting and for each response's headers, in ms (default 30 s). */
  timeoutMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

export interface RequestOptions {
  /** JSON body (objects, arrays, ...). */
  body?: unknown;
  /** Query parameters; undefined values are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  /** Send the bearer token (default true). */
  auth?: boolean;
  /** Wait this long for the answer's headers instead of the client's deadline (an exec on a node may take minutes). */
  timeoutMs?: number;
}

/** What one request may set beyond the pool's defaults. */
interface OpenOptions {
  /** Deadline for the response's headers, in ms. */
  timeoutMs?: number;
  /** Deadline between body chunks in ms (0: none, for answers that may stay quiet for hours). */
  bodyTimeout?: number;
  signal?: AbortSignal;
}

export interface StreamOptions {
  /** JSON body. */
  body?: unknown;
  query?: RequestOptions['query'];
  /** Wait this long for the answer's headers (default: the client's deadline). */
  timeoutMs?: number;
  /** Longest line accepted (default 1 MiB). */
  maxLineBytes?: number;
}

export interface UploadSource {
  /** Opens the bytes to send; called again when the request must be repeated after re-authentication. */
  open: () => Readable;
  size: number;
  /** Called as bytes are sent: the count so far (from 0 again when the request is repeated) and `size`. */
  onProgress?: (sent: number, size: number) => void;
}

export interface DownloadOptions {
  /** Called as bytes arrive: the count so far and the size the head node announced (content-length), if any. */
  onProgress?: (received: number, total: number | undefined) => void;
}

/** A refusal by the API: `message` is the server's own one-line error text. */
export class ApiError extends ExitError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** Largest response body read (a 100,000-node listing is well below it). */
const MAX_RESPONSE_BYTES = 512 * 1024 * 1024;
/** The media type of streamed answers: one JSON value per line. */
export const NDJSON = 'application/x-ndjson';
/** Longest line of a stream unless the caller allows more (exec lines carry up to 1 MiB of stdout and of stderr). */
export const MAX_STREAM_LINE_BYTES = 1024 * 1024;
/** Tokens are dropped this long before the server says they expire, to avoid racing the clock. */
const EXPIRY_MARGIN_MS = 30_000;

/**
 * A CW API client. Example:
 * `const api = new ApiClient({ baseUrl, user }); const nodes = await api.get<Node[]>('/nodes'); await api.close()`.
 */
export class ApiClient {
  readonly baseUrl: string;
  readonly user: string;
  private readonly userSetting: string | undefined;
  readonly sslVerify: SslVerify;
  private readonly env: NodeJS.ProcessEnv;
  private readonly warn: (line: string) => void;
  private readonly tokens: TokenCache;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private agent: KeyAgent | undefined;
  private warnedTls = false;
  /** The connection pool, made on the first request. */
  private pool: Dispatcher | undefined;

  constructor(opts: ApiClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.user = opts.user;
    this.userSetting = opts.userSetting;
    this.sslVerify = opts.sslVerify ?? 'true';
    this.env = opts.env ?? process.env;
    this.warn = opts.warn ?? ((line) => process.stderr.write(`${line}\n`));
    this.tokens = opts.tokens ?? processTokens;
    this.now = opts.now ?? Date.now;
    this.agent = opts.agent;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  private dispatcher(undici: typeof import('undici')): Dispatcher {
    if (!this.pool) {
      const timeout = this.timeoutMs;
      this.pool = new undici.Agent({
        connect: tlsConnector(undici.buildConnector, this.sslVerify, timeout),
        headersTimeout: timeout,
        // Large listings and uploads may take a while once started; a stalled body still fails.
        bodyTimeout: Math.max(timeout, 300_000),
      });
    }
    return this.pool;
  }

  get<T>(path: string, opts: Omit<RequestOptions, 'body'> = {}): Promise<T> {
    return this.request<T>('GET', path, opts);
  }
  post<T>(path: string, body: unknown, opts: Omit<RequestOptions, 'body'> = {}): Promise<T> {
    return this.request<T>('POST', path, { ...opts, body });
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body });
  }
  delete<T>(path: string, opts: Omit<RequestOptions, 'body'> = {}): Promise<T> {
    return this.request<T>('DELETE', path, opts);
  }

  /** Sends a JSON request and returns the envelope's `data`; refusals throw ApiError with the server's text. */
  async request<T>(method: Dispatcher.HttpMethod, path: string, opts: RequestOptions = {}): Promise<T> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return this.send<T>(method, this.url(path, opts.query), headers, () => body, opts.auth ?? true, opts.timeoutMs);
  }

  /**
   * Streams a file's bytes as the raw body of `PUT path` (kernel, initramfs and image uploads).
   * `extraHeaders` adds request headers such as `x-checksum: sha256:<hex>`.
   */
  async upload<T>(path: string, source: UploadSource, query?: RequestOptions['query'], extraHeaders: Record<string, string> = {}): Promise<T> {
    const headers = {
      ...extraHeaders,
      accept: 'application/json',
      'content-type': 'application/octet-stream',
      'content-length': String(source.size),
    };
    const { onProgress } = source;
    // pipeline(), not pipe(): a read error of the source fails the request instead of stalling it.
    const open = onProgress ? () => pipeline(source.open(), byteCounter((n) => onProgress(n, source.size)), () => {}) : () => source.open();
    return this.send<T>('PUT', this.url(path, query), headers, open, true);
  }

  /**
   * Streams the body of `GET url` into the stream `openSink` makes (called once the answer is a 200):
   * a file the head node serves beside the API, such as an image at `http://head/images/<uid>.img`.
   * `url` must be on the head node's origin; no token is sent (those files are served to the nodes
   * without one). Resolves with the number of bytes written.
   */
  async download(url: string, openSink: () => Writable, opts: DownloadOptions = {}): Promise<number> {
    const target = new URL(url);
    if (target.origin !== new URL(this.baseUrl).origin) throw new ExitError(`cannot download ${url}: not on the head node at ${this.baseUrl}`);
    this.warnAboutTls();
    const undici = await loadUndici();
    let res: Dispatcher.ResponseData;
    try {
      res = await undici.request(target, { method: 'GET', dispatcher: this.dispatcher(undici) });
    } catch (err) {
      throw new ExitError(`cannot download ${url}: ${describeNetworkError(err)}`);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new ExitError(`cannot download ${url}: HTTP ${res.statusCode}`);
    }
    const header = res.headers['content-length'];
    const total = typeof header === 'string' ? Number(header) : undefined;
    let received = 0;
    const counter = byteCounter((n) => {
      received = n;
      opts.onProgress?.(n, total);
    });
    await pipelineAsync(res.body, counter, openSink());
    return received;
  }

  /**
   * `GET path` authenticated, for an answer that streams text (`console/log?follow=1`): hands each chunk
   * to `write` until the server ends the answer or `signal` fires. An error answer (JSON envelope) throws
   * its one-line message, as `get` does.
   */
  async streamText(path: string, query: RequestOptions['query'], write: (text: string) => void, signal?: AbortSignal): Promise<void> {
    this.refusePlainHttp();
    let res: Dispatcher.ResponseData;
    try {
      // A quiet console sends nothing for hours: only the headers have a deadline.
      res = await this.openAuthorized('GET', this.url(path, query), { accept: 'text/plain, application/json' }, undefined, {
        bodyTimeout: 0,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
    if (res.statusCode !== 200) {
      // The server's one-line refusal, as `get` throws it.
      await this.readEnvelope(res, false);
      throw new ApiError(res.statusCode, `the head node answered HTTP ${res.statusCode}`);
    }
    res.body.setEncoding('utf8');
    try {
      for await (const chunk of res.body) write(chunk as string);
    } catch (err) {
      if (signal?.aborted) return;
      throw new ExitError(`lost the head node at ${this.baseUrl}: ${describeNetworkError(err)}`);
    }
  }

  /** Releases the connection pool. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }

  private url(path: string, query?: RequestOptions['query']): string {
    const url = new URL(this.baseUrl + (path.startsWith('/') ? path : `/${path}`));
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url.toString();
  }

  private async send<T>(
    method: Dispatcher.HttpMethod,
    url: string,
    headers: Record<string, string>,
    body: () => string | Readable | undefined,
    auth: boolean,
    timeoutMs?: number,
  ): Promise<T> {
    if (!auth) return (await this.exchange(method, url, headers, body(), false, timeoutMs)).data as T;
    this.refusePlainHttp();
    const token = await this.token();
    const first = await this.exchange(method, url, { ...headers, authorization: `Bearer ${token}` }, body(), true, timeoutMs);
    if (first.status !== 401) return first.data as T;
    // The server forgot the token (restart, expiry): prove the key again, once.
    this.tokens.delete(this.cacheKey);
    const again = await this.token();
    return (await this.exchange(method, url, { ...headers, authorization: `Bearer ${again}` }, body(), false, timeoutMs)).data as T;
  }

  /**
   * One HTTP exchange; returns the envelope's data or throws a one-line error. With `retryable`, a 401
   * is returned (status 401, no data) instead of thrown, so the caller can authenticate again.
   */
  private async exchange(
    method: Dispatcher.HttpMethod,
    url: string,
    headers: Record<string, string>,
    body: string | Readable | undefined,
    retryable: boolean,
    timeoutMs?: number,
  ): Promise<{ status: number; data: unknown }> {
    const res = await this.open(method, url, headers, body, timeoutMs === undefined ? {} : { timeoutMs });
    return this.readEnvelope(res, retryable);
  }

  /** Sends one request and gives the response as its headers arrive; network failures are one-line ExitErrors. */
  private async open(
    method: Dispatcher.HttpMethod,
    url: string,
    headers: Record<string, string>,
    body: string | Readable | undefined,
    options: OpenOptions = {},
  ): Promise<Dispatcher.ResponseData> {
    this.warnAboutTls();
    const undici = await loadUndici();
    const dispatcher = this.dispatcher(undici);
    const { timeoutMs, bodyTimeout, signal } = options;
    try {
      return await undici.request(url, {
        method,
        headers,
        body,
        dispatcher,
        ...(timeoutMs === undefined ? {} : { headersTimeout: timeoutMs }),
        ...(bodyTimeout === undefined ? {} : { bodyTimeout }),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw new ExitError(`cannot reach the head node at ${this.baseUrl}: ${describeNetworkError(err)}`);
    }
  }

  /** `open` with the bearer token; a 401 (the server forgot the token) proves the key again and asks once more. */
  private async openAuthorized(
    method: Dispatcher.HttpMethod,
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
    options: OpenOptions = {},
  ): Promise<Dispatcher.ResponseData> {
    const res = await this.open(method, url, { ...headers, authorization: `Bearer ${await this.token()}` }, body, options);
    if (res.statusCode !== 401) return res;
    await res.body.dump();
    this.tokens.delete(this.cacheKey);
    return this.open(method, url, { ...headers, authorization: `Bearer ${await this.token()}` }, body, options);
  }

  /** Reads a response as a CW envelope: its data, or a thrown one-line error (a 401 returned when `retryable`). */
  private async readEnvelope(res: Dispatcher.ResponseData, retryable: boolean): Promise<{ status: number; data: unknown }> {
    const status = res.statusCode;
    const chunks: Buffer[] = [];
    let received = 0;
    try {
      for await (const chunk of res.body) {
        received += (chunk as Buffer).length;
        if (received > MAX_RESPONSE_BYTES) {
          res.body.destroy();
          throw new ExitError(`the head node at ${this.baseUrl} sent more than ${MAX_RESPONSE_BYTES} bytes; not reading on`);
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof ExitError) throw err;
      throw new ExitError(`cannot reach the head node at ${this.baseUrl}: ${describeNetworkError(err)}`);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (status === 401 && retryable) return { status, data: undefined };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!isEnvelope(parsed)) {
      const what = status >= 400 ? `HTTP ${status}` : `HTTP ${status} with content`;
      throw new ApiError(status, `the head node at ${this.baseUrl} answered ${what} that is not a CW API response (is base_url right?)`);
    }
    if (parsed.success && status < 400) return { status, data: parsed.data };
    const error = parsed.success ? '' : oneLine(parsed.error);
    throw new ApiError(status >= 400 ? status : 500, error || `the head node answered HTTP ${status}`);
  }

  /**
   * Sends an authenticated JSON request asking for a stream (`Accept: application/x-ndjson`) and yields
   * each line's JSON value as it arrives; blank lines (keep-alives) are skipped. Refusals throw ApiError
   * as request() does, a 401 proves the key again once, TLS is checked as for every request. A line
   * longer than `maxLineBytes` (default 1 MiB) ends the stream with an error. A head node that answers
   * with an envelope instead of a stream has its `data` items yielded one by one.
   * Example: `for await (const line of api.stream('POST', '/nodes/power', { body: { ids: 'n[0-3]', action: 'status' } })) ...`.
   */
  async *stream<T = unknown>(method: Dispatcher.HttpMethod, path: string, opts: StreamOptions = {}): AsyncGenerator<T, void, undefined> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = { accept: NDJSON };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const url = this.url(path, opts.query);
    this.refusePlainHttp();
    const res = await this.openAuthorized(method, url, headers, body, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
    const type = String(res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (res.statusCode !== 200 || type !== NDJSON) {
      const { data } = await this.readEnvelope(res, false);
      if (Array.isArray(data)) yield* data as T[];
      else yield data as T;
      return;
    }
    const maxLine = opts.maxLineBytes ?? MAX_STREAM_LINE_BYTES;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const parse = (line: Buffer): T | undefined => {
      const text = line.toString('utf8').trim();
      if (text === '') return undefined;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ExitError(`the head node at ${this.baseUrl} sent a line that is not JSON: ${oneLine(text).slice(0, 80)}`);
      }
    };
    try {
      for await (const raw of res.body) {
        let chunk = raw as Buffer;
        let nl: number;
        while ((nl = chunk.indexOf(10)) >= 0) {
          if (pendingBytes + nl > maxLine) throw new ExitError(`the head node at ${this.baseUrl} sent a line longer than ${maxLine} bytes; not reading on`);
          const line = pending.length === 0 ? chunk.subarray(0, nl) : Buffer.concat([...pending, chunk.subarray(0, nl)]);
          pending = [];
          pendingBytes = 0;
          chunk = chunk.subarray(nl + 1);
          const value = parse(line);
          if (value !== undefined) yield value;
        }
        if (chunk.length > 0) {
          pendingBytes += chunk.length;
          if (pendingBytes > maxLine) throw new ExitError(`the head node at ${this.baseUrl} sent a line longer than ${maxLine} bytes; not reading on`);
          pending.push(chunk);
        }
      }
    } catch (err) {
      if (err instanceof ExitError) throw err;
      throw new ExitError(`lost the head node at ${this.baseUrl} in the middle of its answer: ${describeNetworkError(err)}`);
    } finally {
      // The consumer stopped early or a line was refused: the connection is not read on.
      if (!res.body.destroyed) res.body.destroy();
    }
    const last = parse(Buffer.concat(pending));
    if (last !== undefined) yield last;
  }

  private get cacheKey(): string {
    return `${this.baseUrl}\n${this.user}`;
  }

  /** A valid bearer token, from the cache or a fresh proof of key possession. */
  private async token(): Promise<string> {
    const cached = this.tokens.get(this.cacheKey);
    if (cached && cached.expiresAt > this.now()) return cached.token;
    const fresh = await this.authenticate();
    this.tokens.set(this.cacheKey, fresh);
    return fresh.token;
  }

  private keyAgent(): KeyAgent {
    if (!this.agent) {
      const sock = this.env.SSH_AUTH_SOCK?.trim();
      if (!sock) throw new ExitError(NO_AGENT_MESSAGE);
      this.agent = new SshAgentClient({ socketPath: sock });
    }
    return this.agent;
  }

  /**
   * Credentials never leave for another machine in clear: a token read off the cluster network could be
   * replayed over HTTPS. (The head node refuses them too; this keeps them from being sent at all.)
   */
  private refusePlainHttp(): void {
    const url = new URL(this.baseUrl);
    if (url.protocol !== 'http:' || isLoopbackHost(url.hostname)) return;
    throw new ExitError(
      `client.base_url ${this.baseUrl} is plain HTTP: admin credentials go to another machine only over HTTPS. ` +
        `Use https://${url.hostname}/api/v1 (with the HTTPS port if it is not 443) and client.sslverify = the certificate's fingerprint; ` +
        'cw-containerctl tool-config on the head node prints both',
    );
  }

  private async authenticate(): Promise<CachedToken> {
    this.refusePlainHttp();
    const agent = this.keyAgent();
    let audience: string;
    try {
      audience = audienceOf(this.baseUrl);
    } catch (err) {
      throw new ExitError(errorMessage(err));
    }
    const askChallenge = () => this.request<{ nonce?: unknown }>('POST', '/auth/challenge', { body: { user: this.user }, auth: false });
    // undici first, so that the challenge leaves at once instead of after the module has loaded.
    await loadUndici();
    // The first nonce is asked for while the agent lists its keys: the two round trips overlap.
    const firstChallenge = askChallenge();
    firstChallenge.catch(() => undefined); // the agent's error, if any, is the one reported
    let keys: AgentIdentity[];
    try {
      keys = await agent.requireIdentities();
    } catch (err) {
      throw new ExitError(errorMessage(err));
    }
    let lastRefusal = '';
    for (const [i, key] of keys.entries()) {
      // A nonce is consumed by the first attempt: every further key needs a fresh one.
      const challenge = await (i === 0 ? firstChallenge : askChallenge());
      if (typeof challenge?.nonce !== 'string') {
        throw new ExitError(`the head node at ${this.baseUrl} sent a challenge without a nonce`);
      }
      let message: Buffer;
      try {
        message = challengeMessage(this.user, challenge.nonce, audience);
      } catch (err) {
        throw new ExitError(`cannot answer the head node's challenge: ${errorMessage(err)}`);
      }
      let signature: Buffer;
      try {
        signature = await agent.sign(key, message);
      } catch (err) {
        lastRefusal = errorMessage(err);
        continue;
      }
      try {
        const answer = await this.request<{ token?: unknown; expiresAt?: unknown }>('POST', '/auth/token', {
          body: { user: this.user, nonce: challenge.nonce, publicKey: key.line, signature: signature.toString('base64') },
          auth: false,
        });
        if (typeof answer?.token !== 'string' || answer.token === '') {
          throw new ExitError(`the head node at ${this.baseUrl} sent no token`);
        }
        const serverExpiry = typeof answer.expiresAt === 'string' ? Date.parse(answer.expiresAt) : Number.NaN;
        const expiresAt = Number.isFinite(serverExpiry) ? serverExpiry - EXPIRY_MARGIN_MS : this.now() + 10 * 60_000;
        return { token: answer.token, expiresAt };
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          lastRefusal = err.message;
          continue;
        }
        throw err;
      }
    }
    const count = keys.length === 1 ? 'the ssh-agent key' : `any of the ${keys.length} ssh-agent keys`;
    throw new ApiError(
      401,
      `authentication as "${this.user}" failed: the head node at ${this.baseUrl} did not accept ${count}` +
        `${lastRefusal ? ` (${lastRefusal})` : ''}; add your key with cw-containerctl add-admin` +
        `${this.userSetting ? `, or set ${this.userSetting} to the admin name your key was added under` : ''}`,
    );
  }

  private warnAboutTls(): void {
    if (this.warnedTls || this.sslVerify !== 'false' || !this.baseUrl.startsWith('https:')) return;
    this.warnedTls = true;
    this.warn(`WARNING: not verifying the TLS certificate of ${audienceOf(this.baseUrl)} (client.sslverify = false; "quiet" hides this)`);
  }
}

/** `localhost`, 127.0.0.0/8 and ::1: the API on this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The head node's certificate is not the pinned one. */
export class CertificateMismatchError extends Error {
  readonly code = 'CW_CERT_MISMATCH';
  constructor(
    readonly expected: CertificatePin,
    readonly presented: string | undefined,
  ) {
    super(
      `the head node presented certificate ${presented ?? '(none)'}, not ${expected} that client.sslverify pins; ` +
        'nothing was sent. If its certificate was replaced on purpose, put the new fingerprint in ~/.cw/settings.ini ' +
        '(cw-containerctl tool-config on the head node prints it); otherwise something is between you and the head node',
    );
    this.name = 'CertificateMismatchError';
  }
}

type BuildConnector = typeof import('undici').buildConnector;
type Connector = import('undici').buildConnector.connector;
type ConnectOptions = import('undici').buildConnector.BuildOptions;

/**
 * undici's connect option for a `client.sslverify` value. A pin is checked by hand after the handshake:
 * Node verifies chains and names only, and a self-signed head node has no chain to verify, so the
 * connection is accepted exactly when the certificate's SHA-256 equals the pin — before any byte is sent.
 */
export function tlsConnector(buildConnector: BuildConnector, sslVerify: SslVerify, timeout: number): Connector | ConnectOptions {
  if (sslVerify === 'true') return { timeout, rejectUnauthorized: true };
  if (sslVerify === 'false' || sslVerify === 'quiet') return { timeout, rejectUnauthorized: false };
  if (sslVerify.startsWith('/')) {
    let ca: Buffer;
    try {
      ca = readFileSync(sslVerify);
    } catch (err) {
      throw new ExitError(`client.sslverify: cannot read the CA file ${sslVerify}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new ExitError(`client.sslverify: ${sslVerify} holds no PEM certificate`);
    return { timeout, rejectUnauthorized: true, ca };
  }
  const pin = parsePin(sslVerify);
  if (!pin) throw new ExitError(`client.sslverify: "${sslVerify}" is not a certificate fingerprint`);
  // No session resumption: a resumed session shows no peer certificate to compare (connections are kept
  // alive and reused anyway, so full handshakes are rare).
  const connect = buildConnector({ timeout, rejectUnauthorized: false, maxCachedSessions: 0 });
  return (options, callback) => {
    connect(options, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('no connection'), null);
      if (options.protocol !== 'https:') return callback(null, socket);
      const fingerprint = (socket as TLSSocket).getPeerCertificate().fingerprint256;
      const presented = fingerprint ? `sha256:${fingerprint}` : undefined;
      if (presented !== pin) {
        socket.destroy();
        return callback(new CertificateMismatchError(pin, presented), null);
      }
      return callback(null, socket);
    });
  };
}

function isEnvelope(v: unknown): v is { success: true; data: unknown } | { success: false; error: string } {
  if (v === null || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  return o.success === true || (o.success === false && typeof o.error === 'string');
}

/** A pass-through stream that reports the number of bytes through it so far after each chunk. */
function byteCounter(onCount: (count: number) => void): Transform {
  let count = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      count += chunk.length;
      onCount(count);
      done(null, chunk);
    },
  });
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim();
}

/** `ECONNREFUSED`, `connection timed out`, ... with a hint for the usual TLS problem. */
export function describeNetworkError(err: unknown): string {
  if (err instanceof CertificateMismatchError) return err.message;
  if ((err as { cause?: unknown }).cause instanceof CertificateMismatchError) return ((err as { cause: Error }).cause).message;
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connection timed out';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'no answer in time';
  const text = errorMessage(err);
  const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code ?? '') || /certificate/i.test(text);
  const hint = tls
    ? ' (the head node\'s certificate is not trusted: set client.sslverify in ~/.cw/settings.ini to its fingerprint, as cw-containerctl tool-config prints it)'
    : '';
  if (!code || text.includes(code)) return `${text}${hint}`;
  return `${code}${text ? ` (${text})` : ''}${hint}`;
}
