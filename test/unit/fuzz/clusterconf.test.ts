// Fuzzing the cluster.conf parser: arbitrary text and bytes, and files of near-valid lines. A file is
// either a model (which renders back to itself) or a ClusterConfError whose every problem names the file
// and, for a line's problem, a line that exists; never another exception, never a slow parse.
import test from 'ava';
import fc from 'fast-check';
import { ClusterConfError, MAX_CLUSTERCONF_NODES, parseClusterConf, renderClusterConf, type ClusterConf } from '../../../src/lib/clusterconf.js';
import { ipToInt } from '../../../src/lib/ipv4.js';
import { isValidMac } from '../../../src/lib/validate.js';
import { budget, nastyText, timed } from './budget.js';

const hexPair = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const mac = fc
  .tuple(fc.array(hexPair, { minLength: 5, maxLength: 7 }), fc.constantFrom(':', '-', '.', ''), fc.boolean())
  .map(([pairs, sep, upper]) => {
    const text = pairs.join(sep);
    return upper ? text.toUpperCase() : text;
  });
const number = fc.oneof(
  fc.nat({ max: 300 }).map(String),
  fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
  fc.constantFrom('0', '-1', '1e5', '0x10', '00010', '99999', '100001', '999999999', '1.5', 'Infinity', 'NaN', '٣'),
);
const ip = fc.oneof(
  fc.ipV4(),
  fc.ipV4Extended(),
  fc.tuple(fc.constantFrom(10, 172, 192), fc.nat(255), fc.nat(255), fc.nat(300)).map((p) => p.join('.')),
  fc.constantFrom('10.0.0.0', '10.255.255.255', '127.0.0.1', '0.0.0.1', '224.0.0.1', '169.254.1.1', '1.2.3', '01.2.3.4', '1.2.3.4.5', ''),
);
const prefix = fc.oneof(fc.integer({ min: 0, max: 40 }).map(String), number);
const space = fc.constantFrom(' ', '  ', '\t', ' \t ', '\u00a0', '\v');
const comment = fc.oneof(fc.constant(''), nastyText(30).map((c) => ` #${c.replace(/[\r\n]/g, '')}`));

const line = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom('iprange', 'IPRANGE', 'ipRange'), space, ip, fc.constantFrom('/', '/', ' /', ''), prefix, fc.option(fc.tuple(space, ip).map(([s, l]) => s + l)), comment).map((p) => p.map((x) => x ?? '').join('')) },
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom('nodes', 'Nodes', 'node'), space, number, comment).map((p) => p.join('')) },
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom('node', 'NODE', 'nodes'), space, fc.oneof(mac, nastyText(20)), comment).map((p) => p.join('')) },
  { weight: 1, arbitrary: comment },
  { weight: 1, arbitrary: nastyText(60) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(1001), `node ${'a'.repeat(2000)}`, '\uFEFFiprange 10.0.0.1/8', 'nodes 100000', 'nodes\t99999') },
);
const file = fc.tuple(fc.array(line, { maxLength: 30 }), fc.constantFrom('\n', '\r\n', '\r')).map(([lines, eol]) => lines.join(eol));

const PROBLEM_RE = /^cluster\.conf(?::(\d+))?: \S/;

/** What must hold for any input: a consistent model, or a ClusterConfError with located problems. */
function check(input: string | Uint8Array): void {
  const lineCount = typeof input === 'string' ? input.split('\n').length : Buffer.from(input).toString('latin1').split('\n').length;
  let model: ClusterConf;
  try {
    model = timed('parseClusterConf', () => parseClusterConf(input));
  } catch (err) {
    if (!(err instanceof ClusterConfError)) throw err;
    if (err.problems.length === 0 || err.message === '' || err.message.includes('\n')) throw new Error(`malformed error: ${JSON.stringify(err.message)}`);
    for (const problem of err.problems) {
      if (problem.startsWith('... and ')) continue;
      const m = PROBLEM_RE.exec(problem);
      if (!m) throw new Error(`problem without its file: ${JSON.stringify(problem)}`);
      if (m[1] !== undefined && (Number(m[1]) < 1 || Number(m[1]) > lineCount)) throw new Error(`problem on a line the file lacks: ${problem}`);
    }
    return;
  }
  if (model.nodes.length > MAX_CLUSTERCONF_NODES) throw new Error(`${model.nodes.length} nodes`);
  const seen = new Set<string>();
  model.nodes.forEach((node, i) => {
    if (node.index !== i) throw new Error(`node ${i} has index ${node.index}`);
    const at = ipToInt(node.ip);
    if (!model.ranges.some((r) => at >= ipToInt(r.first) && at <= ipToInt(r.last))) throw new Error(`${node.ip} is in no range`);
    if (seen.has(node.ip)) throw new Error(`${node.ip} given twice`);
    seen.add(node.ip);
    if (node.mac !== null && (isValidMac(node.mac) !== true || node.mac !== node.mac.toLowerCase())) throw new Error(`bad MAC ${node.mac}`);
  });
  // The documented round trip: what was parsed is written back and reads the same.
  const again = timed('round trip', () => parseClusterConf(renderClusterConf(model)));
  if (JSON.stringify(again) !== JSON.stringify(model)) throw new Error('render + parse does not give the model back');
}

test('cluster.conf fuzz: arbitrary text and bytes give a model or a located ClusterConfError', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.string({ unit: 'grapheme', maxLength: 400 }), fc.uint8Array({ maxLength: 400 }), nastyText(400)), (input) => {
      check(input);
    }),
    budget(0.08, 10_000),
  );
  t.pass();
});

test('cluster.conf fuzz: near-valid files give a model or a located ClusterConfError', (t) => {
  let models = 0;
  fc.assert(
    fc.property(file, fc.boolean(), (text, asBytes) => {
      check(asBytes ? new TextEncoder().encode(text) : text);
      try {
        parseClusterConf(text);
        models++;
      } catch {
        // Counted above.
      }
    }),
    budget(0.14, 10_000),
  );
  t.log(`${models} inputs parsed to a model`);
  t.pass();
});
