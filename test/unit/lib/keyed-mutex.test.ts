import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedMutex } from '../../../src/lib/mutex.js';

test('sections of one key run one at a time in call order; other keys do not wait; idle keys are dropped', async (t) => {
  const locks = new KeyedMutex();
  const log: string[] = [];
  const section = (name: string, ms: number) => async () => {
    log.push(`${name}+`);
    await sleep(ms);
    log.push(`${name}-`);
    return name;
  };
  const failing = locks.run('a', async () => {
    throw new Error('boom');
  });
  const runs = Promise.all([locks.run('a', section('a1', 30)), locks.run('a', section('a2', 0)), locks.run('b', section('b1', 0))]);
  await t.throwsAsync(failing, { message: 'boom' });
  t.deepEqual(await runs, ['a1', 'a2', 'b1']);
  // b1 ran while a1 slept; a2 started only after a1 had ended.
  t.deepEqual(log.filter((e) => e.startsWith('a')), ['a1+', 'a1-', 'a2+', 'a2-']);
  t.true(log.indexOf('b1-') < log.indexOf('a1-'));
  t.is(locks.size, 0);
});
