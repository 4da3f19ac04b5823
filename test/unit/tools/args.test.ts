import test from 'ava';
import { parseArgs, parseAssignments, usageText } from '../../../src/tools/common/args.js';
import { BOOTCONFIGS, NODES, asObjectList, coerceValue, sortObjects, type ApiObject } from '../../../src/tools/common/collection.js';

test('options may come before or after the action, and -i values are kept verbatim', (t) => {
  const a = parseArgs(['-i', 'n[0-1]', 'set', '_boot_config=X']);
  t.is(a.common.ids, 'n[0-1]');
  t.deepEqual(a.words, ['set', '_boot_config=X']);

  const b = parseArgs(['ls', '-i', 'n0', '-l']);
  t.is(b.common.ids, 'n0');
  t.is(b.common.detail, 1);
  t.deepEqual(b.words, ['ls']);
});

test('short forms: -L, bundled -al, -iVALUE, --ids=VALUE, repeated -i joined with commas', (t) => {
  t.is(parseArgs(['ls', '-L']).common.detail, 2);
  const bundled = parseArgs(['-al', 'ls']);
  t.true(bundled.common.all);
  t.is(bundled.common.detail, 1);
  t.is(parseArgs(['-in0', 'ls']).common.ids, 'n0');
  t.is(parseArgs(['--ids=n[0-3]', 'ls']).common.ids, 'n[0-3]');
  t.is(parseArgs(['-i', 'n0', '-i', 'n5', 'ls']).common.ids, 'n0,n5');
});

test('--json, --pretty, --human, --show-uids and --base-url', (t) => {
  const a = parseArgs(['--json', '--human', '--show-uids', '--base-url', 'http://h/api/v1', 'ls']);
  t.is(a.common.format, 'json');
  t.true(a.common.human);
  t.true(a.common.showUids);
  t.is(a.common.baseUrl, 'http://h/api/v1');
  t.is(parseArgs(['--pretty', 'ls']).common.format, 'pretty');
  t.is(parseArgs(['ls']).common.format, 'plain');
});

test('tool options: flags and values; unknown options and missing values are one-line errors', (t) => {
  const extra = [
    { long: 'dry-run', help: '' },
    { long: 'name', value: true, help: '' },
  ];
  const a = parseArgs(['load', 'cluster.conf', '--dry-run', '--name=x'], extra);
  t.is(a.options.get('dry-run'), true);
  t.is(a.options.get('name'), 'x');
  t.deepEqual(a.words, ['load', 'cluster.conf']);
  t.throws(() => parseArgs(['--dry-run']), { message: 'unknown option --dry-run (see --help)' });
  t.throws(() => parseArgs(['-x']), { message: 'unknown option -x (see --help)' });
  t.throws(() => parseArgs(['ls', '-i']), { message: 'option -i needs a value' });
  t.throws(() => parseArgs(['--json=1']), { message: 'option --json takes no value' });
  t.throws(() => parseArgs(['-a', '-i', 'n0', 'ls']), { message: 'use either -a/--all or -i/--ids, not both' });
});

test('"--" ends the options; a lone "-" and negative numbers are words', (t) => {
  t.deepEqual(parseArgs(['set', '--', 'x=-l']).words, ['set', 'x=-l']);
  t.deepEqual(parseArgs(['save', '-']).words, ['save', '-']);
  t.deepEqual(parseArgs(['update', '-5']).words, ['update', '-5']);
});

test('key=value: split at the first "=", values may be empty or contain "="', (t) => {
  t.deepEqual(parseAssignments(['a=1', 'cmdline=console=ttyS0 quiet', 'power_uri='], 'update'), [
    { key: 'a', value: '1' },
    { key: 'cmdline', value: 'console=ttyS0 quiet' },
    { key: 'power_uri', value: '' },
  ]);
  t.throws(() => parseAssignments(['name'], 'create'), { message: 'create takes key=value arguments, not "name"' });
  t.throws(() => parseAssignments(['=x'], 'create'), { message: 'create takes key=value arguments, not "=x"' });
  t.throws(() => parseAssignments(['a=1', 'a=2'], 'update'), { message: 'update: "a" is given twice' });
});

test('values take the field type of the collection table', (t) => {
  t.is(coerceValue(NODES, 'index', '10'), 10);
  t.throws(() => coerceValue(NODES, 'index', 'ten'), { message: 'index must be a whole number, not "ten"' });
  t.is(coerceValue(BOOTCONFIGS, 'frozen', 'true'), true);
  t.is(coerceValue(BOOTCONFIGS, 'frozen', 'no'), false);
  t.throws(() => coerceValue(BOOTCONFIGS, 'frozen', 'maybe'), { message: 'frozen must be true or false, not "maybe"' });
  t.deepEqual(coerceValue(NODES, 'groups', 'a, b,,c'), ['a', 'b', 'c']);
  t.deepEqual(coerceValue(NODES, 'groups', ''), []);
  t.is(coerceValue(NODES, 'power_uri', ''), null);
  t.deepEqual(coerceValue(NODES, 'attributes', '{"a":"1"}'), { a: '1' });
  t.throws(() => coerceValue(NODES, 'attributes', '[1]'), { message: /must be a JSON object/ });
  // Unknown keys are passed on as text for the API to judge.
  t.is(coerceValue(NODES, 'colour', '7'), '7');
});

test('listing order: nodes by index, other collections by natural name order', (t) => {
  const nodes: ApiObject[] = [{ name: 'n10', index: 10 }, { name: 'n2', index: 2 }, { name: 'n0', index: 0 }];
  t.deepEqual(sortObjects(NODES, nodes).map((n) => n.name), ['n0', 'n2', 'n10']);
  const boots: ApiObject[] = [{ name: 'b10' }, { name: 'B' }, { name: 'b2' }];
  t.deepEqual(sortObjects(BOOTCONFIGS, boots).map((n) => n.name), ['B', 'b2', 'b10']);
});

test('list answers may be arrays or objects keyed by uid', (t) => {
  t.deepEqual(asObjectList([{ name: 'a' }, 3, null]), [{ name: 'a' }]);
  t.deepEqual(asObjectList({ u1: { name: 'a' } }), [{ uid: 'u1', name: 'a' }]);
  t.deepEqual(asObjectList(null), []);
});

test('usage lists the actions and every common option', (t) => {
  const text = usageText('cw-x', ['ls  list things']);
  t.true(text.startsWith('usage: cw-x [options] ACTION [ARGS]'));
  for (const flag of ['-a, --all', '-i, --ids', '--json', '--pretty', '--human', '--show-uids', '--base-url', '-l, --long', '-L, --long-long']) {
    t.true(text.includes(flag), flag);
  }
});
