// Fuzzing node-range expansion: arbitrary specs, bracket ranges (huge, padded, nested, unbalanced),
// excludes, groups and `/regex` forms. A spec gives at most `limit` distinct valid ids, or a plain Error
// with a one-line message; never another exception, never a slow call.
import test from 'ava';
import fc from 'fast-check';
import { classifyId, compressNames, expandIds, MAX_IDS, type ExpandOptions } from '../../../src/lib/noderange.js';
import { budget, nastyText, timed } from './budget.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const name = fc.stringMatching(NAME_RE);
const bound = fc.oneof(
  { weight: 5, arbitrary: fc.nat({ max: 400 }).map(String) },
  { weight: 2, arbitrary: fc.nat({ max: 400 }).map((n) => `0${n}`) },
  { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('', '-', '99999', '100000', '100001', '999999999999999', '9007199254740993', '1e3', ' 1', '٣') },
);
const rangePart = fc.oneof(bound, fc.tuple(bound, bound).map(([a, b]) => `${a}-${b}`));
const bracket = fc.array(rangePart, { minLength: 1, maxLength: 4 }).map((parts) => `[${parts.join(',')}]`);
const literal = fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{0,6}$/), fc.constantFrom('n', 'rack', '52:54:00:00:00:', '10.0.0.', '[', ']', '[[', '][', ' '), nastyText(6));
const bracketItem = fc.array(fc.oneof(literal, bracket), { minLength: 1, maxLength: 5 }).map((p) => p.join(''));
const regexChar = fc.constantFrom('.', '*', '+', '?', '(', ')', '(?:', '(?=', '(?<n>', '[', ']', '[^', '{', '}', '{2,}', '|', '\\', '\\1', '\\d', '^', '$', 'n', 'a', '0', '-', ',');
const regexItem = fc.array(regexChar, { minLength: 0, maxLength: 24 }).map((p) => `/${p.join('')}`);
const item = fc.oneof(
  { weight: 5, arbitrary: bracketItem },
  { weight: 2, arbitrary: regexItem },
  { weight: 1, arbitrary: fc.constantFrom('all', '@g', '@missing', '@', '@bad name', '-', '--n1', '52-54-00-00-00-0A', 'ff:ff:ff:ff:ff:ff', '10.0.0.1', '300.0.0.1', 'a'.repeat(32), 'A'.repeat(64)) },
  { weight: 1, arbitrary: name },
  { weight: 1, arbitrary: nastyText(20) },
);
const spec = fc.array(fc.tuple(fc.boolean(), item).map(([exclude, it]) => (exclude ? `-${it}` : it)), { maxLength: 6 }).map((items) => items.join(','));

/** Names of the cluster for `all` and `/regex`: valid names, at most 63 characters, as in the store. */
const allNames = fc.uniqueArray(name, { maxLength: 300 });

/** What must hold for any spec: a bounded list of distinct valid ids, or a one-line Error. */
function check(input: string, opts: ExpandOptions): void {
  const limit = opts.limit ?? MAX_IDS;
  let ids: string[];
  try {
    ids = timed(`expandIds(${JSON.stringify(input.slice(0, 80))})`, () => expandIds(input, opts));
  } catch (err) {
    // The documented failure is a plain Error; a TypeError, RangeError or SyntaxError is a bug.
    if (!(err instanceof Error) || err.constructor !== Error) throw err;
    if (err.message === '' || err.message.includes('\n')) throw new Error(`malformed message: ${JSON.stringify(err.message)}`);
    if (err.message.startsWith('expandIds(')) throw err;
    return;
  }
  if (ids.length > limit) throw new Error(`${ids.length} ids (limit ${limit})`);
  if (new Set(ids).size !== ids.length) throw new Error('duplicate ids');
  for (const id of ids) if (classifyId(id) === null) throw new Error(`invalid id ${JSON.stringify(id)} from ${JSON.stringify(input)}`);
}

test('node-range fuzz: arbitrary specs give a bounded list of valid ids or a one-line Error', (t) => {
  fc.assert(
    fc.property(fc.oneof(spec, fc.string({ unit: 'binary', maxLength: 200 }), nastyText(200)), allNames, fc.option(fc.integer({ min: 1, max: MAX_IDS }), { nil: undefined }), (input, all, limit) => {
      const groups = (g: string) => (g === 'g' ? all.slice(0, 10) : undefined);
      check(input, { all, groups, ...(limit !== undefined ? { limit } : {}) });
      check(input, {});
    }),
    budget(0.16, 10_000),
  );
  t.pass();
});

test('node-range fuzz: regexes over the names stay fast or are refused', (t) => {
  // Long names that almost match are the worst case for a backtracking engine.
  const longNames = fc.array(fc.stringMatching(/^[an0.-]{40,63}$/).filter((s) => NAME_RE.test(s)), { minLength: 50, maxLength: 300 });
  fc.assert(
    fc.property(regexItem, longNames, (input, all) => {
      check(input, { all });
    }),
    budget(0.1, 5000),
  );
  t.pass();
});

test('node-range fuzz: compressNames gives back the same set through expandIds', (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.oneof(name, fc.tuple(fc.constantFrom('n', 'r1n', 'x-', ''), fc.nat({ max: 2000 }), fc.constantFrom('', 'b', '.ib')).map(([p, n, s]) => `${p}${n}${s}`).filter((s) => NAME_RE.test(s))), { minLength: 1, maxLength: 200 }), (names) => {
      const text = compressNames(names);
      const back = timed('expandIds', () => expandIds(text));
      if (back.length !== names.length || !names.every((n) => back.includes(n))) throw new Error(`${JSON.stringify(names)} -> ${text} -> ${JSON.stringify(back)}`);
    }),
    budget(0.06, 2000),
  );
  t.pass();
});
