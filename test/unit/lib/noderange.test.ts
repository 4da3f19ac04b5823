import test from 'ava';
import { classifyId, compareNames, compressNames, expandIds, MAX_IDS, needsNodeList } from '../../../src/lib/noderange.js';

const names = (prefix: string, from: number, to: number, width = 0) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${String(from + i).padStart(width, '0')}`);

test('single names and comma lists keep their order', (t) => {
  t.deepEqual(expandIds('n0'), ['n0']);
  t.deepEqual(expandIds('n3,n1,login'), ['n3', 'n1', 'login']);
  t.deepEqual(expandIds(' n3 , n1 '), ['n3', 'n1']);
});

test('ranges and lists inside brackets', (t) => {
  t.deepEqual(expandIds('n[0-15]'), names('n', 0, 15));
  t.deepEqual(expandIds('n[0-3,7,10-12]'), ['n0', 'n1', 'n2', 'n3', 'n7', 'n10', 'n11', 'n12']);
  t.deepEqual(expandIds('n[7]'), ['n7']);
  t.deepEqual(expandIds('n[0-1],n[5-6]'), ['n0', 'n1', 'n5', 'n6']);
});

test('zero padding keeps its width', (t) => {
  t.deepEqual(expandIds('n[00-15]'), names('n', 0, 15, 2));
  t.deepEqual(expandIds('node[001-003]'), ['node001', 'node002', 'node003']);
  t.deepEqual(expandIds('n[08-11]'), ['n08', 'n09', 'n10', 'n11']);
  // Like bash {01..100}: the leading zero pads everything to the wider bound.
  t.deepEqual(expandIds('n[01-100]').slice(0, 2), ['n001', 'n002']);
  t.deepEqual(expandIds('n[8-10]'), ['n8', 'n9', 'n10']);
});

test('several bracket groups multiply, with text after the brackets', (t) => {
  t.deepEqual(expandIds('r[1-2]n[0-1]'), ['r1n0', 'r1n1', 'r2n0', 'r2n1']);
  t.deepEqual(expandIds('n[1-2]-ib'), ['n1-ib', 'n2-ib']);
});

test('duplicates are listed once, at their first position', (t) => {
  t.deepEqual(expandIds('n[0-2],n1,n0'), ['n0', 'n1', 'n2']);
});

test('MACs are normalized to lowercase colon form, dashes accepted', (t) => {
  t.deepEqual(expandIds('52:54:00:AB:CD:EF,52-54-00-00-00-0A'), ['52:54:00:ab:cd:ef', '52:54:00:00:00:0a']);
  t.is(classifyId('52-54-00-00-00-0a'), 'mac');
  t.deepEqual(expandIds('52:54:00:00:00:0[1-3]'), ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03']);
});

test('UIDs (32 hex digits) and IPv4 addresses pass through', (t) => {
  const uid = '0123456789ABCDEF0123456789abcdef';
  t.deepEqual(expandIds(`${uid},10.0.0.5`), [uid.toLowerCase(), '10.0.0.5']);
  t.is(classifyId(uid), 'uid');
  t.is(classifyId('10.0.0.5'), 'ip');
  t.is(classifyId('n5'), 'name');
  t.is(classifyId('n5;x'), null);
  t.is(classifyId('10.0.0.256'), null);
  t.deepEqual(expandIds('10.0.0.[1-3]'), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
});

test('all, exclusions, groups and regexes use the node list', (t) => {
  const all = names('n', 0, 9);
  const groups = (g: string) => (g === 'rack1' ? ['n0', 'n1', 'n2'] : undefined);
  t.deepEqual(expandIds('all,-n5', { all }), all.filter((n) => n !== 'n5'));
  t.deepEqual(expandIds('all,-n[0-7]', { all }), ['n8', 'n9']);
  t.deepEqual(expandIds('@rack1,-n1', { groups }), ['n0', 'n2']);
  t.deepEqual(expandIds('/n[3-4]', { all }), ['n3', 'n4']);
  t.deepEqual(expandIds('/n1', { all: [...all, 'n10'] }), ['n1'], 'regexes match whole names');
  t.deepEqual(expandIds('n[0-3],-n1,n1', {}), ['n0', 'n2', 'n3', 'n1'], 'later items add back');
  t.true(needsNodeList('all,-n5'));
  t.true(needsNodeList('n1,@rack1'));
  t.true(needsNodeList('-/n1.*'));
  t.false(needsNodeList('n[0-3],-n1'));
});

test('all, groups and regexes without the node list are clear errors', (t) => {
  t.throws(() => expandIds('all'), { message: '"all" cannot be used here' });
  t.throws(() => expandIds('@rack1'), { message: 'groups ("@rack1") cannot be used here' });
  t.throws(() => expandIds('/n.*'), { message: '"/regex" cannot be used here' });
  t.throws(() => expandIds('@nope', { groups: () => undefined }), { message: 'unknown group "nope"' });
  t.throws(() => expandIds('/n[', { all: [] }), { message: /^invalid regular expression "\/n\[": / });
});

test('malformed specs give one-line errors naming the problem', (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /^empty ids list$/],
    [' , ', /^empty ids list$/],
    ['n[0-3', /^unbalanced "\[" in "n\[0-3"$/],
    ['n0-3]', /^unbalanced "\]" in "n0-3\]"$/],
    ['n]0[', /^unbalanced "\]"/],
    ['n[[0-3]]', /^nested "\[" in/],
    ['n[]', /^bad range "\[\]" in "n\[\]": expected numbers/],
    ['n[a-c]', /^bad range "\[a-c\]"/],
    ['n[3-0]', /^range "3-0" in "n\[3-0\]" runs backwards$/],
    ['n[0--3]', /^bad range/],
    ['n0;reboot', /^invalid id "n0;reboot": name contains ";"/],
    ['n[0-1];x', /^invalid id "n0;x" \(from "n\[0-1\];x"\)/],
    ['52:54:00:zz:00:01', /^invalid id "52:54:00:zz:00:01"/],
    ['ff:ff:ff:ff:ff:ff', /^invalid MAC "ff:ff:ff:ff:ff:ff": multicast or broadcast/],
    ['10.0.0.256', /^invalid IP address "10.0.0.256": part 256 is larger than 255$/],
    ['-', /^"-" must be followed by the ids to exclude/],
    ['n 0', /^invalid id "n 0"/],
  ];
  for (const [spec, message] of cases) {
    const err = t.throws(() => expandIds(spec), undefined, spec);
    t.regex(err?.message ?? '', message, spec);
    t.false(err?.message.includes('\n'), spec);
  }
});

test('errors stay on one line whatever characters the spec holds', (t) => {
  // Found by the fuzzer: the quoted spec, or the regex inside V8's own message, carried the newline.
  for (const [spec, message] of [
    ['[\n,', /^unbalanced "\[" in "\[\?,"$/],
    ['n\r\n0', /^invalid id "n\?\?0"/],
    ['n[0-1]\u2028x', /^invalid id "n0\?x" \(from "n\[0-1\]\?x"\)/],
    ['/(\nn', /^invalid regular expression "\/\(\?n": Unterminated group$/],
  ] as const) {
    const err = t.throws(() => expandIds(spec, { all: ['n0'] }), undefined, JSON.stringify(spec));
    t.regex(err?.message ?? '', message, JSON.stringify(spec));
  }
});

test('ranges beyond the limit are refused before anything is generated', (t) => {
  t.throws(() => expandIds('n[0-1000000]'), { message: /expands to more than 100000 ids/ });
  t.throws(() => expandIds('n[0-999999999999999]'), { message: /limit 100000/ });
  t.throws(() => expandIds('r[0-999]n[0-999]'), { message: '"r[0-999]n[0-999]" expands to 1000000 ids (limit 100000)' });
  t.throws(() => expandIds('a[0-60000],b[0-60000]'), { message: /names more than 100000 ids/ });
  t.is(expandIds(`n[1-${MAX_IDS}]`).length, MAX_IDS);
  t.throws(() => expandIds('n[0-10]', { limit: 5 }), { message: /limit 5/ });
});

test('a 100,000-name range expands in order', (t) => {
  const ids = expandIds('n[0-99999]');
  t.is(ids.length, 100_000);
  t.is(ids[99_999], 'n99999');
});

test('compressNames folds runs back into ranges, sorted naturally', (t) => {
  t.is(compressNames(['n0', 'n1', 'n2', 'n3', 'n7']), 'n[0-3,7]');
  t.is(compressNames(['n7', 'n3', 'n2', 'n1', 'n0', 'n3']), 'n[0-3,7]');
  t.is(compressNames(['n5']), 'n5');
  t.is(compressNames([]), '');
  t.is(compressNames(['login', 'n10', 'n9', 'n2']), 'login,n[2,9-10]');
  t.is(compressNames(names('n', 0, 15, 2)), 'n[00-15]');
  t.is(compressNames(['n08', 'n09', 'n10', 'n11']), 'n[08-11]');
  t.is(compressNames(['r1n0', 'r1n1', 'r2n0']), 'r1n[0-1],r2n0');
  t.is(compressNames(['n1-ib', 'n2-ib', 'n3']), 'n[1-2]-ib,n3');
  t.is(compressNames(['52:54:00:00:00:01', 'n0', 'n1', '10.0.0.1']), '10.0.0.1,52:54:00:00:00:01,n[0-1]');
});

test('expandIds(compressNames(x)) gives back the same names', (t) => {
  const samples = [
    [...names('n', 0, 99), 'login', ...names('gpu', 1, 8, 2), 'n105', 'n107', 'x1y'],
    ['n0', 'n00', 'n000', 'n1', 'n01'],
    names('n', 0, 9999),
  ];
  for (const list of samples) {
    const back = expandIds(compressNames(list));
    t.deepEqual([...back].sort(), [...list].sort());
  }
});

test('compareNames orders numbers by value', (t) => {
  t.deepEqual(['n10', 'n2', 'n1', 'login', 'n02'].sort(compareNames), ['login', 'n1', 'n2', 'n02', 'n10']);
});

test('a /regex that could backtrack for long is refused, fast, before any name is tried', (t) => {
  const all = ['n0', 'n1', 'n2', `${'a'.repeat(60)}!`];
  const started = Date.now();
  for (const [spec, message] of [
    ['/(a+)+$', /repeats a group that holds a quantifier or "\|"/],
    ['/(a|aa)*b', /repeats a group that holds a quantifier or "\|"/],
    ['/((a)*)*', /repeats a group/],
    ['/(?:a+){2}', /repeats a group/],
    ['/(a)\\1', /backreference/],
    ['/(?=n)n0', /lookaround/],
    ['/a?a?a?a?aaaa', /holds 4 quantifiers and alternations \(limit 3\)/],
    [`/${'x'.repeat(201)}`, /longer than 200 characters/],
  ] as const) {
    t.throws(() => expandIds(spec, { all }), { message }, spec);
  }
  t.throws(() => expandIds('/n.*', { all: Array.from({ length: 100_001 }, (_, i) => `n${i}`) }), { message: /at most 100000 names/ });
  t.true(Date.now() - started < 1000);
  t.deepEqual(expandIds('/(?:n|m)[0-1]+', { all }), ['n0', 'n1']);
  t.deepEqual(expandIds('/n(?<d>[12])', { all }), ['n1', 'n2']);
  t.deepEqual(expandIds('/n[+*?]?\\d{1}', { all }), ['n0', 'n1', 'n2'], 'a class and a count are one quantifier each');
});
