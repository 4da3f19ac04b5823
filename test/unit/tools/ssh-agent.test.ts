// Runs against a real OpenSSH ssh-agent started for this file and killed at the end.
import test from 'ava';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sshpk from 'sshpk';
import { NonceBook, audienceOf, challengeMessage, checkChallengeSignature, parseSshSignature, verifyChallengeSignature } from '../../../src/lib/auth-challenge.js';
import { NO_AGENT_MESSAGE, SshAgentClient, agentSocketPath, fingerprintOf } from '../../../src/tools/common/client/ssh-agent.js';
import { wireString } from '../../../src/lib/ssh-wire.js';
import { startSshAgent } from '../../helpers/ssh-agent.js';

const dir = mkdtempSync(join(tmpdir(), 'cw-agent-'));
const agents: ChildProcess[] = [];
const servers: Server[] = [];

interface KeyFiles {
  privatePath: string;
  publicLine: string;
  fingerprint: string;
}

function keygen(name: string, type: string, bits?: number): KeyFiles {
  const privatePath = join(dir, name);
  const args = ['-q', '-t', type, '-N', '', '-f', privatePath, '-C', `${name}@test`];
  if (bits) args.push('-b', String(bits));
  execFileSync('ssh-keygen', args, { stdio: 'pipe' });
  const fingerprint = execFileSync('ssh-keygen', ['-lf', `${privatePath}.pub`], { encoding: 'utf8' }).split(' ')[1] as string;
  return { privatePath, publicLine: readFileSync(`${privatePath}.pub`, 'utf8').trim(), fingerprint };
}

async function startAgent(name: string): Promise<string> {
  const sock = join(dir, `${name}.sock`);
  agents.push(await startSshAgent(sock));
  return sock;
}

function sshAdd(sock: string, key: KeyFiles): void {
  execFileSync('ssh-add', ['-q', key.privatePath], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
}

/** A fake agent socket that answers every request with `reply(request)` (or never, when it returns null). */
async function fakeAgent(name: string, reply: (req: Buffer, sock: Socket) => void): Promise<string> {
  const path = join(dir, `${name}.sock`);
  const server = createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) reply(buf.subarray(4), sock);
    });
    sock.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return path;
}

function frame(body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

const ed = keygen('ed', 'ed25519');
const rsa = keygen('rsa', 'rsa', 3072);
const ecdsa = keygen('ecdsa', 'ecdsa', 256);
const stranger = keygen('stranger', 'ed25519');
let sock = '';
let emptySock = '';

test.before(async () => {
  sock = await startAgent('main');
  for (const key of [ed, rsa, ecdsa]) sshAdd(sock, key);
  emptySock = await startAgent('empty');
});

test.after.always(async () => {
  for (const child of agents) {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }
  for (const server of servers) server.close();
  rmSync(dir, { recursive: true, force: true });
});

const sameKey = (line: string) => line.split(' ').slice(0, 2).join(' ');

test('lists the agent keys as OpenSSH public lines with their fingerprints', async (t) => {
  const keys = await new SshAgentClient({ socketPath: sock }).listIdentities();
  t.deepEqual(keys.map((k) => k.type), ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256']);
  t.deepEqual(keys.map((k) => k.line), [ed.publicLine, rsa.publicLine, ecdsa.publicLine]);
  t.deepEqual(keys.map((k) => k.fingerprint), [ed.fingerprint, rsa.fingerprint, ecdsa.fingerprint]);
  t.is(keys[0]?.comment, 'ed@test');
});

test('SSH_AUTH_SOCK is taken from the environment', async (t) => {
  t.is(agentSocketPath({ SSH_AUTH_SOCK: sock }), sock);
  const keys = await new SshAgentClient({ env: { SSH_AUTH_SOCK: sock } }).listIdentities();
  t.is(keys.length, 3);
});

test('ed25519, rsa (SHA-2) and ecdsa signatures from the agent verify', async (t) => {
  const agent = new SshAgentClient({ socketPath: sock });
  const message = challengeMessage('alice', new NonceBook().issue().nonce, audienceOf('https://head.example/api/v1'));
  const expected: Record<string, string> = {
    'ssh-ed25519': 'ssh-ed25519',
    'ssh-rsa': 'rsa-sha2-256',
    'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256',
  };
  for (const key of await agent.listIdentities()) {
    const signatureBlob = await agent.sign(key, message);
    t.is(parseSshSignature(signatureBlob).algorithm, expected[key.type] ?? '?', key.type);
    t.true(verifyChallengeSignature({ publicKeyLine: key.line, message, signatureBlob }), key.type);
  }
});

test('rsa keys can sign with rsa-sha2-512; keys may be named by their public line', async (t) => {
  const agent = new SshAgentClient({ socketPath: sock });
  const signatureBlob = await agent.sign(rsa.publicLine, 'hello', { rsaHash: 'sha512' });
  t.is(parseSshSignature(signatureBlob).algorithm, 'rsa-sha2-512');
  t.true(verifyChallengeSignature({ publicKeyLine: rsa.publicLine, message: 'hello', signatureBlob }));
  t.true(verifyChallengeSignature({ publicKeyLine: rsa.publicLine, message: 'hello', signatureBlob: signatureBlob.toString('base64') }));
});

test('a signature does not verify for another key or a tampered message', async (t) => {
  const agent = new SshAgentClient({ socketPath: sock });
  const message = challengeMessage('alice', new NonceBook().issue().nonce, 'https://head');
  const sigEd = await agent.sign(ed.publicLine, message);
  const sigRsa = await agent.sign(rsa.publicLine, message);
  t.false(verifyChallengeSignature({ publicKeyLine: stranger.publicLine, message, signatureBlob: sigEd }));
  t.false(verifyChallengeSignature({ publicKeyLine: rsa.publicLine, message, signatureBlob: sigEd }));
  t.false(verifyChallengeSignature({ publicKeyLine: ecdsa.publicLine, message, signatureBlob: sigRsa }));
  const tampered = Buffer.from(message);
  tampered.writeUInt8(tampered.readUInt8(tampered.length - 1) ^ 1, tampered.length - 1);
  t.false(verifyChallengeSignature({ publicKeyLine: ed.publicLine, message: tampered, signatureBlob: sigEd }));
  t.false(verifyChallengeSignature({ publicKeyLine: rsa.publicLine, message: tampered, signatureBlob: sigRsa }));
  const otherUser = challengeMessage('mallory', message.toString().split('\n')[2] as string, 'https://head');
  t.false(verifyChallengeSignature({ publicKeyLine: ed.publicLine, message: otherUser, signatureBlob: sigEd }));
});

test('the whole exchange: nonce once, before expiry, signed through the agent', async (t) => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const book = new NonceBook({ ttlMs: 30_000, now: () => now });
  const agent = new SshAgentClient({ socketPath: sock });
  const [key] = await agent.requireIdentities();
  const audience = audienceOf('https://head.example/api/v1');

  const serverSide = (nonce: string, signatureBlob: Buffer) =>
    book.consume(nonce) &&
    verifyChallengeSignature({ publicKeyLine: ed.publicLine, message: challengeMessage('alice', nonce, audience), signatureBlob });

  const first = book.issue();
  const sig = await agent.sign(key!, challengeMessage('alice', first.nonce, audience));
  t.true(serverSide(first.nonce, sig));
  t.false(serverSide(first.nonce, sig), 'a replayed nonce is refused');

  const late = book.issue();
  const lateSig = await agent.sign(key!, challengeMessage('alice', late.nonce, audience));
  now += 30_000;
  t.is(book.take(late.nonce), 'expired');
  t.false(serverSide(late.nonce, lateSig), 'an expired nonce is refused');
});

test('an ssh-rsa (SHA-1) signature is refused even though it is valid', (t) => {
  const priv = sshpk.parsePrivateKey(readFileSync(rsa.privatePath, 'utf8'), 'ssh');
  const signer = priv.createSign('sha1');
  signer.update('hello');
  const blob = signer.sign().toBuffer('ssh');
  t.is(parseSshSignature(blob).algorithm, 'ssh-rsa');
  t.false(verifyChallengeSignature({ publicKeyLine: rsa.publicLine, message: 'hello', signatureBlob: blob }));
  t.regex(checkChallengeSignature({ publicKeyLine: rsa.publicLine, message: 'hello', signatureBlob: blob }) as string, /SHA-1/);
});

test('no SSH_AUTH_SOCK gives the setup hint', (t) => {
  t.throws(() => agentSocketPath({}), { message: NO_AGENT_MESSAGE });
  t.throws(() => new SshAgentClient({ env: { SSH_AUTH_SOCK: '' } }), {
    message: 'no ssh-agent: SSH_AUTH_SOCK is not set; run eval `ssh-agent` ; ssh-add',
  });
});

test('a stale socket path is a clear error', async (t) => {
  const agent = new SshAgentClient({ socketPath: join(dir, 'gone.sock') });
  await t.throwsAsync(agent.listIdentities(), { message: /^cannot talk to ssh-agent at .*gone.sock: no agent is listening there/ });
});

test('an agent without keys lists nothing, and requireIdentities says so', async (t) => {
  const agent = new SshAgentClient({ socketPath: emptySock });
  t.deepEqual(await agent.listIdentities(), []);
  await t.throwsAsync(agent.requireIdentities(), { message: /has no keys; run ssh-add$/ });
});

test('signing with a key the agent does not hold is refused', async (t) => {
  const agent = new SshAgentClient({ socketPath: sock });
  await t.throwsAsync(agent.sign(stranger.publicLine, 'x'), {
    message: `ssh-agent refused to sign with ssh-ed25519 ${stranger.fingerprint} (key not in the agent, or confirmation denied)`,
  });
  t.is(fingerprintOf(Buffer.from(stranger.publicLine.split(' ')[1] as string, 'base64')), stranger.fingerprint);
});

test('replies split into single bytes are reassembled', async (t) => {
  const keyBlob = Buffer.from(ed.publicLine.split(' ')[1] as string, 'base64');
  const path = await fakeAgent('slow', (_req, s) => {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(1);
    const reply = frame(Buffer.concat([Buffer.from([12]), count, wireString(keyBlob), wireString('dribbled')]));
    let i = 0;
    const tick = () => {
      if (i < reply.length) s.write(reply.subarray(i, ++i), () => setTimeout(tick, 1));
    };
    tick();
  });
  const keys = await new SshAgentClient({ socketPath: path }).listIdentities();
  t.is(keys[0]?.line, `${sameKey(ed.publicLine)} dribbled`);
});

test('an agent that never answers times out', async (t) => {
  const path = await fakeAgent('mute', () => {});
  const agent = new SshAgentClient({ socketPath: path, timeoutMs: 150 });
  await t.throwsAsync(agent.listIdentities(), { message: /did not answer within 150 ms$/ });
});

test('malformed and unexpected replies are errors, not hangs', async (t) => {
  const huge = await fakeAgent('huge', (_req, s) => s.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 12])));
  await t.throwsAsync(new SshAgentClient({ socketPath: huge }).listIdentities(), { message: /malformed message/ });
  const closing = await fakeAgent('closing', (_req, s) => s.end());
  await t.throwsAsync(new SshAgentClient({ socketPath: closing }).listIdentities(), { message: /closed the connection/ });
  const truncated = await fakeAgent('truncated', (_req, s) => s.write(frame(Buffer.from([12, 0, 0, 0, 1, 0, 0, 0, 50]))));
  await t.throwsAsync(new SshAgentClient({ socketPath: truncated }).listIdentities(), { message: /truncated/ });
  const failing = await fakeAgent('failing', (_req, s) => s.write(frame(Buffer.from([5]))));
  await t.throwsAsync(new SshAgentClient({ socketPath: failing }).sign(ed.publicLine, 'x'), { message: /^ssh-agent refused to sign/ });
  await t.throwsAsync(new SshAgentClient({ socketPath: failing }).listIdentities(), { message: /refused to list/ });
});

test('an agent answering with an ssh-rsa (SHA-1) signature is refused by the client', async (t) => {
  const priv = sshpk.parsePrivateKey(readFileSync(rsa.privatePath, 'utf8'), 'ssh');
  const signer = priv.createSign('sha1');
  signer.update('x');
  const sha1 = signer.sign().toBuffer('ssh');
  let flags = -1;
  const path = await fakeAgent('old', (req, s) => {
    flags = req.readUInt32BE(req.length - 4);
    s.write(frame(Buffer.concat([Buffer.from([14]), wireString(sha1)])));
  });
  await t.throwsAsync(new SshAgentClient({ socketPath: path }).sign(rsa.publicLine, 'x'), { message: /SHA-1/ });
  t.is(flags, 2, 'the client asked for rsa-sha2-256');
});
