// A minimal client for the OpenSSH agent protocol (draft-miller-ssh-agent): list keys and sign.
// Every request opens its own connection to SSH_AUTH_SOCK, sends one framed message
// (uint32 length, byte type, payload) and reads one framed answer.
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { WireReader, wireString, wireUint32 } from '../../../lib/ssh-wire.js';

const SSH_AGENT_FAILURE = 5;
const SSH2_AGENTC_REQUEST_IDENTITIES = 11;
const SSH2_AGENT_IDENTITIES_ANSWER = 12;
const SSH2_AGENTC_SIGN_REQUEST = 13;
const SSH2_AGENT_SIGN_RESPONSE = 14;
const SSH2_AGENT_FAILURE = 30;
const SSH_COM_AGENT2_FAILURE = 102;

/** Sign-request flags: ask for rsa-sha2-256 / rsa-sha2-512 instead of SHA-1 `ssh-rsa`. */
export const SSH_AGENT_RSA_SHA2_256 = 2;
export const SSH_AGENT_RSA_SHA2_512 = 4;

/** OpenSSH's own cap on one agent message. */
const MAX_MESSAGE_BYTES = 256 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;

export const NO_AGENT_MESSAGE = 'no ssh-agent: SSH_AUTH_SOCK is not set; run eval `ssh-agent` ; ssh-add';

export interface AgentIdentity {
  /** Key type from the blob, e.g. `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`. */
  type: string;
  /** The public key in SSH wire format. */
  blob: Buffer;
  comment: string;
  /** OpenSSH public key line: `type base64 comment` (without the comment when it is empty). */
  line: string;
  /** `SHA256:...` as printed by `ssh-keygen -l`. */
  fingerprint: string;
}

export interface SshAgentOptions {
  /** Agent socket; default `env.SSH_AUTH_SOCK`. */
  socketPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Per-request deadline in ms (default 10 s; signing may wait for a confirmation prompt). */
  timeoutMs?: number;
}

export interface SignOptions {
  /** For `ssh-rsa` keys: which SHA-2 signature to ask for (default 256). SHA-1 is never requested. */
  rsaHash?: 'sha256' | 'sha512';
}

/** The agent socket path from the environment; throws the "no ssh-agent" error when unset. */
export function agentSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const sock = env.SSH_AUTH_SOCK?.trim();
  if (!sock) throw new Error(NO_AGENT_MESSAGE);
  return sock;
}

export class SshAgentClient {
  readonly socketPath: string;
  readonly timeoutMs: number;

  constructor(opts: SshAgentOptions = {}) {
    this.socketPath = opts.socketPath ?? agentSocketPath(opts.env);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The agent's keys, in the agent's order (may be empty). */
  async listIdentities(): Promise<AgentIdentity[]> {
    const reply = await this.request(Buffer.from([SSH2_AGENTC_REQUEST_IDENTITIES]));
    const type = reply[0];
    if (type === SSH_AGENT_FAILURE || type === SSH2_AGENT_FAILURE || type === SSH_COM_AGENT2_FAILURE) {
      throw new Error('ssh-agent refused to list its keys (is it locked? try ssh-add -X)');
    }
    if (type !== SSH2_AGENT_IDENTITIES_ANSWER) throw new Error(`ssh-agent answered with unexpected message type ${type}`);
    const r = new WireReader(reply, 1);
    const count = r.uint32();
    if (count > 10_000) throw new Error(`ssh-agent claims ${count} keys`);
    const keys: AgentIdentity[] = [];
    for (let i = 0; i < count; i++) {
      const blob = r.string();
      const comment = r.string().toString('utf8');
      keys.push(identityFromBlob(blob, comment));
    }
    return keys;
  }

  /** Like `listIdentities`, but an empty agent is an error (`ssh-agent has no keys; run ssh-add`). */
  async requireIdentities(): Promise<AgentIdentity[]> {
    const keys = await this.listIdentities();
    if (keys.length === 0) throw new Error(`ssh-agent at ${this.socketPath} has no keys; run ssh-add`);
    return keys;
  }

  /**
   * Signs `data` with one of the agent's keys (an identity, its public line or its wire blob) and
   * returns the SSH signature blob (`string algorithm, string signature`). RSA keys sign with SHA-2.
   */
  async sign(key: AgentIdentity | string | Buffer, data: Buffer | string, opts: SignOptions = {}): Promise<Buffer> {
    const blob = keyBlob(key);
    const keyType = readKeyType(blob);
    const flags = keyType === 'ssh-rsa' || keyType === 'ssh-rsa-cert-v01@openssh.com'
      ? opts.rsaHash === 'sha512' ? SSH_AGENT_RSA_SHA2_512 : SSH_AGENT_RSA_SHA2_256
      : 0;
    const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const msg = Buffer.concat([Buffer.from([SSH2_AGENTC_SIGN_REQUEST]), wireString(blob), wireString(payload), wireUint32(flags)]);
    const reply = await this.request(msg);
    const type = reply[0];
    if (type === SSH_AGENT_FAILURE || type === SSH2_AGENT_FAILURE || type === SSH_COM_AGENT2_FAILURE) {
      throw new Error(
        `ssh-agent refused to sign with ${keyType} ${fingerprintOf(blob)} (key not in the agent, or confirmation denied)`,
      );
    }
    if (type !== SSH2_AGENT_SIGN_RESPONSE) throw new Error(`ssh-agent answered with unexpected message type ${type}`);
    const r = new WireReader(reply, 1);
    const signature = r.string();
    r.end();
    const algo = new WireReader(signature, 0).string().toString('latin1');
    if (algo === 'ssh-rsa') {
      throw new Error('ssh-agent returned an ssh-rsa (SHA-1) signature; upgrade OpenSSH to 7.2 or newer');
    }
    return signature;
  }

  /** Sends one message body (without the length) and resolves with the reply body. */
  private request(body: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolvePromise, rejectPromise) => {
      const sock = connect({ path: this.socketPath });
      const chunks: Buffer[] = [];
      let received = 0;
      let expected = -1;
      let settled = false;
      const finish = (err: Error | null, value?: Buffer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        if (err) rejectPromise(err);
        else resolvePromise(value as Buffer);
      };
      const timer = setTimeout(
        () => finish(new Error(`ssh-agent at ${this.socketPath} did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      sock.on('connect', () => sock.write(Buffer.concat([wireUint32(body.length), body])));
      sock.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        if (expected < 0 && received >= 4) {
          expected = Buffer.concat(chunks).readUInt32BE(0);
          if (expected === 0 || expected > MAX_MESSAGE_BYTES) {
            finish(new Error(`ssh-agent sent a malformed message (length ${expected})`));
            return;
          }
        }
        if (expected >= 0 && received >= 4 + expected) {
          finish(null, Buffer.concat(chunks).subarray(4, 4 + expected));
        }
      });
      sock.on('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? 'no agent is listening there (stale SSH_AUTH_SOCK?)'
          : err.code ?? err.message;
        finish(new Error(`cannot talk to ssh-agent at ${this.socketPath}: ${why}`));
      });
      sock.on('close', () => finish(new Error(`ssh-agent at ${this.socketPath} closed the connection without answering`)));
    });
  }
}

/** Builds an identity (type, line, fingerprint) from a public key wire blob. */
export function identityFromBlob(blob: Buffer, comment = ''): AgentIdentity {
  const type = readKeyType(blob);
  const clean = comment.replace(/[\r\n\0]/g, ' ').trim();
  const base = `${type} ${blob.toString('base64')}`;
  return { type, blob, comment: clean, line: clean ? `${base} ${clean}` : base, fingerprint: fingerprintOf(blob) };
}

/** `SHA256:...` fingerprint of a public key blob, without base64 padding (as ssh-keygen prints it). */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function keyBlob(key: AgentIdentity | string | Buffer): Buffer {
  if (Buffer.isBuffer(key)) return key;
  if (typeof key !== 'string') return key.blob;
  const b64 = key.trim().split(/\s+/)[1];
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error('not an OpenSSH public key line ("TYPE BASE64 [COMMENT]")');
  return Buffer.from(b64, 'base64');
}

function readKeyType(blob: Buffer): string {
  const type = new WireReader(blob, 0).string().toString('latin1');
  if (!/^[a-z0-9@.-]{1,64}$/.test(type)) throw new Error('malformed ssh public key blob');
  return type;
}
