// rpm's version order, against rpm itself: fixed cases with the known surprises, then many random
// versions compared by rpmVerCmp and by rpm's own rpm.vercmp (its Lua binding of rpmvercmp) in one run.
import test from 'ava';
import { execa } from 'execa';
import fc from 'fast-check';
import { compareEvr, rpmVerCmp } from '../../../src/appliance/clientpkgs/rpm/version.js';
import { requireTools } from '../../helpers/tools.js';

test('rpmVerCmp orders versions as rpm does', (t) => {
  const cases: [string, string, number][] = [
    ['1.10', '1.9', 1],
    ['1.0', '1.0', 0],
    ['1.0~rc1', '1.0', -1],
    ['1.0^git1', '1.0', 1],
    ['1.0^git1', '1.0.1', -1],
    ['1.0a', '1.0', 1],
    ['1.0', '1.0.0', -1],
    ['2.el9', '2.el10', -1],
    ['001', '1', 0],
    ['1.a', '1.1', -1],
    ['1_0', '1.0', 0],
  ];
  for (const [a, b, want] of cases) {
    t.is(rpmVerCmp(a, b), want, `${a} vs ${b}`);
    t.is(rpmVerCmp(b, a), want === 0 ? 0 : -want, `${b} vs ${a}`);
  }
  t.is(compareEvr({ epoch: 1, version: '1.0', release: '1' }, { version: '9.0', release: '1' }), 1);
  t.is(compareEvr({ version: '1.0', release: '10' }, { version: '1.0', release: '9' }), 1);
});

const rpmTest = requireTools('rpm');

rpmTest('rpmVerCmp agrees with rpm.vercmp on random versions', async (t) => {
  const segment = fc.oneof(fc.stringMatching(/^[0-9]{1,3}$/), fc.stringMatching(/^[a-z]{1,3}$/), fc.constantFrom('~', '^', '.', '_', '+'));
  const version = fc.array(segment, { minLength: 1, maxLength: 6 }).map((parts) => parts.join(''));
  const pairs = fc.sample(fc.tuple(version, version), { numRuns: 400, seed: 42 });
  // One rpm run for all pairs: each line is rpm's answer for one pair.
  const lua = pairs.map(([a, b]) => `print(rpm.vercmp(${JSON.stringify(a)}, ${JSON.stringify(b)}).."\\n")`).join(' ');
  const { stdout } = await execa('rpm', ['--eval', `%{lua: ${lua}}`], { stdin: 'ignore' });
  const answers = stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
  t.is(answers.length, pairs.length);
  pairs.forEach(([a, b], i) => t.is(rpmVerCmp(a, b), answers[i] ?? Number.NaN, `${a} vs ${b}`));
});
