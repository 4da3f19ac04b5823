import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sshpk from 'sshpk';
import {
  CHALLENGE_CONTEXT,
  NonceBook,
  audienceOf,
  challengeMessage,
  checkChallengeSignature,
  isNonce,
  parseSshSignature,
  verifyChallengeSignature,
} from '../../../src/lib/auth-challenge.js';
import { wireString } from '../../../src/lib/ssh-wire.js';

/** A real key pair from ssh-keygen: the public line and an sshpk private key to sign with. */
function keyPair(type: string, bits?: number): { publicLine: string; priv: sshpk.PrivateKey } {
  const dir = mkdtempSync(join(tmpdir(), 'cw-auth-'));
  try {
    const file = join(dir, 'k');
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', file, ...(bits ? ['-b', String(bits)] : [])], { stdio: 'pipe' });
    return { publicLine: readFileSync(`${file}.pub`, 'utf8').trim(), priv: sshpk.parsePrivateKey(readFileSync(file, 'utf8'), 'ssh') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sshSign(priv: sshpk.PrivateKey, message: Buffer | string, hash?: sshpk.AlgorithmHashType): Buffer {
  // sshpk names an ECDSA signature's curve by the length of its numbers: when r or s happens to be
  // short (a leading zero byte, about 1 in 128) it writes `ecdsa-sha2-undefined`. ECDSA signatures are
  // random, so such a signature is made again; an ssh-agent (what admins use) has no such quirk.
  for (let attempt = 0; ; attempt++) {
    const signer = priv.createSign(hash ?? (priv.type === 'ed25519' ? 'sha512' : 'sha256'));
    signer.update(typeof message === 'string' ? Buffer.from(message) : message);
    const blob = signer.sign().toBuffer('ssh');
    if (priv.type !== 'ecdsa' || attempt >= 20 || parseSshSignature(blob).algorithm === `ecdsa-sha2-${priv.curve}`) return blob;
  }
}

const NONCE = 'A'.repeat(43);

test('the signed bytes are exactly context, user, nonce and audience on their own lines', (t) => {
  const msg = challengeMessage('alice', NONCE, 'https://head.example:8443');
  t.is(msg.toString('utf8'), `cw-headnode-auth-v1\nalice\n${NONCE}\nhttps://head.example:8443`);
  t.is(CHALLENGE_CONTEXT, 'cw-headnode-auth-v1');
});

test('challengeMessage refuses parts that could smuggle another line', (t) => {
  t.throws(() => challengeMessage('alice\nroot', NONCE, 'https://h'), { message: /invalid admin name/ });
  t.throws(() => challengeMessage('alice', `${NONCE}\n`, 'https://h'), { message: 'invalid nonce' });
  t.throws(() => challengeMessage('alice', 'short', 'https://h'), { message: 'invalid nonce' });
  t.throws(() => challengeMessage('alice', NONCE, 'https://h/api/v1'), { message: /must be an origin/ });
  t.throws(() => challengeMessage('alice', NONCE, 'ftp://h'), { message: /invalid API URL/ });
});

test('the audience is the origin of the API URL', (t) => {
  t.is(audienceOf('https://10.54.0.123/api/v1'), 'https://10.54.0.123');
  t.is(audienceOf('https://Head:443/api/v1/'), 'https://head');
  t.is(audienceOf('http://head:8080/api/v1'), 'http://head:8080');
  t.throws(() => audienceOf('not a url'), { message: 'invalid API URL "not a url"' });
});

test('issued nonces are 32 random bytes in base64url with ISO times', (t) => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  const book = new NonceBook({ ttlMs: 60_000, now: () => now });
  const c = book.issue();
  t.true(isNonce(c.nonce));
  t.is(Buffer.from(c.nonce, 'base64url').length, 32);
  t.is(c.issuedAt, '2026-03-01T12:00:00.000Z');
  t.is(c.expiresAt, '2026-03-01T12:01:00.000Z');
  t.not(book.issue().nonce, c.nonce);
});

test('a nonce is accepted once; replays, unknown and expired nonces are refused', (t) => {
  let now = 1_000_000;
  const book = new NonceBook({ ttlMs: 10_000, now: () => now });
  const a = book.issue();
  const b = book.issue();
  t.true(book.consume(a.nonce));
  t.false(book.consume(a.nonce), 'replay');
  t.is(book.take(a.nonce), 'unknown');
  t.false(book.consume(NONCE), 'never issued');
  now += 9_999;
  const c = book.issue();
  now += 1;
  t.is(book.take(b.nonce), 'expired', 'expires exactly at expiresAt');
  t.false(book.consume(b.nonce), 'an expired nonce is gone too');
  t.true(book.consume(c.nonce));
});

test('the book stays bounded: expired nonces are swept, the oldest dropped when full', (t) => {
  let now = 0;
  const book = new NonceBook({ ttlMs: 1_000, maxSize: 3, now: () => now });
  const first = book.issue();
  book.issue();
  book.issue();
  const fourth = book.issue();
  t.is(book.size, 3);
  t.false(book.consume(first.nonce), 'the oldest was dropped');
  t.true(book.consume(fourth.nonce));
  now = 5_000;
  book.issue();
  t.is(book.size, 1, 'expired ones were swept');
});

test('a flood from one source evicts only its own oldest challenges, never another source\'s', (t) => {
  const book = new NonceBook({ ttlMs: 60_000, maxSize: 100, maxPerSource: 5, now: () => 0 });
  const victim = book.issue('10.0.0.2');
  const flood = Array.from({ length: 1000 }, () => book.issue('10.0.0.66'));
  t.is(book.size, 6);
  t.true(book.consume(victim.nonce));
  t.false(book.consume(flood[0]!.nonce), 'the flooder lost its own oldest');
  t.true(book.consume(flood[999]!.nonce));
});

test('when the whole book is full, the source holding the most loses its oldest', (t) => {
  const book = new NonceBook({ ttlMs: 60_000, maxSize: 6, maxPerSource: 4, now: () => 0 });
  const a = book.issue('a');
  const b = [book.issue('b'), book.issue('b'), book.issue('b'), book.issue('b')];
  book.issue('c');
  book.issue('d');
  t.is(book.size, 6);
  t.true(book.consume(a.nonce));
  t.false(book.consume(b[0]!.nonce));
  t.true(book.consume(b[1]!.nonce));
});

test('random source and clock are injectable', (t) => {
  const book = new NonceBook({ random: (n) => Buffer.alloc(n, 0xff), now: () => 0 });
  t.is(book.issue().nonce, '_'.repeat(42) + '8');
  t.throws(() => new NonceBook({ ttlMs: 0 }));
});

test('signatures by ed25519, rsa-sha2-256/512 and ecdsa keys verify; others do not', (t) => {
  const msg = challengeMessage('alice', NONCE, 'https://head');
  const ed = keyPair('ed25519');
  const rsa = keyPair('rsa', 3072);
  const ec256 = keyPair('ecdsa', 256);
  const ec384 = keyPair('ecdsa', 384);
  const cases: Array<[string, typeof ed, Buffer]> = [
    ['ssh-ed25519', ed, sshSign(ed.priv, msg)],
    ['rsa-sha2-256', rsa, sshSign(rsa.priv, msg, 'sha256')],
    ['rsa-sha2-512', rsa, sshSign(rsa.priv, msg, 'sha512')],
    ['ecdsa-sha2-nistp256', ec256, sshSign(ec256.priv, msg, 'sha256')],
    ['ecdsa-sha2-nistp384', ec384, sshSign(ec384.priv, msg, 'sha384')],
  ];
  for (const [alg, key, blob] of cases) {
    t.is(parseSshSignature(blob).algorithm, alg);
    t.true(verifyChallengeSignature({ publicKeyLine: key.publicLine, message: msg, signatureBlob: blob }), alg);
    for (const [, other] of cases) {
      if (other !== key) t.false(verifyChallengeSignature({ publicKeyLine: other.publicLine, message: msg, signatureBlob: blob }), alg);
    }
    t.false(verifyChallengeSignature({ publicKeyLine: key.publicLine, message: Buffer.concat([msg, Buffer.from('x')]), signatureBlob: blob }));
  }
});

test('a signature relabelled with another algorithm is refused', (t) => {
  const rsa = keyPair('rsa', 2048);
  const blob = sshSign(rsa.priv, 'm', 'sha256');
  const raw = parseSshSignature(blob).signature;
  const relabelled = Buffer.concat([wireString('rsa-sha2-512'), wireString(raw)]);
  t.false(verifyChallengeSignature({ publicKeyLine: rsa.publicLine, message: 'm', signatureBlob: relabelled }));
  const sha1 = Buffer.concat([wireString('ssh-rsa'), wireString(raw)]);
  t.regex(checkChallengeSignature({ publicKeyLine: rsa.publicLine, message: 'm', signatureBlob: sha1 }) as string, /SHA-1/);
});

test('garbage never verifies and never throws', (t) => {
  const ed = keyPair('ed25519');
  const good = sshSign(ed.priv, 'm');
  const inputs: Array<Buffer | string> = [
    Buffer.alloc(0),
    Buffer.from([0, 0, 0, 200, 1]),
    Buffer.concat([good, Buffer.from([0])]),
    Buffer.concat([wireString('ssh-ed25519'), wireString(Buffer.alloc(10))]),
    Buffer.concat([wireString('ssh-dss'), wireString(Buffer.alloc(40))]),
    Buffer.concat([wireString('sk-ssh-ed25519@openssh.com'), wireString(Buffer.alloc(64))]),
    '!!!not base64',
  ];
  for (const signatureBlob of inputs) {
    t.notThrows(() => t.false(verifyChallengeSignature({ publicKeyLine: ed.publicLine, message: 'm', signatureBlob })));
  }
  t.false(verifyChallengeSignature({ publicKeyLine: 'ssh-ed25519 AAAA', message: 'm', signatureBlob: good }));
  t.is(checkChallengeSignature({ publicKeyLine: 'nonsense', message: 'm', signatureBlob: good }), 'unreadable public key');
  t.true(verifyChallengeSignature({ publicKeyLine: ed.publicLine, message: 'm', signatureBlob: good.toString('base64') }));
});
