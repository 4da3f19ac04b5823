import test from 'ava';
import { parsePublicKey } from '../../../src/lib/sshkey.js';
import { generateKey } from './keys.js';

const ed25519 = generateKey('ed25519', { comment: 'alice@laptop' });

test('an ed25519 key is accepted with the fingerprint ssh-keygen prints', (t) => {
  const info = parsePublicKey(ed25519.publicLine);
  t.is(info.type, 'ssh-ed25519');
  t.is(info.fingerprint, ed25519.fingerprint);
  t.is(info.comment, 'alice@laptop');
  t.is(info.line, ed25519.publicLine);
});

test('surrounding whitespace, a trailing newline and tabs are normalized away', (t) => {
  const [type, blob, comment] = ed25519.publicLine.split(' ');
  const info = parsePublicKey(`  ${type}\t${blob}   ${comment}\n`);
  t.is(info.line, `${type} ${blob} ${comment}`);
});

test('a key without a comment is accepted', (t) => {
  const [type, blob] = ed25519.publicLine.split(' ');
  const info = parsePublicKey(`${type} ${blob}`);
  t.is(info.comment, '');
  t.is(info.line, `${type} ${blob}`);
});

test('an RSA key of 2048 bits is accepted', (t) => {
  const key = generateKey('rsa', { bits: 2048 });
  const info = parsePublicKey(key.publicLine);
  t.is(info.type, 'ssh-rsa');
  t.is(info.bits, 2048);
  t.is(info.fingerprint, key.fingerprint);
});

test('an ECDSA key is accepted', (t) => {
  const key = generateKey('ecdsa', { bits: 256 });
  t.is(parsePublicKey(key.publicLine).type, 'ecdsa-sha2-nistp256');
});

test('an RSA key of 1024 bits is refused as too short', (t) => {
  const key = generateKey('rsa', { bits: 1024 });
  t.throws(() => parsePublicKey(key.publicLine), { message: /1024 bits is too short/ });
});

test('a DSA key is refused', (t) => {
  const key = generateKey('dsa');
  t.throws(() => parsePublicKey(key.publicLine), { message: /DSA keys are obsolete/ });
});

test('garbage and empty input are refused', (t) => {
  t.throws(() => parsePublicKey(''), { message: /empty/ });
  t.throws(() => parsePublicKey('   '), { message: /empty/ });
  t.throws(() => parsePublicKey('hello, world!'), { message: /not an OpenSSH public key line/ });
  t.throws(() => parsePublicKey('hello world'), { message: /unsupported ssh key type "hello"/ });
  t.throws(() => parsePublicKey('ssh-ed25519 AAAAnotreallyakey'), { message: /invalid ssh-ed25519 key data/ });
  t.throws(() => parsePublicKey('ssh-foo AAAAC3NzaC1lZDI1NTE5'), { message: /unsupported ssh key type/ });
});

test('two key lines are refused', (t) => {
  const other = generateKey('ed25519');
  t.throws(() => parsePublicKey(`${ed25519.publicLine}\n${other.publicLine}`), { message: /single line/ });
});

test('an authorized_keys options prefix is refused', (t) => {
  t.throws(() => parsePublicKey(`command="x" ${ed25519.publicLine}`), { message: /not an OpenSSH public key line/ });
  t.throws(() => parsePublicKey(`no-pty,from="10.0.0.1" ${ed25519.publicLine}`), { message: /not an OpenSSH public key line/ });
});

test('a private key is refused with a hint to give the .pub file', (t) => {
  t.throws(() => parsePublicKey(ed25519.privateText), { message: /private key/ });
});

test('key data of another type than announced is refused', (t) => {
  const rsa = generateKey('rsa', { bits: 2048 });
  const blob = rsa.publicLine.split(' ')[1];
  t.throws(() => parsePublicKey(`ssh-ed25519 ${blob}`));
});

test('control characters in the comment are refused', (t) => {
  t.throws(() => parsePublicKey(`${ed25519.publicLine}\u0007bell`));
  t.throws(() => parsePublicKey(`${ed25519.publicLine}\0`));
});
