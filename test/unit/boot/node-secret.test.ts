// Node secrets: their form, the stored hash, the constant-time check, and the counting of refusals.
import test from 'ava';
import { createHash } from 'node:crypto';
import { checkNodeSecret, hashNodeSecret, isNodeSecret, newNodeSecret, RefusalCounter } from '../../../src/appliance/boot/node-secret.js';

test('a new secret is 256 random bits as 43 base64url characters, different every time', (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const s = newNodeSecret();
    t.true(isNodeSecret(s), s);
    t.is(Buffer.from(s, 'base64url').length, 32);
    seen.add(s);
  }
  t.is(seen.size, 200);
  for (const bad of ['', 'x'.repeat(42), 'x'.repeat(44), `${'x'.repeat(42)}$`, `${'x'.repeat(42)}=`, `${'x'.repeat(41)} y`, 42, null]) t.false(isNodeSecret(bad), String(bad));
});

test('the stored form is the SHA-256 in hex, and only the right secret matches it', (t) => {
  const secret = newNodeSecret();
  const hash = hashNodeSecret(secret);
  t.is(hash, createHash('sha256').update(secret).digest('hex'));
  t.regex(hash, /^[0-9a-f]{64}$/);
  t.is(checkNodeSecret(secret, hash), 'ok');
  t.is(checkNodeSecret(undefined, hash), 'missing');
  t.is(checkNodeSecret('', hash), 'missing');
  t.is(checkNodeSecret(['a'], hash), 'missing');
  t.is(checkNodeSecret(newNodeSecret(), hash), 'wrong');
  t.is(checkNodeSecret(`${secret} `, hash), 'wrong');
  t.is(checkNodeSecret(hash, hash), 'wrong', 'the hash itself is no secret');
  t.is(checkNodeSecret(secret, undefined), 'wrong', 'a node without a secret accepts none');
  t.is(checkNodeSecret(secret, 'not a hash'), 'wrong');
  t.is(checkNodeSecret('x'.repeat(100_000), hash), 'wrong');
});

test('refusals are counted; the log gets one line per source and interval, with how many it left out', (t) => {
  const lines: string[] = [];
  let now = Date.parse('2025-06-01T12:00:00Z');
  const counter = new RefusalCounter({ log: (l) => lines.push(l), clock: () => now, logEveryMs: 60_000, maxSources: 2 });
  t.deepEqual(counter.stats(), { total: 0, missing: 0, wrong: 0, last: null });
  counter.refuse('10.0.0.66', '52:54:00:00:00:01', 'missing');
  counter.refuse('10.0.0.66', '52:54:00:00:00:01', 'wrong');
  counter.refuse('10.0.0.66', '52:54:00:00:00:02', 'wrong');
  counter.refuse('10.0.0.67', '52:54:00:00:00:01', 'wrong');
  now += 60_000;
  counter.refuse('10.0.0.66', '52:54:00:00:00:01', 'wrong');
  t.deepEqual(lines, [
    'refused a status report for 52:54:00:00:00:01 from 10.0.0.66 without a node secret',
    'refused a status report for 52:54:00:00:00:01 from 10.0.0.67 with a wrong node secret',
    'refused a status report for 52:54:00:00:00:01 from 10.0.0.66 with a wrong node secret (and 2 more from 10.0.0.66 since the last line)',
  ]);
  t.deepEqual(counter.stats(), { total: 5, missing: 1, wrong: 4, last: { at: '2025-06-01T12:01:00.000Z', source: '10.0.0.66', mac: '52:54:00:00:00:01', reason: 'wrong' } });
  // Many sources: the memory of the rate limit stays bounded (the oldest are forgotten and logged again).
  for (let i = 0; i < 100; i++) counter.refuse(`10.0.1.${i}`, '52:54:00:00:00:01', 'missing');
  t.is(counter.stats().total, 105);
  t.is(lines.length, 103);
});
