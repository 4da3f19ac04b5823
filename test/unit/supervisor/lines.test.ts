import test from 'ava';
import { LineSplitter, prefixLine } from '../../../src/appliance/supervisor/lines.js';

function split(chunks: Array<string | Buffer>, max?: number): string[] {
  const out: string[] = [];
  const splitter = new LineSplitter((line) => out.push(line), max);
  for (const chunk of chunks) splitter.push(chunk);
  splitter.end();
  return out;
}

test('partial lines are held until their newline arrives', (t) => {
  const out: string[] = [];
  const splitter = new LineSplitter((line) => out.push(line));
  splitter.push('DHCPDISC');
  t.deepEqual(out, []);
  splitter.push('OVER from aa:bb\nDHCPOF');
  t.deepEqual(out, ['DHCPDISCOVER from aa:bb']);
  splitter.push('FER on 10.0.0.5\n');
  t.deepEqual(out, ['DHCPDISCOVER from aa:bb', 'DHCPOFFER on 10.0.0.5']);
});

test('CRLF endings lose their carriage return; blank lines are kept', (t) => {
  t.deepEqual(split(['one\r\ntwo\r', '\n\r\nthree']), ['one', 'two', '', 'three']);
});

test('the last line without a newline is flushed at end of stream', (t) => {
  t.deepEqual(split(['a\nb']), ['a', 'b']);
  t.deepEqual(split(['a\n']), ['a']);
});

test('UTF-8 characters split across chunks survive', (t) => {
  const bytes = Buffer.from('größe ✓\n');
  t.deepEqual(split([bytes.subarray(0, 3), bytes.subarray(3, 9), bytes.subarray(9)]), ['größe ✓']);
});

test('overlong lines are cut into pieces instead of growing without bound', (t) => {
  t.deepEqual(split(['abcdefghij\n'], 4), ['abcd', 'efgh', 'ij']);
});

test('lines are shown as [name] text', (t) => {
  t.is(prefixLine('tftpd', 'RRQ from 10.0.0.5 filename undionly.kpxe'), '[tftpd] RRQ from 10.0.0.5 filename undionly.kpxe');
});
