// Who may use the API: admins proving possession of their ssh key (challenge -> signed -> bearer
// token), or root with the root password (HTTP basic, rate limited). The check runs on every request
// before its body is read, so an anonymous client cannot make the server parse or store anything.
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createHmac, randomBytes } from 'node:crypto';
import { NonceBook, audienceOf, challengeMessage, verifyChallengeSignature } from '../../../lib/auth-challenge.js';
import { verifyPassword } from '../../../lib/password.js';
import type { Admin, Store } from '../../db/store.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';
import { FailureLimiter, TokenBook } from './tokens.js';

export interface AuthOptions {
  /**
   * Origins a signed challenge may name (`CW_API_AUDIENCES`); default: the origin the request arrived on
   * (its Host header, as http:// or https://).
   */
  audiences?: readonly string[];
  /** Token lifetime (`CW_TOKEN_TTL`); default 1 h. */
  tokenTtlMs?: number;
  /** Challenge lifetime; default 60 s. */
  nonceTtlMs?: number;
  /** Failed root logins per source and minute before 429; default 5. */
  basicFailureLimit?: number;
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
  readonly audiences: readonly string[] | undefined;
  readonly #store: Store;
  readonly #now: () => number;
  // Verified root passwords, keyed by an HMAC (secret per process) of hash and password: scrypt is
  // deliberately slow, and a web UI sends basic auth with every request.
  readonly #basicKey = randomBytes(32);
  readonly #basicOk = new Map<string, number>();

  constructor(store: Store, now: () => number, options: AuthOptions = {}) {
    this.#store = store;
    this.#now = now;
    this.nonces = new NonceBook({ ttlMs: options.nonceTtlMs ?? 60_000, now });
    this.tokens = new TokenBook({ ttlMs: options.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS, now });
    this.failures = new FailureLimiter(options.basicFailureLimit ?? 5, 60_000, now);
    this.audiences = options.audiences?.map((a) => audienceOf(a));
  }

  /** The caller of `request`, or an HttpError 401 (429 while a source is locked out). */
  async authenticate(request: FastifyRequest): Promise<AuthUser> {
    const header = request.headers.authorization;
    if (!header) throw unauthorized(NEED_AUTH);
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
    const wait = this.failures.retryAfter(source);
    if (wait > 0) throw new HttpError(429, `too many failed logins; try again in ${Math.ceil(wait / 1000)} s`);
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
      else if (await verifyPassword(password, stored)) {
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

  /** The origins a challenge signed for `request` may name. */
  audiencesFor(request: FastifyRequest): string[] {
    if (this.audiences) return [...this.audiences];
    const host = request.headers.host;
    if (!host || !/^[A-Za-z0-9.:[\]-]{1,260}$/.test(host)) return [];
    const out = new Set<string>();
    for (const scheme of ['http', 'https']) {
      try {
        out.add(audienceOf(`${scheme}://${host}`));
      } catch {
        // not a usable host
      }
    }
    return [...out];
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

/**
 * Who is asking, for the failure limit: the peer address, or (on the unix socket behind nginx) the
 * address nginx forwards. Only nginx and local processes can reach the socket.
 */
function sourceOf(request: FastifyRequest): string {
  if (request.socket.remoteAddress) return request.ip;
  const forwarded = request.headers['x-real-ip'] ?? request.headers['x-forwarded-for'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
  return first && first.length <= 64 ? first : 'local';
}

/** Adds the credential check to every route of `app` that is not marked anonymous. */
export function installAuthHook(app: FastifyInstance, state: AuthState): void {
  app.addHook('onRequest', async (request) => {
    if (request.is404 || request.routeOptions.config.anonymous === true) return;
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
    publicKey: { type: 'string', maxLength: 16384, description: 'OpenSSH public key line' },
    signature: { type: 'string', maxLength: 16384, description: 'base64 of the SSH signature blob over challengeMessage(user, nonce, audience)' },
  },
  required: ['user', 'nonce', 'publicKey', 'signature'],
  additionalProperties: false,
} as const;

/** `TYPE BASE64` of an OpenSSH key line (the comment does not identify the key). */
function keyOf(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(' ');
}

/** `POST /auth/challenge` and `POST /auth/token`. */
export const authRoutes: FastifyPluginAsync<{ state: AuthState }> = async (app, { state }) => {
  app.post(
    '/auth/challenge',
    {
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
    async () => ok(state.nonces.issue()),
  );

  app.post(
    '/auth/token',
    {
      schema: { body: tokenBody },
      config: {
        anonymous: true,
        summary: 'Trade a signed nonce for a bearer token',
        tags: ['auth'],
        data: { type: 'object', properties: { token: { type: 'string' }, expiresAt: { type: 'string' } } },
      },
    },
    async (request) => {
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
