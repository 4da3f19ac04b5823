// Who may use the API: admins proving possession of their ssh key (challenge -> signed -> bearer
// token), or root with the root password (HTTP basic, rate limited). The check runs on every request
// before its body is read, so an anonymous client cannot make the server parse or store anything.
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createHmac, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { NonceBook, audienceOf, challengeMessage, verifyChallengeSignature } from '../../../lib/auth-challenge.js';
import { verifyPassword } from '../../../lib/password.js';
import type { Admin, Store } from '../../db/store.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';
import { ownAudiences } from './audiences.js';
import { Gate, GateFullError, RateLimiter, type RateOptions } from './limits.js';
import { FailureLimiter, TokenBook } from './tokens.js';

export interface AuthOptions {
  /**
   * Exactly the origins a signed challenge may name, replacing the default: the head node's own URLs
   * (`ownAudiences`: its addresses, `localhost`, its host name, on `httpPort`, plus `extraAudiences`).
   */
  audiences?: readonly string[];
  /** Origins or host names accepted besides the head node's own (`CW_API_AUDIENCES`). */
  extraAudiences?: readonly string[];
  /** The ports nginx serves the API on (`CW_HTTP_PORT`, `CW_HTTPS_PORT`); default 80 and 443. */
  httpPort?: number;
  httpsPort?: number;
  /** The head node's host name (default os.hostname()). */
  hostname?: string;
  /** The head node's interfaces (default os.networkInterfaces). */
  interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Token lifetime (`CW_TOKEN_TTL`); default 1 h. */
  tokenTtlMs?: number;
  /** Challenge lifetime; default 60 s. */
  nonceTtlMs?: number;
  /** Failed root logins per source and minute before 429; default 5. */
  basicFailureLimit?: number;
  /** Checks a root password against the stored hash (default: scrypt, `verifyPassword`). */
  verifyPassword?: (password: string, stored: string) => Promise<boolean>;
  /** Password checks run at once (default 2) and waiting (default 8); more are refused with 503. */
  passwordChecks?: { concurrent: number; queue: number };
  /** Requests per source to `/auth/challenge` and `/auth/token` together; default burst 100, 10/s. */
  anonymousRate?: RateOptions;
  /** Outstanding challenges of one source; default 64. */
  challengesPerSource?: number;
  /**
   * Where admin credentials may arrive from over plain HTTP: `loopback` (default; everyone else must use
   * HTTPS) or `anywhere` — for tests that play remote clients with Fastify's inject, which cannot speak TLS.
   */
  plainHttpFrom?: 'loopback' | 'anywhere';
}

export interface AuthUser {
  name: string;
  via: 'token' | 'basic';
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller (undefined on anonymous routes). */
    user?: AuthUser;
  }
  interface FastifyContextConfig {
    /** The route needs no credentials. */
    anonymous?: boolean;
    /** An anonymous route that still checks credentials when some are sent (and then may show more). */
    credentialsOptional?: boolean;
  }
}

export const DEFAULT_TOKEN_TTL_MS = 60 * 60 * 1000;
const BASIC_CACHE_MS = 60_000;
const AUTH_FAILED = 'authentication failed: user, key or signature not accepted';
const NEED_AUTH = 'authentication required: send "Authorization: Bearer TOKEN" (POST /api/v1/auth/token) or root basic auth';
const WWW_AUTHENTICATE = 'Bearer realm="cw-api", Basic realm="cw-api"';

/** Sessions and failure counters of one API instance. */
export class AuthState {
  readonly nonces: NonceBook;
  readonly tokens: TokenBook;
  readonly failures: FailureLimiter;
  readonly anonymousRate: RateLimiter;
  readonly #audiences: () => string[];
  readonly #store: Store;
  readonly #verifyPassword: (password: string, stored: string) => Promise<boolean>;
  readonly #passwordGate: Gate;
  readonly #now: () => number;
  readonly #httpsPort: number;
  readonly #plainHttpAnywhere: boolean;
  // Verified root passwords, keyed by an HMAC (secret per process) of hash and password: scrypt is
  // deliberately slow, and a web UI sends basic auth with every request.
  readonly #basicKey = randomBytes(32);
  readonly #basicOk = new Map<string, number>();

  constructor(store: Store, now: () => number, options: AuthOptions = {}) {
    this.#store = store;
    this.#now = now;
    this.nonces = new NonceBook({ ttlMs: options.nonceTtlMs ?? 60_000, maxPerSource: options.challengesPerSource ?? 64, now });
    this.tokens = new TokenBook({ ttlMs: options.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS, now });
    this.failures = new FailureLimiter(options.basicFailureLimit ?? 5, 60_000, now);
    this.anonymousRate = new RateLimiter(options.anonymousRate ?? { burst: 100, perSecond: 10 }, now);
    this.#verifyPassword = options.verifyPassword ?? verifyPassword;
    const checks = options.passwordChecks ?? { concurrent: 2, queue: 8 };
    this.#passwordGate = new Gate(checks.concurrent, checks.queue);
    this.#httpsPort = options.httpsPort ?? 443;
    this.#plainHttpAnywhere = options.plainHttpFrom === 'anywhere';
    if (options.audiences) {
      const fixed = options.audiences.map((a) => audienceOf(a));
      this.#audiences = () => [...fixed];
    } else {
      const own = {
        httpPort: options.httpPort,
        httpsPort: options.httpsPort,
        hostname: options.hostname,
        interfaces: options.interfaces,
        extra: options.extraAudiences,
      };
      this.#audiences = () => ownAudiences(own);
    }
  }

  /** The caller of `request`, or an HttpError 401 (429 while a source is locked out). */
  async authenticate(request: FastifyRequest): Promise<AuthUser> {
    const header = request.headers.authorization;
    if (!header) throw unauthorized(NEED_AUTH);
    this.refusePlainHttp(request);
    const space = header.indexOf(' ');
    const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase();
    const value = space === -1 ? '' : header.slice(space + 1).trim();
    if (scheme === 'bearer') return this.#bearer(value);
    if (scheme === 'basic') return this.#basic(value, sourceOf(request));
    throw unauthorized(`unsupported authorization scheme "${scheme.slice(0, 20)}": use Bearer or Basic`);
  }

  async #bearer(token: string): Promise<AuthUser> {
    const grant = this.tokens.check(token);
    if (!grant) throw unauthorized('invalid or expired token; log in again');
    // A removed admin, or a replaced key, loses access at once, not when the token runs out. Asked of the
    // store on every request: `cw-appliance` changes admins from another process, and the store's read
    // cache notices other processes' commits (PRAGMA data_version), so no signal between them is needed.
    const admin = await this.#store.getAdmin(grant.user);
    if (!admin || adminGeneration(admin) !== grant.generation) {
      this.tokens.revokeUser(grant.user, grant.generation);
      throw unauthorized('invalid or expired token; log in again');
    }
    return { name: grant.user, via: 'token' };
  }

  async #basic(value: string, source: string): Promise<AuthUser> {
    this.#refuseLockedOut(source);
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon === -1 ? '' : decoded.slice(0, colon);
    const password = colon === -1 ? '' : decoded.slice(colon + 1);
    const stored = await this.#store.getSetting('root_password_hash');
    let accepted = false;
    if (user === 'root' && password !== '' && stored) {
      const key = createHmac('sha256', this.#basicKey).update(stored).update('\0').update(password).digest('base64');
      const until = this.#basicOk.get(key);
      if (until !== undefined && until > this.#now()) accepted = true;
      else {
        // Counted as a failure until it succeeds, so parallel guesses from one source stop at the limit
        // (checked again here: the database read above let other requests of the source in).
        this.#refuseLockedOut(source);
        this.failures.fail(source);
        let verified: boolean;
        try {
          verified = await this.#passwordGate.run(() => this.#verifyPassword(password, stored));
        } catch (err) {
          if (err instanceof GateFullError) throw new HttpError(503, 'too many password checks at once; try again in a second', { 'retry-after': '1' });
          throw err;
        }
        if (!verified) throw unauthorized('authentication failed: wrong user or password');
        accepted = true;
        if (this.#basicOk.size > 1000) this.#basicOk.clear();
        this.#basicOk.set(key, this.#now() + BASIC_CACHE_MS);
      }
    }
    if (!accepted) {
      this.failures.fail(source);
      throw unauthorized('authentication failed: wrong user or password');
    }
    this.failures.succeed(source);
    return { name: 'root', via: 'basic' };
  }

  #refuseLockedOut(source: string): void {
    const wait = this.failures.retryAfter(source);
    if (wait > 0) throw new HttpError(429, `too many failed logins; try again in ${Math.ceil(wait / 1000)} s`);
  }

  /**
   * The origins a signed challenge sent in `request` may name: this head node's, whatever the request's Host
   * header says; on a TCP socket also the address and port it arrived on (the kernel's word, not the client's).
   */
  audiencesFor(request: FastifyRequest): string[] {
    const out = this.#audiences();
    const local = request.socket.localAddress;
    const port = request.socket.localPort;
    if (local && port) {
      const address = local.startsWith('::ffff:') && isIP(local.slice(7)) === 4 ? local.slice(7) : local;
      try {
        out.push(audienceOf(`http://${isIP(address) === 6 ? `[${address}]` : address}:${port}`));
      } catch {
        // not an address a URL can carry (a zoned IPv6 address)
      }
    }
    return out;
  }

  /**
   * Admin credentials (a token, the root password, a signed challenge) crossed the network in clear: refused
   * with 403, whether or not they are right, so the client learns to use HTTPS. Local callers (loopback, the
   * API socket without nginx) are not on the network and may use HTTP.
   */
  refusePlainHttp(request: FastifyRequest): void {
    if (this.#plainHttpAnywhere || transportOf(request) !== 'http') return;
    const source = sourceOf(request);
    if (isLoopback(source)) return;
    const port = this.#httpsPort === 443 ? '' : `:${this.#httpsPort}`;
    throw new HttpError(
      403,
      `admin credentials are refused over plain HTTP from another machine: use https://HEAD${port}/api/v1 (cw-containerctl tool-config prints the settings, with the certificate's fingerprint for client.sslverify)`,
    );
  }

  /** Spends one anonymous auth request of `request`'s source; 429 with Retry-After when its rate is used up. */
  limitAnonymous(request: FastifyRequest): void {
    const wait = this.anonymousRate.take(sourceOf(request));
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new HttpError(429, `too many requests; try again in ${seconds} s`, { 'retry-after': String(seconds) });
    }
  }
}

/**
 * One registration of an admin: its key and when it was added. Replacing the key, or removing the admin
 * and adding it again (at a later millisecond), gives another.
 */
export function adminGeneration(admin: Admin): string {
  return `${admin.fingerprint} ${admin.addedAt}`;
}

function unauthorized(message: string): HttpError {
  return HttpError.unauthorized(message, { 'www-authenticate': WWW_AUTHENTICATE });
}

/** The source of socket requests that carry no usable X-Real-IP: one shared source, limited like any other. */
export const UNKNOWN_SOURCE = 'unknown';

/**
 * Who is asking, for the lockout and the rate limits: the peer address on a TCP socket; on the unix socket
 * (no peer address), the `X-Real-IP` nginx sets from the connection — only nginx and local processes reach
 * the socket. `X-Forwarded-For` is never read: clients write it.
 */
export function sourceOf(request: FastifyRequest): string {
  const peer = request.socket.remoteAddress;
  if (peer) return peer;
  const real = request.headers['x-real-ip'];
  const value = typeof real === 'string' ? real.trim() : '';
  return isIP(value) !== 0 ? value : UNKNOWN_SOURCE;
}

/**
 * How `request` reached the API: over `https` or `http` by nginx (which sets X-Forwarded-Proto from the
 * connection, on the unix socket only nginx and local processes reach), `local` for a process on the socket
 * itself (cw-appliance), or the TCP socket's own scheme when the API listens on TCP (tests).
 */
export function transportOf(request: FastifyRequest): 'https' | 'http' | 'local' {
  if (request.socket.remoteAddress) return request.protocol === 'https' ? 'https' : 'http';
  const proto = request.headers['x-forwarded-proto'];
  if (proto === 'https') return 'https';
  if (proto === undefined) return 'local';
  // Anything else nginx would not send: treat as the weaker transport.
  return 'http';
}

/** 127.0.0.0/8, ::1 and the unknown source of local socket callers. */
export function isLoopback(source: string): boolean {
  return source === UNKNOWN_SOURCE || source === '::1' || /^(?:::ffff:)?127\./.test(source);
}

/** Adds the credential check to every route of `app` that is not marked anonymous. */
export function installAuthHook(app: FastifyInstance, state: AuthState): void {
  app.addHook('onRequest', async (request) => {
    if (request.is404) return;
    const { anonymous, credentialsOptional } = request.routeOptions.config;
    if (anonymous === true && !(credentialsOptional === true && request.headers.authorization !== undefined)) return;
    request.user = await state.authenticate(request);
  });
}

const challengeBody = {
  type: 'object',
  properties: { user: { type: 'string', maxLength: 64 } },
  required: ['user'],
  additionalProperties: false,
} as const;

const tokenBody = {
  type: 'object',
  properties: {
    user: { type: 'string', maxLength: 64 },
    nonce: { type: 'string', maxLength: 64 },
    publicKey: { type: 'string', maxLength: 8192, description: 'OpenSSH public key line' },
    signature: { type: 'string', maxLength: 8192, description: 'base64 of the SSH signature blob over challengeMessage(user, nonce, audience)' },
  },
  required: ['user', 'nonce', 'publicKey', 'signature'],
  additionalProperties: false,
} as const;

/** `TYPE BASE64` of an OpenSSH key line (the comment does not identify the key). */
function keyOf(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(' ');
}

/** Body limits of the anonymous auth routes: a user name; a key line and a signature (RSA 16384 fits). */
export const CHALLENGE_BODY_LIMIT = 4 * 1024;
export const TOKEN_BODY_LIMIT = 16 * 1024;

/** `POST /auth/challenge` and `POST /auth/token`. */
export const authRoutes: FastifyPluginAsync<{ state: AuthState }> = async (app, { state }) => {
  // Before the body is read: a flooding source costs a map lookup.
  const limitRate = async (request: FastifyRequest): Promise<void> => state.limitAnonymous(request);
  app.post(
    '/auth/challenge',
    {
      bodyLimit: CHALLENGE_BODY_LIMIT,
      onRequest: limitRate,
      schema: { body: challengeBody },
      config: {
        anonymous: true,
        summary: 'Get a nonce to sign with an admin key',
        tags: ['auth'],
        data: {
          type: 'object',
          properties: { nonce: { type: 'string' }, issuedAt: { type: 'string' }, expiresAt: { type: 'string' } },
        },
      },
    },
    // Issued whatever the user: whether an admin exists is not something to tell strangers.
    async (request) => ok(state.nonces.issue(sourceOf(request))),
  );

  app.post(
    '/auth/token',
    {
      bodyLimit: TOKEN_BODY_LIMIT,
      onRequest: limitRate,
      schema: { body: tokenBody },
      config: {
        anonymous: true,
        summary: 'Trade a signed nonce for a bearer token',
        tags: ['auth'],
        data: { type: 'object', properties: { token: { type: 'string' }, expiresAt: { type: 'string' } } },
      },
    },
    async (request) => {
      // Before the nonce is spent: the signature and the token would cross the network in clear.
      state.refusePlainHttp(request);
      const body = request.body as { user: string; nonce: string; publicKey: string; signature: string };
      // Used up whatever happens next, so a captured request cannot be replayed.
      const nonceState = state.nonces.take(body.nonce);
      if (nonceState !== 'ok') throw unauthorized('challenge unknown, already used or expired; ask for a new one');
      const admin = await app.store.getAdmin(body.user).catch(() => undefined);
      const keyMatches = admin !== undefined && keyOf(admin.keyLine) === keyOf(body.publicKey);
      // The signature is checked even for an unknown user or key, so both fail alike, in about the same time.
      const keyLine = keyMatches ? admin.keyLine : body.publicKey;
      let verified = false;
      for (const audience of state.audiencesFor(request)) {
        let message: Buffer;
        try {
          message = challengeMessage(body.user, body.nonce, audience);
        } catch {
          break;
        }
        if (verifyChallengeSignature({ publicKeyLine: keyLine, message, signatureBlob: body.signature })) {
          verified = true;
          break;
        }
      }
      if (!verified || !keyMatches) throw unauthorized(AUTH_FAILED);
      const { token, expiresAt } = state.tokens.issue(admin.name, adminGeneration(admin));
      return ok({ token, expiresAt: new Date(expiresAt).toISOString() });
    },
  );
};
