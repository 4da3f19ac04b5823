// Proof of possession of an admin's ssh key, shared by the API (issue + verify) and the tools (sign).
//
//   1. server: NonceBook.issue() -> { nonce, issuedAt, expiresAt }
//   2. client: signs challengeMessage(user, nonce, audience) with its ssh-agent
//   3. server: NonceBook.consume(nonce) (once only, before expiry) and
//              verifyChallengeSignature({ publicKeyLine, message, signatureBlob }) for a key of that user
//
// The message names the user, so a signature cannot be replayed for another admin, and the audience
// (the API origin the client meant to reach), so a signature obtained by another server is useless here.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type sshpk from 'sshpk';
import { WireReader } from './ssh-wire.js';
import { isValidAdminName, type Check } from './validate.js';

// sshpk is only needed to verify (the API); the admin tools sign through the agent and start without it.
const requireCjs = createRequire(import.meta.url);
let sshpkModule: typeof sshpk | undefined;
const loadSshpk = (): typeof sshpk => (sshpkModule ??= requireCjs('sshpk') as typeof sshpk);

export const CHALLENGE_CONTEXT = 'cw-headnode-auth-v1';
export const NONCE_BYTES = 32;
const NONCE_RE = /^[A-Za-z0-9_-]{43}$/;

export interface Challenge {
  /** 32 random bytes, base64url without padding (43 characters). */
  nonce: string;
  /** ISO 8601 timestamps. */
  issuedAt: string;
  expiresAt: string;
}

/** Whether `s` has the shape of an issued nonce. */
export function isNonce(s: string): boolean {
  return NONCE_RE.test(s);
}

/**
 * The audience of a challenge: the origin of the API base URL, e.g.
 * `audienceOf('https://head:8443/api/v1')` -> `https://head:8443` (default ports are dropped).
 */
export function audienceOf(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new Error(`invalid API URL "${baseUrl}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`invalid API URL "${baseUrl}"`);
  return url.origin;
}

/**
 * The exact bytes an admin signs: `cw-headnode-auth-v1\n<user>\n<nonce>\n<audience>` (UTF-8, no trailing
 * newline). Throws if a part could smuggle a newline or is malformed.
 */
export function challengeMessage(user: string, nonce: string, audience: string): Buffer {
  if (isValidAdminName(user) !== true) throw new Error(`invalid admin name "${user}"`);
  if (!isNonce(nonce)) throw new Error('invalid nonce');
  if (audienceOf(audience) !== audience) throw new Error(`audience must be an origin like https://head, not "${audience}"`);
  return Buffer.from(`${CHALLENGE_CONTEXT}\n${user}\n${nonce}\n${audience}`, 'utf8');
}

export interface SshSignature {
  /** `ssh-ed25519`, `rsa-sha2-256`, `ecdsa-sha2-nistp256`, ... */
  algorithm: string;
  /** The algorithm-specific signature bytes. */
  signature: Buffer;
}

/** Splits an SSH signature blob (`string algorithm, string signature`); throws when malformed. */
export function parseSshSignature(blob: Buffer): SshSignature {
  const r = new WireReader(blob, 0);
  const algorithm = r.string().toString('latin1');
  const signature = r.string();
  r.end();
  if (!/^[a-z0-9@.-]{1,64}$/.test(algorithm)) throw new Error('malformed signature algorithm');
  return { algorithm, signature };
}

/** Signature algorithm -> [sshpk key type, hash, curve]. `ssh-rsa` (SHA-1) is deliberately absent. */
const ALGORITHMS: Record<string, { keyType: sshpk.AlgorithmType; hash: sshpk.AlgorithmHashType; curve?: string }> = {
  'ssh-ed25519': { keyType: 'ed25519', hash: 'sha512' },
  'rsa-sha2-256': { keyType: 'rsa', hash: 'sha256' },
  'rsa-sha2-512': { keyType: 'rsa', hash: 'sha512' },
  'ecdsa-sha2-nistp256': { keyType: 'ecdsa', hash: 'sha256', curve: 'nistp256' },
  'ecdsa-sha2-nistp384': { keyType: 'ecdsa', hash: 'sha384', curve: 'nistp384' },
  'ecdsa-sha2-nistp521': { keyType: 'ecdsa', hash: 'sha512', curve: 'nistp521' },
};

export interface ChallengeSignature {
  /** The admin's stored OpenSSH public key line. */
  publicKeyLine: string;
  /** The signed bytes, normally from `challengeMessage`. */
  message: Buffer | string;
  /** The SSH signature blob as returned by the agent (Buffer, or base64 text). */
  signatureBlob: Buffer | string;
}

/** `true` when the signature is valid for that key and message, else the reason (for logs, not clients). */
export function checkChallengeSignature(input: ChallengeSignature): Check {
  const { parseKey, parseSignature } = loadSshpk();
  let key: sshpk.Key;
  try {
    key = parseKey(input.publicKeyLine.trim(), 'ssh');
  } catch {
    return 'unreadable public key';
  }
  const blob = typeof input.signatureBlob === 'string' ? Buffer.from(input.signatureBlob, 'base64') : input.signatureBlob;
  let parsed: SshSignature;
  try {
    parsed = parseSshSignature(blob);
  } catch (err) {
    return `malformed signature: ${(err as Error).message}`;
  }
  if (parsed.algorithm === 'ssh-rsa') return 'ssh-rsa (SHA-1) signatures are refused; use rsa-sha2-256 or rsa-sha2-512';
  const alg = ALGORITHMS[parsed.algorithm];
  if (!alg) return `unsupported signature algorithm ${parsed.algorithm}`;
  if (key.type !== alg.keyType) return `a ${parsed.algorithm} signature cannot come from a ${key.type} key`;
  if (alg.curve && key.curve !== alg.curve) return `a ${parsed.algorithm} signature cannot come from a ${key.curve} key`;
  let sig: sshpk.Signature;
  try {
    sig = parseSignature(blob, alg.keyType, 'ssh');
  } catch {
    return 'malformed signature';
  }
  const message = typeof input.message === 'string' ? Buffer.from(input.message, 'utf8') : input.message;
  try {
    const verifier = key.createVerify(alg.hash);
    verifier.update(message);
    return verifier.verify(sig) ? true : 'signature does not match';
  } catch {
    return 'signature does not match';
  }
}

/** Whether the signature over `message` was made by the private half of `publicKeyLine` (SHA-2 only). */
export function verifyChallengeSignature(input: ChallengeSignature): boolean {
  return checkChallengeSignature(input) === true;
}

export interface NonceBookOptions {
  /** How long an issued nonce stays valid (default 60 s). */
  ttlMs?: number;
  /** Most outstanding nonces kept (default 10,000); beyond it the busiest source loses its oldest. */
  maxSize?: number;
  /** Most outstanding nonces of one source (default 64); beyond it that source loses its oldest. */
  maxPerSource?: number;
  /** Clock in ms (default Date.now). */
  now?: () => number;
  /** Source of random bytes (default crypto.randomBytes). */
  random?: (n: number) => Buffer;
}

export type NonceResult = 'ok' | 'unknown' | 'expired';

/**
 * Outstanding challenges, in memory: each nonce is accepted once, before it expires. Memory stays
 * bounded: expired nonces are swept as new ones are issued, one source holds at most `maxPerSource`
 * (its own oldest make room), and past `maxSize` the source holding the most loses its oldest — so a
 * flood from one client cannot push out the challenges other clients are answering.
 */
export class NonceBook {
  readonly ttlMs: number;
  readonly maxSize: number;
  readonly maxPerSource: number;
  private readonly now: () => number;
  private readonly random: (n: number) => Buffer;
  /** nonce -> expiry (ms) and source; Map order is issue order. */
  private readonly pending = new Map<string, { expires: number; source: string }>();
  /** source -> its outstanding nonces, oldest first. */
  private readonly bySource = new Map<string, string[]>();

  constructor(opts: NonceBookOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.maxSize = opts.maxSize ?? 10_000;
    this.maxPerSource = opts.maxPerSource ?? 64;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? randomBytes;
    if (!(this.ttlMs > 0) || !(this.maxSize > 0) || !(this.maxPerSource > 0)) {
      throw new Error('NonceBook needs a positive ttlMs, maxSize and maxPerSource');
    }
  }

  /** Issues a fresh challenge to `source` (the client's address; one shared source by default). */
  issue(source = ''): Challenge {
    const now = this.now();
    this.sweep(now);
    const own = this.bySource.get(source);
    while (own && own.length >= this.maxPerSource) this.drop(own[0] as string);
    while (this.pending.size >= this.maxSize) {
      const busiest = this.busiestSource();
      if (busiest === undefined) break;
      this.drop(busiest[0] as string);
    }
    const nonce = this.random(NONCE_BYTES).toString('base64url');
    const expires = now + this.ttlMs;
    this.pending.set(nonce, { expires, source });
    const list = this.bySource.get(source);
    if (list) list.push(nonce);
    else this.bySource.set(source, [nonce]);
    return { nonce, issuedAt: new Date(now).toISOString(), expiresAt: new Date(expires).toISOString() };
  }

  /** Uses up a nonce and says why it was refused, if it was. A nonce is gone after the first call. */
  take(nonce: string): NonceResult {
    const entry = this.pending.get(nonce);
    if (entry === undefined) return 'unknown';
    this.drop(nonce);
    return this.now() < entry.expires ? 'ok' : 'expired';
  }

  /** True exactly once per issued, unexpired nonce; replays and expired nonces give false. */
  consume(nonce: string): boolean {
    return this.take(nonce) === 'ok';
  }

  /** Outstanding nonces (including expired ones not yet swept). */
  get size(): number {
    return this.pending.size;
  }

  private drop(nonce: string): void {
    const entry = this.pending.get(nonce);
    if (!entry) return;
    this.pending.delete(nonce);
    const list = this.bySource.get(entry.source);
    if (!list) return;
    const at = list.indexOf(nonce);
    if (at !== -1) list.splice(at, 1);
    if (list.length === 0) this.bySource.delete(entry.source);
  }

  private busiestSource(): string[] | undefined {
    let busiest: string[] | undefined;
    for (const list of this.bySource.values()) if (!busiest || list.length > busiest.length) busiest = list;
    return busiest;
  }

  private sweep(now: number): void {
    // Expiries grow with issue order (fixed TTL), so expired entries sit at the front.
    for (const [nonce, { expires }] of this.pending) {
      if (expires > now) break;
      this.drop(nonce);
    }
  }
}
