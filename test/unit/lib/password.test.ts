import test from 'ava';
import { hashPassword, isPasswordHash, verifyPassword } from '../../../src/lib/password.js';

test('a hash has the documented scrypt format and verifies', async (t) => {
  const hash = await hashPassword('correct horse battery staple');
  t.regex(hash, /^\$scrypt\$ln=16,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
  t.true(isPasswordHash(hash));
  t.true(await verifyPassword('correct horse battery staple', hash));
});

test('a wrong password does not verify', async (t) => {
  const hash = await hashPassword('s3cret');
  t.false(await verifyPassword('s3cret ', hash));
  t.false(await verifyPassword('S3cret', hash));
  t.false(await verifyPassword('', hash));
});

test('the same password hashes differently each time (random salt)', async (t) => {
  const [a, b] = await Promise.all([hashPassword('same'), hashPassword('same')]);
  t.not(a, b);
  t.true(await verifyPassword('same', b));
});

test('an empty password cannot be hashed', async (t) => {
  await t.throwsAsync(hashPassword(''), { message: /empty password/ });
});

test('composed and decomposed unicode spellings verify alike', async (t) => {
  const hash = await hashPassword('caf\u00e9');
  t.true(await verifyPassword('cafe\u0301', hash));
});

test('malformed hashes are not hashes and never verify', async (t) => {
  const good = await hashPassword('pw');
  const malformed = [
    '',
    'pw',
    'hunter2',
    good.slice(0, -4),
    good.replace('$scrypt$', '$argon2id$'),
    good.replace('ln=16', 'ln=4'),
    good.replace('ln=16', 'ln=30'),
    `${good}\n`,
    `${good}x`,
  ];
  for (const value of malformed) {
    t.false(isPasswordHash(value), value);
    t.false(await verifyPassword('pw', value), value);
  }
});
