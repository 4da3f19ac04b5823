import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import test from 'ava';
import { ByteCounter, createProgress, nextMilestone, percentDone } from '../../../src/lib/progress.js';
import { TextSink } from '../containerctl/memory-engine.js';

test('percent done is whole, clamped, and 100 for an empty upload', (t) => {
  t.is(percentDone(0, 200), 0);
  t.is(percentDone(199, 200), 99);
  t.is(percentDone(250, 200), 100);
  t.is(percentDone(0, 0), 100);
});

test('milestones are printed once each, skipping the ones passed in a single jump', (t) => {
  t.is(nextMilestone(10, 100, 0), undefined);
  t.is(nextMilestone(26, 100, 0), 25);
  t.is(nextMilestone(30, 100, 25), undefined);
  t.is(nextMilestone(80, 100, 25), 75);
  t.is(nextMilestone(100, 100, 75), 100);
});

test('without a terminal: a few percentage lines, 100% once at the end', (t) => {
  const out = new TextSink();
  const progress = createProgress(out, 'Loading', 1000);
  for (let sent = 0; sent <= 1000; sent += 50) progress.update(sent);
  progress.finish();
  progress.finish();
  t.is(out.text, 'Loading: 25%\nLoading: 50%\nLoading: 75%\nLoading: 100%\n');
});

test('the byte counter passes data through and counts what was pulled', async (t) => {
  const seen: number[] = [];
  const counter = new ByteCounter((n) => seen.push(n));
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      chunks.push(chunk);
      done();
    },
  });
  await pipeline(Readable.from([Buffer.alloc(100), Buffer.alloc(28)]), counter, sink);
  t.deepEqual(seen, [100, 128]);
  t.is(counter.bytes, 128);
  t.is(Buffer.concat(chunks).length, 128);
});

test('on a terminal: a cli-progress bar with done and total beside it, left on its line when finished', (t) => {
  let text = '';
  const out = { write: (s: string) => void (text += s), isTTY: true, columns: 100 };
  const progress = createProgress(out, 'Loading', 2048, { formatValue: (n) => `${n} B` });
  progress.update(1024);
  progress.finish();
  progress.finish();
  t.regex(text, /Loading {4}\[[\u2588\u2591]{30}\] 0% \| 0 B \/ 2048 B/);
  t.regex(text, /Loading {4}\[\u2588{30}\] 100% \| 2048 B \/ 2048 B/);
  t.true(text.endsWith('\n'));
});
