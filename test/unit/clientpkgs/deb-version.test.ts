// dpkg's version order, against dpkg itself: fixed cases with the known surprises, then random versions
// compared by compareDebVersions and by `dpkg --compare-versions`.
import test from 'ava';
import { execa } from 'execa';
import fc from 'fast-check';
import { compareDebVersions, parseDebVersion } from '../../../src/appliance/clientpkgs/deb/version.js';
import { requireTools } from '../../helpers/tools.js';

function cmp(a: string, b: string): number {
  const pa = parseDebVersion(a);
  const pb = parseDebVersion(b);
  if (!pa || !pb) throw new Error(`not a version: ${a} or ${b}`);
  return compareDebVersions(pa, pb);
}

test('compareDebVersions orders versions as dpkg does', (t) => {
  const cases: [string, string, number][] = [
    ['1.10', '1.9', 1],
    ['1.0~rc1', '1.0', -1],
    ['1.0~~', '1.0~', -1],
    ['1.0', '1.0a', -1],
    ['1.0a', '1.0+', -1],
    ['1:0.1', '9.9', 1],
    ['1.0-1', '1.0-10', -1],
    ['1.0-2', '1.0-10', -1],
    ['1.0', '1.0-0', 0],
    ['001', '1', 0],
    ['0.1.0-1', '0.1.0-1', 0],
    ['2.0-1~bpo12+1', '2.0-1', -1],
  ];
  for (const [a, b, want] of cases) {
    t.is(cmp(a, b), want, `${a} vs ${b}`);
    t.is(cmp(b, a), want === 0 ? 0 : -want, `${b} vs ${a}`);
  }
});

test('parseDebVersion refuses what dpkg refuses', (t) => {
  for (const bad of ['', 'a1.0', '1.0-', 'x:1.0', '1.0-a/b', '1 0']) t.is(parseDebVersion(bad), null, JSON.stringify(bad));
  t.deepEqual(parseDebVersion('3:1.2-3-4'), { epoch: 3, upstream: '1.2-3', revision: '4' });
});

const dpkgTest = requireTools('dpkg');

dpkgTest('compareDebVersions agrees with dpkg --compare-versions on random versions', async (t) => {
  const segment = fc.oneof(fc.stringMatching(/^[0-9]{1,3}$/), fc.stringMatching(/^[a-z]{1,2}$/), fc.constantFrom('~', '.', '+'));
  const part = fc.array(segment, { minLength: 1, maxLength: 5 }).map((p) => p.join(''));
  const version = fc
    .tuple(fc.constantFrom('', '1:'), fc.stringMatching(/^[0-9]$/), part, fc.option(part, { nil: undefined }))
    .map(([epoch, first, up, rev]) => `${epoch}${first}${up}${rev === undefined ? '' : `-${rev}`}`);
  const pairs = fc.sample(fc.tuple(version, version), { numRuns: 150, seed: 7 });
  // One shell running dpkg once per pair; each line is `lt`, `eq` or `gt`.
  const script = 'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done';
  const { stdout } = await execa('sh', ['-c', script], { input: pairs.map(([a, b]) => `${a} ${b}`).join('\n') + '\n' });
  const answers = stdout.split('\n').map(Number);
  t.is(answers.length, pairs.length);
  pairs.forEach(([a, b], i) => t.is(cmp(a, b), answers[i] as number, `${a} vs ${b}`));
});
